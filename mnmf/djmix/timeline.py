"""What a DJ mix does with each track, on the mix's time axis: the one representation of
the ground truth (:mod:`mnmf.djmix.synthetic`) and of every estimate (the multi-pass NMF
of :mod:`mnmf.djmix.decompose`, the baselines).

A :class:`TrackTimeline` holds, on a uniform grid of mix times, the track's linear gain
and its position in the track (seconds; NaN where it is silent), and the parameters a
DJ chose, derived from those curves by :func:`derive_parameters`: where the track starts
and ends in the mix, its cue point (the track position at the start), the fade-in and
fade-out (mix times where each begins and ends) and the speed ratio (track seconds per
mix second: 1.05 is played 5 % fast). A :class:`MixTruth` is the timelines of a mix's
tracks with the settings that made it; it reads and writes ``truth.json``.

Conventions: the mix is ``Σ_i g_i(t) · x_i(τ_i(t))`` (before effects and noise), with
``g_i`` the *amplitude* gain (1: as the track is) and ``τ_i`` the position (s) in track
i at mix time ``t``. A gain in dB is ``20 log10 g``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: Below this gain (dB re the track's loudest) a track counts as silent when deriving
#: its start, end and fades from a gain curve.
SILENCE_DB = -40.0


@dataclass(frozen=True)
class TrackTimeline:
    """One track in a mix: gain and position curves, and the parameters they imply.

    Attributes
    ----------
    name : str
        The track's name (its file stem).
    times : array, shape (T,)
        Mix times in seconds, a uniform grid from 0.
    gain : array, shape (T,)
        Linear amplitude gain of the track at each mix time (0 where silent).
    position : array, shape (T,)
        Position in the track in seconds at each mix time; NaN where it is silent.
    start, end : float
        Mix times (s) where the track becomes audible and where it stops (NaN if absent).
    cue_point : float
        Position in the track (s) at ``start``: where the DJ cued it.
    fade_in, fade_out : tuple of float
        Mix times (s) where the fade-in begins and ends, and where the fade-out begins
        and ends (equal for a cut).
    speed_ratio : float
        Track seconds per mix second where the track plays (median slope of
        ``position``): 1 unchanged, 1.05 played 5 % faster.
    events : tuple of dict
        Jumps and loops: ``{"kind": "jump" | "loop", "time": mix s, "from": track s,
        "to": track s}``.
    present : bool
        False for a track that is not heard in the mix.
    """

    name: str
    times: NDArray[np.float64]
    gain: NDArray[np.float64]
    position: NDArray[np.float64]
    start: float = math.nan
    end: float = math.nan
    cue_point: float = math.nan
    fade_in: tuple[float, float] = (math.nan, math.nan)
    fade_out: tuple[float, float] = (math.nan, math.nan)
    speed_ratio: float = math.nan
    events: tuple[dict[str, Any], ...] = ()
    present: bool = True

    @property
    def hop(self) -> float:
        """Seconds between two points of :attr:`times`."""
        return float(self.times[1] - self.times[0]) if self.times.size > 1 else math.nan

    @property
    def gain_db(self) -> NDArray[np.float64]:
        """``20 log10 gain`` (−inf where silent)."""
        with np.errstate(divide="ignore"):
            return 20 * np.log10(self.gain)

    def parameters(self) -> dict[str, Any]:
        """The scalar parameters as a JSON-able dict."""
        return {
            "start": self.start,
            "end": self.end,
            "cue_point": self.cue_point,
            "fade_in": list(self.fade_in),
            "fade_out": list(self.fade_out),
            "speed_ratio": self.speed_ratio,
            "present": self.present,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: the parameters, events and the curves (NaN as null)."""
        return {
            "name": self.name,
            **self.parameters(),
            "events": [dict(event) for event in self.events],
            "hop": self.hop,
            "gain": _listed(self.gain),
            "position": _listed(self.position),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrackTimeline:
        """Inverse of :meth:`to_dict`."""
        gain = np.asarray([math.nan if v is None else v for v in data["gain"]], dtype=float)
        position = np.asarray([math.nan if v is None else v for v in data["position"]], dtype=float)
        times = np.arange(gain.size) * float(data["hop"])
        return cls(
            name=str(data["name"]),
            times=times,
            gain=gain,
            position=position,
            start=_number(data.get("start")),
            end=_number(data.get("end")),
            cue_point=_number(data.get("cue_point")),
            fade_in=tuple(_number(v) for v in data.get("fade_in", (None, None))),
            fade_out=tuple(_number(v) for v in data.get("fade_out", (None, None))),
            speed_ratio=_number(data.get("speed_ratio")),
            events=tuple(dict(e) for e in data.get("events", ())),
            present=bool(data.get("present", True)),
        )


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def _listed(values: NDArray) -> list[float | None]:
    return [None if not math.isfinite(v) else float(v) for v in np.asarray(values, float)]


def derive_parameters(
    name: str,
    times: ArrayLike,
    gain: ArrayLike,
    position: ArrayLike,
    *,
    silence_db: float = SILENCE_DB,
    events: Sequence[dict[str, Any]] = (),
    fades: tuple[tuple[float, float], tuple[float, float]] | None = None,
) -> TrackTimeline:
    """A :class:`TrackTimeline` with its parameters derived from its curves.

    Parameters
    ----------
    name : str
    times : array, shape (T,)
        Uniform mix times (s).
    gain : array, shape (T,)
        Linear amplitude gain (≥ 0).
    position : array, shape (T,)
        Track position (s); NaN where unknown or silent.
    silence_db : float
        The track is audible where its gain is above ``silence_db`` dB re its peak gain.
    events : sequence of dict
        Jumps and loops, kept as given.
    fades : ((float, float), (float, float)) or None
        The fade-in and fade-out (mix s) when they are known (fitted by a model, e.g.
        :func:`mnmf.djmix.refine.fit_fade`): they set ``start``, ``end`` and the fades
        instead of the curve's frames.

    Returns
    -------
    TrackTimeline
        ``start``/``end``: where the fade-in's (fade-out's) line — linear gain between
        10 % and 90 % of the body's level, the 90th percentile of the audible gains —
        crosses zero, when that is before (after) the first (last) audible time, which
        a silence gate puts late (early) in a fade; otherwise that audible time;
        ``fade_in``: from ``start`` to the first time the gain reaches 95 % of the
        body's level; ``fade_out``: from the last such time to ``end``;
        ``cue_point``: the position at ``start``, carried back from the first located
        frame at the track's speed; ``speed_ratio``: the median of the position's slope
        where audible (jumps excluded by the median); ``position`` set to NaN where not
        audible. A track never audible is ``present=False`` with NaN parameters.
    """
    times = np.asarray(times, dtype=np.float64)
    gain = np.maximum(np.nan_to_num(np.asarray(gain, dtype=np.float64)), 0.0)
    position = np.asarray(position, dtype=np.float64).copy()
    if not (times.shape == gain.shape == position.shape) or times.ndim != 1:
        raise ValueError(
            f"times, gain and position must be 1-D of one length, got {times.shape}, "
            f"{gain.shape} and {position.shape}"
        )
    peak = float(gain.max(initial=0.0))
    audible = gain > peak * 10 ** (silence_db / 20) if peak > 0 else np.zeros_like(gain, bool)
    position[~audible] = np.nan
    if not audible.any():
        return TrackTimeline(name, times, gain, position, events=tuple(events), present=False)
    playing = np.flatnonzero(audible)
    # The body's level: a high quantile of the audible gains, so that one spike of an
    # estimated curve does not move the fades.
    body = float(np.quantile(gain[audible], 0.9))
    full = np.flatnonzero(gain >= 0.95 * body)
    start, end = float(times[playing[0]]), float(times[playing[-1]])
    fade_in_stop, fade_out_start = float(times[full[0]]), float(times[full[-1]])
    # Where a fade ramps over several frames, its line (in linear gain) crossing zero
    # dates the fade's start (end) better than the first (last) frame above the silence
    # threshold, which a -40 dB gate puts a fraction of the fade late (early).
    if fades is not None:
        (start, fade_in_stop), (fade_out_start, end) = fades
    else:
        start = min(
            start, _extrapolated_edge(times, gain, body, playing[0], full[0], default=start)
        )
        end = max(end, _extrapolated_edge(times, gain, body, full[-1], playing[-1], default=end))
    located = np.flatnonzero(np.isfinite(position))
    slopes = np.diff(position) / np.diff(times)
    slopes = slopes[np.isfinite(slopes)]
    speed_ratio = float(np.median(slopes)) if slopes.size else math.nan
    cue_point = math.nan
    if located.size:
        # The position at the start, carried back from the first located frame at the
        # track's speed (the position is unknown where the gain is below the gate).
        plausible = math.isfinite(speed_ratio) and 0.5 <= speed_ratio <= 2.0
        speed = speed_ratio if plausible else 1.0
        cue_point = float(position[located[0]] - speed * (times[located[0]] - start))
    fade_in = (start, max(fade_in_stop, start))
    fade_out = (min(fade_out_start, end), end)
    return TrackTimeline(
        name=name,
        times=times,
        gain=gain,
        position=position,
        start=start,
        end=end,
        cue_point=cue_point,
        fade_in=fade_in,
        fade_out=fade_out,
        speed_ratio=speed_ratio,
        events=tuple(events),
    )


def _extrapolated_edge(
    times: NDArray, gain: NDArray, body: float, first: int, last: int, *, default: float
) -> float:
    """Zero crossing of the line through a fade's gains between 10 % and 90 % of the body.

    ``first``/``last`` bound the fade (frame indices); ``default`` is kept when the fade
    has fewer than 3 such frames (a cut) or its line does not cross zero nearby.
    """
    span = slice(first, last + 1)
    ramp = (gain[span] >= 0.1 * body) & (gain[span] <= 0.9 * body)
    if np.count_nonzero(ramp) < 3:
        return default
    slope, intercept = np.polyfit(times[span][ramp], gain[span][ramp], 1)
    if slope == 0:
        return default
    crossing = float(-intercept / slope)
    length = float(times[last] - times[first]) + 1e-9
    return crossing if abs(crossing - default) <= 0.5 * length else default


@dataclass(frozen=True)
class MixTruth:
    """The ground truth of a mix: its tracks' timelines and the settings that made it.

    Attributes
    ----------
    fs : int
        Sample rate of ``mix.wav``.
    duration : float
        Seconds of mix.
    tracks : list of TrackTimeline
        In the order they enter the mix.
    settings : dict
        What the generator was asked for (seed, time scaling, effect, fades, SNR, ...).
    """

    fs: int
    duration: float
    tracks: list[TrackTimeline]
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fs": self.fs,
            "duration": self.duration,
            "settings": self.settings,
            "tracks": [track.to_dict() for track in self.tracks],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MixTruth:
        return cls(
            fs=int(data["fs"]),
            duration=float(data["duration"]),
            tracks=[TrackTimeline.from_dict(t) for t in data["tracks"]],
            settings=dict(data.get("settings", {})),
        )

    def write(self, path: str | os.PathLike) -> Path:
        """Write ``truth.json`` atomically."""
        from mnmf.data.io import atomic_write

        text = json.dumps(self.to_dict(), indent=1)
        return atomic_write(Path(path), lambda temporary: Path(temporary).write_text(text))

    @classmethod
    def read(cls, path: str | os.PathLike) -> MixTruth:
        """Read a ``truth.json`` (ValueError naming the file if it is not one)."""
        source = Path(path)
        try:
            return cls.from_dict(json.loads(source.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(f"cannot read the mix truth {source}: {error}") from None

    def track(self, name: str) -> TrackTimeline:
        """The timeline of the track ``name`` (ValueError listing the names)."""
        for timeline in self.tracks:
            if timeline.name == name:
                return timeline
        raise ValueError(f"no track {name!r} in the truth; tracks: {[t.name for t in self.tracks]}")


def resampled(timeline: TrackTimeline, times: ArrayLike) -> TrackTimeline:
    """The same timeline on other mix times (linear interpolation; NaN stays NaN nearby).

    Gain is interpolated linearly (0 outside); position likewise where both neighbours
    are finite, NaN elsewhere. Parameters are kept (they do not depend on the grid).
    """
    times = np.asarray(times, dtype=np.float64)
    gain = np.interp(times, timeline.times, timeline.gain, left=0.0, right=0.0)
    finite = np.isfinite(timeline.position).astype(float)
    filled = np.nan_to_num(timeline.position)
    position = np.interp(times, timeline.times, filled)
    support = np.interp(times, timeline.times, finite, left=0.0, right=0.0)
    position[support < 1.0 - 1e-9] = np.nan
    return replace(timeline, times=times, gain=gain, position=position)
