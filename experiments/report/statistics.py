"""Statistics of the report: per-run means over sources, then mean ± 95 % CI over runs."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from experiments.report.collect import Run, condition_of
from experiments.report.text import canonical, sort_key

SUMMARY_METRICS = ("SDR", "SIR", "SAR", "ΔSDR")


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
        key = (run.model, canonical(condition))
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
    return sorted(summary, key=lambda g: (tuple(map(sort_key, g.condition)), g.model))
