"""How values read in tables, labels and file names of the report (one place)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

DASH = "\u2014"  # em dash: no value, or a value that means nothing (the mixture's SAR)
INFINITY = "\u221e"
MINUS = "\u2212"


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


def number(value: Any, *, digits: int = 2) -> str:
    """A value in dB for a table: ``digits`` decimals, ``∞``/``−∞``, else ``—``."""
    if not is_number(value) or math.isnan(value):
        return DASH
    if math.isinf(value):
        return INFINITY if value > 0 else MINUS + INFINITY
    value = 0.0 if round(value, digits) == 0 else value  # no "-0.00"
    return f"{value:.{digits}f}"  # ASCII "-": numbers copy into a spreadsheet


def mean_ci_text(mean: float, half: float | None) -> str:
    """``mean ± half`` (``± —`` without a half-width); ``∞``/``−∞`` or ``—`` alone."""
    if not math.isfinite(mean):
        return number(mean)
    return f"{number(mean)} ± {DASH if half is None else number(half)}"


def interval_text(interval: tuple[float, float] | None) -> str:
    """``[low, high]`` in dB, or ``—``."""
    if interval is None:
        return DASH
    return f"[{number(interval[0])}, {number(interval[1])}]"


def p_text(p: float | None) -> str:
    """A p-value with 2 significant digits (``<0.001`` below), or ``—``."""
    if p is None or not math.isfinite(p):
        return DASH
    return "<0.001" if p < 0.001 else f"{p:.2g}"


def condition_labels(conditions: Sequence[str], values: Sequence[Any]) -> list[str]:
    return [f"{key.split('.')[-1]}={show(v)}" for key, v in zip(conditions, values, strict=True)]


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "parameter"
