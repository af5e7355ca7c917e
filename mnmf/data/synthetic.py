"""Synthetic signals with a known decomposition, for demos and tests (no downloads).

The amplitude-modulated sines come from the seed slides (nmf-mnmf-slides.md,
"Simulation sur une onde sinus"): s(t) = g(αt)·sin(γt) + g(βt)·sin(δt).

The realistic-sounding mono sources (:func:`harmonic_note`, :func:`melody`,
:func:`speech_like`, :func:`percussive`, gathered by :func:`synthetic_sources`) are
drawn from a caller-given :class:`numpy.random.Generator` only, so the same seed gives
the same signals bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy import signal

from mnmf._validation import check_choice, finite_real, positive_int


def square_gate(t: NDArray) -> NDArray:
    """g(t): 1 while sin(t) ≥ 0, else 0 — a square wave of period 2π with hard edges.

    The hard edges are what the seed shows NMF struggling with ("les erreurs se
    présentent aux points de discontinuité").
    """
    return (np.sin(t) >= 0).astype(np.float64)


def gated_sines(
    *,
    fs: float = 8000.0,
    duration: float = 4 * np.pi,
    alpha: float = 1.0,
    beta: float = 2.0,
    gamma: float = 500.0,
    delta: float = 1000.0,
) -> NDArray[np.float64]:
    """The two parts of s(t) = g(αt)·sin(γt) + g(βt)·sin(δt), with g :func:`square_gate`.

    Parameters
    ----------
    fs : float
        Sample rate in Hz.
    duration : float
        Length in seconds (default 4π: two periods of the slower gate).
    alpha, beta : float
        Gate rates (rad/s): part 1 switches every π/α s, part 2 every π/β s.
    gamma, delta : float
        Carrier angular frequencies (rad/s): 500 and 1000 are about 80 and 159 Hz.

    Returns
    -------
    parts : array, shape (2, samples)
        The two sources; their sum is the mixture s(t).
    """
    fs = finite_real(fs, name="fs", minimum=1.0)
    duration = finite_real(duration, name="duration", minimum=0.0)
    for value, name in ((alpha, "alpha"), (beta, "beta"), (gamma, "gamma"), (delta, "delta")):
        finite_real(value, name=name)
    t = np.arange(round(fs * duration)) / fs
    return np.stack(
        [square_gate(alpha * t) * np.sin(gamma * t), square_gate(beta * t) * np.sin(delta * t)]
    )


def gate_edges(*, duration: float, rates: Sequence[float]) -> NDArray[np.float64]:
    """Times (s) where any of the gates :func:`square_gate` (rate · t) switches.

    ``square_gate(r t)`` switches where sin(r t) changes sign: at t = kπ / r, k ≥ 0
    (the gates open at t = 0: the signal starts on an edge).

    Parameters
    ----------
    duration : float
        Length of the signal (s); edges at or after it are left out.
    rates : sequence of float
        The gates' rates (rad/s), e.g. ``(alpha, beta)`` of :func:`gated_sines`.

    Returns
    -------
    array, shape (n_edges,)
        Sorted edge times, duplicates (gates switching together) merged.
    """
    duration = finite_real(duration, name="duration", minimum=0.0)
    edges = []
    for rate in rates:
        rate = abs(finite_real(rate, name="rates entry"))
        if rate > 0:
            edges.append(np.arange(int(np.ceil(duration * rate / np.pi)) + 1) * np.pi / rate)
    if not edges:
        return np.zeros(0)
    times = np.concatenate(edges)
    return np.unique(np.round(times[times < duration], 12))


# --------------------------------------------------------------------------------------
# Realistic-sounding mono sources drawn from a Generator
# --------------------------------------------------------------------------------------

SOURCE_KINDS = ("music", "speech", "percussion")
"""The kinds :func:`synthetic_sources` knows, in the order its error message lists them."""

_CROSSFADE = 0.01  # s, between consecutive notes of a melody
_SYLLABLE_RAMP = 0.02  # s, raised-cosine on/off ramps of a syllable
_NOTE_RELEASE = 0.005  # s, fade-out at the end of a note so it never stops with a click


def _check_generator(rng: object) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def _positive_real(value: object, *, name: str) -> float:
    """A finite real number strictly above zero."""
    number = finite_real(value, name=name, minimum=0.0)
    if number == 0.0:
        raise ValueError(f"{name} must be > 0, got {number}")
    return number


def _f0_range(value: object, *, fs: float) -> tuple[float, float]:
    """A (low, high) pitch range with 0 < low ≤ high < fs/2."""
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) != 2:
        raise ValueError(f"f0_range must be a pair (low, high) in Hz, got {value!r}")
    low = _positive_real(value[0], name="f0_range[0]")
    high = _positive_real(value[1], name="f0_range[1]")
    if low > high:
        raise ValueError(f"f0_range must be ordered (low <= high), got ({low}, {high})")
    if high >= fs / 2:
        raise ValueError(f"f0_range must stay below fs/2 = {fs / 2:g} Hz, got ({low}, {high})")
    return low, high


def _n_samples(fs: float, duration: float) -> int:
    return round(fs * duration)


def _raised_cosine(n: int) -> NDArray[np.float64]:
    """A sin² fade-in over ``n`` samples; it and its mirror image sum to exactly one."""
    return np.sin(0.5 * np.pi * (np.arange(n) + 0.5) / n) ** 2 if n > 0 else np.zeros(0)


def _fade(x: NDArray[np.float64], *, fade_in: int, fade_out: int) -> NDArray[np.float64]:
    """Multiply the first ``fade_in`` and last ``fade_out`` samples of ``x`` by sin² ramps."""
    fade_in, fade_out = min(fade_in, x.size), min(fade_out, x.size)
    x[:fade_in] *= _raised_cosine(fade_in)
    if fade_out:
        x[-fade_out:] *= _raised_cosine(fade_out)[::-1]
    return x


def _unit_rms(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """``x`` scaled to unit RMS; all-zero (or empty) input comes back as zeros, never NaN."""
    if x.size == 0:
        return x
    rms = float(np.sqrt(np.mean(x**2)))
    return x / rms if rms > 0 else np.zeros_like(x)


def _harmonic_samples(
    n: int,
    *,
    fs: float,
    f0: float,
    rng: np.random.Generator,
    n_harmonics: int,
    vibrato_depth: float,
    vibrato_rate: float,
    attack: float,
    decay: float,
) -> NDArray[np.float64]:
    """The body of :func:`harmonic_note`, for an exact number of samples (inputs checked)."""
    amplitudes = rng.uniform(0.8, 1.2, size=n_harmonics) / np.arange(1, n_harmonics + 1)
    phases = rng.uniform(0.0, 2 * np.pi, size=n_harmonics)
    vibrato_phase = rng.uniform(0.0, 2 * np.pi)
    # Keep the harmonics whose highest instantaneous frequency stays below Nyquist.
    n_kept = int(
        np.count_nonzero(np.arange(1, n_harmonics + 1) * f0 * (1 + vibrato_depth) < fs / 2)
    )
    amplitudes = amplitudes[:n_kept] / amplitudes[:n_kept].sum()  # peak ≤ 1

    t = np.arange(n) / fs
    frequency = f0 * (1.0 + vibrato_depth * np.sin(2 * np.pi * vibrato_rate * t + vibrato_phase))
    phase = 2 * np.pi * np.cumsum(frequency) / fs
    x = np.zeros(n)
    for h in range(n_kept):  # a loop over harmonics, not samples
        x += amplitudes[h] * np.sin((h + 1) * phase + phases[h])

    envelope = np.exp(-np.maximum(t - attack, 0.0) / decay)
    if attack > 0:
        envelope *= np.minimum(t / attack, 1.0)
    x *= envelope
    return _fade(x, fade_in=0, fade_out=round(_NOTE_RELEASE * fs))


def harmonic_note(
    *,
    fs: float,
    duration: float,
    f0: float,
    rng: np.random.Generator,
    n_harmonics: int = 10,
    vibrato_depth: float = 0.005,
    vibrato_rate: float = 5.5,
    attack: float = 0.02,
    decay: float = 0.3,
) -> NDArray[np.float64]:
    """One harmonic note with vibrato and an attack/decay envelope.

    Harmonic ``h`` has amplitude ∝ u_h / h with u_h ~ U(0.8, 1.2) (a slight random
    jitter) and a random phase; harmonics whose frequency could reach Nyquist (with the
    vibrato) are left out. The instantaneous frequency
    ``f(t) = f0·(1 + vibrato_depth·sin(2π·vibrato_rate·t + φ))`` is integrated into the
    phase, ``2π·cumsum(f)/fs``. The envelope rises linearly over ``attack`` seconds and
    then decays as ``exp(-(t - attack)/decay)``; the last 5 ms fade out so that the
    note never ends with a click.

    Parameters
    ----------
    fs : float
        Sample rate in Hz (≥ 1).
    duration : float
        Length in seconds (≥ 0); the note has ``round(fs·duration)`` samples.
    f0 : float
        Fundamental frequency in Hz; ``f0·(1 + vibrato_depth)`` must be below ``fs/2``.
    rng : numpy.random.Generator
        The only source of randomness (phases, amplitude jitter, vibrato phase).
    n_harmonics : int
        Number of harmonics, fundamental included, before the Nyquist cut.
    vibrato_depth : float
        Peak frequency deviation relative to ``f0`` (0.005 is about 9 cents); ≥ 0.
    vibrato_rate : float
        Vibrato frequency in Hz; ≥ 0.
    attack : float
        Duration of the linear attack in seconds; ≥ 0.
    decay : float
        Time constant of the exponential decay in seconds; > 0.

    Returns
    -------
    note : array of float64, shape (samples,)
        The note, with peak amplitude at most 1.
    """
    fs = finite_real(fs, name="fs", minimum=1.0)
    duration = finite_real(duration, name="duration", minimum=0.0)
    f0 = _positive_real(f0, name="f0")
    rng = _check_generator(rng)
    n_harmonics = positive_int(n_harmonics, name="n_harmonics")
    vibrato_depth = finite_real(vibrato_depth, name="vibrato_depth", minimum=0.0)
    vibrato_rate = finite_real(vibrato_rate, name="vibrato_rate", minimum=0.0)
    attack = finite_real(attack, name="attack", minimum=0.0)
    decay = _positive_real(decay, name="decay")
    if f0 * (1 + vibrato_depth) >= fs / 2:
        raise ValueError(
            f"f0 must satisfy f0·(1 + vibrato_depth) < fs/2 = {fs / 2:g} Hz, got f0 = {f0}"
        )
    return _harmonic_samples(
        _n_samples(fs, duration),
        fs=fs,
        f0=f0,
        rng=rng,
        n_harmonics=n_harmonics,
        vibrato_depth=vibrato_depth,
        vibrato_rate=vibrato_rate,
        attack=attack,
        decay=decay,
    )


def _semitone_pitches(
    rng: np.random.Generator, n_notes: int, low: float, high: float
) -> NDArray[np.float64]:
    """A random walk on the semitone grid (A4 = 440 Hz) folded back into [low, high]."""
    grid_low = int(np.ceil(69 + 12 * np.log2(low / 440.0) - 1e-9))
    grid_high = int(np.floor(69 + 12 * np.log2(high / 440.0) + 1e-9))
    if grid_low > grid_high:  # the range holds no semitone: draw log-uniformly instead
        return np.exp(rng.uniform(np.log(low), np.log(high), size=n_notes))
    start = rng.integers(grid_low, grid_high + 1)
    steps = rng.integers(-5, 6, size=n_notes - 1)  # mostly small intervals, up to a fourth
    walk = start - grid_low + np.concatenate([[0], np.cumsum(steps)])
    span = grid_high - grid_low
    if span == 0:
        walk = np.zeros_like(walk)
    else:  # reflect at both ends so that the walk never sticks to an edge
        walk = np.mod(walk, 2 * span)
        walk = np.where(walk > span, 2 * span - walk, walk)
    midi = grid_low + walk
    return np.clip(440.0 * 2.0 ** ((midi - 69) / 12.0), low, high)


def melody(
    *,
    fs: float,
    duration: float,
    rng: np.random.Generator,
    n_notes: int | None = None,
    f0_range: tuple[float, float] = (110.0, 880.0),
) -> NDArray[np.float64]:
    """A sequence of :func:`harmonic_note` notes at random pitches and durations.

    Pitches walk randomly on the semitone grid inside ``f0_range`` (steps of at most
    five semitones, reflected at the ends); the note lengths split ``duration`` by a
    Dirichlet draw, so they vary around ``duration / n_notes``. Each note also gets a
    random attack, decay, vibrato and number of harmonics. Consecutive notes overlap by
    10 ms with sin²/cos² crossfades (which sum to one).

    Parameters
    ----------
    fs : float
        Sample rate in Hz; must exceed ``2·f0_range[1]``.
    duration : float
        Length in seconds (≥ 0).
    rng : numpy.random.Generator
        The only source of randomness.
    n_notes : int, optional
        Number of notes; by default about one per 0.3 s (at least one).
    f0_range : (float, float)
        Lowest and highest fundamental in Hz, ``0 < low ≤ high < fs/2``.

    Returns
    -------
    x : array of float64, shape (samples,)
        ``samples = round(fs·duration)``; peak amplitude about 1 or less.
    """
    fs = finite_real(fs, name="fs", minimum=1.0)
    duration = finite_real(duration, name="duration", minimum=0.0)
    rng = _check_generator(rng)
    if n_notes is None:
        n_notes = max(1, round(duration / 0.3))
    n_notes = positive_int(n_notes, name="n_notes")
    low, high = _f0_range(f0_range, fs=fs)

    n = _n_samples(fs, duration)
    pitches = _semitone_pitches(rng, n_notes, low, high)
    fractions = rng.dirichlet(np.full(n_notes, 4.0))
    bounds = np.round(np.concatenate([[0.0], np.cumsum(fractions)]) * n).astype(int)
    bounds[-1] = n
    crossfade = round(_CROSSFADE * fs)

    x = np.zeros(n)
    for i, f0 in enumerate(pitches):
        start, stop = int(bounds[i]), int(bounds[i + 1])
        if stop == start:
            continue
        length = stop - start + min(crossfade, n - stop)  # run into the next note
        depth = min(rng.uniform(0.0, 0.008), 0.99 * fs / (2 * f0) - 1)
        note = _harmonic_samples(
            length,
            fs=fs,
            f0=float(f0),
            rng=rng,
            n_harmonics=int(rng.integers(6, 13)),
            vibrato_depth=max(depth, 0.0),
            vibrato_rate=rng.uniform(4.5, 6.5),
            attack=rng.uniform(0.005, 0.03),
            decay=rng.uniform(0.3, 1.2),
        )
        x[start : start + length] += _fade(note, fade_in=crossfade, fade_out=crossfade)
    return x


def _formant_sos(
    frequencies: NDArray[np.float64], bandwidths: NDArray[np.float64], fs: float
) -> NDArray[np.float64]:
    """Cascade of 2-pole resonators, each with unit gain at its centre frequency.

    ``H(z) = b0 / (1 − 2r·cos θ·z⁻¹ + r²·z⁻²)`` with ``r = exp(−π·B/fs)``,
    ``θ = 2π·F/fs`` and ``b0 = (1 − r)·|1 − r·e^{−2jθ}|``.
    """
    r = np.exp(-np.pi * bandwidths / fs)
    theta = 2 * np.pi * frequencies / fs
    b0 = (1 - r) * np.abs(1 - r * np.exp(-2j * theta))
    sos = np.zeros((frequencies.size, 6))
    sos[:, 0] = b0
    sos[:, 3] = 1.0
    sos[:, 4] = -2 * r * np.cos(theta)
    sos[:, 5] = r**2
    return sos


def _smooth_contour(points: NDArray[np.float64], n: int) -> NDArray[np.float64]:
    """Interpolate ``points`` (equally spaced over ``n`` samples) with cosine easing."""
    u = np.linspace(0.0, points.size - 1, n)
    index = np.minimum(np.floor(u).astype(int), points.size - 2)
    weight = 0.5 - 0.5 * np.cos(np.pi * (u - index))
    return points[index] * (1 - weight) + points[index + 1] * weight


def _syllable(
    n: int,
    *,
    fs: float,
    rng: np.random.Generator,
    log_centre: float,
    log_low: float,
    log_high: float,
) -> NDArray[np.float64]:
    """One voiced syllable of ``n`` samples: glottal harmonics + aspiration, formant-shaped."""
    spread = 0.25 * (log_high - log_low)
    points = np.clip(log_centre + spread * rng.standard_normal(3), log_low, log_high)
    f0 = np.exp(_smooth_contour(points, n))
    phase = 2 * np.pi * np.cumsum(f0) / fs
    # Harmonics up to 5 kHz (and below Nyquist), falling as h^-1.5 like a glottal source.
    n_harmonics = max(1, int(min(5000.0, 0.95 * fs / 2) // f0.max()))
    h = np.arange(1, n_harmonics + 1)
    amplitudes = h**-1.5 * rng.uniform(0.8, 1.2, size=n_harmonics)
    phases = rng.uniform(0.0, 2 * np.pi, size=n_harmonics)
    voiced = amplitudes @ np.sin(np.outer(h, phase) + phases[:, None])
    voiced_rms = np.sqrt(np.mean(voiced**2))
    excitation = voiced + 0.05 * voiced_rms * rng.standard_normal(n)

    frequencies = np.array([rng.uniform(350, 800), rng.uniform(900, 2000), rng.uniform(2200, 3000)])
    bandwidths = np.array([rng.uniform(60, 100), rng.uniform(80, 130), rng.uniform(120, 200)])
    below_nyquist = frequencies < 0.45 * fs
    if below_nyquist.any():
        sos = _formant_sos(frequencies[below_nyquist], bandwidths[below_nyquist], fs)
        excitation = signal.sosfilt(sos, excitation)
    ramp = round(_SYLLABLE_RAMP * fs)
    # The ramps act after the filter, so the resonances never ring into the pauses.
    return rng.uniform(0.4, 1.0) * _fade(_unit_rms(excitation), fade_in=ramp, fade_out=ramp)


def speech_like(
    *,
    fs: float,
    duration: float,
    rng: np.random.Generator,
    f0_range: tuple[float, float] = (90.0, 250.0),
) -> NDArray[np.float64]:
    """Voiced, speech-like syllables separated by silent pauses.

    Syllables last 80–300 ms and pauses 20–200 ms (the signal starts with a pause of
    0–100 ms). Each syllable is a harmonic "glottal" source (amplitudes ∝ h^-1.5, up to
    5 kHz) following a smooth random f0 contour inside ``f0_range`` around a pitch
    drawn once per call (one speaker), plus a little white aspiration noise, filtered
    by a cascade of up to three 2-pole formant resonators (F1 ∈ 350–800 Hz,
    F2 ∈ 900–2000 Hz, F3 ∈ 2200–3000 Hz, redrawn per syllable; those not below
    0.45·fs are dropped), then faded in and out over 20 ms so pauses are exact zeros.

    Parameters
    ----------
    fs : float
        Sample rate in Hz; must exceed ``2·f0_range[1]``.
    duration : float
        Length in seconds (≥ 0).
    rng : numpy.random.Generator
        The only source of randomness.
    f0_range : (float, float)
        Lowest and highest fundamental in Hz, ``0 < low ≤ high < fs/2``.

    Returns
    -------
    x : array of float64, shape (samples,)
        ``samples = round(fs·duration)``; each syllable has RMS between 0.4 and 1.
    """
    fs = finite_real(fs, name="fs", minimum=1.0)
    duration = finite_real(duration, name="duration", minimum=0.0)
    rng = _check_generator(rng)
    low, high = _f0_range(f0_range, fs=fs)
    log_low, log_high = np.log(low), np.log(high)
    log_centre = rng.uniform(
        log_low + 0.25 * (log_high - log_low), log_high - 0.25 * (log_high - log_low)
    )

    n = _n_samples(fs, duration)
    x = np.zeros(n)
    position = round(rng.uniform(0.0, 0.1) * fs)
    while position < n:  # a loop over syllables
        length = min(max(1, round(rng.uniform(0.08, 0.3) * fs)), n - position)
        x[position : position + length] = _syllable(
            length, fs=fs, rng=rng, log_centre=log_centre, log_low=log_low, log_high=log_high
        )
        position += length + max(1, round(rng.uniform(0.02, 0.2) * fs))
    return x


def _kick(m: int, fs: float, rng: np.random.Generator) -> NDArray[np.float64]:
    """A decaying sine whose frequency sweeps down exponentially (≈ 150 → 50 Hz)."""
    t = np.arange(m) / fs
    f_start = min(rng.uniform(100.0, 180.0), 0.45 * fs)
    f_end = min(rng.uniform(40.0, 60.0), f_start)
    frequency = f_end + (f_start - f_end) * np.exp(-t / rng.uniform(0.01, 0.04))
    return np.sin(2 * np.pi * np.cumsum(frequency) / fs)


def _hat(m: int, fs: float, rng: np.random.Generator) -> NDArray[np.float64]:
    """High-passed white noise (cut-off 5–8 kHz, at most 0.6·Nyquist)."""
    cutoff = min(rng.uniform(5000.0, 8000.0), 0.3 * fs)
    sos = signal.butter(4, cutoff, btype="highpass", fs=fs, output="sos")
    return signal.sosfilt(sos, rng.standard_normal(m))


def _noise_burst(m: int, fs: float, rng: np.random.Generator) -> NDArray[np.float64]:
    """Band-passed white noise (a snare/clap-like burst), centre 0.8–3 kHz."""
    centre = min(rng.uniform(800.0, 3000.0), 0.25 * fs)
    sos = signal.butter(2, [centre / 1.5, centre * 1.5], btype="bandpass", fs=fs, output="sos")
    return signal.sosfilt(sos, rng.standard_normal(m))


# kind: (generator, shortest and longest duration in s, probability)
_HITS = (
    (_kick, 0.08, 0.2, 0.35),
    (_hat, 0.02, 0.08, 0.35),
    (_noise_burst, 0.04, 0.2, 0.30),
)


def percussive(
    *,
    fs: float,
    duration: float,
    rng: np.random.Generator,
    rate: float = 4.0,
) -> NDArray[np.float64]:
    """Percussive hits at Poisson onsets: kicks, hats and noise bursts.

    The number of hits is Poisson with mean ``rate·duration`` and their onsets are
    uniform over the signal (a Poisson process); when the draw is zero, one hit is
    placed anyway so that the source is never silent. Each hit is, with probability
    0.35 / 0.35 / 0.30, a "kick" (sine sweeping down from 100–180 Hz to 40–60 Hz,
    80–200 ms), a "hat" (high-passed noise, 20–80 ms) or a band-passed noise burst
    (40–200 ms); its envelope decays exponentially to −60 dB at its end, its peak is
    normalized to a random gain in [0.3, 1], and hits overlap-add.

    Parameters
    ----------
    fs : float
        Sample rate in Hz (≥ 1).
    duration : float
        Length in seconds (≥ 0).
    rng : numpy.random.Generator
        The only source of randomness.
    rate : float
        Mean number of hits per second; > 0.

    Returns
    -------
    x : array of float64, shape (samples,)
        ``samples = round(fs·duration)``; exact zeros between hits.
    """
    fs = finite_real(fs, name="fs", minimum=1.0)
    duration = finite_real(duration, name="duration", minimum=0.0)
    rng = _check_generator(rng)
    rate = _positive_real(rate, name="rate")

    n = _n_samples(fs, duration)
    x = np.zeros(n)
    if n == 0:
        return x
    n_hits = max(1, int(rng.poisson(rate * duration)))
    onsets = np.sort(rng.integers(0, n, size=n_hits))
    kinds = rng.choice(len(_HITS), size=n_hits, p=[hit[3] for hit in _HITS])
    for onset, kind in zip(onsets, kinds, strict=True):  # a loop over hits
        make, shortest, longest, _ = _HITS[kind]
        m = max(1, round(rng.uniform(shortest, longest) * fs))
        hit = make(m, fs, rng) * np.exp(-6.9 * np.arange(m) / m)  # −60 dB at the end
        peak = np.abs(hit).max()
        if peak > 0:
            hit *= rng.uniform(0.3, 1.0) / peak
        stop = min(onset + m, n)
        x[onset:stop] += hit[: stop - onset]
    return x


def synthetic_sources(
    kinds: Sequence[str],
    *,
    fs: float = 16000.0,
    duration: float = 3.0,
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """Independent mono sources of the given kinds, each scaled to unit RMS.

    Parameters
    ----------
    kinds : sequence of str
        One entry per source: ``"music"`` (:func:`melody`), ``"speech"``
        (:func:`speech_like`) or ``"percussion"`` (:func:`percussive`); repeats give
        independent draws.
    fs : float
        Sample rate in Hz; with the default pitch ranges, music needs fs > 1760 Hz and
        speech fs > 500 Hz.
    duration : float
        Length in seconds (≥ 0).
    rng : numpy.random.Generator
        The only source of randomness; the sources are drawn in the order of ``kinds``.

    Returns
    -------
    sources : array of float64, shape (J, samples)
        ``J = len(kinds)`` and ``samples = round(fs·duration)``; every row has unit RMS
        (a row that came out silent stays all zeros, never NaN).

    Examples
    --------
    >>> import numpy as np
    >>> from mnmf.synthetic import synthetic_sources
    >>> S = synthetic_sources(["music", "speech"], rng=np.random.default_rng(0))
    >>> S.shape
    (2, 48000)
    """
    if isinstance(kinds, str) or not isinstance(kinds, Sequence):
        raise ValueError(
            f"kinds must be a sequence of source kinds such as ['music', 'speech'], got {kinds!r}"
        )
    if len(kinds) == 0:
        raise ValueError("kinds must name at least one source, got an empty sequence")
    for i, kind in enumerate(kinds):
        check_choice(kind, name=f"kinds[{i}]", choices=SOURCE_KINDS)
    fs = finite_real(fs, name="fs", minimum=1.0)
    duration = finite_real(duration, name="duration", minimum=0.0)
    rng = _check_generator(rng)

    makers = {"music": melody, "speech": speech_like, "percussion": percussive}
    sources = np.zeros((len(kinds), _n_samples(fs, duration)))
    for j, kind in enumerate(kinds):
        sources[j] = _unit_rms(makers[kind](fs=fs, duration=duration, rng=rng))
    return sources
