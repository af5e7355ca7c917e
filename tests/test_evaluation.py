import warnings

import numpy as np
import pytest
from mir_eval.separation import bss_eval_images, bss_eval_sources

from mnmf import evaluate
from mnmf.data.synthetic import synthetic_sources

FS = 8000


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


def test_images_mode_equals_mir_eval(scene):
    images, estimates = scene
    result = evaluate(estimates, images, mode="images")
    sdr, isr, sir, sar, perm = direct(bss_eval_images, images, estimates)
    for name, value in zip(("SDR", "ISR", "SIR", "SAR"), (sdr, isr, sir, sar), strict=True):
        np.testing.assert_array_equal(result.scores[name], value)
    np.testing.assert_array_equal(result.permutation, perm)
    np.testing.assert_array_equal(result.permutation, [1, 0])


def test_sources_mode_equals_mir_eval_on_a_channel(scene):
    images, estimates = scene
    result = evaluate(estimates, images, mode="sources", reference_channel=1)
    sdr, sir, sar, perm = direct(bss_eval_sources, images[..., 1], estimates[..., 1])
    np.testing.assert_array_equal(result.scores["SDR"], sdr)
    np.testing.assert_array_equal(result.scores["SIR"], sir)
    np.testing.assert_array_equal(result.permutation, perm)
    two_d = evaluate(estimates[..., 1], images[..., 1], mode="sources")
    np.testing.assert_array_equal(two_d.scores["SAR"], sar)


@pytest.mark.parametrize("mode", ["images", "sources"])
def test_mixture_as_estimate_improves_nothing(scene, mode):
    images, estimates = scene
    mixture = images.sum(axis=0)
    baseline = evaluate(np.repeat(mixture[None], 2, axis=0), images, mixture=mixture, mode=mode)
    np.testing.assert_allclose(baseline.improvements["ΔSDR"], 0.0, atol=1e-9)
    np.testing.assert_allclose(baseline.improvements["ΔSIR"], 0.0, atol=1e-9)
    result = evaluate(estimates, images, mixture=mixture, mode=mode)
    np.testing.assert_allclose(
        result.improvements["ΔSDR"], result.scores["SDR"] - baseline.scores["SDR"]
    )
    assert result.mean("ΔSDR") > 5  # the leaky estimates are far better than the mixture


def test_tidy_records_and_summary(scene):
    images, estimates = scene
    result = evaluate(estimates, images, mixture=images.sum(axis=0))
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
    assert evaluate(estimates, images).improvements == {}


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda i, e: (i[:1], e[:1]), "at least 2 sources"),
        (lambda i, e: (i, e[:, :-1]), "same shape"),
        (lambda i, e: (i, np.concatenate([e[:1], 0 * e[1:]])), r"estimates \[1\] are all zeros"),
        (lambda i, e: (i, e * np.nan), "NaN"),
    ],
)
def test_bad_input(scene, change, match):
    images, estimates = change(*scene)
    with pytest.raises(ValueError, match=match):
        evaluate(estimates, images)


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
