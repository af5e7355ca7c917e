"""Template descriptors (mnmf.templates): planted spectra whose kind and pitch are known."""

from __future__ import annotations

import numpy as np
import pytest

import mnmf

FS = 22050
N_FFT = 2048
FREQUENCIES = np.arange(N_FFT // 2 + 1) * FS / N_FFT


def _comb(f0: float, amplitudes: np.ndarray, *, floor: float = 1e-6) -> np.ndarray:
    """A power spectrum with Hann-shaped peaks (±1.5 bins) at h·f0."""
    spectrum = np.full(FREQUENCIES.size, floor)
    step = FREQUENCIES[1]
    for h, amplitude in enumerate(amplitudes, start=1):
        distance = np.abs(FREQUENCIES - h * f0) / step
        spectrum += amplitude * np.where(distance < 1.5, np.cos(np.pi * distance / 3) ** 2, 0)
    return spectrum


@pytest.mark.parametrize("f0", [55.0, 110.0, 261.6, 440.0, 880.0])
def test_the_fundamental_of_a_comb_is_found_not_its_sub_or_octave(f0):
    # Piano-like: the upper harmonics fade fast, so f0/2's comb holds nearly all the
    # power too; the tie rule must still give f0.
    comb = _comb(f0, 1.0 / np.arange(1, 11) ** 3)
    features = mnmf.template_features(comb[:, None], FREQUENCIES)
    assert abs(12 * np.log2(features.f0[0] / f0)) < 0.5  # within a quarter-tone
    assert features.harmonicity[0] > 0.6
    assert features.pitched()[0]


def test_noise_and_a_low_bump_are_not_pitched():
    rng = np.random.default_rng(0)
    white = rng.gamma(1.0, size=FREQUENCIES.size)
    bump = 1e-6 + np.exp(-0.5 * ((FREQUENCIES - 80.0) / 60.0) ** 2)  # a bass without pitch
    features = mnmf.template_features(np.stack([white, bump], axis=1), FREQUENCIES)
    # A plain share-on-the-harmonics measure gives the bump 0.74 (at f0 = 40 Hz, ±1 bin
    # around each harmonic covers most low bins); the comb contrast does not.
    assert np.all(np.abs(features.harmonicity) < 0.3)
    assert not features.pitched().any()
    assert features.flatness[0] > 0.5 > features.flatness[1]
    assert features.centroid[1] < 200 < features.centroid[0]


def test_descriptors_do_not_depend_on_the_scale_or_order_of_the_columns():
    W = np.stack([_comb(220.0, 1.0 / np.arange(1, 11)), _comb(330.0, np.ones(10))], axis=1)
    base = mnmf.template_features(W, FREQUENCIES)
    scaled = mnmf.template_features(W[:, ::-1] * np.array([1e-6, 1e4]), FREQUENCIES)
    for name in ("centroid", "flatness", "harmonicity", "f0"):
        np.testing.assert_allclose(getattr(scaled, name), getattr(base, name)[::-1], rtol=1e-9)


def test_silent_columns_give_finite_descriptors():
    W = np.zeros((FREQUENCIES.size, 2))
    W[:, 1] = _comb(220.0, np.ones(10))
    features = mnmf.template_features(W, FREQUENCIES)
    for name in ("centroid", "flatness", "harmonicity", "f0"):
        assert np.all(np.isfinite(getattr(features, name)))
    assert not features.pitched()[0]


@pytest.mark.parametrize(
    ("W", "frequencies", "options", "message"),
    [
        (-np.ones((8, 2)), np.arange(8.0), {}, "W"),
        (np.ones(8), np.arange(8.0), {}, "W"),
        (np.ones((8, 2)), np.arange(7.0), {}, "one entry per row"),
        (np.ones((8, 2)), np.arange(8.0) ** 2, {}, "evenly spaced"),
        (np.ones((8, 2)), np.arange(8.0) + 100.0, {}, "start at 0 Hz"),
        (np.ones((8, 2)), np.arange(8.0), {"f0_range": (100.0, 50.0)}, "f0_range"),
        (np.ones((8, 2)), np.arange(8.0), {"n_harmonics": 0}, "n_harmonics"),
        (np.ones((8, 2)), np.arange(8.0), {"tie": 1.0}, "tie"),
    ],
)
def test_bad_input_names_the_argument(W, frequencies, options, message):
    with pytest.raises(ValueError, match=message):
        mnmf.template_features(W, frequencies, **options)
