"""Mel power spectrograms with long analysis windows, for the DJ-mix NMF.

The multi-pass NMF (:mod:`mnmf.djmix.decompose`) analyses the mix and its tracks with
windows of several seconds (``overlap × hop``, up to 32 s). A literal long-window STFT
would need FFTs of millions of points and mel matrices of gigabytes, for a frequency
resolution the mel bands throw away. Instead one short-frame STFT (≈ 93 ms, 75 %
overlap) is taken once per signal, reduced to mel band powers, and every pass pools
those short frames with the long window's power profile (a Welch / Bartlett average):
the band power of a long frame is the window-weighted energy of the short frames it
covers. The pooling is linear and identical for the mix and the tracks, so a track
played unchanged at amplitude ``g`` gives exactly ``g²`` times its own frames.

Frames of a pass are centred at samples ``n · hop`` (``n = 0, 1, …``): frame ``n`` is
time ``n · hop`` seconds, for the mix and for every track.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse
from numpy.typing import NDArray

from mnmf._validation import positive_int
from mnmf.features import Filterbank, Stft

#: Seconds of the short frames pooled into long windows.
SHORT_FRAME_SECONDS = 0.09


@dataclass(frozen=True)
class MelFrontEnd:
    """Short-frame mel analysis shared by the mix and the tracks.

    Parameters
    ----------
    fs : int
        Sample rate of the signals.
    n_mels : int
        Number of mel bands.

    Attributes
    ----------
    n_fft, short_hop : int
        Short-frame FFT size and hop (samples); the FFT size is the power of two at or
        above :data:`SHORT_FRAME_SECONDS`, doubled until no mel band is empty.
    filterbank : Filterbank
        The mel bands on the short STFT grid.
    """

    fs: int
    n_mels: int = 128
    n_fft: int = field(init=False, default=0)
    short_hop: int = field(init=False, default=0)
    filterbank: Filterbank = field(init=False, repr=False, default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        fs = positive_int(self.fs, name="fs")
        n_mels = positive_int(self.n_mels, name="n_mels")
        n_fft = 1 << max(4, int(np.ceil(np.log2(SHORT_FRAME_SECONDS * fs))))
        while True:
            try:
                bank = Filterbank.mel(fs=fs, stft=Stft(n_fft=n_fft), n_bands=n_mels)
                break
            except ValueError:
                if n_fft >= 1 << 16:
                    raise ValueError(f"n_mels={n_mels} is too many mel bands at fs={fs}") from None
                n_fft *= 2
        object.__setattr__(self, "fs", fs)
        object.__setattr__(self, "n_mels", n_mels)
        object.__setattr__(self, "n_fft", n_fft)
        object.__setattr__(self, "short_hop", n_fft // 4)
        object.__setattr__(self, "filterbank", bank)

    def short_mel(
        self, x: NDArray[np.floating], *, pitch: float = 1.0, dtype: type = np.float64
    ) -> NDArray[np.floating]:
        """Mel band powers of short frames centred at ``j · short_hop``.

        Parameters
        ----------
        x : array, shape (samples,)
            A mono signal.
        pitch : float
            Read the bands as if ``x`` were played ``pitch`` times faster with its pitch
            (resampled): band b holds what ``x`` has at its frequencies ``/ pitch``.
        dtype : float64 or float32
            Storage of the result (computed in float64): float32 halves the memory of an
            hour of frames (159 MB in float64 at 22.05 kHz) for a 6e-8 relative rounding.

        Returns
        -------
        array, shape (n_mels, J)
            ``J = ceil(samples / short_hop) + 1`` frames (zero padding at both ends).
        """
        return self.short_mels(x, pitches=(pitch,), dtype=dtype)[0]

    def short_mels(
        self,
        x: NDArray[np.floating],
        *,
        pitches: Sequence[float],
        dtype: type = np.float64,
    ) -> list[NDArray[np.floating]]:
        """:meth:`short_mel` at several pitches, from one STFT of ``x``.

        Returns
        -------
        list of arrays, shape (n_mels, J)
            One per pitch, in order.
        """
        x = np.asarray(x)
        if x.ndim != 1:
            raise ValueError(f"x must be a mono signal of shape (samples,), got {x.shape}")
        n_fft, hop = self.n_fft, self.short_hop
        n_frames = int(np.ceil(x.size / hop)) + 1
        window = np.sin(np.pi * (np.arange(n_fft) + 0.5) / n_fft)
        weights = [
            self.filterbank.weights if pitch == 1.0 else self.shifted_weights(pitch)
            for pitch in pitches
        ]
        # Column-major: long_mel's product reads short.T as a C-contiguous (J, F) array
        # without a copy.
        outs = [np.empty((w.shape[0], n_frames), dtype=dtype, order="F") for w in weights]
        step = 512
        # Frame j covers x[j·hop − n_fft/2, j·hop + n_fft/2) (zeros outside x): each block
        # of frames reads its own zero-padded float64 stretch of x, never a padded copy
        # of all of it (an hour of audio is 635 MB in float64).
        for start in range(0, n_frames, step):
            count = min(step, n_frames - start)
            first = start * hop - n_fft // 2
            stretch = np.zeros((count - 1) * hop + n_fft)
            lo, hi = max(first, 0), min(first + stretch.size, x.size)
            if hi > lo:
                stretch[lo - first : hi - first] = x[lo:hi]
            frames = np.lib.stride_tricks.sliding_window_view(stretch, n_fft)[::hop][:count]
            block = np.fft.rfft(frames * window, axis=1)
            power = (block.real**2 + block.imag**2).T
            for w, out in zip(weights, outs, strict=True):
                out[:, start : start + count] = w @ power
        return outs

    def shifted_weights(self, pitch: float) -> NDArray[np.float64]:
        """Mel weights (n_mels, n_fft // 2 + 1) for content moved up by ``pitch``.

        Bin k of the signal (frequency ``f_k``) sounds at ``pitch · f_k``: the same mel
        bands evaluated at the moved frequencies (:func:`librosa.filters.mel` with the
        sample rate scaled by ``pitch``, the band edges kept).
        """
        import warnings

        import librosa

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return librosa.filters.mel(
                sr=self.fs * pitch,
                n_fft=self.n_fft,
                n_mels=self.n_mels,
                fmin=0.0,
                fmax=self.fs / 2,
                dtype=np.float64,
            )

    def pooling(
        self, n_short: int, *, hop: int, window: int, n_frames: int
    ) -> scipy.sparse.csr_matrix:
        """The (J, N) matrix that pools short frames into long frames.

        Long frame ``n`` is centred at sample ``n · hop`` and weighs the short frame
        centred at ``j · short_hop`` by ``cos²(π (j · short_hop − n · hop) / window)``
        inside the window (a Hann power profile).
        """
        rows, cols, values = [], [], []
        half = window / 2
        short = self.short_hop
        for n in range(n_frames):
            centre = n * hop
            first = max(0, int(np.ceil((centre - half) / short)))
            last = min(n_short - 1, int(np.floor((centre + half) / short)))
            if last < first:
                continue
            j = np.arange(first, last + 1)
            weight = np.cos(np.pi * (j * short - centre) / window) ** 2
            rows.append(j)
            cols.append(np.full(j.size, n))
            values.append(weight)
        if not rows:
            return scipy.sparse.csr_matrix((n_short, n_frames))
        return scipy.sparse.csr_matrix(
            (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
            shape=(n_short, n_frames),
        )

    def long_mel(
        self, short: NDArray[np.float64], n_samples: int, *, hop: int, window: int
    ) -> NDArray[np.float64]:
        """Mel powers of long frames (``window`` samples, centred at ``n · hop``).

        Parameters
        ----------
        short : array, shape (n_mels, J)
            :meth:`short_mel` of the signal.
        n_samples : int
            Length of the signal; frames are centred at ``0, hop, …`` up to the last
            sample.
        hop, window : int
            Long-frame hop and window length in samples.

        Returns
        -------
        array, shape (n_mels, N)
            ``N = (n_samples − 1) // hop + 1``.
        """
        n_frames = (max(n_samples, 1) - 1) // hop + 1
        pool = self.pooling(short.shape[1], hop=hop, window=window, n_frames=n_frames)
        by_frame = scipy.sparse.csr_array(pool.T)  # (N, J): row n pools long frame n
        short_t = short.T  # (J, F), C-contiguous for column-major ``short``
        out = np.empty((n_frames, short.shape[0]))
        step = 1024
        # Blocks of long frames, each reading only its run of short frames, widened to
        # float64 there (float32 ``short`` is never copied whole); the same sums, in the
        # same order, as one product.
        for start in range(0, n_frames, step):
            block = by_frame[start : start + step]
            if block.nnz == 0:
                out[start : start + step] = 0.0
                continue
            first, last = int(block.indices.min()), int(block.indices.max()) + 1
            local = scipy.sparse.csr_array(
                (block.data, block.indices - first, block.indptr),
                shape=(block.shape[0], last - first),
            )
            out[start : start + step] = local @ np.asarray(short_t[first:last], dtype=np.float64)
        return out.T
