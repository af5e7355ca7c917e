import numpy as np
import pytest

import mnmf


@pytest.mark.parametrize("n_fft, hop", [(2048, 512), (512, 128), (256, 128), (1024, 256)])
@pytest.mark.parametrize("channels", [None, 1, 3])
def test_round_trip_is_exact_and_restores_length(rng, n_fft, hop, channels):
    length = 9001  # not a multiple of the hop
    shape = (length,) if channels is None else (length, channels)
    x = rng.standard_normal(shape)
    X = mnmf.stft(x, n_fft=n_fft, hop=hop)
    assert X.shape[0] == n_fft // 2 + 1
    assert X.ndim == x.ndim + 1
    y = mnmf.istft(X, n_fft=n_fft, hop=hop, length=length)
    assert y.shape == x.shape
    assert np.max(np.abs(y - x)) < 1e-10


def test_axis_order_is_freq_frames_mics(rng):
    x = rng.standard_normal((4000, 2))
    X = mnmf.stft(x, n_fft=256, hop=64)
    np.testing.assert_allclose(X[..., 1], mnmf.stft(x[:, 1], n_fft=256, hop=64))


def test_a_sine_peaks_in_its_bin():
    fs, n_fft = 8000, 512
    t = np.arange(fs) / fs
    X = mnmf.stft(np.sin(2 * np.pi * 1000 * t), n_fft=n_fft, hop=128)
    peak_bin = np.argmax(np.abs(X[:, X.shape[1] // 2]))
    assert peak_bin == round(1000 * n_fft / fs)


def test_float32_stays_single_precision(rng):
    x = rng.standard_normal(3000).astype(np.float32)
    X = mnmf.stft(x, n_fft=256, hop=64)
    assert X.dtype == np.complex64
    y = mnmf.istft(X, n_fft=256, hop=64, length=3000)
    assert y.dtype == np.float32
    assert np.max(np.abs(y - x)) < 1e-5


def test_custom_window_array(rng):
    x = rng.standard_normal(2000)
    window = np.hanning(256 + 1)[:-1]
    X = mnmf.stft(x, n_fft=256, hop=64, window=window)
    y = mnmf.istft(X, n_fft=256, hop=64, window=window, length=2000)
    assert np.max(np.abs(y - x)) < 1e-10


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_fft": 0}, "n_fft"),
        ({"hop": 0}, "hop"),
        ({"n_fft": 256, "hop": 512}, "hop"),
        ({"window": "no-such-window"}, "window"),
        ({"window": np.ones(10), "n_fft": 256, "hop": 64}, "window"),
    ],
)
def test_bad_parameters_are_named(rng, kwargs, match):
    with pytest.raises(ValueError, match=match):
        mnmf.stft(rng.standard_normal(4096), **kwargs)


def test_bad_signals_are_named():
    with pytest.raises(ValueError, match="x"):
        mnmf.stft(np.zeros((10, 2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        mnmf.stft(np.array([0.0, np.nan] * 2000))
    with pytest.raises(ValueError, match="X"):
        mnmf.istft(np.zeros(10, dtype=complex))
    with pytest.raises(ValueError, match="frequencies"):
        mnmf.istft(np.zeros((10, 5), dtype=complex), n_fft=256, hop=64)
    with pytest.raises(ValueError, match="length"):
        mnmf.istft(mnmf.stft(np.zeros(1000), n_fft=256, hop=64), n_fft=256, hop=64, length=10**6)
