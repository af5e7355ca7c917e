"""Separation scores with mir_eval's BSS Eval, always next to the mixture's own scores.

``mode="images"`` scores multichannel images with :func:`mir_eval.separation.bss_eval_images`
(SDR, ISR, SIR, SAR); ``mode="sources"`` scores one reference channel with
:func:`mir_eval.separation.bss_eval_sources` (SDR, SIR, SAR). Given the mixture, the same
metrics are computed with the mixture as every estimate — the do-nothing baseline — and
the improvements ΔSDR and ΔSIR are reported, so that gains are explicit.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mnmf._validation import as_float_array, check_choice, check_finite

METRICS = {"images": ("SDR", "ISR", "SIR", "SAR"), "sources": ("SDR", "SIR", "SAR")}
IMPROVED = ("SDR", "SIR")


@dataclass(frozen=True)
class Evaluation:
    """Scores of J estimates against J references.

    Attributes
    ----------
    mode : {"images", "sources"}
    scores : dict of str to array (J,)
        Each metric in dB, indexed by *reference* source j.
    permutation : int array (J,)
        ``permutation[j]`` is the estimate matched to reference j (best mean SIR).
    mixture_scores : dict of str to array (J,), or None
        The same metrics with the mixture as every estimate.
    """

    mode: str
    scores: dict[str, NDArray[np.float64]]
    permutation: NDArray[np.int64]
    mixture_scores: dict[str, NDArray[np.float64]] | None = None

    @property
    def improvements(self) -> dict[str, NDArray[np.float64]]:
        """ΔSDR and ΔSIR per reference source (empty without a mixture)."""
        if self.mixture_scores is None:
            return {}
        return {f"Δ{m}": self.scores[m] - self.mixture_scores[m] for m in IMPROVED}

    def mean(self, metric: str) -> float:
        """Mean over sources of a metric (``"SDR"``, ``"ΔSDR"``, …)."""
        table = self.scores | self.improvements
        check_choice(metric, name="metric", choices=tuple(table))
        return float(np.mean(table[metric]))

    def records(self) -> list[dict[str, object]]:
        """Tidy rows, one per source × metric, ready for a DataFrame or CSV.

        Each row: ``source`` (reference index, from 0), ``estimate`` (matched estimate
        index), ``metric``, ``value``, and when the mixture was given, ``mixture`` (its
        value) and ``improvement`` (value − mixture; for SDR and SIR, None otherwise).
        """
        rows = []
        for metric, values in self.scores.items():
            for j, value in enumerate(values):
                row: dict[str, object] = {
                    "source": j,
                    "estimate": int(self.permutation[j]),
                    "metric": metric,
                    "value": float(value),
                }
                if self.mixture_scores is not None:
                    baseline = float(self.mixture_scores[metric][j])
                    row["mixture"] = baseline
                    row["improvement"] = float(value) - baseline if metric in IMPROVED else None
                rows.append(row)
        return rows

    def summary(self) -> dict[str, float]:
        """Mean of every metric and improvement over sources."""
        return {name: self.mean(name) for name in self.scores | self.improvements}


def _signals(value: ArrayLike, *, name: str, mode: str) -> NDArray[np.float64]:
    expected = 3 if mode == "images" else 2
    layout = "(J, samples, I)" if mode == "images" else "(J, samples)"
    array = as_float_array(value, name=name, ndim=(2, 3)).astype(np.float64, copy=False)
    if array.ndim != expected:
        raise ValueError(f"{name} must be {layout} for mode={mode!r}, got shape {array.shape}")
    check_finite(array, name=name)
    return array


def evaluate(
    estimates: ArrayLike,
    references: ArrayLike,
    *,
    mixture: ArrayLike | None = None,
    mode: str = "images",
    reference_channel: int = 0,
) -> Evaluation:
    """BSS Eval scores of separated sources, with the permutation solved.

    Parameters
    ----------
    estimates : array, shape (J, samples, I) — or (J, samples) for ``mode="sources"``
        Separated images (as returned by :func:`mnmf.separate`).
    references : array, same shape
        True images (:attr:`mnmf.Mixture.images`).
    mixture : array, shape (samples, I) or (samples,), optional
        The mixture; its own scores and the improvements are then reported.
    mode : {"images", "sources"}
        ``"images"``: :func:`mir_eval.separation.bss_eval_images` on all channels
        (SDR, ISR, SIR, SAR). ``"sources"``: :func:`mir_eval.separation.bss_eval_sources`
        on channel ``reference_channel`` of 3-D inputs (SDR, SIR, SAR).
    reference_channel : int
        The channel scored by ``mode="sources"`` when inputs are images.

    Returns
    -------
    Evaluation

    Notes
    -----
    J must be at least 2: with one source, SIR is undefined and mir_eval's numbers are
    meaningless. mir_eval also cannot score an all-zero reference or estimate; both are
    refused up front with the index.
    """
    check_choice(mode, name="mode", choices=tuple(METRICS))
    estimates_array = as_float_array(estimates, name="estimates", ndim=(2, 3))
    references_array = as_float_array(references, name="references", ndim=(2, 3))
    if estimates_array.shape != references_array.shape:
        raise ValueError(
            f"estimates and references must have the same shape, got {estimates_array.shape} "
            f"and {references_array.shape}"
        )
    mixture_array = None
    if mixture is not None:
        mixture_array = as_float_array(mixture, name="mixture", ndim=(1, 2)).astype(np.float64)
        check_finite(mixture_array, name="mixture")
        if mixture_array.shape != references_array.shape[1:]:
            raise ValueError(
                f"mixture must have shape {references_array.shape[1:]} (one reference's), "
                f"got {mixture_array.shape}"
            )
    if mode == "sources" and references_array.ndim == 3:
        n_channels = references_array.shape[2]
        if not 0 <= reference_channel < n_channels:
            raise ValueError(
                f"reference_channel must lie in [0, {n_channels}), got {reference_channel}"
            )
        estimates_array = estimates_array[..., reference_channel]
        references_array = references_array[..., reference_channel]
        if mixture_array is not None:
            mixture_array = mixture_array[..., reference_channel]
    estimates_array = _signals(estimates_array, name="estimates", mode=mode)
    references_array = _signals(references_array, name="references", mode=mode)
    n_sources = references_array.shape[0]
    if n_sources < 2:
        raise ValueError(
            f"evaluation needs at least 2 sources (got J={n_sources}): with one source SIR is "
            "undefined and mir_eval's scores are meaningless"
        )
    for name, array in (("references", references_array), ("estimates", estimates_array)):
        silent = [j for j in range(n_sources) if not np.any(array[j])]
        if silent:
            raise ValueError(f"{name} {silent} are all zeros; BSS Eval cannot score silence")

    scores, permutation = _bss_eval(estimates_array, references_array, mode, permute=True)
    mixture_scores = None
    if mixture_array is not None:
        as_estimates = np.broadcast_to(mixture_array, references_array.shape)
        mixture_scores, _ = _bss_eval(np.array(as_estimates), references_array, mode, permute=False)
    return Evaluation(mode, scores, permutation, mixture_scores)


def _bss_eval(
    estimates: NDArray, references: NDArray, mode: str, *, permute: bool
) -> tuple[dict[str, NDArray], NDArray]:
    from mir_eval import separation  # imported on use: it is slow to import

    with warnings.catch_warnings():
        # mir_eval.separation is deprecated upstream (to be removed in 0.9, which we pin out).
        warnings.simplefilter("ignore", FutureWarning)
        if mode == "images":
            sdr, isr, sir, sar, permutation = separation.bss_eval_images(
                references, estimates, compute_permutation=permute
            )
            values = (sdr, isr, sir, sar)
        else:
            sdr, sir, sar, permutation = separation.bss_eval_sources(
                references, estimates, compute_permutation=permute
            )
            values = (sdr, sir, sar)
    scores = {
        m: np.asarray(v, dtype=np.float64) for m, v in zip(METRICS[mode], values, strict=True)
    }
    return scores, np.asarray(permutation, dtype=np.int64)
