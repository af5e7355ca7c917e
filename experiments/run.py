"""One experiment run: load or simulate a mixture → separate → evaluate → run folder.

Hydra entry point (``mnmf-run`` or ``python -m experiments.run``)::

    mnmf-run experiment=mnmf_speech
    mnmf-run -m model=mnmf_mu,mnmf_em,auxiva data.rt60=0.15,0.3,0.5 seed=0,1,2 \\
        hydra/launcher=joblib

The run folder holds ``config.yaml`` (resolved), the wavs (mixture, references,
estimates matched to the references), figures, and last ``metrics.json`` (scores,
mixture scores, improvements, timings, cost history, versions, seed). Every file is
written atomically and ``metrics.json`` last, so a folder with a complete
``metrics.json`` is a finished run: a re-launched sweep skips it. A run that raises
writes ``failed.json`` (error and traceback) instead and returns NaN, so a sweep goes
on. The return value — mean ΔSDR — is the objective Hydra sweepers optimize.

Only this layer imports Hydra; :mod:`mnmf` never does.
"""

from __future__ import annotations

import math
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

import mnmf
from experiments.config import data_path, register, validate
from experiments.runfolder import FAILED, METRICS, completed_metrics
from mnmf.io import atomic_write, load_audio, write_audio, write_json
from mnmf.multichannel import MNMFResult

register()

#: conf/ of the repository, absolute: the console script ``mnmf-run`` has no calling file
#: that Hydra could resolve a relative path against.
CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")


# ---------------------------------------------------------------------- data
def load_data(cfg: DictConfig, rng: np.random.Generator) -> mnmf.Mixture | tuple[np.ndarray, int]:
    """The configured mixture; for ``data.kind=file`` the (samples, I) signal and fs only."""
    data = cfg.data
    if data.kind == "folder":
        return mnmf.load_mixture(data_path(cfg, data.path), fs=data.fs)
    if data.kind == "file":
        signal, fs = load_audio(data_path(cfg, data.path), fs=data.fs, mono=data.mono)
        signal = signal if signal.ndim == 2 else signal[:, None]
        if data.duration > 0:
            signal = signal[: round(data.duration * fs)]
        return signal, fs
    if data.kind == "sine":
        references = mnmf.synthetic.gated_sines(fs=data.fs)
        if data.snr is not None:
            level = np.sqrt(np.mean(references**2)) * 10 ** (-data.snr / 20)
            references = references + level * rng.standard_normal(references.shape)
        images = references[:, :, None]
        return mnmf.Mixture(
            mix=images.sum(axis=0), images=images, fs=data.fs, meta={"kind": "sine"}
        )
    if data.kind == "synthetic":
        signals = list(
            mnmf.synthetic.synthetic_sources(
                list(data.sources), fs=data.fs, duration=data.duration, rng=rng
            )
        )
    else:  # room, mix: dry sources drawn from a folder of kinds
        pool = mnmf.SourcePool(data_path(cfg, data.source_dir), fs=data.fs)
        signals, _ = pool.draw_many(list(data.sources), rng, duration=data.duration)
    if data.kind == "mix":
        if data.n_mics == 1:
            images = np.stack(signals)[:, :, None]
            return mnmf.Mixture(
                mix=images.sum(axis=0), images=images, fs=data.fs, meta={"kind": "mix"}
            )
        return mnmf.instantaneous_mix(signals, data.fs, n_mics=data.n_mics, rng=rng)
    return mnmf.simulate_room(
        signals,
        data.fs,
        rt60=data.rt60,
        mic_spacing=data.mic_spacing,
        n_mics=data.n_mics,
        snr_db=data.snr,
        rng=rng,
    )


# ---------------------------------------------------------------------- run
def run_experiment(cfg: DictConfig, out: Path, *, overrides: list[str] | None = None) -> float:
    """Run one configured experiment into ``out``; return mean ΔSDR (NaN if none/failed)."""
    out.mkdir(parents=True, exist_ok=True)
    done = completed_metrics(out)
    if done is not None:
        print(f"[mnmf-run] skip {out} (complete)", flush=True)
        return float(done.get("objective", math.nan))
    (out / FAILED).unlink(missing_ok=True)
    started = time.perf_counter()
    try:
        validate(cfg)
        task = _smooth_study if cfg.task == "smooth_study" else _separate
        metrics = task(cfg, out)
    except Exception as error:  # recorded, not raised: the other runs of a sweep go on
        write_json(
            out / FAILED,
            {
                "status": "failed",
                "error": f"{type(error).__name__}: {error}",
                "traceback": traceback.format_exc(),
                "overrides": overrides or [],
            },
        )
        print(f"[mnmf-run] FAILED {out}: {type(error).__name__}: {error}", flush=True)
        return math.nan
    metrics |= {
        "status": "complete",
        "name": cfg.name,
        "task": cfg.task,
        "seed": cfg.seed,
        "overrides": overrides or [],
        "params": _flat(OmegaConf.to_container(cfg, resolve=True)),
        "versions": _versions(),
    }
    metrics.setdefault("timings", {})["total"] = time.perf_counter() - started
    text = OmegaConf.to_yaml(cfg, resolve=True)
    atomic_write(out / "config.yaml", lambda temporary: Path(temporary).write_text(text))
    write_json(out / METRICS, metrics)  # last: its presence marks the run complete
    objective = metrics.get("objective", math.nan)
    scored = f"mean ΔSDR {objective:.2f} dB" if math.isfinite(objective) else "nothing scored"
    print(f"[mnmf-run] done {out}: {scored} in {metrics['timings']['total']:.1f} s", flush=True)
    return float(objective)


def _separate(cfg: DictConfig, out: Path) -> dict[str, Any]:
    data_rng, method_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(cfg.seed).spawn(2)
    )
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    loaded = load_data(cfg, data_rng)
    if isinstance(loaded, mnmf.Mixture):
        mix, fs, references = loaded.mix, loaded.fs, loaded.images
    else:
        (mix, fs), references = loaded, None
    timings["load"] = time.perf_counter() - t0
    n_sources = cfg.model.n_sources or (None if references is None else references.shape[0])
    if n_sources is None:
        raise ValueError("data without references needs model.n_sources")
    n_fft, hop = cfg.stft.n_fft, cfg.stft.hop
    options = OmegaConf.to_container(cfg.model.options, resolve=True)
    method = cfg.model.method
    X = mnmf.stft(mix, n_fft=n_fft, hop=hop)
    track: list[dict[str, float]] = []
    if method in ("nmf", "mnmf-mu", "mnmf-em"):
        options.setdefault("progress", sys.stderr.isatty())
        if cfg.eval.track_every > 0 and references is not None and method != "nmf":
            options["callbacks"] = [_sdr_tracker(cfg, X, mix, references, track)]

    t0 = time.perf_counter()
    estimates, fit = mnmf.separate(
        mix,
        n_sources=n_sources,
        method=method,
        fs=fs,
        rng=method_rng,
        references=references if method == "oracle-irm" else None,
        n_fft=n_fft,
        hop=hop,
        return_fit=True,
        **options,
    )
    timings["separate"] = time.perf_counter() - t0

    metrics: dict[str, Any] = {
        "model": cfg.model.name,
        "method": method,
        "data": cfg.data.name,
        "fs": fs,
        "n_sources": n_sources,
        "n_mics": mix.shape[1],
        "duration": mix.shape[0] / fs,
    }
    order = np.arange(n_sources)
    if references is not None and cfg.eval.enabled:
        t0 = time.perf_counter()
        evaluation = mnmf.evaluate(estimates, references, mixture=mix, mode=cfg.eval.mode)
        timings["evaluate"] = time.perf_counter() - t0
        order = evaluation.permutation
        metrics |= {
            "scores": {k: v.tolist() for k, v in evaluation.scores.items()},
            "mixture_scores": {k: v.tolist() for k, v in evaluation.mixture_scores.items()},
            "improvements": {k: v.tolist() for k, v in evaluation.improvements.items()},
            "summary": evaluation.summary(),
            "objective": evaluation.mean("ΔSDR"),
        }
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
            out, X=X, estimates=estimates, fs=fs, n_fft=n_fft, hop=hop, fit=fit, track=track
        )
    metrics["files"] = files
    return metrics


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


def _sdr_tracker(cfg, X, mix, references, track):
    """A callback scoring the current parameters every ``eval.track_every`` iterations."""

    def callback(info) -> None:
        if info.iteration % cfg.eval.track_every:
            return
        empty = np.zeros(0)
        current = MNMFResult(
            params=info.model.parameters(),
            cost=empty,
            cost_iterations=empty.astype(np.int64),
            cost_seconds=empty,
            n_iter=info.iteration,
            converged=False,
            seconds=0.0,
        )
        images = current.images(X, n_fft=cfg.stft.n_fft, hop=cfg.stft.hop, length=mix.shape[0])
        scores = mnmf.evaluate(images, references, mode=cfg.eval.mode)
        track.append({"iteration": info.iteration, "SDR": scores.mean("SDR")})

    return callback


def _smooth_study(cfg: DictConfig, out: Path) -> dict[str, Any]:
    from experiments import smooth_study

    study = cfg.study
    arguments = [
        "--audio", str(data_path(cfg, study.audio)), "--out", str(out),
        "--seconds", str(study.seconds), "--fs", str(study.fs), "--n-fft", str(study.n_fft),
        "--components", str(study.components), "--iterations", str(study.iterations),
        "--study-lambda", str(study.study_lambda), "--seed", str(cfg.seed),
        "--lambdas", *[str(lam) for lam in study.lambdas],
    ]  # fmt: skip
    t0 = time.perf_counter()
    results = smooth_study.main(arguments, metrics_name="study.json")
    figures = sorted(p.name for p in out.glob("*.png"))
    return {
        "model": "smooth_study",
        "data": Path(study.audio).name,
        "study": results,
        "timings": {"study": time.perf_counter() - t0},
        "files": {"figures": figures, "audio": sorted(p.name for p in out.glob("*.wav"))},
    }


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{"data": {"rt60": 0.3}} → {"data.rt60": 0.3}; lists are kept as values."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat |= (
            _flat(value, f"{prefix}{key}.")
            if isinstance(value, dict)
            else {f"{prefix}{key}": value}
        )
    return flat


def _versions() -> dict[str, str]:
    import mir_eval
    import pyroomacoustics
    import scipy

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pyroomacoustics": pyroomacoustics.__version__,
        "mir_eval": mir_eval.__version__,
        "hydra": hydra.__version__,
        "mnmf": mnmf.__version__,
    }


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def main(cfg: DictConfig) -> float:
    runtime = HydraConfig.get()
    return run_experiment(
        cfg, Path(runtime.runtime.output_dir), overrides=list(runtime.overrides.task)
    )


if __name__ == "__main__":
    main()
