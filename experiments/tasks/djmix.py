"""The ``djmix`` task: transcribe a DJ mix — each track's gain, time-warp and transitions.

The mix is generated from reference tracks with a known truth
(:func:`mnmf.djmix.synthetic.generate_mix`: crossfades, time scaling, loops, jumps, EQ,
effects, noise; the tracks of ``task.tracks``, by default ``../shared/data/djmix/tracks``,
or synthetic tracks with ``task.generator.synthetic_tracks=true``), or read from a folder
(``task.mix_folder``: ``mix.wav``, ``tracks/`` and, if present, ``truth.json``). Then
``task.method`` transcribes it:

- ``multipass``: multi-pass IS-NMF with the tracks as fixed dictionaries, then the
  sub-frame refinement (:func:`mnmf.djmix.decompose.decompose_mix`);
- ``multipass_nmf``: the same without the refinement;
- ``single_pass``: one NMF pass at the finest hop;
- ``dtw``: subsequence DTW on mel (or chroma) features, gains by least squares
  (:func:`mnmf.djmix.baselines.dtw_transcription`).

The run folder holds ``mix.wav``, ``truth.json`` (when known), ``estimate.csv`` (per
track and mix time: gain, gain in dB, position), ``metrics.json`` (the literature's
errors per track and their medians, :func:`mnmf.djmix.evaluation.evaluate_transcription`)
and figures: H of every pass (zeros in white), gain and warp estimated against the truth.
The objective is the median warp error in seconds (lower is better).

    mnmf-run experiment=djmix
    mnmf-run -m experiment=djmix_sweep      # effects × time scaling × methods × seeds
"""

from __future__ import annotations

import csv
import io
import logging
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from experiments.config import TaskConfig, choice, data_path
from experiments.tasks import Metrics, register_task
from mnmf.data.io import atomic_write, write_audio

log = logging.getLogger("mnmf-run")

METHODS = ("multipass", "multipass_nmf", "single_pass", "dtw")
OBJECTIVE_METRICS = ("warp_mae_s", "gain_error_db", "cue_point_error_s", "speed_ratio_error_pct")


@dataclass
class DJMixGeneratorConfig:
    """Settings of :func:`mnmf.djmix.synthetic.generate_mix` (and the tracks it uses)."""

    n_tracks: int = 3
    fs: int = 22050
    synthetic_tracks: bool = False  # true: generated tracks, no data needed
    track_seconds: float = 60.0  # length of each synthetic track
    play_seconds: list[float] = field(default_factory=lambda: [16.0, 20.0])
    crossfade_seconds: list[float] = field(default_factory=lambda: [4.0, 8.0])
    fade_shape: str = "linear"  # linear | equal-power | cut | random
    time_scaling: str = "none"  # none | resample | stretch | ramp
    max_speed_deviation: float = 0.08
    loops: bool = False
    jumps: bool = False
    eq: bool = False
    effect: str = "none"  # none | bass | compression | distortion
    snr_db: float | None = None


@dataclass
class DJMixTaskConfig(TaskConfig):
    """``task=djmix``: the mix, the method and its settings (see the module docstring)."""

    name: str = "djmix"
    tracks: str = "djmix/tracks"  # reference tracks (under data_root unless absolute)
    mix_folder: str | None = None  # mix.wav + tracks/ (+ truth.json) instead of generating
    generator: DJMixGeneratorConfig = field(default_factory=DJMixGeneratorConfig)
    method: str = "multipass"
    hops: list[float] = field(default_factory=lambda: [4.0, 2.0, 1.0, 0.5])
    overlap: int = 8
    n_mels: int = 128
    noise_components: int = 2
    max_speed_deviation: float = 0.1
    pitch_step: float = 0.02  # pitch scan grid (0: off), see mnmf.djmix.decompose_mix
    threshold_db: float = -40.0
    max_iter: int = 100
    dtw_features: str = "mel"
    objective: str = "warp_mae_s"


def validate(cfg: DictConfig) -> None:
    task = cfg.task
    choice(task.method, "task.method", METHODS)
    choice(task.objective, "task.objective", OBJECTIVE_METRICS)
    choice(task.dtw_features, "task.dtw_features", ("mel", "chroma"))
    if not task.hops or any(hop <= 0 for hop in task.hops):
        raise ValueError(f"task.hops must be positive seconds, got {list(task.hops)}")
    if list(task.hops) != sorted(task.hops, reverse=True):
        raise ValueError(f"task.hops must go from coarse to fine, got {list(task.hops)}")


def objective(metrics: Metrics, cfg: DictConfig) -> float:
    """Median over tracks of ``task.objective`` (an error: lower is better); NaN unscored."""
    return float((metrics.get("summary") or {}).get(cfg.task.objective, math.nan))


@register_task("djmix", schema=DJMixTaskConfig, objective=objective, validate=validate)
def run(cfg: DictConfig, out: Path) -> Metrics:
    """Generate or load the mix, transcribe it, score it, write curves and figures."""
    from mnmf.djmix.evaluation import evaluate_transcription

    rng = np.random.default_rng(np.random.SeedSequence(cfg.seed))
    mix, fs, tracks, truth = _load(cfg, rng)
    log.info(
        "djmix: %.1f s mix at %d Hz, %d reference track(s), truth %s",
        mix.shape[0] / fs, fs, len(tracks), "known" if truth is not None else "unknown",
    )  # fmt: skip
    estimates, passes, seconds = _transcribe(cfg, mix, fs, tracks, rng)
    log.info("method %s: %.1f s", cfg.task.method, seconds)
    metrics: Metrics = {
        "model": cfg.task.method,  # the report groups runs by model
        "method": cfg.task.method,
        "data": "folder" if cfg.task.mix_folder else "generated",
        "fs": fs,
        "duration": mix.shape[0] / fs,
        "n_tracks": len(tracks),
        "timings": {"transcribe": seconds},
        "tracks": {t.name: _jsonable(t.parameters()) for t in estimates},
    }
    files: dict[str, Any] = {"mixture": write_audio(out / "mix.wav", mix, fs, normalize=True).name}
    if truth is not None:
        files["truth"] = truth.write(out / "truth.json").name
        scores = evaluate_transcription(estimates, truth)
        metrics["per_track"] = _jsonable(scores.per_track)
        metrics["summary"] = _jsonable(scores.summary())
        log.info(
            "errors (median over tracks): %s",
            ", ".join(f"{k} {v:.4g}" for k, v in metrics["summary"].items() if _finite(v)),
        )
    files["estimate"] = _write_curves(out / "estimate.csv", estimates)
    if cfg.output.figures:
        from experiments.djmix_figures import djmix_figures

        files["figures"] = djmix_figures(out, estimates=estimates, truth=truth, passes=passes)
    metrics["files"] = files
    return metrics


def _load(cfg: DictConfig, rng: np.random.Generator):
    """(mix (samples,), fs, tracks, truth or None) from a folder or the generator."""
    from mnmf.djmix import synthetic

    task, generator = cfg.task, cfg.task.generator
    if task.mix_folder:
        mix, fs, tracks, truth = synthetic.load_mix_folder(data_path(cfg, task.mix_folder))
        return mix, fs, tracks, truth
    if generator.synthetic_tracks:
        tracks = synthetic.synthetic_tracks(
            generator.n_tracks, duration=generator.track_seconds, fs=generator.fs, rng=rng
        )
    else:
        tracks = synthetic.load_tracks(data_path(cfg, task.tracks), fs=generator.fs)
        if len(tracks) > generator.n_tracks:
            chosen = sorted(rng.choice(len(tracks), generator.n_tracks, replace=False))
            tracks = [tracks[i] for i in chosen]
    generated = synthetic.generate_mix(
        tracks,
        fs=generator.fs,
        rng=rng,
        play_seconds=tuple(generator.play_seconds),
        crossfade_seconds=tuple(generator.crossfade_seconds),
        fade_shape=generator.fade_shape,
        time_scaling=generator.time_scaling,
        max_speed_deviation=generator.max_speed_deviation,
        loops=generator.loops,
        jumps=generator.jumps,
        eq=generator.eq,
        effect=generator.effect,
        snr_db=generator.snr_db,
    )
    return generated.mix, generated.fs, generated.tracks, generated.truth


def _transcribe(cfg: DictConfig, mix, fs, tracks, rng):
    """(estimated timelines, pass records for the figures, seconds) of ``task.method``."""
    import time

    task = cfg.task
    started = time.perf_counter()
    if task.method == "dtw":
        from mnmf.djmix.baselines import dtw_transcription

        estimates = dtw_transcription(mix, tracks, fs, features=task.dtw_features)
        return estimates, [], time.perf_counter() - started
    from mnmf.djmix.decompose import decompose_mix

    hops = [task.hops[-1]] if task.method == "single_pass" else list(task.hops)
    result = decompose_mix(
        mix,
        tracks,
        fs,
        hops=tuple(hops),
        overlap=task.overlap,
        n_mels=task.n_mels,
        noise_components=task.noise_components,
        max_speed_deviation=task.max_speed_deviation,
        pitch_step=task.pitch_step,
        threshold_db=task.threshold_db,
        max_iter=task.max_iter,
        rng=rng,
        progress=sys.stderr.isatty(),
        refine=task.method == "multipass",
    )
    return list(result.tracks), list(result.passes), time.perf_counter() - started


def _write_curves(path: Path, estimates) -> str:
    """``estimate.csv``: track, time (s), gain, gain (dB), position (s); empty = NaN."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["track", "time", "gain", "gain_db", "position"])
    for timeline in estimates:
        gain_db = timeline.gain_db
        for n, time_s in enumerate(timeline.times):
            writer.writerow(
                [
                    timeline.name,
                    f"{time_s:.4f}",
                    f"{timeline.gain[n]:.6g}",
                    f"{gain_db[n]:.3f}" if np.isfinite(gain_db[n]) else "",
                    f"{timeline.position[n]:.4f}" if np.isfinite(timeline.position[n]) else "",
                ]
            )
    text = buffer.getvalue()
    atomic_write(path, lambda temporary: Path(temporary).write_text(text, encoding="utf-8"))
    return path.name


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _jsonable(value: Any) -> Any:
    """Numbers as floats (NaN kept: JSON NaN), tuples as lists, numpy scalars unwrapped."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
