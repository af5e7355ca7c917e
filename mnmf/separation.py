"""From NMF factors to separated signals: grouping, ratio/binary masks, inversion.

Each component k contributes the power w_k h_k; a source j is a group of components
with power P_j = Σ_{k∈j} w_k h_k. Its soft (Wiener) mask P_j / Σ_j' P_j' is the
posterior mean of the source under the Gaussian model behind IS-NMF; masks sum to one,
so the estimates add up to the mixture exactly. :func:`ratio_masks` is the one place
that turns per-source contributions into shares, with one rule for silence.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.cluster.hierarchy import cut_tree, linkage

from mnmf._validation import as_float_array, check_choice, check_finite, positive_int
from mnmf.divergence import FLOOR_RELATIVE
from mnmf.features import Stft
from mnmf.grouping import Groups, SourceGrouping

#: Floor of the log features of :func:`group_components`, relative to the largest value.
LOG_FLOOR_RELATIVE = 1e-12


def group_components(
    W: ArrayLike,
    H: ArrayLike,
    n_sources: int,
    *,
    features: str = "spectra",
) -> NDArray[np.int64]:
    """Cluster NMF components into ``n_sources`` groups (a simple, deterministic rule).

    Components are described by their log templates (``features="spectra"``: components
    of one instrument share spectral shape) or by their log activations
    (``features="activations"``: components of one source start and stop together),
    each standardized to zero mean and unit variance, and clustered by average-linkage
    agglomerative clustering (:func:`scipy.cluster.hierarchy.linkage`) on the Euclidean
    distance of the standardized rows — equivalent to the correlation distance — cut
    into exactly ``n_sources`` clusters. No randomness: the same factors always give
    the same groups. Clusters are numbered by their first component.

    Parameters
    ----------
    W : array, shape (F, K)
    H : array, shape (K, N)
    n_sources : int
        J ≤ K.
    features : {"spectra", "activations"}

    Returns
    -------
    labels : int array, shape (K,)
        Source index of each component (``labels`` in docs/design.md, §2).
    """
    W, H = _factors(W, H)
    K = W.shape[1]
    n_sources = positive_int(n_sources, name="n_sources")
    check_choice(features, name="features", choices=("spectra", "activations"))
    if n_sources > K:
        raise ValueError(f"n_sources={n_sources} exceeds the number of components K={K}")
    if n_sources == K:
        return np.arange(K)
    if n_sources == 1:
        return np.zeros(K, dtype=np.int64)
    described = (W.T if features == "spectra" else H).astype(np.float64)
    # Log powers, floored far below the largest one so that zeros stay finite.
    logs = np.log(np.maximum(described, LOG_FLOOR_RELATIVE * max(described.max(), 1e-300)))
    logs -= logs.mean(axis=1, keepdims=True)
    spread = logs.std(axis=1, keepdims=True)
    logs /= np.where(spread > 0, spread, 1.0)
    # On z-scored rows the Euclidean distance is √(2n(1 − r)), a monotone function of the
    # correlation distance, and unlike it stays defined for a constant row.
    tree = linkage(logs, method="average", metric="euclidean")
    raw = cut_tree(tree, n_clusters=n_sources).ravel()
    _, first_index = np.unique(raw, return_index=True)
    order = np.argsort(first_index)
    relabel = np.empty_like(order)
    relabel[np.unique(raw)[order]] = np.arange(order.size)
    return relabel[raw].astype(np.int64)


#: The masks :func:`wiener_masks` (``kind``) and the masking methods (``mask``) make.
MASK_KINDS = ("soft", "binary")


def wiener_masks(
    W: ArrayLike,
    H: ArrayLike,
    *,
    groups: Groups | None = None,
    kind: str = "soft",
) -> NDArray[np.floating]:
    """Time-frequency masks of each component or group of components.

    Parameters
    ----------
    W : array, shape (F, K)
    H : array, shape (K, N)
    groups : sequence of index sequences, or int array of shape (K,), optional
        Which components form each source: ``[[0, 2], [1, 3]]`` or the labels
        ``[0, 1, 0, 1]`` (as returned by :func:`group_components`). Every component must
        belong to exactly one source. By default each component is its own source.
    kind : {"soft", "binary"}
        "soft": Wiener masks P_j / Σ P_j' (:func:`ratio_masks`: an equal share where
        the total is silent, at most 1e-12 × its mean).
        "binary": 1 for the loudest source of each bin (first one on ties), else 0.

    Returns
    -------
    masks : array, shape (J, F, N)
        Non-negative, summing to one over sources at every bin.
    """
    W, H = _factors(W, H)
    check_choice(kind, name="kind", choices=MASK_KINDS)
    grouping = SourceGrouping.from_groups(groups, W.shape[1])
    powers = grouping.source_powers(W, H)
    if kind == "binary":
        return binary_masks(powers)
    return ratio_masks(powers)


def binary_masks(contributions: NDArray) -> NDArray:
    """1 for the largest contribution at every point, 0 for the others (over the first
    axis; the first one on ties): the ideal binary mask of the contributions.

    Parameters
    ----------
    contributions : array, shape (J, ...)
        Non-negative per-source contributions (powers, magnitudes, or soft masks).

    Returns
    -------
    masks : array, shape (J, ...)
        0 or 1, summing to one over sources everywhere, in the input's float type
        (float64 for integer input).
    """
    contributions = np.asarray(contributions)
    winner = np.argmax(contributions, axis=0)
    labels = np.arange(contributions.shape[0]).reshape((-1,) + (1,) * winner.ndim)
    dtype = contributions.dtype if np.issubdtype(contributions.dtype, np.floating) else np.float64
    return (winner[None] == labels).astype(dtype)


def ratio_masks(contributions: NDArray, *, floor_relative: float = FLOOR_RELATIVE) -> NDArray:
    """Shares of each source in a sum: c_j / Σ_j' c_j', over the first axis.

    Parameters
    ----------
    contributions : array, shape (J, ...)
        Non-negative per-source contributions (powers, magnitudes, powers times gains).
    floor_relative : float
        Silence rule: where the total is at most ``floor_relative`` times its mean (or
        exactly zero), every source gets an equal share 1/J.

    Returns
    -------
    masks : array, shape (J, ...)
        Non-negative, summing to one over sources everywhere, in the input's float type.
    """
    n_sources = contributions.shape[0]
    total = contributions.sum(axis=0)
    floor = floor_relative * max(float(total.mean()), np.finfo(np.float64).tiny)
    silent = total <= floor
    shares = contributions / np.where(silent, 1.0, total)
    return np.where(silent, shares.dtype.type(1.0 / n_sources), shares)


def separate_components(
    X: ArrayLike,
    W: ArrayLike,
    H: ArrayLike,
    *,
    groups: Groups | None = None,
    mask: str = "soft",
    stft: Stft | None = None,
    length: int | None = None,
) -> NDArray[np.floating]:
    """Separate a mixture into sources from an NMF of its power spectrogram.

    Parameters
    ----------
    X : complex array, shape (F, N) or (F, N, I)
        STFT of the mixture (:func:`mnmf.stft`). With several channels the same masks
        are applied to every channel, giving source images.
    W : array, shape (F, K)
    H : array, shape (K, N)
    groups, mask
        See :func:`wiener_masks` (``mask`` is its ``kind``).
    stft : Stft, optional
        The settings X was analysed with (default :class:`mnmf.Stft`).
    length : int, optional
        Samples to return (the mixture's length restores it exactly).

    Returns
    -------
    estimates : array, shape (J, samples) or (J, samples, I)
        One time-domain signal per source; with soft masks they sum to the mixture.
    """
    spectra = np.asarray(X)
    if not np.iscomplexobj(spectra) or spectra.ndim not in (2, 3):
        raise ValueError(
            f"X must be a complex STFT of shape (F, N) or (F, N, I), got {spectra.shape}"
        )
    masks = wiener_masks(W, H, groups=groups, kind=mask)
    if masks.shape[1:] != spectra.shape[:2]:
        raise ValueError(
            f"W @ H has shape {masks.shape[1:]} but X has (F, N) = {spectra.shape[:2]}"
        )
    masks = masks.astype(spectra.real.dtype, copy=False)
    if spectra.ndim == 3:
        masks = masks[..., None]
    settings = Stft() if stft is None else stft
    return np.stack([settings.synthesize(m * spectra, length=length) for m in masks])


def _factors(W: ArrayLike, H: ArrayLike) -> tuple[NDArray, NDArray]:
    W = as_float_array(W, name="W", ndim=2)
    H = as_float_array(H, name="H", ndim=2)
    for array, name in ((W, "W"), (H, "H")):
        check_finite(array, name=name)
        if array.min() < 0:
            raise ValueError(f"{name} must be non-negative")
    if W.shape[1] != H.shape[0]:
        raise ValueError(f"W (F, K) and H (K, N) disagree on K: {W.shape} and {H.shape}")
    return W, H
