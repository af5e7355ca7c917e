"""Which NMF components make up which source: one object for labels → J and slices.

Every model with several sources (the multichannel models, masks, the separation
methods) describes the K components' assignment by a :class:`SourceGrouping` built once
— from per-source counts, from labels, or from lists of indices — so that the number of
sources and each source's components are never re-derived from the labels.

See docs/design.md, §2.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mnmf._validation import positive_int

#: Ways to say which components form each source: labels (K,) or lists of indices.
Groups = Sequence[Sequence[int]] | ArrayLike


@dataclass(frozen=True, eq=False)
class SourceGrouping:
    """The source j(k) of each of K components, covering every source 0..J−1.

    Build it with :meth:`from_counts`, :meth:`from_labels` or :meth:`from_groups`.

    Attributes
    ----------
    labels : int array, shape (K,)
        Source index of every component (read-only).
    n_sources : int
        J.
    members : tuple of J int arrays
        The component indices of each source, ascending.
    """

    labels: NDArray[np.int64]
    n_sources: int = field(init=False)
    members: tuple[NDArray[np.intp], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        given = np.asarray(self.labels)
        if given.ndim != 1 or given.size == 0 or not np.issubdtype(given.dtype, np.integer):
            raise ValueError(
                f"labels must be a non-empty 1-D integer array, got {given.dtype} {given.shape}"
            )
        if given.min() < 0 or not np.array_equal(np.unique(given), np.arange(given.max() + 1)):
            raise ValueError("labels must use every source index 0..J-1")
        labels = given.astype(np.int64)
        labels.setflags(write=False)
        n_sources = int(labels.max()) + 1
        members = tuple(np.flatnonzero(labels == j) for j in range(n_sources))
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "n_sources", n_sources)
        object.__setattr__(self, "members", members)

    # ------------------------------------------------------------------ builders
    @classmethod
    def from_counts(cls, n_sources: int, n_components: int | Sequence[int]) -> SourceGrouping:
        """K_j components for source j, in source order (an int gives every source the same)."""
        n_sources = positive_int(n_sources, name="n_sources")
        if isinstance(n_components, int | np.integer) and not isinstance(n_components, bool):
            counts = [positive_int(n_components, name="n_components")] * n_sources
        else:
            try:
                counts = [positive_int(c, name="n_components") for c in n_components]  # type: ignore[union-attr]
            except TypeError:
                raise ValueError(
                    f"n_components must be an int or one count per source, got {n_components!r}"
                ) from None
        if len(counts) != n_sources:
            raise ValueError(
                f"n_components must be an int or one count per source ({n_sources}), "
                f"got {len(counts)}"
            )
        return cls(np.repeat(np.arange(n_sources), counts))

    @classmethod
    def from_labels(cls, labels: ArrayLike, *, n_components: int | None = None) -> SourceGrouping:
        """Labels (K,) of integers that use every source index 0..J−1."""
        array = np.asarray(labels)
        if array.ndim != 1 or array.size == 0 or not np.issubdtype(array.dtype, np.integer):
            raise ValueError(
                f"labels must be a non-empty 1-D integer array, got {array.dtype} {array.shape}"
            )
        if n_components is not None and array.shape != (n_components,):
            raise ValueError(f"labels must have shape (K,) = ({n_components},), got {array.shape}")
        if array.min() < 0 or not np.array_equal(np.unique(array), np.arange(array.max() + 1)):
            raise ValueError("labels must use every source index 0..J-1")
        return cls(array)

    @classmethod
    def from_groups(cls, groups: Groups | None, n_components: int) -> SourceGrouping:
        """From labels or from lists of component indices (``[[0, 2], [1, 3]]``).

        Every component must belong to exactly one source; ``None`` makes each component
        its own source.
        """
        if groups is None:
            return cls(np.arange(n_components))
        if isinstance(groups, SourceGrouping):
            if groups.n_components != n_components:
                raise ValueError(
                    f"groups has {groups.n_components} components, expected {n_components}"
                )
            return groups
        is_labels = isinstance(groups, np.ndarray) or (
            len(groups) > 0 and all(isinstance(g, int | np.integer) for g in groups)  # type: ignore[arg-type]
        )
        if is_labels:
            return cls.from_labels(np.asarray(groups), n_components=n_components)
        labels = np.full(n_components, -1, dtype=np.int64)
        for j, group in enumerate(groups):  # type: ignore[arg-type]
            indices = np.asarray(group, dtype=np.int64).ravel()
            if indices.size == 0:
                raise ValueError(f"groups[{j}] is empty: every source needs a component")
            if indices.min() < 0 or indices.max() >= n_components:
                raise ValueError(f"groups[{j}] has indices outside [0, {n_components})")
            if (labels[indices] >= 0).any():
                raise ValueError(f"groups[{j}] repeats a component already in another group")
            labels[indices] = j
        if (labels < 0).any():
            raise ValueError(f"components {np.flatnonzero(labels < 0).tolist()} belong to no group")
        return cls(labels)

    # ------------------------------------------------------------------ queries
    @property
    def n_components(self) -> int:
        """K, the total number of components."""
        return int(self.labels.size)

    @property
    def counts(self) -> NDArray[np.int64]:
        """K_j of every source, shape (J,)."""
        return np.array([m.size for m in self.members], dtype=np.int64)

    def per_component(self, per_source: NDArray) -> NDArray:
        """Spread a per-source array (J, …) to its components: (K, …)."""
        return per_source[self.labels]

    def sum_per_source(self, per_component: NDArray, *, axis: int = 0) -> NDArray:
        """Sum an array over each source's components along ``axis`` (length K → J)."""
        moved = np.moveaxis(per_component, axis, 0)
        sums = np.stack([moved[m].sum(axis=0) for m in self.members])
        return np.moveaxis(sums, 0, axis)

    def sources_with_all(self, flags: NDArray[np.bool_]) -> NDArray[np.bool_]:
        """For each source, whether ``flags`` (K,) holds for every one of its components."""
        return np.array([bool(flags[m].all()) for m in self.members])

    def source_powers(self, W: NDArray, H: NDArray) -> NDArray:
        """Power spectrogram of each source, P_j = Σ_{k∈j} w_k h_k, shape (J, F, N).

        ``W`` (F, K) may be any block of frequencies.
        """
        return np.stack([W[:, m] @ H[m] for m in self.members])
