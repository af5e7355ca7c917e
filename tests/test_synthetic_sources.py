"""The seeded synthetic sources: lengths, determinism, spectra and input checks."""

import numpy as np
import pytest

from mnmf.data.synthetic import (
    harmonic_note,
    melody,
    percussive,
    speech_like,
    synthetic_sources,
)

FS = 16000.0
GENERATORS = {"melody": melody, "speech_like": speech_like, "percussive": percussive}


def frame_energies(x, frame=320):
    """Mean power of consecutive non-overlapping frames (20 ms at 16 kHz)."""
    n_frames = x.size // frame
    return np.mean(x[: n_frames * frame].reshape(n_frames, frame) ** 2, axis=1)


def power_spectrum(x, fs):
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size))) ** 2
    return np.fft.rfftfreq(x.size, 1 / fs), spectrum


@pytest.mark.parametrize("name", GENERATORS)
@pytest.mark.parametrize(("fs", "duration"), [(16000.0, 0.5), (8000.0, 0.123456), (22050, 0.0)])
def test_exact_length_and_finite_float64(name, fs, duration, rng):
    x = GENERATORS[name](fs=fs, duration=duration, rng=rng)
    assert x.shape == (round(fs * duration),)
    assert x.dtype == np.float64
    assert np.isfinite(x).all()


def test_harmonic_note_length():
    note = harmonic_note(fs=8000, duration=0.3001, f0=200.0, rng=np.random.default_rng(0))
    assert note.shape == (round(8000 * 0.3001),)
    assert np.abs(note).max() <= 1.0


def test_same_seed_same_sources_and_other_seed_differs():
    kinds = ["music", "speech", "percussion"]
    a = synthetic_sources(kinds, duration=0.5, rng=np.random.default_rng(7))
    b = synthetic_sources(kinds, duration=0.5, rng=np.random.default_rng(7))
    c = synthetic_sources(kinds, duration=0.5, rng=np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    for j in range(len(kinds)):
        assert not np.allclose(a[j], c[j])


def test_global_random_state_untouched(rng):
    # The legacy global state is read, never seeded: the generators must not touch it.
    state = np.random.get_state()  # noqa: NPY002
    synthetic_sources(["music", "speech", "percussion"], duration=0.3, rng=rng)
    after = np.random.get_state()  # noqa: NPY002
    assert state[0] == after[0]
    np.testing.assert_array_equal(state[1], after[1])
    assert state[2:] == after[2:]


def test_shape_unit_rms_and_finite(rng):
    kinds = ["music", "speech", "percussion"]
    S = synthetic_sources(kinds, fs=FS, duration=1.0, rng=rng)
    assert S.shape == (3, 16000)
    assert S.dtype == np.float64
    assert np.isfinite(S).all()
    np.testing.assert_allclose(np.sqrt(np.mean(S**2, axis=1)), 1.0, rtol=1e-12)
    assert np.abs(S).max() < 100  # peak well below anything that could overflow


def test_repeated_kind_gives_independent_sources(rng):
    S = synthetic_sources(["speech", "speech"], duration=0.5, rng=rng)
    assert not np.allclose(S[0], S[1])


def test_empty_duration_gives_empty_rows_without_nan(rng):
    S = synthetic_sources(["music", "percussion"], duration=0.0, rng=rng)
    assert S.shape == (2, 0)


def test_harmonic_note_peak_at_f0_with_second_harmonic(rng):
    f0 = 440.0
    note = harmonic_note(fs=FS, duration=1.5, f0=f0, rng=rng, vibrato_depth=0.0, decay=10.0)
    steady = note[int(0.25 * FS) : int(1.25 * FS)]  # past the attack, before the release
    freqs, power = power_spectrum(steady, FS)
    assert abs(freqs[np.argmax(power)] - f0) < 3.0

    def near(f):
        return power[np.abs(freqs - f) < 3.0].max()

    # Second harmonic: amplitude about half the fundamental, far above the noise floor.
    assert near(2 * f0) > 0.05 * power.max()
    assert near(2 * f0) > 1e4 * np.median(power)
    # Nothing between the harmonics.
    assert near(1.5 * f0) < 1e-4 * power.max()


def test_harmonic_note_drops_harmonics_above_nyquist(rng):
    # f0 = 3 kHz at fs = 8 kHz: 2·f0 would alias to 2 kHz, so only the fundamental is kept.
    note = harmonic_note(fs=8000.0, duration=1.0, f0=3000.0, rng=rng, vibrato_depth=0.0, decay=10)
    freqs, power = power_spectrum(note[800:7200], 8000.0)
    assert abs(freqs[np.argmax(power)] - 3000.0) < 3.0
    assert power[np.abs(freqs - 2000.0) < 50].max() < 1e-6 * power.max()


def test_melody_stays_at_the_only_allowed_pitch(rng):
    x = melody(fs=FS, duration=1.0, rng=rng, n_notes=3, f0_range=(440.0, 440.0))
    freqs, power = power_spectrum(x, FS)
    assert abs(freqs[np.argmax(power)] - 440.0) < 10.0  # vibrato is at most 0.8 %


def test_melody_pitches_inside_range(rng):
    low, high = 200.0, 300.0
    x = melody(fs=FS, duration=1.0, rng=rng, n_notes=4, f0_range=(low, high))
    freqs, power = power_spectrum(x, FS)
    # The fundamental is each note's strongest partial: nothing strong below the range
    # (a margin of five semitones leaves room for the broadband note onsets).
    assert power[freqs < 0.75 * low].sum() < 2e-3 * power.sum()


def test_speech_has_silent_pauses_and_energy_below_4khz(rng):
    x = speech_like(fs=FS, duration=3.0, rng=rng)
    energies = frame_energies(x)
    silent = energies < 1e-6 * energies.mean()
    assert silent.sum() >= 3  # several 20 ms frames of silence
    assert (~silent).sum() >= 0.4 * energies.size  # but mostly voiced
    freqs, power = power_spectrum(x, FS)
    assert power[freqs < 4000].sum() > 0.95 * power.sum()


def test_percussion_is_impulsive(rng):
    x = percussive(fs=FS, duration=3.0, rng=rng, rate=4.0)
    energies = frame_energies(x)
    assert energies.max() > 10 * np.median(energies)
    crest = np.abs(x).max() / np.sqrt(np.mean(x**2))
    assert crest > 4.0


def test_percussion_never_silent(rng):
    # A very low rate draws zero hits most of the time; one hit is placed anyway.
    x = percussive(fs=FS, duration=0.2, rng=rng, rate=1e-6)
    assert np.abs(x).max() > 0


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda r: synthetic_sources(["music"], duration=-1.0, rng=r), "duration"),
        (lambda r: synthetic_sources(["music"], fs=0, rng=r), "fs"),
        (lambda r: synthetic_sources(["music", "noise"], rng=r), "kinds"),
        (lambda r: synthetic_sources("music", rng=r), "kinds"),
        (lambda r: synthetic_sources([], rng=r), "kinds"),
        (lambda r: synthetic_sources(["music"], rng=42), "rng"),
        (lambda r: melody(fs=FS, duration=1.0, rng=None), "rng"),
        (lambda r: melody(fs=FS, duration=float("nan"), rng=r), "duration"),
        (lambda r: melody(fs=FS, duration=1.0, rng=r, n_notes=0), "n_notes"),
        (lambda r: melody(fs=1000.0, duration=1.0, rng=r), "f0_range"),
        (lambda r: speech_like(fs=FS, duration=1.0, rng=r, f0_range=(250, 90)), "f0_range"),
        (lambda r: percussive(fs=FS, duration=1.0, rng=r, rate=0.0), "rate"),
        (lambda r: harmonic_note(fs=FS, duration=1.0, f0=9000.0, rng=r), "f0"),
        (lambda r: harmonic_note(fs=FS, duration=1.0, f0=-5.0, rng=r), "f0"),
        (lambda r: harmonic_note(fs=FS, duration=1.0, f0=440.0, rng=r, decay=0), "decay"),
        (lambda r: harmonic_note(fs=FS, duration=1, f0=440, rng=r, n_harmonics=0), "n_harmonics"),
    ],
)
def test_bad_input_names_the_argument(call, name, rng):
    with pytest.raises(ValueError, match=name):
        call(rng)


def test_unknown_kind_lists_valid_choices(rng):
    with pytest.raises(ValueError, match="kinds") as info:
        synthetic_sources(["speech", "drums"], rng=rng)
    for valid in ("music", "speech", "percussion"):
        assert valid in str(info.value)
