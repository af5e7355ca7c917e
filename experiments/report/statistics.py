"""Statistics of the report: per-run means over sources, then mean ± 95 % CI over runs;
per-source summaries; paired comparisons against a baseline model on the same scenes."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from experiments.report.collect import Run, condition_of
from experiments.report.text import canonical, sort_key

SUMMARY_METRICS = ("SDR", "SIR", "SAR", "ΔSDR")
#: Per-source table: the run's scores, its improvement, and the mixture's own SDR
#: (SDR - mixture SDR = ΔSDR, per source).
SOURCE_METRICS = ("SDR", "SIR", "SAR", "ΔSDR", "mixture SDR")
#: Bootstrap of the paired comparison: resamples, fixed seed, fewest pairs shown.
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 20_240_514
BOOTSTRAP_MIN_PAIRS = 5
#: Below this mean |SDR| of the mixture (dB), mean SDR and mean ΔSDR coincide.
ZERO_MIXTURE_SDR = 0.005


@dataclass(frozen=True)
class Group:
    """Summary of the scored runs of one model under one condition."""

    model: str
    condition: tuple[Any, ...]
    runs: list[Run]
    stats: dict[str, tuple[float, float | None]]  # metric → (mean, 95 % CI half-width)


def mean_ci(values: Iterable[float]) -> tuple[float, float | None]:
    """Mean and 95 % confidence half-width (Student t) of the values.

    NaN values (absent or meaningless) are left out. Returns ``(nan, None)`` for no
    value, ``(value, None)`` for one, and ``(±inf or nan, None)`` when a value is
    infinite (the mean is then infinite: shown as such, never averaged away).
    """
    array = np.asarray([v for v in values if not math.isnan(v)], dtype=np.float64)
    n = array.size
    if n == 0:
        return math.nan, None
    if not np.isfinite(array).all():
        with np.errstate(invalid="ignore"):
            return float(array.mean()), None  # +inf, -inf, or nan for both signs
    if n == 1:
        return float(array[0]), None
    half = stats.t.ppf(0.975, n - 1) * array.std(ddof=1) / math.sqrt(n)
    return float(array.mean()), float(half)


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


def mixture_sdr_is_zero(groups: Sequence[Group]) -> bool:
    """Whether every group's mean mixture SDR (mean over sources, then runs) is ~0 dB.

    Then mean SDR and mean ΔSDR coincide: with 2 sources the mixture's SDRs against the
    two references are opposite (SDR₁ = 10 log (s₁²/s₂²) = −SDR₂).
    """
    if not groups:
        return False
    for group in groups:
        value, _ = mean_ci(run.mixture_sdr() for run in group.runs)
        if not (math.isfinite(value) and abs(value) < ZERO_MIXTURE_SDR):
            return False
    return True


@dataclass(frozen=True)
class SourceGroup:
    """Summary of one reference source over the runs of a :class:`Group`."""

    model: str
    condition: tuple[Any, ...]
    source: int  # 1-based, the order of the references
    name: str  # the source's name where the config gives one, else ""
    n: int
    stats: dict[str, tuple[float, float | None]]  # SOURCE_METRICS → (mean, half-width)


def summarize_sources(groups: Sequence[Group]) -> list[SourceGroup]:
    """Mean ± 95 % CI over runs of every per-source score, for each group and source."""
    rows = []
    for group in groups:
        n_sources = max(len(run.values("SDR")) for run in group.runs)
        names = {tuple(run.source_names()) for run in group.runs}
        shared = next(iter(names)) if len(names) == 1 else ()
        for j in range(n_sources):
            members = [run for run in group.runs if j < len(run.values("SDR"))]
            values = {key: [_at(run.values(key), j) for run in members] for key in SOURCE_METRICS}
            rows.append(
                SourceGroup(
                    model=group.model,
                    condition=group.condition,
                    source=j + 1,
                    name=shared[j] if j < len(shared) else "",
                    n=len(members),
                    stats={key: mean_ci(values[key]) for key in SOURCE_METRICS},
                )
            )
    return rows


def _at(values: list[float], index: int) -> float:
    return values[index] if index < len(values) else math.nan


@dataclass(frozen=True)
class Baseline:
    """The model every other one is compared with, and why."""

    model: str
    mean: float  # mean ΔSDR over its scored runs
    n: int
    chosen: bool  # given by --baseline (else: the highest mean ΔSDR)


def choose_baseline(runs: Sequence[Run], *, model: str | None = None) -> Baseline | None:
    """The baseline of the paired comparison: ``model``, else the best mean ΔSDR.

    Parameters
    ----------
    runs : sequence of Run
        The separation runs; only scored runs with a finite ΔSDR count.
    model : str, optional
        The baseline model (``mnmf-report --baseline``).

    Returns
    -------
    Baseline or None
        None when no run is scored.

    Raises
    ------
    ValueError
        If ``model`` has no scored run.
    """
    by_model: dict[str, list[float]] = {}
    for run in runs:
        value = run.means()["ΔSDR"]
        if run.scored and math.isfinite(value):
            by_model.setdefault(run.model, []).append(value)
    if model is not None:
        if model not in by_model:
            known = ", ".join(sorted(by_model)) or "none"
            raise ValueError(
                f"--baseline {model!r} has no scored run with a finite ΔSDR; "
                f"the scored models are: {known}"
            )
        return Baseline(model, float(np.mean(by_model[model])), len(by_model[model]), True)
    if not by_model:
        return None
    best = max(sorted(by_model), key=lambda m: float(np.mean(by_model[m])))
    return Baseline(best, float(np.mean(by_model[best])), len(by_model[best]), False)


@dataclass(frozen=True)
class Comparison:
    """A model against the baseline under one condition, paired on the same scenes.

    ``difference`` is model - baseline ΔSDR (mean over sources) per scene, in dB.
    """

    model: str
    condition: tuple[Any, ...]
    baseline: str
    differences: list[float]
    mean: float
    t_interval: tuple[float, float] | None
    bootstrap: tuple[float, float] | None
    p: float | None

    @property
    def n(self) -> int:
        return len(self.differences)


def scene_of(run: Run, conditions: Sequence[str]) -> str:
    """The scene a run separated: its condition values, seed and data fingerprint part.

    Two models' runs with the same scene separated the same mixture; a run without a
    fingerprint has the data part ``unknown``.
    """
    return canonical([condition_of(run, conditions), run.seed, run.part("data")])


def compare(runs: Sequence[Run], conditions: Sequence[str], *, baseline: str) -> list[Comparison]:
    """Every other model against ``baseline``, per condition, on the scenes both ran.

    Per scene a model's ΔSDR is its run's mean over sources (the mean of its runs if
    it has several, e.g. mixed fingerprints allowed); scenes where either value is not
    finite are left out. Sorted by condition, then model.
    """
    per: dict[tuple[str, str], dict[str, list[float]]] = {}  # (model, condition) → scenes
    conditions_seen: dict[str, tuple[Any, ...]] = {}
    for run in runs:
        if not run.scored:
            continue
        condition = condition_of(run, conditions)
        conditions_seen[canonical(condition)] = condition
        scenes = per.setdefault((run.model, canonical(condition)), {})
        scenes.setdefault(scene_of(run, conditions), []).append(run.means()["ΔSDR"])
    comparisons = []
    for (model, key), scenes in per.items():
        if model == baseline:
            continue
        reference = per.get((baseline, key), {})
        differences = []
        for scene, values in sorted(scenes.items()):
            if scene in reference:
                difference = float(np.mean(values)) - float(np.mean(reference[scene]))
                if math.isfinite(difference):
                    differences.append(difference)
        comparisons.append(
            Comparison(
                model=model,
                condition=conditions_seen[key],
                baseline=baseline,
                differences=differences,
                **paired_statistics(differences),
            )
        )
    return sorted(comparisons, key=lambda c: (tuple(map(sort_key, c.condition)), c.model))


def paired_statistics(differences: Sequence[float]) -> dict[str, Any]:
    """Mean, 95 % intervals (Student t; bootstrap percentile) and Wilcoxon p of differences.

    Parameters
    ----------
    differences : sequence of float
        Paired differences (finite).

    Returns
    -------
    dict
        ``mean`` (NaN for none), ``t_interval`` (None below 2 pairs), ``bootstrap``
        (the 2.5 and 97.5 percentiles of the means of :data:`BOOTSTRAP_RESAMPLES`
        resamples drawn by ``np.random.default_rng(BOOTSTRAP_SEED)``; None below
        :data:`BOOTSTRAP_MIN_PAIRS` pairs, where resampling so few values gives a
        handful of distinct means and no meaningful percentile) and ``p`` (two-sided
        Wilcoxon signed-rank; None below 2 pairs or when every difference is 0).
    """
    d = np.asarray(differences, dtype=np.float64)
    n = d.size
    result: dict[str, Any] = {"mean": float(d.mean()) if n else math.nan}
    result |= {"t_interval": None, "bootstrap": None, "p": None}
    if n < 2:
        return result
    half = float(stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / math.sqrt(n))
    result["t_interval"] = (result["mean"] - half, result["mean"] + half)
    if n >= BOOTSTRAP_MIN_PAIRS:
        rng = np.random.default_rng(BOOTSTRAP_SEED)
        means = d[rng.integers(0, n, size=(BOOTSTRAP_RESAMPLES, n))].mean(axis=1)
        low, high = np.percentile(means, [2.5, 97.5])
        result["bootstrap"] = (float(low), float(high))
    if np.any(d != 0):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                p = float(stats.wilcoxon(d).pvalue)
            except ValueError:
                p = math.nan
        result["p"] = p if math.isfinite(p) else None
    return result
