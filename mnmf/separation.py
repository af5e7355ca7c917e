"""From NMF factors to separated signals: grouping, Wiener/binary masks, inversion.

Each component k contributes the power w_k h_k; a source j is a group of components
with power P_j = Σ_{k∈j} w_k h_k. Its soft (Wiener) mask P_j / Σ_j' P_j' is the
posterior mean of the source under the Gaussian model behind IS-NMF; masks sum to one,
so the estimates add up to the mixture exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.cluster.hierarchy import cut_tree, linkage

from mnmf._validation import as_float_array, check_choice, check_finite, positive_int
from mnmf.stft import istft

Groups = Sequence[Sequence[int]] | ArrayLike

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
        Source index of each component (``comp_source`` in DESIGN.md).
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
        "soft": Wiener masks P_j / Σ P_j' (where every P_j is zero, an equal share).
        "binary": 1 for the loudest source of each bin (first one on ties), else 0.

    Returns
    -------
    masks : array, shape (J, F, N)
        Non-negative, summing to one over sources at every bin.
    """
    W, H = _factors(W, H)
    check_choice(kind, name="kind", choices=("soft", "binary"))
    labels = _labels(groups, W.shape[1])
    n_sources = int(labels.max()) + 1
    powers = source_powers(W, H, labels)
    if kind == "binary":
        winner = np.argmax(powers, axis=0)
        return (winner[None] == np.arange(n_sources)[:, None, None]).astype(W.dtype)
    total = powers.sum(axis=0)
    silent = total <= 0
    powers[:, silent] = 1.0
    total[silent] = n_sources
    powers /= total
    return powers


def separate_components(
    X: ArrayLike,
    W: ArrayLike,
    H: ArrayLike,
    *,
    groups: Groups | None = None,
    mask: str = "soft",
    n_fft: int = 2048,
    hop: int = 512,
    window: str | ArrayLike = "sine",
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
    n_fft, hop, window, length
        Parameters of :func:`mnmf.istft` (use those of the analysis).

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
    return np.stack(
        [istft(m * spectra, n_fft=n_fft, hop=hop, window=window, length=length) for m in masks]
    )


def source_powers(W: NDArray, H: NDArray, labels: NDArray) -> NDArray:
    """Power spectrogram of each source, P_j = Σ_{k: labels[k]=j} w_k h_k, shape (J, F, N).

    ``W`` (F, K) may be any block of frequencies; ``labels`` (K,) covers 0..J-1.
    """
    return np.stack([W[:, labels == j] @ H[labels == j] for j in range(int(labels.max()) + 1)])


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


def _labels(groups: Groups | None, n_components: int) -> NDArray[np.int64]:
    if groups is None:
        return np.arange(n_components)
    is_label_array = isinstance(groups, np.ndarray) or (
        len(groups) > 0 and all(isinstance(g, int | np.integer) for g in groups)
    )
    if is_label_array:
        labels = np.asarray(groups)
        if labels.shape != (n_components,) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(
                f"groups as labels must be integers of shape (K,) = ({n_components},), "
                f"got {labels.shape} {labels.dtype}"
            )
        if labels.min() < 0 or not np.array_equal(np.unique(labels), np.arange(labels.max() + 1)):
            raise ValueError("groups labels must use every source index 0..J-1")
        return labels.astype(np.int64)
    labels = np.full(n_components, -1, dtype=np.int64)
    for j, members in enumerate(groups):
        indices = np.asarray(members, dtype=np.int64).ravel()
        if indices.size == 0:
            raise ValueError(f"groups[{j}] is empty: every source needs a component")
        if indices.min() < 0 or indices.max() >= n_components:
            raise ValueError(f"groups[{j}] has indices outside [0, {n_components})")
        if (labels[indices] >= 0).any():
            raise ValueError(f"groups[{j}] repeats a component already in another group")
        labels[indices] = j
    if (labels < 0).any():
        raise ValueError(f"components {np.flatnonzero(labels < 0).tolist()} belong to no group")
    return labels
