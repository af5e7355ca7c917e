"""The feature front-end: the STFT settings value, the STFT itself, and filterbanks.

- :class:`Stft` is the one value that says how a signal becomes a spectrogram and back
  (frame size, hop, window). Every function that analyses or resynthesizes takes one,
  and results carry the one they were fitted with, so the analysis and the synthesis
  can never disagree.
- :func:`stft` / :func:`istft`: perfect-reconstruction STFT on
  :class:`scipy.signal.ShortTimeFFT`. A signal is ``(samples,)`` or ``(samples, I)``;
  its STFT is ``(F, N)`` or ``(F, N, I)`` with ``F = n_fft // 2 + 1`` (docs/design.md,
  §2). Frames are zero-padded on both sides so that every sample is covered by the
  full window overlap, which is what makes :func:`istft` invert :func:`stft` exactly.
- :class:`Filterbank`: mel (:func:`librosa.filters.mel`) and log-frequency
  (librosa's constant-Q wavelets, :func:`librosa.filters.wavelet`) bands on the STFT
  grid, to model power spectrograms with fewer, perceptually spaced rows, and
  :meth:`Filterbank.to_stft` to bring a per-band quantity (a mask, a gain) back to the
  STFT grid.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.signal import ShortTimeFFT, get_window

from mnmf._validation import as_float_array, check_finite, finite_real, positive_int
from mnmf.registry import Registry, check_options, named_options

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
    hop: int | None = None,
    window: str | ArrayLike = "sine",
) -> NDArray[np.complexfloating]:
    """Complex STFT of a mono or multichannel signal.

    Parameters
    ----------
    x : array, shape (samples,) or (samples, I)
        Time-domain signal, one column per microphone.
    n_fft : int
        Frame length and FFT size; ``F = n_fft // 2 + 1``.
    hop : int, optional
        Frame shift in samples; ``n_fft // 4`` (75 % overlap) by default, as :class:`Stft`.
    window : str or array of shape (n_fft,)
        A :func:`scipy.signal.get_window` name (``"sine"`` is the sine window) or samples.

    Returns
    -------
    X : complex array, shape (F, N) or (F, N, I)
        complex64 for float32 input, complex128 otherwise.
    """
    signal = as_float_array(x, name="x", ndim=(1, 2))
    check_finite(signal, name="x")
    transform = _transform(window, n_fft, _default_hop(n_fft, hop))
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
    hop: int | None = None,
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
    transform = _transform(window, n_fft, _default_hop(n_fft, hop))
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


def _default_hop(n_fft: object, hop: int | None) -> object:
    """The one default hop: a quarter of the frame (75 % overlap)."""
    if hop is not None:
        return hop
    return n_fft // 4 if isinstance(n_fft, int | np.integer) and n_fft >= 4 else n_fft


@dataclass(frozen=True)
class Stft:
    """How signals become spectrograms and back: frame size, hop and window.

    One value of this type goes everywhere an STFT is taken or inverted — separation
    methods, fitted models' results (``result.stft``), figures, the Hydra layer — so the
    analysis and the synthesis of one experiment always agree.

    Parameters
    ----------
    n_fft : int
        Frame length and FFT size (``F = n_fft // 2 + 1`` frequencies).
    hop : int, optional
        Frame shift in samples; ``n_fft // 4`` by default (75 % overlap).
    window : str
        A :func:`scipy.signal.get_window` name; ``"sine"`` (default) is the sine window,
        whose square sums to a constant at 50 % or more overlap.

    Examples
    --------
    >>> import numpy as np, mnmf
    >>> settings = mnmf.Stft(n_fft=1024)
    >>> settings.hop
    256
    >>> x = np.random.default_rng(0).standard_normal((8000, 2))
    >>> X = settings.analyze(x)
    >>> X.shape[0] == settings.n_freqs
    True
    >>> bool(np.allclose(settings.synthesize(X, length=8000), x))
    True
    """

    n_fft: int = 2048
    hop: int | None = None
    window: str = "sine"

    def __post_init__(self) -> None:
        n_fft = positive_int(self.n_fft, name="n_fft", minimum=2)
        hop = positive_int(_default_hop(n_fft, self.hop), name="hop")
        if not isinstance(self.window, str):
            raise ValueError(f"window must be a scipy window name, got {self.window!r}")
        object.__setattr__(self, "n_fft", n_fft)
        object.__setattr__(self, "hop", hop)
        _transform(self.window, n_fft, hop)  # refuses a hop too large, an unknown window

    @property
    def n_freqs(self) -> int:
        """F = n_fft // 2 + 1."""
        return self.n_fft // 2 + 1

    def analyze(self, x: ArrayLike) -> NDArray[np.complexfloating]:
        """:func:`stft` of ``x`` (samples[, I]) with these settings: (F, N[, I])."""
        return stft(x, n_fft=self.n_fft, hop=self.hop, window=self.window)

    def synthesize(self, X: ArrayLike, *, length: int | None = None) -> NDArray[np.floating]:
        """:func:`istft` of ``X`` (F, N[, I]) with these settings: (samples[, I])."""
        return istft(X, n_fft=self.n_fft, hop=self.hop, window=self.window, length=length)

    def frequencies(self, fs: float) -> NDArray[np.float64]:
        """Centre frequency of every STFT row in Hz, shape (F,)."""
        return np.arange(self.n_freqs) * (float(fs) / self.n_fft)

    def frame_seconds(self, fs: float) -> float:
        """Seconds between two frames."""
        return self.hop / float(fs)


@dataclass(frozen=True, eq=False)
class Filterbank:
    """Bands of a power spectrogram: ``B = weights @ V`` maps (F, …) rows to (n_bands, …).

    Build one with :meth:`mel` or :meth:`log`. A model fitted on band powers (e.g. an
    NMF of a mel spectrogram) gives per-band quantities; :meth:`to_stft` maps them back
    to the STFT grid where a mask must be applied to the STFT itself.

    Attributes
    ----------
    weights : array, shape (n_bands, F)
        Non-negative weight of every STFT bin in every band.
    center_frequencies : array, shape (n_bands,)
        Centre of every band in Hz.
    kind : {"mel", "log"}
    """

    weights: NDArray[np.float64]
    center_frequencies: NDArray[np.float64]
    kind: str
    _to_stft: NDArray[np.float64] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        weights = np.asarray(self.weights, dtype=np.float64)
        weights.setflags(write=False)
        object.__setattr__(self, "weights", weights)
        # Back to the STFT grid: each bin takes the weighted mean of the bands that cover
        # it; a bin that no band covers (outside [fmin, fmax]) takes its nearest band.
        coverage = weights.sum(axis=0)  # (F,)
        back = np.where(coverage > 0, weights / np.where(coverage > 0, coverage, 1.0), 0.0).T
        uncovered = np.flatnonzero(coverage <= 0)
        if uncovered.size:
            bins = np.arange(weights.shape[1])
            peaks = np.argmax(weights, axis=1)  # the bin where each band peaks
            nearest = np.abs(bins[uncovered, None] - peaks[None, :]).argmin(axis=1)
            back[uncovered, nearest] = 1.0
        back.setflags(write=False)
        object.__setattr__(self, "_to_stft", back)

    @property
    def n_bands(self) -> int:
        return int(self.weights.shape[0])

    @classmethod
    def mel(
        cls,
        *,
        fs: float,
        stft: Stft,
        n_bands: int = 128,
        fmin: float = 0.0,
        fmax: float | None = None,
    ) -> Filterbank:
        """Triangular mel bands (:func:`librosa.filters.mel`, Slaney scale, area-normalized).

        Parameters
        ----------
        fs : float
            Sample rate of the analysed signals.
        stft : Stft
            The STFT settings whose grid the bands sit on.
        n_bands : int
            Number of mel bands.
        fmin, fmax : float
            Lowest and highest frequency covered (Hz); ``fmax`` defaults to ``fs / 2``.
        """
        import librosa

        fs, fmin, fmax = _band_limits(fs, fmin, fmax)
        n_bands = positive_int(n_bands, name="n_bands")
        with warnings.catch_warnings():  # empty bands: refused below, with the settings named
            warnings.simplefilter("ignore", UserWarning)
            weights = librosa.filters.mel(
                sr=fs, n_fft=stft.n_fft, n_mels=n_bands, fmin=fmin, fmax=fmax, dtype=np.float64
            )
        empty = np.flatnonzero(weights.sum(axis=1) <= 0)
        if empty.size:
            raise ValueError(
                f"n_bands={n_bands} is too many for n_fft={stft.n_fft} between {fmin:g} and "
                f"{fmax:g} Hz: bands {empty.tolist()} cover no STFT bin"
            )
        centers = librosa.mel_frequencies(n_bands + 2, fmin=fmin, fmax=fmax)[1:-1]
        return cls(weights, np.asarray(centers, dtype=np.float64), "mel")

    @classmethod
    def log(
        cls,
        *,
        fs: float,
        stft: Stft,
        bins_per_octave: int = 12,
        fmin: float = 32.70319566257483,
        fmax: float | None = None,
    ) -> Filterbank:
        """Log-frequency (constant-Q) bands: librosa's CQT filters, measured on the STFT grid.

        Band b is centred at ``fmin · 2^(b / bins_per_octave)`` (up to ``fmax``, default
        ``fs / 2`` less half a band) and weighs STFT bin k by the energy of the b-th
        constant-Q filter (:func:`librosa.filters.wavelet`, Hann window, one cycle per
        band) inside that bin's frequency cell, then each band is normalized to unit sum
        (band power = weighted mean power). Bands narrower than an STFT bin — low
        frequencies with a short frame — take the bins their filter falls in, so
        neighbouring low bands may repeat the same bins: the STFT cannot resolve them.

        Parameters
        ----------
        fs : float
        stft : Stft
        bins_per_octave : int
        fmin, fmax : float
            Centre of the first band; highest frequency covered (Hz).
        """
        import librosa

        fs, fmin, fmax = _band_limits(fs, fmin, fmax)
        if fmin <= 0:
            raise ValueError(f"fmin must be > 0 for log-frequency bands, got {fmin}")
        bins_per_octave = positive_int(bins_per_octave, name="bins_per_octave")
        half_band = 2 ** (0.5 / bins_per_octave)
        n_bands = int(np.floor(bins_per_octave * np.log2(fmax / half_band / fmin))) + 1
        if n_bands < 1:
            raise ValueError(f"no log band fits between fmin={fmin:g} and fmax={fmax:g} Hz")
        centers = librosa.cqt_frequencies(n_bands, fmin=fmin, bins_per_octave=bins_per_octave)
        filters, _ = librosa.filters.wavelet(
            freqs=centers, sr=fs, window="hann", pad_fft=True, norm=1, dtype=np.complex128
        )
        # Responses on a grid `oversample` times finer than the STFT's, summed over each
        # STFT bin's cell [k − ½, k + ½) (bin units): the filter's energy in that bin.
        oversample = max(1, int(np.ceil(filters.shape[1] / stft.n_fft)))
        fine = np.abs(np.fft.fft(filters, n=stft.n_fft * oversample, axis=1)) ** 2
        fine = np.roll(fine, oversample // 2, axis=1)[:, : stft.n_fft * oversample]
        cells = fine.reshape(n_bands, stft.n_fft, oversample).sum(axis=2)[:, : stft.n_freqs]
        weights = cells / np.maximum(cells.sum(axis=1, keepdims=True), np.finfo(float).tiny)
        return cls(weights, np.asarray(centers, dtype=np.float64), "log")

    def apply(self, V: ArrayLike) -> NDArray[np.floating]:
        """Band powers of a power spectrogram V (F, …) → (n_bands, …), V's float dtype."""
        power = as_float_array(V, name="V", ndim=range(1, 5))
        if power.shape[0] != self.weights.shape[1]:
            raise ValueError(
                f"V has {power.shape[0]} frequencies but the filterbank expects "
                f"{self.weights.shape[1]}"
            )
        weights = self.weights.astype(power.dtype, copy=False)
        return np.tensordot(weights, power, axes=(1, 0))

    def to_stft(self, values: ArrayLike) -> NDArray[np.floating]:
        """A per-band quantity (n_bands, …) on the STFT grid (F, …).

        Each STFT bin gets the mean of the bands that cover it, weighted by their
        weights there (bins outside every band take the nearest band), so a mask in
        [0, 1] that sums to one over sources stays so.
        """
        array = np.asarray(values)
        if array.shape[0] != self.n_bands:
            raise ValueError(
                f"values must have n_bands={self.n_bands} rows, got shape {array.shape}"
            )
        back = self._to_stft.astype(array.dtype if array.dtype.kind == "f" else np.float64)
        return np.tensordot(back, array, axes=(1, 0))


#: Filterbank constructors by name (``frequency_scale="mel"``); each takes ``fs``, ``stft``
#: and its own options.
FILTERBANKS: Registry = Registry("filterbank", argument="frequency_scale")
FILTERBANKS.register("mel")(Filterbank.mel)
FILTERBANKS.register("log")(Filterbank.log)


def filterbank(kind: str, *, fs: float, stft: Stft, **options: object) -> Filterbank:
    """The filterbank named ``kind`` ("mel" or "log") with its options, checked."""
    factory = FILTERBANKS.get(kind)
    check_options(
        options, named_options(factory, skip=("fs", "stft")), owner=f"filterbank {kind!r}"
    )
    return factory(fs=fs, stft=stft, **options)


def _band_limits(fs: object, fmin: object, fmax: object) -> tuple[float, float, float]:
    rate = finite_real(fs, name="fs")
    if rate <= 0:
        raise ValueError(f"fs must be > 0, got {rate}")
    low = finite_real(fmin, name="fmin", minimum=0.0)
    high = rate / 2 if fmax is None else finite_real(fmax, name="fmax")
    if not low < high <= rate / 2:
        raise ValueError(f"need 0 <= fmin < fmax <= fs / 2, got fmin={low}, fmax={high}")
    return rate, low, high
