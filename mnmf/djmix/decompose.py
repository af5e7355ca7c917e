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

Scale (an hour-long mix at fine hops has ~10⁸–10⁹ cells of H, a few % of them in the
band): the first pass is a dense fit; every later pass stores only the band, as a
``scipy.sparse`` matrix, and is fitted by :class:`mnmf.djmix.sparse.BandedNMFSource`
through ``fit_nmf(V, source_model=..., algorithm="sparse-mu")`` (MU statistics only at
the stored entries; the same numbers as the dense fit to rounding). Filtering and
resizing work on dense crops around each H_i's non-zeros, never on a whole H_i. The
records hold H_i and masks as ``scipy.sparse.csc_array``. Each pass is logged (logger
``mnmf.djmix.decompose``, INFO: seconds, iterations, stored share of H).

Every quantity of the result is in the *gain units* of the tracks: ``H_i`` is scaled back
through the column normalization of ``W_i`` so that its column sums are ``g²``.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.ndimage as ndimage
import scipy.sparse
from numpy.typing import ArrayLike, NDArray

from mnmf._validation import as_generator, positive_int
from mnmf.algorithms.nmf import fit_nmf
from mnmf.data.io import resample
from mnmf.djmix.features import MelFrontEnd
from mnmf.djmix.sparse import BandedNMFSource
from mnmf.djmix.timeline import TrackTimeline, derive_parameters

logger = logging.getLogger(__name__)

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
    H : list of scipy.sparse.csc_array, shape (K_i, N)
        Every track's activations in gain units (column sums are g²), after the fit;
        only the entries the fit could use are stored (``.toarray()`` for a dense one).
    mask : list of bool scipy.sparse.csc_array, shape (K_i, N)
        The entries the fit was allowed to use (the previous pass's surviving band;
        the valid track frames at the first pass).
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
    H: list[scipy.sparse.csc_array]
    mask: list[scipy.sparse.csc_array]
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
    audio: NDArray[np.floating]  # mono, at the mix's rate (float64, or float32 as given)


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
    pitch_step: float = 0.02,
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
    pitch_step : float
        Pitch scan (:func:`scan_pitches`): before the passes, one coarse NMF with every
        track's spectrogram at the pitches ``1 + k · pitch_step`` within
        ``1 ± max_speed_deviation`` finds the pitch each track is heard at (a track
        sped up by resampling sounds higher, and its pitch-1 spectrogram no longer
        matches the mix); the passes then use each track's spectrogram at its pitch.
        0 turns the scan off (every track at pitch 1).
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
    if not (math.isfinite(pitch_step) and pitch_step >= 0):
        raise ValueError(f"pitch_step must be a non-negative number, got {pitch_step}")
    generator = as_generator(rng)
    coarsest = overlap * hops[0]
    if signal.size < coarsest * fs:
        raise ValueError(
            f"hops: the mix ({signal.size / fs:.3g} s) is shorter than the coarsest analysis "
            f"window overlap * hops[0] = {coarsest:g} s; use smaller hops or overlap"
        )

    front = MelFrontEnd(fs, n_mels)
    mix_short = front.short_mel(signal, dtype=SHORT_MEL_DTYPE)
    pitches = [1.0] * len(references)
    scan_seconds = 0.0
    candidates = pitch_candidates(max_speed_deviation, pitch_step)
    if candidates.size > 1:
        scan_started = time.perf_counter()
        pitches = scan_pitches(
            front, mix_short, signal.size, [ref.audio for ref in references], candidates,
            hop=hops[0], overlap=overlap, threshold_db=threshold_db, max_iter=max_iter,
            tol=tol, rng=generator,
        )  # fmt: skip
        scan_seconds = time.perf_counter() - scan_started
        logger.info(
            "pitch scan (%d pitches, hop %g s): %.1f s, pitches %s",
            candidates.size, hops[0], scan_seconds, ", ".join(f"{p:.4f}" for p in pitches),
        )  # fmt: skip
    track_short = [
        front.short_mel(ref.audio, pitch=pitch, dtype=SHORT_MEL_DTYPE)
        for ref, pitch in zip(references, pitches, strict=True)
    ]
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
        stored = sum(H.nnz for H in state.record.H)
        cells = sum(H.shape[0] * H.shape[1] for H in state.record.H)
        logger.info(
            "pass %d/%d (hop %g s): %.1f s, %d iterations, H stores %d of %d entries (%.2g %%)",
            index + 1, len(hops), state.record.hop, state.record.seconds, state.record.n_iter,
            stored, cells, 100 * stored / max(cells, 1),
        )  # fmt: skip

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
        "pitches": pitches,
        "pitch_scan_seconds": scan_seconds,
    }
    final_tracks = nmf_tracks
    refined = False
    if refine:
        from mnmf.djmix.refine import refine_tracks

        final_tracks, diagnostics = refine_tracks(
            front,
            mix_short,  # float32 kept: the refinement widens it block by block
            signal.size,
            [np.asarray(short, dtype=np.float64) for short in track_short],
            [ref.audio for ref in references],  # float32 kept: short_mel widens it
            nmf_tracks,
            hop=final.hop,
            threshold_db=threshold_db,
            max_speed_deviation=max_speed_deviation,
            pitches=pitches,
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


def pitch_candidates(max_speed_deviation: float, pitch_step: float) -> NDArray[np.float64]:
    """Pitches ``1 + k · pitch_step`` within ``1 ± max_speed_deviation`` (1 alone when
    either is 0)."""
    if pitch_step <= 0 or max_speed_deviation <= 0:
        return np.ones(1)
    count = math.floor(max_speed_deviation / pitch_step + 1e-9)
    return 1.0 + pitch_step * np.arange(-count, count + 1)


def scan_pitches(
    front: MelFrontEnd,
    mix_short: NDArray[np.floating],
    mix_samples: int,
    audios: Sequence[NDArray[np.floating]],
    candidates: NDArray[np.float64],
    *,
    hop: float,
    overlap: int,
    threshold_db: float,
    max_iter: int,
    tol: float,
    rng: np.random.Generator,
) -> list[float]:
    """The pitch at which each track is heard in the mix (1: as the reference).

    One NMF at the coarse hop whose fixed dictionary holds every track's spectrogram at
    every candidate pitch (unit-sum columns, quiet frames masked, as the first pass):
    the candidates of one track compete for the same parts of the mix, and the pitch
    whose activations carry the most power wins; a parabola through the log-powers of
    the winner and its neighbours places it between the candidates.

    Parameters
    ----------
    front : MelFrontEnd
    mix_short : array, shape (n_mels, J)
        :meth:`MelFrontEnd.short_mel` of the mix.
    mix_samples : int
    audios : sequence of arrays, shape (samples_i,)
        The tracks, mono at the front end's rate.
    candidates : array, shape (P,)
        Pitches tried (:func:`pitch_candidates`).
    hop : float
        Seconds; the analysis window is ``overlap · hop``.
    overlap, threshold_db, max_iter, tol, rng
        As :func:`decompose_mix`.

    Returns
    -------
    list of float
        One pitch per track (1.0 for a track whose activations are all zero).
    """
    from mnmf.djmix.refine import parabolic_peak

    fs = front.fs
    hop_samples = max(1, round(hop * fs))
    window_samples = max(hop_samples, round(overlap * hop * fs))
    V = front.long_mel(mix_short, mix_samples, hop=hop_samples, window=window_samples)
    blocks, valid = [], []
    for audio in audios:
        shorts = front.short_mels(
            audio, pitches=[float(p) for p in candidates], dtype=SHORT_MEL_DTYPE
        )
        while shorts:  # each pitch's short frames freed once pooled
            short = shorts.pop(0)
            S = front.long_mel(short, audio.size, hop=hop_samples, window=window_samples)
            W_i, _, ok = _unit_templates(S, threshold_db)
            blocks.append(W_i)
            valid.append(ok)
    sizes = [block.shape[1] for block in blocks]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    mask = np.zeros((int(offsets[-1]), V.shape[1]), dtype=bool)
    for k, ok in enumerate(valid):
        mask[offsets[k] : offsets[k + 1]] = ok[:, None]
    # In float32 (fit_nmf keeps V's type): the scan only ranks each track's candidates,
    # and its dictionary is P times the first pass's (an hour's scan: ~10⁷ entries of H
    # and as many in each MU statistic).
    fit = fit_nmf(
        V.astype(np.float32), mask.shape[0], W=np.hstack(blocks).astype(np.float32),
        fix_W=True, H_mask=mask, beta=0.0, max_iter=max_iter, tol=tol, rng=rng, n_threads=1,
    )  # fmt: skip
    H = np.asarray(fit.H)
    power = np.array(
        [H[offsets[k] : offsets[k + 1]].sum(dtype=np.float64) for k in range(len(blocks))]
    )
    power = power.reshape(len(audios), candidates.size)
    pitches = []
    for row in power:
        if not np.any(row > 0):
            pitches.append(1.0)
            continue
        best = int(np.argmax(row))
        pitch = float(candidates[best])
        if 0 < best < candidates.size - 1 and np.all(row[best - 1 : best + 2] > 0):
            shift = float(parabolic_peak(*np.log(row[best - 1 : best + 2])))
            pitch += shift * (candidates[1] - candidates[0])
        pitches.append(pitch)
    return pitches


def _unit_templates(
    S: NDArray[np.float64], threshold_db: float
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Unit-sum columns of a track's long-frame spectrogram ``S`` (F, K), their sums
    (0 where masked) and the mask of frames above ``threshold_db`` re the loudest."""
    norm = S.sum(axis=0)
    peak = float(norm.max(initial=0.0))
    ok = (norm > peak * 10 ** (threshold_db / 10)) & (norm > 0) if peak > 0 else norm > 1
    W_i = np.full_like(S, 1.0 / S.shape[0])
    W_i[:, ok] = S[:, ok] / norm[ok]
    return W_i, np.where(ok, norm, 0.0), ok


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
def _mono(audio: ArrayLike, *, name: str) -> NDArray[np.floating]:
    """Mono samples: float64, or float32 kept as given (never copied for it).

    An hour of float64 audio is 635 MB: float32 input stays float32 here, and the
    analysis (:meth:`MelFrontEnd.short_mel`) widens it block by block, which gives
    exactly the spectrogram of its float64 copy.
    """
    try:
        array = np.asarray(audio)
        if array.dtype != np.float32 or array.ndim != 1:
            array = np.asarray(audio, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an array of samples") from None
    if array.ndim == 2:
        array = array.mean(axis=1)
    if array.ndim != 1:
        raise ValueError(
            f"{name} must have shape (samples,) or (samples, channels), got {array.shape}"
        )
    step = 1 << 22  # checked in blocks: no full-length boolean temporary
    if not all(np.isfinite(array[i : i + step]).all() for i in range(0, array.size, step)):
        raise ValueError(f"{name} contains NaN or infinite samples")
    return array


def _references(tracks: Sequence[Any], fs: int) -> list[_Reference]:
    if isinstance(tracks, str | bytes) or not isinstance(tracks, Sequence):
        raise ValueError("tracks must be a sequence of tracks (name, audio, fs)")
    if len(tracks) == 0:
        raise ValueError("tracks is empty: the mix needs at least one reference track")
    references = []
    for position, track in enumerate(tracks):
        if isinstance(track, tuple | list) and len(track) == 3:
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
        references.append(
            _Reference(str(name), mono if track_fs == fs else resample(mono, track_fs, fs))
        )
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
#: Storage of the short-frame mel spectrograms the passes pool (computed in float64):
#: float32 halves the largest arrays of an hour-long decomposition (mix and tracks:
#: ~0.35 GiB in float64) for a 6e-8 relative rounding of each short frame. The
#: refinement reads them in float64.
SHORT_MEL_DTYPE: type = np.float32

#: Fit the passes after the first with the block-sparse source model
#: (:class:`mnmf.djmix.sparse.BandedNMFSource`): only the surviving band of each H_i is
#: stored and updated. False fits every pass with the dense MU (same numbers to
#: rounding, memory and time O(K · N)); kept for comparisons and tests.
SPARSE_PASSES = True


@dataclass
class _PassState:
    record: PassRecord
    filtered: list[list[_Crop]] | None  # per track, gain units, for the next pass
    noise_templates: NDArray[np.float64]
    noise_activations: NDArray[np.float64]  # raw (unit-sum W_a)
    mix_mean: float
    raw_track_power: NDArray[np.float64]  # (M, N): column sums of each fitted H_i (raw)
    raw_total_power: NDArray[np.float64]  # (N,): column sums of the whole fitted H (raw)


@dataclass(frozen=True)
class _Crop:
    """A dense block ``values`` of a track × mix-frame matrix at ``rows`` × ``cols``."""

    rows: slice
    cols: slice
    values: Any  # scipy.sparse.csr_array (filtered H_i), or a dense array (resized)
    shape: tuple[int, int]  # of the whole matrix


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
    n_frames = V.shape[1]
    times = np.arange(n_frames) * hop_seconds

    # Fixed dictionaries: unit-sum columns; quiet track frames are masked out.
    blocks, norms, valid = [], [], []
    for short, samples in zip(track_short, track_samples, strict=True):
        S = front.long_mel(short, samples, hop=hop_samples, window=window_samples)
        W_i, norm, ok = _unit_templates(S, threshold_db)
        blocks.append(W_i)
        norms.append(norm)
        valid.append(ok)
    sizes = [block.shape[1] for block in blocks]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    n_track_rows = int(offsets[-1])
    K = n_track_rows + noise_components
    fixed = np.zeros(K, dtype=bool)
    fixed[:n_track_rows] = True

    if previous is None:
        mask = np.ones((K, n_frames), dtype=bool)
        for i, ok in enumerate(valid):
            mask[offsets[i] : offsets[i + 1]] &= ok[:, None]
        fit = fit_nmf(
            V, K, W=np.hstack(blocks), fix_W=fixed, H_mask=mask, beta=0.0, max_iter=max_iter,
            tol=tol, rng=rng, progress=progress, n_threads=1,
        )  # fmt: skip
        H_fit = scipy.sparse.csc_array(np.asarray(fit.H, dtype=np.float64))
        pattern = scipy.sparse.csc_array(mask)
    else:
        # The previous pass's surviving band, resized to this grid: the start values and
        # the pattern (an entry left out, like a False H_mask entry, stays zero).
        rows, cols, values = [], [], []
        for i, crops in enumerate(previous.filtered or []):
            for crop in _resize_crops(crops, previous.record.hop, hop_seconds, sizes[i], n_frames):
                r, c = np.nonzero(crop.values)
                v = crop.values[r, c] * norms[i][r + crop.rows.start]
                keep = v > 0
                rows.append(r[keep] + crop.rows.start + offsets[i])
                cols.append(c[keep] + crop.cols.start)
                values.append(v[keep])
        mean = float(V.mean())
        if noise_components:
            noise = _resize_time(
                previous.noise_activations, previous.record.hop, hop_seconds, n_frames
            )
            noise *= mean / max(previous.mix_mean, np.finfo(float).tiny)
            noise = np.maximum(noise, 1e-3 * mean)
            r, c = np.nonzero(noise > 0)
            rows.append(r + n_track_rows)
            cols.append(c)
            values.append(noise[r, c])
        empty = [np.zeros(0, dtype=int)]  # nothing survived and no noise part
        H_start = scipy.sparse.csc_array(
            (
                np.concatenate(values or [np.zeros(0)]),
                (np.concatenate(rows or empty), np.concatenate(cols or empty)),
            ),
            shape=(K, n_frames),
        )
        H_start.sort_indices()
        pattern = H_start.astype(bool)
        W_given = (
            np.hstack([*blocks, previous.noise_templates])
            if noise_components
            else np.hstack(blocks)
        )
        if SPARSE_PASSES:
            source = BandedNMFSource(W_given, H_start, fix_W=fixed)
            fit = fit_nmf(
                V, source_model=source, algorithm="sparse-mu", beta=0.0, max_iter=max_iter,
                tol=tol, rng=rng, progress=progress, n_threads=1,
            )  # fmt: skip
            H_fit = scipy.sparse.csc_array(fit.H)
        else:
            dense_start = H_start.toarray()
            fit = fit_nmf(
                V, K, W=W_given, fix_W=fixed, H=dense_start, H_mask=dense_start > 0, beta=0.0,
                max_iter=max_iter, tol=tol, rng=rng, progress=progress, n_threads=1,
            )  # fmt: skip
            H_fit = scipy.sparse.csc_array(np.asarray(fit.H, dtype=np.float64))
        del H_start
    H_fit.sort_indices()
    H_rows = scipy.sparse.csr_array(H_fit)  # row slices of the tracks
    mask_rows = scipy.sparse.csr_array(pattern)
    H_gain = []
    masks = []
    track_power = np.zeros((len(blocks), n_frames))
    for i in range(len(blocks)):
        rows_i = slice(offsets[i], offsets[i + 1])
        raw = scipy.sparse.csc_array(H_rows[rows_i])
        raw.sort_indices()
        track_power[i] = raw.sum(axis=0)
        scale = np.divide(1.0, norms[i], out=np.zeros_like(norms[i]), where=norms[i] > 0)
        gain = raw.copy()
        gain.data = gain.data * scale[gain.indices]
        H_gain.append(gain)
        mask_i = scipy.sparse.csc_array(mask_rows[rows_i])
        mask_i.sort_indices()
        masks.append(mask_i)
    noise_raw = np.asarray(H_rows[n_track_rows:].toarray(), dtype=np.float64)
    total_power = np.asarray(H_fit.sum(axis=0), dtype=np.float64).ravel()
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
        noise_activations=noise_raw.copy(),
        cost=np.asarray(fit.cost),
        n_iter=int(fit.n_iter),
        seconds=time.perf_counter() - started,
    )
    return _PassState(
        record=record,
        filtered=filtered,
        noise_templates=np.asarray(fit.W[:, n_track_rows:], dtype=np.float64),
        noise_activations=noise_raw,
        mix_mean=float(V.mean()),
        raw_track_power=track_power,
        raw_total_power=total_power,
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


def _support_crops(
    H: scipy.sparse.csc_array, margin_rows: int, margin_cols: int
) -> list[tuple[slice, slice]]:
    """Boxes (rows, cols) covering the non-zeros of ``H`` with margins, disjoint in columns.

    Runs of non-empty columns closer than ``2 · margin_cols`` share a box; each box
    spans its columns' non-zero rows, both widened by the margins (clipped to H).
    """
    n_rows, n_cols = H.shape
    counts = np.diff(H.indptr)
    nonempty = np.flatnonzero(counts > 0)
    if nonempty.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(nonempty) > 2 * margin_cols + 1)
    starts = np.concatenate([[nonempty[0]], nonempty[breaks + 1]])
    stops = np.concatenate([nonempty[breaks], [nonempty[-1]]]) + 1
    boxes = []
    for first, stop in zip(starts, stops, strict=True):
        rows = H.indices[H.indptr[first] : H.indptr[stop]]
        boxes.append(
            (
                slice(
                    max(0, int(rows.min()) - margin_rows),
                    min(n_rows, int(rows.max()) + margin_rows + 1),
                ),
                slice(max(0, int(first) - margin_cols), min(n_cols, int(stop) + margin_cols)),
            )
        )
    return boxes


def _filter_bands(
    H_gain: list[scipy.sparse.csc_array],
    *,
    max_speed_deviation: float,
    line_frames: int,
    threshold_db: float,
) -> list[list[_Crop]]:
    """Line enhancement (max of grey openings), blur and dB threshold of every H_i.

    Computed on dense crops around the non-zeros of each H_i only: an opening never
    exceeds its input (it is zero where H_i is), and the margins hold the reach of the
    openings, of the blur and of the next pass's bilinear resize, so the crops give the
    numbers a whole-matrix computation gives.
    """
    footprints = line_footprints(max_speed_deviation, line_frames)
    reach_rows = max(f.shape[0] for f in footprints) // 2
    reach_cols = line_frames // 2
    blur = int(4.0 * BLUR_SIGMA + 0.5)  # gaussian_filter's default truncate
    enhanced: list[list[_Crop]] = []
    for H in H_gain:
        H = H.copy()
        H.eliminate_zeros()
        crops = []
        for rows, cols in _support_crops(H, 2 * reach_rows + blur + 2, 2 * reach_cols + blur + 2):
            block = H[rows, cols].toarray()
            opened = np.zeros_like(block)
            for footprint in footprints:
                np.maximum(opened, ndimage.grey_opening(block, footprint=footprint), out=opened)
            blurred = ndimage.gaussian_filter(opened, BLUR_SIGMA, mode="constant")
            # Sparse from here on: the band is a few % of a crop, and every track's
            # crops are held until the next pass reads them.
            crops.append(_Crop(rows, cols, scipy.sparse.csr_array(blurred), H.shape))
        enhanced.append(crops)
    peaks = [
        max((float(c.values.data.max(initial=0.0)) for c in crops), default=0.0)
        for crops in enhanced
    ]
    overall = max(peaks, default=0.0)
    factor = 10 ** (threshold_db / 10)
    for crops, peak in zip(enhanced, peaks, strict=True):
        threshold = max(peak, overall) * factor
        for crop in crops:
            E = crop.values
            E.data[threshold > E.data] = 0.0
            if threshold <= 0:
                E.data[...] = 0.0
            E.eliminate_zeros()
    return enhanced


def _resize_crops(
    crops: list[_Crop], old_hop: float, new_hop: float, n_rows: int, n_cols: int
) -> Iterator[_Crop]:
    """Bilinear resampling of an H_i's crops onto another hop's grid (n_rows × n_cols).

    Frame ``k`` of either grid is at ``k · hop`` seconds on both axes, so the new grid's
    frame ``k'`` reads the old grid at ``k' · new_hop / old_hop`` (clipped to the old
    grid's end). A crop's zero margins make the result on the new frames that read it
    equal to resampling the whole matrix; other new frames are 0. One dense crop at a
    time.
    """
    ratio = new_hop / old_hop
    for crop in crops:
        if crop.values.nnz:
            resized = _resize_crop(crop, ratio, n_rows, n_cols)
            if resized is not None:
                yield resized


def _resize_crop(crop: _Crop, ratio: float, n_rows: int, n_cols: int) -> _Crop | None:
    full_rows, full_cols = crop.shape
    y = np.minimum(np.arange(n_rows) * ratio, full_rows - 1)
    x = np.minimum(np.arange(n_cols) * ratio, full_cols - 1)
    chosen_rows = np.flatnonzero((y >= crop.rows.start) & (y <= crop.rows.stop - 1))
    chosen_cols = np.flatnonzero((x >= crop.cols.start) & (x <= crop.cols.stop - 1))
    if chosen_rows.size == 0 or chosen_cols.size == 0:
        return None
    grid = np.meshgrid(
        y[chosen_rows] - crop.rows.start, x[chosen_cols] - crop.cols.start, indexing="ij"
    )
    values = ndimage.map_coordinates(crop.values.toarray(), grid, order=1, mode="nearest")
    values[values < 0] = 0.0
    rows = slice(int(chosen_rows[0]), int(chosen_rows[-1]) + 1)
    cols = slice(int(chosen_cols[0]), int(chosen_cols[-1]) + 1)
    return _Crop(rows, cols, values, (n_rows, n_cols))


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
    total = state.raw_total_power if state is not None else np.zeros(n_frames)
    relative = np.zeros((n_tracks, n_frames))
    for i, matrix in enumerate(record.H):
        H = scipy.sparse.csc_array(matrix)
        H.sort_indices()
        rows = H.shape[0]
        if state is not None:
            share = state.raw_track_power[i]
            relative[i] = np.divide(share, total, out=np.zeros(n_frames), where=total > 0)
        power = np.asarray(H.sum(axis=0), dtype=np.float64).ravel()
        gain[i] = np.sqrt(np.maximum(power, 0.0))
        if rows == 0:
            continue
        best = np.asarray(H.argmax(axis=0)).ravel()
        index = np.arange(rows, dtype=np.float64)
        located = power > 0
        argmax[i, located] = best[located] * record.hop
        centre = np.divide(H.T @ index, power, out=np.zeros(n_frames), where=located)
        com[i, located] = centre[located] * record.hop
        local[i] = _local_centre(H, best, located) * record.hop
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


def _local_centre(
    H: scipy.sparse.csc_array, best: NDArray[np.intp], located: NDArray[np.bool_]
) -> NDArray[np.float64]:
    """Centre of mass (frames) of each column of H within ±LOCAL_HALF_WIDTH of ``best``.

    NaN where not ``located``. ``H`` is canonical CSC: its entries sorted by
    ``column · rows + row``, so every (row, column) is looked up by one search.
    """
    rows, n_cols = H.shape
    columns = np.flatnonzero(located)
    out = np.full(n_cols, np.nan)
    if columns.size == 0:
        return out
    keys = np.repeat(np.arange(n_cols, dtype=np.int64), np.diff(H.indptr)) * rows + H.indices
    moment = np.zeros(columns.size)
    weight = np.zeros(columns.size)
    for offset in range(-LOCAL_HALF_WIDTH, LOCAL_HALF_WIDTH + 1):
        row = best[columns].astype(np.int64) + offset
        inside = (row >= 0) & (row < rows)
        query = columns.astype(np.int64) * rows + row
        position = np.minimum(np.searchsorted(keys, query), keys.size - 1)
        found = inside & (keys[position] == query)
        values = np.where(found, H.data[position], 0.0)
        moment += values * row
        weight += values
    out[columns] = moment / weight
    return out
