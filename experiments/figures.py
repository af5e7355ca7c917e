"""Figures of one run (PNG, written atomically): spectrograms, W/H, cost, SDR track.

``spectrograms.png`` stacks the mixture and every estimate; ``spectrogram_estimate_j.png``
shows estimate j alone, on the same scale (dB re the mixture's peak), so that a report
can put each estimate's spectrogram beside its audio and compare methods side by side.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import mnmf
from mnmf.data.io import atomic_write
from mnmf.engine import FitResult


def save_figure(figure: plt.Figure, path: Path) -> str:
    """Write a figure as PNG atomically, close it, return its file name."""
    atomic_write(path, lambda temporary: figure.savefig(temporary, format="png", dpi=100))
    plt.close(figure)
    return path.name


def _decibels(
    power: np.ndarray, *, peak: float | None = None, floor_db: float = -80.0
) -> np.ndarray:
    """10 log10(power / peak), floored at ``floor_db``; the peak defaults to power's own."""
    power = np.asarray(power, dtype=np.float64)
    if peak is None:
        peak = max(float(power.max()), np.finfo(float).tiny)
    return np.maximum(10 * np.log10(np.maximum(power / peak, 1e-30)), floor_db)


def _show_power(axis, power: np.ndarray, *, peak: float, fs: int, stft: mnmf.Stft):
    """A power spectrogram (F, N) in dB re ``peak`` on ``axis``: seconds × kHz, -80…0 dB."""
    return axis.imshow(
        _decibels(power, peak=peak),
        origin="lower",
        aspect="auto",
        cmap="magma",
        vmin=-80,
        vmax=0,
        extent=(0, power.shape[1] * stft.frame_seconds(fs), 0, fs / 2000),
    )


def spectrograms(X, estimates, fs, stft: mnmf.Stft) -> plt.Figure:
    """Mixture and every estimate at the first microphone, dB re the mixture's peak."""
    panels = [("mixture", np.abs(X[:, :, 0]) ** 2)]
    for j, estimate in enumerate(estimates):
        S = stft.analyze(estimate[:, 0])
        panels.append((f"estimate {j + 1}", np.abs(S) ** 2))
    peak = max(float(panels[0][1].max()), np.finfo(float).tiny)  # the mixture's, for all
    figure, axes = plt.subplots(len(panels), 1, figsize=(9, 1.9 * len(panels)), sharex=True)
    for axis, (title, power) in zip(np.atleast_1d(axes), panels, strict=True):
        image = _show_power(axis, power, peak=peak, fs=fs, stft=stft)
        axis.set_ylabel("kHz")
        axis.set_title(title, fontsize=9, loc="left")
    np.atleast_1d(axes)[-1].set_xlabel("time (s)")
    figure.colorbar(image, ax=axes, label="dB re mixture peak", fraction=0.03)
    return figure


def estimate_spectrogram(
    estimate: np.ndarray, fs: int, stft: mnmf.Stft, *, peak: float, title: str
) -> plt.Figure:
    """One estimate at the first microphone, dB re ``peak`` (the mixture's peak power)."""
    power = np.abs(stft.analyze(estimate[:, 0])) ** 2
    figure, axis = plt.subplots(figsize=(5, 2.4), layout="constrained")
    image = _show_power(axis, power, peak=peak, fs=fs, stft=stft)
    axis.set(xlabel="time (s)", ylabel="kHz")
    axis.set_title(title, fontsize=9, loc="left")
    figure.colorbar(image, ax=axis, label="dB re mixture peak", fraction=0.05)
    return figure


def factors(W, H, fs, frame_seconds: float, bank: mnmf.Filterbank | None = None) -> plt.Figure:
    """Templates W (dB) and activations H (dB re each row's peak).

    With a filterbank, W's rows are its bands: drawn one band per row, labelled by
    centre frequency.
    """
    figure, (left, right) = plt.subplots(
        1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [1, 3]}
    )
    rows_extent = (0, fs / 2000) if bank is None else (-0.5, W.shape[0] - 0.5)
    left.imshow(
        _decibels(W),
        origin="lower",
        aspect="auto",
        cmap="viridis",
        vmin=-60,
        vmax=0,
        extent=(-0.5, W.shape[1] - 0.5, *rows_extent),
        interpolation="nearest",
    )
    left.set(xlabel="component", ylabel="kHz", title="W (dB)")
    if bank is not None:
        ticks = np.linspace(0, bank.n_bands - 1, min(6, bank.n_bands)).round().astype(int)
        left.set_yticks(ticks, [f"{bank.center_frequencies[t] / 1000:.2g}" for t in ticks])
        left.set(ylabel=f"{bank.kind} band centre (kHz)")
    rows = H / np.maximum(H.max(axis=1, keepdims=True), np.finfo(float).tiny)
    right.imshow(
        _decibels(rows),
        origin="lower",
        aspect="auto",
        cmap="viridis",
        vmin=-60,
        vmax=0,
        extent=(0, H.shape[1] * frame_seconds, -0.5, H.shape[0] - 0.5),
        interpolation="nearest",
    )
    right.set(xlabel="time (s)", ylabel="component", title="H (dB re row peak)")
    figure.tight_layout()
    return figure


def cost_curve(fit: FitResult) -> plt.Figure:
    figure, axis = plt.subplots(figsize=(6, 3.4))
    axis.plot(np.asarray(fit.cost_iterations), np.asarray(fit.cost), "o-", ms=3)
    axis.set(xlabel="iteration", ylabel="cost", title="cost history")
    axis.grid(True, alpha=0.3)
    figure.tight_layout()
    return figure


def sdr_track(track: list[dict[str, float]]) -> plt.Figure:
    figure, axis = plt.subplots(figsize=(6, 3.4))
    axis.plot([t["iteration"] for t in track], [t["SDR"] for t in track], "o-", ms=3)
    axis.set(xlabel="iteration", ylabel="mean SDR (dB)", title="SDR per iteration")
    axis.grid(True, alpha=0.3)
    figure.tight_layout()
    return figure


def gate_edges(
    estimates: np.ndarray,
    references: np.ndarray,
    *,
    edges: list[float],
    fs: int,
    half_width: float,
    envelope_seconds: float = 0.01,
) -> plt.Figure:
    """The seed slides' sine study in the time domain (``gate_edges.png``).

    Top, one row per source: the error envelope |x̂_j − x_j| (RMS over
    ``envelope_seconds``) over the whole signal, the gates' edges as vertical lines
    and the ± ``half_width`` zones around them shaded. Bottom: the estimates and the
    references around the edge where the error peaks, so that the smearing of a hard
    edge by the STFT is seen.
    """
    estimates = np.asarray(estimates)[..., 0] if np.ndim(estimates) == 3 else estimates
    references = np.asarray(references)[..., 0] if np.ndim(references) == 3 else references
    n_sources, n_samples = references.shape
    t = np.arange(n_samples) / fs
    taps = max(1, round(envelope_seconds * fs))
    kernel = np.ones(taps) / taps
    figure, axes = plt.subplots(n_sources + 1, 1, figsize=(9, 1.8 * (n_sources + 1) + 0.6))
    worst = (0.0, 0, 0.0)
    for j in range(n_sources):
        error = estimates[j] - references[j]
        envelope = np.sqrt(np.convolve(error**2, kernel, mode="same"))
        axis = axes[j]
        axis.plot(t, envelope, lw=0.8, color="C3", label="|error| (RMS over 10 ms)")
        for edge in edges:
            axis.axvspan(edge - half_width, edge + half_width, color="0.85", lw=0)
            axis.axvline(edge, color="0.4", lw=0.6, ls=":")
        axis.set_ylabel(f"source {j + 1}")
        axis.set_xlim(0, t[-1] if n_samples else 1)
        peak = int(np.argmax(envelope)) if n_samples else 0
        if n_samples and envelope[peak] > worst[0]:
            worst = (float(envelope[peak]), j, t[peak])
    axes[0].set_title("error envelope per source; dotted: gate edges, shaded: ± half a window")
    axes[0].legend(loc="upper right", fontsize=8)
    axes[n_sources - 1].set_xlabel("time (s)")
    _, j, at = worst
    nearest = min(edges, key=lambda edge: abs(edge - at)) if edges else at
    zoom = (t >= nearest - 4 * half_width) & (t <= nearest + 4 * half_width)
    axis = axes[-1]
    axis.plot(t[zoom], references[j][zoom], lw=1.0, color="0.3", label=f"reference {j + 1}")
    axis.plot(t[zoom], estimates[j][zoom], lw=0.8, color="C0", label=f"estimate {j + 1}")
    axis.axvline(nearest, color="0.4", lw=0.6, ls=":")
    axis.set_title(f"around the edge at {nearest:.3f} s (the largest error)")
    axis.set_xlabel("time (s)")
    axis.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    return figure


def run_figures(
    out: Path,
    *,
    X: np.ndarray,
    estimates: np.ndarray,
    fs: int,
    stft: mnmf.Stft,
    fit: FitResult | None,
    track: list[dict[str, float]],
) -> list[str]:
    """Every figure of a run into ``out``; returns the file names."""
    names = [save_figure(spectrograms(X, estimates, fs, stft), out / "spectrograms.png")]
    peak = max(float(np.max(np.abs(X[:, :, 0]) ** 2)), np.finfo(float).tiny)
    for j, estimate in enumerate(estimates):
        figure = estimate_spectrogram(estimate, fs, stft, peak=peak, title=f"estimate {j + 1}")
        names.append(save_figure(figure, out / f"spectrogram_estimate_{j + 1}.png"))
    if fit is not None and "W" in fit.params and "H" in fit.params:
        bank = getattr(fit, "filterbank", None)
        figure = factors(fit.params["W"], fit.params["H"], fs, stft.frame_seconds(fs), bank)
        names.append(save_figure(figure, out / "factors.png"))
    if fit is not None and len(fit.cost) > 1:
        names.append(save_figure(cost_curve(fit), out / "cost.png"))
    if track:
        names.append(save_figure(sdr_track(track), out / "sdr_track.png"))
    return names
