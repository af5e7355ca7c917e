"""Collect the runs of a folder: complete and failed runs, conditions, examples, audio.

A run folder counts when its ``metrics.json`` parses and says ``"status": "complete"``;
one with ``failed.json`` instead is listed as failed; anything else (a run still going,
or killed) is ignored, as is the report folder itself. A *condition* parameter is a key
of the runs' flattened config (``params``) whose value differs between the complete
separation runs, except the seed, the name, the task's and the model's own keys (the
model is a grouping key of its own) and settings that cannot change a score (Hydra,
output, data location, SDR tracking).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from experiments.report.text import canonical, mean
from experiments.runfolder import FAILED, METRICS, completed_metrics, read_json

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

    def means(self) -> dict[str, float]:
        """SDR, SIR, SAR and ΔSDR averaged over the reference sources (NaN if absent)."""
        improvements = self.metrics.get("improvements") or {}
        values = {key: self.scores.get(key) for key in ("SDR", "SIR", "SAR")}
        values["ΔSDR"] = improvements.get("ΔSDR")
        return {key: mean(value) for key, value in values.items()}

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
