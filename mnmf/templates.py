"""What an NMF template looks like: spectral centroid, flatness, harmonicity and pitch.

A column of W (F, K) is one component's spectral shape. These descriptors say what kind
of sound a component holds — a pitched note (a harmonic comb), a bass (low centroid), a
noise (flat) — without listening to it: the smooth-study masks figure picks its
components by kind with them, and the piano study counts how many components are notes.

Harmonicity is a *comb contrast*: the share of the column's power on the harmonics
h·f0 minus the share on the bins half-way between them ((h + ½)·f0), maximized over f0.
A comb scores near 1, white noise near 0 and a smooth low-frequency bump near 0 as
well (its power falls on the harmonics and on the half-way bins alike), which a plain
"share on the harmonics" would not give at low f0, where ±1 bin around every harmonic
covers most bins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mnmf._validation import as_float_array, nonnegative_matrix, positive_int


@dataclass(frozen=True)
class TemplateFeatures:
    """Descriptors of K templates (each array has shape (K,)).

    Attributes
    ----------
    centroid : float array
        Spectral centroid (Hz): Σ_f f·w_fk / Σ_f w_fk.
    flatness : float array
        Geometric over arithmetic mean of the column: 1 for a flat spectrum, → 0 for a
        few peaks.
    harmonicity : float array
        Comb contrast in [-1, 1] at the best f0 (see the module docstring).
    f0 : float array
        The fundamental (Hz) of that comb: the highest candidate whose contrast is within
        ``tie`` (relative) of the best, so that a sub-harmonic f0/2 — whose comb also
        holds every other harmonic — never wins a near tie.
    """

    centroid: NDArray
    flatness: NDArray
    harmonicity: NDArray
    f0: NDArray

    def pitched(self, threshold: float = 0.5) -> NDArray:
        """Bool (K,): the templates whose harmonicity is at least ``threshold``."""
        return self.harmonicity >= threshold


def template_features(
    W: ArrayLike,
    frequencies: ArrayLike,
    *,
    f0_range: tuple[float, float] = (40.0, 1000.0),
    n_harmonics: int = 10,
    steps_per_octave: int = 24,
    tie: float = 0.02,
) -> TemplateFeatures:
    """Centroid, flatness, harmonicity and f0 of every column of ``W``.

    Parameters
    ----------
    W : array, shape (F, K)
        Non-negative templates (power or amplitude spectra) on the STFT's bins.
    frequencies : array, shape (F,)
        The bins' frequencies in Hz, evenly spaced from 0 (``Stft.frequencies(fs)``).
    f0_range : (float, float)
        The candidate fundamentals (Hz), on a grid of ``steps_per_octave`` per octave.
    n_harmonics : int
        Harmonics h = 1…n of each candidate in its comb (those below the last bin).
    steps_per_octave : int
        Resolution of the f0 grid.
    tie : float
        Relative margin within which a higher f0 is preferred (see ``f0``).

    Returns
    -------
    TemplateFeatures
    """
    W = nonnegative_matrix(W, name="W")
    frequencies = as_float_array(frequencies, name="frequencies", ndim=1)
    if frequencies.size != W.shape[0]:
        raise ValueError(
            f"frequencies must have one entry per row of W ({W.shape[0]}), got {frequencies.size}"
        )
    if frequencies.size < 4:
        raise ValueError(f"W must have at least 4 frequency bins, got {frequencies.size}")
    step = float(frequencies[1] - frequencies[0])
    if step <= 0 or not np.allclose(np.diff(frequencies), step, rtol=1e-6, atol=0.0):
        raise ValueError("frequencies must be evenly spaced and increasing (STFT bins)")
    if abs(float(frequencies[0])) > 1e-6 * step:
        raise ValueError(f"frequencies must start at 0 Hz (STFT bins), got {frequencies[0]:g}")
    low, high = (float(value) for value in f0_range)
    if not 0 < low < high:
        raise ValueError(f"f0_range must be (low, high) with 0 < low < high, got {f0_range}")
    n_harmonics = positive_int(n_harmonics, name="n_harmonics")
    steps_per_octave = positive_int(steps_per_octave, name="steps_per_octave")
    if not 0 <= tie < 1:
        raise ValueError(f"tie must be in [0, 1), got {tie}")

    # A floor per column (so that each column's descriptors ignore its scale) keeps
    # silent bins out of log(0) and all-zero columns out of 0/0.
    floor = 1e-12 * np.maximum(W.max(axis=0, initial=0.0), 1e-300)
    W = np.maximum(W, floor)
    total = W.sum(axis=0)
    centroid = (frequencies @ W) / total
    flatness = np.exp(np.mean(np.log(W), axis=0)) / np.mean(W, axis=0)

    n_bins = W.shape[0]
    f0_grid = low * 2.0 ** (np.arange(int(np.floor(steps_per_octave * np.log2(high / low))) + 1)
                            / steps_per_octave)  # fmt: skip
    contrast = np.empty((f0_grid.size, W.shape[1]))
    for index, f0 in enumerate(f0_grid):
        multiples = np.arange(1, n_harmonics + 1)
        on = _bins_around(multiples * f0 / step, n_bins)
        off = _bins_around((multiples + 0.5) * f0 / step, n_bins)
        contrast[index] = (W[on].sum(axis=0) - W[off].sum(axis=0)) / total
    best = contrast.max(axis=0)
    near_best = contrast >= best - tie * np.abs(best)
    highest = f0_grid.size - 1 - np.argmax(near_best[::-1], axis=0)
    return TemplateFeatures(
        centroid=centroid, flatness=flatness, harmonicity=best, f0=f0_grid[highest]
    )


def _bins_around(positions: NDArray, n_bins: int) -> NDArray:
    """The distinct bins within ±1 of each (rounded) position below the last bin."""
    centres = np.round(positions).astype(int)
    centres = centres[centres < n_bins - 1]
    bins = np.unique(np.concatenate([centres - 1, centres, centres + 1]))
    return bins[bins >= 0]
