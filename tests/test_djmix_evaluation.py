"""DJ-mix transcription scores (mnmf.djmix.evaluation) and the DTW baseline (baselines)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from mnmf.djmix.baselines import dtw_transcription, local_alignment
from mnmf.djmix.evaluation import (
    detect_events,
    evaluate_transcription,
    event_scores,
    metric_names,
)
from mnmf.djmix.timeline import MixTruth, TrackTimeline, derive_parameters

HOP = 0.01


def _timeline(
    name: str,
    *,
    duration: float = 20.0,
    start: float = 2.0,
    end: float = 15.0,
    fade: float = 2.0,
    cue: float = 10.0,
    speed: float = 1.0,
    events: tuple[dict, ...] = (),
) -> TrackTimeline:
    times = np.arange(round(duration / HOP)) * HOP
    gain = np.clip(np.minimum((times - start) / fade, (end - times) / fade), 0.0, 1.0)
    position = np.where(gain > 0, cue + speed * (times - start), np.nan)
    return derive_parameters(name, times, gain, position, events=events)


def _truth(*tracks: TrackTimeline) -> MixTruth:
    return MixTruth(fs=44100, duration=20.0, tracks=list(tracks))


def test_perfect_estimate_scores_no_error() -> None:
    truth = _truth(_timeline("a"), _timeline("b", start=10.0, end=19.0, cue=3.0, speed=1.05))
    scores = evaluate_transcription(truth.tracks, truth)
    assert scores.missing == [] and scores.extra == []
    for name in ("a", "b"):
        track = scores.per_track[name]
        assert set(track) == set(metric_names())
        for metric, value in track.items():
            if metric.startswith("events"):
                assert math.isnan(value)  # the truth has no events
            elif metric.startswith(("within", "warp_coverage", "present")):
                assert value == pytest.approx(1.0)
            else:
                assert value == pytest.approx(0.0, abs=1e-9), metric
    summary = scores.summary()
    assert summary["warp_mae_s"] == 0.0 and summary["within_0.1s"] == 1.0


def test_planted_errors_are_measured() -> None:
    true = _timeline("a")
    truth = _truth(true)
    shifted = replace(true, position=true.position + 0.2)
    track = evaluate_transcription([shifted], truth).per_track["a"]
    assert track["warp_mae_s"] == pytest.approx(0.2)
    assert track["within_0.1s"] == 0.0 and track["within_0.5s"] == 1.0
    assert track["gain_error_db"] == pytest.approx(0.0)

    doubled = replace(true, gain=2 * true.gain)
    track = evaluate_transcription([doubled], truth).per_track["a"]
    assert track["gain_error_db"] == pytest.approx(20 * math.log10(2))
    present = true.gain >= 10 ** (-30 / 20)
    assert track["gain_mae_linear"] == pytest.approx(true.gain[present].mean())

    fast = _timeline("a", speed=1.05)
    track = evaluate_transcription([fast], truth).per_track["a"]
    assert track["speed_ratio_error_pct"] == pytest.approx(5.0)
    assert track["cue_point_error_s"] == pytest.approx(0.0, abs=HOP)

    late = _timeline("a", start=2.5, cue=10.5)
    track = evaluate_transcription([late], truth).per_track["a"]
    assert track["start_error_s"] == pytest.approx(0.5)
    assert track["fade_in_start_error_s"] == pytest.approx(0.5)
    assert track["fade_in_stop_error_s"] == pytest.approx(0.5)
    assert track["end_error_s"] == pytest.approx(0.0)
    assert track["cue_point_error_s"] == pytest.approx(0.5)


def test_nan_positions_lower_coverage_and_count_as_misses() -> None:
    true = _timeline("a")
    position = true.position.copy()
    playing = np.flatnonzero(np.isfinite(position))
    position[playing[: playing.size // 2]] = np.nan
    track = evaluate_transcription([replace(true, position=position)], _truth(true))
    scores = track.per_track["a"]
    assert scores["warp_mae_s"] == pytest.approx(0.0)
    assert scores["warp_coverage"] == pytest.approx(0.5, abs=0.02)
    assert scores["within_0.5s"] == pytest.approx(scores["warp_coverage"])


def test_estimate_on_another_grid_is_resampled() -> None:
    true = _timeline("a")
    coarse = np.arange(0, 20.0, 0.05)
    estimate = derive_parameters(
        "a",
        coarse,
        np.interp(coarse, true.times, true.gain),
        np.interp(coarse, true.times, np.nan_to_num(true.position, nan=-1.0)),
    )
    position = np.where(estimate.position >= 0, estimate.position, np.nan)
    scores = evaluate_transcription([replace(estimate, position=position)], _truth(true))
    assert scores.per_track["a"]["warp_mae_s"] < 1e-6
    assert scores.per_track["a"]["gain_error_db"] < 0.5


def test_missing_and_extra_estimates() -> None:
    a, b = _timeline("a"), _timeline("b", start=10.0, end=19.0)
    scores = evaluate_transcription([a, _timeline("stranger")], _truth(a, b))
    assert scores.missing == ["b"] and scores.extra == ["stranger"]
    assert all(math.isnan(v) for v in scores.per_track["b"].values())
    assert scores.summary()["warp_mae_s"] == 0.0  # the median leaves NaN out
    rows = scores.records()
    assert len(rows) == 2 * len(metric_names())
    assert {row["track"] for row in rows if row["missing"]} == {"b"}


def test_absent_estimate_scores_large_gain_error() -> None:
    true = _timeline("a")
    silent = derive_parameters("a", true.times, np.zeros_like(true.gain), true.position)
    scores = evaluate_transcription([silent], _truth(true)).per_track["a"]
    assert scores["present_correct"] == 0.0
    assert scores["warp_coverage"] == 0.0 and math.isnan(scores["warp_mae_s"])
    assert scores["gain_error_db"] > 30


def test_bad_input_names_the_argument() -> None:
    true = _timeline("a")
    with pytest.raises(ValueError, match="estimates"):
        evaluate_transcription([true, true], _truth(true))
    with pytest.raises(ValueError, match="truth"):
        evaluate_transcription([true], [true])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tolerances"):
        evaluate_transcription([true], _truth(true), tolerances=(0.0,))


def test_event_f1_one_match_one_spurious() -> None:
    truth = [{"kind": "loop", "time": 5.0, "from": 8.0, "to": 6.0}]
    estimated = [
        {"kind": "loop", "time": 5.05, "from": 8.0, "to": 6.0},
        {"kind": "jump", "time": 9.0, "from": 12.0, "to": 15.0},
    ]
    precision, recall, f1 = event_scores(estimated, truth, tolerance=0.1)
    assert (precision, recall, f1) == pytest.approx((0.5, 1.0, 2 / 3))
    assert event_scores(estimated[1:], truth)[2] == 0.0
    # a wrong kind does not match, unless kinds are ignored
    wrong = [{**estimated[0], "kind": "jump"}]
    assert event_scores(wrong, truth)[2] == 0.0
    assert event_scores(wrong, truth, match_kind=False)[2] == 1.0


def test_detect_events_finds_a_jump_and_a_loop() -> None:
    times = np.arange(0, 20.0, 0.05)
    position = 10.0 + times  # steady
    position[times >= 6.0] -= 3.0  # back to 13 s, played at 3 s: a loop
    position[times >= 12.0] += 5.0  # forward: a jump
    timeline = derive_parameters("a", times, np.ones_like(times), position)
    events = detect_events(timeline)
    assert [e["kind"] for e in events] == ["loop", "jump"]
    assert [e["time"] for e in events] == pytest.approx([6.0, 12.0])
    assert events[0]["to"] == pytest.approx(13.0) and events[0]["from"] == pytest.approx(16.0)
    # back before anything played is a jump, not a loop
    early = derive_parameters(
        "b", times, np.ones_like(times), np.where(times < 6, 10 + times, times)
    )
    assert [e["kind"] for e in detect_events(early)] == ["jump"]
    # events detected from the position score against the truth's explicit events
    truth = replace(timeline, events=tuple(events))
    estimate = replace(timeline, events=())
    scores = evaluate_transcription([estimate], _truth(truth)).per_track["a"]
    assert scores["events_f1"] == 1.0


# ----------------------------------------------------------------- the DTW baseline
FS = 11025


def _tone_track(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """Notes of random pitch (with harmonics, some with a noise burst): each position
    sounds different, so the alignment is identifiable."""
    n = round(seconds * FS)
    out = np.zeros(n)
    at = 0
    while at < n:
        length = round(rng.uniform(0.15, 0.4) * FS)
        f0 = 110 * 2 ** (rng.integers(0, 48) / 12)
        t = np.arange(length) / FS
        note = sum(
            np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi)) / k
            for k in range(1, 5)
            if f0 * k < FS / 2
        )
        if rng.random() < 0.3:
            note = note + 0.5 * rng.standard_normal(length) * np.exp(-20 * t)
        stop = min(n, at + length)
        out[at:stop] = (np.exp(-t * rng.uniform(2, 8)) * note)[: stop - at]
        at = stop
    return 0.3 * out / np.abs(out).max()


@pytest.fixture(scope="module")
def planted() -> tuple[np.ndarray, list[tuple[str, np.ndarray, int]], MixTruth]:
    """A at full gain 0–8 s from its start, linear crossfade 8–10 s into B (cue 2 s,
    played 5 % fast, like a turntable), B cut at 17.5 s (its end); C is never heard."""
    rng = np.random.default_rng(20261201)
    a, b, c = (_tone_track(rng, 12.0) for _ in range(3))
    t = np.arange(round(18.0 * FS)) / FS
    curves = {
        "A": (np.clip((10 - t) / 2, 0, 1), t.copy()),
        "B": (np.clip((t - 8) / 2, 0, 1) * (t < 17.5), 2.0 + 1.05 * (t - 8)),
    }
    mix = np.zeros_like(t)
    for (gain, position), audio in zip(curves.values(), (a, b), strict=True):
        played = np.interp(position * FS, np.arange(audio.size), audio, left=0.0, right=0.0)
        mix += gain * played
    grid = np.arange(0, 18.0, HOP)
    truths = [
        derive_parameters(
            name,
            grid,
            np.interp(grid, t, gain),
            np.where(np.interp(grid, t, gain) > 0, np.interp(grid, t, position), np.nan),
        )
        for name, (gain, position) in curves.items()
    ]
    tracks = [("A", a, FS), ("B", b, FS), ("C", c, FS)]
    return mix, tracks, MixTruth(fs=FS, duration=18.0, tracks=truths)


@pytest.fixture(scope="module")
def dtw_estimates(planted) -> list[TrackTimeline]:
    mix, tracks, _ = planted
    return dtw_transcription(mix, tracks, FS)


def test_dtw_baseline_recovers_positions_and_gains(planted, dtw_estimates) -> None:
    _, _, truth = planted
    assert [e.name for e in dtw_estimates] == ["A", "B", "C"]
    hop = dtw_estimates[0].hop
    scores = evaluate_transcription(dtw_estimates, truth)
    assert scores.extra == ["C"]
    for name in ("A", "B"):
        track = scores.per_track[name]
        assert track["warp_mae_s"] < hop, (name, track)
        assert track["warp_coverage"] > 0.9, (name, track)
        assert track["within_0.1s"] > 0.9, (name, track)
        assert track["speed_ratio_error_pct"] < 1.0, (name, track)
    assert scores.per_track["B"]["cue_point_error_s"] < 0.2
    assert scores.per_track["B"]["start_error_s"] < 0.5
    # the gains in the body of each track (true gain ≥ −1 dB)
    body = evaluate_transcription(dtw_estimates, truth, min_gain_db=-1.0)
    for name in ("A", "B"):
        assert body.per_track[name]["gain_error_db"] < 2.0, (name, body.per_track[name])


def test_dtw_baseline_reports_an_unplayed_track_absent(dtw_estimates) -> None:
    absent = dtw_estimates[2]
    assert not absent.present or absent.gain.max() < 0.05
    assert np.isnan(absent.position).all() or not absent.present


def test_dtw_baseline_accepts_objects_other_rates_and_chroma(planted) -> None:
    mix, tracks, _ = planted

    class Track:
        def __init__(self, name: str, audio: np.ndarray, fs: int) -> None:
            self.name, self.audio, self.fs = name, audio, fs

    from mnmf.data.io import resample

    objects = [Track(name, resample(audio, fs, 2 * fs), 2 * fs) for name, audio, fs in tracks[:2]]
    estimates = dtw_transcription(mix[: 12 * FS], objects, FS, features="chroma", hop=0.1)
    assert estimates[0].hop == pytest.approx(round(0.1 * FS) / FS)
    assert estimates[0].present and estimates[0].start < 0.5


def test_dtw_baseline_rejects_bad_input(planted) -> None:
    mix, tracks, _ = planted
    with pytest.raises(ValueError, match="features"):
        dtw_transcription(mix, tracks, FS, features="mfcc")
    with pytest.raises(ValueError, match="hop"):
        dtw_transcription(mix, tracks, FS, hop=0.0)
    with pytest.raises(ValueError, match="mix"):
        dtw_transcription(np.full(100, np.nan), tracks, FS)
    with pytest.raises(ValueError, match=r"tracks\[0\]"):
        dtw_transcription(mix, ["not a track"], FS)


def test_local_alignment_finds_a_planted_segment(rng) -> None:
    features = rng.standard_normal((12, 300))
    features /= np.linalg.norm(features, axis=0)
    reference = np.hstack([rng.standard_normal((12, 50)), features[:, 100:200]])
    reference /= np.linalg.norm(reference, axis=0)
    path = local_alignment(features, reference, threshold=0.99)
    assert path is not None
    query_frames, reference_frames = path
    # random frames may extend the ends by a few pairs; the middle is exact
    assert abs(query_frames[0] - 100) <= 5 and abs(query_frames[-1] - 199) <= 5
    middle = (query_frames >= 110) & (query_frames < 190)
    assert middle.sum() == 80
    np.testing.assert_array_equal(query_frames[middle] - reference_frames[middle], 50)
    assert local_alignment(features[:, :0], reference) is None
    with pytest.raises(ValueError, match="threshold"):
        local_alignment(features, reference, threshold=1.0)
