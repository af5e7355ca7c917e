"""NMF with block-sparse activations: the fine passes of the DJ-mix decomposition.

After the coarse passes of :func:`mnmf.djmix.decompose.decompose_mix` every track's
activations H_i are zero outside a narrow band around the track's path through the mix,
and multiplicative updates keep zeros zero. A dense H of an hour-long mix at fine hops
does not fit in memory (16 tracks of 4 min against 60 min at 0.1 s: 1.4 × 10⁹ cells),
and a dense update spends nearly all its time on entries that stay zero. Here the rows
of fixed templates hold their activations in a fixed sparsity pattern (CSC: columns are
mix frames), and their MU statistics are computed only at the stored entries — a
*sampled dense-dense matrix product* (SDDMM):

    num[k, n] = Σ_f W[f, k] (V ∘ V̂^(β−2))[f, n],    den[k, n] = Σ_f W[f, k] V̂^(β−1)[f, n]

for each stored (k, n), gathered in bounded chunks. Rows of free templates (the small
free part W_a H_a of effects and extra sounds) stay dense and are updated as in plain NMF.

Two pieces, following the source-model / data-model split of :mod:`mnmf.algorithms.nmf`:

- :class:`BandedNMFSource`: the source model (state W, H; MU updates from statistics;
  normalization of free columns; user units), a :class:`mnmf.sources.MUSourceModel`;
- :class:`SparseBetaNMFModel`: the data model (scaled data in frame blocks, V̂ = W H as a
  sparse product, the SDDMM statistics, the cost), registered as the algorithm
  ``"sparse-mu"`` of :func:`mnmf.fit_nmf`, so the engine (:func:`mnmf.engine.run`) owns
  the iterations, cost history, stopping rule, callbacks and progress bar::

      fit = mnmf.fit_nmf(V, source_model=BandedNMFSource(W, H, fix_W=fixed),
                         algorithm="sparse-mu", max_iter=200)

One step is the same sequence as the dense frame-blocked MU (:class:`BetaNMFModel`):
per block of frames, H updated from V̂ of the old H, then W's statistics from V̂ of the
new H; then the free columns of W, then normalization. The numbers agree with the dense
fit to rounding (summation order only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse
from numpy.typing import ArrayLike, NDArray

from mnmf.algorithms.nmf import DATA_MODELS, BetaNMFModel
from mnmf.divergence import BetaDivergence, mu_factor

#: Stored entries gathered at once by the entry-wise SDDMM (two (chunk, F) gathers).
SDDMM_CHUNK = 4096
#: Frames per tile: the products are computed tile by tile on the tile's distinct rows.
TILE_FRAMES = 16
#: A tile is computed entry by entry instead when its distinct rows × frames exceed its
#: stored entries this many times (a scattered pattern).
DENSE_TILE_RATIO = 16


@dataclass(frozen=True)
class _Tile:
    """A run of frames of the sparse rows and how its products are computed."""

    frames: slice  # absolute frames
    entries: slice  # its stored entries
    rows: NDArray[np.intp] | None  # distinct rows (sorted); None: entry by entry
    local_rows: NDArray[np.intp]  # per entry: index into ``rows`` (or the row itself)
    local_cols: NDArray[np.intp]  # per entry: frame − frames.start


class BandedNMFSource:
    """Plain NMF P = W H whose fixed-template rows of H are sparse with a fixed pattern.

    Parameters
    ----------
    W : array, shape (F, K)
        Every template: the fixed ones (kept bit-identical) and the initial values of the
        free ones. No column is drawn at random.
    H : scipy.sparse matrix or array, shape (K, N)
        Initial activations (user units). For the rows of fixed columns its stored
        entries are the *pattern*: the only entries that may become non-zero (an entry
        left out stays zero, as with an ``H_mask``). Rows of free columns are held dense.
    fix_W : bool array of shape (K,), sequence of int, or bool
        Fixed columns (``True``: all of them). At least one column must be fixed.
    normalize : bool
        After each iteration rescale every free column of W to unit sum, the scale moved
        into its row of H (cost unchanged).

    Notes
    -----
    ``W`` and ``H`` are held in the data model's internal units (see
    :class:`mnmf.NMFFactors`); :meth:`parameters` returns user units, ``H`` as a
    ``scipy.sparse.csc_array`` (K, N) (free rows stored in full). Needs the data model
    ``algorithm="sparse-mu"``: the dense MU would form W H densely.
    """

    frame_separable = True

    def __init__(
        self,
        W: ArrayLike,
        H: ArrayLike,
        *,
        fix_W: bool | Sequence[int] | ArrayLike = True,
        normalize: bool = True,
    ) -> None:
        W = np.asarray(W)
        if W.ndim != 2 or not np.all(np.isfinite(W)) or (W < 0).any():
            raise ValueError("W must be a finite non-negative (F, K) array")
        H_sparse = scipy.sparse.csc_array(H)
        if H_sparse.shape[0] != W.shape[1]:
            raise ValueError(
                f"H must have K = {W.shape[1]} rows (one per column of W), got {H_sparse.shape}"
            )
        if H_sparse.nnz and (not np.all(np.isfinite(H_sparse.data)) or (H_sparse.data < 0).any()):
            raise ValueError("H must be finite and non-negative")
        K = W.shape[1]
        fixed = np.zeros(K, dtype=bool)
        spec = np.asarray(fix_W)
        if spec.dtype == bool and spec.ndim == 0:
            fixed[:] = bool(spec)
        elif spec.dtype == bool:
            if spec.shape != (K,):
                raise ValueError(f"fix_W as a mask must have shape (K,) = ({K},), got {spec.shape}")
            fixed = spec.copy()
        elif np.issubdtype(spec.dtype, np.integer) and spec.ndim == 1:
            if spec.size and (spec.min() < 0 or spec.max() >= K):
                raise ValueError(f"fix_W indices must lie in [0, {K}), got {spec.tolist()}")
            fixed[spec] = True
        else:
            raise ValueError("fix_W must be a bool, column indices or a boolean mask of shape (K,)")
        if not fixed.any():
            raise ValueError("BandedNMFSource needs fixed columns: plain NMF has no sparse rows")
        self.given_W = W
        self.given_H = H_sparse
        self.n_components = K
        self.normalize_columns = bool(normalize)
        self._fixed = fixed
        self.free = ~fixed
        self.W: NDArray = np.empty((0, 0))

    def __repr__(self) -> str:
        F, K = self.given_W.shape
        return (
            f"BandedNMFSource(W=({F}, {K}), H={self.given_H.shape} nnz={self.given_H.nnz}, "
            f"fixed={int(self._fixed.sum())})"
        )

    # ------------------------------------------------------------------ set-up
    def bind(self, n_freqs: int, n_frames: int, *, n_components: int | None = None) -> None:
        """Check W and H against the data's (F, N) and K."""
        F, K = self.given_W.shape
        if n_freqs != F:
            raise ValueError(f"W must have F = {n_freqs} rows, got {F}")
        if n_components is not None and n_components != K:
            raise ValueError(
                f"the source model has n_components={K} but the fit needs {n_components}"
            )
        if self.given_H.shape[1] != n_frames:
            raise ValueError(
                f"H must have shape (K, N) = ({K}, {n_frames}), got {self.given_H.shape}"
            )
        self._n_frames = n_frames

    def check_compatible(
        self, *, divergence: BetaDivergence, algorithm: str, exponent: float | None
    ) -> None:
        """Only the sparse MU data model (``algorithm="sparse-mu"``) can fit it."""
        if algorithm != "sparse-mu":
            raise ValueError(
                f"BandedNMFSource needs algorithm='sparse-mu' (got {algorithm!r}): the "
                "dense data models would form W H densely"
            )

    def start_from(self, *, W: NDArray | None = None, H: NDArray | None = None) -> None:
        """Given W and H always win: nothing to start from."""

    def initialize(
        self, rng: np.random.Generator, *, mean_power: float, scale: float, dtype: np.dtype
    ) -> None:
        """Working copies of the given W and H (H divided by ``scale``); no randomness."""
        fixed_rows = np.flatnonzero(self._fixed)
        free_rows = np.flatnonzero(self.free)
        self._fixed_rows, self._free_rows = fixed_rows, free_rows
        self.W = np.array(self.given_W, dtype=dtype)
        inverse = dtype.type(1.0 / scale)
        banded = scipy.sparse.csc_array(self.given_H[fixed_rows]).astype(dtype)
        banded.sort_indices()
        self.indptr = banded.indptr.astype(np.int64)
        self.indices = banded.indices.astype(np.intp)
        self.data = banded.data * inverse  # the stored entries, updated in place
        counts = np.diff(self.indptr)
        self.entry_frames = np.repeat(np.arange(self._n_frames, dtype=np.intp), counts)
        self.W_fixed_T = np.ascontiguousarray(self.W[:, fixed_rows].T)  # (K_s, F) for gathers
        self.W_fixed_sums = self.W_fixed_T.sum(axis=1)  # the β = 1 denominators
        self.H_free = self.given_H[free_rows].toarray().astype(dtype) * inverse
        self._plans: dict[tuple[int, int], list[_Tile]] = {}
        self.normalize()

    @property
    def W_free(self) -> NDArray:
        return self.W[:, self._free_rows]

    @property
    def H(self) -> scipy.sparse.csc_array:
        """All of H (K, N) in internal units (the given H before the fit starts)."""
        if not hasattr(self, "data"):
            return self.given_H
        return self._assemble(1.0)

    def _assemble(self, scale: float) -> scipy.sparse.csc_array:
        K, N = self.n_components, self._n_frames
        banded = scipy.sparse.csc_array(
            (self.data * self.data.dtype.type(scale), self._fixed_rows[self.indices], self.indptr),
            shape=(K, N),
        )
        if self._free_rows.size == 0:
            return banded
        rows = np.repeat(self._free_rows, N)
        cols = np.tile(np.arange(N), self._free_rows.size)
        free = scipy.sparse.csc_array(
            ((self.H_free * self.H_free.dtype.type(scale)).ravel(), (rows, cols)), shape=(K, N)
        )
        out = scipy.sparse.csc_array(banded + free)
        out.sort_indices()
        return out

    # ------------------------------------------------------------------ model and statistics
    def _tiles(self, frames: slice) -> list[_Tile]:
        """The tiles of a block of frames (planned once: the pattern never changes)."""
        key = (frames.start, frames.stop)
        plan = self._plans.get(key)
        if plan is None:
            plan = []
            for a in range(frames.start, frames.stop, TILE_FRAMES):
                b = min(a + TILE_FRAMES, frames.stop)
                e0, e1 = int(self.indptr[a]), int(self.indptr[b])
                if e1 == e0:
                    continue
                rows, local = np.unique(self.indices[e0:e1], return_inverse=True)
                cols = self.entry_frames[e0:e1] - a
                if rows.size * (b - a) > DENSE_TILE_RATIO * (e1 - e0):
                    rows, local = None, self.indices[e0:e1]
                plan.append(_Tile(slice(a, b), slice(e0, e1), rows, local, cols))
            self._plans[key] = plan
        return plan

    def model_block(self, frames: slice, out: NDArray) -> NDArray:
        """``out`` (F, n) ← W H on ``frames``: the free part, then the sparse part by tiles."""
        if self._free_rows.size:
            np.matmul(self.W_free, self.H_free[:, frames], out=out)
        else:
            out[...] = 0
        for tile in self._tiles(frames):
            cols = slice(tile.frames.start - frames.start, tile.frames.stop - frames.start)
            width = tile.frames.stop - tile.frames.start
            values = self.data[tile.entries]
            if tile.rows is not None:  # dense product on the tile's distinct rows
                dense = np.zeros((tile.rows.size, width), values.dtype)
                dense[tile.local_rows, tile.local_cols] = values
                out[:, cols] += self.W_fixed_T[tile.rows].T @ dense
            else:
                start = tile.entries.start
                block = scipy.sparse.csr_array(
                    (
                        values,
                        tile.local_rows,
                        self.indptr[tile.frames.start : tile.frames.stop + 1] - start,
                    ),
                    shape=(width, self.W_fixed_T.shape[0]),
                )  # the tile's columns of H, transposed: (width, K_s)
                out[:, cols] += (block @ self.W_fixed_T).T
        return out

    def sampled_statistics(
        self, frames: slice, numerator: NDArray, denominator: NDArray | None
    ) -> tuple[NDArray, NDArray]:
        """SDDMM: MU numerator and denominator of the stored entries of ``frames``.

        ``numerator`` and ``denominator`` are the (F, n) ratio arrays of the block (V ∘
        V̂^(β−2) and V̂^(β−1); None for all ones). A tile whose entries cover a good part
        of its distinct rows × frames takes one matrix product on those rows and reads
        its entries off it; a scattered one gathers (entry, F) rows and sums products.
        """
        e0, e1 = int(self.indptr[frames.start]), int(self.indptr[frames.stop])
        num_out = np.empty(e1 - e0, self.data.dtype)
        den_out = np.empty_like(num_out)
        for tile in self._tiles(frames):
            cols = slice(tile.frames.start - frames.start, tile.frames.stop - frames.start)
            out = slice(tile.entries.start - e0, tile.entries.stop - e0)
            if tile.rows is not None:
                templates = self.W_fixed_T[tile.rows]  # (rows, F)
                product = templates @ numerator[:, cols]
                num_out[out] = product[tile.local_rows, tile.local_cols]
                if denominator is None:
                    den_out[out] = self.W_fixed_sums[tile.rows][tile.local_rows]
                else:
                    product = templates @ denominator[:, cols]
                    den_out[out] = product[tile.local_rows, tile.local_cols]
                continue
            num_t = np.ascontiguousarray(numerator[:, cols].T)  # (width, F)
            den_t = None if denominator is None else np.ascontiguousarray(denominator[:, cols].T)
            for start in range(0, out.stop - out.start, SDDMM_CHUNK):
                part = slice(start, min(start + SDDMM_CHUNK, out.stop - out.start))
                rows = tile.local_rows[part]
                local = tile.local_cols[part]
                target = slice(out.start + part.start, out.start + part.stop)
                templates = self.W_fixed_T[rows]  # (e, F)
                np.einsum("ef,ef->e", templates, num_t[local], out=num_out[target])
                if den_t is None:
                    den_out[target] = self.W_fixed_sums[rows]
                else:
                    np.einsum("ef,ef->e", templates, den_t[local], out=den_out[target])
        return num_out, den_out

    # ------------------------------------------------------------------ updates
    def update_block_mu(
        self,
        frames: slice,
        numerator: NDArray,
        denominator: NDArray | None,
        exponent: float,
    ) -> None:
        """MU of H on ``frames`` from the block's (F, n) ratio arrays (sparse and free rows)."""
        num_e, den_e = self.sampled_statistics(frames, numerator, denominator)
        if self._free_rows.size:
            W_free = self.W_free
            num_f = W_free.T @ numerator
            den_f = (
                np.broadcast_to(W_free.sum(axis=0)[:, None], num_f.shape)
                if denominator is None
                else W_free.T @ denominator
            )
            self.H_free[:, frames] *= mu_factor(num_f, np.array(den_f), exponent)
        e0, e1 = self.indptr[frames.start], self.indptr[frames.stop]
        if e1 > e0:
            self.data[e0:e1] *= mu_factor(num_e, den_e, exponent)

    def update_H_mu(
        self,
        numerator: NDArray,
        denominator: NDArray,
        exponent: float,
        *,
        frames: slice = slice(None),
    ) -> None:
        """H ← H ∘ (numerator / denominator)^exponent from dense (K, n) statistics.

        The protocol's form (stored entries only); the sparse data model uses
        :meth:`update_block_mu` and never forms (K, n) statistics.
        """
        start, stop, _ = frames.indices(self._n_frames)
        factor = mu_factor(numerator, denominator, exponent)
        if self._free_rows.size:
            self.H_free[:, start:stop] *= factor[self._free_rows]
        e0, e1 = self.indptr[start], self.indptr[stop]
        rows = self._fixed_rows[self.indices[e0:e1]]
        self.data[e0:e1] *= factor[rows, self.entry_frames[e0:e1] - start]

    def update_W_mu(self, numerator: NDArray, denominator: NDArray, exponent: float) -> None:
        """Free columns of W from (F, K_free) (or (F, K)) numerator and denominator."""
        if numerator.shape[1] == self.n_components:
            numerator = numerator[:, self._free_rows]
            denominator = denominator[:, self._free_rows]
        self.W[:, self._free_rows] *= mu_factor(numerator, denominator, exponent)

    def normalize(self) -> None:
        """Free columns of W to unit sum, the scale moved into H (cost unchanged)."""
        if not self.normalize_columns or not self._free_rows.size:
            return
        sums = self.W[:, self._free_rows].sum(axis=0)
        sums[sums <= 0] = 1
        self.W[:, self._free_rows] /= sums
        self.H_free *= sums[:, None]

    def scale_templates(self, factors: NDArray) -> None:
        """W[:, k] *= factors on free columns; fixed ones untouched."""
        self.W[:, self._free_rows] *= factors[..., self._free_rows]

    def penalty(self) -> float:
        return 0.0

    def parameters(self, *, scale: float) -> dict[str, object]:
        """W (dense copy) and H (csc_array, K × N) in the user's units."""
        return {"W": self.W.copy(), "H": self._assemble(scale)}


class SparseBetaNMFModel(BetaNMFModel):
    """β-divergence MU of a :class:`BandedNMFSource`, frame block by frame block.

    The dense :class:`mnmf.algorithms.nmf.BetaNMFModel` (its data handling: data scaled by
    a power of two, model floor, blocks of frames shared by threads); V̂ of a block is a
    sparse product and the H statistics are sampled at the stored entries, so a step
    costs O(F · (nnz + N · K_free)) instead of O(F · K · N).
    """

    def _model_block(self, b: slice, out: NDArray | None = None) -> NDArray:
        """V̂ = W H + floor on block ``b``: the sparse product (replaces the dense one)."""
        model = self.source.model_block(b, out=out)
        model += self.floor
        return model

    def step(self) -> None:
        source = self.source
        parts = self._map_chunks(self._fused_chunk)
        if source.free.any():
            source.update_W_mu(sum(p[0] for p in parts), sum(p[1] for p in parts), self.exponent)
        source.normalize()

    def _fused_chunk(self, chunk: int) -> tuple[NDArray, NDArray]:
        source = self.source
        n_free = int(source.free.sum())
        sums = (
            np.zeros((source.W.shape[0], n_free), self.dtype),
            np.zeros((source.W.shape[0], n_free), self.dtype),
        )
        for b, V_b, work in self._block_views(chunk):
            model = self._model_block(b, out=work[0])
            num, den = self.divergence.ratios(V_b, model, out=work[1])
            source.update_block_mu(b, num, den, self.exponent)
            if n_free:
                model = self._model_block(b, out=work[0])
                num, den = self.divergence.ratios(V_b, model, out=work[1])
                H_b_t = source.H_free[:, b].T
                sums[0][...] += num @ H_b_t
                if den is None:
                    sums[1][...] += H_b_t.sum(axis=0)
                else:
                    sums[1][...] += den @ H_b_t
        return sums


@DATA_MODELS.register("sparse-mu")
def _sparse_mu_data_model(
    V: NDArray,
    source: object,
    *,
    n_components: int | None,
    divergence: BetaDivergence,
    exponent: str | None,
    block_bytes: int | None = None,
    n_threads: int | None,
) -> SparseBetaNMFModel:
    """Multiplicative updates of a :class:`BandedNMFSource` (any β)."""
    if not isinstance(source, BandedNMFSource):
        raise ValueError(
            f"algorithm='sparse-mu' needs a BandedNMFSource; got {type(source).__name__}"
        )
    gamma = 1.0 if exponent == "heuristic" else divergence.mm_exponent()
    source.check_compatible(divergence=divergence, algorithm="sparse-mu", exponent=gamma)
    return SparseBetaNMFModel(
        V,
        source,
        n_components=n_components,
        divergence=divergence,
        exponent=gamma,
        block_bytes=block_bytes,
        n_threads=n_threads,
    )
