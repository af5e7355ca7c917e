"""Sub-frame refinement of the multi-pass NMF's warps, and a gain refit on the alignment.

The NMF gives, per finest frame, a position in the track (sub-frame but noisy, with
outliers where the track is faint, and smeared over the analysis window around jumps
and loops). Between events a DJ plays a track at a constant speed (or ramps it), so each
track's warp is taken as a :class:`PiecewiseWarp` (:func:`piecewise_warp`):

1. a first robust line through the NMF positions where the track is loud (Theil–Sen,
   then least squares on the inliers — :func:`fit_warp`);
2. segmentation on the onset-strength envelopes (spectral flux of the short mel frames,
   ≈ 23 ms hop): 1 s windows of the mix's envelope, every 0.125 s over the play the NMF
   found, are correlated with the track's envelope read along a base line shifted by
   every offset within ± 8 s (base speeds 1 ± ``max_speed_deviation`` in 9 steps and the
   NMF's; the one whose path scores best is kept); window scores are weighted by the
   NMF gain (faint windows carry little evidence) and lowered by the distance to the NMF
   positions (a weak prior against the music's repetitions); a Viterbi path through the
   offsets (a one-offset drift is cheap, any other move costs :data:`JUMP_PENALTY`)
   splits the play at its discontinuities (moves > 0.25 s; pieces whose fitted models
   differ by less than 0.5 s — ``detect_events``' ``min_jump_s`` — are merged back);
3. each piece is fitted on its windows' sub-frame positions (parabolic peak): a robust
   line, or a quadratic ``τ = a + b t + c t²`` (a speed ramp) when a long piece bends
   by more than 10 ms and the quadratic lowers the residual 1.5-fold; pieces shorter
   than 4 s take the speed of the nearest long piece and fit their offset only; each
   discontinuity is placed at the envelope frame where reading the track along the next
   piece starts to explain the mix better than along the previous one; then every
   piece's offset is refined by one cross-correlation over the whole piece (± 4 frames);
   a warp of one constant-speed piece is refined as before (2 s windows every second,
   twice; :func:`_xcorr_line`); several pieces or a ramp are kept only when they align
   the onsets better than that refined line does. The discontinuities are the
   timeline's ``events``, labelled as the generator means them (:func:`label_events`);
4. the gains are refitted on the aligned tracks (:func:`_refit_gains`): per frame, the
   powers ``g_i² ≥ 0`` that minimize the absolute log-spectral error of the mix's mel
   power against the tracks' mel powers read along their piecewise warps (a median over
   bands: robust to bands an effect or an EQ changed), each track's spectrum read at the
   pitch the NMF's pitch scan found, at pitch 1 or at its speed, whichever fits its body
   best; only within the play segment the NMF found (widened by a few seconds). A
   static colouring of the whole mix (bass boost, master EQ) is estimated from the
   first fit (per band, the median log-ratio of mix to model) and removed before a
   second one;
5. the fades are fitted (:func:`fit_fade`): each fade-in and fade-out of the refitted
   gain is replaced by the linear or equal-power ramp (or cut) that, smoothed by the
   frames' analysis window as the refit measures it (weighted by the track's own power
   along the window), fits the frames best (least absolute deviations, frames below
   10 % of the body left out); then again on the short frames around it
   (:func:`_short_frame_fade`: per short frame gains, a window of ~93 ms instead of
   1 s, frames weighted by the share of the mix the track holds there); its ends are
   the track's start, end and fade times, and its unsmoothed ramp the gain curve there.
   A fade-in whose start is masked (the track unheard even at its body's level) and
   that the short frames did not place takes the start of the fade-out it crosses
   when the frames cannot tell the two apart (:func:`_crossfade_fade_in`); an end
   piece of the warp lying where the track is never heard is dropped with its event
   (:func:`_heard_pieces`).

Limits: positions are reported on the NMF's frame grid (an event is exact in ``events``
but the curve interpolates across it over one frame); a repetitive track can still be
read at a period's offset where the NMF prior is weak; the refit assumes the mix is the
sum of the tracks' powers up to a static colouring: a master compressor or distortion
(level-dependent gain) is read as gain.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.ndimage as ndimage
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import nnls

from mnmf.djmix.features import MelFrontEnd
from mnmf.djmix.timeline import TrackTimeline, derive_parameters

#: Inliers of the NMF line lie within this many hops of it.
INLIER_HOPS = 2.0
#: Slopes are taken between frames at least this many seconds apart, among at most
#: THEIL_SEN_POINTS frames.
MIN_SPAN_SECONDS = 2.0
THEIL_SEN_POINTS = 400
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
#: Piecewise warp (jumps and loops): offsets from the base line searched (track s),
#: analysis windows (s) and their spacing, the DP's penalty for a discontinuity and
#: for a drift step (in units of normalized correlation).
PIECE_RANGE = 8.0
PIECE_WINDOW = 1.0
PIECE_STEP = 0.125
JUMP_PENALTY = 2.0
DRIFT_PENALTY = 0.02
#: A path move larger than this (track s) splits the warp into segments; detected
#: events smaller than MIN_EVENT_SECONDS are dropped (as detect_events' min_jump_s).
SPLIT_SECONDS = 0.25
MIN_EVENT_SECONDS = 0.5
#: Segments shorter than this (mix s) take their speed from the longest segment.
MIN_LINE_SECONDS = 4.0
#: A quadratic (speed ramp) replaces a segment's line when it is at least this long,
#: bends by more than QUAD_MIN_BEND s and lowers the residual RMS by QUAD_GAIN.
QUAD_MIN_SECONDS = 6.0
QUAD_MIN_BEND = 0.01
QUAD_GAIN = 1.5
#: A backward skip of at most this (track s) is labelled a loop (a repeated section).
LOOP_MAX_SECONDS = 2.05
#: Base speeds tried: 1 ± max_speed_deviation in 2·SPEED_STEPS + 1 steps (and the NMF's).
SPEED_STEPS = 4
#: The NMF's positions as a weak prior: PRIOR_WEIGHT per track s away, capped.
PRIOR_WEIGHT = 0.1
PRIOR_CAP = 3.0
#: Window scores are weighted by the NMF gain re this fraction of its peak (at most 1).
LOUD_FRACTION = 0.25
#: Refitted gains below this (dB re the track's peak) outside the run around the peak are
#: leakage of the least squares (the aligned track explains a little of the others).
LEAK_DB = -26.0
#: ... and a run goes on across gaps of up to this many frames below it.
PLAY_GAP_FRAMES = 2
#: Gain refit: iterations of the reweighted least squares and the floor of its
#: |log-ratio| (below it a band counts as fitted: 0.1 ≈ 0.4 dB); an aligned track
#: with less than QUIET_FRACTION of its median power in a frame is not fitted there.
IRLS_ITERATIONS = 30
IRLS_FLOOR = 0.1
QUIET_FRACTION = 1e-3
#: Fade fit: the ends are searched this far (s) around their first estimates, on this
#: grid (then ten times finer), with the analysis window sampled at FADE_TAPS points.
FADE_SEARCH = 1.5
FADE_STEP = 0.05
FADE_TAPS = 33
FADE_FLOOR = 0.1
#: Second fade fit on the short frames: ± this search (s) around the first, on this grid
#: (then ten times finer), the short window sampled at this many points.
SHORT_FADE_SEARCH = 1.0
SHORT_FADE_STEP = 0.02
SHORT_FADE_TAPS = 9
#: ... and kept when its mean absolute misfit is at most this share of the level.
SHORT_FADE_MAX_RESIDUAL = 0.03
#: A frame weighs in the fade fit by the share of the mix's power its track holds there,
#: ``g² / (g² + masking)``, up to this share (full weight above): under a louder track
#: a faint track's measured gain is mostly the other's leakage.
FADE_SHARE_FULL = 0.1
#: A long frame where the track at its body's level would hold less than this share of
#: the mix is masked: its measured gain says nothing of the track (see _masked_stretch).
MASKED_SHARE = 0.1
#: A masked fade-in takes the start of the fade-out it crosses when its fit from there
#: misfits the frames by at most this share of the level more than the free fit (the
#: short frames' trust threshold: gains are not told apart more finely; see
#: _crossfade_fade_in).
CROSSFADE_TOLERANCE = SHORT_FADE_MAX_RESIDUAL
#: How much better (in onset-envelope correlation) pieces or a ramp must align than one
#: line through them, per extra piece or ramp, to be kept.
BREAK_GAIN = 0.02


def parabolic_peak(left: ArrayLike, centre: ArrayLike, right: ArrayLike) -> NDArray[np.float64]:
    """Offset (in steps, from the centre) of the vertex of the parabola through three
    equally spaced values; 0 where they do not bend down. Within ±0.5 when ``centre``
    is the largest of the three."""
    left, centre, right = (np.asarray(v, dtype=np.float64) for v in (left, centre, right))
    curvature = left - 2 * centre + right
    bent = curvature < 0
    return np.where(bent, 0.5 * (left - right) / np.where(bent, curvature, -1.0), 0.0)


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
    # Theil–Sen on at most THEIL_SEN_POINTS evenly spread samples: the pairs of all n
    # samples of a long play (thousands of windows) would take gigabytes.
    chosen = np.unique(np.linspace(0, n - 1, min(n, THEIL_SEN_POINTS)).round().astype(int))
    i, j = np.triu_indices(chosen.size, k=1)
    i, j = chosen[i], chosen[j]
    span = times[j] - times[i]
    keep = span >= min(MIN_SPAN_SECONDS, 0.5 * float(times.max() - times.min()))
    if not keep.any():
        keep = span > 0
    slopes = ((positions[j] - positions[i]) / np.where(span > 0, span, 1.0))[keep]
    slope = float(np.median(slopes))
    intercept = float(np.median(positions - slope * times))
    inliers = np.abs(positions - (intercept + slope * times)) <= INLIER_HOPS * hop
    if inliers.sum() >= 2:
        slope, intercept = np.polyfit(times[inliers], positions[inliers], 1)
        inliers = np.abs(positions - (intercept + slope * times)) <= INLIER_HOPS * hop
    return float(slope), float(intercept), inliers


@dataclass(frozen=True)
class PiecewiseWarp:
    """A warp made of pieces: ``τ(t) = polyval(coefficients[k], t)`` on piece k.

    Attributes
    ----------
    breaks : array, shape (K - 1,)
        Mix times (s) where piece k + 1 starts (increasing).
    coefficients : list of arrays
        Per piece, polynomial coefficients in ``t`` (mix s), highest degree first
        (degree 1: constant speed; 2: a linear speed ramp).
    """

    breaks: NDArray[np.float64]
    coefficients: list[NDArray[np.float64]]

    def __call__(self, t: ArrayLike) -> NDArray[np.float64]:
        t = np.asarray(t, dtype=np.float64)
        piece = np.searchsorted(self.breaks, t, side="right")
        out = np.empty_like(t)
        for k, coefficients in enumerate(self.coefficients):
            chosen = piece == k
            out[chosen] = np.polyval(coefficients, t[chosen])
        return out

    def speed(self, t: float) -> float:
        """Track seconds per mix second at mix time ``t``."""
        k = int(np.searchsorted(self.breaks, t, side="right"))
        return float(np.polyval(np.polyder(self.coefficients[k]), t))


def _offset_scores(
    mix_env: NDArray[np.float64],
    track_env: NDArray[np.float64],
    frame: float,
    base: tuple[float, float],
    centres: NDArray[np.float64],
    offsets: NDArray[np.float64],
    window: float,
) -> NDArray[np.float64]:
    """Normalized correlation (W, L) of the mix's envelope around each centre with the
    track's read along ``intercept + slope · t + offset`` (0 where undefined)."""
    slope, intercept = base
    mix_times = np.arange(mix_env.size) * frame
    track_times = np.arange(track_env.size) * frame
    scores = np.zeros((centres.size, offsets.size))
    half = window / 2
    for w, centre in enumerate(centres):
        chosen = np.flatnonzero(np.abs(mix_times - centre) <= half)
        if chosen.size < 8:
            continue
        m = mix_env[chosen] - mix_env[chosen].mean()
        grid = (intercept + slope * mix_times[chosen])[None, :] + offsets[:, None]
        reads = np.interp(grid, track_times, track_env, left=0.0, right=0.0)
        reads -= reads.mean(axis=1, keepdims=True)
        norms = np.linalg.norm(reads, axis=1) * np.linalg.norm(m)
        scores[w] = np.divide(reads @ m, norms, out=np.zeros(offsets.size), where=norms > 0)
    return scores


def _best_path(
    scores: NDArray[np.float64], *, jump: float, drift: float
) -> tuple[NDArray[np.intp], float]:
    """Viterbi path through ``scores`` (W, L): staying costs nothing, a move of one
    offset ``drift``, any other move ``jump``; the path maximizes score minus costs."""
    n_windows, n_offsets = scores.shape
    back = np.zeros((n_windows, n_offsets), dtype=np.intp)
    total = scores[0].copy()
    index = np.arange(n_offsets)
    for w in range(1, n_windows):
        best_prev = int(np.argmax(total))
        candidates = np.stack(
            [
                total,
                np.concatenate([[-np.inf], total[:-1]]) - drift,
                np.concatenate([total[1:], [-np.inf]]) - drift,
                np.full(n_offsets, total[best_prev] - jump),
            ]
        )
        choice = np.argmax(candidates, axis=0)
        sources = np.choose(choice, [index, index - 1, index + 1, np.full(n_offsets, best_prev)])
        back[w] = sources
        total = candidates[choice, index] + scores[w]
    path = np.zeros(n_windows, dtype=np.intp)
    path[-1] = int(np.argmax(total))
    best_total = float(total[path[-1]])
    for w in range(n_windows - 1, 0, -1):
        path[w - 1] = back[w, path[w]]
    return path, best_total


def _fit_piece(
    t: NDArray[np.float64], p: NDArray[np.float64], *, slope: float | None
) -> NDArray[np.float64]:
    """Coefficients of a robust line (or quadratic, for a speed ramp) through (t, p);
    with ``slope`` given, only the intercept is fitted."""
    if slope is not None or t.size < 4:
        s = 1.0 if slope is None else slope
        return np.array([s, float(np.median(p - s * t))])
    s, c, inliers = fit_warp(t, p, hop=XCORR_INLIER_SECONDS / INLIER_HOPS)
    line = np.array([s, c])
    span = float(t.max() - t.min())
    if span >= QUAD_MIN_SECONDS and inliers.sum() >= 6:
        # inliers of the quadratic: within the tolerance of a quadratic through the
        # line's inliers widened (a ramp bends away from the line at both ends)
        wide = np.abs(p - np.polyval(line, t)) <= 4 * XCORR_INLIER_SECONDS
        if wide.sum() >= 6:
            quad = np.polyfit(t[wide], p[wide], 2)
            keep = np.abs(p - np.polyval(quad, t)) <= XCORR_INLIER_SECONDS
            if keep.sum() >= 6:
                quad = np.polyfit(t[keep], p[keep], 2)
                bend = abs(quad[0]) * (span / 2) ** 2
                rms_line = np.sqrt(
                    np.mean((p[keep] - np.polyval(np.polyfit(t[keep], p[keep], 1), t[keep])) ** 2)
                )
                rms_quad = np.sqrt(np.mean((p[keep] - np.polyval(quad, t[keep])) ** 2))
                if bend > QUAD_MIN_BEND and rms_line > QUAD_GAIN * rms_quad:
                    return quad
    return line


def piecewise_warp(
    mix_env: NDArray[np.float64],
    track_env: NDArray[np.float64],
    frame: float,
    *,
    slope: float,
    intercept: float,
    start: float,
    stop: float,
    max_speed_deviation: float = 0.1,
    prior: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None,
    loudness: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None,
) -> tuple[PiecewiseWarp, list[dict[str, Any]], dict[str, Any]]:
    """A track's warp as pieces of constant speed (or speed ramps) between jumps/loops.

    Short windows (:data:`PIECE_WINDOW` s, every :data:`PIECE_STEP` s) of the mix's
    onset envelope on ``[start, stop]`` are correlated with the track's read along the
    base line ``intercept + slope · t`` shifted by every offset within
    ± :data:`PIECE_RANGE` s; a Viterbi path through the offsets (drift steps cheap, any
    other move :data:`JUMP_PENALTY`) splits the play into pieces; each piece is fitted
    on its windows' sub-frame positions (:func:`_fit_piece`), and each discontinuity is
    placed at the envelope frame where reading the track along the next piece starts
    to explain the mix better than along the previous one.

    Returns
    -------
    warp : PiecewiseWarp
    events : list of dict
        ``{"kind", "time", "from", "to"}`` (see :func:`label_events`).
    info : dict
        Windows used, pieces and their degrees.
    """
    line = PiecewiseWarp(np.zeros(0), [np.array([slope, intercept])])
    centres = np.arange(start + PIECE_WINDOW / 2, stop - PIECE_WINDOW / 2 + 1e-9, PIECE_STEP)
    if centres.size < 4:
        return line, [], {"pieces": 1, "windows": 0}
    offsets = np.arange(-PIECE_RANGE, PIECE_RANGE + frame / 2, frame)
    candidates = sorted(
        {
            *np.round(1 + np.linspace(-1, 1, 2 * SPEED_STEPS + 1) * max_speed_deviation, 4),
            float(np.clip(slope, 1 - max_speed_deviation, 1 + max_speed_deviation)),
        }
    )
    best_total = -np.inf
    for candidate in candidates:
        if prior is not None:
            finite = np.isfinite(prior[1])
            base = float(np.median(prior[1][finite] - candidate * prior[0][finite]))
        else:
            base = intercept + (slope - candidate) * 0.5 * (start + stop)
        trial = _offset_scores(
            mix_env, track_env, frame, (candidate, base), centres, offsets, PIECE_WINDOW
        )
        if loudness is not None:
            level = np.interp(centres, loudness[0], loudness[1])
            trial *= np.clip(level / (LOUD_FRACTION * loudness[1].max()), 0.0, 1.0)[:, None]
        if prior is not None:
            expected = np.interp(centres, prior[0], prior[1])
            distance = np.abs(base + candidate * centres - expected)[:, None] + offsets[None, :]
            trial -= PRIOR_WEIGHT * np.minimum(np.abs(distance), PRIOR_CAP)
        trial_path, total = _best_path(trial, jump=JUMP_PENALTY, drift=DRIFT_PENALTY)
        if total > best_total:
            best_total, path, scores = total, trial_path, trial
            slope, intercept = float(candidate), base
    rows = np.arange(centres.size)
    best = scores[rows, path]
    shift = np.zeros(centres.size)
    inner = (path > 0) & (path < offsets.size - 1)
    shift[inner] = parabolic_peak(
        scores[rows[inner], path[inner] - 1],
        best[inner],
        scores[rows[inner], path[inner] + 1],
    )
    positions = intercept + slope * centres + offsets[path] + np.clip(shift, -1, 1) * frame
    splits = list(np.flatnonzero(np.abs(np.diff(offsets[path])) > SPLIT_SECONDS) + 1)

    def fitted(splits: list[int]) -> tuple[list[NDArray[np.float64]], list[float]]:
        edges = [0, *splits, centres.size]
        cuts = [0.5 * (centres[k - 1] + centres[k]) for k in splits]
        samples = []
        for a, b in itertools.pairwise(edges):
            w = np.arange(a, b)
            clean = best[w] >= XCORR_MIN
            for cut in cuts:
                clean &= np.abs(centres[w] - cut) >= PIECE_WINDOW / 4
            if clean.sum() < 2:
                clean = np.ones(w.size, dtype=bool)
            samples.append((centres[w][clean], positions[w][clean]))
        spans = [float(t.max() - t.min()) for t, _ in samples]
        coefficients: list[NDArray[np.float64] | None] = [None] * len(samples)
        long = [k for k, span in enumerate(spans) if span >= MIN_LINE_SECONDS]
        for k in long:
            coefficients[k] = _fit_piece(*samples[k], slope=None)
        for k, (t, p) in enumerate(samples):
            if coefficients[k] is not None:
                continue
            if long:
                nearest = min(long, key=lambda j: abs(j - k))
                speed = float(np.polyval(np.polyder(coefficients[nearest]), t.mean()))
            else:
                speed = slope
            coefficients[k] = _fit_piece(t, p, slope=speed)
        return coefficients, cuts  # type: ignore[return-value]

    while True:
        coefficients, cuts = fitted(splits)
        sizes = [
            abs(np.polyval(coefficients[k + 1], cut) - np.polyval(coefficients[k], cut))
            for k, cut in enumerate(cuts)
        ]
        if not sizes or min(sizes) >= MIN_EVENT_SECONDS:
            break
        del splits[int(np.argmin(sizes))]

    # Place each discontinuity at an envelope frame.
    mix_times = np.arange(mix_env.size) * frame
    track_times = np.arange(track_env.size) * frame
    breaks = []
    for k, cut in enumerate(cuts):
        low = max(cut - PIECE_WINDOW / 2 - PIECE_STEP, breaks[-1] if breaks else -np.inf)
        high = cut + PIECE_WINDOW / 2 + PIECE_STEP
        j = np.flatnonzero((mix_times >= low) & (mix_times <= high))
        if j.size < 2:
            breaks.append(cut)
            continue
        before = np.interp(np.polyval(coefficients[k], mix_times[j]), track_times, track_env)
        after = np.interp(np.polyval(coefficients[k + 1], mix_times[j]), track_times, track_env)
        gain = np.concatenate([[0.0], np.cumsum(mix_env[j] * (before - after))])
        breaks.append(float(mix_times[j[min(int(np.argmax(gain)), j.size - 1)]]))
    # Each piece's offset on the whole piece (short pieces have few clean windows).
    edges = [start, *breaks, stop]
    lags = np.arange(-4 * frame, 4 * frame + frame / 8, frame / 4)
    for k, (a, b) in enumerate(itertools.pairwise(edges)):
        j = np.flatnonzero((mix_times >= a + 2 * frame) & (mix_times < b - 2 * frame))
        if j.size < 8:
            continue
        m = mix_env[j] - mix_env[j].mean()
        grid = np.polyval(coefficients[k], mix_times[j])[None, :] + lags[:, None]
        reads = np.interp(grid, track_times, track_env, left=0.0, right=0.0)
        reads -= reads.mean(axis=1, keepdims=True)
        norms = np.linalg.norm(reads, axis=1) * np.linalg.norm(m)
        score = np.divide(reads @ m, norms, out=np.zeros(lags.size), where=norms > 0)
        top = int(np.argmax(score))
        if score[top] < XCORR_MIN or top in (0, lags.size - 1):
            continue
        fine = float(parabolic_peak(*score[top - 1 : top + 2]))
        coefficients[k] = coefficients[k].copy()
        coefficients[k][-1] += lags[top] + fine * (lags[1] - lags[0])
    warp = PiecewiseWarp(np.asarray(breaks, dtype=np.float64), coefficients)
    events = [
        {
            "time": t,
            "from": float(np.polyval(coefficients[k], t)),
            "to": float(np.polyval(coefficients[k + 1], t)),
        }
        for k, t in enumerate(breaks)
    ]
    info = {
        "pieces": len(coefficients),
        "degrees": [len(c) - 1 for c in coefficients],
        "windows": int(centres.size),
    }
    return warp, label_events(events), info


def label_events(events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``kind`` for discontinuities ``{"time", "from", "to"}`` (time order), as the
    generator (:mod:`mnmf.djmix.synthetic`) means them.

    A loop repeats a section at once: playback goes back (by at most
    :data:`LOOP_MAX_SECONDS`, a section of a few beats) to where it was shortly before,
    and a loop played n times returns n − 1 times to the same start. So a backward skip
    lands on a "loop" when it is short or when another backward skip lands on the same
    position (within 0.1 s); every other discontinuity (forward, or a long way back) is a
    "jump". A single short backward jump is therefore called a loop: on the position
    curve alone it cannot be told from a loop played twice.
    """
    out = []
    targets = [float(e["to"]) for e in events if float(e["to"]) < float(e["from"])]
    for event in events:
        back = float(event["from"]) - float(event["to"])
        repeated = sum(abs(float(event["to"]) - t) <= 0.1 for t in targets) >= 2
        loop = back > 0 and (back <= LOOP_MAX_SECONDS or repeated)
        out.append({"kind": "loop" if loop else "jump", **event})
    return out


def onset_envelope(short_mel: NDArray[np.floating]) -> NDArray[np.float64]:
    """Spectral flux of log mel powers, high-passed: shape (J,) for (n_mels, J).

    Computed in float64 on blocks of frames (an hour's short frames are 159 MB in
    float64: a whole-array log and difference would hold several such copies).
    """
    floor = 1e-4 * max(float(short_mel.mean(dtype=np.float64)), np.finfo(float).tiny)
    n_frames = short_mel.shape[1]
    flux = np.zeros(n_frames)
    step = 4096
    previous: NDArray[np.float64] | None = None  # log of the frame before the block
    for start in range(0, n_frames, step):
        log = np.log(np.asarray(short_mel[:, start : start + step], dtype=np.float64) + floor)
        if previous is not None:
            log = np.concatenate([previous[:, None], log], axis=1)
        rise = np.maximum(np.diff(log, axis=1), 0.0).sum(axis=0)  # frames first.. on
        first = start if previous is not None else start + 1
        flux[first : first + rise.size] = rise
        previous = log[:, -1].copy()
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
        shift = float(parabolic_peak(*score[best - 1 : best + 2]))
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
    mix_short: NDArray[np.floating],
    mix_samples: int,
    track_shorts: Sequence[NDArray[np.float64]],
    track_audios: Sequence[NDArray[np.float64]],
    timelines: Sequence[TrackTimeline],
    *,
    hop: float,
    threshold_db: float,
    max_speed_deviation: float = 0.1,
    pitches: Sequence[float] | None = None,
) -> tuple[list[TrackTimeline], list[dict[str, Any]]]:
    """Refined warps (piecewise per track, with events) and gains refitted on them.

    Parameters
    ----------
    front : MelFrontEnd
        The short-frame analysis of the mix and tracks.
    mix_short : array, shape (n_mels, J)
        :meth:`MelFrontEnd.short_mel` of the mix.
    mix_samples : int
        Samples of the mix.
    track_shorts : sequence of arrays, shape (n_mels, J_i)
        The same for every track, at the pitch it is heard (``pitches``).
    track_audios : sequence of arrays, shape (samples_i,)
        The tracks (mono, at the front end's rate), analysed again at the line's pitch.
    timelines : sequence of TrackTimeline
        The NMF's estimates, on the mix times ``n · hop``.
    hop : float
        Seconds between the timelines' points.
    threshold_db : float
        Silence threshold passed to :func:`derive_parameters`.
    max_speed_deviation : float
        Base speeds tried by :func:`piecewise_warp`: ``1 ± max_speed_deviation``.
    pitches : sequence of float, optional
        The pitch of each of ``track_shorts`` (1 when not given; e.g. the pitch scan's
        of :func:`mnmf.djmix.decompose.scan_pitches`).

    Returns
    -------
    timelines : list of TrackTimeline
    diagnostics : list of dict
        Per track: the NMF line and the refined base line (slope, intercept), the
        pieces and their degrees, the number of windows and events, the pitch chosen
        for the refit.
    """
    frame = front.short_hop / front.fs
    times = timelines[0].times
    mix_env = onset_envelope(mix_short)
    short_times = np.arange(mix_short.shape[1]) * frame
    warps: list[PiecewiseWarp | None] = []
    track_events: list[list[dict[str, Any]]] = []
    diagnostics: list[dict[str, Any]] = []
    for timeline, track_short in zip(timelines, track_shorts, strict=True):
        located = np.isfinite(timeline.position) & (timeline.gain > 0)
        info: dict[str, Any] = {"name": timeline.name, "refined": False}
        diagnostics.append(info)
        track_events.append([])
        if not timeline.present or located.sum() < 3:
            warps.append(None)
            continue
        loud = located & (timeline.gain >= BODY_FRACTION * timeline.gain.max())
        basis = loud if loud.sum() >= 3 else located
        slope, intercept, _ = fit_warp(times[basis], timeline.position[basis], hop=hop)
        info.update(nmf_slope=slope, nmf_intercept=intercept)
        track_env = onset_envelope(track_short)
        playing = times[timeline.gain > 0]
        warp, events, piece_info = piecewise_warp(
            mix_env,
            track_env,
            frame,
            slope=slope,
            intercept=intercept,
            start=float(playing.min()),
            stop=float(playing.max()),
            prior=(times[located], timeline.position[located]),
            loudness=(times, timeline.gain),
            max_speed_deviation=max_speed_deviation,
        )
        info.update(piece_info)
        if len(warp.coefficients) > 1 or len(warp.coefficients[0]) > 2:
            # Model selection: the pieces (or the ramp) must explain the mix's onsets
            # better than one line through them by BREAK_GAIN per extra parameter set;
            # otherwise a repetitive passage or a fade has split a constant-speed play.
            # The line is the best constant-speed one, refined on the onsets as below
            # (not merely the line through the pieces, which a ramp bent off).
            dominant = _dominant_line(warp, times[located])
            line, windows = _xcorr_line(
                mix_env, track_env, frame, dominant.coefficients[0], times[basis]
            )
            weights = np.interp(short_times, times, timeline.gain)
            piece_score = _alignment_score(mix_env, track_env, frame, warp, weights)
            line_score = _alignment_score(mix_env, track_env, frame, line, weights)
            extra = len(warp.coefficients) - 1 + sum(len(c) > 2 for c in warp.coefficients)
            info.update(piece_score=piece_score, line_score=line_score)
            if piece_score < line_score + BREAK_GAIN * extra:
                warp, events = line, []
                if windows:
                    info.update(windows=windows)
        elif len(warp.coefficients[0]) == 2:
            # One constant-speed piece: the line refinement on longer windows.
            warp, windows = _xcorr_line(
                mix_env, track_env, frame, warp.coefficients[0], times[basis]
            )
            if windows:
                info.update(windows=windows)
        bent = len(warp.coefficients) > 1 or len(warp.coefficients[0]) > 2
        base = _dominant_line(warp, times[located]) if bent else warp
        slope, intercept = (float(v) for v in base.coefficients[0])
        info.update(refined=bent or "windows" in info)
        info.update(slope=slope, intercept=intercept, events=len(events))
        warps.append(warp)
        track_events[-1] = events

    # Gain refit on the aligned tracks, frame by frame.
    hop_samples = round(hop * front.fs)
    pool = front.pooling(
        mix_short.shape[1], hop=hop_samples, window=2 * hop_samples, n_frames=times.size
    )
    V = np.asarray((pool.T @ mix_short.T).T, dtype=np.float64)
    margin = int(np.ceil(MARGIN_SECONDS / hop))
    aligned: list[NDArray[np.float64] | None] = []
    profiles: list[tuple[NDArray[np.float64], NDArray[np.float64]] | None]
    profiles = [None] * len(timelines)
    windows = np.zeros((len(timelines), times.size), dtype=bool)
    heard_shorts: list[NDArray[np.floating] | None] = [None] * len(timelines)
    spans: list[tuple[float, float]] = [(np.inf, -np.inf)] * len(timelines)
    for i, (timeline, warp, track_short, audio) in enumerate(
        zip(timelines, warps, track_shorts, track_audios, strict=True)
    ):
        if warp is None:
            aligned.append(None)
            continue
        playing = np.flatnonzero(timeline.gain > 0)
        first, last = max(0, playing[0] - margin), min(times.size - 1, playing[-1] + margin)
        windows[i, first : last + 1] = True
        spans[i] = (times[first] - hop, times[last] + hop)
        # The track is read only under its window (its frames pool the short frames
        # within one hop of their centres): an hour-long mix has ~10⁵ short frames,
        # a track plays a few % of them.
        span = slice(
            max(0, int(np.floor((times[first] - hop) / frame))),
            min(short_times.size, int(np.ceil((times[last] + hop) / frame)) + 1),
        )
        local_times = short_times[span]
        local_pool = pool[span]
        positions = warp(local_times)
        slope = float(np.median([np.polyval(np.polyder(c), 0.0) for c in warp.coefficients]))
        if any(len(c) > 2 for c in warp.coefficients):
            slope = float(np.median(np.gradient(positions, local_times)))
        given = 1.0 if pitches is None else float(pitches[i])
        best, best_error, best_pitch = None, np.inf, given
        body = timeline.gain >= BODY_FRACTION * timeline.gain.max()
        tried = [given]
        for pitch in (1.0, slope):
            if all(abs(pitch - other) > 1e-3 for other in tried):
                tried.append(pitch)
        for pitch in tried:
            short = track_short if pitch == given else front.short_mel(audio, pitch=pitch)
            read = _aligned_mel(short, frame, positions)
            A = np.asarray((local_pool.T @ read.T).T)
            error = _solo_error(V[:, body], A[:, body])
            if error < best_error:
                best, best_error, best_pitch = A, error, pitch
                profiles[i] = (local_times, read.sum(axis=0))
                heard_shorts[i] = short
        aligned.append(best)
        diagnostics[i]["pitch"] = best_pitch
    gains, response_db = _refit_gains(V, aligned, windows)
    # The mix's power per long frame, its static colouring removed (for the masking).
    mix_energy = (V * 10 ** (-response_db / 10)[:, None]).sum(axis=0)
    for info in diagnostics:
        info["mix_response_db"] = response_db
    bounds = (0.0, mix_samples / front.fs)
    maskings: list[NDArray[np.float64] | None] = [
        None if aligned[i] is None else _masking(mix_energy, aligned[i].sum(axis=0), gains[i] ** 2)
        for i in range(len(timelines))
    ]
    for i, warp in enumerate(warps):
        if warp is not None and maskings[i] is not None and len(warp.breaks):
            warps[i], track_events[i] = _heard_pieces(
                warp, track_events[i], times, gains[i], maskings[i]
            )
            diagnostics[i].update(pieces=len(warps[i].coefficients), events=len(track_events[i]))
    # First every track's fades from its own frames, then (as a masked fade-in may take
    # the start of another track's fade-out) the timelines.
    plays: list[dict[str, Any] | None] = []
    for i, timeline in enumerate(timelines):
        warp = warps[i]
        if warp is None:
            plays.append(None)
            continue
        gain, filled = _play_segment(gains[i])
        masking = maskings[i]
        positions = warp(times)
        events = track_events[i] or timeline.events
        measured = derive_parameters(
            timeline.name, times, gain, positions, silence_db=threshold_db, events=events
        )
        fade_options: dict[str, Any] = dict(
            window=2 * hop_samples / front.fs,
            bounds=bounds,
            profile=profiles[i],
            unmeasured=filled,
            masking=masking,
        )
        long_fades = fades = _fitted_fades(measured, **fade_options)
        if fades is not None:
            fades = tuple(
                _short_frame_fade(
                    fade,
                    track=i,
                    mix_short=mix_short,
                    mix_response_db=response_db,
                    heard_shorts=heard_shorts,
                    warps=warps,
                    spans=spans,
                    frame=frame,
                    window=front.n_fft / front.fs,
                    bounds=bounds,
                )
                for fade in fades
            )
        plays.append(
            dict(gain=gain, positions=positions, events=events, measured=measured,
                 fades=fades, long_fades=long_fades, fade_options=fade_options)
        )  # fmt: skip
    fade_outs = [
        (play["fades"][1].full, play["fades"][1].zero) if play and play["fades"] else None
        for play in plays
    ]
    refined = []
    for i, (timeline, play) in enumerate(zip(timelines, plays, strict=True)):
        if play is None:
            refined.append(timeline)
            continue
        measured, fades = play["measured"], play["fades"]
        if fades is not None:
            fade_in, fade_out = fades
            if fade_in is play["long_fades"][0]:
                # The short frames did not place this fade-in (they place a heard one
                # well): a masked start may take the crossfade's.
                others = [s for j, s in enumerate(fade_outs) if j != i and s is not None]
                crossfaded = _crossfade_fade_in(fade_in, others, measured, **play["fade_options"])
                diagnostics[i]["crossfade_start"] = crossfaded is not fade_in
                fade_in = crossfaded
            gain = play["gain"].copy()
            head, tail = times < fade_in.full, times > fade_out.full
            gain[head] = fade_in.gain(times[head])
            gain[tail] = fade_out.gain(times[tail])
            diagnostics[i].update(
                fade_shapes=(fade_in.shape, fade_out.shape),
                fade_residuals=(fade_in.residual, fade_out.residual),
            )
            measured = derive_parameters(
                timeline.name,
                times,
                gain,
                play["positions"],
                silence_db=threshold_db,
                events=play["events"],
                fades=((fade_in.zero, fade_in.full), (fade_out.full, fade_out.zero)),
            )
        refined.append(measured)
    return refined, diagnostics


def _short_frame_fade(
    fade: Fade,
    *,
    track: int,
    mix_short: NDArray[np.floating],
    mix_response_db: NDArray[np.float64],
    heard_shorts: Sequence[NDArray[np.floating] | None],
    warps: Sequence[PiecewiseWarp | None],
    spans: Sequence[tuple[float, float]],
    frame: float,
    window: float,
    bounds: tuple[float, float],
) -> Fade:
    """A fade fitted again on the short frames around the long frames' fit.

    The long frames (one per hop, a window of two hops) measure a fade's gain a few
    times per second, each blurred over a second: its ends come within a few
    hundredths of a second at best. Here the gains of every track heard around the
    fade are measured on each short frame (the robust per-frame fit of
    :func:`_refit_gains` on the mix, its static colouring removed, and the tracks read
    along their warps at the pitch the refit chose), and :func:`fit_fade` searches the
    ends ± :data:`SHORT_FADE_SEARCH` s around the long frames' fit with the short
    window's blur: some forty frames a second, each blurred over ``window`` only.
    The long frames' fade is kept when the track has no short frames there, or when the
    short fit's mean absolute misfit exceeds :data:`SHORT_FADE_MAX_RESIDUAL` of the level
    (the short frames then scatter too much to be trusted over the long ones).
    """
    heard = heard_shorts[track]
    if heard is None:
        return fade
    lo, hi = sorted((fade.zero, fade.full))
    reach = SHORT_FADE_SEARCH + window
    first = max(0, int(np.floor((lo - reach) / frame)))
    last = min(mix_short.shape[1] - 1, int(np.ceil((hi + reach) / frame)))
    if last - first < 8:
        return fade
    region = np.arange(first, last + 1)
    region_times = region * frame
    mix = np.asarray(mix_short[:, region], dtype=np.float64)
    mix = mix * 10 ** (-np.asarray(mix_response_db) / 10)[:, None]
    active = [
        j
        for j, (warp, span) in enumerate(zip(warps, spans, strict=True))
        if warp is not None and heard_shorts[j] is not None
        and span[0] <= region_times[-1] and span[1] >= region_times[0]
    ]  # fmt: skip
    if track not in active:
        return fade
    reads = []
    for j in active:
        read = _aligned_mel(heard_shorts[j], frame, warps[j](region_times)).astype(np.float64)
        inside = (region_times >= spans[j][0]) & (region_times <= spans[j][1])
        reads.append(read * inside[None, :])
    energies = np.stack([read.sum(axis=0) for read in reads])  # (k, n)
    typical = np.array([np.median(e[e > 0]) if (e > 0).any() else 0.0 for e in energies])
    usable = (energies > QUIET_FRACTION * typical[:, None]) & (energies > 0)
    powers = np.zeros(energies.shape)
    w = _weights(mix)
    for n in np.flatnonzero(usable.any(axis=0)):
        fitted = np.flatnonzero(usable[:, n])
        A = np.stack([reads[k][:, n] for k in fitted], axis=1)
        powers[fitted, n] = _robust_powers(A, mix[:, n], w[:, n])
    me = active.index(track)
    own = energies[me]
    masking = _masking(mix.sum(axis=0), own, powers[me])
    keep = usable[me]
    if np.count_nonzero(keep) < 8:
        return fade
    gain = np.sqrt(powers[me])
    # The level the fade reaches, as the short frames measure it: their median past
    # the fade's full end (the long frames' level when too few frames lie there).
    past = keep & (
        (region_times >= fade.full + window)
        if fade.rising
        else (region_times <= fade.full - window)
    )
    level = float(np.median(gain[past])) if np.count_nonzero(past) >= 8 else fade.level
    if not level > 0:
        return fade
    short = fit_fade(
        region_times[keep], gain[keep],
        zero=fade.zero, full=fade.full if fade.shape != "cut" else fade.zero,
        level=level, window=window, rising=fade.rising, bounds=bounds,
        profile=(region_times, own), masking=masking[keep],
        search=SHORT_FADE_SEARCH, step=SHORT_FADE_STEP, taps=SHORT_FADE_TAPS,
    )  # fmt: skip
    # Kept only where the short frames measure the gain well: a track played through a
    # phase vocoder (time-stretched) no longer matches its reference frame by frame,
    # and its short-frame gains scatter by ~10 % of the level.
    return short if short.residual <= SHORT_FADE_MAX_RESIDUAL * short.level else fade


def _masked_stretch(
    times: NDArray[np.float64],
    zero: float,
    full: float,
    *,
    level: float,
    masking: NDArray[np.float64] | None,
    rising: bool,
) -> tuple[float, float] | None:
    """The span (s) from a fade's guessed ``zero`` to its first heard frame, when longer
    than the fade search: heard = the track at ``level`` would hold at least
    :data:`MASKED_SHARE` of the mix. None when no ``masking`` or no such stretch."""
    if masking is None:
        return None
    heard = _heard(level**2, masking)
    lo, hi = sorted((zero, full))
    inside = np.flatnonzero((times >= lo) & (times <= hi) & heard)
    if inside.size == 0:
        return None
    first = float(times[inside[0]] if rising else times[inside[-1]])
    span = (zero, first) if rising else (first, zero)
    return span if span[1] - span[0] > FADE_SEARCH else None


def _masking(
    mix_energy: NDArray[np.float64], own: NDArray[np.float64], power: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Per frame, the rest of the mix's power over the track's own at unit gain
    (``fit_fade``'s ``masking``): ``mix_energy`` and ``own`` summed over bands, the
    track heard at ``power`` (g²); inf where the track is silent."""
    rest = np.maximum(mix_energy - power * own, 0.0)
    floor = max(1e-12 * float(own.max(initial=0.0)), np.finfo(float).tiny)
    masking = np.full(np.shape(rest), np.inf)
    with np.errstate(over="ignore"):  # a share that small is inf: the track is unheard
        np.divide(rest, own, out=masking, where=own > floor)
    return masking


def _heard(power: ArrayLike, masking: ArrayLike) -> NDArray[np.bool_]:
    """Per frame, whether a track at ``power`` (g²) holds at least :data:`MASKED_SHARE`
    of the mix, ``masking`` being :func:`_masking`'s (silent track, silent mix: no)."""
    power = np.asarray(power, dtype=float)
    with np.errstate(invalid="ignore"):
        share = power / (power + np.asarray(masking, dtype=float))
    return np.nan_to_num(share) >= MASKED_SHARE


def _fitted_fades(
    timeline: TrackTimeline,
    *,
    window: float,
    bounds: tuple[float, float],
    profile: tuple[NDArray[np.float64], NDArray[np.float64]] | None,
    unmeasured: NDArray[np.bool_] | None = None,
    masking: NDArray[np.float64] | None = None,
) -> tuple[Fade, Fade] | None:
    """The fade-in and fade-out fitted around a timeline's measured ones (None when the
    track has no body between them to give the level); frames flagged ``unmeasured``
    (gains interpolated, not fitted) are left out of the fits. ``masking`` (per frame,
    the rest of the mix's power over the track's at unit gain) finds a play's end
    read inside a masked stretch (:func:`_masked_stretch`)."""
    if not timeline.present:
        return None
    times, gain = timeline.times, timeline.gain
    body = (times >= timeline.fade_in[1]) & (times <= timeline.fade_out[0])
    if np.count_nonzero(body) < 3:
        return None
    level = float(np.median(gain[body]))
    if level <= 0:
        return None
    if unmeasured is not None:
        gain = np.where(unmeasured, 0.0, gain)  # below FADE_FLOOR: not fitted
    ends = {
        "rising": (timeline.start, timeline.fade_in[1]),
        "falling": (timeline.end, timeline.fade_out[0]),
    }
    fades = {}
    for side, (zero, full) in ends.items():
        rising = side == "rising"
        options: dict[str, Any] = {}
        masked = _masked_stretch(times, zero, full, level=level, masking=masking, rising=rising)
        if masked is not None:
            # The play's end lies in a stretch where the track, even at its body's
            # level, holds under MASKED_SHARE of the mix: the gains measured there are
            # the other tracks' leakage and say nothing of where the fade begins. The
            # zero is searched over the whole stretch, each frame weighted by the share
            # of the mix the track holds (the heard frames lead).
            lo, hi = masked
            zero, reach = 0.5 * (lo + hi), 0.5 * (hi - lo) + window
            options = {"masking": masking, "search": max(reach, FADE_SEARCH)}
        fades[side] = fit_fade(
            times, gain, zero=zero, full=full, level=level, window=window, rising=rising,
            bounds=bounds, profile=profile, **options,
        )  # fmt: skip
    fade_in, fade_out = fades["rising"], fades["falling"]
    if fade_in.full > fade_out.full:
        return None
    return fade_in, fade_out


def _heard_pieces(
    warp: PiecewiseWarp,
    events: list[dict[str, Any]],
    times: NDArray[np.float64],
    gain: NDArray[np.float64],
    masking: NDArray[np.float64],
) -> tuple[PiecewiseWarp, list[dict[str, Any]]]:
    """The warp without its first or last pieces where the track is never heard.

    A discontinuity needs the track heard on both sides: its pieces are aligned on the
    mix's onsets, which are the track's only where it holds a fair share of the mix. At
    the ends of a play (a fade, the more so under a louder track, or frames before the
    play that the NMF gave a leak) the track at its refitted gain holds under
    :data:`MASKED_SHARE` of the mix, and a piece lying there was fitted to the other
    tracks' onsets: its event is false. Such an end piece (heard over less than one
    segmentation window, :data:`PIECE_WINDOW`) is dropped (the next piece extends over
    it) and its event with it, until the end pieces are heard (``times``, ``gain``,
    ``masking``: the long frames, the refitted gains and :func:`_masking`).
    """
    if len(warp.breaks) == 0:
        return warp, events
    heard = _heard(np.asarray(gain, dtype=float) ** 2, masking)
    if not heard.any():
        return warp, events
    spacing = float(np.median(np.diff(times))) if times.size > 1 else 0.0
    heard_times = times[heard]

    def unheard(t0: float, t1: float) -> bool:
        # less than one segmentation window of heard frames in [t0, t1)
        inside = np.count_nonzero((heard_times >= t0) & (heard_times < t1))
        return inside * spacing < PIECE_WINDOW

    breaks, coefficients, events = list(warp.breaks), list(warp.coefficients), list(events)
    while breaks and unheard(-np.inf, breaks[0]):
        breaks, coefficients, events = breaks[1:], coefficients[1:], events[1:]
    while breaks and unheard(breaks[-1], np.inf):
        breaks, coefficients, events = breaks[:-1], coefficients[:-1], events[:-1]
    if len(breaks) == len(warp.breaks):
        return warp, events
    return PiecewiseWarp(np.asarray(breaks, dtype=np.float64), coefficients), events


def _crossfade_fade_in(
    fade_in: Fade,
    fade_outs: Sequence[tuple[float, float]],
    timeline: TrackTimeline,
    *,
    window: float,
    bounds: tuple[float, float],
    profile: tuple[NDArray[np.float64], NDArray[np.float64]] | None,
    unmeasured: NDArray[np.bool_] | None = None,
    masking: NDArray[np.float64] | None = None,
) -> Fade:
    """A masked fade-in started where the fade-out it crosses starts, when the mix
    cannot tell the two apart.

    A track faded in under a louder one is heard only once its gain is well up: before
    its first heard frame (where, even at its body's level, it would hold
    :data:`MASKED_SHARE` of the mix) its measured gains are the other tracks' leakage,
    and the fit places its start by extrapolating the heard part of the ramp, seconds
    off when that part is short. There the mix holds no evidence of the start, and the
    DJ's usual gesture decides: a crossfade, where the outgoing track starts to fade out
    as the incoming one starts to fade in (a crossfader moves both; UnmixDB's mixes and
    :func:`~mnmf.djmix.synthetic.generate_mix` are built so). For each other track's
    fade-out ``(start, end)`` whose start lies at least a ``window`` before this track's
    first heard frame after it and more than a hop (half the ``window``) from the fitted
    start (closer, the track's own frames place it more finely), and that is still
    fading then, the fade-in is fitted again with its zero fixed at that start (its
    full end and shape free, the frames weighted by the track's share of the mix as in
    :func:`fit_fade`), and kept when its mean misfit is at most
    :data:`CROSSFADE_TOLERANCE` of the level above that of a free fit on the same
    frames: the prior only picks among starts the mix cannot tell apart. The track must
    not be heard anywhere between its fitted start (or that fade-out's, whichever is
    earlier) and its first heard frame.

    ``fade_outs`` are the other tracks' fade-outs as (start, end) in mix seconds; the
    other arguments are :func:`_fitted_fades`'. Returns ``fade_in`` itself when no
    fade-out qualifies.
    """
    if masking is None or not fade_outs or fade_in.level <= 0:
        return fade_in
    times, gain = timeline.times, timeline.gain
    if unmeasured is not None:
        gain = np.where(unmeasured, 0.0, gain)
    level = fade_in.level
    heard = _heard(level**2, masking)
    best, best_excess = fade_in, np.inf
    for start, end in fade_outs:
        after = np.flatnonzero(heard & (times >= start))
        if after.size == 0:
            continue
        first_heard = float(times[after[0]])
        earliest = min(fade_in.zero, start) - window
        if (
            first_heard - start < window
            or end < first_heard
            or abs(fade_in.zero - start) <= 0.5 * window
            or np.any(heard & (times >= earliest) & (times < first_heard))
        ):
            # The start is heard, the fade-out is over before this track is heard, the
            # fit already starts within a hop (half a window) of it (its own frames
            # place it more finely than the other track's fade-out), or the track is
            # heard before that start (this fade-in came earlier).
            continue
        frames = (
            min(start, fade_in.zero) - window,
            max(fade_in.full, first_heard) + FADE_SEARCH + window,
        )
        options: dict[str, Any] = dict(
            level=level, window=window, rising=True, bounds=bounds, profile=profile,
            masking=masking, frames=frames,
        )  # fmt: skip
        free = fit_fade(times, gain, zero=fade_in.zero, full=fade_in.full, **options)
        full = max(fade_in.full, first_heard)
        fixed = fit_fade(times, gain, zero=start, full=full, zero_search=0.0, **options)
        excess = (fixed.residual - free.residual) / level
        if excess <= CROSSFADE_TOLERANCE and excess < best_excess:
            best, best_excess = fixed, excess
    return best


@dataclass(frozen=True)
class Fade:
    """A fitted fade: gain 0 at ``zero``, ``level`` at ``full`` (mix s), and its shape.

    ``shape`` is "linear" (amplitude ramp), "equal-power" (quarter sine) or "cut"
    (``zero == full``: a fade shorter than a frame); ``residual`` the mean absolute
    misfit of the smoothed model to the frames.
    """

    zero: float
    full: float
    shape: str
    level: float
    residual: float
    rising: bool = True

    def gain(self, t: NDArray[np.float64]) -> NDArray[np.float64]:
        """The unsmoothed model at mix times ``t``: 0 on the far side of ``zero``,
        ``level`` on the far side of ``full``."""
        u = _fade_progress(t, self.zero, self.full, rising=self.rising)
        return self.level * _fade_shape(self.shape, u)


def _fade_progress(
    t: NDArray, zero: NDArray | float, full: NDArray | float, *, rising: bool
) -> NDArray:
    """0 at ``zero``, 1 at ``full``, clipped; a step at ``zero`` where they coincide (a
    cut: full gain from ``zero`` on for a fade-in, up to ``zero`` for a fade-out)."""
    span = np.asarray(full, dtype=float) - np.asarray(zero, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = (t - zero) / span
    step = (t >= zero) if rising else (t <= zero)
    return np.where(np.abs(span) > 1e-9, np.clip(np.nan_to_num(u), 0.0, 1.0), step)


def _fade_shape(shape: str, u: NDArray) -> NDArray:
    return np.sin(0.5 * np.pi * u) if shape == "equal-power" else u


def fit_fade(
    times: NDArray[np.float64],
    gain: NDArray[np.float64],
    *,
    zero: float,
    full: float,
    level: float,
    window: float,
    rising: bool,
    bounds: tuple[float, float] = (-np.inf, np.inf),
    profile: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None,
    masking: NDArray[np.float64] | None = None,
    search: float = FADE_SEARCH,
    step: float = FADE_STEP,
    taps: int = FADE_TAPS,
    zero_search: float | None = None,
    frames: tuple[float, float] | None = None,
) -> Fade:
    """The fade whose gain, smoothed as the frames measure it, fits ``gain`` best.

    A frame's gain is measured on its analysis window (a Hann power profile of
    ``window`` s), so near a fade's zero the measured amplitude is
    ``sqrt(mean g²)`` over the window, well above the fader's: extrapolating a line
    through the measured frames misplaces the fade's ends, and the measured dB at the
    faint end of the fade are far off. This fits the ends (``zero``, ``full``: grid
    search around the given ones, then ten times finer) and the shape
    (linear, equal-power) of a model ``level · shape(u)`` smoothed by the same window,
    by least absolute deviations (a frame where the fit of a faint track failed does
    not move the fade) on the frames from ``window`` before the fade to ``window`` after.

    Parameters
    ----------
    times, gain : arrays, shape (T,)
        Frame times (s) and measured amplitude gains.
    zero, full : float
        Starting guesses of the fade's ends.
    level : float
        The body's gain the fade reaches.
    window : float
        Analysis window of the frames (s).
    rising : bool
        A fade-in (``zero ≤ full``) or a fade-out (``zero ≥ full``).
    bounds : (float, float)
        The mix's extent: ``zero`` is kept inside it.
    profile : (array, array), optional
        Times (s) and power of the track as the mix plays it (its aligned short frames
        summed over bands): a frame measures ``g²`` averaged over its window *weighted
        by the track's own power* (a beat near the window's edge weighs more than a
        quiet centre); without it the window alone weighs.
    masking : array, shape (T,), optional
        Per frame, the power of the rest of the mix over the track's own power at unit
        gain: at gain ``g`` the track holds ``g² / (g² + masking)`` of the frame. A
        frame weighs by that share (measured gain, at most ``level``) up to
        :data:`FADE_SHARE_FULL`, above which it weighs fully: where a louder track
        masks the fading one, its measured gain is the other's leakage, and the fade
        is told by the frames where it can be heard. Without it every frame weighs 1.
    search : float
        How far (s) both ends are searched around the guesses.
    step : float
        Grid step (s) of the first search; the second is ten times finer.
    taps : int
        Points at which the analysis window is sampled.
    zero_search : float, optional
        How far (s) ``zero`` is searched, when not ``search`` (0: ``zero`` is fixed and
        only ``full`` and the shape are fitted).
    frames : (float, float), optional
        The span (s) of the frames fitted, when not the one the search reaches (fits
        compared by their residuals must see the same frames).
    """
    resolution = float(np.median(np.diff(times))) if times.size > 1 else step
    lo, hi = (zero, full) if rising else (full, zero)
    reach = float(search)
    first, last = (lo - reach - window, hi + reach + window) if frames is None else frames
    near = (times >= first) & (times <= last)
    near &= gain >= FADE_FLOOR * level
    t, g = times[near], gain[near]
    if masking is None:
        frame_weights = np.ones(t.size)
    else:
        heard = np.minimum(g, level) ** 2
        share = heard / np.maximum(heard + np.asarray(masking, dtype=float)[near], 1e-300)
        frame_weights = np.minimum(share / FADE_SHARE_FULL, 1.0)
    offsets_in_window = np.linspace(-0.5 * window, 0.5 * window, taps)
    sample = t[:, None] + offsets_in_window[None, :]  # (frames, taps)
    # The window's profile, cut at the mix's ends (the mix and the tracks are both
    # zero there: the frame measures the gain over the part inside).
    weights = np.cos(np.pi * offsets_in_window / window)[None, :] ** 2 * (
        (sample >= bounds[0]) & (sample <= bounds[1])
    )
    if profile is not None:
        weights = weights * np.interp(sample, profile[0], profile[1], left=0.0, right=0.0)
    weights /= np.maximum(weights.sum(axis=1, keepdims=True), np.finfo(float).tiny)

    # Candidates per block, so that a block's (candidates, frames, taps) stays ~2^22.
    block = max(1, (1 << 22) // max(sample.size, 1))

    def misfit(shape: str, zeros: NDArray, fulls: NDArray) -> NDArray:
        # (candidates,) absolute misfits of the smoothed model against the frames
        costs = []
        for first in range(0, zeros.size, block):
            z = zeros[first : first + block, None, None]
            f = fulls[first : first + block, None, None]
            u = _fade_progress(sample[None], z, f, rising=rising)
            model = level * np.sqrt((_fade_shape(shape, u) ** 2 * weights[None]).sum(axis=2))
            costs.append((np.abs(model - g[None]) * frame_weights[None]).sum(axis=1))
        return np.concatenate(costs) if costs else np.zeros(0)

    fits = []
    for shape in ("linear", "equal-power"):
        centre_zero, centre_full = zero, full
        for grid in (step, step / 10):
            span = reach if grid == step else step
            offsets = np.arange(-span, span + grid / 2, grid)
            zero_span = span if zero_search is None else min(span, float(zero_search))
            zero_offsets = np.arange(-zero_span, zero_span + grid / 2, grid)
            zeros = np.unique(np.clip(centre_zero + zero_offsets, *bounds))
            Z, F = np.meshgrid(zeros, centre_full + offsets, indexing="ij")
            # A fade never passes its own zero: full stays on its side of zero (with no
            # such candidate, a cut at zero).
            valid = (F >= Z) if rising else (F <= Z)
            Z, F = (Z[valid], F[valid]) if valid.any() else (Z.ravel(), Z.ravel())
            cost = misfit(shape, Z, F)
            k = int(np.argmin(cost))
            centre_zero, centre_full = float(Z[k]), float(F[k])
        residual = float(cost[k] / max(frame_weights.sum(), np.finfo(float).tiny))
        if abs(centre_full - centre_zero) < resolution:
            # Shorter than a frame: not told apart from a cut; placed midway (where the
            # power changes), or at the mix's end when it is within a frame of it.
            at = 0.5 * (centre_zero + centre_full)
            for bound in bounds:
                if abs(at - bound) < resolution:
                    at = bound
            fits.append(Fade(at, at, "cut", level, residual, rising))
        else:
            fits.append(Fade(centre_zero, centre_full, shape, level, residual, rising))
    return min(fits, key=lambda fade: fade.residual)


def _xcorr_line(
    mix_env: NDArray[np.float64],
    track_env: NDArray[np.float64],
    frame: float,
    line: NDArray[np.float64],
    body: NDArray[np.float64],
) -> tuple[PiecewiseWarp, int]:
    """A constant-speed warp refined on the onsets: windows of XCORR_SECONDS every
    XCORR_STEP s over the ``body`` times cross-correlated within ±4 frames of the line
    ``(slope, intercept)``, a robust line through the found positions, twice.

    Returns the line as a one-piece warp (the given one where too few windows agree)
    and the number of inlier windows of the last fit (0 when none was made).
    """
    slope, intercept = (float(v) for v in line)
    centres = np.arange(body.min(), body.max() + 1e-9, XCORR_STEP)
    windows = 0
    for _ in range(2):
        t_found, p_found = _xcorr_positions(
            mix_env, track_env, frame, slope, intercept, centres, 4 * frame
        )
        if t_found.size < 3:
            break
        new_slope, new_intercept, inliers = fit_warp(
            t_found, p_found, hop=XCORR_INLIER_SECONDS / INLIER_HOPS
        )
        if inliers.sum() < 3:
            break
        slope, intercept, windows = new_slope, new_intercept, int(inliers.sum())
    return PiecewiseWarp(np.zeros(0), [np.array([slope, intercept])]), windows


def _dominant_line(warp: PiecewiseWarp, times: NDArray[np.float64]) -> PiecewiseWarp:
    """One robust line through a piecewise warp at ``times`` (its longest piece wins)."""
    positions = warp(times)
    slope, intercept, _ = fit_warp(times, positions, hop=XCORR_INLIER_SECONDS)
    return PiecewiseWarp(np.zeros(0), [np.array([slope, intercept])])


def _alignment_score(
    mix_env: NDArray[np.float64],
    track_env: NDArray[np.float64],
    frame: float,
    warp: PiecewiseWarp,
    weights: NDArray[np.float64],
) -> float:
    """Weighted correlation of the mix's onset envelope with the track's read along the
    warp (weights: the track's gain at each envelope frame; 0 outside its play)."""
    count = min(mix_env.size, weights.size)
    times = np.arange(count) * frame
    read = np.interp(warp(times) / frame, np.arange(track_env.size), track_env, left=0, right=0)
    w = np.maximum(weights[:count], 0.0)
    if w.sum() <= 0:
        return -np.inf
    mix = mix_env[:count] - np.average(mix_env[:count], weights=w)
    track = read - np.average(read, weights=w)
    scale = np.sqrt(np.average(mix**2, weights=w) * np.average(track**2, weights=w))
    return float(np.average(mix * track, weights=w) / scale) if scale > 0 else -np.inf


def _play_segment(gain: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """The gain on the run of frames above LEAK_DB (re its peak) of the largest energy.

    Energy, not the peak: a single-frame outlier of the fit must not outweigh the play.
    Gaps of up to :data:`PLAY_GAP_FRAMES` frames inside a run do not split it (a frame
    where the robust fit set a faint track to zero under a louder one, mid-fade): the
    run goes on across them, their gains interpolated from its neighbours.

    Returns
    -------
    gain : array, shape (T,)
        The run's gains, zero elsewhere.
    filled : bool array, shape (T,)
        The gap frames whose gains were interpolated (not measured).
    """
    peak = float(gain.max(initial=0.0))
    if peak <= 0:
        return gain, np.zeros(gain.shape, dtype=bool)
    loud = gain > peak * 10 ** (LEAK_DB / 20)
    holes, _ = ndimage.label(~loud)
    bridged = loud.copy()
    for k, span in enumerate(ndimage.find_objects(holes), start=1):
        first, stop = span[0].start, span[0].stop
        inner = first > 0 and stop < gain.size
        if inner and stop - first <= PLAY_GAP_FRAMES:
            bridged[first:stop] = holes[first:stop] == k
    labels, count = ndimage.label(bridged)
    energy = ndimage.sum_labels(gain**2, labels, index=np.arange(1, count + 1))
    run = labels == 1 + int(np.argmax(energy))
    kept = np.where(run, gain, 0.0)
    filled = run & ~loud
    if filled.any():
        index = np.arange(gain.size)
        kept[filled] = np.interp(index[filled], index[run & loud], gain[run & loud])
    return kept, filled


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
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Amplitude gains (M, T): per frame, a robust fit of V on the aligned tracks' powers.

    Each frame minimizes the absolute log-spectral error
    ``Σ_f |log V_f − log Σ_i x_i A_if|`` over powers ``x_i = g_i² ≥ 0`` (iteratively
    reweighted Gauss–Newton, :func:`_robust_powers`), started from the relative least
    squares.
    With one track this is the median over bands of the power ratio: bands that an
    effect boosts or cuts (a bass shelf, a DJ's EQ kill), or that the analysis smears,
    move the gain only when they are the majority, where a least-squares fit moves with
    every one of them (a relative one is dragged down by cut bands most).

    A static colouring of the whole mix (a master EQ or bass boost, the tilt of an
    effect) is then estimated as the median over frames, per band, of the log-ratio of
    the mix to the fitted model, centred on its median over bands (the level stays the
    majority's), removed from V, and the frames are fitted again: in a crossfade, the
    boosted bands of one track are no longer explained by raising the other's gain.

    A track's frame whose aligned power is below :data:`QUIET_FRACTION` of its median
    over the window carries no evidence of its gain: it is left out of that frame's fit
    and its gain interpolated from its neighbours in the window.

    Returns
    -------
    gains : array, shape (M, T)
    response_db : array, shape (F,)
        The mix's estimated static colouring per band (dB of power).
    """
    n_tracks, n_frames = windows.shape
    usable = np.zeros((n_tracks, n_frames), dtype=bool)
    unknown = np.zeros((n_tracks, n_frames), dtype=bool)
    for i in range(n_tracks):
        if aligned[i] is None or not windows[i].any():
            continue
        energy = aligned[i].sum(axis=0)
        typical = (
            float(np.median(energy[windows[i] & (energy > 0)]))
            if (energy[windows[i]] > 0).any()
            else 0.0
        )
        usable[i] = windows[i] & (energy > QUIET_FRACTION * typical) & (energy > 0)
        unknown[i] = windows[i] & ~usable[i]
    fitted = np.flatnonzero(usable.any(axis=0))

    def fit(mix: NDArray[np.float64]) -> NDArray[np.float64]:
        powers = np.zeros((n_tracks, n_frames))
        w = _weights(mix)
        for n in fitted:
            active = np.flatnonzero(usable[:, n])
            A = np.stack([aligned[i][:, n] for i in active], axis=1)
            powers[active, n] = _robust_powers(A, mix[:, n], w[:, n])
        return powers

    powers = fit(V)
    response = np.zeros(V.shape[0])
    if fitted.size:
        model = np.zeros((V.shape[0], fitted.size))
        for i in range(n_tracks):
            if aligned[i] is not None:
                model += aligned[i][:, fitted] * powers[i, fitted]
        floor = 1e-3 * max(float(V.mean()), np.finfo(float).tiny)
        log_ratio = np.log(np.maximum(V[:, fitted], floor) / np.maximum(model, floor))
        response = np.median(log_ratio, axis=1)
        response -= np.median(response)
        powers = fit(V * np.exp(-response)[:, None])
    gains = np.sqrt(powers)
    for i in range(n_tracks):
        # Frames without evidence take the gain interpolated along the window.
        known = np.flatnonzero(usable[i])
        fill = np.flatnonzero(unknown[i])
        if known.size and fill.size:
            gains[i, fill] = np.interp(fill, known, gains[i, known])
    return gains, 10 * np.log10(np.e) * response


def _robust_powers(
    A: NDArray[np.float64], v: NDArray[np.float64], w: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Powers x ≥ 0 (k,) minimizing ``Σ_f |log v_f − log (A x)_f|`` (see above).

    ``A`` (F, k) the aligned powers, ``v`` (F,) the mix's, ``w`` (F,) the relative
    weights ``≈ 1 / v`` of the starting least squares (floored, so silent bands weigh
    little; ``1 / max(w)`` is also the floor of the powers inside the logarithms).
    Gauss–Newton steps on ``log (A x)`` (rows ``A / (A x)``), each a non-negative least
    squares with the IRLS weights ``1 / max(|log-ratio|, IRLS_FLOOR)``, halved while
    they do not lower the cost.
    """
    x, _ = nnls(A * w[:, None], v * w)
    floor = 1.0 / float(np.max(w))
    log_v = np.log(np.maximum(v, floor))

    def residual(powers: NDArray[np.float64]) -> tuple[NDArray, NDArray]:
        model = np.maximum(A @ powers, floor)
        return log_v - np.log(model), model

    r, model = residual(x)
    cost = float(np.abs(r).sum())
    for _ in range(IRLS_ITERATIONS):
        robust = 1.0 / np.sqrt(np.maximum(np.abs(r), IRLS_FLOOR))
        J = A / model[:, None]
        target, _ = nnls(J * robust[:, None], (r + J @ x) * robust)
        step = target - x
        for _ in range(20):  # halve the step until the cost does not rise
            trial = x + step
            r_trial, model_trial = residual(trial)
            cost_trial = float(np.abs(r_trial).sum())
            if cost_trial <= cost:
                break
            step = 0.5 * step
        else:
            break
        change = np.max(np.abs(trial - x)) / max(float(np.max(x)), np.finfo(float).tiny)
        x, r, model, cost = trial, r_trial, model_trial, cost_trial
        if change < 1e-7:
            break
    return x
