"""Mixtures with known truth: simulated rooms (pyroomacoustics) and instantaneous mixes.

Every mixture — simulated, instantaneous or loaded from disk (:mod:`mnmf.datasets`) —
is a :class:`Mixture`: the microphone signals, the spatial image of every source at
every microphone (the reference for evaluation), the dry sources when known, the sample
rate and a ``meta`` dictionary saying how it was made.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mnmf._validation import as_float_array, as_generator, check_finite, finite_real, positive_int
from mnmf.data.io import load_audio

#: Drawn sources stay this far from every wall (metres).
WALL_MARGIN_M = 0.5
#: Drawn sources stay this far from the array axis (degrees): a linear array resolves
#: directions worst at endfire.
ENDFIRE_MARGIN_DEG = 15.0
#: RT60 is measured as T30: the Schroeder decay's slope from −5 to −35 dB (ISO 3382).
RT60_DECAY_DB = 30
#: Tries of the rejection sampler for source positions before giving up with an error.
MAX_POSITION_TRIES = 1000


@dataclass(frozen=True)
class Mixture:
    """A multichannel mixture and its ground truth.

    Attributes
    ----------
    mix : array, shape (samples, I)
        Microphone signals; ``mix == images.sum(0) + noise`` (``noise`` None: zero).
    images : array, shape (J, samples, I)
        Spatial image of each source at each microphone (what evaluation compares to).
    fs : int
        Sample rate in Hz.
    sources : array, shape (J, samples), optional
        Dry (mono) sources, when known.
    noise : array, shape (samples, I), optional
        Additive sensor noise, when any was added.
    meta : dict
        How the mixture was made (geometry, RT60 target and measured, seed, file paths, ...).
    """

    mix: NDArray[np.float64]
    images: NDArray[np.float64]
    fs: int
    sources: NDArray[np.float64] | None = None
    noise: NDArray[np.float64] | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mix.ndim != 2:
            raise ValueError(f"mix must be (samples, I), got shape {self.mix.shape}")
        if self.images.ndim != 3 or self.images.shape[1:] != self.mix.shape:
            raise ValueError(
                f"images must be (J, samples, I) with (samples, I) = {self.mix.shape}, "
                f"got {self.images.shape}"
            )
        if self.sources is not None and self.sources.shape != self.images.shape[:2]:
            raise ValueError(
                f"sources must be (J, samples) = {self.images.shape[:2]}, got {self.sources.shape}"
            )
        if self.noise is not None and self.noise.shape != self.mix.shape:
            raise ValueError(f"noise must have the shape of mix {self.mix.shape}")

    @property
    def n_sources(self) -> int:
        return self.images.shape[0]

    @property
    def n_mics(self) -> int:
        return self.mix.shape[1]

    @property
    def duration(self) -> float:
        return self.mix.shape[0] / self.fs


SourceSpec = ArrayLike | str | os.PathLike


def _seed_of(rng: object) -> int | None:
    """The integer seed when one was given (a Generator's seed cannot be recovered)."""
    return int(rng) if isinstance(rng, int | np.integer) and not isinstance(rng, bool) else None


def _dry_sources(sources: Sequence[SourceSpec], fs: int) -> tuple[NDArray, list[str | None]]:
    """Load/validate mono sources, resample file sources to ``fs``, pad to the longest."""
    if isinstance(sources, np.ndarray) and sources.ndim == 1:
        raise ValueError("sources must be a sequence of signals (J, samples), got one 1-D signal")
    if len(sources) < 1:
        raise ValueError("sources must hold at least one signal")
    signals, origins = [], []
    for j, spec in enumerate(sources):
        if isinstance(spec, str | os.PathLike):
            signal, _ = load_audio(spec, fs=fs, mono=True)
            origins.append(str(spec))
        else:
            signal = as_float_array(spec, name=f"sources[{j}]", ndim=1).astype(np.float64)
            check_finite(signal, name=f"sources[{j}]")
            origins.append(None)
        signals.append(signal)
    length = max(s.size for s in signals)
    dry = np.zeros((len(signals), length))
    for j, signal in enumerate(signals):
        dry[j, : signal.size] = signal
    return dry, origins


def _array_geometry(
    room_dim: NDArray, n_mics: int, spacing: float, center: NDArray | None
) -> tuple[NDArray, NDArray]:
    """A linear array along x centred on ``center`` (default: room centre, 1.5 m high)."""
    if center is None:
        center = np.array([room_dim[0] / 2, room_dim[1] / 2, min(1.5, room_dim[2] / 2)])
    offsets = (np.arange(n_mics) - (n_mics - 1) / 2) * spacing
    mics = center[:, None] + np.outer([1.0, 0.0, 0.0], offsets)
    if np.any(mics < 0) or np.any(mics > room_dim[:, None]):
        raise ValueError(f"the microphone array does not fit in the room: {mics.T.tolist()}")
    return center, mics


def _draw_positions(
    rng: np.random.Generator,
    room_dim: NDArray,
    center: NDArray,
    n_sources: int,
    *,
    distance: tuple[float, float],
    min_separation_deg: float,
) -> NDArray:
    """Source positions around the array: inside the room, away from walls, distinct angles.

    Directions are compared by their angle from the array axis (x), the only angle a
    linear array resolves: mirror positions on either side of the axis look the same.
    """
    positions: list[NDArray] = []
    axis_angles: list[float] = []
    for _ in range(MAX_POSITION_TRIES):
        if len(positions) == n_sources:
            break
        radius = rng.uniform(*distance)
        azimuth = rng.uniform(0, 2 * np.pi)
        height = center[2] + rng.uniform(-0.2, 0.2)
        point = np.array(
            [center[0] + radius * np.cos(azimuth), center[1] + radius * np.sin(azimuth), height]
        )
        direction = point - center
        axis_angle = float(np.degrees(np.arccos(direction[0] / np.linalg.norm(direction))))
        inside = np.all(point > WALL_MARGIN_M) and np.all(point < room_dim - WALL_MARGIN_M)
        off_axis = ENDFIRE_MARGIN_DEG <= axis_angle <= 180 - ENDFIRE_MARGIN_DEG
        separated = all(abs(axis_angle - other) >= min_separation_deg for other in axis_angles)
        if inside and off_axis and separated:
            positions.append(point)
            axis_angles.append(axis_angle)
    if len(positions) < n_sources:
        raise ValueError(
            f"could not place {n_sources} sources {distance[0]}-{distance[1]} m from the array, "
            f"{WALL_MARGIN_M} m from the walls, {ENDFIRE_MARGIN_DEG}° off its axis and "
            f"{min_separation_deg}° apart (angle from the axis) in a room of "
            f"{room_dim.tolist()} m; give source_positions or a larger room"
        )
    return np.array(positions)


def _room(pra, room_dim: NDArray, fs: int, rt60: float):  # -> pra.ShoeBox
    if rt60 == 0:
        return pra.ShoeBox(room_dim, fs=fs, max_order=0)
    try:
        absorption, max_order = pra.inverse_sabine(rt60, room_dim)
    except ValueError:
        absorption, max_order = np.inf, 0
    if not 0 < absorption <= 1:
        raise ValueError(f"rt60={rt60} s is too short for a {room_dim.tolist()} m room")
    return pra.ShoeBox(room_dim, fs=fs, materials=pra.Material(absorption), max_order=max_order)


def simulate_room(
    sources: Sequence[SourceSpec],
    fs: int,
    *,
    room_dim: Sequence[float] = (6.0, 5.0, 3.0),
    rt60: float = 0.3,
    mic_spacing: float = 0.05,
    n_mics: int = 2,
    mic_center: Sequence[float] | None = None,
    source_positions: ArrayLike | None = None,
    source_distance: tuple[float, float] = (1.0, 2.0),
    min_separation_deg: float = 30.0,
    snr_db: float | None = None,
    calibrate_rt60: bool = True,
    rng: np.random.Generator | int | None = None,
) -> Mixture:
    """Simulate a reverberant shoebox room recording of dry sources (pyroomacoustics).

    Wall absorption and image-source order come from the target RT60 by inverse Sabine
    (:func:`pyroomacoustics.inverse_sabine`). RT60 is measured as T30, the ISO 3382
    convention: a line fit of the Schroeder decay from −5 to −35 dB, extrapolated to
    60 dB. The image-source rooms miss Sabine's prediction (T30 from −21 % at 0.2 s in an
    8×6×3.5 m room to +12 % at 0.6 s in a 6×5×3 m one), so with ``calibrate_rt60`` the
    impulse responses are measured once and the Sabine target corrected by the ratio.

    Parameters
    ----------
    sources : sequence of arrays (samples,) or audio file paths
        Dry mono sources; files are read, down-mixed and resampled to ``fs``. Shorter
        sources are zero-padded to the longest.
    fs : int
        Sample rate in Hz.
    room_dim : (3,) floats
        Room size in metres.
    rt60 : float
        Target reverberation time in seconds; 0 gives an anechoic room (direct paths).
    mic_spacing : float
        Distance between neighbouring microphones of the linear array, metres.
    n_mics : int
        I, number of microphones.
    mic_center : (3,) floats, optional
        Array centre; default the room's centre at 1.5 m height.
    source_positions : array (J, 3), optional
        Source positions in metres; by default drawn from ``rng``: at
        ``source_distance`` from the array centre, within ±0.2 m of its height, at least
        0.5 m from every wall and ``min_separation_deg`` apart in azimuth.
    snr_db : float, optional
        Add white sensor noise at this SNR (relative to the mean power of ``mix``).
    calibrate_rt60 : bool
        Correct the Sabine target once from the measured RT60 (see above).
    rng : numpy.random.Generator, int or None
        Positions and noise; the same seed gives the same mixture.

    Returns
    -------
    Mixture
        ``mix`` and ``images`` trimmed to the dry sources' length; ``meta`` holds the
        geometry, the target and measured RT60 (T30, median over source-mic pairs),
        absorption, image-source order, and ``seed`` (the int given as ``rng``, else None).
    """
    import pyroomacoustics as pra  # heavy import, only where rooms are simulated

    fs = positive_int(fs, name="fs")
    generator = as_generator(rng)
    rt60 = finite_real(rt60, name="rt60", minimum=0.0)
    n_mics = positive_int(n_mics, name="n_mics")
    mic_spacing = finite_real(mic_spacing, name="mic_spacing", minimum=0.0)
    dims = as_float_array(room_dim, name="room_dim", ndim=1).astype(np.float64)
    if dims.shape != (3,) or np.any(dims <= 0):
        raise ValueError(f"room_dim must be three positive lengths in metres, got {dims.tolist()}")
    dry, origins = _dry_sources(sources, fs)
    n_sources, length = dry.shape

    center = None if mic_center is None else as_float_array(mic_center, name="mic_center", ndim=1)
    center, mics = _array_geometry(dims, n_mics, mic_spacing, center)
    if source_positions is None:
        positions = _draw_positions(
            generator,
            dims,
            center,
            n_sources,
            distance=source_distance,
            min_separation_deg=min_separation_deg,
        )
    else:
        positions = as_float_array(source_positions, name="source_positions", ndim=2)
        if positions.shape != (n_sources, 3):
            raise ValueError(
                f"source_positions must be (J, 3) = ({n_sources}, 3), got {positions.shape}"
            )
        if np.any(positions <= 0) or np.any(positions >= dims):
            raise ValueError("source_positions must lie inside the room")

    def build(target: float):  # -> pra.ShoeBox with RIRs computed
        room = _room(pra, dims, fs, target)
        for position, signal in zip(positions, dry, strict=True):
            room.add_source(position, signal=signal)
        room.add_microphone_array(mics)
        room.compute_rir()
        return room

    sabine_target = rt60
    room = build(rt60)
    measured = float(np.median(room.measure_rt60(decay_db=RT60_DECAY_DB))) if rt60 > 0 else 0.0
    if rt60 > 0 and calibrate_rt60 and measured > 0:
        sabine_target = rt60 * rt60 / measured
        room = build(sabine_target)
        measured = float(np.median(room.measure_rt60(decay_db=RT60_DECAY_DB)))
    premix = room.simulate(return_premix=True)  # (J, I, samples + RIR tail)
    images = np.ascontiguousarray(premix[:, :, :length].transpose(0, 2, 1))
    mix = images.sum(axis=0)
    noise = None
    if snr_db is not None:
        snr_db = finite_real(snr_db, name="snr_db")
        level = np.sqrt(np.mean(mix**2) * 10 ** (-snr_db / 10))
        noise = level * generator.standard_normal(mix.shape)
        mix = mix + noise
    absorption = None
    if rt60 > 0:
        absorption = float(pra.inverse_sabine(sabine_target, dims)[0])
    meta = {
        "kind": "simulated_room",
        "room_dim": dims.tolist(),
        "rt60_target": rt60,
        "rt60_measured": measured,
        "absorption": absorption,
        "max_order": int(room.max_order),
        "mic_positions": mics.T.tolist(),
        "source_positions": positions.tolist(),
        "mic_spacing": mic_spacing,
        "snr_db": snr_db,
        "source_files": origins,
        "seed": _seed_of(rng),
    }
    return Mixture(mix=mix, images=images, fs=fs, sources=dry, noise=noise, meta=meta)


def instantaneous_mix(
    sources: Sequence[SourceSpec],
    fs: int,
    *,
    gains: ArrayLike | None = None,
    n_mics: int = 2,
    rng: np.random.Generator | int | None = None,
) -> Mixture:
    """Mix dry sources with per-source gains and no room (panned studio mix).

    Parameters
    ----------
    sources : sequence of arrays (samples,) or audio file paths
    fs : int
    gains : array (I, J), optional
        Gain of source j at microphone i. By default, for two microphones, constant-power
        panning cos θ_j, sin θ_j with θ_j evenly spread over (0, π/2) in a random order
        drawn from ``rng``; for other I, uniform random gains in [0.2, 1] normalized to
        unit norm per source.
    n_mics : int
        I, when ``gains`` is not given.
    rng : numpy.random.Generator, int or None

    Returns
    -------
    Mixture
        ``images[j] = sources[j][:, None] * gains[:, j]``; ``meta["gains"]``.
    """
    fs = positive_int(fs, name="fs")
    generator = as_generator(rng)
    dry, origins = _dry_sources(sources, fs)
    n_sources = dry.shape[0]
    if gains is None:
        n_mics = positive_int(n_mics, name="n_mics")
        if n_mics == 2:
            angles = (np.arange(n_sources) + 0.5) / n_sources * (np.pi / 2)
            angles = generator.permutation(angles)
            mixing = np.stack([np.cos(angles), np.sin(angles)])
        else:
            mixing = generator.uniform(0.2, 1.0, size=(n_mics, n_sources))
            mixing /= np.linalg.norm(mixing, axis=0, keepdims=True)
    else:
        mixing = as_float_array(gains, name="gains", ndim=2).astype(np.float64)
        check_finite(mixing, name="gains")
        if mixing.shape[1] != n_sources:
            raise ValueError(f"gains must be (I, J) with J={n_sources}, got {mixing.shape}")
    images = dry[:, :, None] * mixing.T[:, None, :]
    meta = {
        "kind": "instantaneous",
        "gains": mixing.tolist(),
        "source_files": origins,
        "seed": _seed_of(rng),
    }
    return Mixture(mix=images.sum(axis=0), images=images, fs=fs, sources=dry, meta=meta)
