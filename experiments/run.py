"""One experiment run: the configured task into a run folder.

Hydra entry point (``mnmf-run`` or ``python -m experiments.run``)::

    mnmf-run experiment=mnmf_speech
    mnmf-run -m model=mnmf_mu,mnmf_em,auxiva data.rt60=0.15,0.3,0.5 seed=0,1,2 \\
        hydra/launcher=joblib

The task (``task.name``: ``separate`` by default, ``smooth_study``, …) comes from the
registry :data:`experiments.tasks.TASKS`; this module owns what every task shares. The
run folder holds ``config.yaml`` (resolved), what the task writes (wavs, figures) and
last ``metrics.json`` (the task's metrics, its objective, timings, versions, seed).
Every file is written atomically and ``metrics.json`` last, so a folder with a complete
``metrics.json`` is a finished run: a re-launched sweep skips it. A run that raises
writes ``failed.json`` (error and traceback) instead and returns NaN, so a sweep goes
on. The return value — the task's objective (mean ΔSDR for ``separate``) — is what
Hydra sweepers optimize.

Only this layer imports Hydra; :mod:`mnmf` never does.

How a setting travels from an override to the algorithm: docs/design.md, §10.
"""

from __future__ import annotations

import math
import platform
import time
import traceback
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

import mnmf
from experiments.config import register, validate
from experiments.runfolder import FAILED, METRICS, completed_metrics
from experiments.tasks import TASKS
from mnmf.data.io import atomic_write, write_json

register()

#: conf/ of the repository, absolute: the console script ``mnmf-run`` has no calling file
#: that Hydra could resolve a relative path against.
CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")


def run_experiment(cfg: DictConfig, out: Path, *, overrides: list[str] | None = None) -> float:
    """Run one configured experiment into ``out``; return its objective (NaN if failed).

    The task (``task.name``) comes from :data:`experiments.tasks.TASKS`; this function
    owns the run folder: skipping a complete one, the failure record, ``config.yaml`` and,
    last, ``metrics.json``.
    """
    out.mkdir(parents=True, exist_ok=True)
    done = completed_metrics(out)
    if done is not None:
        print(f"[mnmf-run] skip {out} (complete)", flush=True)
        return float(done.get("objective", math.nan))
    (out / FAILED).unlink(missing_ok=True)
    started = time.perf_counter()
    try:
        validate(cfg)
        task = TASKS.get(cfg.task.name)
        metrics = task.run(cfg, out)
        objective = task.objective(metrics, cfg)
    except Exception as error:  # recorded, not raised: the other runs of a sweep go on
        write_json(
            out / FAILED,
            {
                "status": "failed",
                "error": f"{type(error).__name__}: {error}",
                "traceback": traceback.format_exc(),
                "overrides": overrides or [],
            },
        )
        print(f"[mnmf-run] FAILED {out}: {type(error).__name__}: {error}", flush=True)
        return math.nan
    metrics |= {
        "status": "complete",
        "name": cfg.name,
        "task": cfg.task.name,
        "seed": cfg.seed,
        "objective": objective,
        "overrides": overrides or [],
        "params": _flat(OmegaConf.to_container(cfg, resolve=True)),
        "versions": _versions(),
    }
    metrics.setdefault("timings", {})["total"] = time.perf_counter() - started
    text = OmegaConf.to_yaml(cfg, resolve=True)
    atomic_write(out / "config.yaml", lambda temporary: Path(temporary).write_text(text))
    write_json(out / METRICS, metrics)  # last: its presence marks the run complete
    shown = f"objective {objective:.4g}" if math.isfinite(objective) else "nothing scored"
    print(f"[mnmf-run] done {out}: {shown} in {metrics['timings']['total']:.1f} s", flush=True)
    return float(objective)


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


def _versions() -> dict[str, str]:
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
    }


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def main(cfg: DictConfig) -> float:
    runtime = HydraConfig.get()
    return run_experiment(
        cfg, Path(runtime.runtime.output_dir), overrides=list(runtime.overrides.task)
    )


if __name__ == "__main__":
    main()
