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


def _table(task: str, runs: list[Run]) -> TaskTable:
    keys = sorted(
        key
        for key in {k for run in runs for k in run.params}
        if key not in IGNORED
        and not key.startswith(IGNORED_PREFIXES)
        and len({canonical(run.params.get(key)) for run in runs}) > 1
    )
    metrics: list[str] = []
    for run in runs:
        metrics += [m for m in _summary(run) if m not in metrics]
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
            values = [_summary(run).get(metric, math.nan) for run in members]
            cells.append(_cell(values))
        rows.append(cells)
    sentence = (
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
