"""Report of a run folder or a sweep: results table, summary with confidence intervals, plots.

``mnmf-report PATH [--out DIR] [--examples N]`` (or ``python -m experiments.report``)
reads every run folder below ``PATH`` (any depth) written by :mod:`experiments.run` and
writes, into ``--out`` (default ``PATH/report/``):

- ``results.csv``: one row per run × reference source (scores, improvements, mixture
  scores, separation time and every *condition* parameter);
- ``report.md``: the summary table (model × condition: mean ± 95 % CI over runs), the
  runs, links to the plots and the failed runs;
- ``report.html``: a static page (inline CSS, no script) with the same tables, the plots,
  audio players and figures of example runs (the median-ΔSDR run of each model), the
  other runs (e.g. ``task=smooth_study``) and the failed runs;
- ``img/``: PNG plots (ΔSDR against each numeric condition, ΔSDR box plot, convergence
  curves, SDR during fitting).

A run folder counts when its ``metrics.json`` parses and says ``"status": "complete"``;
one with ``failed.json`` instead is listed as failed; anything else (a run still going,
or killed) is ignored, as is the report folder itself. A *condition* parameter is a
key of the runs' flattened config (``params``) whose value differs between the complete
separation runs, except the seed, the name, the model's own keys (the model is a grouping
key of its own) and settings that cannot change a score (Hydra, output, data location,
SDR tracking).

Paths in the report are relative, so the report folder can be opened in place or moved
together with the runs. To look at the page in a headless browser::

    mnmf-report outputs/sweeps/demo
    chromium --headless --no-sandbox --disable-gpu --screenshot=/tmp/report.png \\
        --window-size=1200,2400 file://$PWD/outputs/sweeps/demo/report/report.html
"""

from __future__ import annotations

import argparse
import csv
import html
import io
import json
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from experiments.figures import save_figure
from experiments.runfolder import FAILED, METRICS, completed_metrics, read_json
from mnmf.io import atomic_write

SUMMARY_METRICS = ("SDR", "SIR", "SAR", "ΔSDR")
# Flattened config keys that are never conditions: the model groups on its own; the
# rest identifies a run or cannot change its scores.
NOT_CONDITIONS = ("seed", "name", "task", "data_root", "eval.track_every")
NOT_CONDITION_PREFIXES = ("model.", "hydra", "output.")
CSV_SCORES = ("SDR", "SIR", "SAR", "ISR")
DASH = "\u2013"  # en dash


# ---------------------------------------------------------------------- runs
@dataclass(frozen=True)
class Run:
    """A complete run: its folder, the folder relative to the report's ``PATH``, metrics."""

    folder: Path
    name: str
    metrics: dict[str, Any]

    @property
    def model(self) -> str:
        return str(self.metrics.get("model", "?"))

    @property
    def task(self) -> str:
        return str(self.metrics.get("task", "separate"))

    @property
    def is_separation(self) -> bool:
        """A separation run (scored or not); other tasks go to "Other runs"."""
        return self.task == "separate" and self.model != "smooth_study"

    @property
    def params(self) -> dict[str, Any]:
        params = self.metrics.get("params")
        return params if isinstance(params, dict) else {}

    @property
    def scores(self) -> dict[str, list[float]]:
        scores = self.metrics.get("scores")
        return scores if isinstance(scores, dict) else {}

    @property
    def scored(self) -> bool:
        return bool(self.scores.get("SDR"))

    def means(self) -> dict[str, float]:
        """SDR, SIR, SAR and ΔSDR averaged over the reference sources (NaN if absent)."""
        improvements = self.metrics.get("improvements") or {}
        values = {key: self.scores.get(key) for key in ("SDR", "SIR", "SAR")}
        values["ΔSDR"] = improvements.get("ΔSDR")
        return {key: _mean(value) for key, value in values.items()}

    def file(self, name: object) -> Path | None:
        """A file of the run folder named in ``metrics["files"]``, if it exists."""
        if not isinstance(name, str) or not name:
            return None
        path = self.folder / name
        return path if path.is_file() else None

    def figures(self) -> list[Path]:
        """The run's own figures (listed in ``files.figures``, else every PNG)."""
        files = self.metrics.get("files") or {}
        names = files.get("figures")
        if names is None:
            return sorted(self.folder.glob("*.png"))
        return [path for path in map(self.file, names) if path is not None]


@dataclass(frozen=True)
class FailedRun:
    """A run that raised: its folder (relative to ``PATH``), error and traceback."""

    folder: Path
    name: str
    error: str
    traceback: str
    overrides: list[str]


def find_runs(path: Path, *, skip: Path | None = None) -> tuple[list[Run], list[FailedRun]]:
    """Complete and failed run folders at or below ``path`` (sorted by folder).

    Parameters
    ----------
    path : Path
        A run folder or a folder of run folders (any depth).
    skip : Path, optional
        A folder not to look into (the report's own output folder).

    Returns
    -------
    runs : list of Run
        Folders whose ``metrics.json`` parses and has ``"status": "complete"``.
    failed : list of FailedRun
        Folders with a ``failed.json`` and no complete ``metrics.json``.
    """
    root = path.resolve()
    skipped = skip.resolve() if skip is not None else None
    runs: list[Run] = []
    failed: list[FailedRun] = []
    for current, folders, files in os.walk(root):
        here = Path(current)
        folders[:] = sorted(f for f in folders if skipped is None or here / f != skipped)
        name = here.relative_to(root).as_posix()
        if METRICS in files:
            metrics = completed_metrics(here)
            if metrics is not None:
                runs.append(Run(folder=here, name=name, metrics=metrics))
                continue
        if FAILED in files:
            record = read_json(here / FAILED) or {}
            failed.append(
                FailedRun(
                    folder=here,
                    name=name,
                    error=str(record.get("error", "failed.json does not parse")),
                    traceback=str(record.get("traceback", "")),
                    overrides=[str(o) for o in record.get("overrides") or []],
                )
            )
    return runs, failed


def condition_keys(runs: Sequence[Run]) -> list[str]:
    """The ``params`` keys whose value differs between runs (sorted); none for one run.

    The seed, the name, the model's keys, Hydra's and output settings are left out (see
    :data:`NOT_CONDITIONS`); a key missing from some runs counts as the value ``None``.
    """
    keys = sorted({key for run in runs for key in run.params})
    conditions = []
    for key in keys:
        if key in NOT_CONDITIONS or key.startswith(NOT_CONDITION_PREFIXES):
            continue
        if len({_canonical(run.params.get(key)) for run in runs}) > 1:
            conditions.append(key)
    return conditions


def condition_of(run: Run, conditions: Sequence[str]) -> tuple[Any, ...]:
    """The run's values of the condition keys."""
    return tuple(run.params.get(key) for key in conditions)


# ---------------------------------------------------------------------- statistics
@dataclass(frozen=True)
class Group:
    """Summary of the scored runs of one model under one condition."""

    model: str
    condition: tuple[Any, ...]
    runs: list[Run]
    stats: dict[str, tuple[float, float | None]]  # metric → (mean, 95 % CI half-width)


def mean_ci(values: Iterable[float]) -> tuple[float, float | None]:
    """Mean and 95 % confidence half-width (Student t) of the finite values.

    Returns ``(nan, None)`` for no value and ``(value, None)`` for one.
    """
    finite = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    n = finite.size
    if n == 0:
        return math.nan, None
    if n == 1:
        return float(finite[0]), None
    half = stats.t.ppf(0.975, n - 1) * finite.std(ddof=1) / math.sqrt(n)
    return float(finite.mean()), float(half)


def summarize(runs: Sequence[Run], conditions: Sequence[str]) -> list[Group]:
    """Group the scored runs by model × condition: per-run means, then mean ± CI over runs.

    Sorted by condition, then model.
    """
    groups: dict[tuple[str, str], tuple[str, tuple[Any, ...], list[Run]]] = {}
    for run in runs:
        if not run.scored:
            continue
        condition = condition_of(run, conditions)
        key = (run.model, _canonical(condition))
        groups.setdefault(key, (run.model, condition, []))[2].append(run)
    summary = []
    for model, condition, members in groups.values():
        means = [run.means() for run in members]
        summary.append(
            Group(
                model=model,
                condition=condition,
                runs=members,
                stats={key: mean_ci(m[key] for m in means) for key in SUMMARY_METRICS},
            )
        )
    return sorted(summary, key=lambda g: (tuple(map(_sort_key, g.condition)), g.model))


# ---------------------------------------------------------------------- results.csv
def results_rows(runs: Sequence[Run], conditions: Sequence[str]) -> list[dict[str, Any]]:
    """One row per run × reference source (one row with empty scores for an unscored run)."""
    rows = []
    for run in runs:
        m = run.metrics
        base: dict[str, Any] = {
            "run": run.name,
            "name": m.get("name"),
            "task": run.task,
            "model": run.model,
            "method": m.get("method"),
            "data": m.get("data"),
            "seed": m.get("seed"),
        }
        base |= {key: run.params.get(key) for key in conditions}
        scores = run.scores
        mixture = m.get("mixture_scores") or {}
        improvements = m.get("improvements") or {}
        base["separate_seconds"] = (m.get("timings") or {}).get("separate")
        n_sources = len(scores.get("SDR") or [])
        if n_sources == 0:
            rows.append(base | {"source": None})
            continue
        for j in range(n_sources):
            row = dict(base, source=j + 1)
            row |= {key: _item(scores.get(key), j) for key in CSV_SCORES}
            row |= {key: _item(improvements.get(key), j) for key in ("ΔSDR", "ΔSIR")}
            row |= {f"mixture_{key}": _item(mixture.get(key), j) for key in ("SDR", "SIR")}
            rows.append(row)
    return rows


def results_columns(conditions: Sequence[str]) -> list[str]:
    """The columns of ``results.csv``."""
    return [
        *("run", "name", "task", "model", "method", "data", "seed"),
        *conditions,
        "source",
        *CSV_SCORES,
        *("ΔSDR", "ΔSIR", "mixture_SDR", "mixture_SIR", "separate_seconds"),
    ]


def csv_text(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """CSV of the rows (``None`` → empty; lists as JSON; floats in full precision)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_value(row.get(column)) for column in columns])
    return buffer.getvalue()


# ---------------------------------------------------------------------- plots
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
        numeric = [v for v in values if _is_number(v)]
        if len(numeric) != len(values) or len(set(numeric)) < 2:
            continue
        figure = _condition_plot(scored, key, models)
        plots.append(
            _save(figure, folder / f"delta_sdr_vs_{_slug(key)}.png", f"ΔSDR against {key}")
        )
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
    return plots


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
        "\n".join([group.model, *_condition_labels(conditions, group.condition)])
        for group in groups
    ]
    axis.set_xticks(positions, labels, fontsize=8, rotation=0 if len(groups) <= 8 else 45)
    axis.axhline(0.0, color="0.6", linewidth=0.8)
    axis.set(ylabel="ΔSDR (dB), mean over sources", title="ΔSDR per run")
    axis.grid(True, axis="y", alpha=0.3)
    return figure


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
            label = ", ".join([*_condition_labels(conditions, condition_of(run, conditions))])
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
        if isinstance(p, dict) and _is_number(p.get("iteration")) and _is_number(p.get("SDR"))
    ]
    if not points:
        return np.zeros(0), np.zeros(0)
    iterations, sdr = np.asarray(points, dtype=np.float64).T
    return iterations, sdr


# ---------------------------------------------------------------------- examples
def choose_examples(runs: Sequence[Run], *, count: int) -> dict[str, list[Run]]:
    """For each model, ``count`` separation runs closest to its median ΔSDR.

    Unscored runs fill in, first first, when a model has fewer scored runs.
    """
    examples: dict[str, list[Run]] = {}
    if count <= 0:
        return examples
    for model in sorted({run.model for run in runs if run.is_separation}):
        members = [run for run in runs if run.is_separation and run.model == model]
        scored = [(run.means()["ΔSDR"], run) for run in members if run.scored]
        scored = [(value, run) for value, run in scored if math.isfinite(value)]
        chosen: list[Run] = []
        if scored:
            median = float(np.median([value for value, _ in scored]))
            ranked = sorted(scored, key=lambda pair: (abs(pair[0] - median), pair[0]))
            chosen = [run for _, run in ranked[:count]]
        chosen += [run for run in members if run not in chosen][: count - len(chosen)]
        examples[model] = chosen
    return examples


def audio_files(run: Run) -> list[tuple[str, Path]]:
    """(caption, path) of the run's mixture, references and estimates that exist.

    A separation run gives the mixture, then reference j beside estimate j; another task
    gives the ``files.audio`` it lists.
    """
    files = run.metrics.get("files") or {}
    found: list[tuple[str, Path | None]] = []
    if run.is_separation:
        found.append(("mixture", run.file(files.get("mixture"))))
        references = list(files.get("references") or [])
        estimates = list(files.get("estimates") or [])
        for j in range(max(len(references), len(estimates))):
            if j < len(references):
                found.append((f"reference {j + 1}", run.file(references[j])))
            if j < len(estimates):
                found.append((f"estimate {j + 1}", run.file(estimates[j])))
    else:
        found += [(Path(str(n)).stem, run.file(n)) for n in files.get("audio") or []]
    return [(caption, path) for caption, path in found if path is not None]


# ---------------------------------------------------------------------- report
def build_report(path: Path, *, out: Path | None = None, examples: int = 1) -> Path:
    """Write ``results.csv``, ``report.md``, ``report.html`` and ``img/`` for ``path``.

    Parameters
    ----------
    path : Path
        A run folder, or a folder with run folders at any depth.
    out : Path, optional
        The report folder; ``path/report`` by default. It is never read as runs.
    examples : int
        How many example runs per model get audio players and figures in the HTML.

    Returns
    -------
    Path
        The report folder.

    Raises
    ------
    ValueError
        If ``path`` is not a folder or holds no complete or failed run.
    """
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"{path} is not a folder")
    out = Path(out) if out is not None else path / "report"
    runs, failed = find_runs(path, skip=out)
    if not runs and not failed:
        raise ValueError(
            f"no runs in {path}: no folder below it has a complete {METRICS} or a {FAILED}"
        )
    separations = [run for run in runs if run.is_separation]
    others = [run for run in runs if not run.is_separation]
    conditions = condition_keys(separations)
    groups = summarize(separations, conditions)

    columns = results_columns(conditions)
    text = csv_text(results_rows(runs, conditions), columns)
    atomic_write(out / "results.csv", lambda t: Path(t).write_text(text, encoding="utf-8"))
    plots = make_plots(separations, groups, conditions, folder=out / "img")
    chosen = choose_examples(separations, count=examples)

    context = _Context(
        path=path,
        out=out,
        runs=runs,
        separations=separations,
        others=others,
        failed=failed,
        conditions=conditions,
        groups=groups,
        plots=plots,
        examples=chosen,
        generated=datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
    )
    markdown = render_markdown(context)
    page = render_html(context)
    atomic_write(out / "report.md", lambda t: Path(t).write_text(markdown, encoding="utf-8"))
    atomic_write(out / "report.html", lambda t: Path(t).write_text(page, encoding="utf-8"))
    return out


@dataclass(frozen=True)
class _Context:
    """Everything the Markdown and HTML renderers show."""

    path: Path
    out: Path
    runs: list[Run]
    separations: list[Run]
    others: list[Run]
    failed: list[FailedRun]
    conditions: list[str]
    groups: list[Group]
    plots: list[Plot]
    examples: dict[str, list[Run]]
    generated: str

    def link(self, target: Path) -> str:
        """URL of ``target`` relative to the report folder (POSIX, percent-encoded)."""
        relative = os.path.relpath(target.resolve(), self.out.resolve())  # same symlinks
        return quote(Path(relative).as_posix(), safe="/")

    def counts(self) -> str:
        scored = sum(run.scored for run in self.separations)
        parts = [
            f"{len(self.runs)} complete run(s)",
            f"{len(self.separations)} separation ({scored} scored)",
        ]
        if self.others:
            parts.append(f"{len(self.others)} other")
        return ", ".join(parts) + f"; {len(self.failed)} failed"

    def summary_header(self) -> list[str]:
        return ["model", *self.conditions, "n runs", *(f"{m} (dB)" for m in SUMMARY_METRICS)]

    def summary_rows(self) -> list[list[str]]:
        return [
            [
                group.model,
                *(_show(value) for value in group.condition),
                str(len(group.runs)),
                *(_mean_ci_text(*group.stats[m]) for m in SUMMARY_METRICS),
            ]
            for group in self.groups
        ]

    def runs_header(self) -> list[str]:
        return ["run", "model", *self.conditions, "seed", "SDR", "ΔSDR", "separate (s)"]

    def runs_rows(self) -> list[list[str]]:
        rows = []
        for run in self.separations:
            means = run.means()
            seconds = (run.metrics.get("timings") or {}).get("separate")
            rows.append(
                [
                    run.name,
                    run.model,
                    *(_show(value) for value in condition_of(run, self.conditions)),
                    _show(run.metrics.get("seed")),
                    _number(means["SDR"]),
                    _number(means["ΔSDR"]),
                    _number(seconds),
                ]
            )
        return rows


def render_markdown(context: _Context) -> str:
    """report.md: counts, summary table, plots, runs, other runs and failed runs."""
    lines = [
        "# Separation report",
        "",
        f"- Path: `{context.path}`",
        f"- Runs: {context.counts()}",
        f"- Conditions: {', '.join(f'`{c}`' for c in context.conditions) or 'none'}",
        f"- Generated: {context.generated}; per-run results: [results.csv](results.csv)",
        "",
        "## Summary",
        "",
    ]
    if context.groups:
        lines += [
            "Mean over runs ± 95 % confidence half-width (Student t) of the per-run means "
            f"over sources; {DASH}: one run.",
            "",
            *_markdown_table(context.summary_header(), context.summary_rows()),
        ]
    else:
        lines.append("No scored runs.")
    if context.plots:
        lines += ["", "## Plots", ""]
        for plot in context.plots:
            lines += [f"![{plot.title}]({context.link(plot.path)})", ""]
    if context.separations:
        lines += ["", "## Runs", "", *_markdown_table(context.runs_header(), context.runs_rows())]
    if context.others:
        lines += ["", "## Other runs", ""]
        for run in context.others:
            lines.append(f"- `{run.name}` ({run.task}, {run.model})")
            lines += [f"  - [{p.name}]({context.link(p)})" for p in run.figures()]
    if context.failed:
        lines += ["", "## Failed runs", ""]
        rows = [[run.name, run.error] for run in context.failed]
        lines += _markdown_table(["run", "error"], rows)
    return "\n".join(lines) + "\n"


CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; line-height: 1.45;
       max-width: 1100px; margin: 0 auto; padding: 1rem 1.5rem 3rem; color: #1f2328;
       overflow-wrap: anywhere; }
h1 { font-size: 1.7rem; margin-bottom: 0.3rem; }
h2 { border-bottom: 1px solid #d0d7de; padding-bottom: 0.2rem; margin-top: 2.2rem; }
h3 { margin: 1.4rem 0 0.4rem; }
code { background: #f3f4f6; padding: 0 0.25em; border-radius: 3px; font-size: 0.9em; }
img { max-width: 100%; height: auto; display: block; }
audio { max-width: 100%; width: 100%; }
figure { margin: 0.8rem 0; }
figcaption { font-size: 0.85rem; color: #57606a; }
.table-wrap { overflow-x: auto; margin: 0.6rem 0; }
table { border-collapse: collapse; font-size: 0.88rem; }
th, td { border: 1px solid #d0d7de; padding: 0.25rem 0.55rem; text-align: right;
         white-space: nowrap; overflow-wrap: normal; }
th { background: #f6f8fa; }
td.text, th.text { text-align: left; }
td.run { white-space: normal; overflow-wrap: anywhere; min-width: 14rem; text-align: left; }
td.error { white-space: normal; text-align: left; min-width: 18rem; }
tbody tr:nth-child(even) { background: #fafbfc; }
.meta { color: #57606a; font-size: 0.92rem; }
.players { display: grid; grid-template-columns: repeat(auto-fill, minmax(250px, 1fr));
           gap: 0.4rem 1rem; margin: 0.5rem 0; }
.players figure { margin: 0; }
.example { border: 1px solid #d0d7de; border-radius: 6px; padding: 0.3rem 1rem 0.8rem;
           margin: 1rem 0; }
pre { overflow-x: auto; white-space: pre-wrap; background: #f6f8fa; padding: 0.6rem;
      font-size: 0.8rem; }
details summary { cursor: pointer; }
"""


def render_html(context: _Context) -> str:
    """report.html: a static page with inline CSS and relative links only."""
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>mnmf report: {e(context.path.resolve().name)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        "<h1>Separation report</h1>",
        f'<p class="meta">Path: <code>{e(str(context.path))}</code><br>',
        f"{e(context.counts())}<br>",
        "Conditions: "
        + (", ".join(f"<code>{e(c)}</code>" for c in context.conditions) or "none")
        + "<br>",
        f"Generated {e(context.generated)} · "
        '<a href="results.csv">results.csv</a> · <a href="report.md">report.md</a></p>',
        "<h2>Summary</h2>",
    ]
    if context.groups:
        parts += [
            "<p>Mean over runs ± 95 % confidence half-width (Student <i>t</i>) of each "
            f"run's mean over sources; {DASH}: a single run.</p>",
            _html_table(context.summary_header(), context.summary_rows(), text_columns=1),
        ]
    else:
        parts.append("<p>No scored runs.</p>")
    if context.plots:
        parts.append("<h2>Plots</h2>")
        for plot in context.plots:
            parts.append(_html_figure(context.link(plot.path), plot.title))
    if context.examples:
        parts.append("<h2>Examples</h2>")
        parts.append(
            '<p class="meta">Per model, the run(s) closest to its median ΔSDR: audio '
            "(estimates matched to the references, one common scale) and the run's figures.</p>"
        )
        for model, chosen in context.examples.items():
            parts.append(f"<h3>{e(model)}</h3>")
            parts += [_html_example(context, run) for run in chosen]
    if context.separations:
        parts += [
            "<h2>Runs</h2>",
            f"<details><summary>All {len(context.separations)} separation run(s)</summary>",
            _html_table(context.runs_header(), context.runs_rows(), text_columns=2),
            "</details>",
        ]
    if context.others:
        parts.append("<h2>Other runs</h2>")
        parts += [_html_example(context, run) for run in context.others]
    if context.failed:
        parts.append("<h2>Failed runs</h2>")
        rows = "".join(
            f'<tr><td class="run">{e(run.name)}</td><td class="error">{e(run.error)}'
            + (
                f"<details><summary>traceback</summary><pre>{e(run.traceback)}</pre></details>"
                if run.traceback
                else ""
            )
            + "</td></tr>"
            for run in context.failed
        )
        parts.append(
            '<div class="table-wrap"><table><thead><tr><th class="text">run</th>'
            f'<th class="text">error</th></tr></thead><tbody>{rows}</tbody></table></div>'
        )
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def _html_example(context: _Context, run: Run) -> str:
    e = html.escape
    meta = [f"task {run.task}", f"data {run.metrics.get('data')}"]
    if run.is_separation:  # conditions are those of the separation runs
        meta += [
            f"{key} = {_show(value)}"
            for key, value in zip(
                context.conditions, condition_of(run, context.conditions), strict=True
            )
        ]
    meta.append(f"seed {run.metrics.get('seed')}")
    if run.scored:
        means = run.means()
        meta.append(f"SDR {_number(means['SDR'])} dB, ΔSDR {_number(means['ΔSDR'])} dB")
    parts = [
        '<div class="example">',
        f"<h4><code>{e(run.name)}</code></h4>",
        f'<p class="meta">{e(" · ".join(meta))}</p>',
    ]
    players = audio_files(run)
    if players:
        parts.append('<div class="players">')
        parts += [
            f"<figure><figcaption>{e(caption)}</figcaption>"
            f'<audio controls preload="metadata" src="{e(context.link(path))}"></audio></figure>'
            for caption, path in players
        ]
        parts.append("</div>")
    parts += [_html_figure(context.link(figure), figure.name) for figure in run.figures()]
    parts.append("</div>")
    return "\n".join(parts)


def _html_figure(src: str, caption: str) -> str:
    e = html.escape
    return (
        f'<figure><a href="{e(src)}"><img src="{e(src)}" alt="{e(caption)}" loading="lazy">'
        f"</a><figcaption>{e(caption)}</figcaption></figure>"
    )


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]], *, text_columns: int) -> str:
    """A table in a horizontally scrolling box; the first ``text_columns`` left-aligned."""
    e = html.escape

    def cell(tag: str, index: int, value: str) -> str:
        style = ' class="run"' if index == 0 and tag == "td" else ""
        if not style and index < text_columns:
            style = ' class="text"'
        return f"<{tag}{style}>{e(value)}</{tag}>"

    head = "".join(cell("th", i, value) for i, value in enumerate(header))
    body = "".join(
        "<tr>" + "".join(cell("td", i, value) for i, value in enumerate(row)) + "</tr>"
        for row in rows
    )
    return (
        f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(_markdown_cell(c) for c in cells) + " |"

    return [line(header), "|" + "|".join("---" for _ in header) + "|", *map(line, rows)]


def _markdown_cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


# ---------------------------------------------------------------------- helpers
def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _sort_key(value: Any) -> tuple[int, float, str]:
    if _is_number(value):
        return (0, float(value), "")
    if value is None:
        return (2, 0.0, "")
    return (1, 0.0, _canonical(value))


def _mean(values: Any) -> float:
    if not isinstance(values, list) or not values:
        return math.nan
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean())


def _item(values: Any, index: int) -> Any:
    return values[index] if isinstance(values, list) and index < len(values) else None


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def _show(value: Any) -> str:
    """A parameter value for a table cell or a label."""
    if value is None:
        return DASH
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def _number(value: Any) -> str:
    if not (_is_number(value) and math.isfinite(value)):
        return DASH
    return f"{0.0 if round(value, 2) == 0 else value:.2f}"  # no "-0.00"


def _mean_ci_text(mean: float, half: float | None) -> str:
    if not math.isfinite(mean):
        return DASH
    mean = 0.0 if round(mean, 2) == 0 else mean  # no "-0.00"
    return f"{mean:.2f} ± {DASH if half is None else f'{half:.2f}'}"


def _condition_labels(conditions: Sequence[str], values: Sequence[Any]) -> list[str]:
    return [f"{key.split('.')[-1]}={_show(v)}" for key, v in zip(conditions, values, strict=True)]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "parameter"


# ---------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    """``mnmf-report PATH [--out DIR] [--examples N]``; prints where report.html is.

    Returns 0 (the exit status: the console script passes the return value to
    :func:`sys.exit`); :func:`build_report` returns the report folder.
    """
    parser = argparse.ArgumentParser(
        prog="mnmf-report",
        description="Summarize a run folder or a sweep of experiments.run into "
        "results.csv, report.md, report.html and img/.",
    )
    parser.add_argument("path", type=Path, help="a run folder or a sweep folder (any depth)")
    parser.add_argument(
        "--out", type=Path, default=None, help="report folder (default: PATH/report)"
    )
    parser.add_argument(
        "--examples",
        type=int,
        default=1,
        help="example runs per model with audio players and figures (default: 1)",
    )
    args = parser.parse_args(argv)
    try:
        out = build_report(args.path, out=args.out, examples=args.examples)
    except ValueError as error:
        parser.exit(2, f"mnmf-report: error: {error}\n")
    print(f"[mnmf-report] report: {(out / 'report.html').resolve()}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
