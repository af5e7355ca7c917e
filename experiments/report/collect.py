"""Collect the runs of a folder: complete, failed and unfinished runs, conditions, examples.

A run folder counts when its ``metrics.json`` parses and says ``"status": "complete"``;
one with ``failed.json`` instead is listed as failed; one with a ``.hydra/`` folder but
neither is *started* (still running, or interrupted); anything else is ignored, as are
hidden folders and the report folder itself. A sweep folder's ``sweep.json``
(``started``, ``total``, ``planned``: the task overrides of every planned job) is read
too, to tell which planned jobs have no result yet. A *condition* parameter is a key of
the runs' flattened config (``params``) whose value differs between the complete
separation runs, except the seed, the name, the task's and the model's own keys (the
model is a grouping key of its own) and settings that cannot change a score (Hydra,
output, data location, SDR tracking).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from experiments.report.text import canonical, mean
from experiments.runfolder import FAILED, METRICS, completed_metrics, read_json

#: The file a sweep folder gets: when it started, how many jobs, their task overrides.
SWEEP = "sweep.json"
#: Hydra's folder in every run folder it starts (``overrides.yaml``: the task overrides).
HYDRA = ".hydra"
#: The fingerprint parts (see experiments.fingerprint); a run without one has "unknown".
FINGERPRINT_PARTS = ("config", "code", "data")
UNKNOWN = "unknown"
#: The method whose every estimate is the mixture itself: its SAR means nothing (no
#: artifacts: BSS Eval returns numerical noise, ~170 dB), so it is shown as "—".
MIXTURE_METHOD = "mixture"

# Flattened config keys that are never conditions: the model groups on its own; the
# rest identifies a run or cannot change its scores.
NOT_CONDITIONS = ("seed", "name", "task", "data_root", "eval.track_every", "model.name")
NOT_CONDITION_PREFIXES = ("task.", "hydra", "output.")
#: Settings of a model: conditions only where they vary within one model's runs.
MODEL_PREFIX = "model."


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
        return self.task == "separate"

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

    @property
    def seed(self) -> Any:
        return self.metrics.get("seed", self.params.get("seed"))

    @property
    def overrides(self) -> list[str]:
        return [str(o) for o in self.metrics.get("overrides") or []]

    @property
    def is_mixture(self) -> bool:
        """The estimates are the mixture itself (``method: mixture``): SAR means nothing."""
        return self.metrics.get("method") == MIXTURE_METHOD

    @property
    def digest(self) -> str | None:
        """The fingerprint's digest (None for a run written before fingerprints)."""
        return _digest(self.metrics)

    def part(self, name: str) -> str:
        """A fingerprint part (``config``, ``code``, ``data``), or ``"unknown"``."""
        return _part(self.metrics, name)

    def finished(self) -> float:
        """When the run finished (POSIX seconds): ``finished_at``, else metrics.json's mtime."""
        return _finished(self.metrics, self.folder / METRICS)

    def values(self, metric: str) -> list[float]:
        """Per-source values of ``SDR``, ``SIR``, ``SAR``, ``ISR``, ``ΔSDR``, ``ΔSIR`` or
        ``mixture SDR`` (the mixture's own SDR), NaN where absent or meaningless (the
        SAR of a ``mixture`` run)."""
        if metric.startswith("Δ"):
            values = (self.metrics.get("improvements") or {}).get(metric)
        elif metric.startswith("mixture "):
            values = (self.metrics.get("mixture_scores") or {}).get(metric.split()[-1])
        else:
            values = self.scores.get(metric)
        if not isinstance(values, list):
            return []
        floats = [float(v) if isinstance(v, int | float) else math.nan for v in values]
        if metric == "SAR" and self.is_mixture:
            return [math.nan] * len(floats)
        return floats

    def means(self) -> dict[str, float]:
        """SDR, SIR, SAR and ΔSDR averaged over the reference sources (NaN if absent).

        The SAR of a ``mixture`` run is NaN: the mixture as estimate has no artifacts.
        """
        return {key: mean(self.values(key)) for key in ("SDR", "SIR", "SAR", "ΔSDR")}

    def source_names(self) -> list[str]:
        """Names of the reference sources where the config says them (synthetic data:
        ``data.sources``, in the order of the references), else none."""
        names = self.params.get("data.sources")
        n_sources = len(self.values("SDR"))
        if self.params.get("data.kind") != "synthetic" or not isinstance(names, list):
            return []
        return [str(name) for name in names] if len(names) == n_sources else []

    def mixture_sdr(self) -> float:
        """The mixture's SDR averaged over the reference sources (NaN if absent)."""
        return mean(self.values("mixture SDR"))

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
    record: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def digest(self) -> str | None:
        return _digest(self.record)

    def finished(self) -> float:
        """When the run failed (POSIX seconds): ``finished_at``, else failed.json's mtime."""
        return _finished(self.record, self.folder / FAILED)


@dataclass(frozen=True)
class StartedRun:
    """A run folder Hydra started (``.hydra/``) with no complete metrics.json nor failed.json."""

    folder: Path
    name: str
    overrides: list[str]


@dataclass(frozen=True)
class Sweep:
    """A sweep folder's ``sweep.json``: when it started, how many jobs, their overrides."""

    folder: Path
    name: str
    started: str
    total: int | None
    planned: list[list[str]]


@dataclass(frozen=True)
class Found:
    """Everything :func:`scan` finds below a folder (each list sorted by folder)."""

    runs: list[Run]
    failed: list[FailedRun]
    started: list[StartedRun]
    sweeps: list[Sweep]


def scan(path: Path, *, skip: Path | None = None) -> Found:
    """Complete, failed and started run folders and sweep records at or below ``path``.

    Parameters
    ----------
    path : Path
        A run folder or a folder of run folders (any depth).
    skip : Path, optional
        A folder not to look into (the report's own output folder).

    Returns
    -------
    Found
        ``runs``: folders whose ``metrics.json`` parses and has ``"status": "complete"``;
        ``failed``: folders with a ``failed.json`` and no complete ``metrics.json``;
        ``started``: folders with a ``.hydra/`` folder and neither; ``sweeps``: every
        ``sweep.json`` that parses.
    """
    root = path.resolve()
    skipped = skip.resolve() if skip is not None else None
    found = Found(runs=[], failed=[], started=[], sweeps=[])
    for current, folders, files in os.walk(root):
        here = Path(current)
        # Hidden folders (.hydra, the sweep's .jobs) hold no run folder.
        folders[:] = sorted(
            f for f in folders if not f.startswith(".") and (skipped is None or here / f != skipped)
        )
        name = here.relative_to(root).as_posix()
        if SWEEP in files:
            sweep = _read_sweep(here / SWEEP, name)
            if sweep is not None:
                found.sweeps.append(sweep)
        if METRICS in files:
            metrics = completed_metrics(here)
            if metrics is not None:
                found.runs.append(Run(folder=here, name=name, metrics=metrics))
                continue
        if FAILED in files:
            record = read_json(here / FAILED) or {}
            found.failed.append(
                FailedRun(
                    folder=here,
                    name=name,
                    error=str(record.get("error", "failed.json does not parse")),
                    traceback=str(record.get("traceback", "")),
                    overrides=[str(o) for o in record.get("overrides") or []],
                    record=record,
                )
            )
        elif (here / HYDRA).is_dir():
            found.started.append(
                StartedRun(folder=here, name=name, overrides=_hydra_overrides(here / HYDRA))
            )
    return found


def find_runs(path: Path, *, skip: Path | None = None) -> tuple[list[Run], list[FailedRun]]:
    """Complete and failed run folders at or below ``path`` (see :func:`scan`)."""
    found = scan(path, skip=skip)
    return found.runs, found.failed


def _read_sweep(path: Path, name: str) -> Sweep | None:
    record = read_json(path)
    if record is None:
        return None
    planned = record.get("planned")
    total = record.get("total")
    return Sweep(
        folder=path.parent,
        name=name,
        started=str(record.get("started", "")),
        total=total if isinstance(total, int) and not isinstance(total, bool) else None,
        planned=[[str(o) for o in job] for job in planned if isinstance(job, list)]
        if isinstance(planned, list)
        else [],
    )


def _hydra_overrides(folder: Path) -> list[str]:
    """The task overrides Hydra saved (``.hydra/overrides.yaml``); none if unreadable."""
    try:
        overrides = yaml.safe_load((folder / "overrides.yaml").read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):
        return []
    return [str(o) for o in overrides] if isinstance(overrides, list) else []


def _fingerprint(record: dict[str, Any]) -> dict[str, Any]:
    fingerprint = record.get("fingerprint")
    return fingerprint if isinstance(fingerprint, dict) else {}


def _digest(record: dict[str, Any]) -> str | None:
    digest = _fingerprint(record).get("digest")
    return digest if isinstance(digest, str) and digest else None


def _part(record: dict[str, Any], name: str) -> str:
    parts = _fingerprint(record).get("parts")
    value = parts.get(name) if isinstance(parts, dict) else None
    return value if isinstance(value, str) and value else UNKNOWN


def _finished(record: dict[str, Any], file: Path) -> float:
    text = record.get("finished_at")
    if isinstance(text, str):
        try:
            return datetime.fromisoformat(text).timestamp()  # naive: local time
        except ValueError:
            pass
    try:
        return file.stat().st_mtime
    except OSError:
        return math.nan


def condition_keys(runs: Sequence[Run]) -> list[str]:
    """The ``params`` keys whose value differs between runs (sorted); none for one run.

    The seed, the name, the task's settings, Hydra's and output settings are left out
    (see :data:`NOT_CONDITIONS`); a key missing from some runs counts as the value
    ``None``. A model's own settings (``model.*``: the model is a grouping key of its
    own) are conditions only where they differ between runs of the same model — a sweep
    over ``model.options.source_model.smoothness``, say.
    """
    keys = sorted({key for run in runs for key in run.params})
    by_model: dict[str, list[Run]] = {}
    for run in runs:
        by_model.setdefault(run.model, []).append(run)
    conditions = []
    for key in keys:
        if key in NOT_CONDITIONS or key.startswith(NOT_CONDITION_PREFIXES):
            continue
        groups = by_model.values() if key.startswith(MODEL_PREFIX) else [runs]
        if any(len({canonical(run.params.get(key)) for run in group}) > 1 for group in groups):
            conditions.append(key)
    return conditions


def condition_of(run: Run, conditions: Sequence[str]) -> tuple[Any, ...]:
    """The run's values of the condition keys."""
    return tuple(run.params.get(key) for key in conditions)


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
