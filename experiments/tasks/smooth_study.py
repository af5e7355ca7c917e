"""The seed talk's study of smooth IS-NMF (Févotte 2011) on a real music recording.

On a solo-piano excerpt (../shared/data/piano/ragtime_piano_30s.wav by default) it
writes to ``--out``:

(a) ``cost_mm_vs_em.png``: the penalized cost D_IS(V | WH) + λ Σ d_IS(h_{n−1} | h_n)
    against iterations and against seconds, for the MM algorithm (multiplicative
    updates) and the EM (SAGE) algorithm of the same model, from the same start;
(b) ``activations.png`` (rows of H for every λ in ``--lambdas``) and
    ``smoothness.png`` (median jump d_IS(h_{n−1} | h_n) and data fit against λ);
(c) ``masks.png``: the Wiener masks of three components picked by kind (lowest spectral
    centroid = ``bass``, most harmonic = ``pitched``, flattest spectrum = ``noise``:
    :func:`pick_by_kind`), their audio ``component_<kind>.wav`` and ``remix.wav``, the
    mixture with those components' levels changed by ``remix_gains_db`` (bass +6 dB,
    noise −12 dB by default);
(d) ``upmix.wav``: a stereo remix with the components panned from left to right by
    spectral centroid (low notes left, high notes right, as seen from the keyboard);

plus ``mixture.wav``. Every file is written atomically.

It is the ``smooth_study`` task of the Hydra layer (``mnmf-run experiment=smooth_study``,
settings :class:`SmoothStudyTaskConfig` under ``task``; the run's metrics hold the
final costs and seconds per iteration, its objective is the MM fit's final penalized
cost), and a script of its own:
``python -m experiments.smooth_study [--out outputs/smooth_study] [--seconds 15]``.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator
from omegaconf import DictConfig, OmegaConf

import mnmf
from experiments.config import DEFAULT_DATA_ROOT, TaskConfig, data_path, stft_settings
from experiments.figures import save_figure
from experiments.tasks import Metrics, register_task
from mnmf.data.io import load_audio, write_audio, write_json
from mnmf.separation import separate_components, wiener_masks
from mnmf.sources import smoothness_terms


def plot_costs(fits: dict[str, mnmf.NMFResult], lam: float) -> plt.Figure:
    figure, (by_iteration, by_time) = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for name, fit in fits.items():
        by_iteration.loglog(np.asarray(fit.cost_iterations) + 1, fit.cost, label=name)
        by_time.loglog(np.asarray(fit.cost_seconds) + 1e-3, fit.cost, label=name)
    by_iteration.set(xlabel="iteration + 1", ylabel="penalized cost")
    by_time.set(xlabel="seconds + 0.001")
    for axis in (by_iteration, by_time):
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    figure.suptitle(f"Smooth IS-NMF, λ = {lam:g}: MM (multiplicative) vs EM (SAGE), same start")
    figure.tight_layout()
    return figure


def plot_activations(fits: dict[float, mnmf.NMFResult], seconds_per_frame: float) -> plt.Figure:
    """H of every λ in dB (each row relative to its peak), rows ordered by the spectral
    centroid of their template: low-pitched components at the bottom."""
    figure, axes = plt.subplots(len(fits), 1, figsize=(10, 1.9 * len(fits)), sharex=True)
    axes = np.atleast_1d(axes)
    for axis, (lam, fit) in zip(axes, fits.items(), strict=True):
        H, W = fit.H, fit.W
        order = np.argsort((np.arange(W.shape[0]) @ W) / W.sum(axis=0))
        peak = np.maximum(H.max(axis=1, keepdims=True), np.finfo(float).tiny)
        decibels = 10 * np.log10(np.maximum(H / peak, 1e-12))
        image = axis.imshow(
            decibels[order],
            origin="lower",
            aspect="auto",
            vmin=-50,
            vmax=0,
            cmap="viridis",
            interpolation="nearest",
            extent=(0, H.shape[1] * seconds_per_frame, -0.5, H.shape[0] - 0.5),
        )
        axis.set_ylabel(f"λ = {lam:g}\ncomponent")
        axis.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes[-1].set_xlabel("time (s)")
    figure.colorbar(image, ax=axes, label="h (dB re row peak)", fraction=0.03)
    figure.suptitle("Activations H for each smoothness λ")
    return figure


def plot_smoothness(summary: list[dict]) -> plt.Figure:
    lams = np.array([row["smoothness"] for row in summary])
    x = np.where(lams > 0, lams, np.min(lams[lams > 0]) / 10 if np.any(lams > 0) else 1.0)
    figure, (jumps, fit) = plt.subplots(1, 2, figsize=(10, 3.5))
    jumps.loglog(x, [row["median_jump"] for row in summary], "o-")
    jumps.set(xlabel="λ (λ = 0 drawn at the left)", ylabel="median d_IS(h[n-1] | h[n])")
    fit.semilogx(x, [row["data_fit"] for row in summary], "o-")
    fit.set(xlabel="λ", ylabel="D_IS(V | WH)")
    for axis in (jumps, fit):
        axis.grid(True, which="both", alpha=0.3)
    figure.suptitle("Smoothness of the activations against fit to the data")
    figure.tight_layout()
    return figure


def plot_masks(masks: np.ndarray, chosen: dict[str, int], fs: int, duration: float) -> plt.Figure:
    """The Wiener masks of the components picked by kind (``{kind: k}``)."""
    figure, axes = plt.subplots(1, len(chosen), figsize=(3 * len(chosen), 3.2), sharey=True)
    for axis, (kind, k) in zip(np.atleast_1d(axes), chosen.items(), strict=True):
        axis.imshow(
            masks[k],
            origin="lower",
            aspect="auto",
            vmin=0,
            vmax=1,
            cmap="magma",
            extent=(0, duration, 0, fs / 2000),
        )
        axis.set(title=f"{kind} (component {k})", xlabel="time (s)")
        axis.locator_params(axis="x", nbins=4)
    np.atleast_1d(axes)[0].set_ylabel("frequency (kHz)")
    figure.suptitle("Wiener masks w_k h_k / WH")
    figure.tight_layout()
    return figure


#: The component kinds the masks figure shows, in the order they are picked.
KINDS = ("bass", "pitched", "noise")


def pick_by_kind(features: mnmf.templates.TemplateFeatures) -> dict[str, int]:
    """One distinct component per kind: ``bass`` the lowest centroid, ``pitched`` the most
    harmonic, ``noise`` the flattest (each among those not picked yet; the descriptors
    of :func:`mnmf.templates.template_features`)."""
    left = list(range(features.centroid.size))
    chosen: dict[str, int] = {}
    for kind, score in (
        ("bass", -features.centroid),
        ("pitched", features.harmonicity),
        ("noise", features.flatness),
    ):
        if not left:
            break
        k = max(left, key=lambda index: score[index])
        chosen[kind] = int(k)
        left.remove(k)
    return chosen


def upmix(components: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Constant-power panning of components (K, samples), low centroid left → high right."""
    frequencies = np.arange(W.shape[0])
    centroid = (frequencies @ W) / np.maximum(W.sum(axis=0), np.finfo(float).tiny)
    position = np.empty(W.shape[1])
    position[np.argsort(centroid)] = np.linspace(0.0, 1.0, W.shape[1])
    angle = position * np.pi / 2
    left = np.cos(angle) @ components
    right = np.sin(angle) @ components
    return np.stack([left, right], axis=1)


@dataclass
class SmoothStudyTaskConfig(TaskConfig):
    """``task=smooth_study``: what to study and how long (relative ``audio`` paths are
    under ``data_root``; the STFT is the run's ``stft`` group)."""

    name: str = "smooth_study"
    audio: str = "piano/ragtime_piano_30s.wav"
    seconds: float = 15.0
    fs: int = 22050
    components: int = 10
    iterations: int = 200
    lambdas: list[float] = field(default_factory=lambda: [0.0, 1.0, 10.0, 100.0])
    study_lambda: float = 10.0
    remix_gains_db: dict[str, float] = field(
        default_factory=lambda: {"bass": 6.0, "pitched": 0.0, "noise": -12.0}
    )


def study(
    settings: SmoothStudyTaskConfig, audio: Path, out: Path, *, stft: mnmf.Stft, seed: int
) -> Metrics:
    """Run the study on ``audio`` into ``out``; return its metrics (settings, costs, times)."""
    if not audio.is_file():
        raise ValueError(f"audio file not found: {audio}")
    hop = stft.hop

    signal, fs = load_audio(audio, fs=settings.fs, mono=True)
    signal = signal[: int(settings.seconds * fs)]
    X = stft.analyze(signal)
    V = np.abs(X) ** 2
    print(f"{audio.name}: {signal.size / fs:.1f} s at {fs} Hz, STFT {V.shape} (F, N)")
    # One start for every fit: the comparison is of algorithms and λ, not of inits.
    start = mnmf.fit_nmf(V, settings.components, max_iter=0, rng=seed)
    common = {"W": start.W, "H": start.H, "tol": 0.0, "source_model": "smooth", "stft": stft}

    # (a) MM against EM on the same penalized cost.
    fits = {}
    for name, algorithm in (("MM (multiplicative)", "mu"), ("EM (SAGE)", "em")):
        fits[name] = mnmf.fit_nmf(
            V,
            settings.components,
            algorithm=algorithm,
            smoothness=settings.study_lambda,
            max_iter=settings.iterations,
            check_every=1,
            progress=True,
            **common,
        )
        fit = fits[name]
        print(
            f"  {name:<20} cost {fit.cost[-1]:.6g} after {fit.n_iter} iterations, "
            f"{1e3 * fit.seconds / max(fit.n_iter, 1):.1f} ms/iteration"
        )
    save_figure(plot_costs(fits, settings.study_lambda), out / "cost_mm_vs_em.png")

    # (b) λ against smoothness and fit.
    by_lambda, summary = {}, []
    for lam in settings.lambdas:
        fit = mnmf.fit_nmf(
            V, settings.components, smoothness=lam, max_iter=settings.iterations, **common
        )
        by_lambda[lam] = fit
        data_fit = float(mnmf.beta_divergence(V, fit.W @ fit.H, 0.0))
        summary.append(
            {
                "smoothness": lam,
                "median_jump": float(np.median(smoothness_terms(fit.H))),
                "data_fit": data_fit,
                "cost": float(fit.cost[-1]),
            }
        )
        print(f"  λ = {lam:<6g} median jump {summary[-1]['median_jump']:.4g}, D_IS {data_fit:.6g}")
    save_figure(plot_activations(by_lambda, hop / fs), out / "activations.png")
    save_figure(plot_smoothness(summary), out / "smoothness.png")

    # (c) masks and audio of a bass, a pitched and a noise component, their remix;
    # (d) the stereo upmix.
    chosen = by_lambda.get(settings.study_lambda, fits["MM (multiplicative)"])
    masks = wiener_masks(chosen.W, chosen.H)
    features = mnmf.templates.template_features(chosen.W, stft.frequencies(fs))
    kinds = pick_by_kind(features)
    save_figure(plot_masks(masks, kinds, fs, signal.size / fs), out / "masks.png")
    components = separate_components(X, chosen.W, chosen.H, stft=stft, length=signal.size)
    peak = max(float(np.max(np.abs(signal))), np.finfo(float).tiny) / 0.99
    write_audio(out / "mixture.wav", signal / peak, fs)
    for kind, k in kinds.items():
        write_audio(out / f"component_{kind}.wav", components[k] / peak, fs)
    # The remix: the mixture with each picked component's level changed by its gain.
    remix = signal.copy()
    for kind, k in kinds.items():
        remix += (10 ** (settings.remix_gains_db.get(kind, 0.0) / 20) - 1) * components[k]
    write_audio(out / "remix.wav", remix, fs, normalize=True)
    write_audio(out / "upmix.wav", upmix(components, chosen.W), fs, normalize=True)
    print(f"wrote {out}/: cost_mm_vs_em.png activations.png smoothness.png masks.png "
          "component_{bass,pitched,noise}.wav remix.wav mixture.wav upmix.wav")  # fmt: skip
    return {
        "audio": str(audio),
        "seconds": signal.size / fs,
        "fs": fs,
        "n_fft": stft.n_fft,
        "hop": hop,
        "components": settings.components,
        "iterations": settings.iterations,
        "seed": seed,
        "study_lambda": settings.study_lambda,
        "mm_vs_em": {
            name: {
                "final_cost": float(fit.cost[-1]),
                "seconds": fit.seconds,
                "ms_per_iteration": 1e3 * fit.seconds / max(fit.n_iter, 1),
            }
            for name, fit in fits.items()
        },
        "lambdas": summary,
        "components_by_kind": {
            kind: {
                "component": k,
                "centroid_hz": float(features.centroid[k]),
                "flatness": float(features.flatness[k]),
                "harmonicity": float(features.harmonicity[k]),
                "f0_hz": float(features.f0[k]),
            }
            for kind, k in kinds.items()
        },
        "remix_gains_db": dict(settings.remix_gains_db),
    }


def objective(metrics: Metrics, cfg: DictConfig) -> float:
    """The MM fit's final penalized cost (lower is better)."""
    return float(metrics["study"]["mm_vs_em"]["MM (multiplicative)"]["final_cost"])


def validate(cfg: DictConfig) -> None:
    """Positive sizes and non-negative λ before any audio is read."""
    task = cfg.task
    stft_settings(cfg)
    for name in ("seconds", "fs", "components", "iterations"):
        if task[name] <= 0:
            raise ValueError(f"task.{name} must be > 0, got {task[name]}")
    if any(lam < 0 for lam in task.lambdas) or task.study_lambda < 0:
        raise ValueError("task.lambdas and task.study_lambda must be >= 0")


@register_task("smooth_study", schema=SmoothStudyTaskConfig, objective=objective, validate=validate)
def run(cfg: DictConfig, out: Path) -> Metrics:
    """The study from the run's config; its figures and audio go into the run folder."""
    settings = OmegaConf.to_object(cfg.task)
    results = study(
        settings, data_path(cfg, settings.audio), out, stft=stft_settings(cfg), seed=cfg.seed
    )
    return {
        "model": "smooth_study",
        "data": Path(settings.audio).name,
        "study": results,
        "files": {
            "figures": sorted(p.name for p in out.glob("*.png")),
            "audio": sorted(p.name for p in out.glob("*.wav")),
        },
    }


def main(argv: list[str] | None = None) -> Metrics:
    """Command line: the study's settings as options, results in ``--out``/metrics.json."""
    defaults = SmoothStudyTaskConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio", type=Path, default=DEFAULT_DATA_ROOT / defaults.audio)
    parser.add_argument("--out", type=Path, default=Path("outputs/smooth_study"))
    parser.add_argument("--seconds", type=float, default=defaults.seconds, help="excerpt length")
    parser.add_argument("--fs", type=int, default=defaults.fs)
    parser.add_argument("--n-fft", type=int, default=2048, help="hop: a quarter of it")
    parser.add_argument("--components", type=int, default=defaults.components)
    parser.add_argument("--iterations", type=int, default=defaults.iterations)
    parser.add_argument("--lambdas", type=float, nargs="+", default=defaults.lambdas)
    parser.add_argument("--study-lambda", type=float, default=defaults.study_lambda)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    settings = SmoothStudyTaskConfig(
        audio=str(args.audio), seconds=args.seconds, fs=args.fs, components=args.components,
        iterations=args.iterations, lambdas=args.lambdas, study_lambda=args.study_lambda,
    )  # fmt: skip
    try:
        stft = mnmf.Stft(n_fft=args.n_fft)
        metrics = study(settings, args.audio, args.out, stft=stft, seed=args.seed)
    except ValueError as error:
        raise SystemExit(f"smooth_study: {error}") from None
    write_json(args.out / "metrics.json", metrics | {"settings": asdict(settings)})
    return metrics
