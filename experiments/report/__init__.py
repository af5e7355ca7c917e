"""Report of a run folder or a sweep: results table, summary with confidence intervals, plots.

``mnmf-report PATH [--out DIR] [--examples N]`` (or ``python -m experiments.report``)
reads every run folder below ``PATH`` (any depth) written by :mod:`experiments.run` and
writes, into ``--out`` (default ``PATH/report/``):

- ``results.csv``: one row per run × reference source (scores, improvements, mixture
  scores, separation time and every *condition* parameter);
- ``report.md``: the summary table (model × condition: mean ± 95 % CI over runs), the
  runs, links to the plots and the failed runs;
- ``report.html``: a static page (inline CSS, no script) with the same tables, the plots,
  audio players and figures of example runs (the median-ΔSDR run of each model), the
  other runs (e.g. ``task=smooth_study``) and the failed runs;
- ``img/``: PNG plots (ΔSDR against each numeric condition, ΔSDR box plot, convergence
  curves, SDR during fitting).

The package is split by what it does: :mod:`~experiments.report.collect` (find the
runs, conditions, examples), :mod:`~experiments.report.statistics` (means and
confidence intervals), :mod:`~experiments.report.plots` and
:mod:`~experiments.report.render` (CSV, Markdown, and HTML from a Jinja2 template).

Paths in the report are relative, so the report folder can be opened in place or moved
together with the runs. To look at the page in a headless browser::

    mnmf-report outputs/sweeps/demo
    chromium --headless --no-sandbox --disable-gpu --screenshot=/tmp/report.png \\
        --window-size=1200,2400 file://$PWD/outputs/sweeps/demo/report/report.html
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from experiments.report.collect import (
    FailedRun,
    Run,
    audio_files,
    choose_examples,
    condition_keys,
    condition_of,
    find_runs,
)
from experiments.report.plots import Plot, make_plots
from experiments.report.render import (
    Context,
    csv_text,
    render_html,
    render_markdown,
    results_columns,
    results_rows,
)
from experiments.report.statistics import SUMMARY_METRICS, Group, mean_ci, summarize
from experiments.report.text import DASH
from experiments.runfolder import FAILED, METRICS
from mnmf.data.io import atomic_write

__all__ = [
    "DASH",
    "SUMMARY_METRICS",
    "Context",
    "FailedRun",
    "Group",
    "Plot",
    "Run",
    "audio_files",
    "build_report",
    "choose_examples",
    "condition_keys",
    "condition_of",
    "find_runs",
    "main",
    "make_plots",
    "mean_ci",
    "summarize",
]


def build_report(path: Path, *, out: Path | None = None, examples: int = 1) -> Path:
    """Write ``results.csv``, ``report.md``, ``report.html`` and ``img/`` for ``path``.

    Parameters
    ----------
    path : Path
        A run folder, or a folder with run folders at any depth.
    out : Path, optional
        The report folder; ``path/report`` by default. It is never read as runs.
    examples : int
        How many example runs per model get audio players and figures in the HTML.

    Returns
    -------
    Path
        The report folder.

    Raises
    ------
    ValueError
        If ``path`` is not a folder or holds no complete or failed run.
    """
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"{path} is not a folder")
    out = Path(out) if out is not None else path / "report"
    runs, failed = find_runs(path, skip=out)
    if not runs and not failed:
        raise ValueError(
            f"no runs in {path}: no folder below it has a complete {METRICS} or a {FAILED}"
        )
    separations = [run for run in runs if run.is_separation]
    others = [run for run in runs if not run.is_separation]
    conditions = condition_keys(separations)
    groups = summarize(separations, conditions)

    columns = results_columns(conditions)
    text = csv_text(results_rows(runs, conditions), columns)
    atomic_write(out / "results.csv", lambda t: Path(t).write_text(text, encoding="utf-8"))
    plots = make_plots(separations, groups, conditions, folder=out / "img")
    chosen = choose_examples(separations, count=examples)

    context = Context(
        path=path,
        out=out,
        runs=runs,
        separations=separations,
        others=others,
        failed=failed,
        conditions=conditions,
        groups=groups,
        plots=plots,
        examples=chosen,
        generated=datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
    )
    markdown = render_markdown(context)
    page = render_html(context)
    atomic_write(out / "report.md", lambda t: Path(t).write_text(markdown, encoding="utf-8"))
    atomic_write(out / "report.html", lambda t: Path(t).write_text(page, encoding="utf-8"))
    return out


def main(argv: list[str] | None = None) -> int:
    """``mnmf-report PATH [--out DIR] [--examples N]``; prints where report.html is.

    Returns 0 (the exit status: the console script passes the return value to
    :func:`sys.exit`); :func:`build_report` returns the report folder.
    """
    parser = argparse.ArgumentParser(
        prog="mnmf-report",
        description="Summarize a run folder or a sweep of experiments.run into "
        "results.csv, report.md, report.html and img/.",
    )
    parser.add_argument("path", type=Path, help="a run folder or a sweep folder (any depth)")
    parser.add_argument(
        "--out", type=Path, default=None, help="report folder (default: PATH/report)"
    )
    parser.add_argument(
        "--examples",
        type=int,
        default=1,
        help="example runs per model with audio players and figures (default: 1)",
    )
    args = parser.parse_args(argv)
    try:
        out = build_report(args.path, out=args.out, examples=args.examples)
    except ValueError as error:
        parser.exit(2, f"mnmf-report: error: {error}\n")
    print(f"[mnmf-report] report: {(out / 'report.html').resolve()}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
