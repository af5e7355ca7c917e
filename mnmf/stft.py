"""Short-time Fourier transform with perfect reconstruction, on :class:`scipy.signal.ShortTimeFFT`.

Axis conventions follow DESIGN.md: a signal is ``(samples,)`` or ``(samples, I)``; its
STFT is ``(F, N)`` or ``(F, N, I)`` with ``F = n_fft // 2 + 1`` frequencies and ``N``
frames. Frames are zero-padded on both sides so that every sample is covered by the
full window overlap, which is what makes :func:`istft` invert :func:`stft` exactly.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.signal import ShortTimeFFT, get_window

from mnmf._validation import as_float_array, check_finite, positive_int

# scipy's "cosine" window is the sine window sin(π(n + ½)/M) of the audio literature.
_WINDOW_ALIASES = {"sine": "cosine"}


@lru_cache(maxsize=32)
def _named_transform(window: str, n_fft: int, hop: int) -> ShortTimeFFT:
    try:
        samples = get_window(_WINDOW_ALIASES.get(window, window), n_fft, fftbins=True)
    except ValueError as error:
        raise ValueError(
            f"window must be a scipy window name (e.g. 'sine', 'hann') or an array; "
            f"{window!r} is not known to scipy.signal.get_window ({error})"
        ) from None
    return _build_transform(samples, n_fft, hop)


def _build_transform(samples: NDArray, n_fft: int, hop: int) -> ShortTimeFFT:
    transform = ShortTimeFFT(samples, hop=hop, fs=1.0, fft_mode="onesided", mfft=n_fft)
    # The canonical dual window exists only if the windows overlap enough to cover
    # every sample; check it once here rather than returning a silent wrong inverse.
    if not np.all(np.isfinite(transform.dual_win)):
        raise ValueError(f"hop={hop} is too large for perfect reconstruction with this window")
    return transform


def _transform(window: str | ArrayLike, n_fft: object, hop: object) -> ShortTimeFFT:
    n_fft = positive_int(n_fft, name="n_fft", minimum=2)
    hop = positive_int(hop, name="hop")
    if hop > n_fft:
        raise ValueError(f"hop must be <= n_fft for perfect reconstruction; got {hop} > {n_fft}")
    if isinstance(window, str):
        return _named_transform(window, n_fft, hop)
    samples = as_float_array(window, name="window", ndim=1)
    if samples.shape[0] != n_fft:
        raise ValueError(f"window must have n_fft={n_fft} samples, got {samples.shape[0]}")
    return _build_transform(samples.astype(np.float64), n_fft, hop)


def stft(
    x: ArrayLike,
    *,
    n_fft: int = 2048,
    hop: int = 512,
    window: str | ArrayLike = "sine",
) -> NDArray[np.complexfloating]:
    """Complex STFT of a mono or multichannel signal.

    Parameters
    ----------
    x : array, shape (samples,) or (samples, I)
        Time-domain signal, one column per microphone.
    n_fft : int
        Frame length and FFT size; ``F = n_fft // 2 + 1``.
    hop : int
        Frame shift in samples (``n_fft // 4`` gives 75 % overlap).
    window : str or array of shape (n_fft,)
        A :func:`scipy.signal.get_window` name (``"sine"`` is the sine window) or samples.

    Returns
    -------
    X : complex array, shape (F, N) or (F, N, I)
        complex64 for float32 input, complex128 otherwise.
    """
    signal = as_float_array(x, name="x", ndim=(1, 2))
    check_finite(signal, name="x")
    transform = _transform(window, n_fft, hop)
    complex_dtype = np.complex64 if signal.dtype == np.float32 else np.complex128
    if signal.ndim == 1:
        return transform.stft(signal).astype(complex_dtype, copy=False)
    # (samples, I) -> (I, F, N) -> (F, N, I)
    spectra = transform.stft(np.ascontiguousarray(signal.T), axis=-1)
    return np.moveaxis(spectra, 0, -1).astype(complex_dtype, copy=False)


def istft(
    X: ArrayLike,
    *,
    n_fft: int = 2048,
    hop: int = 512,
    window: str | ArrayLike = "sine",
    length: int | None = None,
) -> NDArray[np.floating]:
    """Inverse of :func:`stft` (canonical dual window, exact up to rounding).

    Parameters
    ----------
    X : complex array, shape (F, N) or (F, N, I)
    n_fft, hop, window
        The analysis parameters used by :func:`stft`.
    length : int, optional
        Number of samples to return; pass the original signal's length to restore it
        exactly. By default every sample the frames cover is returned.

    Returns
    -------
    x : array, shape (samples,) or (samples, I)
        float32 for complex64 input, float64 otherwise.
    """
    spectra = np.asarray(X)
    if spectra.ndim not in (2, 3):
        raise ValueError(f"X must be (F, N) or (F, N, I), got an array of shape {spectra.shape}")
    transform = _transform(window, n_fft, hop)
    if spectra.shape[0] != transform.f_pts:
        raise ValueError(
            f"X has {spectra.shape[0]} frequencies but n_fft={transform.mfft} implies "
            f"{transform.f_pts}"
        )
    if spectra.shape[1] < 1:
        raise ValueError(f"X must have at least one frame, got shape {spectra.shape}")
    if length is not None:
        length = positive_int(length, name="length")
    real_dtype = np.float32 if spectra.dtype == np.complex64 else np.float64
    frames_last = spectra if spectra.ndim == 2 else np.moveaxis(spectra, -1, 0)
    try:
        signal = transform.istft(frames_last, k1=length)  # (samples,) or (I, samples)
    except ValueError as error:
        raise ValueError(
            f"length={length} is more than the {spectra.shape[1]} frames of X can restore ({error})"
        ) from None
    if spectra.ndim == 3:
        signal = np.ascontiguousarray(signal.T)
    return signal.astype(real_dtype, copy=False)
