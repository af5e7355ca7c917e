"""Separation scores with BSS Eval, always next to the mixture's own scores.

``mode="images"`` scores multichannel images as :func:`mir_eval.separation.bss_eval_images`
does (SDR, ISR, SIR, SAR); ``mode="sources"`` scores one reference channel as
:func:`mir_eval.separation.bss_eval_sources` does (SDR, SIR, SAR). Given the mixture, the
same metrics are computed with the mixture as every estimate — the do-nothing baseline —
and the improvements ΔSDR and ΔSIR are reported, so that gains are explicit.

Two backends compute the same numbers: ``"fast"`` (default, :mod:`mnmf.bss_eval`:
the references' systems factorized once and reused for every estimate, permutation and
the mixture) and ``"mir_eval"`` (mir_eval 0.8.2 itself, for cross-checks).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mnmf._validation import as_float_array, check_choice, check_finite, finite_real
from mnmf.bss_eval import METRICS, ReferenceSubspaces, select_pairs

IMPROVED = ("SDR", "SIR")
BACKENDS = ("fast", "mir_eval")


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


def errors_near_times(
    estimates: ArrayLike,
    references: ArrayLike,
    *,
    times: ArrayLike,
    fs: float,
    half_width: float,
) -> dict[str, NDArray[np.float64]]:
    """Mean absolute sample error of each estimate near given times and elsewhere.

    The seed slides' sine study ("les erreurs se présentent aux points de
    discontinuité") measures separation errors at the gates' edges: the STFT smears a
    hard edge over a frame, which no time-frequency mask can undo.

    Parameters
    ----------
    estimates, references : arrays, shape (J, samples) or (J, samples, I)
        Estimated and true sources (or images), in the same order.
    times : array, shape (n_times,)
        The times (s) to look near, e.g. :func:`mnmf.data.synthetic.gate_edges`.
    fs : float
        Sample rate (Hz).
    half_width : float
        Samples within this many seconds of a time are "near" it (e.g. half an STFT
        window).

    Returns
    -------
    dict
        ``near``, ``elsewhere`` (J,): mean |estimate − reference| over those samples
        (NaN where there are none); ``ratio`` (J,): near / elsewhere; ``near_share``:
        the fraction of samples that are near a time (scalar array).
    """
    estimates = np.asarray(estimates, dtype=np.float64)
    references = np.asarray(references, dtype=np.float64)
    if estimates.shape != references.shape or estimates.ndim not in (2, 3):
        raise ValueError(
            "estimates and references must have the same shape (J, samples[, I]), got "
            f"{estimates.shape} and {references.shape}"
        )
    fs = finite_real(fs, name="fs", minimum=0.0)
    half_width = finite_real(half_width, name="half_width", minimum=0.0)
    n_samples = estimates.shape[1]
    near = np.zeros(n_samples, dtype=bool)
    for time in np.asarray(times, dtype=np.float64).ravel():
        first = max(0, int(np.ceil((time - half_width) * fs)))
        last = min(n_samples, int(np.floor((time + half_width) * fs)) + 1)
        near[first:last] = True
    error = np.abs(estimates - references)
    if error.ndim == 3:
        error = error.mean(axis=2)

    def mean_over(mask: NDArray[np.bool_]) -> NDArray[np.float64]:
        if not mask.any():
            return np.full(error.shape[0], np.nan)
        return error[:, mask].mean(axis=1)

    near_error, elsewhere = mean_over(near), mean_over(~near)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(elsewhere > 0, near_error / elsewhere, np.nan)
    return {
        "near": near_error,
        "elsewhere": elsewhere,
        "ratio": ratio,
        "near_share": np.asarray(near.mean() if n_samples else np.nan),
    }


def _signals(value: ArrayLike, *, name: str, mode: str) -> NDArray[np.float64]:
    expected = 3 if mode == "images" else 2
    layout = "(J, samples, I)" if mode == "images" else "(J, samples)"
    array = as_float_array(value, name=name, ndim=(2, 3)).astype(np.float64, copy=False)
    if array.ndim != expected:
        raise ValueError(f"{name} must be {layout} for mode={mode!r}, got shape {array.shape}")
    check_finite(array, name=name)
    return array


def _scored_channel(array: NDArray, *, mode: str, reference_channel: int, n_dims: int) -> NDArray:
    """The channel ``mode="sources"`` scores, when the input has channels (``n_dims``-D)."""
    if mode != "sources" or array.ndim != n_dims:
        return array
    n_channels = array.shape[-1]
    if not 0 <= reference_channel < n_channels:
        raise ValueError(
            f"reference_channel must lie in [0, {n_channels}), got {reference_channel}"
        )
    return array[..., reference_channel]


def _checked_references(
    references: ArrayLike, *, mode: str, reference_channel: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """References as given (J, samples[, I]) and as scored; J >= 2, none silent."""
    given = as_float_array(references, name="references", ndim=(2, 3))
    scored = _scored_channel(given, mode=mode, reference_channel=reference_channel, n_dims=3)
    scored = _signals(scored, name="references", mode=mode)
    n_sources = scored.shape[0]
    if n_sources < 2:
        raise ValueError(
            f"evaluation needs at least 2 sources (got J={n_sources}): with one source SIR is "
            "undefined and mir_eval's scores are meaningless"
        )
    _refuse_silence(scored, name="references")
    return given, scored


def _checked_mixture(
    mixture: ArrayLike, *, references_shape: tuple[int, ...], mode: str, reference_channel: int
) -> NDArray[np.float64]:
    """The mixture as scored: (samples, I) in images mode, (samples,) in sources mode."""
    mixture_array = as_float_array(mixture, name="mixture", ndim=(1, 2)).astype(np.float64)
    check_finite(mixture_array, name="mixture")
    if mixture_array.shape != references_shape[1:]:
        raise ValueError(
            f"mixture must have shape {references_shape[1:]} (one reference's), "
            f"got {mixture_array.shape}"
        )
    mixture_array = _scored_channel(
        mixture_array, mode=mode, reference_channel=reference_channel, n_dims=2
    )
    if not np.any(mixture_array):
        raise ValueError("mixture is all zeros; BSS Eval cannot score silence")
    return mixture_array


def _refuse_silence(array: NDArray, *, name: str) -> None:
    silent = [j for j in range(array.shape[0]) if not np.any(array[j])]
    if silent:
        raise ValueError(f"{name} {silent} are all zeros; BSS Eval cannot score silence")


def _checked_mixture_scores(
    mixture_scores: Mapping[str, ArrayLike], *, mode: str, n_sources: int
) -> dict[str, NDArray[np.float64]]:
    """Cached mixture scores: exactly ``METRICS[mode]``, each (J,), no NaN (±inf allowed)."""
    if not isinstance(mixture_scores, Mapping):
        raise ValueError(
            f"mixture_scores must be a dict of metric to array, got {type(mixture_scores)}"
        )
    expected = METRICS[mode]
    if set(mixture_scores) != set(expected):
        raise ValueError(
            f"mixture_scores must have exactly the keys {list(expected)} for mode={mode!r}, "
            f"got {sorted(mixture_scores)}"
        )
    checked = {}
    for metric in expected:
        values = np.asarray(mixture_scores[metric])
        if values.shape != (n_sources,) or not np.issubdtype(values.dtype, np.number):
            raise ValueError(
                f"mixture_scores[{metric!r}] must be a numeric array of shape ({n_sources},), "
                f"got shape {values.shape} and dtype {values.dtype}"
            )
        if np.iscomplexobj(values) or np.isnan(values).any():
            raise ValueError(f"mixture_scores[{metric!r}] must be real and not NaN")
        checked[metric] = values.astype(np.float64)
    return checked


def evaluate(
    estimates: ArrayLike,
    references: ArrayLike,
    *,
    mixture: ArrayLike | None = None,
    mode: str = "images",
    reference_channel: int = 0,
    backend: str = "fast",
    mixture_scores: Mapping[str, ArrayLike] | None = None,
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
        ``"images"``: mir_eval's ``bss_eval_images`` on all channels (SDR, ISR, SIR,
        SAR). ``"sources"``: mir_eval's ``bss_eval_sources`` on channel
        ``reference_channel`` of 3-D inputs (SDR, SIR, SAR).
    reference_channel : int
        The channel scored by ``mode="sources"`` when inputs are images.
    backend : {"fast", "mir_eval"}
        ``"fast"``: :mod:`mnmf.bss_eval`, the same scores (to within 1e-7 dB on real
        and random signals) and permutation as mir_eval 0.8.2, 10-20x faster; the
        mixture's scores reuse the references' factorization. ``"mir_eval"``:
        :mod:`mir_eval.separation` itself.
    mixture_scores : dict of str to array (J,), optional
        The mixture's own scores computed before (:func:`score_mixture`, or
        :attr:`Evaluation.mixture_scores` of an earlier call with the same references,
        mode and reference channel): used as given instead of being recomputed. Keys
        must be exactly the mode's metrics. ``mixture``, when also given, is then only
        checked.

    Returns
    -------
    Evaluation

    Notes
    -----
    J must be at least 2: with one source, SIR is undefined and mir_eval's numbers are
    meaningless. mir_eval also cannot score an all-zero reference or estimate; both are
    refused up front with the index, and so is an all-zero mixture.
    """
    check_choice(mode, name="mode", choices=tuple(METRICS))
    check_choice(backend, name="backend", choices=BACKENDS)
    estimates_array = as_float_array(estimates, name="estimates", ndim=(2, 3))
    references_array = as_float_array(references, name="references", ndim=(2, 3))
    if estimates_array.shape != references_array.shape:
        raise ValueError(
            f"estimates and references must have the same shape, got {estimates_array.shape} "
            f"and {references_array.shape}"
        )
    mixture_array = None
    if mixture is not None:
        mixture_array = _checked_mixture(
            mixture,
            references_shape=references_array.shape,
            mode=mode,
            reference_channel=reference_channel,
        )
    _, references_array = _checked_references(
        references_array, mode=mode, reference_channel=reference_channel
    )
    estimates_array = _scored_channel(
        estimates_array, mode=mode, reference_channel=reference_channel, n_dims=3
    )
    estimates_array = _signals(estimates_array, name="estimates", mode=mode)
    _refuse_silence(estimates_array, name="estimates")
    n_sources = references_array.shape[0]
    cached = None
    if mixture_scores is not None:
        cached = _checked_mixture_scores(mixture_scores, mode=mode, n_sources=n_sources)

    subspaces = None
    if backend == "fast":
        subspaces = _subspaces(references_array, mode=mode)
        pairs = subspaces.pair_scores(_with_channels(estimates_array, mode=mode), mode=mode)
        scores, permutation = select_pairs(pairs, compute_permutation=True)
    else:
        scores, permutation = _mir_eval(estimates_array, references_array, mode, permute=True)
    if cached is not None:
        mixture_result = cached
    elif mixture_array is not None:
        mixture_result = _score_mixture(
            references_array, mixture_array, mode=mode, backend=backend, subspaces=subspaces
        )
    else:
        mixture_result = None
    return Evaluation(mode, scores, permutation, mixture_result)


def score_mixture(
    references: ArrayLike,
    mixture: ArrayLike,
    *,
    mode: str = "images",
    reference_channel: int = 0,
    backend: str = "fast",
) -> dict[str, NDArray[np.float64]]:
    """BSS Eval scores of the mixture taken as the estimate of every source.

    The do-nothing baseline that :func:`evaluate` reports next to the estimates' scores
    (no permutation: the mixture is scored against each reference). Cache the result
    and pass it to :func:`evaluate` as ``mixture_scores`` to score many separations of
    one mixture without recomputing it.

    Parameters
    ----------
    references : array, shape (J, samples, I) — or (J, samples) for ``mode="sources"``
        True images (:attr:`mnmf.Mixture.images`).
    mixture : array, shape (samples, I) — or (samples,) with 2-D references
        The mixture (:attr:`mnmf.Mixture.mix`).
    mode : {"images", "sources"}
        As in :func:`evaluate`.
    reference_channel : int
        The channel scored by ``mode="sources"`` when inputs have channels.
    backend : {"fast", "mir_eval"}
        As in :func:`evaluate`.

    Returns
    -------
    dict of str to array (J,)
        The mode's metrics in dB (``"SDR"``, [``"ISR"``,] ``"SIR"``, ``"SAR"``), indexed
        by reference source.
    """
    check_choice(mode, name="mode", choices=tuple(METRICS))
    check_choice(backend, name="backend", choices=BACKENDS)
    given, references_array = _checked_references(
        references, mode=mode, reference_channel=reference_channel
    )
    mixture_array = _checked_mixture(
        mixture, references_shape=given.shape, mode=mode, reference_channel=reference_channel
    )
    return _score_mixture(references_array, mixture_array, mode=mode, backend=backend)


def _score_mixture(
    references: NDArray[np.float64],
    mixture: NDArray[np.float64],
    *,
    mode: str,
    backend: str,
    subspaces: ReferenceSubspaces | None = None,
) -> dict[str, NDArray[np.float64]]:
    """Scores of the (checked) mixture against each (checked) reference."""
    if backend == "mir_eval":
        as_estimates = np.array(np.broadcast_to(mixture, references.shape))
        scores, _ = _mir_eval(as_estimates, references, mode, permute=False)
        return scores
    if subspaces is None:
        subspaces = _subspaces(references, mode=mode)
    pairs = subspaces.pair_scores(_with_channels(mixture[None], mode=mode), mode=mode)
    return {metric: values[:, 0] for metric, values in pairs.items()}


def _with_channels(array: NDArray[np.float64], *, mode: str) -> NDArray[np.float64]:
    """(J, samples) sources as one-channel images (J, samples, 1)."""
    return array[..., None] if mode == "sources" else array


def _subspaces(references: NDArray[np.float64], *, mode: str) -> ReferenceSubspaces:
    return ReferenceSubspaces(_with_channels(references, mode=mode))


def _mir_eval(
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
