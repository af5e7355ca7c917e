"""Baselines for DJ-mix transcription, scored by the same harness as the NMF.

:func:`dtw_transcription` is the classic alignment baseline (UnmixDB's, Schwarz & Fourer
2018; Kim & Choi 2020): align each reference track to the mix on spectral features, read
the track's position at each mix time off the alignment path, then estimate the gains by
non-negative least squares of the mix's mel power on the aligned tracks' mel power.

The alignment is a *local* one (Smith–Waterman-like, open begin and end on both the
track and the mix): a DJ plays only a part of each track, so matching the whole track
(plain subsequence DTW) would force the unplayed parts onto a few mix frames. The best
contiguous segment is kept, with step sizes (1, 1), (2, 1) and (1, 2) (speeds between
0.5 and 2 track seconds per mix second), which makes the recursion vectorizable over
mix frames; the path is then smoothed by a moving straight-line fit (1 s) into the
position curve, extrapolated 2 s on each side for the quiet ends of fades. The gains
come from a per-frame NNLS on the mel power summed into 16 band groups (coarse bands
tolerate the pitch shift of a track played faster, turntable-style). Limitations: one
contiguous segment per track (jumps and loops are not followed), a track heard twice is
found once, and chroma features fail on a pitch-shifted (sped-up) track.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.ndimage import median_filter
from scipy.optimize import nnls
from scipy.signal import savgol_filter

from mnmf._validation import check_choice, finite_real, positive_int
from mnmf.djmix.decompose import _mono, _references
from mnmf.djmix.timeline import TrackTimeline, derive_parameters

FEATURES = ("mel", "chroma")

#: Power floor of the log-mel features, re the signal's loudest bin (−80 dB).
_LOG_FLOOR = 1e-8


def dtw_transcription(
    mix: ArrayLike,
    tracks: Sequence[Any],
    fs: int,
    *,
    features: str = "mel",
    hop: float = 0.05,
    n_mels: int = 64,
    min_gain_db: float = -40.0,
    threshold: float = 0.9,
    min_duration: float = 2.0,
    extend: float = 2.0,
    path_smoothing: float = 1.0,
    gain_bands: int = 16,
    smooth: int = 5,
) -> list[TrackTimeline]:
    """Each track's gain and position in a mix, by local alignment and least squares.

    Parameters
    ----------
    mix : array, shape (samples,) or (samples, channels)
        The mix (channels are averaged).
    tracks : sequence of (name, audio, fs) tuples or objects with ``name``, ``audio``
        and ``fs``
        The reference tracks; ``audio`` of shape (samples,) or (samples, channels)
        (averaged), resampled to ``fs`` when its rate differs.
    fs : int
        Sample rate of ``mix`` (Hz).
    features : {"mel", "chroma"}
        Alignment features: log mel power (``n_mels`` bands) or chroma, each band
        standardized by the mix's mean and deviation (the spectral tilt that all frames
        share removed), then each frame centred and unit-normalized, so that the
        similarity is a correlation, blind to the gain.
    hop : float
        Frame hop (s) of every feature; the returned timelines' grid (rounded to whole
        samples).
    n_mels : int
        Mel bands (alignment with ``"mel"``, and the gain fit always).
    min_gain_db : float
        A track is audible where its estimated gain is above this (dB re its peak):
        ``silence_db`` of :func:`~mnmf.djmix.timeline.derive_parameters`.
    threshold : float
        Local alignment reward: the similarity of a track frame to a mix frame minus its
        ``threshold`` quantile over all (track, mix) frame pairs; the path extends while
        it gains (see :func:`local_alignment`).
    min_duration : float
        An alignment shorter than this (mix s) means the track is absent.
    extend : float
        Seconds by which the aligned span is extrapolated (at its median speed) on each
        side before the gain fit, to catch the quiet ends of fades (the gain fit then
        decides whether the track is heard there).
    path_smoothing : float
        Seconds of the moving straight-line fit that smooths the alignment path (whose
        steps are whole frames) into a position curve; 0: none.
    gain_bands : int
        The gain fit sums the mel bands into this many contiguous groups (all
        ``n_mels`` bands when larger): coarser bands are less sensitive to the pitch
        shift of a track played at another speed, finer ones tell the tracks apart
        better in a crossfade.
    smooth : int
        Median filter length (frames) of the gains (1: none).

    Returns
    -------
    list of TrackTimeline
        In the order of ``tracks``, on the grid ``n · hop_samples / fs``; tracks not found
        are ``present=False`` with zero gain.

    Raises
    ------
    ValueError
        Naming the argument: a mix or track that is empty, not finite or of a bad
        shape, an unknown ``features``, a non-positive ``hop``, and so on.
    """
    import librosa

    fs = positive_int(fs, name="fs")
    check_choice(features, name="features", choices=FEATURES)
    hop = finite_real(hop, name="hop")
    if hop <= 0:
        raise ValueError(f"hop must be positive, got {hop}")
    n_mels = positive_int(n_mels, name="n_mels")
    min_gain_db = finite_real(min_gain_db, name="min_gain_db")
    threshold = finite_real(threshold, name="threshold")
    min_duration = finite_real(min_duration, name="min_duration", minimum=0.0)
    extend = finite_real(extend, name="extend", minimum=0.0)
    path_smoothing = finite_real(path_smoothing, name="path_smoothing", minimum=0.0)
    smooth = positive_int(smooth, name="smooth")
    gain_bands = positive_int(gain_bands, name="gain_bands")
    if not 0 <= threshold < 1:
        raise ValueError(f"threshold must lie in [0, 1), got {threshold}")
    signal = np.asarray(_mono(mix, name="mix"), dtype=np.float64)
    references = [
        (reference.name, np.asarray(reference.audio, dtype=np.float64))
        for reference in _references(tracks, fs)
    ]

    hop_length = max(1, round(hop * fs))
    frame = hop_length / fs
    n_fft = 2 ** max(5, round(math.log2(2 * hop_length)))
    if signal.size < n_fft:
        raise ValueError(f"mix must hold at least {n_fft} samples, got {signal.size}")

    def power(audio: NDArray) -> NDArray:
        return librosa.feature.melspectrogram(
            y=audio, sr=fs, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, power=2.0
        )

    def raw(audio: NDArray, mel: NDArray) -> NDArray:
        if features == "mel":
            return np.log(mel + _LOG_FLOOR * max(float(mel.max()), 1e-30))
        return librosa.feature.chroma_stft(y=audio, sr=fs, n_fft=n_fft, hop_length=hop_length)

    mix_power = power(signal)
    mix_raw = raw(signal, mix_power)
    centre = mix_raw.mean(axis=1, keepdims=True)
    spread = np.maximum(mix_raw.std(axis=1, keepdims=True), 1e-12)

    def described(audio: NDArray, mel: NDArray) -> NDArray:
        return _normalized((raw(audio, mel) - centre) / spread)

    mix_features = _normalized((mix_raw - centre) / spread)
    n_frames = mix_power.shape[1]
    times = np.arange(n_frames) * frame

    positions = np.full((len(references), n_frames), np.nan)
    track_powers = []
    for index, (_, audio) in enumerate(references):
        track_power = power(audio)
        track_powers.append(track_power)
        path = local_alignment(described(audio, track_power), mix_features, threshold=threshold)
        if path is None:
            continue
        track_frames, mix_frames = path
        if (mix_frames[-1] - mix_frames[0] + 1) * frame < min_duration:
            continue
        positions[index] = _position_curve(
            track_frames,
            mix_frames,
            n_frames=n_frames,
            n_track_frames=track_power.shape[1],
            frame=frame,
            extend=round(extend / frame),
            smoothing=round(path_smoothing / frame),
        )

    amplitudes = _fit_gains(mix_power, track_powers, positions, frame=frame, bands=gain_bands)
    timelines = []
    for index, (name, _) in enumerate(references):
        gain = amplitudes[index]
        if smooth > 1:
            gain = median_filter(gain, size=smooth, mode="nearest")
        timelines.append(
            derive_parameters(name, times, gain, positions[index], silence_db=min_gain_db)
        )
    return timelines


def local_alignment(
    query: NDArray, reference: NDArray, *, threshold: float = 0.9
) -> tuple[NDArray[np.int64], NDArray[np.int64]] | None:
    """Best local alignment of two feature sequences (open begin and end on both).

    The reward of pairing query frame i with reference frame j is their similarity
    ``query[:, i] · reference[:, j]`` minus its ``threshold`` quantile over all pairs
    (estimated on at most 200 query frames), so that unrelated pairs cost and matching
    ones pay; the accumulated reward restarts from zero wherever it would go negative
    (Smith–Waterman), with steps (1, 1), (2, 1) and (1, 2) in (query, reference)
    frames. The path ending at the best accumulated reward is traced back. Time
    O(K·N), memory K·N bytes (the back-pointers).

    Parameters
    ----------
    query : array, shape (features, K)
    reference : array, shape (features, N)
        Unit-normalized feature columns.
    threshold : float
        In [0, 1): the quantile of the similarities that a pair must beat to pay.

    Returns
    -------
    (query_frames, reference_frames) : int arrays, shape (L,) each
        The path, both increasing; None when no pairing has a positive reward.
    """
    query = np.asarray(query, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    threshold = finite_real(threshold, name="threshold")
    if not 0 <= threshold < 1:
        raise ValueError(f"threshold must lie in [0, 1), got {threshold}")
    if query.ndim != 2 or reference.ndim != 2 or query.shape[0] != reference.shape[0]:
        raise ValueError(
            f"query and reference must be (features, frames) with one feature count, got "
            f"{query.shape} and {reference.shape}"
        )
    n_query, n_reference = query.shape[1], reference.shape[1]
    if n_query == 0 or n_reference == 0:
        return None
    sampled = query[:, :: max(1, n_query // 200)]
    level = float(np.quantile(reference.T @ sampled, threshold))
    pointers = np.zeros((n_query, n_reference), dtype=np.int8)
    previous = np.zeros(n_reference)
    before = np.zeros(n_reference)
    best, best_at = 0.0, (-1, -1)
    candidates = np.zeros((4, n_reference))
    for i in range(n_query):
        reward = reference.T @ query[:, i] - level
        candidates[1:] = 0.0
        candidates[1, 1:] = previous[:-1]  # (1, 1)
        candidates[2, 1:] = before[:-1]  # (2, 1): one query frame skipped
        candidates[3, 2:] = previous[:-2]  # (1, 2): one reference frame skipped
        choice = np.argmax(candidates, axis=0)
        current = reward + candidates[choice, np.arange(n_reference)]
        pointers[i] = choice
        j = int(np.argmax(current))
        if current[j] > best:
            best, best_at = float(current[j]), (i, j)
        before, previous = previous, current
    if best <= 0:
        return None
    i, j = best_at
    path = [(i, j)]
    while pointers[i, j] != 0:
        step = pointers[i, j]
        i, j = (i - 1, j - 1) if step == 1 else (i - 2, j - 1) if step == 2 else (i - 1, j - 2)
        path.append((i, j))
    path.reverse()
    steps = np.asarray(path, dtype=np.int64)
    return steps[:, 0], steps[:, 1]


def _position_curve(
    track_frames: NDArray,
    mix_frames: NDArray,
    *,
    n_frames: int,
    n_track_frames: int,
    frame: float,
    extend: int,
    smoothing: int,
) -> NDArray[np.float64]:
    """Track position (s) at each mix frame: the path, interpolated and smoothed (a
    moving straight-line fit over ``smoothing`` frames); NaN outside."""
    position = np.full(n_frames, np.nan)
    first, last = int(mix_frames[0]), int(mix_frames[-1])
    span = np.arange(first, last + 1)
    position[span] = np.interp(span, mix_frames, track_frames) * frame
    window = 2 * (smoothing // 2) + 1
    if window >= 3 and span.size > window:
        position[span] = savgol_filter(position[span], window, 1, mode="interp")
    if extend > 0 and last > first:
        slope = float(np.median(np.diff(track_frames) / np.diff(mix_frames)))
        end_of_track = (n_track_frames - 1) * frame
        for side in (np.arange(first - extend, first), np.arange(last + 1, last + 1 + extend)):
            side = side[(side >= 0) & (side < n_frames)]
            anchor = first if side.size and side[0] < first else last
            values = position[anchor] + slope * (side - anchor) * frame
            keep = (values >= 0) & (values <= end_of_track)
            position[side[keep]] = values[keep]
    return position


def _fit_gains(
    mix_power: NDArray,
    track_powers: list[NDArray],
    positions: NDArray,
    *,
    frame: float,
    bands: int,
) -> NDArray[np.float64]:
    """Amplitude gains (tracks, frames): NNLS of each mix mel column on the aligned ones,
    the mel bands summed into ``bands`` contiguous groups first."""
    n_tracks, n_frames = positions.shape
    n_mels = mix_power.shape[0]
    groups = None if bands >= n_mels else np.arange(n_mels) * bands // n_mels
    amplitudes = np.zeros((n_tracks, n_frames))
    for n in range(n_frames):
        active = np.flatnonzero(np.isfinite(positions[:, n]))
        if active.size == 0:
            continue
        columns = np.stack(
            [_column(track_powers[i], positions[i, n] / frame) for i in active], axis=1
        )
        target = mix_power[:, n]
        if groups is not None:
            columns = np.stack([np.bincount(groups, c) for c in columns.T], axis=1)
            target = np.bincount(groups, target)
        scale = float(target.max(initial=0.0))
        if scale <= 0:
            continue
        weights, _ = nnls(columns / scale, target / scale)
        amplitudes[active, n] = np.sqrt(weights)
    return amplitudes


def _column(power: NDArray, index: float) -> NDArray:
    """A track's mel power at a fractional frame index (linear interpolation)."""
    low = min(max(math.floor(index), 0), power.shape[1] - 1)
    high = min(low + 1, power.shape[1] - 1)
    weight = min(max(index - low, 0.0), 1.0)
    return (1 - weight) * power[:, low] + weight * power[:, high]


def _normalized(values: NDArray) -> NDArray[np.float64]:
    """Columns with their mean removed and unit norm (zero columns stay zero)."""
    centred = values - values.mean(axis=0, keepdims=True)
    norms = np.linalg.norm(centred, axis=0, keepdims=True)
    return centred / np.maximum(norms, 1e-12)
