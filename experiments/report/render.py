"""Render the report: ``results.csv``, ``report.md`` and ``report.html`` (a Jinja2 template).

Everything shown is computed once into a :class:`Context`; the Markdown and the HTML
show the same tables. The page is static (inline CSS, no script) with relative links.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from experiments.report.collect import FailedRun, Run, audio_files, condition_of
from experiments.report.plots import Plot
from experiments.report.statistics import SUMMARY_METRICS, Group
from experiments.report.text import DASH, csv_value, item, mean_ci_text, number, show

CSV_SCORES = ("SDR", "SIR", "SAR", "ISR")


def results_rows(runs: Sequence[Run], conditions: Sequence[str]) -> list[dict[str, Any]]:
    """One row per run × reference source (one row with empty scores for an unscored run)."""
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
        scores = run.scores
        mixture = m.get("mixture_scores") or {}
        improvements = m.get("improvements") or {}
        base["separate_seconds"] = (m.get("timings") or {}).get("separate")
        n_sources = len(scores.get("SDR") or [])
        if n_sources == 0:
            rows.append(base | {"source": None})
            continue
        for j in range(n_sources):
            row = dict(base, source=j + 1)
            row |= {key: item(scores.get(key), j) for key in CSV_SCORES}
            row |= {key: item(improvements.get(key), j) for key in ("ΔSDR", "ΔSIR")}
            row |= {f"mixture_{key}": item(mixture.get(key), j) for key in ("SDR", "SIR")}
            rows.append(row)
    return rows


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

    def link(self, target: Path) -> str:
        """URL of ``target`` relative to the report folder (POSIX, percent-encoded)."""
        relative = os.path.relpath(target.resolve(), self.out.resolve())  # same symlinks
        return quote(Path(relative).as_posix(), safe="/")

    def counts(self) -> str:
        scored = sum(run.scored for run in self.separations)
        parts = [
            f"{len(self.runs)} complete run(s)",
            f"{len(self.separations)} separation ({scored} scored)",
        ]
        if self.others:
            parts.append(f"{len(self.others)} other")
        return ", ".join(parts) + f"; {len(self.failed)} failed"

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


def render_markdown(context: Context) -> str:
    """report.md: counts, summary table, plots, runs, other runs and failed runs."""
    lines = [
        "# Separation report",
        "",
        f"- Path: `{context.path}`",
        f"- Runs: {context.counts()}",
        f"- Conditions: {', '.join(f'`{c}`' for c in context.conditions) or 'none'}",
        f"- Generated: {context.generated}; per-run results: [results.csv](results.csv)",
        "",
        "## Summary",
        "",
    ]
    if context.groups:
        lines += [
            "Mean over runs ± 95 % confidence half-width (Student t) of the per-run means "
            f"over sources; {DASH}: one run.",
            "",
            *_markdown_table(context.summary_header(), context.summary_rows()),
        ]
    else:
        lines.append("No scored runs.")
    if context.plots:
        lines += ["", "## Plots", ""]
        for plot in context.plots:
            lines += [f"![{plot.title}]({context.link(plot.path)})", ""]
    if context.separations:
        lines += ["", "## Runs", "", *_markdown_table(context.runs_header(), context.runs_rows())]
    if context.others:
        lines += ["", "## Other runs", ""]
        for run in context.others:
            lines.append(f"- `{run.name}` ({run.task}, {run.model})")
            lines += [f"  - [{p.name}]({context.link(p)})" for p in run.figures()]
    if context.failed:
        lines += ["", "## Failed runs", ""]
        rows = [[run.name, run.error] for run in context.failed]
        lines += _markdown_table(["run", "error"], rows)
    return "\n".join(lines) + "\n"


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(_markdown_cell(c) for c in cells) + " |"

    return [line(header), "|" + "|".join("---" for _ in header) + "|", *map(line, rows)]


def _markdown_cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render_html(context: Context) -> str:
    """report.html from ``templates/report.html.j2`` (autoescaped)."""
    view = {
        "title": context.path.resolve().name,
        "path": str(context.path),
        "counts": context.counts(),
        "conditions": context.conditions,
        "generated": context.generated,
        "dash": DASH,
        "summary_header": context.summary_header(),
        "summary_rows": context.summary_rows() if context.groups else [],
        "plots": [{"link": context.link(plot.path), "title": plot.title} for plot in context.plots],
        "examples": [
            (model, [_example(context, run) for run in runs])
            for model, runs in context.examples.items()
        ],
        "runs_header": context.runs_header(),
        "runs_rows": context.runs_rows(),
        "others": [_example(context, run) for run in context.others],
        "failed": context.failed,
    }
    return _template().render(**view)


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
        "players": [(caption, context.link(path)) for caption, path in audio_files(run)],
        "figures": [(context.link(figure), figure.name) for figure in run.figures()],
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
