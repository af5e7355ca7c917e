"""DJ-mix transcription by multi-pass IS-NMF with the tracks as fixed dictionaries.

After André, Fourer & Schwarz (2024), "DJ Mix Transcription with Multi-Pass Non-Negative
Matrix Factorization". The mix's mel power spectrogram V (F × N) is modelled as

    V ≈ Σ_i W_i H_i + W_a H_a,

where W_i (F × K_i) is the mel power spectrogram of reference track i, one column per
track frame, fixed; H_i (K_i × N) holds the time warp and the gain (a track played
unchanged at amplitude g gives a diagonal H_i of height g²); W_a H_a is a small free
part for effects and extra sounds. IS divergence, multiplicative updates
(:func:`mnmf.fit_nmf` with fixed columns and an H mask).

Multi-pass: a first NMF at a coarse hop (long windows), then, pass after pass, each H_i
is filtered (line enhancement along slopes ``1 ± max_speed_deviation``, a small blur), thresholded
and resized to the next, finer grid; its zeros become the next pass's H mask, and
multiplicative updates keep them zero. Only the band around each track's path
survives to the finest pass.

Every quantity of the result is in the *gain units* of the tracks: ``H_i`` is scaled back
through the column normalization of ``W_i`` so that its column sums are ``g²``.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.ndimage as ndimage
from numpy.typing import ArrayLike, NDArray

from mnmf._validation import as_generator, positive_int
from mnmf.algorithms.nmf import fit_nmf
from mnmf.data.io import resample
from mnmf.djmix.features import MelFrontEnd
from mnmf.djmix.timeline import TrackTimeline, derive_parameters

#: Gaussian blur (in frames of the pass) applied to H_i between passes.
BLUR_SIGMA = 1.0
#: Half-width (frames) of the neighbourhood of the argmax used by the local centre of mass.
LOCAL_HALF_WIDTH = 2
#: A track plays where its energy share of the mix model (median over MEDIAN_SECONDS)
#: reaches PRESENCE_SHARE, and around it while the share stays above PRESENCE_SHARE_LOW.
PRESENCE_SHARE = 0.05
PRESENCE_SHARE_LOW = 0.005
MEDIAN_SECONDS = 2.0


@dataclass(frozen=True)
class PassRecord:
    """One pass of the multi-pass NMF.

    Attributes
    ----------
    hop : float
        Seconds between frames (mix and tracks) in this pass.
    window : float
        Analysis window in seconds.
    times : array, shape (N,)
        Mix frame times (s).
    track_times : list of arrays, shape (K_i,)
        Track frame times (s) of every track.
    H : list of arrays, shape (K_i, N)
        Every track's activations in gain units (column sums are g²), after the fit.
    mask : list of bool arrays, shape (K_i, N)
        The entries the fit was allowed to use (the previous pass's surviving band).
    noise_activations : array, shape (noise_components, N)
        Activations of the free noise part (W_a of unit-sum columns).
    cost : array
        IS divergence history of the fit (initial cost first).
    n_iter : int
    seconds : float
        Wall time of the pass (analysis, fit and filtering).
    """

    hop: float
    window: float
    times: NDArray[np.float64]
    track_times: list[NDArray[np.float64]]
    H: list[NDArray[np.float64]]
    mask: list[NDArray[np.bool_]]
    noise_activations: NDArray[np.float64]
    cost: NDArray[np.float64]
    n_iter: int
    seconds: float


@dataclass(frozen=True)
class DJMixResult:
    """What :func:`decompose_mix` found.

    Attributes
    ----------
    tracks : list of TrackTimeline
        The final estimate per track (refined when ``refine=True``), on the finest
        pass's mix frame times.
    passes : list of PassRecord
        Coarse to fine.
    nmf_tracks : list of TrackTimeline
        The multi-pass NMF estimate alone (before refinement).
    relative_volume : array, shape (M, T)
        ``Σ_k H_i / Σ H`` per track (energy share of the mix model, noise included).
    position_argmax, position_com, position_local_com : arrays, shape (M, T)
        Position estimators (s) at the finest pass: argmax of each column of H_i, its
        centre of mass, and the centre of mass within ±2 frames of the argmax (the one
        used for ``nmf_tracks``; refined ``tracks`` hold the fitted warp line). NaN
        where the track is silent.
    refined : bool
        Whether ``tracks`` holds the sub-frame refinement.
    seconds : float
        Total wall time.
    info : dict
        Anything else (front-end settings, refinement diagnostics).
    """

    tracks: list[TrackTimeline]
    passes: list[PassRecord]
    nmf_tracks: list[TrackTimeline]
    relative_volume: NDArray[np.float64]
    position_argmax: NDArray[np.float64]
    position_com: NDArray[np.float64]
    position_local_com: NDArray[np.float64]
    refined: bool = False
    seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def times(self) -> NDArray[np.float64]:
        """Mix times (s) of the curves: the finest pass's frames."""
        return self.passes[-1].times

    def track(self, name: str) -> TrackTimeline:
        """The timeline of the track ``name``."""
        for timeline in self.tracks:
            if timeline.name == name:
                return timeline
        raise ValueError(f"no track {name!r}; tracks: {[t.name for t in self.tracks]}")


@dataclass(frozen=True)
class _Reference:
    name: str
    audio: NDArray[np.float64]  # mono, at the mix's rate


def decompose_mix(
    mix: ArrayLike,
    tracks: Sequence[Any],
    fs: int,
    *,
    hops: Sequence[float] = (4.0, 2.0, 1.0, 0.5),
    overlap: int = 8,
    n_mels: int = 128,
    noise_components: int = 2,
    max_speed_deviation: float = 0.1,
    threshold_db: float = -40.0,
    max_iter: int = 200,
    tol: float = 1e-5,
    rng: np.random.Generator | int | None = None,
    progress: bool = False,
    refine: bool = True,
) -> DJMixResult:
    """Each track's gain and position in a DJ mix, by multi-pass IS-NMF.

    Parameters
    ----------
    mix : array, shape (samples,) or (samples, channels)
        The mix (channels are averaged).
    tracks : sequence
        The reference tracks: objects with ``.name``, ``.audio`` ((samples,) or
        (samples, channels)) and ``.fs`` (e.g. :class:`mnmf.djmix.synthetic.Track`),
        or ``(name, audio, fs)`` tuples. Resampled to ``fs`` and down-mixed.
    fs : int
        Sample rate of the mix.
    hops : sequence of float
        Hop (s) of every pass, coarse to fine.
    overlap : int
        Analysis window = ``overlap × hop``.
    n_mels : int
        Mel bands F.
    noise_components : int
        Columns of the free part W_a (0 for none).
    max_speed_deviation : float
        The line enhancement keeps paths of slope ``1 ± max_speed_deviation`` track
        frames per mix frame.
    threshold_db : float
        Between passes, entries of H_i below this (dB of power) re the max of H_i (or
        re the max over all tracks, whichever is higher) become zero; in the result,
        positions are NaN where the gain is below this (dB of amplitude) re its peak,
        and a track whose peak gain is below it re the loudest track is absent.
    max_iter, tol : int, float
        Per pass, see :func:`mnmf.fit_nmf`.
    rng : numpy.random.Generator, int or None
        Random initialization of the first pass and of W_a; a seed gives one result.
    progress : bool
        A tqdm bar per pass.
    refine : bool
        Refine the warps to the sample scale and refit the gains
        (:func:`mnmf.djmix.refine.refine_tracks`); ``nmf_tracks`` keeps the NMF alone.

    Returns
    -------
    DJMixResult
    """
    started = time.perf_counter()
    fs = positive_int(fs, name="fs")
    signal = _mono(mix, name="mix")
    references = _references(tracks, fs)
    hops = _check_hops(hops)
    overlap = positive_int(overlap, name="overlap")
    n_mels = positive_int(n_mels, name="n_mels")
    noise_components = positive_int(noise_components, name="noise_components", minimum=0)
    if not (math.isfinite(max_speed_deviation) and 0 <= max_speed_deviation < 1):
        raise ValueError(f"max_speed_deviation must lie in [0, 1), got {max_speed_deviation}")
    if not (math.isfinite(threshold_db) and threshold_db < 0):
        raise ValueError(f"threshold_db must be a negative number of dB, got {threshold_db}")
    generator = as_generator(rng)
    coarsest = overlap * hops[0]
    if signal.size < coarsest * fs:
        raise ValueError(
            f"hops: the mix ({signal.size / fs:.3g} s) is shorter than the coarsest analysis "
            f"window overlap * hops[0] = {coarsest:g} s; use smaller hops or overlap"
        )

    front = MelFrontEnd(fs, n_mels)
    mix_short = front.short_mel(signal)
    track_short = [front.short_mel(ref.audio) for ref in references]
    passes: list[PassRecord] = []
    previous: _PassState | None = None
    for index, hop in enumerate(hops):
        state = _run_pass(
            front,
            mix_short,
            signal.size,
            track_short,
            [ref.audio.size for ref in references],
            hop=hop,
            overlap=overlap,
            previous=previous,
            noise_components=noise_components,
            max_speed_deviation=max_speed_deviation,
            threshold_db=threshold_db,
            max_iter=max_iter,
            tol=tol,
            rng=generator,
            progress=progress,
            last=index == len(hops) - 1,
        )
        passes.append(state.record)
        previous = state

    final = passes[-1]
    estimates = _estimates(final, previous, threshold_db=threshold_db)
    nmf_tracks = [
        _with_line_speed(
            derive_parameters(ref.name, final.times, gain, position, silence_db=threshold_db),
            hop=final.hop,
        )
        for ref, gain, position in zip(
            references, estimates["gain"], estimates["position_local_com"], strict=True
        )
    ]
    info: dict[str, Any] = {
        "fs": fs,
        "n_fft_short": front.n_fft,
        "short_hop": front.short_hop,
        "n_mels": n_mels,
        "position_estimator": "local_com",
    }
    final_tracks = nmf_tracks
    refined = False
    if refine:
        from mnmf.djmix.refine import refine_tracks

        final_tracks, diagnostics = refine_tracks(
            front,
            mix_short,
            signal.size,
            track_short,
            [ref.audio for ref in references],
            nmf_tracks,
            hop=final.hop,
            threshold_db=threshold_db,
        )
        info["refinement"] = diagnostics
        refined = True
    return DJMixResult(
        tracks=final_tracks,
        passes=passes,
        nmf_tracks=nmf_tracks,
        relative_volume=estimates["relative_volume"],
        position_argmax=estimates["position_argmax"],
        position_com=estimates["position_com"],
        position_local_com=estimates["position_local_com"],
        refined=refined,
        seconds=time.perf_counter() - started,
        info=info,
    )


def _with_line_speed(timeline: TrackTimeline, *, hop: float) -> TrackTimeline:
    """The timeline with its speed ratio from a robust line through its loud positions.

    The median slope between consecutive frames (:func:`derive_parameters`) is poor on
    frame-quantized positions (a staircase); a line fitted on the frames where the
    track is loud (:func:`mnmf.djmix.refine.fit_warp`) is not.
    """
    from mnmf.djmix.refine import BODY_FRACTION, fit_warp

    located = np.isfinite(timeline.position) & (timeline.gain > 0)
    loud = located & (timeline.gain >= BODY_FRACTION * timeline.gain.max(initial=0.0))
    if not timeline.present or loud.sum() < 3:
        return timeline
    slope, _, _ = fit_warp(timeline.times[loud], timeline.position[loud], hop=hop)
    return replace(timeline, speed_ratio=slope)


# ---------------------------------------------------------------------- input checks
def _mono(audio: ArrayLike, *, name: str) -> NDArray[np.float64]:
    try:
        array = np.asarray(audio, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an array of samples") from None
    if array.ndim == 2:
        array = array.mean(axis=1)
    if array.ndim != 1:
        raise ValueError(
            f"{name} must have shape (samples,) or (samples, channels), got {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite samples")
    return array


def _references(tracks: Sequence[Any], fs: int) -> list[_Reference]:
    if isinstance(tracks, str | bytes) or not isinstance(tracks, Sequence):
        raise ValueError("tracks must be a sequence of tracks (name, audio, fs)")
    if len(tracks) == 0:
        raise ValueError("tracks is empty: the mix needs at least one reference track")
    references = []
    for position, track in enumerate(tracks):
        if isinstance(track, tuple) and len(track) == 3:
            name, audio, track_fs = track
        elif all(hasattr(track, attribute) for attribute in ("name", "audio", "fs")):
            name, audio, track_fs = track.name, track.audio, track.fs
        else:
            raise ValueError(
                f"tracks[{position}] must have .name, .audio and .fs "
                "or be a (name, audio, fs) tuple"
            )
        mono = _mono(audio, name=f"tracks[{position}].audio")
        if mono.size == 0:
            raise ValueError(f"tracks[{position}].audio is empty")
        track_fs = positive_int(track_fs, name=f"tracks[{position}].fs")
        references.append(_Reference(str(name), resample(mono, track_fs, fs)))
    return references


def _check_hops(hops: Sequence[float]) -> list[float]:
    try:
        values = [float(hop) for hop in hops]
    except (TypeError, ValueError):
        raise ValueError(f"hops must be a sequence of seconds, got {hops!r}") from None
    if not values or not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"hops must be positive seconds, got {values}")
    if any(b > a for a, b in itertools.pairwise(values)):
        raise ValueError(f"hops must go from coarse to fine (non-increasing), got {values}")
    return values


# ---------------------------------------------------------------------- one pass
@dataclass
class _PassState:
    record: PassRecord
    filtered: list[NDArray[np.float64]] | None  # per track, gain units, for the next pass
    noise_templates: NDArray[np.float64]
    noise_activations: NDArray[np.float64]  # raw (unit-sum W_a)
    mix_mean: float
    raw_activations: NDArray[np.float64]  # (K, N) as fitted, W of unit-sum columns


def _run_pass(
    front: MelFrontEnd,
    mix_short: NDArray[np.float64],
    mix_samples: int,
    track_short: list[NDArray[np.float64]],
    track_samples: list[int],
    *,
    hop: float,
    overlap: int,
    previous: _PassState | None,
    noise_components: int,
    max_speed_deviation: float,
    threshold_db: float,
    max_iter: int,
    tol: float,
    rng: np.random.Generator,
    progress: bool,
    last: bool,
) -> _PassState:
    started = time.perf_counter()
    fs = front.fs
    hop_samples = max(1, round(hop * fs))
    window_samples = max(hop_samples, round(overlap * hop * fs))
    hop_seconds = hop_samples / fs
    V = front.long_mel(mix_short, mix_samples, hop=hop_samples, window=window_samples)
    n_bands, n_frames = V.shape
    times = np.arange(n_frames) * hop_seconds

    # Fixed dictionaries: unit-sum columns; quiet track frames are masked out.
    blocks, norms, valid = [], [], []
    for short, samples in zip(track_short, track_samples, strict=True):
        S = front.long_mel(short, samples, hop=hop_samples, window=window_samples)
        norm = S.sum(axis=0)
        peak = float(norm.max(initial=0.0))
        ok = (norm > peak * 10 ** (threshold_db / 10)) & (norm > 0) if peak > 0 else norm > 1
        W_i = np.full_like(S, 1.0 / n_bands)
        W_i[:, ok] = S[:, ok] / norm[ok]
        blocks.append(W_i)
        norms.append(np.where(ok, norm, 0.0))
        valid.append(ok)
    sizes = [block.shape[1] for block in blocks]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    n_track_rows = int(offsets[-1])
    K = n_track_rows + noise_components

    mask = np.ones((K, n_frames), dtype=bool)
    for i, ok in enumerate(valid):
        mask[offsets[i] : offsets[i + 1]] &= ok[:, None]
    options: dict[str, Any] = {}
    if previous is None:
        W_given = np.hstack(blocks)
    else:
        H_init = np.zeros((K, n_frames))
        for i, band in enumerate(previous.filtered or []):
            resized = _resize(band, previous.record.hop, hop_seconds, sizes[i], n_frames)
            rows = slice(offsets[i], offsets[i + 1])
            H_init[rows] = resized * norms[i][:, None]
        mean = float(V.mean())
        if noise_components:
            noise = _resize_time(
                previous.noise_activations, previous.record.hop, hop_seconds, n_frames
            )
            noise *= mean / max(previous.mix_mean, np.finfo(float).tiny)
            H_init[n_track_rows:] = np.maximum(noise, 1e-3 * mean)
        mask &= H_init > 0
        H_init[~mask] = 0
        W_given = (
            np.hstack([*blocks, previous.noise_templates])
            if noise_components
            else np.hstack(blocks)
        )
        options["H"] = H_init
    fixed = np.zeros(K, dtype=bool)
    fixed[:n_track_rows] = True
    fit = fit_nmf(
        V,
        K,
        W=W_given,
        fix_W=fixed,
        H_mask=mask,
        beta=0.0,
        max_iter=max_iter,
        tol=tol,
        rng=rng,
        progress=progress,
        n_threads=1,
        **options,
    )
    H_raw = np.asarray(fit.H, dtype=np.float64)
    H_gain = []
    masks = []
    for i in range(len(blocks)):
        rows = slice(offsets[i], offsets[i + 1])
        scale = np.divide(1.0, norms[i], out=np.zeros_like(norms[i]), where=norms[i] > 0)
        H_gain.append(H_raw[rows] * scale[:, None])
        masks.append(mask[rows].copy())
    filtered = None
    if not last:
        filtered = _filter_bands(
            H_gain,
            max_speed_deviation=max_speed_deviation,
            line_frames=_line_frames(overlap),
            threshold_db=threshold_db,
        )
    record = PassRecord(
        hop=hop_seconds,
        window=window_samples / fs,
        times=times,
        track_times=[np.arange(size) * hop_seconds for size in sizes],
        H=H_gain,
        mask=masks,
        noise_activations=H_raw[n_track_rows:].copy(),
        cost=np.asarray(fit.cost),
        n_iter=int(fit.n_iter),
        seconds=time.perf_counter() - started,
    )
    return _PassState(
        record=record,
        filtered=filtered,
        noise_templates=np.asarray(fit.W[:, n_track_rows:], dtype=np.float64),
        noise_activations=H_raw[n_track_rows:].copy(),
        mix_mean=float(V.mean()),
        raw_activations=H_raw,
    )


# ---------------------------------------------------------------------- filter, threshold, resize
def _line_frames(overlap: int) -> int:
    """Length (mix frames, odd, ≥ 3) of the line structuring elements."""
    return max(3, (overlap // 2) | 1)


def line_footprints(max_speed_deviation: float, length: int) -> list[NDArray[np.bool_]]:
    """One-pixel-wide line structuring elements of slopes ``1 ± max_speed_deviation``.

    Parameters
    ----------
    max_speed_deviation : float
    length : int
        Extent along the mix axis (odd).

    Returns
    -------
    list of bool arrays, shape (track frames, length)
        Distinct rasterizations (rows: track axis, columns: mix axis), centred.
    """
    half = length // 2
    t = np.arange(-half, half + 1)
    n_slopes = 2 * math.ceil(max_speed_deviation * half) + 1
    slopes = np.linspace(1 - max_speed_deviation, 1 + max_speed_deviation, n_slopes)
    reach = int(np.ceil((1 + max_speed_deviation) * half))
    seen, footprints = set(), []
    for slope in slopes:
        k = np.round(slope * t).astype(int)
        key = tuple(k)
        if key in seen:
            continue
        seen.add(key)
        footprint = np.zeros((2 * reach + 1, length), dtype=bool)
        footprint[k + reach, t + half] = True
        footprints.append(footprint)
    return footprints


def _filter_bands(
    H_gain: list[NDArray[np.float64]],
    *,
    max_speed_deviation: float,
    line_frames: int,
    threshold_db: float,
) -> list[NDArray[np.float64]]:
    """Line enhancement (max of grey openings), blur and dB threshold of every H_i."""
    footprints = line_footprints(max_speed_deviation, line_frames)
    enhanced = []
    for H in H_gain:
        if H.size == 0 or not H.any():
            enhanced.append(np.zeros_like(H))
            continue
        opened = np.zeros_like(H)
        for footprint in footprints:
            np.maximum(opened, ndimage.grey_opening(H, footprint=footprint), out=opened)
        enhanced.append(ndimage.gaussian_filter(opened, BLUR_SIGMA, mode="constant"))
    overall = max((float(E.max(initial=0.0)) for E in enhanced), default=0.0)
    factor = 10 ** (threshold_db / 10)
    for E in enhanced:
        threshold = max(float(E.max(initial=0.0)), overall) * factor
        E[threshold > E] = 0.0
        if threshold <= 0:
            E[...] = 0.0
    return enhanced


def _resize(
    band: NDArray[np.float64], old_hop: float, new_hop: float, n_rows: int, n_cols: int
) -> NDArray[np.float64]:
    """Bilinear resampling of an H_i (track × mix frames) onto another hop's grid.

    Frame ``k`` of either grid is at ``k · hop`` seconds on both axes, so the new grid's
    frame ``k'`` reads the old grid at ``k' · new_hop / old_hop`` (clipped to its end).
    """
    if band.size == 0 or not band.any():
        return np.zeros((n_rows, n_cols))
    ratio = new_hop / old_hop
    rows = np.minimum(np.arange(n_rows) * ratio, band.shape[0] - 1)
    cols = np.minimum(np.arange(n_cols) * ratio, band.shape[1] - 1)
    grid = np.meshgrid(rows, cols, indexing="ij")
    out = ndimage.map_coordinates(band, grid, order=1, mode="nearest")
    out[out < 0] = 0.0
    return out


def _resize_time(
    rows: NDArray[np.float64], old_hop: float, new_hop: float, n_cols: int
) -> NDArray[np.float64]:
    old_times = np.arange(rows.shape[1]) * old_hop
    new_times = np.arange(n_cols) * new_hop
    return np.array([np.interp(new_times, old_times, row) for row in rows]).reshape(-1, n_cols)


# ---------------------------------------------------------------------- estimators
def _estimates(
    record: PassRecord, state: _PassState | None, *, threshold_db: float
) -> dict[str, NDArray[np.float64]]:
    """Gain, relative volume and the three position estimators at the finest pass."""
    n_frames = record.times.size
    n_tracks = len(record.H)
    gain = np.zeros((n_tracks, n_frames))
    argmax = np.full((n_tracks, n_frames), np.nan)
    com = np.full((n_tracks, n_frames), np.nan)
    local = np.full((n_tracks, n_frames), np.nan)
    total = state.raw_activations.sum(axis=0) if state is not None else np.zeros(n_frames)
    relative = np.zeros((n_tracks, n_frames))
    offset = 0
    for i, H in enumerate(record.H):
        rows = H.shape[0]
        if state is not None:
            share = state.raw_activations[offset : offset + rows].sum(axis=0)
            relative[i] = np.divide(share, total, out=np.zeros(n_frames), where=total > 0)
        offset += rows
        power = H.sum(axis=0)
        gain[i] = np.sqrt(np.maximum(power, 0.0))
        if rows == 0:
            continue
        best = np.argmax(H, axis=0)
        index = np.arange(rows, dtype=np.float64)
        located = power > 0
        argmax[i, located] = best[located] * record.hop
        centre = np.divide(H.T @ index, power, out=np.zeros(n_frames), where=located)
        com[i, located] = centre[located] * record.hop
        for n in np.flatnonzero(located):
            lo, hi = max(0, best[n] - LOCAL_HALF_WIDTH), min(rows, best[n] + LOCAL_HALF_WIDTH + 1)
            weights = H[lo:hi, n]
            local[i, n] = float(weights @ index[lo:hi]) / float(weights.sum()) * record.hop
    # Where a track plays: its energy share of the model (median over ~2 s) reaches
    # PRESENCE_SHARE somewhere, and stays above PRESENCE_SHARE_LOW around it (hysteresis).
    # Elsewhere its activations are the NMF's leftovers (a quiet track can show a large
    # gain for a tiny share of the energy) and its gain is 0.
    width = max(3, round(MEDIAN_SECONDS / record.hop) | 1)
    share = ndimage.median_filter(relative, size=(1, width), mode="nearest")
    for i in range(n_tracks):
        labels, _ = ndimage.label(share[i] >= PRESENCE_SHARE_LOW)
        seeds = np.unique(labels[(share[i] >= PRESENCE_SHARE) & (labels > 0)])
        gain[i, ~np.isin(labels, seeds)] = 0.0
    peaks = gain.max(axis=1, initial=0.0)
    loudest = float(peaks.max(initial=0.0))
    absent = peaks <= loudest * 10 ** (threshold_db / 20)
    gain[absent] = 0.0
    for curve in (argmax, com, local):
        curve[absent] = np.nan
        for i in range(n_tracks):
            quiet = gain[i] <= max(peaks[i] * 10 ** (threshold_db / 20), 0.0)
            curve[i, quiet] = np.nan
    return {
        "gain": gain,
        "relative_volume": relative,
        "position_argmax": argmax,
        "position_com": com,
        "position_local_com": local,
    }
