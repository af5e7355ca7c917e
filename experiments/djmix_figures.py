"""Figures of a ``djmix`` run (PNG, atomic): the seed's H of every pass, gain and warp.

- ``activations_pass_<k>.png``: for pass k (coarse to fine), each track's activation
  matrix H_i (track position × mix time) in dB re its peak, exact zeros in white — the
  band the multi-pass NMF keeps, narrowing pass after pass;
- ``gain.png``: each track's gain (dB) on the mix time axis, estimate against truth;
- ``warp.png``: each track's position in the track against mix time, estimate against
  truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from experiments.figures import save_figure
from mnmf.djmix.timeline import MixTruth, TrackTimeline

FLOOR_DB = -60.0


def djmix_figures(
    out: Path,
    *,
    estimates: Sequence[TrackTimeline],
    truth: MixTruth | None,
    passes: Sequence[Any],
) -> list[str]:
    """Write the run's figures into ``out``; return their file names."""
    names = [save_figure(gain_figure(estimates, truth), out / "gain.png")]
    names.append(save_figure(warp_figure(estimates, truth), out / "warp.png"))
    track_names = [estimate.name for estimate in estimates]
    for k, record in enumerate(passes):
        figure = activations_figure(record, track_names)
        names.append(save_figure(figure, out / f"activations_pass_{k + 1}.png"))
    return names


def _truth_of(truth: MixTruth | None, name: str) -> TrackTimeline | None:
    if truth is None:
        return None
    return next((t for t in truth.tracks if t.name == name), None)


def gain_figure(estimates: Sequence[TrackTimeline], truth: MixTruth | None) -> plt.Figure:
    """Gain in dB against mix time: estimate (solid) and truth (dashed), one colour per track."""
    figure, axis = plt.subplots(figsize=(10, 3.2), layout="constrained")
    for index, estimate in enumerate(estimates):
        colour = f"C{index % 10}"
        axis.plot(estimate.times, _db(estimate.gain), color=colour, label=estimate.name)
        true = _truth_of(truth, estimate.name)
        if true is not None:
            axis.plot(true.times, _db(true.gain), color=colour, linestyle="--", linewidth=1)
    axis.set(xlabel="mix time (s)", ylabel="gain (dB)", ylim=(FLOOR_DB, 6))
    axis.set_title("gain: estimate (solid) vs truth (dashed)", fontsize=9, loc="left")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="lower right")
    return figure


def warp_figure(estimates: Sequence[TrackTimeline], truth: MixTruth | None) -> plt.Figure:
    """Position in each track against mix time: estimate (solid), truth (dashed)."""
    figure, axis = plt.subplots(figsize=(10, 3.6), layout="constrained")
    for index, estimate in enumerate(estimates):
        colour = f"C{index % 10}"
        axis.plot(estimate.times, estimate.position, color=colour, label=estimate.name)
        true = _truth_of(truth, estimate.name)
        if true is not None:
            axis.plot(true.times, true.position, color=colour, linestyle="--", linewidth=1)
    axis.set(xlabel="mix time (s)", ylabel="position in the track (s)")
    axis.set_title("warp: estimate (solid) vs truth (dashed)", fontsize=9, loc="left")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="upper left")
    return figure


def activations_figure(record: Any, names: Sequence[str]) -> plt.Figure:
    """H_i of one pass for every track, dB re each H_i's peak, exact zeros in white.

    ``record`` is a :class:`mnmf.djmix.decompose.PassRecord`: ``hop`` (s) and ``H``, one
    (track frames × mix frames) array per track (dense or scipy.sparse), in the order
    of ``names``.
    """
    activations = dict(zip(names, record.H, strict=True))
    figure, axes = plt.subplots(
        1, len(activations), figsize=(3.4 * len(activations), 3.2), layout="constrained"
    )
    colours = plt.get_cmap("viridis").with_extremes(bad="white")
    for axis, (name, matrix) in zip(np.atleast_1d(axes), activations.items(), strict=True):
        H = matrix.toarray() if hasattr(matrix, "toarray") else np.asarray(matrix, dtype=float)
        peak = max(float(H.max(initial=0.0)), np.finfo(float).tiny)
        with np.errstate(divide="ignore"):
            shown = np.ma.masked_where(H <= 0, 10 * np.log10(np.maximum(H, 1e-300) / peak))
        image = axis.imshow(
            shown,
            origin="lower",
            aspect="auto",
            cmap=colours,
            vmin=FLOOR_DB,
            vmax=0,
            interpolation="nearest",
            extent=(0, H.shape[1] * record.hop, 0, H.shape[0] * record.hop),
        )
        axis.set(xlabel="mix time (s)", ylabel="track position (s)")
        axis.set_title(name, fontsize=9, loc="left")
    figure.colorbar(image, ax=axes, label="dB re peak (white: 0)", fraction=0.03)
    figure.suptitle(f"H per track, hop {record.hop:g} s", fontsize=10)
    return figure


def _db(gain: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.maximum(20 * np.log10(np.maximum(gain, 0.0)), FLOOR_DB)
