"""Scores of a DJ-mix transcription against the truth, as the literature reports them.

UnmixDB (Schwarz & Fourer 2018–2021) and André, Fourer & Schwarz (2024) score each
track's time-warp (error of the track position at each mix time, mean absolute error in
seconds and the share of frames within a tolerance), its gain (mean absolute error, in
dB and linear, where the track plays), and the DJ's parameters (start, end, cue point,
fades, speed), then report the *median* over tracks. :func:`evaluate_transcription`
computes these on one mix; :func:`detect_events` finds jumps and loops in a position
curve so that estimates without explicit events are scored on events too.

Definitions (per truth track; the estimate is put on the truth's grid with
:func:`~mnmf.djmix.timeline.resampled`):

- *present* frames: true gain ≥ ``min_gain_db`` (dB re gain 1, the track as it is);
  *playing* frames: present and a finite true position.
- ``warp_mae_s``: mean |τ̂(t) − τ(t)| (track s) over playing frames where the estimate's
  position is finite (frames where it is NaN are excluded here, but reported by
  ``warp_coverage`` and counted as misses by ``within_*``); NaN with no such frame.
- ``warp_coverage``: share of playing frames with a finite estimated position.
- ``within_<tol>s``: share of *all* playing frames whose error is ≤ tol (a NaN estimate
  is a miss).
- ``start_error_s``, ``end_error_s`` (mix s); ``cue_point_error_s`` (track s);
  ``fade_in_start_error_s``, ``fade_in_stop_error_s``, ``fade_out_start_error_s``,
  ``fade_out_stop_error_s`` (mix s): absolute differences of the parameters (NaN when
  either is NaN).
- ``speed_ratio_error_pct``: 100 · |ŝ / s − 1|.
- ``gain_error_db``: mean |20 log10 ĝ − 20 log10 g| over present frames, the estimate
  floored at :data:`GAIN_FLOOR_DB` (−60 dB) so that a zero estimate gives a large, finite
  error.
- ``gain_mae_linear``: mean |ĝ − g| over present frames (the literature's "gain MAE",
  linear, over the track's presence).
- ``present_correct``: 1 if the estimate says present exactly when the truth does (a
  track is present when ``present`` is set and its gain reaches ``min_gain_db``), else 0.
- ``events_precision``, ``events_recall``, ``events_f1``: estimated jumps/loops matched
  one-to-one to true ones of the same kind within ±``event_tolerance`` mix seconds
  (greedy, closest first); NaN when the truth has no events. An estimate without
  explicit ``events`` is scored on :func:`detect_events` of its position curve.
- ``events_f1_any_kind``: the same F1 with kinds ignored (a loop played twice and a
  backward jump are the same edit of the position curve: one backward discontinuity).

A truth track without an estimate has every metric NaN and is listed in
:attr:`TranscriptionScores.missing`; estimates of tracks not in the truth are ignored
and listed in :attr:`TranscriptionScores.extra`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mnmf._validation import finite_real
from mnmf.djmix.timeline import MixTruth, TrackTimeline, resampled

#: Estimated gains are floored at this level (dB) before the dB error is taken.
GAIN_FLOOR_DB = -60.0

#: The parameter errors: metric name → (attribute, index in the tuple or None).
_PARAMETERS: dict[str, tuple[str, int | None]] = {
    "start_error_s": ("start", None),
    "end_error_s": ("end", None),
    "cue_point_error_s": ("cue_point", None),
    "fade_in_start_error_s": ("fade_in", 0),
    "fade_in_stop_error_s": ("fade_in", 1),
    "fade_out_start_error_s": ("fade_out", 0),
    "fade_out_stop_error_s": ("fade_out", 1),
}


def tolerance_key(tolerance: float) -> str:
    """The metric name of a warp tolerance: ``0.1`` → ``"within_0.1s"``."""
    return f"within_{tolerance:g}s"


def metric_names(tolerances: Sequence[float] = (0.1, 0.5)) -> tuple[str, ...]:
    """Every per-track metric :func:`evaluate_transcription` reports, in order."""
    return (
        "warp_mae_s",
        "warp_coverage",
        *(tolerance_key(t) for t in tolerances),
        *_PARAMETERS,
        "speed_ratio_error_pct",
        "gain_error_db",
        "gain_mae_linear",
        "present_correct",
        "events_precision",
        "events_recall",
        "events_f1",
        "events_f1_any_kind",
    )


@dataclass(frozen=True)
class TranscriptionScores:
    """Per-track scores of a transcription (see the module for the definitions).

    Attributes
    ----------
    per_track : dict of str to dict of str to float
        Truth track name → metric → value (NaN where undefined or the track is missing),
        in the truth's track order.
    missing : list of str
        Truth tracks without an estimate.
    extra : list of str
        Estimates whose name is not a truth track (not scored).
    """

    per_track: dict[str, dict[str, float]]
    missing: list[str]
    extra: list[str]

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metric names, in report order."""
        for values in self.per_track.values():
            return tuple(values)
        return ()

    def summary(self) -> dict[str, float]:
        """Median over tracks of every metric, NaN values left out (NaN if all are)."""
        summary = {}
        for metric in self.metrics:
            values = np.asarray([scores[metric] for scores in self.per_track.values()], float)
            values = values[np.isfinite(values)]
            summary[metric] = float(np.median(values)) if values.size else math.nan
        return summary

    def records(self) -> list[dict[str, object]]:
        """Tidy rows, one per track × metric: ``track``, ``metric``, ``value``, ``missing``."""
        return [
            {
                "track": name,
                "metric": metric,
                "value": float(value),
                "missing": name in self.missing,
            }
            for name, scores in self.per_track.items()
            for metric, value in scores.items()
        ]


def evaluate_transcription(
    estimates: Sequence[TrackTimeline],
    truth: MixTruth,
    *,
    min_gain_db: float = -30.0,
    tolerances: tuple[float, ...] = (0.1, 0.5),
    event_tolerance: float = 0.1,
) -> TranscriptionScores:
    """Score estimated track timelines against a mix's truth.

    Parameters
    ----------
    estimates : sequence of TrackTimeline
        One per track (matched to the truth by ``name``), on any uniform mix-time grid.
    truth : MixTruth
    min_gain_db : float
        A track is present at a mix time where its true gain is at least this (dB re 1).
    tolerances : tuple of float
        Warp tolerances (track s), one ``within_<tol>s`` metric each.
    event_tolerance : float
        Largest mix-time difference (s) at which an estimated event matches a true one.

    Returns
    -------
    TranscriptionScores

    Raises
    ------
    ValueError
        For an estimate that is not a TrackTimeline, two estimates of one name, or a
        bad option.
    """
    if not isinstance(truth, MixTruth):
        raise ValueError(f"truth must be a MixTruth, got {type(truth).__name__}")
    min_gain_db = finite_real(min_gain_db, name="min_gain_db")
    event_tolerance = finite_real(event_tolerance, name="event_tolerance", minimum=0.0)
    tolerances = tuple(finite_real(t, name="tolerances") for t in tolerances)
    if any(t <= 0 for t in tolerances):
        raise ValueError(f"tolerances must be positive, got {tolerances}")
    by_name: dict[str, TrackTimeline] = {}
    for estimate in estimates:
        if not isinstance(estimate, TrackTimeline):
            raise ValueError(
                f"estimates must be TrackTimeline objects, got {type(estimate).__name__}"
            )
        if estimate.name in by_name:
            raise ValueError(f"estimates holds two timelines named {estimate.name!r}")
        by_name[estimate.name] = estimate
    names = [track.name for track in truth.tracks]
    per_track: dict[str, dict[str, float]] = {}
    missing = []
    for true in truth.tracks:
        estimate = by_name.get(true.name)
        if estimate is None:
            missing.append(true.name)
            per_track[true.name] = dict.fromkeys(metric_names(tolerances), math.nan)
            continue
        per_track[true.name] = _track_scores(
            estimate,
            true,
            min_gain_db=min_gain_db,
            tolerances=tolerances,
            event_tolerance=event_tolerance,
        )
    extra = [name for name in by_name if name not in names]
    return TranscriptionScores(per_track=per_track, missing=missing, extra=extra)


def _track_scores(
    estimate: TrackTimeline,
    true: TrackTimeline,
    *,
    min_gain_db: float,
    tolerances: tuple[float, ...],
    event_tolerance: float,
) -> dict[str, float]:
    on_grid = resampled(estimate, true.times)
    true_gain = np.nan_to_num(np.asarray(true.gain, float))
    est_gain = np.maximum(np.nan_to_num(on_grid.gain), 0.0)
    threshold = 10 ** (min_gain_db / 20)
    present = true_gain >= threshold
    playing = present & np.isfinite(true.position)
    scores: dict[str, float] = {}

    error = np.abs(on_grid.position - true.position)[playing]
    located = np.isfinite(error)
    n_playing = int(playing.sum())
    scores["warp_mae_s"] = float(error[located].mean()) if located.any() else math.nan
    scores["warp_coverage"] = float(located.mean()) if n_playing else math.nan
    for tolerance in tolerances:
        within = located & (np.where(located, error, np.inf) <= tolerance + 1e-9)
        scores[tolerance_key(tolerance)] = float(within.mean()) if n_playing else math.nan

    for metric, (attribute, index) in _PARAMETERS.items():
        value_true, value_est = getattr(true, attribute), getattr(estimate, attribute)
        if index is not None:
            value_true, value_est = value_true[index], value_est[index]
        scores[metric] = _difference(value_est, value_true)
    speed_true, speed_est = float(true.speed_ratio), float(estimate.speed_ratio)
    if math.isfinite(speed_true) and math.isfinite(speed_est) and speed_true != 0:
        scores["speed_ratio_error_pct"] = 100 * abs(speed_est / speed_true - 1)
    else:
        scores["speed_ratio_error_pct"] = math.nan

    if present.any():
        floor = 10 ** (GAIN_FLOOR_DB / 20)
        db_est = 20 * np.log10(np.maximum(est_gain[present], floor))
        db_true = 20 * np.log10(true_gain[present])
        scores["gain_error_db"] = float(np.abs(db_est - db_true).mean())
        scores["gain_mae_linear"] = float(np.abs(est_gain - true_gain)[present].mean())
    else:
        scores["gain_error_db"] = scores["gain_mae_linear"] = math.nan
    heard_true = bool(true.present and present.any())
    heard_est = bool(estimate.present and (est_gain >= threshold).any())
    scores["present_correct"] = float(heard_true == heard_est)

    true_events = list(true.events)
    if true_events:
        found = list(estimate.events) or detect_events(estimate)
        precision, recall, f1 = event_scores(found, true_events, tolerance=event_tolerance)
        f1_any = event_scores(found, true_events, tolerance=event_tolerance, match_kind=False)[2]
    else:
        precision = recall = f1 = f1_any = math.nan
    scores["events_precision"], scores["events_recall"], scores["events_f1"] = (
        precision,
        recall,
        f1,
    )
    scores["events_f1_any_kind"] = f1_any
    return scores


def _difference(estimate: float, truth: float) -> float:
    estimate, truth = float(estimate), float(truth)
    if math.isfinite(estimate) and math.isfinite(truth):
        return abs(estimate - truth)
    return math.nan


def event_scores(
    estimated: Sequence[dict[str, Any]],
    reference: Sequence[dict[str, Any]],
    *,
    tolerance: float = 0.1,
    match_kind: bool = True,
) -> tuple[float, float, float]:
    """Precision, recall and F1 of estimated events against reference ones.

    Events (dicts with ``kind`` and ``time``, mix s) match one-to-one when their kinds
    are equal (unless ``match_kind`` is False) and their times differ by at most
    ``tolerance``; pairs are taken closest first. Precision is NaN without estimates,
    recall NaN without references; F1 is ``2 · matches / (n_estimated + n_reference)``
    (NaN when both are empty).

    Parameters
    ----------
    estimated, reference : sequence of dict
    tolerance : float
        Mix seconds.
    match_kind : bool
        Require equal kinds.

    Returns
    -------
    precision, recall, f1 : float
    """
    tolerance = finite_real(tolerance, name="tolerance", minimum=0.0)
    for name, events in (("estimated", estimated), ("reference", reference)):
        for event in events:
            if not isinstance(event, dict) or "kind" not in event or "time" not in event:
                raise ValueError(
                    f"{name} events must be dicts with 'kind' and 'time', got {event!r}"
                )
    pairs = sorted(
        (abs(float(e["time"]) - float(r["time"])), i, j)
        for i, e in enumerate(estimated)
        for j, r in enumerate(reference)
        if abs(float(e["time"]) - float(r["time"])) <= tolerance + 1e-9
        and (e["kind"] == r["kind"] or not match_kind)
    )
    used_e: set[int] = set()
    used_r: set[int] = set()
    for _, i, j in pairs:
        if i not in used_e and j not in used_r:
            used_e.add(i)
            used_r.add(j)
    matches = len(used_e)
    n_est, n_ref = len(estimated), len(reference)
    precision = matches / n_est if n_est else math.nan
    recall = matches / n_ref if n_ref else math.nan
    f1 = 2 * matches / (n_est + n_ref) if n_est + n_ref else math.nan
    return precision, recall, f1


def detect_events(timeline: TrackTimeline, *, min_jump_s: float = 0.5) -> list[dict[str, Any]]:
    """Jumps and loops in a position curve: where it departs from steady playback.

    Between two consecutive mix frames with a finite position (a silent gap between them
    allowed), steady playback advances the position by ``speed · Δt`` (``speed``: the
    timeline's ``speed_ratio``, else the median slope, else 1). A departure larger than
    ``min_jump_s`` is an event: a ``"loop"`` when the position goes back to one played
    before (within one frame's advance), else a ``"jump"`` (forward, or back before
    anything played).

    Parameters
    ----------
    timeline : TrackTimeline
    min_jump_s : float
        Smallest departure (track s) reported.

    Returns
    -------
    list of dict
        ``{"kind": "jump" | "loop", "time": mix s of the first frame at the new
        position, "from": track s where steady playback would have been, "to": track s}``
        in time order.
    """
    if not isinstance(timeline, TrackTimeline):
        raise ValueError(f"timeline must be a TrackTimeline, got {type(timeline).__name__}")
    min_jump_s = finite_real(min_jump_s, name="min_jump_s", minimum=0.0)
    times = np.asarray(timeline.times, float)
    position = np.asarray(timeline.position, float)
    finite = np.flatnonzero(np.isfinite(position))
    if finite.size < 2:
        return []
    speed = _speed(timeline, times, position)
    step = max(abs(speed) * _grid_step(times), 1e-9)
    events: list[dict[str, Any]] = []
    for k in range(finite.size - 1):
        a, b = finite[k], finite[k + 1]
        expected = position[a] + speed * (times[b] - times[a])
        if abs(position[b] - expected) <= min_jump_s:
            continue
        target = float(position[b])
        before = position[finite[: k + 1]]
        revisit = target < position[a] and float(np.min(np.abs(before - target))) <= 1.5 * step
        events.append(
            {
                "kind": "loop" if revisit else "jump",
                "time": float(times[b]),
                "from": float(expected),
                "to": target,
            }
        )
    return events


def _speed(timeline: TrackTimeline, times: NDArray, position: NDArray) -> float:
    if math.isfinite(float(timeline.speed_ratio)):
        return float(timeline.speed_ratio)
    slopes = np.diff(position) / np.diff(times)
    slopes = slopes[np.isfinite(slopes)]
    return float(np.median(slopes)) if slopes.size else 1.0


def _grid_step(times: NDArray) -> float:
    return float(times[1] - times[0]) if times.size > 1 else 0.0
