"""The one iteration engine shared by every model.

A model says how to initialize, how to take one step (a multiplicative-update or EM
iteration) and how to compute its cost; :func:`run` owns everything else — the loop,
the cost history, the stopping rule, callbacks, the progress bar, seeding and timing.
Single-channel NMF, smooth NMF and the multichannel models all go through here, so a
new model gets stopping, progress and tracking for free.

See docs/design.md, §6.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from mnmf._parallel import blas_held
from mnmf._validation import as_generator, finite_real, positive_int


@runtime_checkable
class IterativeModel(Protocol):
    """What the engine needs from a model.

    ``cost`` is the objective being minimized (a negative log-likelihood up to a
    constant, plus penalties); MM and EM algorithms guarantee it never increases.
    """

    def initialize(self, rng: np.random.Generator) -> None:
        """Draw whatever the user did not give, from ``rng`` only."""

    def step(self) -> None:
        """One full iteration (every parameter updated once)."""

    def cost(self) -> float:
        """The current value of the objective."""

    def parameters(self) -> dict[str, NDArray]:
        """The current parameters, in the user's units (copies or read-only views)."""


@dataclass(frozen=True)
class IterationInfo:
    """What a callback sees after each iteration.

    Attributes
    ----------
    iteration : int
        Iterations completed so far (1 after the first step).
    cost : float or None
        The cost, on iterations where it was computed (every ``check_every``), else None.
    seconds : float
        Wall time since the start of the fit, initialization included.
    model : IterativeModel
        The model itself, e.g. to read its current parameters.
    """

    iteration: int
    cost: float | None
    seconds: float
    model: IterativeModel


#: A callback gets the iteration's info; returning True stops the fit early.
Callback = Callable[[IterationInfo], bool | None]


@dataclass(frozen=True)
class FitResult:
    """Outcome of :func:`run`.

    Attributes
    ----------
    params : dict of str to array
        The fitted parameters (e.g. ``W``, ``H``).
    cost : array, shape (n_checks,)
        Cost history; ``cost[0]`` is the cost at initialization.
    cost_iterations : array of int, shape (n_checks,)
        Iteration at which each ``cost`` entry was computed (0 for the initial one).
    cost_seconds : array, shape (n_checks,)
        Wall time since the start at which each entry was computed (for cost-vs-time
        plots; the cost computations themselves are included).
    n_iter : int
        Iterations run.
    converged : bool
        True when the relative decrease fell below ``tol``; False when ``max_iter``
        was reached or a callback stopped the fit.
    seconds : float
        Total wall time, initialization included.
    """

    params: dict[str, NDArray]
    cost: NDArray[np.float64]
    cost_iterations: NDArray[np.int64]
    cost_seconds: NDArray[np.float64]
    n_iter: int
    converged: bool
    seconds: float


def run(
    model: IterativeModel,
    *,
    max_iter: int = 200,
    tol: float = 1e-5,
    check_every: int = 10,
    rng: np.random.Generator | int | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool = False,
    description: str | None = None,
) -> FitResult:
    """Initialize ``model`` and iterate it until convergence or ``max_iter``.

    Parameters
    ----------
    model : IterativeModel
        The model to fit.
    max_iter : int
        Maximum number of iterations (0 only initializes).
    tol : float
        Stop when the cost's relative change between two checks,
        ``|c_prev - c| / |c_prev|``, is below ``tol`` (a large increase, possible with
        heuristic updates, does not count as convergence). 0 disables the rule.
    check_every : int
        Compute the cost (and test the stopping rule) every this many iterations, and
        always after the last one. Computing the cost is a full pass over the data: 1
        gives a complete history for plots and tests, 10 keeps it under a tenth of the
        time.
    rng : numpy.random.Generator, int or None
        Source of randomness for the initialization; an int is a seed.
    callbacks : sequence of callables
        Called after every iteration with an :class:`IterationInfo`; a callback that
        returns True stops the fit.
    progress : bool
        Show a tqdm progress bar with the current cost.
    description : str, optional
        Label of the progress bar.

    Returns
    -------
    FitResult

    Notes
    -----
    A model with an attribute ``worker_threads`` runs its passes on that many threads
    of its own (block-parallel); BLAS is then held at one thread in this process from
    initialization to the result, callbacks included, and restored afterwards
    (:func:`mnmf._parallel.blas_held`).
    """
    max_iter = positive_int(max_iter, name="max_iter", minimum=0)
    tol = finite_real(tol, name="tol", minimum=0.0)
    check_every = positive_int(check_every, name="check_every")
    generator = as_generator(rng)
    if not isinstance(model, IterativeModel):
        raise ValueError(
            f"model must provide initialize, step, cost and parameters; got {type(model).__name__}"
        )

    # A model that runs its passes on worker threads of its own holds BLAS at one thread
    # for the whole fit (mnmf._parallel: BLAS threads on top of its own oversubscribe the
    # cores, and OpenBLAS threads woken between its passes would spin against them).
    with blas_held(getattr(model, "worker_threads", None) is not None):
        return _run(model, max_iter, tol, check_every, generator, callbacks, progress, description)


def _run(
    model: IterativeModel,
    max_iter: int,
    tol: float,
    check_every: int,
    generator: np.random.Generator,
    callbacks: Sequence[Callback],
    progress: bool,
    description: str,
) -> FitResult:
    start = time.perf_counter()
    model.initialize(generator)
    costs = [_checked_cost(model, 0)]
    cost_iterations = [0]
    cost_seconds = [time.perf_counter() - start]
    converged = False
    bar = _progress_bar(max_iter, description) if progress else None
    n_iter = 0
    try:
        for n_iter in range(1, max_iter + 1):
            model.step()
            current: float | None = None
            if n_iter % check_every == 0 or n_iter == max_iter:
                current = _checked_cost(model, n_iter)
                previous = costs[-1]
                costs.append(current)
                cost_iterations.append(n_iter)
                cost_seconds.append(time.perf_counter() - start)
                if bar is not None:
                    bar.set_postfix(cost=f"{current:.6g}", refresh=False)
                if tol > 0 and abs(_relative_decrease(previous, current)) < tol:
                    converged = True
            if bar is not None:
                bar.update(1)
            info = IterationInfo(n_iter, current, time.perf_counter() - start, model)
            stop_requested = any([bool(callback(info)) for callback in callbacks])
            if converged or stop_requested:
                break
    finally:
        if bar is not None:
            bar.close()
    if cost_iterations[-1] != n_iter:  # stopped by a callback between two checks
        costs.append(_checked_cost(model, n_iter))
        cost_iterations.append(n_iter)
        cost_seconds.append(time.perf_counter() - start)
    return FitResult(
        params=model.parameters(),
        cost=np.asarray(costs, dtype=np.float64),
        cost_iterations=np.asarray(cost_iterations, dtype=np.int64),
        cost_seconds=np.asarray(cost_seconds, dtype=np.float64),
        n_iter=n_iter,
        converged=converged,
        seconds=time.perf_counter() - start,
    )


def _checked_cost(model: IterativeModel, iteration: int) -> float:
    value = float(model.cost())
    if not np.isfinite(value):
        raise FloatingPointError(
            f"the cost became {value} at iteration {iteration}; this is a bug in "
            f"{type(model).__name__} (inputs are validated), please report it"
        )
    return value


def _relative_decrease(previous: float, current: float) -> float:
    if previous == current:
        return 0.0
    return (previous - current) / max(abs(previous), np.finfo(np.float64).tiny)


def _progress_bar(total: int, description: str | None):  # -> tqdm
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description or "fit", unit="it", leave=False)
