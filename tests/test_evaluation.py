import warnings

import numpy as np
import pytest
from mir_eval.separation import bss_eval_images, bss_eval_sources

from mnmf import evaluate
from mnmf.data.synthetic import synthetic_sources
from mnmf.evaluation import score_mixture

FS = 8000
BACKENDS = ["fast", "mir_eval"]
# The fast backend reproduces mir_eval up to rounding; mir_eval's own path exactly.
TOLERANCE_DB = {"fast": 1e-6, "mir_eval": 0.0}


@pytest.fixture
def scene(rng):
    """Two synthetic sources panned onto two mics, and imperfect estimates (swapped)."""
    sources = synthetic_sources(["speech", "music"], fs=FS, duration=1.0, rng=rng)
    gains = np.array([[0.9, 0.4], [0.4, 0.9]])
    images = sources[:, :, None] * gains.T[:, None, :]
    leak = 0.2 * images[::-1] + 0.01 * rng.standard_normal(images.shape)
    estimates = (images + leak)[::-1]  # estimate 0 is source 1
    return images, estimates


def direct(function, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return function(*args)


@pytest.mark.parametrize("backend", BACKENDS)
def test_images_mode_equals_mir_eval(scene, backend):
    images, estimates = scene
    result = evaluate(estimates, images, mode="images", backend=backend)
    sdr, isr, sir, sar, perm = direct(bss_eval_images, images, estimates)
    for name, value in zip(("SDR", "ISR", "SIR", "SAR"), (sdr, isr, sir, sar), strict=True):
        np.testing.assert_allclose(result.scores[name], value, rtol=0, atol=TOLERANCE_DB[backend])
    np.testing.assert_array_equal(result.permutation, perm)
    np.testing.assert_array_equal(result.permutation, [1, 0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_sources_mode_equals_mir_eval_on_a_channel(scene, backend):
    images, estimates = scene
    atol = TOLERANCE_DB[backend]
    result = evaluate(estimates, images, mode="sources", reference_channel=1, backend=backend)
    sdr, sir, sar, perm = direct(bss_eval_sources, images[..., 1], estimates[..., 1])
    np.testing.assert_allclose(result.scores["SDR"], sdr, rtol=0, atol=atol)
    np.testing.assert_allclose(result.scores["SIR"], sir, rtol=0, atol=atol)
    np.testing.assert_array_equal(result.permutation, perm)
    two_d = evaluate(estimates[..., 1], images[..., 1], mode="sources", backend=backend)
    np.testing.assert_allclose(two_d.scores["SAR"], sar, rtol=0, atol=atol)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["images", "sources"])
def test_mixture_as_estimate_improves_nothing(scene, mode, backend):
    images, estimates = scene
    mixture = images.sum(axis=0)
    baseline = evaluate(
        np.repeat(mixture[None], 2, axis=0), images, mixture=mixture, mode=mode, backend=backend
    )
    np.testing.assert_allclose(baseline.improvements["ΔSDR"], 0.0, atol=1e-9)
    np.testing.assert_allclose(baseline.improvements["ΔSIR"], 0.0, atol=1e-9)
    result = evaluate(estimates, images, mixture=mixture, mode=mode, backend=backend)
    np.testing.assert_allclose(
        result.improvements["ΔSDR"], result.scores["SDR"] - baseline.scores["SDR"]
    )
    assert result.mean("ΔSDR") > 5  # the leaky estimates are far better than the mixture


@pytest.mark.parametrize("mode", ["images", "sources"])
def test_mixture_scores_agree_between_backends_and_can_be_passed_in(scene, mode):
    images, estimates = scene
    mixture = images.sum(axis=0) + 1e-3 * np.random.default_rng(1).standard_normal(images.shape[1:])
    fast = score_mixture(images, mixture, mode=mode, reference_channel=1)
    reference = score_mixture(images, mixture, mode=mode, reference_channel=1, backend="mir_eval")
    assert (
        list(fast)
        == list(reference)
        == (["SDR", "ISR", "SIR", "SAR"] if mode == "images" else ["SDR", "SIR", "SAR"])
    )
    for metric, values in reference.items():
        assert fast[metric].shape == (2,)
        np.testing.assert_allclose(fast[metric], values, rtol=0, atol=1e-6)
    computed = evaluate(estimates, images, mixture=mixture, mode=mode, reference_channel=1)
    cached = evaluate(estimates, images, mode=mode, reference_channel=1, mixture_scores=reference)
    for metric, values in reference.items():
        np.testing.assert_allclose(computed.mixture_scores[metric], values, rtol=0, atol=1e-6)
        np.testing.assert_array_equal(cached.mixture_scores[metric], values)
    np.testing.assert_allclose(
        cached.improvements["ΔSDR"], computed.improvements["ΔSDR"], rtol=0, atol=1e-6
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_tidy_records_and_summary(scene, backend):
    images, estimates = scene
    result = evaluate(estimates, images, mixture=images.sum(axis=0), backend=backend)
    rows = result.records()
    assert len(rows) == 2 * 4
    assert {row["metric"] for row in rows} == {"SDR", "ISR", "SIR", "SAR"}
    sdr_rows = [row for row in rows if row["metric"] == "SDR"]
    assert [row["estimate"] for row in sdr_rows] == [1, 0]
    assert sdr_rows[0]["improvement"] == pytest.approx(
        sdr_rows[0]["value"] - sdr_rows[0]["mixture"]
    )
    assert all(row["improvement"] is None for row in rows if row["metric"] in ("ISR", "SAR"))
    summary = result.summary()
    assert summary["ΔSDR"] == pytest.approx(np.mean(result.improvements["ΔSDR"]))
    assert evaluate(estimates, images, backend=backend).improvements == {}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "change, match",
    [
        (lambda i, e: (i[:1], e[:1]), "at least 2 sources"),
        (lambda i, e: (i, e[:, :-1]), "same shape"),
        (lambda i, e: (i, np.concatenate([e[:1], 0 * e[1:]])), r"estimates \[1\] are all zeros"),
        (lambda i, e: (i, e * np.nan), "NaN"),
    ],
)
def test_bad_input(scene, change, match, backend):
    images, estimates = change(*scene)
    with pytest.raises(ValueError, match=match):
        evaluate(estimates, images, backend=backend)


def test_bad_options(scene):
    images, estimates = scene
    with pytest.raises(ValueError, match="mode"):
        evaluate(estimates, images, mode="fast")
    with pytest.raises(ValueError, match="mixture"):
        evaluate(estimates, images, mixture=images[0, :-1])
    with pytest.raises(ValueError, match="reference_channel"):
        evaluate(estimates, images, mode="sources", reference_channel=2)
    with pytest.raises(ValueError, match="metric"):
        evaluate(estimates, images).mean("PESQ")
    with pytest.raises(ValueError, match="backend must be one of 'fast', 'mir_eval'"):
        evaluate(estimates, images, backend="matlab")
    with pytest.raises(ValueError, match="backend"):
        score_mixture(images, images.sum(axis=0), backend="matlab")
    with pytest.raises(ValueError, match="mixture is all zeros"):
        evaluate(estimates, images, mixture=np.zeros(images.shape[1:]))


def test_bad_mixture_scores(scene):
    images, estimates = scene
    good = {metric: np.zeros(2) for metric in ("SDR", "ISR", "SIR", "SAR")}
    bad_cases = [
        ({**good, "PESQ": np.zeros(2)}, "exactly the keys"),
        ({m: v for m, v in good.items() if m != "ISR"}, "exactly the keys"),
        ({**good, "SDR": np.zeros(3)}, r"shape \(2,\)"),
        ({**good, "SIR": np.array([0.0, np.nan])}, "NaN"),
        ([("SDR", np.zeros(2))], "dict"),
    ]
    for scores, match in bad_cases:
        with pytest.raises(ValueError, match=match):
            evaluate(estimates, images, mixture_scores=scores)
    with pytest.raises(ValueError, match="exactly the keys"):
        evaluate(estimates, images, mode="sources", mixture_scores=good)
    infinite = {**good, "SAR": np.array([np.inf, 50.0])}  # a mixture in the span: SAR = inf
    result = evaluate(estimates, images, mixture_scores=infinite)
    assert result.mixture_scores["SAR"][0] == np.inf


# ---------------------------------------------------------------- errors near given times
def test_errors_near_times_split_a_planted_error():
    from mnmf import errors_near_times
    from mnmf.data.synthetic import gate_edges

    fs, n = 1000, 10_000
    references = np.zeros((2, n))
    estimates = references.copy()
    estimates[:, :] = 0.01  # everywhere
    edges = gate_edges(duration=n / fs, rates=(np.pi / 2,))  # every 2 s, from 0
    np.testing.assert_allclose(edges, [0.0, 2.0, 4.0, 6.0, 8.0])
    for edge in edges:
        at = int(edge * fs)
        estimates[0, at : at + 20] = 0.5  # source 1 wrong right after each edge
    split = errors_near_times(estimates, references, times=edges, fs=fs, half_width=0.05)
    near = np.zeros(n, dtype=bool)
    for edge in edges:
        near[max(0, int(edge * fs) - 50) : int(edge * fs) + 51] = True
    error = np.abs(estimates - references)
    np.testing.assert_allclose(split["near"], error[:, near].mean(axis=1))
    np.testing.assert_allclose(split["elsewhere"], [0.01, 0.01])
    assert split["ratio"][0] > 10 and split["ratio"][1] == pytest.approx(1.0)
    assert float(split["near_share"]) == pytest.approx(near.mean())
    # (J, samples, I) images: the error is averaged over channels.
    images = errors_near_times(
        estimates[..., None].repeat(2, axis=2), references[..., None].repeat(2, axis=2),
        times=edges, fs=fs, half_width=0.05,
    )  # fmt: skip
    np.testing.assert_allclose(images["near"], split["near"])
    with pytest.raises(ValueError, match="same shape"):
        errors_near_times(estimates, references[:1], times=edges, fs=fs, half_width=0.05)


def test_gate_edges_are_where_the_gated_sines_switch():
    from mnmf.data.synthetic import gate_edges, gated_sines

    fs, duration = 8000, 4 * np.pi
    parts = gated_sines(fs=fs, duration=duration, alpha=23.0, beta=31.0)
    edges = gate_edges(duration=duration, rates=(23.0, 31.0))
    on = np.abs(parts) > 0  # the carriers are non-zero almost everywhere the gate is on
    t = np.arange(parts.shape[1]) / fs
    switches = []
    for row in on:
        # a gate's state over 5 ms windows changes only across an edge
        state = np.convolve(row, np.ones(40), mode="same") > 20
        switches.extend(t[np.flatnonzero(np.diff(state.astype(int))) + 1])
    distance = [np.min(np.abs(edges - s)) for s in switches]
    assert max(distance) < 0.004
    assert edges[0] == 0.0 and np.all(np.diff(edges) > 0) and edges[-1] < duration
    assert gate_edges(duration=1.0, rates=(0.0,)).size == 0
