"""Tasks: what a run does, each with its typed settings and its objective.

A task is a function ``run(cfg, out) -> metrics`` (a JSON-able dict; ``out`` is the run
folder) registered with :func:`register_task` together with

- ``schema``: a dataclass subclassing :class:`experiments.config.TaskConfig` — the
  typed ``task`` settings, stored as an option of Hydra's ``task`` group;
- ``objective``: the number a Hydra sweeper optimizes, from the task's metrics;
- ``validate`` (optional): checks of the composed config before any work.

``experiments.run`` looks the task up by ``task.name`` and owns everything else (run
folders, skipping finished runs, failure records). Adding an experiment that is not
"separate then score" is a module here and a preset in ``conf/experiment/``.

| task | what |
|---|---|
| ``separate`` | load or simulate a mixture, separate it, score it (BSS Eval) |
| ``smooth_study`` | the seed talk's study of smooth IS-NMF on a recording |
| ``djmix`` | DJ-mix transcription: each track's gain, time-warp and transitions |

See docs/design.md, §10.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from mnmf.registry import Registry

Metrics = dict[str, Any]


@dataclass(frozen=True)
class Task:
    """A registered task (see the module documentation)."""

    name: str
    schema: type
    run: Callable[[DictConfig, Path], Metrics]
    objective: Callable[[Metrics, DictConfig], float]
    validate: Callable[[DictConfig], None]


#: Tasks by name (``task=separate``, ``task=smooth_study``).
TASKS: Registry[Task] = Registry("task", argument="task")


def register_task(
    name: str,
    *,
    schema: type,
    objective: Callable[[Metrics, DictConfig], float],
    validate: Callable[[DictConfig], None] | None = None,
) -> Callable[[Callable[[DictConfig, Path], Metrics]], Callable[[DictConfig, Path], Metrics]]:
    """Decorator registering ``run`` as the task ``name``."""

    def decorator(run: Callable[[DictConfig, Path], Metrics]):
        TASKS.register(name)(
            Task(
                name=name,
                schema=schema,
                run=run,
                objective=objective,
                validate=validate or (lambda cfg: None),
            )
        )
        return run

    return decorator


# The built-in tasks register themselves on import.
from experiments.tasks import djmix, separate, smooth_study  # noqa: E402, F401
