"""Tables of the runs of tasks other than ``separate`` whose metrics carry a ``summary``.

A ``djmix`` run's ``summary`` holds the medians over its tracks of the transcription
errors (warp, cue point, speed, gains; :func:`mnmf.djmix.evaluation.evaluate_transcription`).
Per task, the runs are grouped by model (``metrics["model"]``: the method) × condition
(the flattened settings that vary among that task's runs, except the seed, names and
the method itself) and each summary metric is shown as mean ± 95 % CI over the runs
(Student t) with their median.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from experiments.report.collect import Run
from experiments.report.statistics import mean_ci
from experiments.report.text import DASH, canonical, show, sort_key

#: Settings never shown as conditions of a task table.
IGNORED = ("seed", "name", "data_root", "on_stale", "task.name", "task.method", "task.objective")
IGNORED_PREFIXES = ("hydra", "output.", "eval.", "model.", "data.", "stft.")


@dataclass(frozen=True)
class TaskTable:
    """One task's table: header and rows of strings, and a sentence saying what it shows."""

    task: str
    header: list[str]
    rows: list[list[str]]
    sentence: str


def _summary(run: Run) -> dict[str, float]:
    summary = run.metrics.get("summary")
    if not isinstance(summary, dict):
        return {}
    return {
        key: float(value)
        for key, value in summary.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def task_tables(runs: Sequence[Run]) -> list[TaskTable]:
    """One :class:`TaskTable` per task (other than ``separate``) with summarized runs."""
    by_task: dict[str, list[Run]] = {}
    for run in runs:
        if not run.is_separation and _summary(run):
            by_task.setdefault(run.task, []).append(run)
    return [_table(task, members) for task, members in sorted(by_task.items())]


def gate_edge_table(runs: Sequence[Run]) -> TaskTable | None:
    """The seed slides' sine study over the separation runs that measured it
    (``metrics["gate_edges"]``, :func:`experiments.tasks.separate._gate_edge_errors`):
    the error near the gates' edges against elsewhere, and the slides' error measure;
    None when no run has it."""
    members = [
        run for run in runs if run.is_separation and isinstance(run.metrics.get("gate_edges"), dict)
    ]
    if not members:
        return None
    sentence = (
        "separate, gated sines: per run, the mean over sources of |x̂ - x| within half an "
        "STFT window of a gate edge (near), elsewhere, and their ratio; the slides' error "
        "mean |y - (x̂₁ + x̂₂)| with x̂ the NMF model's components (model error), near the "
        "edges and elsewhere; then mean ± 95 % CI over runs (Student t) and [median]."
    )
    return _table(
        "separate: errors at the gates' edges", members, values=_gate_edge_values,
        ignored_prefixes=("hydra", "output.", "eval.", "model.", "stft.", "data.sine."),
        sentence=sentence,
    )  # fmt: skip


def _gate_edge_values(run: Run) -> dict[str, float]:
    found = run.metrics.get("gate_edges") or {}
    values = {}
    for key, label in (("ratio", "near / elsewhere"), ("near", "near"), ("elsewhere", "elsewhere")):
        numbers = [float(v) for v in found.get(key) or [] if isinstance(v, int | float)]
        finite = [v for v in numbers if math.isfinite(v)]
        values[label] = sum(finite) / len(finite) if finite else math.nan
    for key, label in (
        ("model_error", "model error"),
        ("model_error_near", "model error near"),
        ("model_error_elsewhere", "model error elsewhere"),
    ):
        value = found.get(key)
        values[label] = float(value) if isinstance(value, int | float) else math.nan
    return values


def _table(
    task: str,
    runs: list[Run],
    *,
    values: Any = _summary,
    ignored_prefixes: tuple[str, ...] = IGNORED_PREFIXES,
    sentence: str | None = None,
) -> TaskTable:
    keys = sorted(
        key
        for key in {k for run in runs for k in run.params}
        if key not in IGNORED
        and not key.startswith(ignored_prefixes)
        and len({canonical(run.params.get(key)) for run in runs}) > 1
    )
    metrics: list[str] = []
    for run in runs:
        metrics += [m for m in values(run) if m not in metrics]
    groups: dict[tuple[str, str], tuple[str, list[Any], list[Run]]] = {}
    for run in runs:
        condition = [run.params.get(key) for key in keys]
        groups.setdefault((run.model, canonical(condition)), (run.model, condition, []))[2].append(
            run
        )
    ordered = sorted(groups.values(), key=lambda g: (tuple(map(sort_key, g[1])), g[0]))
    header = ["model", *(key.split(".")[-1] for key in keys), "n runs", *metrics]
    rows = []
    for model, condition, members in ordered:
        cells = [model, *(show(value) for value in condition), str(len(members))]
        for metric in metrics:
            cells.append(_cell([values(run).get(metric, math.nan) for run in members]))
        rows.append(cells)
    sentence = sentence or (
        f"{task}: each run's summary (its median over tracks), then mean ± 95 % CI over "
        f"runs (Student t) and [median] per model and condition."
    )
    return TaskTable(task=task, header=header, rows=rows, sentence=sentence)


def _cell(values: list[float]) -> str:
    finite = sorted(v for v in values if math.isfinite(v))
    if not finite:
        return DASH
    mean, half = mean_ci(finite)
    middle = len(finite) // 2
    median = finite[middle] if len(finite) % 2 else 0.5 * (finite[middle - 1] + finite[middle])
    spread = DASH if half is None else f"{half:.3g}"
    return f"{mean:.3g} ± {spread} [{median:.3g}]"
