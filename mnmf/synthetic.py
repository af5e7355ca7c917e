"""Synthetic signals with a known decomposition, for demos and tests (no downloads).

The amplitude-modulated sines come from the seed slides (nmf-mnmf-slides.md,
"Simulation sur une onde sinus"): s(t) = g(αt)·sin(γt) + g(βt)·sin(δt).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from mnmf._validation import finite_real


def square_gate(t: NDArray) -> NDArray:
    """g(t): 1 while sin(t) ≥ 0, else 0 — a square wave of period 2π with hard edges.

    The hard edges are what the seed shows NMF struggling with ("les erreurs se
    présentent aux points de discontinuité").
    """
    return (np.sin(t) >= 0).astype(np.float64)


def gated_sines(
    *,
    fs: float = 8000.0,
    duration: float = 4 * np.pi,
    alpha: float = 1.0,
    beta: float = 2.0,
    gamma: float = 500.0,
    delta: float = 1000.0,
) -> NDArray[np.float64]:
    """The two parts of s(t) = g(αt)·sin(γt) + g(βt)·sin(δt), with g :func:`square_gate`.

    Parameters
    ----------
    fs : float
        Sample rate in Hz.
    duration : float
        Length in seconds (default 4π: two periods of the slower gate).
    alpha, beta : float
        Gate rates (rad/s): part 1 switches every π/α s, part 2 every π/β s.
    gamma, delta : float
        Carrier angular frequencies (rad/s): 500 and 1000 are about 80 and 159 Hz.

    Returns
    -------
    parts : array, shape (2, samples)
        The two sources; their sum is the mixture s(t).
    """
    fs = finite_real(fs, name="fs", minimum=1.0)
    duration = finite_real(duration, name="duration", minimum=0.0)
    for value, name in ((alpha, "alpha"), (beta, "beta"), (gamma, "gamma"), (delta, "delta")):
        finite_real(value, name=name)
    t = np.arange(round(fs * duration)) / fs
    return np.stack(
        [square_gate(alpha * t) * np.sin(gamma * t), square_gate(beta * t) * np.sin(delta * t)]
    )
