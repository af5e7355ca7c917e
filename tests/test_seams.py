"""The seams: models written outside the package plug into every fit; options that a
model does not take are errors; results carry what made them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

import mnmf
from mnmf.algorithms.multichannel import fit_mnmf
from mnmf.grouping import SourceGrouping
from mnmf.registry import Registry, build, check_options
from mnmf.sources import SOURCE_MODELS, NMFSource, SmoothNMFSource
from mnmf.spatial import GainsModel
from tests.helpers import increases, planted_convolutive, planted_spectrogram
from tests.toy_models import EqualGainsModel, SparseNMFSource

REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------- a user's models
@pytest.mark.parametrize("algorithm", ["mu", "em"])
def test_toy_source_model_in_fit_nmf(rng, algorithm):
    V, _, _ = planted_spectrogram(rng, 30, 60, 3)
    options = dict(algorithm=algorithm, max_iter=40, tol=0, check_every=1, rng=1)
    sparse = mnmf.fit_nmf(V, source_model=SparseNMFSource(3, sparsity=0.5), **options)
    assert increases(sparse.cost).size == 0 and sparse.cost[-1] < sparse.cost[0]
    # The cost is the data term plus μ Σ H, in the user's units.
    data_term = mnmf.beta_divergence(V, sparse.W @ sparse.H, 0.0)
    np.testing.assert_allclose(sparse.cost[-1], data_term + 0.5 * sparse.H.sum(), rtol=1e-6)
    # μ = 0 is plain NMF without normalization; μ > 0 shrinks the activations.
    plain = mnmf.fit_nmf(V, 3, normalize=False, **options)
    zero = mnmf.fit_nmf(V, source_model=SparseNMFSource(3, sparsity=0.0), **options)
    np.testing.assert_allclose(zero.H, plain.H, rtol=1e-9)
    assert sparse.H.sum() < plain.H.sum()


@pytest.mark.parametrize(
    "spatial, options",
    [
        ("gains", {}),
        ("gains", {"mixing": "instantaneous"}),
        ("convolutive", {}),
        (EqualGainsModel(), {}),
    ],
)
def test_toy_source_model_in_every_spatial_model(rng, spatial, options):
    _, X, *_ = planted_convolutive(rng, n_frames=60)
    fit = fit_mnmf(
        X, 2, n_components=2, source_model=SparseNMFSource(sparsity=0.3), spatial=spatial,
        max_iter=30, tol=0, check_every=1, rng=2, **options,
    )  # fmt: skip
    assert increases(fit.cost).size == 0 and fit.cost[-1] < fit.cost[0]
    assert isinstance(fit.source_model, SparseNMFSource)
    assert fit.image_spectrograms(X).shape == (2, *X.shape)


def test_toy_spatial_model_is_the_gains_model_with_fixed_equal_gains(rng):
    """The user's model gives the numbers of the built-in one it is a special case of."""
    _, X, *_ = planted_convolutive(rng, n_mics=2, n_frames=60)
    options = dict(n_components=2, max_iter=25, tol=0, check_every=1, rng=5)
    toy = fit_mnmf(X, 2, spatial=EqualGainsModel(), **options)
    equal = GainsModel(Q=np.full((2, 2, X.shape[0]), 0.5), fix_Q=True)
    fixed = fit_mnmf(X, 2, spatial=equal, **options)
    np.testing.assert_allclose(toy.cost, fixed.cost, rtol=1e-9)
    np.testing.assert_allclose(toy.W, fixed.W, rtol=1e-8)
    np.testing.assert_allclose(toy.H, fixed.H, rtol=1e-8)
    images = toy.image_spectrograms(X)
    np.testing.assert_allclose(images.sum(axis=0), X, rtol=1e-12, atol=1e-14)
    with pytest.raises(AttributeError, match="has no parameter 'Q'"):
        _ = toy.Q


def test_toy_models_through_mnmf_run_with_a_config_file_only(tmp_path):
    """A model config in a folder of the user's; ``_target_`` names the test's classes."""
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "toy.yaml").write_text(
        "name: toy\n"
        "method: mnmf-mu\n"
        "options:\n"
        "  init: random\n"
        "  max_iter: 5\n"
        "  source_model: {_target_: tests.toy_models.SparseNMFSource, sparsity: 0.2}\n"
        "  spatial: {_target_: tests.toy_models.EqualGainsModel}\n"
    )
    out = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable, "-m", "experiments.run", f"hydra.searchpath=[file://{tmp_path}]",
            "model=toy", "data.duration=1.5", "stft.n_fft=512", "stft.hop=128",
            "output.audio=false", "output.figures=false", f"hydra.run.dir={out}",
        ],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "complete", metrics
    assert metrics["params"]["model.options.source_model._target_"].endswith("SparseNMFSource")
    assert len(metrics["fit"]["cost"]) >= 2 and np.isfinite(metrics["objective"])


# ----------------------------------------------------------------------- options
@pytest.mark.parametrize(
    "options, name",
    [
        ({"spatial": "convolutive", "Q": np.ones((2, 2))}, "Q"),
        ({"spatial": "convolutive", "mixing": "instantaneous"}, "mixing"),
        ({"spatial": "convolutive", "fix_Q": True}, "fix_Q"),
        ({"spatial": "convolutive", "exponent": "heuristic"}, "exponent"),
        ({"spatial": "gains", "A": np.ones((4, 2, 2), complex)}, "A"),
        ({"spatial": "gains", "noise": "anneal"}, "noise"),
        ({"smoothness": 1.0}, "smoothness"),
    ],
)
def test_an_option_no_model_takes_is_an_error_naming_it(options, name):
    X = np.ones((4, 5, 2), complex)
    with pytest.raises(ValueError, match=rf"unknown option\(s\) \['{name}'\]"):
        fit_mnmf(X, 2, **options)


@pytest.mark.parametrize(
    "options, name",
    [
        ({"source_model": SmoothNMFSource(smoothness=1.0), "smoothness": 2.0}, "smoothness"),
        ({"spatial": GainsModel(), "mixing": "instantaneous"}, "mixing"),
    ],
)
def test_an_option_of_an_instance_in_fit_mnmf_is_refused(options, name):
    with pytest.raises(ValueError, match=rf"options \['{name}'\] belong in its constructor"):
        fit_mnmf(np.ones((4, 5, 2), complex), 2, **options)


def test_an_option_of_an_instance_belongs_in_its_constructor():
    V = np.ones((4, 5))
    with pytest.raises(ValueError, match="its options belong in its constructor"):
        mnmf.fit_nmf(V, source_model=NMFSource(2), fix_W=False)
    with pytest.raises(ValueError, match=r"source model 'isnmf' got unknown option\(s\) \['lam'"):
        mnmf.fit_nmf(V, 2, lam=1.0)


class RecordingSmooth(SmoothNMFSource):
    """A smooth source model that records every data model it is checked against."""

    checks: ClassVar[list[tuple[str, float]]] = []

    def check_compatible(self, *, divergence, algorithm, exponent):
        RecordingSmooth.checks.append((algorithm, float(self.smoothness.mean())))
        super().check_compatible(divergence=divergence, algorithm=algorithm, exponent=exponent)


def test_a_start_from_another_model_forwards_the_users_source_model(rng):
    """init="gains" fits the user's own source model (λ and all) in the start model."""
    _, X, *_ = planted_convolutive(rng)
    RecordingSmooth.checks.clear()
    model = RecordingSmooth(smoothness=3.0)
    fit = fit_mnmf(
        X, 2, n_components=2, source_model=model, spatial="convolutive", init="gains",
        init_iter=5, max_iter=5, rng=0,
    )  # fmt: skip
    assert RecordingSmooth.checks == [("mu", 3.0), ("em", 3.0)]  # the start, then the EM
    assert fit.source_model is not model and model.W.size == 0  # the user's object untouched
    with pytest.raises(ValueError, match="init='gains' starts a model from a fit of another"):
        fit_mnmf(X, 2, init="gains")


@pytest.mark.parametrize("init", ["gains", "ilrma"])
def test_a_start_leaves_the_users_instance_as_it_was(rng, init):
    """Start values go to the fit's copy: the instance can start the next fit afresh."""
    _, X, W, *_ = planted_convolutive(rng)
    model = NMFSource(W=W, fix_W=[0, 1])
    options = dict(
        n_components=2, source_model=model, spatial="convolutive", init=init, init_iter=5,
        max_iter=3, rng=0,
    )  # fmt: skip
    first = fit_mnmf(X, 2, **options)
    assert model._start == {} and model.W.size == 0
    again = fit_mnmf(X, 2, **options)
    fresh = fit_mnmf(X, 2, **(options | {"source_model": NMFSource(W=W, fix_W=[0, 1])}))
    np.testing.assert_array_equal(again.H, first.H)
    np.testing.assert_array_equal(fresh.H, first.H)
    np.testing.assert_array_equal(first.W[:, :2], W[:, :2])  # fixed through the start too


def test_given_arrays_are_private_and_read_only(rng):
    dictionary = rng.random((8, 3))
    model = NMFSource(W=dictionary)
    dictionary[:] = 0  # the caller's array changes later: the model does not
    assert model.given_W.sum() > 0 and not model.given_W.flags.writeable
    gains = GainsModel(Q=np.full((2, 2), 0.5))
    with pytest.raises(ValueError):
        gains.given_Q[0, 0] = 1.0


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda X: fit_mnmf(X, 2, spatial="convolutive", noise_start=0.0),
            "noise_start must be > 0",
        ),
        (
            lambda X: fit_mnmf(X, 2, spatial="convolutive", noise_end=1e-3),
            "noise_end and anneal_iter set the schedule",
        ),
        (
            lambda X: fit_mnmf(X, 2, Q=np.array([[1.0, 0.0], [1.0, 0.0]]), mixing="instantaneous"),
            "Q gives a source no gain",
        ),
        (lambda X: fit_mnmf(X, 2, fix_Q=True), "fix_Q=True needs Q"),
        (
            lambda X: fit_mnmf(X, 2, init=mnmf.algorithms.RandomStart(), init_iter=5),
            "init_iter sets the iterations of a named start",
        ),
        (lambda X: fit_mnmf(X, 2, spatial=GainsModel), "pass GainsModel"),
        (lambda X: fit_mnmf(X, 2, spatial=object()), "lacks its methods"),
        (lambda X: fit_mnmf(X, 2, spatial="convolutive", algorithm="mu"), "takes 'em' steps"),
        (
            lambda X: mnmf.fit_nmf(np.abs(X[..., 0]) ** 2, 2, algorithm="em", exponent="mm"),
            "algorithm='em' takes none",
        ),
        (lambda X: mnmf.algorithms.ModelStart("gainz"), "spatial must be one of"),
    ],
)
def test_options_that_would_be_ignored_or_misused_are_errors(rng, call, match):
    _, X, *_ = planted_convolutive(rng)
    with pytest.raises(ValueError, match=match):
        call(X)


def test_a_registered_model_of_your_own_takes_its_options_by_name(rng):
    """A class whose constructor passes **options to its base lists the base's too."""
    from mnmf.registry import accepted_options

    registry: Registry[type] = Registry("source model", argument="source_model")
    registry.register("sparse")(SparseNMFSource)
    assert {"sparsity", "W", "fix_W"} <= accepted_options(SparseNMFSource)
    assert build(registry, "sparse", {"sparsity": 0.2}).sparsity == 0.2
    with pytest.raises(
        ValueError, match=r"source model 'sparse' got unknown option\(s\) \['spars'"
    ):
        build(registry, "sparse", {"spars": 1.0})


def test_one_instance_serves_several_fits(rng):
    V, _, _ = planted_spectrogram(rng, 20, 30, 2)
    model = SmoothNMFSource(smoothness=1.0)  # K comes from each fit
    first = mnmf.fit_nmf(V, 2, source_model=model, max_iter=5, rng=3)
    second = mnmf.fit_nmf(V, 2, source_model=model, max_iter=5, rng=3)
    np.testing.assert_array_equal(first.H, second.H)
    _, X, *_ = planted_convolutive(rng)
    fit = mnmf.fit_mnmf(X, 2, n_components=3, source_model=model, max_iter=2, rng=0)
    assert fit.W.shape[1] == 6 and model.n_components is None


def test_n_components_from_the_fit_or_the_model():
    V = np.random.default_rng(0).random((8, 9))
    with pytest.raises(ValueError, match="n_components is needed"):
        mnmf.fit_nmf(V)
    with pytest.raises(ValueError, match="has n_components=3 but the fit needs 2"):
        mnmf.fit_nmf(V, 2, source_model=NMFSource(3))
    assert mnmf.fit_nmf(V, source_model=NMFSource(W=np.ones((8, 3))), max_iter=1).W.shape == (8, 3)


# ----------------------------------------------------------------------- registries
def test_registry_resolves_names_and_refuses_duplicates():
    registry: Registry[type] = Registry("thing", argument="thing")
    registry.register("a")(dict)
    assert list(registry) == ["a"] and "a" in registry and registry.get("a") is dict
    with pytest.raises(ValueError, match="already registered"):
        registry.register("a")(list)
    with pytest.raises(ValueError, match="thing must be one of 'a'; got 'b'"):
        registry.get("b")
    assert SOURCE_MODELS.name_of(NMFSource(2)) == "isnmf"
    assert SOURCE_MODELS.name_of(object()) is None
    model = build(SOURCE_MODELS, "smooth", {"smoothness": 2.0})
    assert isinstance(model, SmoothNMFSource)
    with pytest.raises(ValueError, match="needs the option"):
        build(SOURCE_MODELS, "smooth", {})
    with pytest.raises(ValueError, match=r"owner got unknown option\(s\) \['b'\]"):
        check_options({"a": 1, "b": 2}, ["a"], owner="owner")


# ----------------------------------------------------------------------- grouping
def test_source_grouping():
    grouping = SourceGrouping.from_counts(3, [1, 2, 1])
    np.testing.assert_array_equal(grouping.labels, [0, 1, 1, 2])
    assert grouping.n_sources == 3 and grouping.n_components == 4
    np.testing.assert_array_equal(grouping.counts, [1, 2, 1])
    values = np.arange(8.0).reshape(2, 4)
    np.testing.assert_array_equal(grouping.sum_per_source(values, axis=1), [[0, 3, 3], [4, 11, 7]])
    np.testing.assert_array_equal(grouping.per_component(np.array([5, 6, 7])), [5, 6, 6, 7])
    np.testing.assert_array_equal(
        grouping.sources_with_all(np.array([True, True, False, True])), [True, False, True]
    )
    assert SourceGrouping.from_groups([[1], [0, 2]], 3).labels.tolist() == [1, 0, 1]
    with pytest.raises(ValueError, match="labels must use every source"):
        SourceGrouping.from_labels([0, 2])
    with pytest.raises(ValueError, match="one count per source"):
        SourceGrouping.from_counts(2, [1, 2, 3])
    with pytest.raises(ValueError):
        grouping.labels[0] = 5  # read-only


def test_one_ratio_mask_rule_for_silence():
    contributions = np.zeros((3, 2, 2))
    contributions[:, 0, 0] = [1.0, 3.0, 0.0]
    masks = mnmf.ratio_masks(contributions)
    np.testing.assert_allclose(masks[:, 0, 0], [0.25, 0.75, 0.0])
    np.testing.assert_allclose(masks[:, 1, 1], 1 / 3)  # silence: an equal share
    np.testing.assert_allclose(masks.sum(axis=0), 1.0)
    np.testing.assert_allclose(mnmf.ratio_masks(np.zeros((2, 3))), 0.5)


# ----------------------------------------------------------------------- results
def test_separate_and_the_fits_images_agree(rng):
    """Regression: the fit's images once used another hop than separate (132 % apart)."""
    mix = rng.standard_normal((6000, 2)) * [1.0, 0.5]
    settings = mnmf.Stft(n_fft=1024)
    for method in ("mnmf-mu", "mnmf-em"):
        separation = mnmf.separate_with_fit(
            mix, n_sources=2, method=method, stft=settings, rng=0, init="random", max_iter=5
        )
        assert separation.fit.stft == settings and separation.stft.hop == 256
        again = separation.fit.images(separation.X, length=mix.shape[0])
        np.testing.assert_allclose(again, separation.images, rtol=1e-10, atol=1e-12)
        images = mnmf.separate(
            mix, n_sources=2, method=method, stft=settings, rng=0, init="random", max_iter=5
        )
        np.testing.assert_array_equal(images, separation.images)  # always one type
    assert isinstance(images, np.ndarray)


def test_results_carry_their_grouping_and_settings(rng):
    _, X, *_ = planted_convolutive(rng)
    fit = fit_mnmf(X, 2, n_components=[1, 3], max_iter=2, rng=0)
    assert fit.grouping.n_sources == 2 and fit.labels.tolist() == [0, 1, 1, 1]
    with pytest.raises(ValueError, match="does not know its STFT settings"):
        fit.images(X)
    assert fit.Q.shape == (2, 2, X.shape[0])


def test_every_public_submodule_is_an_attribute_after_import_mnmf():
    code = (
        "import mnmf\n"
        "names = ['algorithms', 'data', 'divergence', 'engine', 'evaluation', 'features',\n"
        "         'grouping', 'methods', 'peers', 'registry', 'separation', 'sources', 'spatial',\n"
        "         'synthetic', 'simulate', 'datasets', 'io']\n"
        "missing = [n for n in names if not hasattr(mnmf, n)]\n"
        "assert not missing, missing\n"
        "mnmf.synthetic.melody, mnmf.data.synthetic.melody, mnmf.algorithms.starts.PeerStart\n"
        "from mnmf.synthetic import melody\n"
        "import mnmf.io\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
