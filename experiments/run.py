"""One experiment run: the configured task into a run folder; sweeps that resume safely.

Hydra entry point (``mnmf-run``, ``mnmf-run --help``, or ``python -m experiments.run``)::

    mnmf-run experiment=mnmf_speech
    mnmf-run data=file data.path=my_recording.wav data.n_sources=2 model=mnmf_em
    mnmf-run -m model=mnmf_mu,mnmf_em,auxiva data.rt60=0.15,0.3,0.5 seed=0,1,2 \\
        hydra/launcher=joblib

The task (``task.name``: ``separate`` by default, ``smooth_study``, …) comes from the
registry :data:`experiments.tasks.TASKS`; this module owns what every task shares. The
run folder holds ``config.yaml`` (resolved), ``run.log`` (the run's log), what the task
writes (wavs, figures) and last ``metrics.json`` (the task's metrics, its objective,
timings, versions, seed and the run's *fingerprint*, :mod:`experiments.fingerprint`).
Every file is written atomically and ``metrics.json`` last, so a folder with a complete
``metrics.json`` is a finished run.

Resuming: a relaunch reuses a finished run only if its fingerprint (resolved config,
source code and dependency versions, data files) matches the run asked for. A *stale*
run is redone (``on_stale=redo``, the default) or refused (``on_stale=refuse``: the old
result stays, the run counts as failed); a redone run's stale ``metrics.json``
is kept as ``metrics.stale.json``. A run that raises writes ``failed.json``
(error and traceback) instead and returns NaN, so a sweep goes on; an interrupted run
(Ctrl-C, a kill) leaves no ``metrics.json`` and is redone by the next launch.

Exit status: a single run that failed or was refused exits 1; a multirun finishes every
run, then says how many failed and exits 1 if any did. During a multirun, every finished
run prints the sweep's progress (done, failed, remaining, elapsed, time left) — also
with the joblib launcher, whose jobs report through the sweep folder's ``.jobs/``. The
sweep folder's ``sweep.json`` lists the planned runs (the report lists those that have
not finished).

The return value of a run — the task's objective (mean ΔSDR for ``separate``) — is what
Hydra sweepers optimize.

Only this layer imports Hydra; :mod:`mnmf` never does.

How a setting travels from an override to the algorithm: docs/design.md, §10.
"""

from __future__ import annotations

import logging
import math
import platform
import subprocess
import sys
import time
import traceback
from datetime import datetime
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

import mnmf
from experiments.config import choice, register, validate
from experiments.fingerprint import fingerprint, what_changed
from experiments.runfolder import FAILED, METRICS, completed_metrics, read_json
from experiments.tasks import TASKS
from mnmf.data.io import atomic_write, write_json

register()

#: conf/ of the repository, absolute: the console script ``mnmf-run`` has no calling file
#: that Hydra could resolve a relative path against.
CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")
#: The sweep folder's plan (written when a multirun starts) and per-job status folder.
SWEEP_PLAN = "sweep.json"
JOB_STATUS_DIR = ".jobs"
#: How a run ended, as :func:`run_experiment` leaves it in :data:`last_status`.
STATUSES = ("done", "reused", "failed", "refused", "interrupted")
#: Statuses that make the process exit non-zero.
FAILING = ("failed", "refused", "interrupted")
ON_STALE = ("redo", "refuse")
#: Where a redone run's stale ``metrics.json`` is kept (the report never reads it).
STALE_METRICS = "metrics.stale.json"

log = logging.getLogger("mnmf-run")

#: How the latest :func:`run_experiment` of this process ended (one of STATUSES).
last_status: str | None = None
#: The exit status ``mnmf-run`` returns (set after a single run or a multirun).
exit_status = 0


def run_experiment(cfg: DictConfig, out: Path, *, overrides: list[str] | None = None) -> float:
    """Run one configured experiment into ``out``; return its objective (NaN if failed).

    The task (``task.name``) comes from :data:`experiments.tasks.TASKS`; this function
    owns the run folder: reusing a finished run of the same fingerprint, redoing or
    refusing a stale one (``cfg.on_stale``), the failure record, ``config.yaml`` and,
    last, ``metrics.json``. How the run ended is left in :data:`last_status`.
    """
    global last_status
    last_status = "interrupted"  # until it ends otherwise (Ctrl-C, a kill)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    overrides = overrides or []
    try:
        choice(cfg.on_stale, "on_stale", ON_STALE)
        current = fingerprint(cfg)
    except Exception as error:
        return _failed(out, error, overrides, None)
    done = completed_metrics(out)
    if done is not None:
        recorded = done.get("fingerprint")
        if isinstance(recorded, dict) and recorded.get("digest") == current["digest"]:
            last_status = "reused"
            log.info("skip %s (complete, same fingerprint)", out)
            return float(done.get("objective", math.nan))
        reason = what_changed(
            recorded if isinstance(recorded, dict) else None,
            current,
            old_params=done.get("params") or {},
            new_params=_flat(OmegaConf.to_container(cfg, resolve=True)),
        )
        if cfg.on_stale == "refuse":
            last_status = "refused"
            log.error(
                "refused %s: its finished result is stale: %s. on_stale=refuse keeps it; "
                "relaunch with on_stale=redo to recompute it, or move the folder away",
                out,
                reason,
            )
            return math.nan
        log.warning("redo %s: stale result: %s (kept as %s)", out, reason, STALE_METRICS)
        (out / METRICS).replace(out / STALE_METRICS)  # nothing lost; never read as a run
    (out / FAILED).unlink(missing_ok=True)
    try:
        validate(cfg)
        task = TASKS.get(cfg.task.name)
        log.info("run %s: task %s, %s", out, cfg.task.name, " ".join(overrides) or "defaults")
        metrics = task.run(cfg, out)
        objective = task.objective(metrics, cfg)
    except Exception as error:  # recorded, not raised: the other runs of a sweep go on
        return _failed(out, error, overrides, current)
    metrics |= {
        "status": "complete",
        "name": cfg.name,
        "task": cfg.task.name,
        "seed": cfg.seed,
        "objective": objective,
        "overrides": overrides,
        "params": _flat(OmegaConf.to_container(cfg, resolve=True)),
        "versions": _versions(),
        "fingerprint": current,
        "finished_at": _now(),
    }
    metrics.setdefault("timings", {})["total"] = time.perf_counter() - started
    text = OmegaConf.to_yaml(cfg, resolve=True)
    atomic_write(out / "config.yaml", lambda temporary: Path(temporary).write_text(text))
    write_json(out / METRICS, metrics)  # last: its presence marks the run complete
    shown = f"objective {objective:.4g}" if math.isfinite(objective) else "nothing scored"
    log.info("done %s: %s in %.1f s", out, shown, metrics["timings"]["total"])
    last_status = "done"
    return float(objective)


def _failed(
    out: Path, error: Exception, overrides: list[str], current: dict[str, Any] | None
) -> float:
    """Record a failure in ``failed.json`` (never over a finished result); NaN."""
    global last_status
    last_status = "failed"
    if completed_metrics(out) is None:
        write_json(
            out / FAILED,
            {
                "status": "failed",
                "error": f"{type(error).__name__}: {error}",
                "traceback": traceback.format_exc(),
                "overrides": overrides,
                "fingerprint": current,
                "finished_at": _now(),
            },
        )
    log.error("FAILED %s: %s: %s", out, type(error).__name__, error)
    return math.nan


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{"data": {"rt60": 0.3}} → {"data.rt60": 0.3}; lists are kept as values."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat |= (
            _flat(value, f"{prefix}{key}.")
            if isinstance(value, dict)
            else {f"{prefix}{key}": value}
        )
    return flat


def _versions() -> dict[str, str | None]:
    import mir_eval
    import pyroomacoustics
    import scipy

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pyroomacoustics": pyroomacoustics.__version__,
        "mir_eval": mir_eval.__version__,
        "hydra": hydra.__version__,
        "mnmf": mnmf.__version__,
        "commit": _git_commit(),
    }


def _git_commit() -> str | None:
    """The repository's commit (``+dirty`` with uncommitted changes), or None outside git."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty=+dirty", "--abbrev=12"],
            cwd=root, capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return commit or None


class SweepProgress(Callback):
    """Hydra callback: the sweep's plan, its progress after every run, its exit status.

    - ``on_multirun_start`` (the launching process): writes ``sweep.json`` — the planned
      runs' overrides, their count and the start time — and clears ``.jobs/``;
    - ``on_job_end`` (the process that ran the job: the launcher's worker with joblib):
      records how the run ended in ``.jobs/<job number>.json`` and prints the progress
      of the sweep (done, failed, remaining, elapsed, estimated time left) from that
      folder, so every worker reports the same totals;
    - ``on_multirun_end``: says how many runs failed and sets the exit status;
    - ``on_run_end`` (a single run): sets the exit status.

    Registered in ``conf/config.yaml`` (``hydra.callbacks``).
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        planned = _planned_runs(config)
        status_dir = sweep_dir / JOB_STATUS_DIR
        if status_dir.is_dir():
            for stale in status_dir.glob("*.json"):
                stale.unlink(missing_ok=True)
        status_dir.mkdir(exist_ok=True)
        write_json(
            sweep_dir / SWEEP_PLAN,
            {
                "started": _now(),
                "started_epoch": time.time(),
                "total": None if planned is None else len(planned),
                "planned": planned,
            },
        )
        total = "an unknown number of" if planned is None else str(len(planned))
        log.info("sweep %s: %s runs", sweep_dir, total)

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        if str(config.hydra.mode) != "RunMode.MULTIRUN":
            return
        sweep_dir = Path(config.hydra.sweep.dir)
        status = last_status or "failed"
        if getattr(job_return, "status", None) is not None and job_return.status.name == "FAILED":
            status = "failed"
        write_json(
            sweep_dir / JOB_STATUS_DIR / f"{config.hydra.job.num}.json",
            {
                "status": status,
                "folder": str(config.hydra.runtime.output_dir),
                "overrides": list(config.hydra.overrides.task),
                "finished": time.time(),
            },
        )
        log.info("%s", sweep_progress(sweep_dir))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        global exit_status
        sweep_dir = Path(config.hydra.sweep.dir)
        statuses = _job_statuses(sweep_dir)
        failing = [entry for entry in statuses if entry["status"] in FAILING]
        plan = read_json(sweep_dir / SWEEP_PLAN) or {}
        total = plan.get("total")
        missing = (total - len(statuses)) if isinstance(total, int) else 0
        log.info("%s", sweep_progress(sweep_dir, final=True))
        for entry in failing:
            log.error("%s: %s", entry["status"], entry["folder"])
        if failing or missing > 0:
            exit_status = 1
            log.error(
                "%d of %s run(s) failed or were refused%s; see failed.json in their folders",
                len(failing),
                total if total is not None else len(statuses),
                f", {missing} did not report" if missing > 0 else "",
            )

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        global exit_status
        if last_status in FAILING:
            exit_status = 1


def _planned_runs(config: DictConfig) -> list[list[str]] | None:
    """The overrides of every run the basic sweeper will launch (None if unknown)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    sweeper = str(config.hydra.sweeper.get("_target_", ""))
    if not sweeper.endswith("BasicSweeper"):
        return None
    params = config.hydra.sweeper.get("params") or {}
    arguments = [f"{key}={value}" for key, value in params.items()]
    arguments += list(config.hydra.overrides.task)
    try:
        overrides = OverridesParser.create().parse_overrides(arguments)
        batches = BasicSweeper.split_arguments(overrides, None)
    except Exception:  # e.g. a glob over a config group: counted as it goes
        return None
    return [list(job) for batch in batches for job in batch]


def _job_statuses(sweep_dir: Path) -> list[dict[str, Any]]:
    found = (read_json(path) for path in sorted((sweep_dir / JOB_STATUS_DIR).glob("*.json")))
    return [entry for entry in found if entry is not None and entry.get("status") in STATUSES]


def sweep_progress(sweep_dir: Path, *, final: bool = False) -> str:
    """One line on a sweep: runs done (reused), failed, remaining, elapsed and time left.

    Read from the sweep folder (``sweep.json`` and ``.jobs/``), so that it is right in
    whichever process prints it.
    """
    plan = read_json(sweep_dir / SWEEP_PLAN) or {}
    statuses = [entry["status"] for entry in _job_statuses(sweep_dir)]
    done = statuses.count("done") + statuses.count("reused")
    reused = statuses.count("reused")
    failed = sum(statuses.count(status) for status in FAILING)
    total = plan.get("total")
    started = plan.get("started_epoch")
    elapsed = time.time() - started if isinstance(started, int | float) else math.nan
    parts = [f"{done} done" + (f" ({reused} reused)" if reused else ""), f"{failed} failed"]
    if isinstance(total, int):
        remaining = max(total - len(statuses), 0)
        parts.append(f"{remaining} remaining of {total}")
        executed = len(statuses) - reused
        if not final and remaining and executed and math.isfinite(elapsed):
            parts.append(f"about {_duration(elapsed * remaining / executed)} left")
    if math.isfinite(elapsed):
        parts.append(f"{_duration(elapsed)} elapsed")
    return ("sweep finished: " if final else "sweep: ") + ", ".join(parts)


def _duration(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def _hydra_main(cfg: DictConfig) -> float:
    logging.captureWarnings(True)  # warnings go to the run's log (run.log) too
    runtime = HydraConfig.get()
    return run_experiment(
        cfg, Path(runtime.runtime.output_dir), overrides=list(runtime.overrides.task)
    )


def main() -> None:
    """``mnmf-run``: one run or a multirun (``-m``); exits 1 if a run failed."""
    global exit_status
    exit_status = 0
    _hydra_main()
    if exit_status:
        sys.exit(exit_status)


if __name__ == "__main__":
    # Run the imported module, not this ``__main__`` copy: the callbacks Hydra builds
    # from conf/ (``experiments.run.SweepProgress``) share that module's run status.
    from experiments.run import main as imported_main

    imported_main()
