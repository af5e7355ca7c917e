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
