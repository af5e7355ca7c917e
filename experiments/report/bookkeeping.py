"""Run bookkeeping of the report: duplicate runs, unfinished runs, mixed fingerprints.

A run's ``fingerprint`` (``metrics.json`` and ``failed.json``, written by
:mod:`experiments.run`) is ``{"digest": hex, "parts": {"config", "code", "data"}}``; two
runs with the same digest are the same run, counted once. Runs written before
fingerprints existed have none: they are never duplicates of each other, and their
parts read ``"unknown"``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from experiments.report.collect import (
    UNKNOWN,
    FailedRun,
    Found,
    Run,
    StartedRun,
    Sweep,
    condition_of,
)
from experiments.report.text import canonical, condition_labels

#: Fingerprint parts that must agree within one model × condition group: the config
#: part differs between seeds (and models) by design.
CHECKED_PARTS = ("code", "data")

Record = TypeVar("Record", Run, FailedRun)


@dataclass(frozen=True)
class Duplicate:
    """A run dropped because a newer run has the same fingerprint digest."""

    dropped: str
    kept: str


def drop_duplicates(records: Sequence[Record]) -> tuple[list[Record], list[Duplicate]]:
    """Keep one run per fingerprint digest: the newest (``finished_at``, else file mtime).

    Parameters
    ----------
    records : sequence of Run or FailedRun
        Runs in report order; those without a digest are all kept.

    Returns
    -------
    kept : list
        The runs kept, in the given order.
    dropped : list of Duplicate
        Each dropped run's folder name with the one kept instead.
    """
    by_digest: dict[str, list[Record]] = {}
    for record in records:
        if record.digest is not None:
            by_digest.setdefault(record.digest, []).append(record)
    newest = {
        digest: max(group, key=lambda r: (_time(r.finished()), r.name))
        for digest, group in by_digest.items()
    }
    kept: list[Record] = []
    dropped: list[Duplicate] = []
    for record in records:
        winner = newest.get(record.digest) if record.digest is not None else record
        if winner is record:
            kept.append(record)
        else:
            dropped.append(Duplicate(dropped=record.name, kept=winner.name))
    return kept, dropped


def _time(seconds: float) -> float:
    return seconds if math.isfinite(seconds) else -math.inf


@dataclass(frozen=True)
class Unfinished:
    """Runs without a result: planned jobs never started, and started folders."""

    not_started: list[tuple[Sweep, list[str]]]
    started: list[StartedRun]

    @property
    def count(self) -> int:
        return len(self.not_started) + len(self.started)


def unfinished(found: Found) -> Unfinished:
    """The planned jobs (``sweep.json``) with no run folder, and the started folders.

    A planned job is done when a complete or failed run below its sweep folder has the
    same task overrides (compared as sets); it is running (or was interrupted) when a
    started folder there has them; else it has not started. Started folders are listed
    whether or not a ``sweep.json`` planned them.
    """
    not_started: list[tuple[Sweep, list[str]]] = []
    for sweep in found.sweeps:
        done = {
            frozenset(record.overrides)
            for record in [*found.runs, *found.failed, *found.started]
            if _below(record.folder, sweep.folder)
        }
        seen: set[frozenset[str]] = set()
        for job in sweep.planned:
            key = frozenset(job)
            if key not in done and key not in seen:
                not_started.append((sweep, job))
            seen.add(key)
    return Unfinished(not_started=not_started, started=list(found.started))


def _below(folder: Path, parent: Path) -> bool:
    return folder == parent or parent in folder.parents


def check_fingerprints(
    runs: Sequence[Run], conditions: Sequence[str], *, allow_mixed: bool
) -> list[str]:
    """Refuse to average runs of one model × condition made by different code or data.

    Parameters
    ----------
    runs : sequence of Run
        The separation runs to be grouped (duplicates already dropped).
    conditions : sequence of str
        The condition keys.
    allow_mixed : bool
        Return the problems as warnings instead of raising.

    Returns
    -------
    list of str
        One warning per group and part that differ (none when all agree).

    Raises
    ------
    ValueError
        If a group's runs differ in the ``code`` or ``data`` part of their fingerprint
        (a run without one counts as the value ``unknown``) and ``allow_mixed`` is
        false. The message names the group, the part and how many runs have each value.
    """
    groups: dict[tuple[str, str], tuple[str, tuple[Any, ...], list[Run]]] = {}
    for run in runs:
        condition = condition_of(run, conditions)
        key = (run.model, canonical(condition))
        groups.setdefault(key, (run.model, condition, []))[2].append(run)
    problems = []
    for model, condition, members in groups.values():
        for part in CHECKED_PARTS:
            counts = Counter(run.part(part) for run in members)
            if len(counts) < 2:
                continue
            sides = "; ".join(
                f"{count} run(s) with {part} {_short(value)}"
                for value, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            )
            labels = ", ".join(["model " + model, *condition_labels(conditions, condition)])
            problems.append(
                f"group {labels}: the runs differ in the {part!r} part of their "
                f"fingerprint ({sides})"
            )
    if problems and not allow_mixed:
        more = f" (and {len(problems) - 1} more group/part)" if len(problems) > 1 else ""
        raise ValueError(
            f"refusing to average runs made by different code or data: {problems[0]}{more}; "
            "rerun the stale runs or report them apart, or pass --allow-mixed-fingerprints "
            "to average them anyway"
        )
    return problems


def _short(value: str) -> str:
    return "unknown (no fingerprint)" if value == UNKNOWN else value[:12]
