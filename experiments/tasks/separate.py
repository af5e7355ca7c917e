"""The ``separate`` task: load or simulate a mixture, separate it, score it, keep the audio.

Settings: the ``data``, ``model``, ``stft`` and ``eval`` groups, and ``task.objective``,
the metric whose mean over sources is the run's objective (ΔSDR by default). The model
config names a method of :func:`mnmf.separate` and its options; ``_target_`` nodes in the
options (e.g. ``source_model: {_target_: mnmf.SmoothNMFSource, smoothness: 10}``) are
built by ``hydra.utils.instantiate``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig

import mnmf
from experiments.config import TaskConfig, choice, stft_settings
from experiments.data import DATA_KINDS, Recording, load_data
from experiments.fingerprint import code_part
from experiments.runfolder import read_json
from experiments.tasks import Metrics, register_task
from mnmf.data.io import write_audio, write_json
from mnmf.data.synthetic import SOURCE_KINDS as SYNTHETIC_KINDS
from mnmf.evaluation import BACKENDS as EVALUATION_BACKENDS
from mnmf.evaluation import METRICS as EVALUATION_METRICS
from mnmf.methods import METHODS, method_options
from mnmf.registry import check_options

log = logging.getLogger("mnmf-run")

OBJECTIVES = ("ΔSDR", "ΔSIR", "SDR", "SIR", "SAR", "ISR")


@dataclass
class SeparateTaskConfig(TaskConfig):
    """``task=separate``: ``objective`` is a metric of the evaluation (mean over sources)."""

    name: str = "separate"
    objective: str = "ΔSDR"


def validate(cfg: DictConfig) -> None:
    """Every choice and every method option checked before any audio is loaded."""
    data = cfg.data
    choice(data.kind, "data.kind", list(DATA_KINDS))
    DATA_KINDS.get(data.kind).validate(cfg)
    choice(cfg.model.method, "model.method", list(METHODS))
    choice(cfg.eval.mode, "eval.mode", list(EVALUATION_METRICS))
    choice(cfg.eval.backend, "eval.backend", list(EVALUATION_BACKENDS))
    choice(cfg.task.objective, "task.objective", OBJECTIVES)
    if cfg.task.objective == "ISR" and cfg.eval.mode != "images":
        raise ValueError("task.objective='ISR' needs eval.mode='images'")
    if data.kind == "synthetic":
        for kind in data.sources:
            choice(kind, "data.sources entry", SYNTHETIC_KINDS)
    for name in ("duration", "excerpt", "rt60", "mic_spacing"):
        if data[name] is not None and data[name] < 0:
            raise ValueError(f"data.{name} must be >= 0, got {data[name]}")
    stft_settings(cfg)
    options = model_options(cfg)
    check_options(
        options,
        method_options(cfg.model.method, options),
        owner=f"model.options of method {cfg.model.method!r}",
    )


def model_options(cfg: DictConfig) -> dict[str, Any]:
    """The method's options with every ``_target_`` node instantiated."""
    return instantiate(cfg.model.options, _convert_="all") or {}


def objective(metrics: Metrics, cfg: DictConfig) -> float:
    """Mean over sources of ``task.objective``; NaN when nothing was scored."""
    return float((metrics.get("summary") or {}).get(cfg.task.objective, math.nan))


@register_task("separate", schema=SeparateTaskConfig, objective=objective, validate=validate)
def run(cfg: DictConfig, out: Path) -> Metrics:
    """Separate the configured data with the configured method; scores, audio, figures."""
    data_rng, method_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(cfg.seed).spawn(2)
    )
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    loaded = load_data(cfg, data_rng)
    references = None if isinstance(loaded, Recording) else loaded.images
    mix, fs = loaded.mix, loaded.fs
    timings["load"] = time.perf_counter() - t0
    n_sources = (
        cfg.model.n_sources
        or (None if references is None else references.shape[0])
        or cfg.data.n_sources
    )
    if n_sources is None:
        raise ValueError(
            "data without references needs the number of sources: set data.n_sources "
            "(or model.n_sources)"
        )
    # Only oracle methods and the SDR tracker look at the references; they must be one
    # per estimated source.
    matching = references is not None and references.shape[0] == n_sources
    if references is not None and cfg.eval.enabled and not matching:
        raise ValueError(
            f"model.n_sources={n_sources} but the data have {references.shape[0]} sources: "
            "scoring needs one estimate per source (eval.enabled=false separates unscored)"
        )
    log.info(
        "data: %s (%s), %d Hz, %d channel(s), %.2f s, %s",
        cfg.data.name, cfg.data.kind, fs, mix.shape[1], mix.shape[0] / fs,
        "no references" if references is None else f"{references.shape[0]} reference images",
    )  # fmt: skip
    stft = stft_settings(cfg)
    method = cfg.model.method
    options = model_options(cfg)
    accepted = method_options(method, options)
    track: list[dict[str, float]] = []
    if "progress" in accepted:
        options.setdefault("progress", sys.stderr.isatty())
    if "callbacks" in accepted and cfg.eval.track_every > 0 and matching:
        tracker = _sdr_tracker(cfg, stft, references, track)
        options["callbacks"] = [*options.get("callbacks", ()), tracker]

    t0 = time.perf_counter()
    separation = mnmf.separate_with_fit(
        mix,
        n_sources=n_sources,
        method=method,
        stft=stft,
        fs=fs,
        rng=method_rng,
        references=references if matching else None,
        **options,
    )
    timings["separate"] = time.perf_counter() - t0
    estimates, fit = separation.images, separation.fit
    fitted = (
        f": {fit.n_iter} iterations, {'converged' if fit.converged else 'not converged'}, "
        f"final cost {np.asarray(fit.cost)[-1]:.6g}"
        if fit is not None and len(fit.cost)
        else ""
    )
    log.info(
        "method %s (model %s), %d source(s), STFT %d/%d: %.2f s%s",
        method, cfg.model.name, n_sources, stft.n_fft, stft.hop, timings["separate"], fitted,
    )  # fmt: skip

    metrics: Metrics = {
        "model": cfg.model.name,
        "method": method,
        "data": cfg.data.name,
        "fs": fs,
        "n_sources": n_sources,
        "n_mics": mix.shape[1],
        "duration": mix.shape[0] / fs,
    }
    order = np.arange(n_sources)
    if matching and cfg.eval.enabled:
        t0 = time.perf_counter()
        evaluation = mnmf.evaluate(
            estimates,
            references,
            mixture=mix,
            mode=cfg.eval.mode,
            backend=cfg.eval.backend,
            mixture_scores=_mixture_scores(cfg, out, references, mix),
        )
        timings["evaluate"] = time.perf_counter() - t0
        order = evaluation.permutation
        log.info(
            "evaluate (%s): %.2f s, %s",
            cfg.eval.mode, timings["evaluate"],
            ", ".join(f"{key} {value:.2f}" for key, value in evaluation.summary().items()),
        )  # fmt: skip
        metrics |= {
            "scores": {k: v.tolist() for k, v in evaluation.scores.items()},
            "mixture_scores": {k: v.tolist() for k, v in evaluation.mixture_scores.items()},
            "improvements": {k: v.tolist() for k, v in evaluation.improvements.items()},
            "summary": evaluation.summary(),
        }
    reconstruction = _reconstruction(mix, X=separation.X, fit=fit, stft=stft)
    if reconstruction is not None:
        metrics["reconstruction"] = reconstruction
        metrics["components"] = _component_descriptors(separation.X, fit=fit, fs=fs, stft=stft)
    edges = getattr(loaded, "meta", {}).get("edges")
    if edges is not None and matching:
        metrics["gate_edges"] = _gate_edge_errors(
            mix, estimates[order], references, X=separation.X, fit=fit, edges=edges, fs=fs,
            stft=stft,
        )  # fmt: skip
        log.info(
            "gate edges: error near them %s times elsewhere (per source); model error %.4g",
            ", ".join(f"{r:.2f}" for r in metrics["gate_edges"]["ratio"]),
            metrics["gate_edges"].get("model_error", math.nan),
        )
    if fit is not None:
        metrics["fit"] = {
            "n_iter": fit.n_iter,
            "converged": fit.converged,
            "seconds": fit.seconds,
            "cost": np.asarray(fit.cost).tolist(),
            "cost_iterations": np.asarray(fit.cost_iterations).tolist(),
            "cost_seconds": np.asarray(fit.cost_seconds).tolist(),
        }
    if track:
        metrics["sdr_track"] = track
    metrics["timings"] = timings

    files: dict[str, Any] = {}
    if cfg.output.audio:
        files |= _write_audio(out, mix, fs, estimates, references, order)
    if cfg.output.figures:
        from experiments import figures

        files["figures"] = figures.run_figures(
            out, X=separation.X, estimates=estimates[order], fs=fs, stft=stft, fit=fit, track=track
        )
        if "gate_edges" in metrics:
            files["figures"].append(
                figures.save_figure(
                    figures.gate_edges(
                        estimates[order], references, edges=edges, fs=fs,
                        half_width=metrics["gate_edges"]["half_width_s"],
                    ),
                    out / "gate_edges.png",
                )
            )  # fmt: skip
    metrics["files"] = files
    return metrics


def _gate_edge_errors(
    mix: np.ndarray,
    estimates: np.ndarray,
    references: np.ndarray,
    *,
    X: np.ndarray,
    fit: Any,
    edges: list[float],
    fs: int,
    stft: mnmf.Stft,
) -> dict[str, Any]:
    """The seed slides' sine study: errors near the gates' edges and elsewhere.

    ``near`` / ``elsewhere`` / ``ratio``: mean |x̂_j − x_j| of each (Wiener) estimate
    within half an STFT window of an edge, elsewhere, and their ratio. Where the fit has
    an NMF (``W``, ``H``) of one channel, also the slides' measure
    ``model_error = mean |y − Σ_k x̂_k|`` with ``x̂_k`` component k's model amplitude
    ``√(W_k H_k)`` under the mixture's phase (the Wiener estimates sum to the mixture
    exactly, so the slides' reconstruction is the model's), and its split near the
    edges and elsewhere.
    """
    half_width = 0.5 * stft.n_fft / fs
    split = mnmf.errors_near_times(estimates, references, times=edges, fs=fs, half_width=half_width)
    result: dict[str, Any] = {"half_width_s": half_width, "n_edges": len(edges)}
    result |= {key: np.asarray(value).tolist() for key, value in split.items()}
    factors = _nmf_factors(fit, X)
    if factors is not None:
        W, H, phase = factors
        # Σ_k ISTFT(√(W_k H_k) e^{j∠X}) is one ISTFT (linear) of Σ_k √(W_fk H_kn) = √W @ √H.
        model = stft.synthesize((np.sqrt(W) @ np.sqrt(H)) * phase, length=mix.shape[0])
        observed = mix[:, 0]
        model_split = mnmf.errors_near_times(
            model[None], observed[None], times=edges, fs=fs, half_width=half_width
        )
        result |= {
            "model_error": float(np.mean(np.abs(observed - model))),
            "model_error_near": float(model_split["near"][0]),
            "model_error_elsewhere": float(model_split["elsewhere"][0]),
        }
    return result


def _nmf_factors(fit: Any, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(W, H, phase)`` of a one-channel NMF fit on the STFT's own rows (``phase`` the
    mixture's, e^{j∠X}); None for other fits (multichannel, bands, no factors)."""
    W, H = getattr(fit, "W", None), getattr(fit, "H", None)
    if W is None or H is None or X.shape[-1] != 1 or W.shape[0] != X.shape[0]:
        return None
    return np.asarray(W), np.asarray(H), np.exp(1j * np.angle(X[:, :, 0]))


def _reconstruction(mix: np.ndarray, *, X: np.ndarray, fit: Any, stft: mnmf.Stft) -> dict | None:
    """How well a one-channel NMF reconstructs the mixture (the seed slides' rank study).

    ``rank``: K; ``is_divergence_per_bin``: D_IS(|X|² | WH) / (F N);
    ``snr_db``: 10 log10(‖y‖² / ‖y − ŷ‖²) and ``correlation``: ⟨y, ŷ⟩ / (‖y‖ ‖ŷ‖) (the
    slides' ⟨signal, signal estimé⟩, normalized) of the mixture ``y`` against
    ``ŷ = ISTFT(√(WH) · e^{j∠X})``, the model's amplitude under the mixture's phase.
    None when the fit is not a one-channel NMF on STFT rows.
    """
    factors = _nmf_factors(fit, X)
    if factors is None:
        return None
    W, H, phase = factors
    model_power = W @ H
    power = np.abs(X[:, :, 0]) ** 2
    observed = mix[:, 0]
    rebuilt = stft.synthesize(np.sqrt(model_power) * phase, length=mix.shape[0])
    residual = float(np.sum((observed - rebuilt) ** 2))
    energy = float(np.sum(observed**2))
    norms = float(np.linalg.norm(observed) * np.linalg.norm(rebuilt))
    return {
        "rank": int(W.shape[1]),
        "is_divergence_per_bin": mnmf.divergence.beta_divergence(power, model_power, 0.0)
        / power.size,
        "snr_db": 10 * math.log10(energy / residual) if residual > 0 and energy > 0 else math.inf,
        "correlation": float(observed @ rebuilt) / norms if norms > 0 else math.nan,
    }


def _component_descriptors(X: np.ndarray, *, fit: Any, fs: int, stft: mnmf.Stft) -> dict:
    """What each template of a one-channel NMF holds (:func:`mnmf.template_features`):
    lists over the K components of ``f0_hz``, ``harmonicity``, ``centroid_hz`` and
    ``flatness``, and ``pitched`` (harmonicity ≥ 0.5: white-noise templates score ≈ 0)."""
    W = _nmf_factors(fit, X)[0]
    features = mnmf.template_features(W, stft.frequencies(fs))
    return {
        "f0_hz": features.f0.tolist(),
        "harmonicity": features.harmonicity.tolist(),
        "centroid_hz": features.centroid.tolist(),
        "flatness": features.flatness.tolist(),
        "pitched": features.pitched().tolist(),
    }


def _mixture_scores(
    cfg: DictConfig, out: Path, references: np.ndarray, mix: np.ndarray
) -> dict[str, np.ndarray] | None:
    """The mixture's own BSS Eval scores, computed once per mixture and setting.

    Kept in ``<parent of the run folder>/.cache/mixture_scores/<key>.json`` — the sweep
    folder in a sweep —, keyed by a SHA-256 of the signals themselves (shapes, dtypes,
    bytes), the evaluation settings and the code's fingerprint: every method and
    every relaunch scored on the same mixture reuses them, and a different mixture,
    setting or code never does. None (computed by :func:`mnmf.evaluate` itself) when
    ``eval.cache_mixture_scores`` is off.
    """
    if not cfg.eval.cache_mixture_scores:
        return None
    settings = {"mode": cfg.eval.mode, "backend": cfg.eval.backend, "code": code_part()}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for signal in (references, mix):
        contiguous = np.ascontiguousarray(signal)
        digest.update(f"{contiguous.shape}{contiguous.dtype}".encode())
        digest.update(contiguous.tobytes())
    path = out.parent / ".cache" / "mixture_scores" / f"{digest.hexdigest()}.json"
    cached = read_json(path)
    if cached is not None and set(cached) == set(EVALUATION_METRICS[cfg.eval.mode]):
        log.info("mixture scores: cached (%s)", path.name[:12])
        return {metric: np.asarray(values, dtype=np.float64) for metric, values in cached.items()}
    scores = mnmf.evaluation.score_mixture(
        references, mix, mode=cfg.eval.mode, backend=cfg.eval.backend
    )
    write_json(path, {metric: values.tolist() for metric, values in scores.items()})
    return scores


def _write_audio(out, mix, fs, estimates, references, order) -> dict[str, Any]:
    """Mixture, references and estimates (matched to the references), one common scale."""
    peak = max(float(np.max(np.abs(mix))), float(np.max(np.abs(estimates))), 1e-12) / 0.99
    files: dict[str, Any] = {"mixture": write_audio(out / "mixture.wav", mix / peak, fs).name}
    files["estimates"] = [
        write_audio(out / f"estimate_{j + 1}.wav", estimates[order[j]] / peak, fs).name
        for j in range(len(order))
    ]
    if references is not None:
        files["references"] = [
            write_audio(out / f"reference_{j + 1}.wav", references[j] / peak, fs).name
            for j in range(references.shape[0])
        ]
    return files


def _sdr_tracker(cfg: DictConfig, stft: mnmf.Stft, references: np.ndarray, track: list):
    """A callback scoring the model's current images every ``eval.track_every`` iterations.

    It uses the model's own ``images()`` (every spatial model has one); models without
    images (single-channel NMF, whose sources are grouped after the fit) are not tracked.
    """
    length = references.shape[1]

    def callback(info) -> None:
        images = getattr(info.model, "images", None)
        if info.iteration % cfg.eval.track_every or images is None:
            return
        estimates = np.stack([stft.synthesize(S, length=length) for S in images()])
        scores = mnmf.evaluate(estimates, references, mode=cfg.eval.mode, backend=cfg.eval.backend)
        track.append({"iteration": info.iteration, "SDR": scores.mean("SDR")})

    return callback
