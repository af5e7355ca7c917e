"""Synthetic DJ mixes: the truth says exactly what the generator did."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import resample_poly, sosfreqz

from mnmf.data.io import write_audio
from mnmf.djmix.synthetic import (
    GeneratedMix,
    Track,
    _biquad,
    generate_mix,
    load_mix_folder,
    load_tracks,
    synthetic_tracks,
    write_mix_folder,
)

FS = 8000
SHORT = {"play_seconds": (3.0, 4.0), "crossfade_seconds": (0.5, 1.0)}


@pytest.fixture(scope="module")
def tracks() -> list[Track]:
    return synthetic_tracks(3, duration=7.0, fs=FS, rng=np.random.default_rng(11))


def reconstruct(generated: GeneratedMix) -> np.ndarray:
    """Σ g_i x_i(τ_i) from truth curves sampled at every sample (truth_hop = 1/fs)."""
    n = generated.mix.size
    out = np.zeros(n)
    for timeline, track in zip(generated.truth.tracks, generated.tracks, strict=True):
        gain, position = timeline.gain[:n], timeline.position[:n]
        heard = np.isfinite(position)
        index = np.round(position[heard] * generated.fs).astype(int)
        assert np.allclose(index, position[heard] * generated.fs, atol=1e-6)
        out[heard] += gain[heard] * track.audio[index]
    return out


def multisine(
    fs: int, seconds: float, seed: int, fmax: float = 0.3
) -> tuple[Track, Callable[[np.ndarray], np.ndarray]]:
    """A band-limited track known at any time (to check fractional positions)."""
    rng = np.random.default_rng(seed)
    freqs, phases = rng.uniform(50, fmax * fs, 12), rng.uniform(0, 2 * np.pi, 12)

    def at(seconds_: np.ndarray) -> np.ndarray:
        return np.sin(2 * np.pi * freqs[:, None] * seconds_ + phases[:, None]).sum(0) / 12

    return Track(f"sine{seed}", at(np.arange(round(seconds * fs)) / fs), fs), at


@pytest.mark.parametrize("shape", ["linear", "random"])
def test_none_mix_is_exactly_the_sum_of_gained_tracks(tracks, shape):
    generated = generate_mix(
        tracks, fs=FS, rng=np.random.default_rng(3), fade_shape=shape, loops=True,
        jumps=True, truth_hop=1 / FS, **SHORT,
    )  # fmt: skip
    truth = generated.truth
    assert generated.mix.dtype == np.float64 and generated.mix.ndim == 1
    assert truth.duration == pytest.approx(generated.mix.size / FS)
    assert [t.name for t in truth.tracks] == [t.name for t in tracks]
    assert truth.tracks[0].start == 0.0
    assert truth.tracks[-1].end == pytest.approx(truth.duration)
    np.testing.assert_allclose(generated.mix, reconstruct(generated), atol=1e-12)
    for timeline in truth.tracks:
        assert np.all(np.isnan(timeline.position[timeline.gain == 0]))
        assert timeline.speed_ratio == 1.0
        assert timeline.cue_point >= 0


@pytest.mark.parametrize("shape", ["linear", "equal-power", "cut"])
def test_gains_follow_the_fade_shape_and_tracks_overlap_only_in_crossfades(tracks, shape):
    generated = generate_mix(
        tracks, fs=FS, rng=np.random.default_rng(5), fade_shape=shape, truth_hop=0.005, **SHORT
    )
    timelines = generated.truth.tracks
    times = timelines[0].times
    gains = np.array([t.gain for t in timelines])
    assert np.all((gains >= 0) & (gains <= 1))
    assert np.all((gains > 0).sum(axis=0) <= 2)
    for out, into in itertools.pairwise(timelines):
        assert out.fade_out == pytest.approx(into.fade_in)
        assert into.start == pytest.approx(out.fade_out[0])
        a, b = into.fade_in
        during = (times >= a) & (times < b)
        if shape == "cut":
            assert a == b and out.end == into.start
            assert not during.any()
        else:
            assert b - a >= 0.5 - 1e-9
            g_out, g_in = out.gain[during], into.gain[during]
            total = g_in + g_out if shape == "linear" else g_in**2 + g_out**2
            np.testing.assert_allclose(total, 1.0, atol=1e-12)
            assert np.all(np.diff(g_in) > 0)
        overlap = (out.gain > 0) & (into.gain > 0)
        assert np.all((times[overlap] >= a - 1e-9) & (times[overlap] < b + 1e-9))
    if shape == "cut":
        assert set(np.unique(gains)) <= {0.0, 1.0}
        assert timelines[0].fade_in[0] == timelines[0].fade_in[1] == 0.0
    else:
        # fades from and to silence (the grid's last point is within a hop of the end)
        assert timelines[0].gain[0] == 0.0 and timelines[-1].gain[-1] < 0.02


def test_resample_speed_is_the_truth_and_the_audio_matches_the_resampled_reference(tracks):
    deviation = 0.06
    generated = generate_mix(
        tracks, fs=FS, rng=np.random.default_rng(8), time_scaling="resample",
        max_speed_deviation=deviation, truth_hop=0.001, **SHORT,
    )  # fmt: skip
    settings = generated.truth.settings["tracks"]
    ratios = [t.speed_ratio for t in generated.truth.tracks]
    assert len(set(ratios)) == len(ratios)
    for timeline, drawn, track in zip(generated.truth.tracks, settings, tracks, strict=True):
        p, q = drawn["speed_fraction"]
        assert timeline.speed_ratio == p / q
        assert abs(timeline.speed_ratio - 1) <= deviation
        heard = np.isfinite(timeline.position)
        slope = np.diff(timeline.position[heard]) / np.diff(timeline.times[heard])
        np.testing.assert_allclose(slope, p / q, rtol=1e-9)
        # a 0.25 s segment of the body: where does it sit in the reference resampled by p/q?
        t0 = 0.5 * (timeline.fade_in[1] + timeline.fade_out[0])
        start = round(t0 * FS)
        segment = generated.mix[start : start + FS // 4]
        position = np.interp(start / FS, timeline.times, timeline.position)
        resampled = resample_poly(track.audio, q, p)
        expected = position * FS * q / p
        lags = np.arange(-40, 41)
        base = round(expected)
        scores = [
            np.dot(segment, resampled[base + lag : base + lag + segment.size])
            / np.linalg.norm(resampled[base + lag : base + lag + segment.size])
            for lag in lags
        ]
        best = base + lags[int(np.argmax(scores))]
        assert abs(best - expected) <= 1e-3 * FS  # ±1 ms
        match = resampled[best : best + segment.size]
        assert np.corrcoef(segment, match)[0, 1] > 0.99  # up to half a sample apart


@pytest.mark.parametrize("scaling", ["resample", "ramp"])
def test_fractional_positions_render_the_reference_at_those_positions(scaling):
    track, at = multisine(FS, 12.0, seed=1)
    generated = generate_mix(
        [track], fs=FS, rng=np.random.default_rng(4), time_scaling=scaling,
        play_seconds=(8.0, 9.0), crossfade_seconds=(1.0, 2.0), truth_hop=1 / FS,
        jumps=scaling == "ramp",
    )  # fmt: skip
    timeline = generated.truth.tracks[0]
    n = generated.mix.size
    gain, position = timeline.gain[:n], timeline.position[:n]
    body = (gain == 1.0) & (position > 0.05) & (position < track.duration - 0.05)
    for event in timeline.events:  # a hard splice: the filters smear it over a few samples
        body &= np.abs(timeline.times[:n] - event["time"]) > 0.005
    assert body.sum() > 3 * FS
    expected = at(position[body])
    error = generated.mix[body] - expected
    assert 10 * np.log10(np.mean(error**2) / np.mean(expected**2)) < -50
    if scaling == "ramp":
        r0 = generated.truth.settings["tracks"][0]["speed_start"]
        r1 = generated.truth.settings["tracks"][0]["speed_end"]
        assert r0 != r1 and timeline.speed_ratio == pytest.approx(0.5 * (r0 + r1))
        assert all(abs(r - 1) <= 0.08 for r in (r0, r1))
        assert [e["kind"] for e in timeline.events] == ["jump"]


def test_stretch_records_the_rate_and_keeps_the_pitch(tracks):
    generated = generate_mix(
        tracks[:2], fs=FS, rng=np.random.default_rng(2), time_scaling="stretch",
        max_speed_deviation=0.05, truth_hop=0.01, **SHORT,
    )  # fmt: skip
    for timeline, drawn in zip(
        generated.truth.tracks, generated.truth.settings["tracks"], strict=True
    ):
        assert timeline.speed_ratio == drawn["speed_start"] == drawn["speed_end"]
        assert abs(timeline.speed_ratio - 1) <= 0.05
        heard = np.isfinite(timeline.position)
        slope = np.diff(timeline.position[heard]) / np.diff(timeline.times[heard])
        np.testing.assert_allclose(slope, timeline.speed_ratio, rtol=1e-9)
    assert np.isfinite(generated.mix).all() and np.abs(generated.mix).max() > 0.1


def test_stretch_keeps_the_level_of_the_track():
    # The phase vocoder alone loses ~3 dB (measured 2.8–3.4 dB on these tracks at rates
    # 0.95 and 1.05); the rendering restores the input's RMS, so a 9–11 s stretch of
    # the body is within 1 dB of the reference it plays (measured 0.25–0.7 dB).
    long_tracks = synthetic_tracks(2, duration=20.0, fs=FS, rng=np.random.default_rng(11))
    generated = generate_mix(
        long_tracks, fs=FS, rng=np.random.default_rng(1), time_scaling="stretch",
        max_speed_deviation=0.08, play_seconds=(12.0, 14.0), crossfade_seconds=(1.0, 2.0),
    )  # fmt: skip
    first = generated.truth.tracks[0]
    body = (first.times > first.fade_in[1] + 0.1) & (first.times < first.fade_out[0] - 0.1)
    t0, t1 = first.times[body][[0, -1]]
    heard = generated.mix[round(t0 * FS) : round(t1 * FS)]
    p0, p1 = first.position[body][[0, -1]]
    played = generated.tracks[0].audio[round(p0 * FS) : round(p1 * FS)]
    level_db = 10 * np.log10(np.mean(heard**2) / np.mean(played**2))
    assert abs(level_db) < 1.0


def test_tonal_balance_is_matched_without_moving_anything_in_time():
    from scipy.signal import butter, sosfiltfilt

    from mnmf.djmix.synthetic import _match_tonal_balance

    rng = np.random.default_rng(3)
    fs = 22050
    content = rng.standard_normal(4 * fs) * np.repeat(rng.uniform(0.2, 1.0, 40), fs // 10)
    # A colouring like the phase vocoder's, but known: +6 dB below 500 Hz (zero-phase).
    low = sosfiltfilt(butter(4, 500, fs=fs, output="sos"), content)
    coloured = content + (10 ** (6 / 20) - 1) * low

    def band_db(signal):
        spectrum = np.abs(np.fft.rfft(signal)) ** 2
        edges = np.geomspace(100, 8000, 13) / (fs / 2) * (spectrum.size - 1)
        return np.array([10 * np.log10(spectrum[int(a) : int(b)].mean())
                         for a, b in itertools.pairwise(edges)])  # fmt: skip

    before = band_db(coloured) - band_db(content)
    after = band_db(_match_tonal_balance(coloured, content, fs)) - band_db(content)
    assert before.max() > 4.0  # the planted boost, seen by this measure
    assert np.abs(after).max() < 0.5
    # An uncoloured signal comes back as it went in (within the STFT's round trip).
    same = _match_tonal_balance(content, content, fs)
    assert np.max(np.abs(same - content)) < 1e-6 * np.max(np.abs(content))
    # Zero-phase: the envelope is where it was (no lag between the two).
    matched = _match_tonal_balance(coloured, content, fs)
    lags = np.arange(-50, 51)
    scores = [np.dot(matched[100:-100], np.roll(content, lag)[100:-100]) for lag in lags]
    assert lags[int(np.argmax(scores))] == 0


def test_loops_and_jumps_show_in_events_and_position(tracks):
    hop = 1 / FS
    generated = generate_mix(
        tracks, fs=FS, rng=np.random.default_rng(9), loops=True, jumps=True,
        truth_hop=hop, play_seconds=(4.0, 5.0), crossfade_seconds=(0.5, 1.0),
    )  # fmt: skip
    kinds = [e["kind"] for t in generated.truth.tracks for e in t.events]
    assert "loop" in kinds and "jump" in kinds
    for timeline, drawn in zip(
        generated.truth.tracks, generated.truth.settings["tracks"], strict=True
    ):
        loops = [e for e in timeline.events if e["kind"] == "loop"]
        if drawn["loop"] is not None:
            assert len(loops) == drawn["loop"]["repeats"] - 1
            for event in loops:
                assert event["from"] - event["to"] == pytest.approx(drawn["loop"]["length"])
                assert event["to"] == pytest.approx(drawn["loop"]["start"])
        else:
            assert not loops
        for event in timeline.events:
            assert timeline.fade_in[1] < event["time"] < timeline.fade_out[0]
            j = math.ceil(event["time"] / hop - 1e-6)
            assert timeline.position[j] == pytest.approx(event["to"], abs=2 * hop)
            assert timeline.position[j - 1] == pytest.approx(event["from"], abs=2 * hop)
    np.testing.assert_allclose(generated.mix, reconstruct(generated), atol=1e-12)


def test_same_seed_same_mix_other_seed_differs(tracks):
    options = {"fade_shape": "random", "time_scaling": "resample", "loops": True, "eq": True,
               "effect": "compression", "snr_db": 30.0, **SHORT}  # fmt: skip
    a = generate_mix(tracks, fs=FS, rng=np.random.default_rng(1), **options)
    b = generate_mix(tracks, fs=FS, rng=np.random.default_rng(1), **options)
    c = generate_mix(tracks, fs=FS, rng=np.random.default_rng(2), **options)
    np.testing.assert_array_equal(a.mix, b.mix)
    assert a.truth.to_dict() == b.truth.to_dict()
    assert a.mix.size != c.mix.size or not np.allclose(a.mix, c.mix)
    assert a.truth.settings["tracks"] != c.truth.settings["tracks"]
    # the recorded generator state replays the mix
    replay = np.random.default_rng()
    replay.bit_generator.state = a.truth.settings["rng_state"]
    np.testing.assert_array_equal(generate_mix(tracks, fs=FS, rng=replay, **options).mix, a.mix)


def test_settings_record_every_argument(tracks):
    generated = generate_mix(tracks, fs=FS, rng=np.random.default_rng(0), **SHORT)
    settings = generated.truth.settings
    for key in ("play_seconds", "crossfade_seconds", "fade_shape", "time_scaling",
                "max_speed_deviation", "loops", "jumps", "eq", "effect", "snr_db",
                "truth_hop", "rng_state", "fade_shapes", "tracks"):  # fmt: skip
        assert key in settings
    assert [t["name"] for t in settings["tracks"]] == [t.name for t in tracks]
    for timeline, drawn in zip(generated.truth.tracks, settings["tracks"], strict=True):
        assert timeline.cue_point == drawn["cue_point"]
        assert 3.0 <= drawn["play_seconds"] <= 4.0


def test_eq_changes_only_the_incoming_track_during_its_crossfade(tracks):
    plain = generate_mix(tracks, fs=FS, rng=np.random.default_rng(6), **SHORT)
    eqd = generate_mix(tracks, fs=FS, rng=np.random.default_rng(6), eq=True, **SHORT)
    equalized = [t for t in eqd.truth.settings["tracks"] if t["eq"] is not None]
    assert equalized and equalized[0] is not eqd.truth.settings["tracks"][0]
    # EQ draws come after the others: the same plan, the same truth curves
    for a, b in zip(plain.truth.tracks, eqd.truth.tracks, strict=True):
        np.testing.assert_array_equal(a.gain, b.gain)
    changed = np.flatnonzero(np.abs(eqd.mix - plain.mix) > 1e-9)
    assert changed.size
    allowed = np.zeros(plain.mix.size, bool)
    for drawn, timeline in zip(eqd.truth.settings["tracks"], eqd.truth.tracks, strict=True):
        if drawn["eq"] is not None:
            assert drawn["eq"]["low_db"] <= -6
            a, b = timeline.fade_in
            allowed[round(a * FS) : round(b * FS)] = True
    assert allowed[changed].all()


def test_effects_and_noise(tracks):
    base = generate_mix(tracks, fs=FS, rng=np.random.default_rng(4), **SHORT).mix

    def low_energy(x):
        spectrum = np.abs(np.fft.rfft(x)) ** 2
        return spectrum[np.fft.rfftfreq(x.size, 1 / FS) < 80].sum()

    bass = generate_mix(tracks, fs=FS, rng=np.random.default_rng(4), effect="bass", **SHORT)
    assert low_energy(bass.mix) > 1.5 * low_energy(base)
    assert 3 <= bass.truth.settings["effect_settings"]["gain_db"] <= 9
    squeezed = generate_mix(
        tracks, fs=FS, rng=np.random.default_rng(4), effect="compression", **SHORT
    ).mix
    assert np.isfinite(squeezed).all()
    assert np.abs(squeezed).max() < np.abs(base).max()
    assert np.all(np.abs(squeezed) <= np.abs(base) + 1e-12)
    dist = generate_mix(tracks, fs=FS, rng=np.random.default_rng(4), effect="distortion", **SHORT)
    assert np.abs(dist.mix).max() == pytest.approx(np.abs(base).max())
    assert np.std(dist.mix) > np.std(base)
    noisy = generate_mix(tracks, fs=FS, rng=np.random.default_rng(4), snr_db=10.0, **SHORT)
    noise = noisy.mix - base
    snr = 10 * np.log10(np.mean(base**2) / np.mean(noise**2))
    assert snr == pytest.approx(10.0, abs=0.3)


def test_rbj_biquads_have_their_gains():
    fs = 22050
    for kind, freq, probe in (("low", 100.0, 5.0), ("high", 4000.0, 10900.0)):
        _, response = sosfreqz(_biquad(kind, freq, 6.0, fs), worN=[probe, freq], fs=fs)
        gains = 20 * np.log10(np.abs(response))
        assert gains[0] == pytest.approx(6.0, abs=0.1)
        assert gains[1] == pytest.approx(3.0, abs=0.1)  # half the gain at the corner
    _, response = sosfreqz(_biquad("peak", 1000.0, -6.0, fs, q=0.7), worN=[1000.0, 20.0], fs=fs)
    gains = 20 * np.log10(np.abs(response))
    assert gains[0] == pytest.approx(-6.0, abs=0.01) and abs(gains[1]) < 0.1


def test_synthetic_tracks_distinct_deterministic_and_evolving():
    a = synthetic_tracks(3, duration=12.0, fs=FS, rng=np.random.default_rng(0))
    b = synthetic_tracks(3, duration=12.0, fs=FS, rng=np.random.default_rng(0))
    assert [t.name for t in a] == ["synthetic_00", "synthetic_01", "synthetic_02"]
    for x, y in zip(a, b, strict=True):
        assert x.fs == FS and x.audio.shape == (12 * FS,) and x.audio.dtype == np.float64
        np.testing.assert_array_equal(x.audio, y.audio)
        assert np.abs(x.audio).max() == pytest.approx(0.5)

    def spectrum(x):
        return np.abs(np.fft.rfft(x, 8192)) ** 0.5

    def distance(x, y):
        sx, sy = spectrum(x), spectrum(y)
        return np.linalg.norm(sx - sy) / np.linalg.norm(sx)

    for x in a:  # two-second windows four seconds apart differ...
        assert distance(x.audio[2 * FS : 4 * FS], x.audio[6 * FS : 8 * FS]) > 0.2
    for x, y in [(a[0], a[1]), (a[1], a[2]), (a[0], a[2])]:  # ... and so do tracks
        assert distance(x.audio[2 * FS : 4 * FS], y.audio[2 * FS : 4 * FS]) > 0.3


def test_write_and_load_round_trip(tracks, tmp_path):
    generated = generate_mix(tracks, fs=FS, rng=np.random.default_rng(7), loops=True, **SHORT)
    folder = write_mix_folder(tmp_path / "mix01", generated)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mix01"]  # no temporary left
    assert sorted(p.name for p in folder.iterdir()) == ["mix.wav", "tracks", "truth.json"]
    mix, fs, loaded, truth = load_mix_folder(folder)
    assert fs == FS
    np.testing.assert_allclose(mix, generated.mix, atol=1e-6)  # float32 WAV
    assert [t.name for t in loaded] == sorted(t.name for t in tracks)
    for track in loaded:
        original = next(t for t in tracks if t.name == track.name)
        np.testing.assert_allclose(track.audio, original.audio, atol=1e-6)
    assert truth.to_dict() == generated.truth.to_dict()
    # rewriting replaces the folder atomically
    other = generate_mix(tracks[:2], fs=FS, rng=np.random.default_rng(8), **SHORT)
    write_mix_folder(folder, other)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mix01"]
    assert load_mix_folder(folder)[3].to_dict() == other.truth.to_dict()
    assert len(load_mix_folder(folder, fs=4000)[2]) == 2


def test_load_mix_folder_errors_and_optional_truth(tmp_path):
    with pytest.raises(ValueError, match="nowhere"):
        load_mix_folder(tmp_path / "nowhere")
    folder = tmp_path / "m"
    (folder / "tracks").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"mix\.wav"):
        load_mix_folder(folder)
    stereo = np.stack([np.ones(100), np.zeros(100)], axis=1)
    write_audio(folder / "mix.wav", stereo, FS)
    with pytest.raises(ValueError, match="tracks"):
        load_mix_folder(folder)
    write_audio(folder / "tracks" / "a.wav", np.ones(50), 2 * FS)
    mix, fs, loaded, truth = load_mix_folder(folder)
    assert truth is None and fs == FS
    np.testing.assert_allclose(mix, 0.5)
    assert loaded[0].fs == FS and loaded[0].audio.size == 25


def test_load_tracks_errors(tmp_path):
    with pytest.raises(ValueError, match="absent"):
        load_tracks(tmp_path / "absent")
    (tmp_path / "notes.txt").write_text("not audio")
    with pytest.raises(ValueError, match=str(tmp_path)):
        load_tracks(tmp_path)


def test_shared_tracks_make_a_mix(shared_data):
    folder = shared_data / "djmix" / "tracks"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    loaded = load_tracks(folder, fs=11025)
    assert [t.name for t in loaded] == sorted(p.stem for p in Path(folder).glob("*.wav"))
    for track in loaded:
        assert track.fs == 11025 and track.audio.ndim == 1
        assert track.duration == pytest.approx(30.0, abs=0.1)
    generated = generate_mix(
        loaded, fs=11025, rng=np.random.default_rng(0), play_seconds=(12.0, 16.0),
        crossfade_seconds=(3.0, 6.0), time_scaling="resample", fade_shape="equal-power",
    )  # fmt: skip
    assert len(generated.truth.tracks) == 3 and np.isfinite(generated.mix).all()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"fade_shape": "s-curve"}, "fade_shape.*'linear', 'equal-power', 'cut', 'random'"),
        ({"time_scaling": "warp"}, "time_scaling.*'none', 'resample', 'stretch', 'ramp'"),
        ({"effect": "reverb"}, "effect.*'bass', 'compression', 'distortion'"),
        ({"play_seconds": (3.0, 2.0)}, "play_seconds"),
        ({"crossfade_seconds": (1.0, 3.0)}, "crossfade_seconds"),
        ({"max_speed_deviation": 1.5}, "max_speed_deviation"),
        ({"truth_hop": 0.0}, "truth_hop"),
        ({"play_seconds": (9.0, 10.0)}, "synthetic_00.*play_seconds"),
    ],
)
def test_bad_options_are_refused(tracks, options, message):
    arguments = {**SHORT, **options}
    with pytest.raises(ValueError, match=message):
        generate_mix(tracks, fs=FS, rng=np.random.default_rng(0), **arguments)


def test_bad_track_lists_are_refused(tracks):
    with pytest.raises(ValueError, match="tracks"):
        generate_mix([], fs=FS, rng=0, **SHORT)
    with pytest.raises(ValueError, match="distinct"):
        generate_mix([tracks[0], tracks[0]], fs=FS, rng=0, **SHORT)
    with pytest.raises(ValueError, match="n_tracks"):
        synthetic_tracks(0, duration=1.0, fs=FS, rng=0)
    with pytest.raises(ValueError, match="duration"):
        synthetic_tracks(1, duration=0.0, fs=FS, rng=0)


def _bench_djmix():
    """benchmarks/bench_djmix.py as a module (the benchmarks are scripts, not a package)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_djmix.py"
    spec = importlib.util.spec_from_file_location("bench_djmix", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_heard_level_reference_is_the_fader_times_the_effects_level():
    """bench_djmix's "heard_level" reference: without an effect it is the truth itself;
    a compressor without make-up gain only lowers the level (the gains with it), the
    peak-kept waveshaper only raises it (|tanh(kx)/tanh k| ≥ |x| on [−1, 1])."""
    bench = _bench_djmix()
    tracks = synthetic_tracks(3, duration=40.0, fs=bench.FS, rng=np.random.default_rng(0))
    levels = {}
    for effect in ("none", "compression", "distortion"):
        generated = bench.generate(tracks, 3, "none", effect)
        heard = bench.heard_level(tracks, generated, 3, "none")
        for estimate, truth in zip(heard, generated.truth.tracks, strict=True):
            assert estimate.name == truth.name
            np.testing.assert_array_equal(estimate.position, truth.position)
            playing = truth.gain > 0.05
            levels.setdefault(effect, []).append(estimate.gain[playing] / truth.gain[playing])
    none, squeezed, driven = (np.concatenate(levels[e]) for e in levels)
    np.testing.assert_allclose(none, 1.0, rtol=1e-9)
    assert squeezed.max() <= 1.0 + 1e-9 and np.median(squeezed) < 0.97
    assert driven.min() >= 1.0 - 1e-9 and np.median(driven) > 1.3
