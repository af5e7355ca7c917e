"""Sub-frame refinement of the multi-pass NMF's warps, and a gain refit on the alignment.

The NMF gives, per finest frame, a position in the track (sub-frame but noisy, with
outliers where the track is faint). A DJ plays a track at a constant speed between
events, so each track's warp is taken as one line ``τ(t) = c + s · t``:

1. a first robust line through the NMF positions where the track is loud (Theil–Sen,
   then least squares on the inliers — :func:`fit_warp`); in a fade the gain ramps
   inside each analysis window, which biases positions towards the louder side;
2. the line is refined on the onset-strength envelopes (spectral flux of the short
   mel frames, ≈ 23 ms hop): short windows (2 s, every second) of the mix's envelope
   are cross-correlated with the track's envelope read along the line, over lags of
   ± two NMF hops; the peak (parabolic interpolation) moves the line's position there;
   a robust line through those positions is the refined warp (twice);
3. the gains are refitted on the aligned tracks: per frame, non-negative least squares
   of the mix's mel power on the tracks' mel powers read along their warps (relative
   weights, ≈ log-spectral error), each track's spectrum read at pitch ``s`` (speed
   and pitch changed together, e.g. resampled) or at pitch 1 (time-stretched),
   whichever fits its body better; only within the play segment the NMF found
   (widened by a few seconds).

Limits: one play segment per track (no loops or jumps: events would need a piecewise
fit); the refit assumes the mix is the sum of the tracks' powers (no EQ/effect model).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.ndimage as ndimage
from numpy.typing import NDArray
from scipy.optimize import nnls

from mnmf.djmix.features import MelFrontEnd
from mnmf.djmix.timeline import TrackTimeline, derive_parameters

#: Inliers of the NMF line lie within this many hops of it.
INLIER_HOPS = 2.0
#: Slopes are taken between frames at least this many seconds apart.
MIN_SPAN_SECONDS = 2.0
#: The first line is fitted on frames whose gain is at least this fraction of the peak.
BODY_FRACTION = 0.5
#: Cross-correlation windows: length and spacing (s), and the lowest accepted
#: normalized correlation.
XCORR_SECONDS = 2.0
XCORR_STEP = 1.0
XCORR_MIN = 0.3
#: Inliers of the refined line lie within this many seconds of it.
XCORR_INLIER_SECONDS = 0.05
#: The gain refit looks this many seconds beyond the NMF's play segment.
MARGIN_SECONDS = 3.0
#: Refitted gains below this (dB re the track's peak) outside the run around the peak are
#: leakage of the least squares (the aligned track explains a little of the others).
LEAK_DB = -26.0


def fit_warp(
    times: NDArray[np.float64], positions: NDArray[np.float64], *, hop: float
) -> tuple[float, float, NDArray[np.bool_]]:
    """Robust line ``position ≈ intercept + slope · time``.

    Parameters
    ----------
    times, positions : arrays, shape (n,)
        Finite samples of the warp.
    hop : float
        Inliers are within ``INLIER_HOPS · hop`` of the line.

    Returns
    -------
    slope, intercept : float
    inliers : bool array, shape (n,)
    """
    n = times.size
    if n < 2:
        return 1.0, float(positions[0] - times[0]) if n else 0.0, np.ones(n, dtype=bool)
    i, j = np.triu_indices(n, k=1)
    span = times[j] - times[i]
    keep = span >= min(MIN_SPAN_SECONDS, 0.5 * float(times.max() - times.min()))
    if not keep.any():
        keep = span > 0
    step = max(1, int(keep.sum() // 20000))  # a subsample of pairs for long tracks
    slopes = ((positions[j] - positions[i]) / np.where(span > 0, span, 1.0))[keep][::step]
    slope = float(np.median(slopes))
    intercept = float(np.median(positions - slope * times))
    inliers = np.abs(positions - (intercept + slope * times)) <= INLIER_HOPS * hop
    if inliers.sum() >= 2:
        slope, intercept = np.polyfit(times[inliers], positions[inliers], 1)
        inliers = np.abs(positions - (intercept + slope * times)) <= INLIER_HOPS * hop
    return float(slope), float(intercept), inliers


def onset_envelope(short_mel: NDArray[np.float64]) -> NDArray[np.float64]:
    """Spectral flux of log mel powers, high-passed: shape (J,) for (n_mels, J)."""
    floor = 1e-4 * max(float(short_mel.mean()), np.finfo(float).tiny)
    log = np.log(short_mel + floor)
    flux = np.zeros(short_mel.shape[1])
    flux[1:] = np.maximum(np.diff(log, axis=1), 0.0).sum(axis=0)
    return flux - ndimage.uniform_filter1d(flux, 33, mode="nearest")


def _xcorr_positions(
    mix_env: NDArray[np.float64],
    track_env: NDArray[np.float64],
    frame: float,
    slope: float,
    intercept: float,
    centres: NDArray[np.float64],
    max_lag: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Track positions at ``centres`` (s) from envelope cross-correlation along a line."""
    mix_times = np.arange(mix_env.size) * frame
    track_times = np.arange(track_env.size) * frame
    lags = np.arange(-max_lag, max_lag + frame / 8, frame / 4)
    found_t, found_p = [], []
    half = XCORR_SECONDS / 2
    for centre in centres:
        chosen = np.flatnonzero(np.abs(mix_times - centre) <= half)
        if chosen.size < 8:
            continue
        m = mix_env[chosen] - mix_env[chosen].mean()
        base = intercept + slope * mix_times[chosen]
        if base[0] - max_lag < 0 or base[-1] + max_lag > track_times[-1]:
            continue
        grid = base[None, :] + lags[:, None]
        reads = np.interp(grid, track_times, track_env)
        reads -= reads.mean(axis=1, keepdims=True)
        norms = np.linalg.norm(reads, axis=1) * np.linalg.norm(m)
        score = np.divide(reads @ m, norms, out=np.zeros(lags.size), where=norms > 0)
        best = int(np.argmax(score))
        if score[best] < XCORR_MIN or best in (0, lags.size - 1):
            continue
        y0, y1, y2 = score[best - 1 : best + 2]
        curvature = y0 - 2 * y1 + y2
        shift = 0.5 * (y0 - y2) / curvature if curvature < 0 else 0.0
        lag = lags[best] + shift * (lags[1] - lags[0])
        found_t.append(centre)
        found_p.append(intercept + slope * centre + lag)
    return np.asarray(found_t), np.asarray(found_p)


def _aligned_mel(
    track_short: NDArray[np.float64],
    frame: float,
    positions: NDArray[np.float64],
) -> NDArray[np.float64]:
    """The track's short mel powers read at ``positions`` (s) (zero outside the track)."""
    index = positions / frame
    inside = (index >= 0) & (index <= track_short.shape[1] - 1)
    low = np.clip(np.floor(index).astype(int), 0, track_short.shape[1] - 1)
    high = np.minimum(low + 1, track_short.shape[1] - 1)
    fraction = np.clip(index - low, 0.0, 1.0)
    out = track_short[:, low] * (1 - fraction) + track_short[:, high] * fraction
    out[:, ~inside] = 0.0
    return out


def refine_tracks(
    front: MelFrontEnd,
    mix_short: NDArray[np.float64],
    mix_samples: int,
    track_shorts: Sequence[NDArray[np.float64]],
    track_audios: Sequence[NDArray[np.float64]],
    timelines: Sequence[TrackTimeline],
    *,
    hop: float,
    threshold_db: float,
) -> tuple[list[TrackTimeline], list[dict[str, Any]]]:
    """Refined warps (one line per track) and gains refitted on the alignment.

    Parameters
    ----------
    front : MelFrontEnd
        The short-frame analysis of the mix and tracks.
    mix_short : array, shape (n_mels, J)
        :meth:`MelFrontEnd.short_mel` of the mix.
    mix_samples : int
        Samples of the mix.
    track_shorts : sequence of arrays, shape (n_mels, J_i)
        The same for every track.
    track_audios : sequence of arrays, shape (samples_i,)
        The tracks (mono, at the front end's rate), analysed again at the line's pitch.
    timelines : sequence of TrackTimeline
        The NMF's estimates, on the mix times ``n · hop``.
    hop : float
        Seconds between the timelines' points.
    threshold_db : float
        Silence threshold passed to :func:`derive_parameters`.

    Returns
    -------
    timelines : list of TrackTimeline
    diagnostics : list of dict
        Per track: the NMF line and the refined one (slope, intercept), the number of
        cross-correlation windows used, the pitch chosen for the refit.
    """
    frame = front.short_hop / front.fs
    times = timelines[0].times
    mix_env = onset_envelope(mix_short)
    short_times = np.arange(mix_short.shape[1]) * frame
    lines: list[tuple[float, float] | None] = []
    diagnostics: list[dict[str, Any]] = []
    for timeline, track_short in zip(timelines, track_shorts, strict=True):
        located = np.isfinite(timeline.position) & (timeline.gain > 0)
        info: dict[str, Any] = {"name": timeline.name, "refined": False}
        diagnostics.append(info)
        if not timeline.present or located.sum() < 3:
            lines.append(None)
            continue
        loud = located & (timeline.gain >= BODY_FRACTION * timeline.gain.max())
        basis = loud if loud.sum() >= 3 else located
        slope, intercept, _ = fit_warp(times[basis], timeline.position[basis], hop=hop)
        info.update(nmf_slope=slope, nmf_intercept=intercept)
        track_env = onset_envelope(track_short)
        body = times[basis]
        centres = np.arange(body.min(), body.max() + 1e-9, XCORR_STEP)
        max_lag = 2 * hop
        for _ in range(2):
            t_found, p_found = _xcorr_positions(
                mix_env, track_env, frame, slope, intercept, centres, max_lag
            )
            if t_found.size < 3:
                break
            new_slope, new_intercept, inliers = fit_warp(
                t_found, p_found, hop=XCORR_INLIER_SECONDS / INLIER_HOPS
            )
            if inliers.sum() < 3:
                break
            slope, intercept = new_slope, new_intercept
            max_lag = 4 * frame
            info.update(refined=True, windows=int(inliers.sum()))
        info.update(slope=slope, intercept=intercept)
        lines.append((slope, intercept))

    # Gain refit on the aligned tracks, frame by frame.
    hop_samples = round(hop * front.fs)
    pool = front.pooling(
        mix_short.shape[1], hop=hop_samples, window=2 * hop_samples, n_frames=times.size
    )
    V = np.asarray((pool.T @ mix_short.T).T)
    margin = int(np.ceil(MARGIN_SECONDS / hop))
    aligned: list[NDArray[np.float64] | None] = []
    windows = np.zeros((len(timelines), times.size), dtype=bool)
    for i, (timeline, line, track_short, audio) in enumerate(
        zip(timelines, lines, track_shorts, track_audios, strict=True)
    ):
        if line is None:
            aligned.append(None)
            continue
        playing = np.flatnonzero(timeline.gain > 0)
        windows[i, max(0, playing[0] - margin) : playing[-1] + margin + 1] = True
        slope, intercept = line
        positions = intercept + slope * short_times
        best, best_error, best_pitch = None, np.inf, 1.0
        body = timeline.gain >= BODY_FRACTION * timeline.gain.max()
        pitches = (1.0, slope) if abs(slope - 1) > 1e-3 else (1.0,)
        for pitch in pitches:
            short = track_short if pitch == 1.0 else front.short_mel(audio, pitch=pitch)
            A = np.asarray((pool.T @ _aligned_mel(short, frame, positions).T).T)
            error = _solo_error(V[:, body], A[:, body])
            if error < best_error:
                best, best_error, best_pitch = A, error, pitch
        aligned.append(best)
        diagnostics[i]["pitch"] = best_pitch
    gains = _refit_gains(V, aligned, windows)
    for i in range(len(timelines)):
        gains[i] = _play_segment(gains[i])
    refined = []
    for i, timeline in enumerate(timelines):
        line = lines[i]
        if line is None:
            refined.append(timeline)
            continue
        slope, intercept = line
        refined.append(
            derive_parameters(
                timeline.name,
                times,
                gains[i],
                intercept + slope * times,
                silence_db=threshold_db,
                events=timeline.events,
            )
        )
    return refined, diagnostics


def _play_segment(gain: NDArray[np.float64]) -> NDArray[np.float64]:
    """The gain on the run of frames around its peak where it stays above LEAK_DB."""
    peak = float(gain.max(initial=0.0))
    if peak <= 0:
        return gain
    labels, _ = ndimage.label(gain > peak * 10 ** (LEAK_DB / 20))
    out = np.where(labels == labels[int(np.argmax(gain))], gain, 0.0)
    return out


def _weights(V: NDArray[np.float64]) -> NDArray[np.float64]:
    return 1.0 / (V + 1e-3 * max(float(V.mean()), np.finfo(float).tiny))


def _solo_error(V: NDArray[np.float64], A: NDArray[np.float64]) -> float:
    """Relative error of the best per-frame scaling of A to V (columns)."""
    if V.size == 0:
        return 0.0
    w = _weights(V)
    a, v = A * w, V * w
    scale = np.maximum((a * v).sum(axis=0), 0) / np.maximum((a * a).sum(axis=0), 1e-300)
    return float(np.sum((v - a * scale) ** 2))


def _refit_gains(
    V: NDArray[np.float64],
    aligned: Sequence[NDArray[np.float64] | None],
    windows: NDArray[np.bool_],
) -> NDArray[np.float64]:
    """Amplitude gains (M, T): per frame NNLS of V on the aligned tracks' powers."""
    n_tracks, n_frames = windows.shape
    gains = np.zeros((n_tracks, n_frames))
    w = _weights(V)
    for n in range(n_frames):
        active = [i for i in range(n_tracks) if windows[i, n] and aligned[i] is not None]
        if not active:
            continue
        A = np.stack([aligned[i][:, n] for i in active], axis=1) * w[:, n : n + 1]
        keep = A.any(axis=0)
        if not keep.any():
            continue
        solution, _ = nnls(A[:, keep], V[:, n] * w[:, n])
        for i, value in zip(np.asarray(active)[keep], solution, strict=True):
            gains[i, n] = np.sqrt(value)
    return gains
