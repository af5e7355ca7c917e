"""Render the report: ``results.csv``, ``report.md`` and ``report.html`` (a Jinja2 template).

Everything shown is computed once into a :class:`Context`; the Markdown and the HTML
show the same tables. The page is static (inline CSS, no script); every link is relative
and stays inside the report folder: the runs' audio and figures are placed under
``media/`` (see :mod:`~experiments.report.media`) as they are linked.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from experiments.report.bookkeeping import Duplicate, Unfinished
from experiments.report.collect import FailedRun, Run, audio_files, condition_of
from experiments.report.media import Media
from experiments.report.plots import Plot
from experiments.report.statistics import (
    BOOTSTRAP_MIN_PAIRS,
    BOOTSTRAP_RESAMPLES,
    SOURCE_METRICS,
    SUMMARY_METRICS,
    ZERO_MIXTURE_SDR,
    Baseline,
    Comparison,
    Group,
    SourceGroup,
    mixture_sdr_is_zero,
)
from experiments.report.task_tables import TaskTable
from experiments.report.text import (
    DASH,
    canonical,
    condition_labels,
    csv_value,
    interval_text,
    item,
    mean_ci_text,
    number,
    p_text,
    show,
    sort_key,
)

CSV_SCORES = ("SDR", "SIR", "SAR", "ISR")
#: A per-estimate spectrogram written by experiments.figures.run_figures.
ESTIMATE_SPECTROGRAM = re.compile(r"spectrogram_estimate_(\d+)\.png")
#: Fewest pairs for which a two-sided Wilcoxon signed-rank p can fall below 0.05.
WILCOXON_MIN_PAIRS = 6


def results_rows(runs: Sequence[Run], conditions: Sequence[str]) -> list[dict[str, Any]]:
    """One row per run × reference source (one row with empty scores for an unscored run).

    A value that means nothing (the SAR of a ``mixture`` run) is left empty.
    """
    rows = []
    for run in runs:
        m = run.metrics
        base: dict[str, Any] = {
            "run": run.name,
            "name": m.get("name"),
            "task": run.task,
            "model": run.model,
            "method": m.get("method"),
            "data": m.get("data"),
            "seed": m.get("seed"),
        }
        base |= {key: run.params.get(key) for key in conditions}
        mixture = m.get("mixture_scores") or {}
        base["separate_seconds"] = (m.get("timings") or {}).get("separate")
        n_sources = len(run.values("SDR"))
        if n_sources == 0:
            rows.append(base | {"source": None})
            continue
        for j in range(n_sources):
            row = dict(base, source=j + 1)
            row |= {key: _finite_or_none(item(run.values(key), j)) for key in CSV_SCORES}
            row |= {key: _finite_or_none(item(run.values(key), j)) for key in ("ΔSDR", "ΔSIR")}
            row |= {f"mixture_{key}": item(mixture.get(key), j) for key in ("SDR", "SIR")}
            rows.append(row)
    return rows


def _finite_or_none(value: Any) -> Any:
    """NaN (absent or meaningless) → None (an empty cell); ±inf stays ``inf``/``-inf``."""
    return None if isinstance(value, float) and math.isnan(value) else value


def results_columns(conditions: Sequence[str]) -> list[str]:
    """The columns of ``results.csv``."""
    return [
        *("run", "name", "task", "model", "method", "data", "seed"),
        *conditions,
        "source",
        *CSV_SCORES,
        *("ΔSDR", "ΔSIR", "mixture_SDR", "mixture_SIR", "separate_seconds"),
    ]


def csv_text(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """CSV of the rows (``None`` → empty; lists as JSON; floats in full precision)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_value(row.get(column)) for column in columns])
    return buffer.getvalue()


@dataclass(frozen=True)
class Context:
    """Everything the Markdown and HTML renderers show."""

    path: Path
    out: Path
    runs: list[Run]
    separations: list[Run]
    others: list[Run]
    failed: list[FailedRun]
    conditions: list[str]
    groups: list[Group]
    plots: list[Plot]
    examples: dict[str, list[Run]]
    generated: str
    sources: list[SourceGroup]
    baseline: Baseline | None
    comparisons: list[Comparison]
    duplicates: list[Duplicate]
    unfinished: Unfinished
    planned: int | None  # jobs the sweep.json files plan (None: not known)
    sweeps: int  # sweep.json files found
    warnings: list[str]
    media: Media
    task_tables: list[TaskTable] = field(default_factory=list)

    def link(self, target: Path) -> str:
        """URL of ``target`` (inside the report folder) relative to it, percent-encoded."""
        relative = os.path.relpath(target.resolve(), self.out.resolve())  # same symlinks
        return quote(Path(relative).as_posix(), safe="/")

    def asset(self, run: Run, file: Path) -> str:
        """URL of the report's own copy of a run's file (placed under ``media/``)."""
        return self.link(self.media.place(file, run=run.name))

    def counts(self) -> str:
        scored = sum(run.scored for run in self.separations)
        unscored = len(self.separations) - scored
        kinds = [f"{scored} scored separation run(s)"]
        if unscored:
            kinds.append(f"{unscored} unscored runs")
        if self.others:
            kinds.append(f"{len(self.others)} other")
        parts = [
            f"{len(self.runs)} complete run(s) ({', '.join(kinds)})",
            f"{len(self.failed)} failed",
            f"{self.unfinished.count} unfinished (not started or still running / interrupted)",
        ]
        if self.planned is not None:
            parts[-1] += f" of {self.planned} planned"
        elif self.sweeps:
            parts[-1] += " (sweep.json has no plan: jobs not yet started are not known)"
        elif not any(run.name == "." for run in self.runs):
            parts[-1] += " (no sweep.json: jobs not yet started are not known)"
        text = "; ".join(parts)
        if self.duplicates:
            text += f"; {len(self.duplicates)} duplicate run(s) dropped (same fingerprint)"
        return text

    def summary_header(self) -> list[str]:
        return ["model", *self.conditions, "n runs", *(f"{m} (dB)" for m in SUMMARY_METRICS)]

    def summary_rows(self) -> list[list[str]]:
        return [
            [
                group.model,
                *(show(value) for value in group.condition),
                str(len(group.runs)),
                *(mean_ci_text(*group.stats[m]) for m in SUMMARY_METRICS),
            ]
            for group in self.groups
        ]

    def notes(self) -> list[str]:
        """What a reader needs to read the summary right (shown under it)."""
        notes = []
        coincide = all(
            abs(group.stats["SDR"][0] - group.stats["ΔSDR"][0]) < 2 * ZERO_MIXTURE_SDR
            for group in self.groups
        )  # as they must when the mixture's mean SDR is 0 (ΔSDR = SDR - mixture SDR)
        if mixture_sdr_is_zero(self.groups) and coincide:
            notes.append(
                "Mean SDR and mean ΔSDR coincide here: the mixture's SDR averaged over the "
                f"sources is 0 dB (|mean| < {ZERO_MIXTURE_SDR} dB) in every group. With 2 "
                "sources the mixture's SDRs against the two references are opposite "
                "(10 log₁₀ of the ratio of the two images' powers, and its negative), so "
                "their mean is 0 and mean ΔSDR = mean SDR - mean mixture SDR = mean SDR. "
                "Per source they differ: see the per-source table."
            )
        if any(run.is_mixture for group in self.groups for run in group.runs):
            notes.append(
                f"SAR of the `mixture` model: {DASH}. The mixture as estimate has no "
                "artifacts, so its SAR is undefined (BSS Eval returns numerical noise, "
                "about 170 dB); it is left out of the tables and results.csv."
            )
        return notes

    def source_header(self) -> list[str]:
        return [
            "model",
            *self.conditions,
            "source",
            "n runs",
            *(f"{m} (dB)" for m in SOURCE_METRICS),
        ]

    def source_rows(self) -> list[list[str]]:
        return [
            [
                row.model,
                *(show(value) for value in row.condition),
                f"{row.source} ({row.name})" if row.name else str(row.source),
                str(row.n),
                *(mean_ci_text(*row.stats[m]) for m in SOURCE_METRICS),
            ]
            for row in self.sources
        ]

    def baseline_text(self) -> str:
        if self.baseline is None:
            return ""
        b = self.baseline
        why = (
            "chosen with --baseline"
            if b.chosen
            else "the highest mean ΔSDR over all its scored runs; choose another with "
            "`mnmf-report --baseline MODEL`"
        )
        return f"Baseline: `{b.model}` (mean ΔSDR {number(b.mean)} dB over {b.n} run(s); {why})."

    def comparison_sentence(self) -> str:
        resamples = f"{BOOTSTRAP_RESAMPLES:,}".replace(",", "\u2009")  # thin space
        return (
            "Each row pairs a model's per-run ΔSDR (mean over sources) with the baseline's "
            "on the same scenes (same condition, seed and data) and summarizes the "
            "differences model - baseline: their mean, 95 % intervals (Student t; "
            f"bootstrap percentile over {resamples} resamples with a fixed seed, shown from "
            f"{BOOTSTRAP_MIN_PAIRS} pairs), and the two-sided Wilcoxon signed-rank p "
            f"({DASH}: under 2 pairs or all differences 0); an interval that excludes 0 "
            "tells the two models apart on these scenes."
        )

    def comparison_caveat(self) -> str:
        small = [c for c in self.comparisons if 0 < c.n < WILCOXON_MIN_PAIRS]
        if not small:
            return ""
        return (
            f"With fewer than {WILCOXON_MIN_PAIRS} pairs a two-sided Wilcoxon p cannot fall "
            "below 0.05 (the smallest exact p for 5 pairs is 0.0625): run more seeds to "
            "tell close models apart."
        )

    def comparison_header(self) -> list[str]:
        return [
            "model",
            *self.conditions,
            "baseline",
            "n pairs",
            "mean difference (dB)",
            "95 % CI, t (dB)",
            "95 % CI, bootstrap (dB)",
            "Wilcoxon p",
        ]

    def comparison_rows(self) -> list[list[str]]:
        return [
            [
                c.model,
                *(show(value) for value in c.condition),
                c.baseline,
                str(c.n),
                number(c.mean),
                interval_text(c.t_interval),
                interval_text(c.bootstrap),
                p_text(c.p),
            ]
            for c in self.comparisons
        ]

    def runs_header(self) -> list[str]:
        return ["run", "model", *self.conditions, "seed", "SDR", "ΔSDR", "separate (s)"]

    def runs_rows(self) -> list[list[str]]:
        rows = []
        for run in self.separations:
            means = run.means()
            seconds = (run.metrics.get("timings") or {}).get("separate")
            rows.append(
                [
                    run.name,
                    run.model,
                    *(show(value) for value in condition_of(run, self.conditions)),
                    show(run.metrics.get("seed")),
                    number(means["SDR"]),
                    number(means["ΔSDR"]),
                    number(seconds),
                ]
            )
        return rows

    def unfinished_lines(self) -> tuple[list[str], list[str]]:
        """(planned jobs not started, started folders not finished), one line each."""
        not_started = [
            (f"{sweep.name}: " if sweep.name != "." else "") + " ".join(job)
            for sweep, job in self.unfinished.not_started
        ]
        started = [
            run.name + (f" ({' '.join(run.overrides)})" if run.overrides else "")
            for run in self.unfinished.started
        ]
        return not_started, started

    def listening(self) -> list[dict[str, Any]]:
        """The unscored separation runs, methods side by side per data item × condition.

        Returns
        -------
        list of dict
            ``title``, ``mixture`` (link or None) and ``rows``: per run (by model, then
            seed) ``label``, ``name``, ``estimates`` (caption, audio link, spectrogram
            link or None) and ``figures`` (link, caption) not shown beside an estimate.
        """
        items: dict[str, list[Run]] = {}
        for run in self.separations:
            if not run.scored:
                key = canonical(
                    [
                        run.metrics.get("data"),
                        run.params.get("data.path"),
                        condition_of(run, self.conditions),
                        run.part("data"),
                    ]
                )
                items.setdefault(key, []).append(run)
        shown = []
        for members in items.values():
            members.sort(key=lambda r: (r.model, sort_key(r.seed), r.name))
            first = members[0]
            mixture = first.file((first.metrics.get("files") or {}).get("mixture"))
            labels = condition_labels(self.conditions, condition_of(first, self.conditions))
            path = first.params.get("data.path")
            title = " · ".join(
                [f"data {first.metrics.get('data')}", *([f"{path}"] if path else []), *labels]
            )
            shown.append(
                {
                    "title": title,
                    "mixture": None if mixture is None else self.asset(first, mixture),
                    "rows": [self._listening_row(run) for run in members],
                    "key": (tuple(map(sort_key, condition_of(first, self.conditions))), title),
                }
            )
        return sorted(shown, key=lambda entry: entry["key"])

    def _listening_row(self, run: Run) -> dict[str, Any]:
        files = run.metrics.get("files") or {}
        figures = run.figures()
        spectrograms = {
            int(match.group(1)): figure
            for figure in figures
            if (match := ESTIMATE_SPECTROGRAM.fullmatch(figure.name))
        }
        estimates = []
        for j, name in enumerate(files.get("estimates") or []):
            audio = run.file(name)
            figure = spectrograms.get(j + 1)
            estimates.append(
                (
                    f"estimate {j + 1}",
                    None if audio is None else self.asset(run, audio),
                    None if figure is None else self.asset(run, figure),
                )
            )
        others = [f for f in figures if f not in spectrograms.values()]
        return {
            "label": f"{run.model} · seed {show(run.seed)}",
            "name": run.name,
            "estimates": estimates,
            "figures": [(self.asset(run, f), f.name) for f in others],
        }


def render_markdown(context: Context) -> str:
    """report.md: counts, summary, comparison, per-source table, plots and the runs."""
    lines = [
        "# Separation report",
        "",
        f"- Path: `{context.path}`",
        f"- Runs: {context.counts()}",
        f"- Conditions: {', '.join(f'`{c}`' for c in context.conditions) or 'none'}",
        f"- Generated: {context.generated}; per-run results: [results.csv](results.csv)",
    ]
    for warning in context.warnings:
        lines.append(f"- **Warning** (--allow-mixed-fingerprints): {warning}")
    lines += ["", "## Summary", ""]
    if context.groups:
        lines += [
            "Mean over runs ± 95 % confidence half-width (Student t) of the per-run means "
            f"over sources; ± {DASH}: one run.",
            "",
            *_markdown_table(context.summary_header(), context.summary_rows()),
        ]
        lines += [line for note in context.notes() for line in ("", f"Note: {note}")]
    else:
        lines.append("No scored runs.")
    if context.baseline is not None:
        lines += ["", "## Paired comparison with the baseline", "", context.baseline_text()]
        lines += ["", context.comparison_sentence()]
        if context.comparison_caveat():
            lines += ["", context.comparison_caveat()]
        if context.comparisons:
            lines += ["", *_markdown_table(context.comparison_header(), context.comparison_rows())]
        else:
            lines += ["", "No other model to compare with."]
    if context.sources:
        lines += [
            "",
            "## Per source",
            "",
            "Mean ± 95 % CI over runs of each reference source's scores; mixture SDR is the "
            "unprocessed mixture's SDR against that source (ΔSDR = SDR - mixture SDR).",
            "",
            *_markdown_table(context.source_header(), context.source_rows()),
        ]
    if context.plots:
        lines += ["", "## Plots", ""]
        for plot in context.plots:
            lines += [f"![{plot.title}]({context.link(plot.path)})", ""]
    listening = context.listening()
    if listening:
        lines += ["", "## Unscored runs: methods side by side", "", _UNSCORED_SENTENCE]
        for entry in listening:
            lines += ["", f"### {entry['title']}", ""]
            if entry["mixture"]:
                lines.append(f"- mixture: [mixture]({entry['mixture']})")
            for row in entry["rows"]:
                links = [f"[{caption}]({audio})" for caption, audio, _ in row["estimates"] if audio]
                links += [
                    f"[spectrogram {caption}]({figure})"
                    for caption, _, figure in row["estimates"]
                    if figure
                ]
                links += [f"[{caption}]({figure})" for figure, caption in row["figures"]]
                lines.append(f"- **{row['label']}** (`{row['name']}`): " + ", ".join(links))
    if context.separations:
        lines += ["", "## Runs", "", *_markdown_table(context.runs_header(), context.runs_rows())]
    for table in context.task_tables:
        lines += ["", f"## Task {table.task}", "", table.sentence, ""]
        lines += _markdown_table(table.header, table.rows)
    if context.others:
        lines += ["", "## Other runs", ""]
        for run in context.others:
            lines.append(f"- `{run.name}` ({run.task}, {run.model})")
            lines += [f"  - [{p.name}]({context.asset(run, p)})" for p in run.figures()]
    if context.unfinished.count:
        lines += ["", "## Unfinished runs", "", _unfinished_title(context), ""]
        not_started, started = context.unfinished_lines()
        if not_started:
            lines += ["Not started (planned in sweep.json, no run folder yet):", ""]
            lines += [f"- `{line}`" for line in not_started] + [""]
        if started:
            lines += ["Started, not finished (still running or interrupted):", ""]
            lines += [f"- `{line}`" for line in started]
    if context.duplicates:
        lines += ["", "## Duplicate runs", "", _DUPLICATES_SENTENCE, ""]
        rows = [[d.dropped, d.kept] for d in context.duplicates]
        lines += _markdown_table(["dropped run", "kept run"], rows)
    if context.failed:
        lines += ["", "## Failed runs", ""]
        rows = [[run.name, run.error] for run in context.failed]
        lines += _markdown_table(["run", "error"], rows)
    return "\n".join(lines) + "\n"


_UNSCORED_SENTENCE = (
    "Runs without references (nothing to score): per data item and condition, each "
    "method's estimates to listen to, with their spectrograms (dB re the mixture's peak). "
    "Estimates are in each method's own order: estimate 1 of two methods need not be the "
    "same source."
)
_DUPLICATES_SENTENCE = (
    "Runs with the same fingerprint digest (same config, code and data) are the same run: "
    "only the newest (finished_at, else metrics.json's time) counts."
)


def _unfinished_title(context: Context) -> str:
    return f"{context.unfinished.count} unfinished: not started or still running / interrupted."


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(_markdown_cell(c) for c in cells) + " |"

    return [line(header), "|" + "|".join("---" for _ in header) + "|", *map(line, rows)]


def _markdown_cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render_html(context: Context) -> str:
    """report.html from ``templates/report.html.j2`` (autoescaped)."""
    not_started, started = context.unfinished_lines()
    view = {
        "title": context.path.resolve().name,
        "path": str(context.path),
        "counts": context.counts(),
        "warnings": context.warnings,
        "conditions": context.conditions,
        "generated": context.generated,
        "dash": DASH,
        "summary_header": context.summary_header(),
        "summary_rows": context.summary_rows() if context.groups else [],
        "notes": [_code(note) for note in context.notes()],
        "baseline": _code(context.baseline_text()),
        "comparison_sentence": context.comparison_sentence(),
        "comparison_caveat": context.comparison_caveat(),
        "comparison_header": context.comparison_header(),
        "comparison_rows": context.comparison_rows(),
        "source_header": context.source_header(),
        "source_rows": context.source_rows(),
        "plots": [{"link": context.link(plot.path), "title": plot.title} for plot in context.plots],
        "examples": [
            (model, [_example(context, run) for run in runs])
            for model, runs in context.examples.items()
        ],
        "listening": context.listening(),
        "unscored_sentence": _UNSCORED_SENTENCE,
        "runs_header": context.runs_header(),
        "runs_rows": context.runs_rows(),
        "others": [_example(context, run) for run in context.others],
        "task_tables": context.task_tables,
        "unfinished_title": _unfinished_title(context) if context.unfinished.count else "",
        "not_started": not_started,
        "started": started,
        "duplicates": context.duplicates,
        "duplicates_sentence": _DUPLICATES_SENTENCE,
        "failed": context.failed,
    }
    return _template().render(**view)


def _code(text: str) -> Any:
    """Markdown's `code` spans as <code> in HTML (the rest escaped)."""
    from markupsafe import Markup, escape

    parts = str(escape(text)).split("`")
    return Markup(
        "".join(f"<code>{part}</code>" if i % 2 else part for i, part in enumerate(parts))
    )


def _example(context: Context, run: Run) -> dict[str, Any]:
    """What the page shows of one run: meta line, audio players, figures."""
    meta = [f"task {run.task}", f"data {run.metrics.get('data')}"]
    if run.is_separation:  # conditions are those of the separation runs
        meta += [
            f"{key} = {show(value)}"
            for key, value in zip(
                context.conditions, condition_of(run, context.conditions), strict=True
            )
        ]
    meta.append(f"seed {run.metrics.get('seed')}")
    if run.scored:
        means = run.means()
        meta.append(f"SDR {number(means['SDR'])} dB, ΔSDR {number(means['ΔSDR'])} dB")
    return {
        "name": run.name,
        "meta": " · ".join(meta),
        "players": [(caption, context.asset(run, path)) for caption, path in audio_files(run)],
        # Per-estimate spectrograms go beside the players of unscored runs only: a scored
        # run's estimate j wav is matched to reference j, its figures are not reordered.
        "figures": [
            (context.asset(run, figure), figure.name)
            for figure in run.figures()
            if not ESTIMATE_SPECTROGRAM.fullmatch(figure.name)
        ],
    }


@cache
def _template():  # -> jinja2.Template
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    return environment.get_template("report.html.j2")
