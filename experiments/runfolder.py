"""What a run folder holds, shared by :mod:`experiments.run` and :mod:`experiments.report`.

``metrics.json`` is written last and atomically: a folder whose ``metrics.json`` parses
and says ``"status": "complete"`` is a finished run. A run that raised writes
``failed.json`` (error, traceback, overrides) instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

METRICS = "metrics.json"
FAILED = "failed.json"


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``, or None if it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def completed_metrics(folder: Path) -> dict[str, Any] | None:
    """The run's metrics if its ``metrics.json`` parses and says complete, else None."""
    metrics = read_json(folder / METRICS)
    return metrics if metrics is not None and metrics.get("status") == "complete" else None
