import numpy as np
import pytest

import mnmf
from mnmf.engine import IterationInfo, run


class Halving:
    """A toy model whose cost halves each step, down to a floor: stopping is predictable."""

    def __init__(self, floor=0.0):
        self.floor = floor

    def initialize(self, rng):
        self.value = 1.0 + rng.random()

    def step(self):
        self.value = self.floor + (self.value - self.floor) / 2

    def cost(self):
        return self.value

    def parameters(self):
        return {"value": np.array(self.value)}


def test_history_starts_at_the_initial_cost_and_follows_check_every():
    fit = run(Halving(), max_iter=25, tol=0, check_every=10, rng=0)
    assert fit.n_iter == 25 and not fit.converged
    np.testing.assert_array_equal(fit.cost_iterations, [0, 10, 20, 25])
    assert fit.cost[1] == pytest.approx(fit.cost[0] / 2**10)
    assert len(fit.cost_seconds) == 4 and np.all(np.diff(fit.cost_seconds) >= 0)
    assert fit.seconds >= fit.cost_seconds[-1]


def test_stops_on_relative_decrease():
    fit = run(Halving(floor=1.0), max_iter=1000, tol=1e-3, check_every=1, rng=0)
    assert fit.converged
    changes = -np.diff(fit.cost) / fit.cost[:-1]
    assert changes[-1] < 1e-3 <= changes[-2]


def test_callbacks_see_every_iteration_and_can_stop():
    seen: list[IterationInfo] = []

    def stop_at_seven(info):
        seen.append(info)
        return info.iteration == 7

    fit = run(Halving(), max_iter=100, tol=0, check_every=5, callbacks=[stop_at_seven], rng=0)
    assert [info.iteration for info in seen] == list(range(1, 8))
    assert seen[4].cost is not None and seen[5].cost is None
    assert fit.n_iter == 7 and not fit.converged
    assert fit.cost_iterations[-1] == 7  # the final cost is always recorded


def test_zero_iterations_only_initializes():
    fit = run(Halving(), max_iter=0, rng=0)
    assert fit.n_iter == 0 and fit.cost.shape == (1,)


def test_progress_bar_shows_label_and_total(capsys):
    run(Halving(), max_iter=3, check_every=1, progress=True, description="toy", rng=0)
    shown = capsys.readouterr().err
    assert "toy" in shown and "/3" in shown


def test_seed_reproducibility():
    assert run(Halving(), max_iter=0, rng=3).cost[0] == run(Halving(), max_iter=0, rng=3).cost[0]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"max_iter": -1}, "max_iter"),
        ({"tol": -1.0}, "tol"),
        ({"check_every": 0}, "check_every"),
        ({"rng": "seed"}, "rng"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        run(Halving(), **kwargs)


def test_rejects_non_models():
    with pytest.raises(ValueError, match="model"):
        run(object())


def test_nmf_result_is_a_fit_result(rng):
    result = mnmf.fit_nmf(rng.random((8, 9)), 2, max_iter=3, rng=rng)
    assert isinstance(result, mnmf.FitResult)
    assert result.params["W"] is result.W


def test_importing_mnmf_does_not_import_hydra():
    import subprocess
    import sys

    code = (
        "import sys, mnmf; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'hydra', 'omegaconf'}))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert output.stdout.strip() == "[]"
