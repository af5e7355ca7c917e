"""The feature front-end: one STFT settings value, mel and log-frequency filterbanks."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

import mnmf
from mnmf.features import Filterbank, Stft


def test_stft_settings_defaults_and_round_trip(rng):
    settings = Stft(n_fft=1024)
    assert settings.hop == 256 and settings.window == "sine" and settings.n_freqs == 513
    assert Stft() == Stft(n_fft=2048, hop=512)  # one default hop everywhere: n_fft // 4
    x = rng.standard_normal((5000, 2))
    X = settings.analyze(x)
    np.testing.assert_array_equal(X, mnmf.stft(x, n_fft=1024, hop=256))
    np.testing.assert_array_equal(mnmf.stft(x, n_fft=1024), X)  # the function's default too
    np.testing.assert_allclose(settings.synthesize(X, length=5000), x, atol=1e-10)
    np.testing.assert_allclose(settings.frequencies(16000)[[0, -1]], [0.0, 8000.0])
    assert settings.frame_seconds(16000) == 256 / 16000


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_fft": 1}, "n_fft must be an integer >= 2"),
        ({"n_fft": 512, "hop": 1024}, "hop must be <= n_fft"),
        ({"n_fft": 512, "hop": 0}, "hop must be an integer >= 1"),
        ({"window": "triangle-ish"}, "window must be a scipy window name"),
        ({"window": np.ones(2048)}, "window must be a scipy window name"),
    ],
)
def test_stft_settings_refuse_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Stft(**kwargs)


def test_mel_filterbank_is_librosas():
    settings = Stft(n_fft=1024)
    bank = Filterbank.mel(fs=16000, stft=settings, n_bands=40, fmin=50.0, fmax=7000.0)
    expected = librosa.filters.mel(
        sr=16000, n_fft=1024, n_mels=40, fmin=50.0, fmax=7000.0, dtype=np.float64
    )
    np.testing.assert_array_equal(bank.weights, expected)
    assert bank.n_bands == 40 and np.all(np.diff(bank.center_frequencies) > 0)
    with pytest.raises(ValueError, match="cover no STFT bin"):
        Filterbank.mel(fs=16000, stft=Stft(n_fft=64), n_bands=128)
    with pytest.raises(ValueError, match="fmin < fmax <= fs / 2"):
        Filterbank.mel(fs=16000, stft=settings, fmax=9000.0)


def test_log_filterbank_bands_sit_at_their_frequencies():
    """Each band's weight peaks at the STFT bin nearest its centre and has unit sum;
    bands are a semitone apart (12 per octave)."""
    settings = Stft(n_fft=4096)
    fs = 16000
    bank = Filterbank.log(fs=fs, stft=settings, fmin=110.0)
    centers = bank.center_frequencies
    np.testing.assert_allclose(centers[12], 220.0, rtol=1e-9)
    np.testing.assert_allclose(bank.weights.sum(axis=1), 1.0)
    bins = settings.frequencies(fs)
    peaks = bins[np.argmax(bank.weights, axis=1)]
    assert np.all(np.abs(peaks - centers) <= fs / settings.n_fft)
    assert centers[-1] * 2 ** (1 / 24) <= fs / 2
    with pytest.raises(ValueError, match="fmin must be > 0"):
        Filterbank.log(fs=fs, stft=settings, fmin=0.0)


@pytest.mark.parametrize("kind", ["mel", "log"])
def test_masks_go_back_to_the_stft_grid(rng, kind):
    """A per-band quantity maps to every STFT bin; masks that sum to one still do."""
    settings = Stft(n_fft=512)
    bank = (
        Filterbank.mel(fs=8000, stft=settings, n_bands=32, fmin=100.0, fmax=3500.0)
        if kind == "mel"
        else Filterbank.log(fs=8000, stft=settings, fmin=200.0)
    )
    band_masks = rng.random((3, bank.n_bands, 7))
    band_masks /= band_masks.sum(axis=0)
    masks = np.moveaxis(bank.to_stft(np.moveaxis(band_masks, 1, 0)), 0, 1)
    assert masks.shape == (3, settings.n_freqs, 7)
    np.testing.assert_allclose(masks.sum(axis=0), 1.0)
    assert masks.min() >= 0
    constant = bank.to_stft(np.full(bank.n_bands, 2.5))
    np.testing.assert_allclose(constant, 2.5)  # bins outside the bands take the nearest
    V = rng.random((settings.n_freqs, 7))
    np.testing.assert_allclose(bank.apply(V), bank.weights @ V)


@pytest.mark.parametrize("scale", ["mel", "log"])
def test_nmf_on_bands_separates_through_masks_on_the_stft(rng, scale):
    mix = rng.standard_normal((8000, 2))
    images = mnmf.separate(
        mix, n_sources=2, method="nmf", fs=8000, stft=Stft(n_fft=512), rng=0,
        frequency_scale=scale, n_bands=40, max_iter=20,
    )  # fmt: skip
    np.testing.assert_allclose(images.sum(axis=0), mix, atol=1e-9)
    with pytest.raises(ValueError, match="needs fs="):
        mnmf.separate(mix, n_sources=2, method="nmf", frequency_scale=scale)
