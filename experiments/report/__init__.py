"""Report of a run folder or a sweep: results, comparisons with confidence, plots, audio.

``mnmf-report PATH [--out DIR] [--examples N] [--baseline MODEL]
[--allow-mixed-fingerprints]`` (or ``python -m experiments.report``) reads every run
folder below ``PATH`` (any depth) written by :mod:`experiments.run` and writes, into
``--out`` (default ``PATH/report/``):

- ``results.csv``: one row per run × reference source (scores, improvements, mixture
  scores, separation time and every *condition* parameter); a value that means nothing
  (the SAR of the ``mixture`` model) is left empty, infinite ones read ``inf``;
- ``report.md`` and ``report.html`` (a static page: inline CSS, no script) with the same
  tables:

  - the run counts: complete (scored, unscored, other), failed, *unfinished* (jobs
    ``sweep.json`` plans that have no result, and started folders — a ``.hydra/`` but
    neither a complete ``metrics.json`` nor ``failed.json`` — still running or
    interrupted, listed at the end), and duplicates dropped;
  - the summary: model × condition, mean ± 95 % CI (Student t) over runs of each run's
    mean over sources of SDR, SIR, SAR and ΔSDR, with notes where a value needs one
    (mean SDR = mean ΔSDR when the mixture's mean SDR is 0, as with 2 sources; the
    mixture model's SAR is "—": the mixture as estimate has no artifacts);
  - the **paired comparison**: per condition, every model's per-run ΔSDR (mean over
    sources) minus the baseline's on the same scenes (same condition values, seed and
    data fingerprint part): mean difference, 95 % intervals — Student t, and a
    bootstrap percentile interval (10 000 resamples, ``np.random.default_rng`` with a
    fixed seed) shown from 5 pairs on — and the two-sided Wilcoxon signed-rank p ("—"
    under 2 pairs or when every difference is 0), with n pairs. The baseline is
    ``--baseline MODEL``, else the model with the highest mean ΔSDR over all its scored
    runs (the report says which and why);
  - per-source tables (model × condition × reference source: SDR, SIR, SAR, ΔSDR and the
    mixture's own SDR, mean ± CI; in the HTML inside a ``<details>``);
  - the plots; audio players and figures of example runs (the median-ΔSDR run of each
    model); for unscored runs (a recording, no references) the methods side by side per
    data item and condition: each run's estimates with their spectrograms
    (``spectrogram_estimate_j.png`` of :func:`experiments.figures.run_figures`); the
    other runs (e.g. ``task=smooth_study``), the unfinished, duplicate and failed runs;
- ``img/``: PNG plots (ΔSDR against each numeric condition, ΔSDR box plot, convergence
  curves, SDR during fitting);
- ``media/<run>/``: the audio and figures the pages show, hard-linked (copied where a
  link is refused) from the run folders.

Run bookkeeping uses each run's ``fingerprint`` (see :mod:`experiments.fingerprint`):
runs with the same digest are one run (the newest by ``finished_at``, else by the file's
time, is kept); runs of one model × condition whose ``code`` or ``data`` parts differ
(a run without a fingerprint counts as ``unknown``) are not averaged: the report stops
with an error naming the group, unless ``--allow-mixed-fingerprints`` (then a warning
heads the report). Errors exit 2 with ``mnmf-report: error: ...``.

The package is split by what it does: :mod:`~experiments.report.collect` (find the
runs, conditions, examples), :mod:`~experiments.report.bookkeeping` (duplicates,
unfinished runs, fingerprint checks), :mod:`~experiments.report.statistics` (means,
confidence intervals, paired comparisons), :mod:`~experiments.report.plots`,
:mod:`~experiments.report.media` (the report's copies of audio and figures) and
:mod:`~experiments.report.render` (CSV, Markdown, and HTML from a Jinja2 template).

Every link in the report is relative and stays inside the report folder, so the folder
alone can be moved, copied or served without the runs. To look at the page in a
headless browser::

    mnmf-report outputs/sweeps/demo
    chromium --headless --no-sandbox --disable-gpu --screenshot=/tmp/report.png \\
        --window-size=1200,2400 file://$PWD/outputs/sweeps/demo/report/report.html
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from experiments.report.bookkeeping import (
    Duplicate,
    Unfinished,
    check_fingerprints,
    drop_duplicates,
    unfinished,
)
from experiments.report.collect import (
    FailedRun,
    Found,
    Run,
    StartedRun,
    Sweep,
    audio_files,
    choose_examples,
    condition_keys,
    condition_of,
    find_runs,
    scan,
)
from experiments.report.media import Media
from experiments.report.plots import Plot, make_plots
from experiments.report.render import (
    Context,
    csv_text,
    render_html,
    render_markdown,
    results_columns,
    results_rows,
)
from experiments.report.statistics import (
    SUMMARY_METRICS,
    Baseline,
    Comparison,
    Group,
    SourceGroup,
    choose_baseline,
    compare,
    mean_ci,
    paired_statistics,
    summarize,
    summarize_sources,
)
from experiments.report.task_tables import TaskTable, gate_edge_table, task_tables
from experiments.report.text import DASH
from experiments.runfolder import FAILED, METRICS
from mnmf.data.io import atomic_write

__all__ = [
    "DASH",
    "SUMMARY_METRICS",
    "Baseline",
    "Comparison",
    "Context",
    "Duplicate",
    "FailedRun",
    "Found",
    "Group",
    "Media",
    "Plot",
    "Run",
    "SourceGroup",
    "StartedRun",
    "Sweep",
    "TaskTable",
    "Unfinished",
    "audio_files",
    "build_report",
    "check_fingerprints",
    "choose_baseline",
    "choose_examples",
    "compare",
    "condition_keys",
    "condition_of",
    "drop_duplicates",
    "find_runs",
    "main",
    "make_plots",
    "mean_ci",
    "paired_statistics",
    "scan",
    "summarize",
    "summarize_sources",
    "task_tables",
    "unfinished",
]


def build_report(
    path: Path,
    *,
    out: Path | None = None,
    examples: int = 1,
    baseline: str | None = None,
    allow_mixed_fingerprints: bool = False,
) -> Path:
    """Write ``results.csv``, ``report.md``, ``report.html``, ``img/`` and ``media/``.

    Parameters
    ----------
    path : Path
        A run folder, or a folder with run folders at any depth.
    out : Path, optional
        The report folder; ``path/report`` by default. It is never read as runs.
    examples : int
        How many example runs per model get audio players and figures in the HTML.
    baseline : str, optional
        The model the paired comparison compares every other model with; by default
        the model with the highest mean ΔSDR over all its scored runs.
    allow_mixed_fingerprints : bool
        Average runs of one model × condition whose fingerprints differ in their code
        or data part (with a warning in the report) instead of refusing.

    Returns
    -------
    Path
        The report folder.

    Raises
    ------
    ValueError
        If ``path`` is not a folder or holds no complete or failed run, if
        ``baseline`` has no scored run, or if a model × condition group mixes runs of
        different code or data (see :func:`~experiments.report.bookkeeping.check_fingerprints`).
    """
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"{path} is not a folder")
    out = Path(out) if out is not None else path / "report"
    found = scan(path, skip=out)
    if not found.runs and not found.failed:
        raise ValueError(
            f"no runs in {path}: no folder below it has a complete {METRICS} or a {FAILED}"
        )
    runs, duplicates = drop_duplicates(found.runs)
    failed, failed_duplicates = drop_duplicates(found.failed)
    duplicates += failed_duplicates
    separations = [run for run in runs if run.is_separation]
    others = [run for run in runs if not run.is_separation]
    conditions = condition_keys(separations)
    warnings = check_fingerprints(separations, conditions, allow_mixed=allow_mixed_fingerprints)
    groups = summarize(separations, conditions)
    chosen_baseline = choose_baseline(separations, model=baseline)
    comparisons = (
        compare(separations, conditions, baseline=chosen_baseline.model)
        if chosen_baseline is not None
        else []
    )

    columns = results_columns(conditions)
    text = csv_text(results_rows(runs, conditions), columns)
    atomic_write(out / "results.csv", lambda t: Path(t).write_text(text, encoding="utf-8"))
    plots = make_plots(separations, groups, conditions, folder=out / "img")
    chosen = choose_examples([run for run in separations if run.scored], count=examples)
    totals = [sweep.total for sweep in found.sweeps]
    media = Media(out)
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
        sources=summarize_sources(groups),
        baseline=chosen_baseline,
        comparisons=comparisons,
        duplicates=duplicates,
        unfinished=unfinished(found),
        planned=sum(totals) if totals and None not in totals else None,  # type: ignore[arg-type]
        sweeps=len(found.sweeps),
        warnings=warnings,
        media=media,
        task_tables=[*task_tables(others), *filter(None, [gate_edge_table(separations)])],
    )
    markdown = render_markdown(context)
    page = render_html(context)
    media.prune()
    atomic_write(out / "report.md", lambda t: Path(t).write_text(markdown, encoding="utf-8"))
    atomic_write(out / "report.html", lambda t: Path(t).write_text(page, encoding="utf-8"))
    return out


def main(argv: list[str] | None = None) -> int:
    """``mnmf-report PATH [--out DIR] [--examples N] [--baseline MODEL]
    [--allow-mixed-fingerprints]``; prints where report.html is.

    Returns 0 (the exit status: the console script passes the return value to
    :func:`sys.exit`); an error (:class:`ValueError`) exits 2 with
    ``mnmf-report: error: ...``.
    """
    parser = argparse.ArgumentParser(
        prog="mnmf-report",
        description="Summarize a run folder or a sweep of experiments.run into "
        "results.csv, report.md, report.html, img/ and media/ (a self-contained folder).",
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
    parser.add_argument(
        "--baseline",
        default=None,
        metavar="MODEL",
        help="the model of the paired comparison that every other model is compared with "
        "(default: the model with the highest mean ΔSDR over its scored runs)",
    )
    parser.add_argument(
        "--allow-mixed-fingerprints",
        action="store_true",
        help="average runs of one model and condition made by different code or data "
        "(fingerprint parts differ), with a warning in the report, instead of refusing",
    )
    args = parser.parse_args(argv)
    try:
        out = build_report(
            args.path,
            out=args.out,
            examples=args.examples,
            baseline=args.baseline,
            allow_mixed_fingerprints=args.allow_mixed_fingerprints,
        )
    except ValueError as error:
        parser.exit(2, f"mnmf-report: error: {error}\n")
    print(f"[mnmf-report] report: {(out / 'report.html').resolve()}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
