"""Synthetic DJ mixes that know their ground truth (after UnmixDB, and beyond it).

:func:`generate_mix` plays a list of reference tracks one after the other, each from a
drawn cue point for a drawn play length, with crossfades between consecutive tracks,
optional time scaling, loops, jumps, EQ, an effect on the mix and noise; it returns the
mix with a :class:`~mnmf.djmix.timeline.MixTruth` that records exactly what it did.
:func:`synthetic_tracks` makes musical reference tracks (beat, bass, chords, melody) when
no real ones are at hand; :func:`load_tracks` reads real ones; :func:`write_mix_folder`
and :func:`load_mix_folder` store a mix as ``mix.wav``, ``tracks/<name>.wav`` and
``truth.json``.

Semantics
---------
The mix is ``y(t) = E[Σ_i g_i(t) · x_i(τ_i(t))] + n(t)``: ``x_i`` the reference track i
(mono, at the mix's rate), ``g_i`` its fader gain (linear amplitude), ``τ_i`` its
position (s in the reference) at mix time ``t``, ``E`` the effect (identity for
``"none"``) and ``n`` white Gaussian noise. The truth's ``gain`` is ``g_i`` and its
``position`` is ``τ_i`` (NaN where ``g_i = 0``), sampled every ``truth_hop`` seconds
from 0 to the mix's duration.

- Tracks play in the order given. Track i is heard on ``[start_i, end_i)`` (mix s),
  ``end_i - start_i`` drawn from ``play_seconds``; the first starts at 0, each next one
  starts where the previous one's fade-out begins, so tracks overlap only during
  crossfades (never three at once). Every time is a whole number of samples.
- Fades: a crossfade of length ``C`` (drawn from ``crossfade_seconds``) is the outgoing
  track's fade-out and the incoming one's fade-in over the same interval; with
  ``u ∈ [0, 1)`` the fraction elapsed, "linear" is ``g_in = u, g_out = 1 − u``,
  "equal-power" is ``g_in = sin(πu/2), g_out = cos(πu/2)`` and "cut" is an
  instantaneous switch (``C = 0``: fade start == stop, no overlap). The first track
  fades in from 0 over a drawn length (or starts at full gain for "cut"), the last
  fades out likewise. "random" draws the shape of each fade among the three.
- Cue point: the position at ``start`` (a whole sample of the reference), drawn
  uniformly among those that leave room for the whole play (its play length × speed,
  after loops and jumps). A reference too short for its play raises a ValueError
  naming the track (lower ``play_seconds`` or ``max_speed_deviation``); it is never
  silently shortened.
- Time scaling (speed ``r``: track seconds per mix second, drawn uniformly in
  ``1 ± max_speed_deviation``): "none": ``r = 1``, the reference's samples are copied.
  "resample": speed and pitch change together; ``r`` is rounded to a fraction ``p/q``
  (q ≤ 200) and the track is resampled with :func:`scipy.signal.resample_poly` (up q,
  down p), so ``τ`` advances exactly ``p/q`` per second (``speed_ratio`` is ``p/q``).
  "stretch": :func:`librosa.effects.time_stretch` at rate ``r`` (tempo without pitch);
  ``τ`` advances at ``r``; the phase vocoder keeps the alignment within about one STFT
  hop (512 samples; measured on tone bursts at 11.025 kHz: within ±50 ms, no drift).
  Its output is equalized to the long-term spectrum of its input (a static zero-phase
  EQ per mel band, :func:`_match_tonal_balance`) and rescaled to the RMS of its input:
  the phase vocoder alone loses about 3.4 dB on music (partials whose phases it
  decorrelates; measured on the shared tracks at rates 0.95 and 1.05, none at 1.0) and
  colours it by −3.5 to +1.1 dB per band (same tracks and rates; after the EQ within
  ±0.5 dB), a level and tone change that DJ software's time-stretch does not make and
  that would otherwise count against every gain estimate (a track-dependent bias of
  ±0.3–0.6 dB on the refined gains of the accuracy benchmark's stretched mixes).
  "ramp": the speed changes linearly from ``r0`` to ``r1`` (both drawn) over the play;
  ``τ`` is the integral of the speed (``speed_ratio`` is the mean ``(r0 + r1)/2``) and
  the track is rendered by 4× band-limited upsampling (``resample_poly``) then Keys
  cubic interpolation at ``τ``: the rendering error is about
  −60 dB re the signal for content below 0.3·fs, −50 dB up to 0.4·fs and −40 dB at
  0.45·fs (measured on random multi-sines).
- Loops and jumps are edits of the played content, each in a random half of the tracks
  (at least one): a loop plays a segment of 1–2 s (a few beats) 2–4 times (an event
  ``{"kind": "loop", "time", "from", "to"}`` at each return to the loop's start), a
  jump skips 1–4 s forward or backward (``"kind": "jump"``; shorter where the
  reference leaves less room). Both lie in the body of the track (outside its fades,
  the loop before the jump when a track has both; shortened, or left out, where the
  body is too short) and show in ``position``. Splices are hard (no micro-fade); with
  time scaling the resampling filter smears them over a few samples.
- EQ (``eq=True``): during some crossfades the incoming track goes through a 3-band EQ
  (RBJ biquads: low shelf at 250 Hz with −24…−6 dB, a peak at 1 kHz, Q 0.7, with
  −6…+3 dB, a high shelf at 4 kHz with −9…+3 dB), fully on until the middle of the
  crossfade and then faded linearly back to flat by its end (the DJ brings the bass
  back). There the mix differs from ``Σ g x(τ)`` by the EQ; the settings list them.
- Effects on the whole mix: "bass": a low shelf at 100 Hz, +3…+9 dB. "compression": a
  feed-forward compressor: RMS detector (10 ms one-pole), threshold at the mix's RMS
  level, ratio 4:1, hard knee, gain smoothed by a 50 ms one-pole, no make-up gain.
  "distortion": ``peak · tanh(k·y/peak) / tanh(k)`` with the drive ``k`` drawn in
  [1.5, 3] (peaks kept, small signals amplified by ``k/tanh k``).
- Noise: white Gaussian noise at ``snr_db`` re the (effected) mix's power.

``settings`` records every argument and every draw (fade shapes and lengths, play
lengths, speeds, cue points, loops, jumps, EQ, effect parameters, noise level) and the
generator's state before the first draw: the same seed gives the identical mix.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.signal import butter, lfilter, resample_poly, sosfilt

from mnmf._validation import as_generator, check_choice, finite_real, positive_int
from mnmf.data.io import load_audio, resample, write_audio
from mnmf.djmix.timeline import MixTruth, TrackTimeline

log = logging.getLogger("mnmf.djmix")

__all__ = [
    "EFFECTS",
    "FADE_SHAPES",
    "TIME_SCALINGS",
    "GeneratedMix",
    "Track",
    "generate_mix",
    "load_mix_folder",
    "load_tracks",
    "synthetic_tracks",
    "write_mix_folder",
]

FADE_SHAPES = ("linear", "equal-power", "cut", "random")
TIME_SCALINGS = ("none", "resample", "stretch", "ramp")
EFFECTS = ("none", "bass", "compression", "distortion")

#: File name endings :func:`load_tracks` reads as audio.
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".mp3")

_MAX_DENOMINATOR = 200  # "resample": speed p/q with q ≤ this
_MARGIN = 4096  # reference samples kept around the played content (filter context)
_BLOCK = 1 << 20  # samples per block for the effects and the noise (bounded memory)


@dataclass(frozen=True, eq=False)
class Track:
    """A reference track.

    Attributes
    ----------
    name : str
        Its name (the file stem).
    audio : array, shape (samples,)
        Mono float64 samples.
    fs : int
        Sample rate (Hz).
    """

    name: str
    audio: NDArray[np.float64]
    fs: int

    @property
    def duration(self) -> float:
        """Seconds of audio."""
        return self.audio.size / self.fs


@dataclass(frozen=True, eq=False)
class GeneratedMix:
    """A synthetic mix and its truth.

    Attributes
    ----------
    mix : array, shape (samples,)
        Mono float64 mix at ``fs``.
    fs : int
        Sample rate (Hz).
    truth : MixTruth
        One timeline per track in mix order, with the settings and draws.
    tracks : list of Track
        The references as given, resampled to ``fs``.
    """

    mix: NDArray[np.float64]
    fs: int
    truth: MixTruth
    tracks: list[Track]


# ---------------------------------------------------------------------------- tracks


def load_tracks(folder: str | os.PathLike, *, fs: int | None = None) -> list[Track]:
    """Read every audio file of a folder as mono tracks, sorted by file name.

    Parameters
    ----------
    folder : path-like
        Holds the tracks (files ending in one of :data:`AUDIO_SUFFIXES`; others, such as
        licence notes, are ignored).
    fs : int, optional
        Resample every track to this rate (exact rational polyphase resampling).

    Returns
    -------
    list of Track
        ``audio`` of shape (samples,), stereo down-mixed by averaging the channels.
    """
    source = Path(folder)
    if not source.is_dir():
        raise ValueError(f"folder: no tracks folder at {source}")
    files = sorted(
        path
        for path in source.iterdir()
        if path.is_file() and path.suffix.lower() in AUDIO_SUFFIXES
    )
    if not files:
        raise ValueError(f"folder: no audio files ({', '.join(AUDIO_SUFFIXES)}) in {source}")
    tracks = []
    for path in files:
        audio, rate = _read_mono(path, fs=fs)
        tracks.append(Track(path.stem, np.ascontiguousarray(audio, dtype=np.float64), rate))
    return tracks


def _read_mono(path: Path, *, fs: int | None) -> tuple[NDArray[np.float64], int]:
    """An audio file as mono at ``fs`` (its own rate if None), saying in the log what
    was done to it (down-mixed from several channels, resampled)."""
    import soundfile

    try:
        info = soundfile.info(str(path))
    except (RuntimeError, soundfile.LibsndfileError) as error:
        raise ValueError(f"cannot read audio file {path}: {error}") from None
    audio, rate = load_audio(path, fs=fs, mono=True)
    if info.channels > 1:
        log.info("%s: down-mixed %d channels to mono", path.name, info.channels)
    if rate != info.samplerate:
        log.info("%s: resampled from %d Hz to %d Hz", path.name, info.samplerate, rate)
    return audio, rate


_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)


def synthetic_tracks(
    n_tracks: int, *, duration: float, fs: int, rng: np.random.Generator | int | None
) -> list[Track]:
    """Musical synthetic reference tracks, distinct from one another.

    Each track has its own tempo (110–130 BPM), key and mode, kick/hi-hat pattern and
    timbres (harmonic profiles, envelopes), and plays a four-on-the-floor beat, a bass
    line, a chord pad and a melody. Chords are drawn bar by bar and the melody is a
    random walk in the scale with rests (its octave changing every 8 bars), so no two
    bars are alike and a position inside a track is identifiable from its spectrogram.
    Notes are rendered once per pitch and added where they sound (a 4-minute track at
    22050 Hz takes a fraction of a second). Peaks are normalised to 0.5.

    Parameters
    ----------
    n_tracks : int
        How many tracks (named ``synthetic_00``, ``synthetic_01``, ...).
    duration : float
        Seconds per track (> 0).
    fs : int
        Sample rate (Hz).
    rng : numpy.random.Generator (or a seed)

    Returns
    -------
    list of Track
        ``audio`` of shape (round(duration · fs),).
    """
    n_tracks = positive_int(n_tracks, name="n_tracks")
    duration = finite_real(duration, name="duration", minimum=0.0)
    if duration <= 0:
        raise ValueError(f"duration must be > 0 seconds, got {duration}")
    fs = positive_int(fs, name="fs", minimum=1000)
    rng = as_generator(rng)
    return [_synthetic_track(f"synthetic_{i:02d}", duration, fs, rng) for i in range(n_tracks)]


def _midi_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69.0) / 12.0)


def _timbre(rng: np.random.Generator) -> NDArray[np.float64]:
    """Harmonic amplitudes: a power-law roll-off with its own weight on even partials."""
    k = np.arange(1, int(rng.integers(4, 10)) + 1, dtype=float)
    amplitudes = k ** -rng.uniform(0.6, 2.0)
    amplitudes[1::2] *= rng.uniform(0.1, 1.0)
    return amplitudes / amplitudes.sum()


def _tone(
    freq: float, length: int, fs: int, amplitudes: NDArray, attack: float, decay: float
) -> NDArray[np.float64]:
    t = np.arange(length) / fs
    envelope = np.minimum(t / attack, 1.0) * np.exp(-t / decay)
    if length > 64:  # a short release so notes end without a click
        envelope[-64:] *= np.linspace(1.0, 0.0, 64)
    wave = np.zeros(length)
    for k, amplitude in enumerate(amplitudes, start=1):
        if k * freq < 0.45 * fs:
            wave += amplitude * np.sin(2 * np.pi * k * freq * t)
    return wave * envelope


def _add(out: NDArray, at: float, fs: int, sound: NDArray, gain: float) -> None:
    start = round(at * fs)
    stop = min(out.size, start + sound.size)
    if start < stop:
        out[start:stop] += gain * sound[: stop - start]


def _synthetic_track(name: str, duration: float, fs: int, rng: np.random.Generator) -> Track:
    n = round(duration * fs)
    out = np.zeros(n)
    beat = 60.0 / rng.uniform(110.0, 130.0)
    root = int(rng.integers(40, 52))  # bass root E2..D#3
    scale = _MAJOR if rng.random() < 0.5 else _MINOR
    pad_timbre, lead_timbre, bass_timbre = _timbre(rng), _timbre(rng), _timbre(rng)
    lead_decay = rng.uniform(0.08, 0.35)
    pad_attack = rng.uniform(0.02, 0.3)
    # drums
    kick_t = np.arange(round(0.3 * fs)) / fs
    kick_sweep = rng.uniform(60.0, 140.0)
    kick_freq = rng.uniform(40.0, 60.0) + kick_sweep * np.exp(-kick_t / rng.uniform(0.02, 0.05))
    kick = np.sin(2 * np.pi * np.cumsum(kick_freq) / fs) * np.exp(-kick_t / rng.uniform(0.1, 0.2))
    hat_cut = min(rng.uniform(5000.0, 9000.0), 0.4 * fs)
    hat_sos = butter(2, hat_cut, btype="highpass", fs=fs, output="sos")
    hat_length = round(rng.uniform(0.03, 0.09) * fs)
    hats = [
        sosfilt(hat_sos, rng.standard_normal(hat_length))
        * np.exp(-np.arange(hat_length) / (0.25 * hat_length))
        for _ in range(3)
    ]
    hat_step = 0.25 if rng.random() < 0.4 else 0.5  # 16ths or 8ths
    extra_kick = rng.random() < 0.5  # a syncopated kick before beat 3
    degrees = (0, 3, 4, 5, 1, 2)
    degree_weights = np.array([0.3, 0.2, 0.2, 0.2, 0.05, 0.05])

    cache: dict[tuple[str, int], NDArray] = {}

    def note(kind: str, midi: int) -> NDArray:
        key = (kind, midi)
        if key not in cache:
            if kind == "pad":
                length, timbre, attack, decay = round(4 * beat * fs), pad_timbre, pad_attack, 3.0
            elif kind == "bass":
                length, timbre, attack, decay = round(beat * fs), bass_timbre, 0.005, 0.25
            else:
                length, timbre = round(0.9 * beat * fs), lead_timbre
                attack, decay = 0.005, lead_decay
            cache[key] = _tone(_midi_hz(midi), length, fs, timbre, attack, decay)
        return cache[key]

    def pitch(degree: int, base: int) -> int:
        octave, step = divmod(degree, 7)
        return base + 12 * octave + scale[step]

    melody_degree = int(rng.integers(7, 12))
    lead_octave = 12
    n_bars = math.ceil(duration / (4 * beat))
    for bar in range(n_bars):
        t_bar = bar * 4 * beat
        if bar % 8 == 0:
            lead_octave = int(rng.choice([12, 24]))
        chord = int(rng.choice(degrees, p=degree_weights))
        for offset in (0, 2, 4):
            _add(out, t_bar, fs, note("pad", pitch(chord + offset, root + 12)), 0.12)
        for b in range(4):
            t_beat = t_bar + b * beat
            _add(out, t_beat, fs, kick, 0.9)
            bass_note = pitch(chord + (0 if rng.random() < 0.7 else 4), root)
            _add(out, t_beat, fs, note("bass", bass_note + 12 * (rng.random() < 0.2)), 0.35)
            for h in np.arange(0.0, 1.0, hat_step):
                if h > 0 or hat_step == 0.25:
                    hat = hats[int(rng.integers(len(hats)))]
                    _add(out, t_beat + h * beat, fs, hat, rng.uniform(0.1, 0.25))
        if extra_kick:
            _add(out, t_bar + 1.5 * beat, fs, kick, 0.6)
        for eighth in range(8):
            if rng.random() < 0.2:
                continue
            melody_degree = int(np.clip(melody_degree + rng.integers(-2, 3), 0, 13))
            lead = pitch(melody_degree, root + lead_octave)
            _add(out, t_bar + eighth * beat / 2, fs, note("lead", lead), rng.uniform(0.15, 0.3))
    peak = float(np.max(np.abs(out)))
    if peak > 0:
        out *= 0.5 / peak
    return Track(name, out, fs)


# ------------------------------------------------------------------------------ mix


@dataclass
class _Plan:
    """What the generator drew for one track (samples at the mix rate)."""

    start: int  # mix sample where the track starts
    length: int  # samples of play
    fade_in: tuple[int, str]  # (length, shape)
    fade_out: tuple[int, str]
    speeds: tuple[float, float]  # content seconds per mix second at start, at end
    ratio: tuple[int, int] | None  # "resample": (p, q) with speed p/q
    breaks: list[tuple[int, int]]  # (content sample, relative position) where a piece starts
    content: int  # content samples played
    kinds: list[str] = field(default_factory=list)  # "loop" | "jump" for breaks[1:]
    cue: int = 0  # reference sample at content 0 relative position 0
    events: list[dict[str, Any]] | None = None
    eq: dict[str, float] | None = None

    def play_seconds(self, content: float, fs: int) -> float:
        """Inverse of :meth:`content_seconds` (mix seconds after start)."""
        r0, r1 = self.speeds
        slope = (r1 - r0) / (self.length / fs)
        return 2.0 * content / (r0 + math.sqrt(r0 * r0 + 2.0 * slope * content))


def _check_range(value: object, *, name: str, minimum: float) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (low, high) pair of seconds, got {value!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and minimum <= low <= high):
        raise ValueError(f"{name} must satisfy {minimum} <= low <= high, got {value!r}")
    return low, high


def _shape(fade_shape: str, rng: np.random.Generator) -> str:
    if fade_shape == "random":
        return str(rng.choice(["linear", "equal-power", "cut"]))
    return fade_shape


def _gain(t: NDArray, plan: _Plan, fs: int) -> NDArray[np.float64]:
    """The fader gain at mix times ``t`` (s); times within 1 ns of a boundary are on it."""
    eps = 1e-9
    start, end = plan.start / fs, (plan.start + plan.length) / fs
    gain = np.where((t >= start - eps) & (t < end - eps), 1.0, 0.0)
    length, shape = plan.fade_in
    if length > 0:
        u = np.clip((t - start) / (length / fs), 0.0, 1.0)
        ramp = np.sin(0.5 * np.pi * u) if shape == "equal-power" else u
        gain = np.where(t < start + length / fs - eps, gain * ramp, gain)
    length, shape = plan.fade_out
    if length > 0:
        begin = end - length / fs
        u = np.clip((t - begin) / (length / fs), 0.0, 1.0)
        ramp = np.cos(0.5 * np.pi * u) if shape == "equal-power" else 1.0 - u
        gain = np.where(t >= begin - eps, gain * ramp, gain)
    return gain


def _content_samples(plan: _Plan, u: NDArray, fs: int) -> NDArray[np.float64]:
    """Content position (samples, snapped to whole ones within 1e-6) after ``u`` s of play."""
    phi = _phi(plan, u, fs)
    near = np.round(phi)
    return np.where(np.abs(phi - near) < 1e-6, near, phi)


def _phi(plan: _Plan, u: NDArray, fs: int) -> NDArray[np.float64]:
    r0, r1 = plan.speeds
    if plan.ratio is not None:
        p, q = plan.ratio
        return u * fs * p / q
    if r1 == r0:
        return u * fs * r0
    play = plan.length / fs
    return (r0 * u + (r1 - r0) * u * u / (2.0 * play)) * fs


def _relative_position(plan: _Plan, phi: NDArray) -> NDArray[np.float64]:
    """Reference position (samples, relative to the cue) of content samples ``phi``."""
    at = np.array([b[0] for b in plan.breaks], dtype=float)
    to = np.array([b[1] for b in plan.breaks], dtype=float)
    piece = np.clip(np.searchsorted(at, phi, side="right") - 1, 0, at.size - 1)
    return to[piece] + (phi - at[piece])


def _span(breaks: list[tuple[int, int]], content: int) -> tuple[int, int]:
    """Lowest and one-past-highest relative positions the content visits."""
    ends = [b[0] for b in breaks[1:]] + [content]
    low = min(pos for _, pos in breaks)
    high = max(pos + end - at for (at, pos), end in zip(breaks, ends, strict=True))
    return low, high


def _edits(
    plan: _Plan,
    body: tuple[float, float],
    reference: int,
    fs: int,
    rng: np.random.Generator,
    *,
    loop: bool,
    jump: bool,
) -> dict[str, Any]:
    """Draw a loop and/or a jump inside the body (content samples); update plan.breaks."""
    drawn: dict[str, Any] = {}
    low, high = body
    if loop and jump:
        loop_region, jump_region = (low, 0.5 * (low + high)), (0.5 * (low + high), high)
    else:
        loop_region = jump_region = (low, high)
    if loop:
        region = loop_region[1] - loop_region[0]
        repeats = int(rng.integers(2, 5))
        seconds = rng.uniform(1.0, 2.0)
        if repeats * seconds * fs > region:
            repeats, seconds = 2, min(seconds, 0.45 * region / fs)
        if seconds >= 0.25:
            size = round(seconds * fs)
            first = round(rng.uniform(loop_region[0], loop_region[1] - repeats * size))
            position = first  # no edit before the loop: content == relative position
            plan.breaks += [(first + k * size, position) for k in range(1, repeats)]
            plan.kinds += ["loop"] * (repeats - 1)
            tail = first + repeats * size
            plan.breaks.append((tail, position + size))  # carry on after the loop
            plan.kinds.append("continue")
            drawn["loop"] = {"start": position, "length": size, "repeats": repeats}
    if jump and jump_region[1] - jump_region[0] >= 2:
        at = round(rng.uniform(*jump_region))
        here = int(_relative_position(plan, np.array([float(at)]))[0])
        low_pos, high_pos = _span(plan.breaks, plan.content)
        forward_room = reference - (high_pos - low_pos) - 1
        backward_room = here - low_pos
        distance = rng.uniform(1.0, 4.0) * fs
        forward = rng.random() < 0.5
        if (forward and forward_room < 0.25 * fs) or (not forward and backward_room < 0.25 * fs):
            forward = not forward
        room = forward_room if forward else backward_room
        if room >= 0.25 * fs:
            shift = round(min(distance, room)) * (1 if forward else -1)
            plan.breaks.append((at, here + shift))  # after any loop: the order holds
            plan.kinds.append("jump")
            drawn["jump"] = {"from": here, "to": here + shift}
    return drawn


def _take(audio: NDArray, start: int, stop: int) -> NDArray[np.float64]:
    """``audio[start:stop]`` with zeros outside the signal."""
    out = np.zeros(max(stop - start, 0))
    a, b = max(start, 0), min(stop, audio.size)
    if a < b:
        out[a - start : b - start] = audio[a:b]
    return out


def _keys_cubic(signal: NDArray, index: NDArray) -> NDArray[np.float64]:
    """Keys (a = −1/2) cubic interpolation of ``signal`` at fractional ``index``."""
    base = np.floor(index).astype(np.int64)
    x = index - base
    padded = np.concatenate([[0.0], signal, [0.0, 0.0]])
    taps = [padded[np.clip(base + k + 1, 0, padded.size - 1)] for k in (-1, 0, 1, 2)]
    x2, x3 = x * x, x * x * x
    w_m1 = -0.5 * x3 + x2 - 0.5 * x
    w_0 = 1.5 * x3 - 2.5 * x2 + 1.0
    w_1 = -1.5 * x3 + 2.0 * x2 + 0.5 * x
    w_2 = 0.5 * x3 - 0.5 * x2
    return w_m1 * taps[0] + w_0 * taps[1] + w_1 * taps[2] + w_2 * taps[3]


def _render(plan: _Plan, reference: NDArray, fs: int, time_scaling: str) -> NDArray[np.float64]:
    """The track's samples over its play, before the fader: ``x(τ(t))``."""
    margin = _MARGIN
    if plan.ratio is not None:
        p, q = plan.ratio
        margin = p * math.ceil(_MARGIN / p)
    ends = [b[0] for b in plan.breaks[1:]] + [plan.content]
    first_pos, last = plan.breaks[0][1], plan.breaks[-1]
    parts = [_take(reference, plan.cue + first_pos - margin, plan.cue + first_pos)]
    for (at, pos), end in zip(plan.breaks, ends, strict=True):
        parts.append(_take(reference, plan.cue + pos, plan.cue + pos + end - at))
    tail = plan.cue + last[1] + plan.content - last[0]
    parts.append(_take(reference, tail, tail + margin))
    content = np.concatenate(parts)
    n = plan.length
    if time_scaling == "none":
        return content[margin : margin + n].copy()
    if time_scaling == "resample":
        p, q = plan.ratio  # type: ignore[misc]
        out = resample_poly(content, q, p)
        offset = margin // p * q
        return _take(out, offset, offset + n)
    if time_scaling == "stretch":
        import librosa

        rate = plan.speeds[0]
        out = _match_tonal_balance(librosa.effects.time_stretch(content, rate=rate), content, fs)
        out_power = _power(out)
        if out_power > 0:  # keep the level: see the module docstring
            out *= math.sqrt(_power(content) / out_power)
        offset = round(margin / rate)
        return _take(out, offset, offset + n)
    upsampled = resample_poly(content, 4, 1)
    phi = _phi(plan, np.arange(n) / fs, fs)
    return _keys_cubic(upsampled, 4.0 * (margin + phi))


def _biquad(kind: str, freq: float, gain_db: float, fs: int, q: float = 0.707) -> NDArray:
    """RBJ cookbook biquad (low shelf, peak, high shelf; shelf slope 1) as an SOS row."""
    amp = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * np.pi * min(freq, 0.45 * fs) / fs
    cos, sin = np.cos(w0), np.sin(w0)
    if kind == "peak":
        alpha = sin / (2.0 * q)
        b = [1 + alpha * amp, -2 * cos, 1 - alpha * amp]
        a = [1 + alpha / amp, -2 * cos, 1 - alpha / amp]
    else:
        alpha = sin / 2.0 * math.sqrt(2.0)  # S = 1
        root = 2.0 * math.sqrt(amp) * alpha
        sign = 1.0 if kind == "low" else -1.0  # the high shelf mirrors cos
        plus, minus = (amp + 1) - sign * (amp - 1) * cos, (amp + 1) + sign * (amp - 1) * cos
        b = [
            amp * (plus + root),
            sign * 2 * amp * ((amp - 1) - sign * (amp + 1) * cos),
            amp * (plus - root),
        ]
        a = [minus + root, -sign * 2 * ((amp - 1) + sign * (amp + 1) * cos), minus - root]
    return np.array([[b[0] / a[0], b[1] / a[0], b[2] / a[0], 1.0, a[1] / a[0], a[2] / a[0]]])


def _eq_sos(eq: dict[str, float], fs: int) -> NDArray:
    return np.vstack(
        [
            _biquad("low", 250.0, eq["low_db"], fs),
            _biquad("peak", 1000.0, eq["mid_db"], fs, q=0.7),
            _biquad("high", 4000.0, eq["high_db"], fs),
        ]
    )


def _sosfilt_inplace(sos: NDArray, signal: NDArray) -> None:
    state = np.zeros((sos.shape[0], 2))
    for a in range(0, signal.size, _BLOCK):
        signal[a : a + _BLOCK], state = sosfilt(sos, signal[a : a + _BLOCK], zi=state)


def _compress(mix: NDArray, fs: int) -> dict[str, float]:
    """Feed-forward RMS compressor, in place; returns its parameters."""
    power = _power(mix)
    if power <= 0:
        return {"threshold_db": -math.inf, "ratio": 4.0}
    threshold_db = 10.0 * math.log10(power)
    ratio = 4.0
    detect = 1.0 - math.exp(-1.0 / (0.010 * fs))  # one-pole y += c (x − y)
    smooth = 1.0 - math.exp(-1.0 / (0.050 * fs))
    # lfilter's state for b = [c], a = [1, c − 1] is (1 − c) · the previous output
    zi_detect, zi_smooth = np.array([(1 - detect) * power]), np.array([1 - smooth])
    for a in range(0, mix.size, _BLOCK):
        block = mix[a : a + _BLOCK]
        level, zi_detect = lfilter([detect], [1.0, detect - 1.0], block * block, zi=zi_detect)
        level_db = 10.0 * np.log10(np.maximum(level, 1e-20))
        reduction_db = np.minimum(0.0, (1.0 / ratio - 1.0) * (level_db - threshold_db))
        target = 10.0 ** (reduction_db / 20.0)
        gain, zi_smooth = lfilter([smooth], [1.0, smooth - 1.0], target, zi=zi_smooth)
        block *= gain
    return {"threshold_db": threshold_db, "ratio": ratio, "detector_s": 0.010, "smoothing_s": 0.050}


def generate_mix(
    tracks: Sequence[Track],
    *,
    fs: int,
    rng: np.random.Generator | int | None,
    play_seconds: tuple[float, float] = (20.0, 30.0),
    crossfade_seconds: tuple[float, float] = (4.0, 8.0),
    fade_shape: str = "linear",
    time_scaling: str = "none",
    max_speed_deviation: float = 0.08,
    loops: bool = False,
    jumps: bool = False,
    eq: bool = False,
    effect: str = "none",
    snr_db: float | None = None,
    truth_hop: float = 0.01,
) -> GeneratedMix:
    """A DJ mix of ``tracks`` in the given order, with its exact ground truth.

    See the module's docstring for the semantics of every option.

    Parameters
    ----------
    tracks : sequence of Track
        The references (distinct names), each resampled to ``fs`` if needed.
    fs : int
        Sample rate of the mix (Hz).
    rng : numpy.random.Generator (or a seed)
        Every draw comes from it; its state before the first draw goes to the settings.
    play_seconds : (float, float)
        Range of each track's play length (mix seconds, fades included).
    crossfade_seconds : (float, float)
        Range of the fade lengths; at most half the shortest play length.
    fade_shape : {"linear", "equal-power", "cut", "random"}
    time_scaling : {"none", "resample", "stretch", "ramp"}
    max_speed_deviation : float
        Speeds drawn uniformly in ``[1 − d, 1 + d]`` (0 ≤ d < 1).
    loops, jumps : bool
        A loop / a jump in some tracks (at least one where a track's body allows).
    eq : bool
        A 3-band EQ on the incoming track during some crossfades (at least one, unless
        every transition is a cut).
    effect : {"none", "bass", "compression", "distortion"}
    snr_db : float, optional
        White noise at this SNR (dB); none by default.
    truth_hop : float
        Seconds between two points of the truth's curves.

    Returns
    -------
    GeneratedMix
        ``mix`` of shape (samples,), the truth, the references at ``fs``.
    """
    fs = positive_int(fs, name="fs", minimum=1000)
    rng = as_generator(rng)
    if isinstance(tracks, Track) or not isinstance(tracks, Sequence) or not tracks:
        raise ValueError("tracks must be a non-empty sequence of Track")
    for track in tracks:
        if not isinstance(track, Track):
            raise ValueError(f"tracks must hold Track objects, got {type(track).__name__}")
    names = [track.name for track in tracks]
    if len(set(names)) != len(names):
        raise ValueError(f"tracks must have distinct names, got {names}")
    play = _check_range(play_seconds, name="play_seconds", minimum=1e-3)
    cross = _check_range(crossfade_seconds, name="crossfade_seconds", minimum=0.0)
    if 2 * cross[1] > play[0]:
        raise ValueError(
            f"crossfade_seconds {crossfade_seconds} must be at most half the shortest "
            f"play_seconds {play_seconds} (a track fades in and out within its play)"
        )
    check_choice(fade_shape, name="fade_shape", choices=FADE_SHAPES)
    check_choice(time_scaling, name="time_scaling", choices=TIME_SCALINGS)
    check_choice(effect, name="effect", choices=EFFECTS)
    deviation = finite_real(max_speed_deviation, name="max_speed_deviation", minimum=0.0)
    if deviation >= 1.0:
        raise ValueError(f"max_speed_deviation must be < 1, got {deviation}")
    if snr_db is not None:
        snr_db = finite_real(snr_db, name="snr_db")
    hop = finite_real(truth_hop, name="truth_hop", minimum=0.0)
    if hop <= 0:
        raise ValueError(f"truth_hop must be > 0 seconds, got {truth_hop}")
    references = [
        Track(t.name, resample(np.asarray(t.audio, dtype=np.float64), t.fs, fs), fs)
        if t.fs != fs
        else t
        for t in tracks
    ]
    for track in references:
        if track.audio.ndim != 1:
            raise ValueError(f"track {track.name!r}: audio must be mono, shape (samples,)")

    rng_state = _jsonable(rng.bit_generator.state)
    n = len(references)
    # fades: 0 the first fade-in, k the transition into track k, n the last fade-out
    shapes = [_shape(fade_shape, rng) for _ in range(n + 1)]
    fades = [0 if s == "cut" else round(rng.uniform(*cross) * fs) for s in shapes]
    plans: list[_Plan] = []
    start = 0
    for i, track in enumerate(references):
        length = round(rng.uniform(*play) * fs)
        ratio = None
        if time_scaling == "none":
            speeds = (1.0, 1.0)
        elif time_scaling == "resample":
            exact = Fraction(rng.uniform(1 - deviation, 1 + deviation)).limit_denominator(
                _MAX_DENOMINATOR
            )
            ratio = (exact.numerator, exact.denominator)
            speeds = (float(exact),) * 2
        elif time_scaling == "stretch":
            speeds = (float(rng.uniform(1 - deviation, 1 + deviation)),) * 2
        else:
            speeds = tuple(float(s) for s in rng.uniform(1 - deviation, 1 + deviation, 2))
        fade_in, fade_out = (fades[i], shapes[i]), (fades[i + 1], shapes[i + 1])
        plan = _Plan(start, length, fade_in, fade_out, speeds, ratio, [(0, 0)], 0)
        plan.content = math.ceil(float(_phi(plan, np.array([length / fs]), fs)[0])) + 2
        if plan.content > track.audio.size:
            raise ValueError(
                f"track {track.name!r} lasts {track.duration:.2f} s but its play of "
                f"{length / fs:.2f} s at speed {max(speeds):.3f} needs "
                f"{plan.content / fs:.2f} s of it: lower play_seconds or max_speed_deviation"
            )
        plans.append(plan)
        start += length - fades[i + 1]

    edits: list[dict[str, Any]] = [{} for _ in range(n)]
    loop_tracks = _some(n, rng) if loops else np.zeros(n, bool)
    jump_tracks = _some(n, rng) if jumps else np.zeros(n, bool)
    for i, plan in enumerate(plans):
        if loop_tracks[i] or jump_tracks[i]:
            body = _phi(plan, np.array([plan.fade_in[0], plan.length - plan.fade_out[0]]) / fs, fs)
            guard = 0.1 * fs
            edits[i] = _edits(
                plan,
                (float(body[0]) + guard, float(body[1]) - guard),
                references[i].audio.size,
                fs,
                rng,
                loop=bool(loop_tracks[i]),
                jump=bool(jump_tracks[i]),
            )
    for plan, track in zip(plans, references, strict=True):
        low, high = _span(plan.breaks, plan.content)
        if high - low > track.audio.size:
            raise ValueError(f"track {track.name!r} is too short for its play and edits")
        plan.cue = int(rng.integers(-low, track.audio.size - high + 1))

    transitions = [k for k in range(1, n) if fades[k] > 0]
    eq_transitions = set()
    if eq and transitions:
        chosen = _some(len(transitions), rng)
        eq_transitions = {transitions[j] for j in np.flatnonzero(chosen)}
    for k in sorted(eq_transitions):
        plans[k].eq = {
            "low_db": float(rng.uniform(-24.0, -6.0)),
            "mid_db": float(rng.uniform(-6.0, 3.0)),
            "high_db": float(rng.uniform(-9.0, 3.0)),
        }

    total = plans[-1].start + plans[-1].length
    mix = np.zeros(total)
    for plan, track in zip(plans, references, strict=True):
        y = _render(plan, track.audio, fs, time_scaling)
        if plan.eq is not None:
            fade = plan.fade_in[0]
            filtered = sosfilt(_eq_sos(plan.eq, fs), y[:fade])
            weight = np.clip(2.0 - 2.0 * np.arange(fade) / fade, 0.0, 1.0)
            y[:fade] += weight * (filtered - y[:fade])
        t = (plan.start + np.arange(plan.length)) / fs
        mix[plan.start : plan.start + plan.length] += _gain(t, plan, fs) * y

    effect_settings: dict[str, Any] = {}
    if effect == "bass":
        gain_db = float(rng.uniform(3.0, 9.0))
        _sosfilt_inplace(_biquad("low", 100.0, gain_db, fs), mix)
        effect_settings = {"shelf_hz": 100.0, "gain_db": gain_db}
    elif effect == "compression":
        effect_settings = _compress(mix, fs)
    elif effect == "distortion":
        drive = float(rng.uniform(1.5, 3.0))
        peak = max(float(mix.max()), -float(mix.min())) if mix.size else 0.0
        if peak > 0:
            for a in range(0, mix.size, _BLOCK):
                block = mix[a : a + _BLOCK]
                mix[a : a + _BLOCK] = peak * np.tanh(drive * block / peak) / math.tanh(drive)
        effect_settings = {"drive": drive}
    noise_std = 0.0
    if snr_db is not None:
        power = _power(mix)
        noise_std = math.sqrt(power / 10.0 ** (snr_db / 10.0))
        for a in range(0, mix.size, _BLOCK):
            block = mix[a : a + _BLOCK]
            block += noise_std * rng.standard_normal(block.size)

    duration = total / fs
    times = np.arange(math.floor(duration / hop + 1e-9) + 1) * hop
    timelines = []
    track_settings = []
    for plan, track, drawn in zip(plans, references, edits, strict=True):
        timeline = _timeline(plan, track.name, times, fs)
        timelines.append(timeline)
        track_settings.append(
            {
                "name": track.name,
                "start": plan.start / fs,
                "play_seconds": plan.length / fs,
                "cue_point": plan.cue / fs,
                "fade_in": [plan.fade_in[0] / fs, plan.fade_in[1]],
                "fade_out": [plan.fade_out[0] / fs, plan.fade_out[1]],
                "speed_start": plan.speeds[0],
                "speed_end": plan.speeds[1],
                "speed_fraction": list(plan.ratio) if plan.ratio else None,
                "loop": _seconds(drawn.get("loop"), plan, fs),
                "jump": _seconds(drawn.get("jump"), plan, fs),
                "eq": plan.eq,
            }
        )
    settings = {
        "generator": "mnmf.djmix.synthetic.generate_mix",
        "fs": fs,
        "play_seconds": list(play),
        "crossfade_seconds": list(cross),
        "fade_shape": fade_shape,
        "time_scaling": time_scaling,
        "max_speed_deviation": deviation,
        "loops": bool(loops),
        "jumps": bool(jumps),
        "eq": bool(eq),
        "effect": effect,
        "snr_db": snr_db,
        "truth_hop": hop,
        "rng_state": rng_state,
        "fade_shapes": shapes,
        "tracks": track_settings,
        "effect_settings": effect_settings,
        "noise_std": noise_std,
    }
    truth = MixTruth(fs=fs, duration=duration, tracks=timelines, settings=settings)
    return GeneratedMix(mix=mix, fs=fs, truth=truth, tracks=references)


#: Largest correction (dB of power) the stretched track's tonal-balance EQ applies.
MAX_TONAL_EQ_DB = 20.0


def _match_tonal_balance(out: NDArray, content: NDArray, fs: int) -> NDArray[np.float64]:
    """``out`` equalized so that its long-term spectrum is that of ``content``.

    A static, zero-phase equalizer: per band of a 64-band mel filterbank (2048-point
    STFT), the ratio of the two signals' mean powers; each bin takes the weighted mean
    of the log-ratios of the bands it belongs to. Undoes the phase vocoder's colouring
    of a time-stretched track (±1–3 dB per band, track-dependent; see the module
    docstring) without moving anything in time.
    """
    import librosa

    n_fft, hop = 2048, 512
    if out.size < n_fft or content.size < n_fft:
        return out
    bank = librosa.filters.mel(sr=fs, n_fft=n_fft, n_mels=64)  # (64, F)
    spectrum = librosa.stft(out, n_fft=n_fft, hop_length=hop)
    out_bands = bank @ np.mean(np.abs(spectrum) ** 2, axis=1)
    in_bands = bank @ np.mean(
        np.abs(librosa.stft(content, n_fft=n_fft, hop_length=hop)) ** 2, axis=1
    )
    floor = 1e-12 * max(float(in_bands.max()), float(out_bands.max()), np.finfo(float).tiny)
    log_ratio = np.log(np.maximum(in_bands, floor) / np.maximum(out_bands, floor))
    cover = bank.sum(axis=0)
    covered = cover > 0
    per_bin = np.zeros(cover.size)
    per_bin[covered] = (bank.T @ log_ratio)[covered] / cover[covered]
    bins = np.arange(cover.size)
    per_bin[~covered] = np.interp(bins[~covered], bins[covered], per_bin[covered])
    # A vocoder colours by a few dB; ±20 dB bounds the EQ where a band is (nearly) empty.
    per_bin = np.clip(
        per_bin, -MAX_TONAL_EQ_DB * np.log(10) / 10, MAX_TONAL_EQ_DB * np.log(10) / 10
    )
    equalized = librosa.istft(
        spectrum * np.exp(0.5 * per_bin)[:, None], hop_length=hop, n_fft=n_fft, length=out.size
    )
    return np.asarray(equalized, dtype=np.float64)


def _power(signal: NDArray) -> float:
    """Mean square, without a temporary the size of the signal."""
    return float(np.dot(signal, signal)) / signal.size if signal.size else 0.0


def _some(count: int, rng: np.random.Generator) -> NDArray[np.bool_]:
    """Each of ``count`` items with probability 1/2, at least one."""
    chosen = rng.random(count) < 0.5
    if not chosen.any():
        chosen[rng.integers(count)] = True
    return chosen


def _seconds(edit: dict[str, Any] | None, plan: _Plan, fs: int) -> dict[str, Any] | None:
    """An edit's draw in track seconds (positions absolute in the reference)."""
    if edit is None:
        return None
    out: dict[str, Any] = {}
    for key, value in edit.items():
        if key == "repeats":
            out[key] = int(value)
        elif key == "length":
            out[key] = value / fs
        else:
            out[key] = (plan.cue + value) / fs
    return out


def _timeline(plan: _Plan, name: str, times: NDArray, fs: int) -> TrackTimeline:
    gain = _gain(times, plan, fs)
    u = times - plan.start / fs
    phi = _content_samples(plan, u, fs)
    position = (plan.cue + _relative_position(plan, phi)) / fs
    position[gain <= 0] = np.nan
    events = []
    pairs = zip(plan.breaks[1:], plan.breaks[:-1], plan.kinds, strict=True)
    for (at, to), (prev_at, prev_to), kind in pairs:
        if kind == "continue":  # the loop's last pass flows on: no discontinuity
            continue
        source = prev_to + at - prev_at
        events.append(
            {
                "kind": kind,
                "time": plan.start / fs + plan.play_seconds(at / fs, fs),
                "from": (plan.cue + source) / fs,
                "to": (plan.cue + to) / fs,
            }
        )
    start, end = plan.start / fs, (plan.start + plan.length) / fs
    fade_in_end = start + plan.fade_in[0] / fs
    fade_out_start = end - plan.fade_out[0] / fs
    mean_speed = (
        plan.ratio[0] / plan.ratio[1] if plan.ratio else 0.5 * (plan.speeds[0] + plan.speeds[1])
    )
    timeline = TrackTimeline(
        name=name,
        times=times,
        gain=gain,
        position=position,
        start=start,
        end=end,
        cue_point=plan.cue / fs,
        fade_in=(start, fade_in_end),
        fade_out=(fade_out_start, end),
        speed_ratio=float(mean_speed),
        events=tuple(events),
    )
    return timeline


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


# --------------------------------------------------------------------------- folders


def write_mix_folder(folder: str | os.PathLike, generated: GeneratedMix) -> Path:
    """Store a mix as ``mix.wav``, ``tracks/<name>.wav`` and ``truth.json``.

    The folder is written under a hidden temporary sibling and renamed into place, so a
    reader never sees it half-written; an existing folder of that name is replaced
    (moved aside, then removed once the new one is in place).

    Parameters
    ----------
    folder : path-like
        Destination folder.
    generated : GeneratedMix

    Returns
    -------
    Path
        The folder.
    """
    if not isinstance(generated, GeneratedMix):
        raise ValueError(f"generated must be a GeneratedMix, got {type(generated).__name__}")
    destination = Path(folder)
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = destination.parent / f".{destination.name}.{uuid.uuid4().hex}.tmp"
    temporary.mkdir()
    try:
        write_audio(temporary / "mix.wav", generated.mix, generated.fs)
        for track in generated.tracks:
            write_audio(temporary / "tracks" / f"{track.name}.wav", track.audio, track.fs)
        generated.truth.write(temporary / "truth.json")
        if destination.exists():
            old = destination.parent / f".{destination.name}.{uuid.uuid4().hex}.old"
            os.replace(destination, old)
            os.replace(temporary, destination)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(temporary, destination)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return destination


def load_mix_folder(
    folder: str | os.PathLike, *, fs: int | None = None
) -> tuple[NDArray[np.float64], int, list[Track], MixTruth | None]:
    """Read a mix folder written by :func:`write_mix_folder` (or laid out like one).

    Parameters
    ----------
    folder : path-like
        Holds ``mix.wav``, ``tracks/`` (audio files) and optionally ``truth.json``.
    fs : int, optional
        Resample the mix (and so the tracks) to this rate.

    Returns
    -------
    mix : array, shape (samples,)
        Mono (channels averaged).
    fs : int
        The mix's sample rate.
    tracks : list of Track
        Sorted by name, resampled to the mix's rate.
    truth : MixTruth or None
        None when there is no ``truth.json``.
    """
    source = Path(folder)
    if not source.is_dir():
        raise ValueError(f"folder: no mix folder at {source}")
    mix_file = source / "mix.wav"
    if not mix_file.is_file():
        raise ValueError(f"folder {source} has no mix.wav")
    mix, rate = _read_mono(mix_file, fs=fs)
    tracks = load_tracks(source / "tracks", fs=rate)
    truth_file = source / "truth.json"
    truth = MixTruth.read(truth_file) if truth_file.is_file() else None
    return np.asarray(mix, dtype=np.float64), rate, tracks, truth
