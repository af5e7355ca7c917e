"""Multi-pass IS-NMF DJ-mix decomposition (mnmf.djmix.decompose, mnmf.djmix.refine)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.signal import resample_poly

from mnmf.djmix.decompose import (
    DJMixResult,
    decompose_mix,
    line_footprints,
    pitch_candidates,
    scan_pitches,
)
from mnmf.djmix.features import MelFrontEnd
from mnmf.djmix.refine import fit_warp

FS = 8000
TRACKS_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "djmix" / "tracks"
FAST = {"hops": (1.0, 0.5, 0.25), "overlap": 4, "n_mels": 32, "max_iter": 150, "tol": 1e-7}


def planted_track(seed: int, seconds: float = 15.0, fs: int = FS) -> np.ndarray:
    """A music-like signal: harmonic notes of random pitch every 0.25 s, and clicks."""
    rng = np.random.default_rng(seed)
    n = int(seconds * fs)
    t = np.arange(n) / fs
    x = np.zeros(n)
    note = int(0.25 * fs)
    for start in range(0, n, note):
        f0 = rng.uniform(150, 1200)
        seg = t[start : start + note] - t[start]
        envelope = np.exp(-seg * rng.uniform(2, 10)) * rng.uniform(0.3, 1.0)
        for h in range(1, 5):
            if h * f0 < fs / 2:
                x[start : start + note] += envelope * np.sin(2 * np.pi * h * f0 * seg) / h
    x[rng.integers(0, n, 30)] += rng.uniform(-1, 1, 30)
    return x


@pytest.fixture(scope="module")
def identity() -> tuple[np.ndarray, DJMixResult]:
    x = planted_track(0)
    other = planted_track(1)
    result = decompose_mix(0.5 * x, [("a", x, FS), ("b", other, FS)], FS, rng=0, **FAST)
    return x, result


def test_unchanged_track_gives_diagonal_and_its_gain(identity):
    _, result = identity
    final = result.passes[-1]
    H = final.H[0].toarray()  # scipy.sparse: only the surviving band is stored
    body = slice(8, H.shape[1] - 8)  # away from the half-empty edge windows
    diagonal = np.arange(H.shape[1])[body]
    assert np.all(np.abs(np.argmax(H[:, body], axis=0) - diagonal) <= 1)
    # Nearly all the activation mass lies within one frame of the diagonal.
    near = sum(np.diag(H, k)[body].sum() for k in (-1, 0, 1))
    assert near > 0.9 * H[:, body].sum()
    timeline = result.track("a")
    assert np.median(timeline.gain[body]) == pytest.approx(0.5, abs=0.03)
    assert np.max(np.abs(timeline.position[body] - timeline.times[body])) < final.hop
    assert timeline.speed_ratio == pytest.approx(1.0, abs=0.01)
    assert result.relative_volume[0, body].min() > 0.9


def test_track_not_in_mix_is_absent(identity):
    _, result = identity
    absent = result.track("b")
    assert not absent.present
    assert np.all(absent.gain == 0)
    assert np.all(np.isnan(absent.position))


def test_zeros_stay_zero_across_passes(identity):
    _, result = identity
    for record in result.passes[1:]:
        for H, mask in zip(record.H, record.mask, strict=True):
            assert np.all(H.toarray()[~mask.toarray()] == 0)
    # The band shrinks: the finest pass stores far fewer entries than a full H.
    mask = result.passes[-1].mask[0]
    assert mask.nnz < 0.5 * np.prod(mask.shape)
    assert result.passes[-1].H[0].nnz <= mask.nnz


def test_deterministic_for_a_seed():
    x = planted_track(2, seconds=10.0)
    options = {**FAST, "max_iter": 30, "refine": False}
    first = decompose_mix(0.8 * x, [("a", x, FS)], FS, rng=3, **options)
    second = decompose_mix(0.8 * x, [("a", x, FS)], FS, rng=3, **options)
    for a, b in zip(first.passes, second.passes, strict=True):
        np.testing.assert_array_equal(a.H[0].toarray(), b.H[0].toarray())
    np.testing.assert_array_equal(first.tracks[0].gain, second.tracks[0].gain)


def test_resampled_and_stereo_inputs_are_accepted():
    x = planted_track(3, seconds=10.0)
    track_16k = resample_poly(x, 2, 1)
    stereo_mix = np.stack([0.5 * x, 0.5 * x], axis=1)
    track = SimpleNamespace(name="a", audio=track_16k, fs=16000)  # any .name/.audio/.fs
    result = decompose_mix(stereo_mix, [track], FS, rng=0, **{**FAST, "max_iter": 60})
    assert result.tracks[0].present
    assert np.median(result.tracks[0].gain[8:-8]) == pytest.approx(0.5, abs=0.05)


def test_silent_track_is_absent_without_nan():
    x = planted_track(4, seconds=10.0)
    result = decompose_mix(
        x, [("a", x, FS), ("silent", np.zeros(5 * FS), FS)], FS, rng=0, **{**FAST, "max_iter": 40}
    )
    silent = result.track("silent")
    assert not silent.present
    assert np.all(silent.gain == 0)
    assert np.all(np.isfinite(result.passes[-1].H[1].toarray()))


def test_bad_inputs_name_the_argument():
    x = planted_track(5, seconds=3.0)
    with pytest.raises(ValueError, match="hops"):
        decompose_mix(x, [("a", x, FS)], FS, hops=(1.0, 0.5), overlap=4)
    with pytest.raises(ValueError, match="tracks"):
        decompose_mix(x, [], FS, hops=(0.5,), overlap=4)
    bad = x.copy()
    bad[10] = np.nan
    with pytest.raises(ValueError, match="mix"):
        decompose_mix(bad, [("a", x, FS)], FS, hops=(0.5,), overlap=4)
    with pytest.raises(ValueError, match="hops"):
        decompose_mix(x, [("a", x, FS)], FS, hops=(0.25, 0.5), overlap=4)
    for step in (-0.02, float("nan")):
        with pytest.raises(ValueError, match="pitch_step"):
            decompose_mix(x, [("a", x, FS)], FS, hops=(0.5,), overlap=4, pitch_step=step)


def test_line_footprints_span_the_speed_range():
    footprints = line_footprints(0.1, 11)
    assert len(footprints) >= 3
    for footprint in footprints:
        assert footprint.sum() == 11  # one pixel per mix frame
        assert footprint[:, 5].nonzero()[0][0] == footprint.shape[0] // 2  # centred


def test_fit_warp_ignores_outliers():
    times = np.arange(100) * 0.25
    positions = 3.0 + 1.05 * times
    positions[::10] += 7.0
    slope, intercept, inliers = fit_warp(times, positions, hop=0.25)
    assert slope == pytest.approx(1.05, abs=1e-9)
    assert intercept == pytest.approx(3.0, abs=1e-9)
    assert inliers.sum() == 90


# ---------------------------------------------------------------------- shared data
def _shared_tracks(fs: int) -> list[tuple[str, np.ndarray, int]]:
    soundfile = pytest.importorskip("soundfile")
    from mnmf.data.io import resample

    paths = sorted(TRACKS_DIR.glob("*.wav"))
    if len(paths) < 3:
        pytest.skip("shared DJ tracks absent")
    tracks = []
    for path in paths[:3]:
        audio, file_fs = soundfile.read(path)
        tracks.append((path.stem, resample(audio.mean(axis=1), file_fs, fs), fs))
    return tracks


@pytest.mark.slow
def test_planted_crossfade_mix_of_shared_tracks():
    fs = 11025
    tracks = _shared_tracks(fs)
    # (cue s, start s, end s, fade-in end, fade-out start, body gain): 4 s linear crossfades.
    plan = [(5.0, 0.0, 14.0, 0.0, 10.0, 0.8), (3.0, 10.0, 26.0, 14.0, 22.0, 1.0)]
    plan.append((8.0, 22.0, 36.0, 26.0, 36.0, 0.7))
    t = np.arange(int(36.0 * fs)) / fs
    mix = np.zeros(t.size)
    truth = []
    for (cue, start, end, fade_in, fade_out, gain), (_, audio, _) in zip(plan, tracks, strict=True):
        knots = [start, fade_in, fade_out, end]
        envelope = np.interp(t, knots, [0 if fade_in > start else gain, gain, gain, 0])
        envelope[(t < start) | (t > end)] = 0
        position = cue + (t - start)
        index = np.clip(np.round(position * fs).astype(int), 0, audio.size - 1)
        mix += envelope * audio[index]
        truth.append((envelope, position, start, end))
    result = decompose_mix(
        mix, tracks, fs, hops=(1.0, 0.5, 0.25), overlap=4, n_mels=48, max_iter=300, tol=1e-7, rng=0
    )
    hop = result.passes[-1].hop
    for timeline, (envelope, position, start, end) in zip(result.tracks, truth, strict=True):
        assert timeline.present
        gain = np.interp(timeline.times, t, envelope)
        body = gain >= 0.95 * gain.max()
        error_db = 20 * np.log10(timeline.gain[body] / gain[body])
        assert abs(np.median(error_db)) < 1.0
        expected = np.interp(timeline.times, t, position)
        assert np.median(np.abs(timeline.position[body] - expected[body])) < hop
        assert np.nanmax(np.abs(timeline.position[body] - expected[body])) < 4 * hop
        assert timeline.speed_ratio == pytest.approx(1.0, abs=0.001)
        # Starts and ends inside a crossfade are found where the track becomes audible
        # over the other one: within 2.5 s of the fade's first / last sample.
        if start > 0:
            assert abs(timeline.start - start) < 2.5
        if end < 36.0:
            assert abs(timeline.end - end) < 2.5


@pytest.mark.slow
def test_speed_change_is_recovered():
    fs = 11025
    _, audio, _ = _shared_tracks(fs)[0]
    audio = audio[: 20 * fs]
    fast = resample_poly(audio, 20, 21)  # played 5 % fast
    result = decompose_mix(
        0.7 * fast, [("a", audio, fs)], fs, rng=0, **{**FAST, "n_mels": 48, "max_iter": 200}
    )
    # Multi-pass NMF alone (robust line through its positions): within 0.6 %
    # (measured 0.44 %); refined on the onset envelopes: within 0.1 % (measured 0.003 %).
    assert result.nmf_tracks[0].speed_ratio == pytest.approx(1.05, rel=0.006)
    assert result.tracks[0].speed_ratio == pytest.approx(1.05, rel=0.001)
    # The gain refit reads the track at the found pitch (resampled: pitch 1.05 too).
    assert result.info["refinement"][0]["pitch"] == pytest.approx(1.05, rel=0.001)
    body = result.tracks[0].gain[8:-8]
    assert np.all(np.abs(20 * np.log10(body / 0.7)) < 0.5)


def test_pitch_candidates_span_the_speed_range():
    np.testing.assert_allclose(
        pitch_candidates(0.1, 0.02), 1 + 0.02 * np.arange(-5, 6), rtol=0, atol=1e-12
    )
    assert pitch_candidates(0.1, 0.0).tolist() == [1.0]
    assert pitch_candidates(0.0, 0.02).tolist() == [1.0]


def test_short_mels_equal_short_mel_at_each_pitch():
    front = MelFrontEnd(FS, 32)
    x = planted_track(4, seconds=3.0)
    together = front.short_mels(x, pitches=[0.95, 1.0, 1.07])
    for pitch, short in zip([0.95, 1.0, 1.07], together, strict=True):
        np.testing.assert_allclose(short, front.short_mel(x, pitch=pitch), rtol=1e-12)


def test_pitch_scan_finds_a_resampled_track_and_leaves_the_others():
    # Track a is played 5 % fast by resampling (pitch up 5 %), b unchanged, c absent.
    a, b, c = (planted_track(seed, seconds=20.0) for seed in (11, 12, 13))
    fast = resample_poly(a, 20, 21)
    mix = np.concatenate([fast[: 10 * FS], b[: 10 * FS]])
    front = MelFrontEnd(FS, 48)
    pitches = scan_pitches(
        front, front.short_mel(mix), mix.size, [a, b, c], pitch_candidates(0.1, 0.02),
        hop=1.0, overlap=4, threshold_db=-40.0, max_iter=200, tol=1e-6,
        rng=np.random.default_rng(0),
    )  # fmt: skip
    assert pitches[0] == pytest.approx(1.05, abs=0.005)
    assert pitches[1] == pytest.approx(1.0, abs=0.005)
    assert np.isfinite(pitches[2])
    # Through decompose_mix: the passes read a at its pitch, and its speed is found.
    result = decompose_mix(mix, [("a", a, FS), ("b", b, FS)], FS, rng=0, **FAST)
    assert result.info["pitches"][0] == pytest.approx(1.05, abs=0.005)
    assert result.tracks[0].speed_ratio == pytest.approx(1.05, rel=0.001)
    off = decompose_mix(mix, [("a", a, FS), ("b", b, FS)], FS, rng=0, pitch_step=0, **FAST)
    assert off.info["pitches"] == [1.0, 1.0]
