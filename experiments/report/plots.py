"""The report's plots (PNG, written atomically): ΔSDR against each numeric condition,
ΔSDR per run by model, convergence curves, SDR during fitting, and the rank study
(reconstruction and ΔSDR against the NMF's rank) where runs vary the rank."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from experiments.figures import save_figure
from experiments.report.collect import Run, condition_of
from experiments.report.statistics import Group, mean_ci
from experiments.report.text import canonical, condition_labels, is_number, slug


@dataclass(frozen=True)
class Plot:
    """A written plot: its file and a title."""

    path: Path
    title: str


def make_plots(
    runs: Sequence[Run], groups: Sequence[Group], conditions: Sequence[str], *, folder: Path
) -> list[Plot]:
    """Write the plots that have data into ``folder``; return them in report order."""
    plots: list[Plot] = []
    scored = [run for run in runs if run.scored]
    models = sorted({run.model for run in scored})
    for key in conditions:
        values = [run.params.get(key) for run in scored]
        numeric = [v for v in values if is_number(v)]
        if len(numeric) != len(values) or len(set(numeric)) < 2:
            continue
        figure = _condition_plot(scored, key, models)
        plots.append(_save(figure, folder / f"delta_sdr_vs_{slug(key)}.png", f"ΔSDR against {key}"))
    if groups:
        figure = _box_plot(groups, conditions)
        title = "ΔSDR per run, by model" + (" and condition" if conditions else "")
        plots.append(_save(figure, folder / "delta_sdr_box.png", title))
    fitted = [run for run in runs if len(_cost(run)[1]) >= 2]
    if fitted:
        figure = _convergence_plot(fitted, conditions)
        plots.append(_save(figure, folder / "convergence.png", "Convergence (normalized cost)"))
    tracked = [run for run in runs if _track(run)[0].size]
    if tracked:
        figure = _track_plot(tracked)
        plots.append(_save(figure, folder / "sdr_track.png", "SDR during fitting"))
    ranked = [run for run in scored if _reconstruction(run)]
    if len({_reconstruction(run)["rank"] for run in ranked}) >= 2:
        figure = _rank_plot(ranked)
        title = "Reconstruction and separation against the NMF's rank"
        plots.append(_save(figure, folder / "rank.png", title))
    return plots


def _reconstruction(run: Run) -> dict:
    found = run.metrics.get("reconstruction")
    return found if isinstance(found, dict) and is_number(found.get("rank")) else {}


#: The rank plot's panels: (metric of ``metrics["reconstruction"]`` or "ΔSDR", label).
RANK_PANELS = (
    ("is_divergence_per_bin", "IS divergence per bin\n(the fit's error)"),
    ("correlation", "correlation ⟨y, ŷ⟩ / (‖y‖ ‖ŷ‖)"),
    ("ΔSDR", "ΔSDR (dB)"),
)


def _rank_plot(runs: Sequence[Run]) -> plt.Figure:
    """The seed slides' rank study: the model's reconstruction of the mixture and the
    separation against the total rank K (mean ± 95 % CI over runs, per model)."""
    models = sorted({run.model for run in runs})
    figure, axes = plt.subplots(
        len(RANK_PANELS), 1, figsize=(7, 2.3 * len(RANK_PANELS)), sharex=True, layout="constrained"
    )
    ranks = sorted({int(_reconstruction(run)["rank"]) for run in runs})
    for axis, (key, label) in zip(axes, RANK_PANELS, strict=True):
        for model in models:
            by_rank: dict[int, list[float]] = {}
            for run in runs:
                if run.model != model:
                    continue
                value = run.means()["ΔSDR"] if key == "ΔSDR" else _reconstruction(run).get(key)
                if is_number(value) and math.isfinite(float(value)):
                    by_rank.setdefault(int(_reconstruction(run)["rank"]), []).append(float(value))
            xs = sorted(by_rank)
            if not xs:
                continue
            means, halves = zip(*(mean_ci(by_rank[x]) for x in xs), strict=True)
            errors = [0.0 if h is None else h for h in halves]
            axis.errorbar(xs, means, yerr=errors, marker="o", capsize=4, label=model)
        axis.set_ylabel(label, fontsize=8)
        axis.grid(True, alpha=0.3)
    axes[0].set_title("the fit, the reconstruction and the separation against the rank (95 % CI)")
    axes[0].legend(fontsize=8)
    axes[-1].set_xscale("log", base=2)
    axes[-1].set_xticks(ranks, [str(r) for r in ranks])
    axes[-1].set_xlabel("rank K (components in all)")
    return figure


def _save(figure: plt.Figure, path: Path, title: str) -> Plot:
    save_figure(figure, path)
    return Plot(path=path, title=title)


def _condition_plot(runs: Sequence[Run], key: str, models: Sequence[str]) -> plt.Figure:
    figure, axis = plt.subplots(figsize=(7, 4), layout="constrained")
    values = sorted({float(run.params[key]) for run in runs})
    # Models side by side around each value, so that their error bars do not overlap.
    step = 0.012 * (values[-1] - values[0])
    for index, model in enumerate(models):
        by_value: dict[float, list[float]] = {}
        for run in runs:
            if run.model == model:
                by_value.setdefault(float(run.params[key]), []).append(run.means()["ΔSDR"])
        xs = sorted(by_value)
        means, halves = zip(*(mean_ci(by_value[x]) for x in xs), strict=True)
        errors = [0.0 if h is None else h for h in halves]
        shift = (index - (len(models) - 1) / 2) * step
        axis.errorbar(
            np.asarray(xs) + shift, means, yerr=errors, marker="o", capsize=4, label=model
        )
    if len(values) <= 12:
        axis.set_xticks(values, [f"{v:g}" for v in values])
    axis.set(xlabel=key, ylabel="mean ΔSDR (dB)", title=f"ΔSDR against {key} (95 % CI)")
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=8)
    return figure


def _box_plot(groups: Sequence[Group], conditions: Sequence[str]) -> plt.Figure:
    width = min(max(6.0, 0.9 * len(groups) + 2), 16.0)
    figure, axis = plt.subplots(figsize=(width, 4.5), layout="constrained")
    data = [[run.means()["ΔSDR"] for run in group.runs] for group in groups]
    positions = np.arange(1, len(groups) + 1)
    axis.boxplot(data, positions=positions, widths=0.6)
    labels = [
        "\n".join([group.model, *_labels(conditions, group.condition, groups)]) for group in groups
    ]
    axis.set_xticks(positions, labels, fontsize=8, rotation=0 if len(groups) <= 8 else 45)
    axis.axhline(0.0, color="0.6", linewidth=0.8)
    axis.set(ylabel="ΔSDR (dB), mean over sources", title="ΔSDR per run")
    axis.grid(True, axis="y", alpha=0.3)
    return figure


def _labels(
    conditions: Sequence[str], values: Sequence[object], among: Sequence[Run] | Sequence[Group]
) -> list[str]:
    """``key=value`` labels of the conditions that differ among the plotted runs or groups.

    A key can be a condition of the report (it differs between unscored runs, say) and
    still be the same on every curve or box of a plot; labelling it only crowds the plot.
    """
    shown = []
    for index, key in enumerate(conditions):
        seen = {
            canonical(thing.condition[index] if isinstance(thing, Group) else thing.params.get(key))
            for thing in among
        }
        if len(seen) > 1:
            shown.append(index)
    return condition_labels([conditions[i] for i in shown], [values[i] for i in shown])


def _convergence_plot(runs: Sequence[Run], conditions: Sequence[str]) -> plt.Figure:
    models = sorted({run.model for run in runs})
    columns = min(3, len(models))
    rows = math.ceil(len(models) / columns)
    figure, axes = plt.subplots(
        rows,
        columns,
        figsize=(4.2 * columns + 1, 3.3 * rows),
        squeeze=False,
        sharey=True,
        layout="constrained",
    )
    for axis, model in zip(axes.flat, models, strict=False):
        members = [run for run in runs if run.model == model]
        for run in members:
            iterations, cost = _cost(run)
            span = float(cost.max() - cost.min())
            normalized = (cost - cost.min()) / span if span > 0 else np.zeros_like(cost)
            label = ", ".join(_labels(conditions, condition_of(run, conditions), runs))
            label = f"{label}, seed {run.metrics.get('seed')}".lstrip(", ")
            axis.plot(iterations, normalized, marker=".", linewidth=1, label=label)
        axis.set(title=model, xlabel="iteration")
        axis.grid(True, alpha=0.3)
        if len(members) <= 8:
            axis.legend(fontsize=7)
    for axis in axes[:, 0]:
        axis.set_ylabel("(cost - min) / (max - min)")
    for axis in list(axes.flat)[len(models) :]:
        axis.set_visible(False)
    return figure


def _track_plot(runs: Sequence[Run]) -> plt.Figure:
    figure, axis = plt.subplots(figsize=(7, 4), layout="constrained")
    models = sorted({run.model for run in runs})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, model in enumerate(models):
        color = colors[index % len(colors)]
        for number, run in enumerate(r for r in runs if r.model == model):
            iterations, sdr = _track(run)
            label = model if number == 0 else None
            axis.plot(iterations, sdr, marker=".", color=color, alpha=0.7, label=label)
    axis.set(xlabel="iteration", ylabel="SDR (dB), mean over sources", title="SDR during fit")
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=8)
    return figure


def _cost(run: Run) -> tuple[np.ndarray, np.ndarray]:
    """The run's finite cost history against its iterations (empty if none)."""
    fit = run.metrics.get("fit") or {}
    cost = np.asarray(fit.get("cost") or [], dtype=np.float64).ravel()
    iterations = np.asarray(fit.get("cost_iterations") or [], dtype=np.float64).ravel()
    if iterations.size != cost.size:
        iterations = np.arange(cost.size, dtype=np.float64)
    keep = np.isfinite(cost)
    return iterations[keep], cost[keep]


def _track(run: Run) -> tuple[np.ndarray, np.ndarray]:
    """The run's ``sdr_track`` as (iterations, SDR) arrays (empty if none)."""
    points = [
        (p["iteration"], p["SDR"])
        for p in run.metrics.get("sdr_track") or []
        if isinstance(p, dict) and is_number(p.get("iteration")) and is_number(p.get("SDR"))
    ]
    if not points:
        return np.zeros(0), np.zeros(0)
    iterations, sdr = np.asarray(points, dtype=np.float64).T
    return iterations, sdr
