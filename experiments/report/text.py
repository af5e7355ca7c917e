"""How values read in tables, labels and file names of the report (one place)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

DASH = "\u2013"  # en dash


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def sort_key(value: Any) -> tuple[int, float, str]:
    if is_number(value):
        return (0, float(value), "")
    if value is None:
        return (2, 0.0, "")
    return (1, 0.0, canonical(value))


def mean(values: Any) -> float:
    if not isinstance(values, list) or not values:
        return math.nan
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean())


def item(values: Any, index: int) -> Any:
    return values[index] if isinstance(values, list) and index < len(values) else None


def csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def show(value: Any) -> str:
    """A parameter value for a table cell or a label."""
    if value is None:
        return DASH
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def number(value: Any) -> str:
    if not (is_number(value) and math.isfinite(value)):
        return DASH
    return f"{0.0 if round(value, 2) == 0 else value:.2f}"  # no "-0.00"


def mean_ci_text(mean: float, half: float | None) -> str:
    if not math.isfinite(mean):
        return DASH
    mean = 0.0 if round(mean, 2) == 0 else mean  # no "-0.00"
    return f"{mean:.2f} ± {DASH if half is None else f'{half:.2f}'}"


def condition_labels(conditions: Sequence[str], values: Sequence[Any]) -> list[str]:
    return [f"{key.split('.')[-1]}={show(v)}" for key, v in zip(conditions, values, strict=True)]


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "parameter"
