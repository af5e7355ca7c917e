"""Piecewise warp refinement (mnmf.djmix.refine): jumps, loops and speed ramps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mnmf.djmix.evaluation import evaluate_transcription
from mnmf.djmix.features import MelFrontEnd
from mnmf.djmix.refine import PiecewiseWarp, label_events, onset_envelope, piecewise_warp

FS = 11025
TRACKS_DIR = Path("/work/shared/data/djmix/tracks")


def irregular_track(seed: int, seconds: float = 30.0, fs: int = FS) -> np.ndarray:
    """Harmonic notes of random pitch at irregular onsets (no periodicity to confuse)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * fs)
    x = np.zeros(n)
    start = 0
    while start < n:
        length = int(rng.uniform(0.12, 0.45) * fs)
        seg = np.arange(min(length, n - start)) / fs
        f0 = rng.uniform(150, 1500)
        envelope = np.exp(-seg * rng.uniform(3, 12)) * rng.uniform(0.3, 1.0)
        for h in range(1, 5):
            if h * f0 < fs / 2:
                x[start : start + seg.size] += envelope * np.sin(2 * np.pi * h * f0 * seg) / h
        start += length
    return x


def render(track: np.ndarray, position: np.ndarray, fs: int = FS) -> np.ndarray:
    """The track read at ``position`` (s) for every mix sample (linear interpolation)."""
    return np.interp(position * fs, np.arange(track.size), track)


def warp_of(mix: np.ndarray, track: np.ndarray, *, seconds: float, prior_error: float = 0.3):
    """piecewise_warp on the envelopes, with a base line and a prior a little off."""
    front = MelFrontEnd(FS, 64)
    frame = front.short_hop / FS
    mix_env = onset_envelope(front.short_mel(mix))
    track_env = onset_envelope(front.short_mel(track))
    times = np.arange(0.0, seconds, 0.5)
    return piecewise_warp(
        mix_env,
        track_env,
        frame,
        slope=1.0,
        intercept=5.0 + prior_error,
        start=0.0,
        stop=seconds,
        prior=(times, 5.0 + prior_error + times),
    )


def steady(t: np.ndarray, at: float, start: float, speed: float = 1.0) -> np.ndarray:
    return start + speed * (t - at)


def test_one_jump_is_found_and_both_sides_are_aligned():
    track = irregular_track(0)
    seconds = 16.0
    t = np.arange(int(seconds * FS)) / FS
    event = 7.3
    truth = np.where(t < event, steady(t, 0.0, 5.0), steady(t, event, 5.0 + event + 2.5))
    warp, events, _ = warp_of(render(track, truth), track, seconds=seconds)
    assert len(events) == 1
    assert events[0]["kind"] == "jump"
    assert events[0]["time"] == pytest.approx(event, abs=0.1)
    assert events[0]["to"] - events[0]["from"] == pytest.approx(2.5, abs=0.02)
    check = np.concatenate([np.arange(1.0, event - 0.3, 0.1), np.arange(event + 0.3, 15.0, 0.1)])
    assert np.max(np.abs(warp(check) - np.interp(check, t, truth))) < 0.02


def test_loop_played_three_times_gives_two_loop_events():
    track = irregular_track(1)
    seconds = 18.0
    t = np.arange(int(seconds * FS)) / FS
    first, length = 6.0, 1.5
    # Relative to steady playback: 0 before the loop, −L after the first return, −2L
    # after the second; the last pass flows on.
    back = np.where(t < first + length, 0.0, np.where(t < first + 2 * length, -length, -2 * length))
    truth = 5.0 + t + back
    warp, events, _ = warp_of(render(track, truth), track, seconds=seconds)
    assert [e["kind"] for e in events] == ["loop", "loop"]
    times = [e["time"] for e in events]
    assert times == pytest.approx([first + length, first + 2 * length], abs=0.1)
    # Both land on the loop's start (read at the estimated event time).
    true_times = np.array([first + length, first + 2 * length])
    landing = np.array([e["to"] for e in events]) - (np.array(times) - true_times)
    assert landing == pytest.approx([5.0 + first] * 2, abs=0.02)
    body = np.concatenate([np.arange(1.0, 7.2, 0.1), np.arange(9.3, 17.0, 0.1)])
    assert np.max(np.abs(warp(body) - np.interp(body, t, truth))) < 0.02


def test_speed_ramp_is_followed():
    track = irregular_track(2, seconds=40.0)
    seconds = 20.0
    t = np.arange(int(seconds * FS)) / FS
    r0, r1 = 0.95, 1.05
    truth = 5.0 + r0 * t + (r1 - r0) * t**2 / (2 * seconds)
    warp, events, info = warp_of(render(track, truth), track, seconds=seconds)
    assert events == []
    assert info["degrees"] == [2]
    check = np.arange(1.0, 19.0, 0.1)
    assert np.max(np.abs(warp(check) - np.interp(check, t, truth))) < 0.05
    assert warp.speed(1.0) == pytest.approx(r0 + (r1 - r0) / seconds, abs=0.01)


def test_constant_speed_stays_one_line():
    track = irregular_track(3, seconds=40.0)
    seconds = 16.0
    t = np.arange(int(seconds * FS)) / FS
    truth = 5.0 + 1.04 * t
    warp, events, info = warp_of(render(track, truth), track, seconds=seconds)
    assert events == []
    assert info["degrees"] == [1]
    assert warp.speed(5.0) == pytest.approx(1.04, rel=1e-3)


def test_piecewise_warp_evaluates_each_piece():
    warp = PiecewiseWarp(np.array([2.0]), [np.array([1.0, 0.0]), np.array([1.0, 5.0])])
    assert warp(np.array([1.0, 1.999, 2.0, 3.0])) == pytest.approx([1.0, 1.999, 7.0, 8.0])
    assert warp.speed(3.0) == pytest.approx(1.0)


def test_labels_follow_the_generator():
    events = [
        {"time": 5.0, "from": 11.0, "to": 9.5},  # short way back: a loop
        {"time": 6.5, "from": 11.0, "to": 9.5},  # same start again: a loop
        {"time": 10.0, "from": 14.0, "to": 10.5},  # 3.5 s back, elsewhere: a jump
        {"time": 12.0, "from": 12.5, "to": 15.0},  # forward: a jump
    ]
    kinds = [e["kind"] for e in label_events(events)]
    assert kinds == ["loop", "loop", "jump", "jump"]


@pytest.mark.slow
def test_shared_tracks_mix_with_loops_and_jumps():
    from mnmf.djmix import decompose_mix, generate_mix, load_tracks

    if not TRACKS_DIR.is_dir():
        pytest.skip(f"shared tracks not available: {TRACKS_DIR}")
    tracks = load_tracks(TRACKS_DIR, fs=FS)
    generated = generate_mix(
        tracks, fs=FS, rng=np.random.default_rng(0), play_seconds=(16, 20), loops=True, jumps=True
    )
    result = decompose_mix(generated.mix, generated.tracks, FS, rng=0)
    summary = evaluate_transcription(result.tracks, generated.truth).summary()
    nmf = evaluate_transcription(result.nmf_tracks, generated.truth).summary()
    assert summary["warp_mae_s"] < nmf["warp_mae_s"]
    assert summary["events_f1_any_kind"] > 0.3
