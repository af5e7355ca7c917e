"""Single-channel NMF: β-divergence multiplicative updates and IS-NMF by EM (SAGE).

``fit_nmf`` builds a data model around a :class:`~mnmf.sources.NMFSource` and hands it
to the engine (:func:`mnmf.engine.run`).

References
----------
C. Févotte, J. Idier (2011). Algorithms for nonnegative matrix factorization with the
β-divergence. Neural Computation 23(9).
C. Févotte, N. Bertin, J.-L. Durrieu (2009). Nonnegative matrix factorization with the
Itakura-Saito divergence: with application to music analysis. Neural Computation 21(3).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from threadpoolctl import ThreadpoolController

from mnmf._validation import (
    check_choice,
    finite_real,
    nonnegative_matrix,
    positive_int,
)
from mnmf.divergence import (
    _divergence_sum,
    internal_scale,
    is_data_constant,
    is_model_terms,
    mm_exponent,
    mu_ratios,
)
from mnmf.engine import Callback, FitResult, run
from mnmf.sources import NMFSource, make_source

#: Bytes of one frame block's working set: the data block and a work array of twice its
#: size (model, ratios). Large enough that per-call overhead of the small matrix
#: products stays small, small enough to stay in the last-level cache; 1-4 MB measured
#: best on the 2-core development machine (benchmarks/RESULTS.md).
BLOCK_BYTES = 3 << 20

T = TypeVar("T")


def available_cpus() -> int:
    """CPUs this process may run on (respects affinity masks and containers)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@lru_cache(maxsize=4)
def _executor(n_workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="mnmf")


@lru_cache(maxsize=1)
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()


@dataclass(frozen=True)
class NMFResult(FitResult):
    """:class:`~mnmf.engine.FitResult` of an NMF, with its factors as attributes.

    Attributes
    ----------
    W : array, shape (F, K)
    H : array, shape (K, N)
    """

    @property
    def W(self) -> NDArray:
        return self.params["W"]

    @property
    def H(self) -> NDArray:
        return self.params["H"]


class _SingleChannelData:
    """What both single-channel models share: data scaling, floors and frame blocks.

    The model of the data is ``V̂ = W H + floor``: the tiny floor (FLOOR_RELATIVE times
    the mean power) keeps every ratio finite on silence, costs one cheap addition, and
    acts as a fixed extra component, so the MM/EM descent guarantees still hold.
    """

    def __init__(
        self, V: NDArray, source: NMFSource, *, block_bytes: int, n_threads: int | None
    ) -> None:
        self.source = source
        self.dtype = V.dtype
        self._V_user = V
        n_freqs, n_frames = V.shape
        source.bind(n_freqs, n_frames)
        frames = max(1, block_bytes // (3 * n_freqs * V.itemsize))
        self.blocks = [
            slice(start, min(start + frames, n_frames)) for start in range(0, n_frames, frames)
        ]
        threads = available_cpus() if n_threads is None else n_threads
        threads = positive_int(threads, name="n_threads")
        # Contiguous runs of blocks, one per worker thread.
        self.chunks = [c for c in np.array_split(np.arange(len(self.blocks)), threads) if c.size]

    def initialize(self, rng: np.random.Generator) -> None:
        V = self._V_user
        mean = self._set_scale()
        inverse_scale = self.dtype.type(1.0 / self.scale)
        self.V_blocks = [np.ascontiguousarray(V[:, b]) * inverse_scale for b in self.blocks]
        widest = max(b.stop - b.start for b in self.blocks)
        # One flat work array per thread, viewed per block as two contiguous (F, width)
        # halves (model, ratio): flat ufunc loops, and for IS the pair of ratios stacked
        # as (2F, width) makes the W statistics a single matrix product.
        self.buffers = [np.empty(2 * V.shape[0] * widest, self.dtype) for _ in self.chunks]
        self.source.initialize(
            rng, mean_power=mean / self.scale, scale=self.scale, dtype=self.dtype
        )

    def _set_scale(self) -> float:
        """Choose the internal scale and floor; return the data's mean power."""
        mean = float(np.mean(self._V_user, dtype=np.float64))
        self.scale, floor = internal_scale(mean)
        self.floor = self.dtype.type(floor)
        return mean

    def parameters(self) -> dict[str, NDArray]:
        return self.source.parameters(scale=self.scale)

    def _model_block(self, b: slice, out: NDArray | None = None) -> NDArray:
        """V̂ = W H + floor on the frames of block ``b``."""
        model = np.matmul(self.source.W, self.source.H[:, b], out=out)
        model += self.floor
        return model

    def _map_chunks(self, work: Callable[[int], T]) -> list[T]:
        """Run ``work(chunk)`` for every chunk of blocks, in parallel when there are several.

        numpy's ufuncs and BLAS release the GIL, so threads share the cores without copies.
        BLAS is held to one thread meanwhile: its own threads on top of ours would
        oversubscribe the cores (measured: 2x slower on 2 cores, benchmarks/RESULTS.md).
        """
        if len(self.chunks) == 1:
            return [work(0)]
        with _blas_controller().limit(limits=1, user_api="blas"):
            # The calling thread takes the first chunk itself rather than wait idle.
            others = [
                _executor(len(self.chunks) - 1).submit(work, c) for c in range(1, len(self.chunks))
            ]
            first = work(0)
            return [first, *(future.result() for future in others)]

    def _block_views(self, chunk: int) -> Iterator[tuple[slice, NDArray, NDArray]]:
        """(frames, data, contiguous work array (2, F, width)) for each block of a chunk."""
        n_freqs = self.source.W.shape[0]
        for index in self.chunks[chunk]:
            b = self.blocks[index]
            width = b.stop - b.start
            work = self.buffers[chunk][: 2 * n_freqs * width].reshape(2, n_freqs, width)
            yield b, self.V_blocks[index], work


class BetaNMFModel(_SingleChannelData):
    """β-divergence NMF of one power spectrogram by multiplicative updates.

    One step updates H, then W (free columns), then normalizes. The data are processed
    block of frames by block of frames, shared among threads, so the model block and the
    ratios stay in cache and no F×N temporary is made. For frame-separable source models
    an iteration reads the data once: each block's H is updated, then the block's W
    statistics are gathered from the updated H; otherwise all of H is updated first
    (two passes). Both orders give the same numbers.
    """

    def __init__(
        self,
        V: NDArray,
        source: NMFSource,
        *,
        beta: float,
        exponent: float,
        block_bytes: int,
        n_threads: int | None,
    ) -> None:
        super().__init__(V, source, block_bytes=block_bytes, n_threads=n_threads)
        self.beta = beta
        self.exponent = exponent

    def initialize(self, rng: np.random.Generator) -> None:
        super().initialize(rng)
        if self.beta == 0:
            self._is_constant = sum(
                is_data_constant(V_b, float(self.floor)) for V_b in self.V_blocks
            )

    def step(self) -> None:
        source = self.source
        if source.frame_separable:
            # Each thread updates its own frames of H as soon as their statistics are
            # known, then gathers W statistics from the same blocks while they are still
            # in cache: one pass over the data and one thread hand-off per iteration, the
            # same numbers as the two-phase path.
            parts = self._map_chunks(self._fused_chunk)
        else:
            numerator_t = np.empty_like(source.H.T, order="C")
            denominator_t = np.empty_like(numerator_t)

            def h_statistics(chunk: int) -> None:
                for b, V_b, work in self._block_views(chunk):
                    self._h_statistics(b, V_b, work, numerator_t[b], denominator_t[b])

            self._map_chunks(h_statistics)
            source.update_H_mu(numerator_t.T, denominator_t.T, self.exponent)
            parts = self._map_chunks(self._w_chunk) if source.free.any() else []
        if source.free.any():
            source.update_W_mu(sum(p[0] for p in parts), sum(p[1] for p in parts), self.exponent)
        source.normalize()

    def _fused_chunk(self, chunk: int) -> tuple[NDArray, NDArray]:
        source = self.source
        sums = (np.zeros_like(source.W), np.zeros_like(source.W))
        width = max(b.stop - b.start for b in self.blocks)
        numerator_t = np.empty((width, source.n_components), self.dtype)
        denominator_t = np.empty_like(numerator_t)
        for b, V_b, work in self._block_views(chunk):
            n = b.stop - b.start
            self._h_statistics(b, V_b, work, numerator_t[:n], denominator_t[:n])
            source.update_H_mu(numerator_t[:n].T, denominator_t[:n].T, self.exponent, frames=b)
            if source.free.any():
                self._w_statistics(b, V_b, work, *sums)
        return sums

    def _w_chunk(self, chunk: int) -> tuple[NDArray, NDArray]:
        sums = (np.zeros_like(self.source.W), np.zeros_like(self.source.W))
        for b, V_b, work in self._block_views(chunk):
            self._w_statistics(b, V_b, work, *sums)
        return sums

    def _h_statistics(
        self, b: slice, V_b: NDArray, work: NDArray, numerator_t: NDArray, denominator_t: NDArray
    ) -> None:
        """MU statistics of H on block ``b``, frame-major: (n, K) outputs.

        ``(F, n)ᵀ @ W`` is the faster GEMM shape for these skinny products.
        """
        W = self.source.W
        model = self._model_block(b, out=work[0])
        num, den = mu_ratios(V_b, model, self.beta, out=work[1])
        np.matmul(num.T, W, out=numerator_t)
        if den is None:  # β = 1: the denominator is Wᵀ1
            denominator_t[...] = W.sum(axis=0)
        else:
            np.matmul(den.T, W, out=denominator_t)

    def _w_statistics(
        self, b: slice, V_b: NDArray, work: NDArray, numerator: NDArray, denominator: NDArray
    ) -> None:
        """Add block ``b``'s MU statistics of W (F, K) to ``numerator`` and ``denominator``."""
        model = self._model_block(b, out=work[0])
        num, den = mu_ratios(V_b, model, self.beta, out=work[1])
        H_b_t = self.source.H[:, b].T
        if self.beta == 0:  # 1/V̂ in work[0], V/V̂² in work[1]: one (2F, n) product
            n_freqs = work.shape[1]
            both = work.reshape(2 * n_freqs, -1) @ H_b_t
            denominator += both[:n_freqs]
            numerator += both[n_freqs:]
            return
        numerator += num @ H_b_t
        if den is None:
            denominator += H_b_t.sum(axis=0)
        else:
            denominator += den @ H_b_t

    def cost(self) -> float:
        """β-divergence D_β(V | WH + floor) in the user's units, plus the source's penalty."""

        def chunk_sum(chunk: int) -> float:
            total = 0.0
            for b, V_b, work in self._block_views(chunk):
                model = self._model_block(b, out=work[0])
                if self.beta == 0:
                    total += is_model_terms(V_b, model, scratch=work[1])
                else:
                    total += _divergence_sum(V_b, model, self.beta, float(self.floor))
            return total

        internal = sum(self._map_chunks(chunk_sum))
        if self.beta == 0:
            internal -= self._is_constant
        return internal * self.scale**self.beta + self.source.penalty()


class ISNMFEMModel(_SingleChannelData):
    """IS-NMF by the SAGE expectation-maximization algorithm (Févotte et al. 2009).

    Each component k is a hidden complex Gaussian c_k ~ N_c(0, w_k h_k); with the
    Wiener gain G_k = w_k h_k / V̂ its posterior power is
    u_k = G_k² V + G_k (V̂ − w_k h_k), and the M-step sets h_k = mean_f(u_k / w_k) then
    w_k = mean_n(u_k / h_k). Components are visited one at a time, V̂ refreshed after
    each (space-alternating EM): the IS cost never increases.
    """

    def __init__(self, V: NDArray, source: NMFSource) -> None:
        super().__init__(V, source, block_bytes=BLOCK_BYTES, n_threads=1)

    def initialize(self, rng: np.random.Generator) -> None:
        # The EM works on whole F×N arrays, one component at a time: no frame blocks.
        mean = self._set_scale()
        self.V = self._V_user * self.dtype.type(1.0 / self.scale)
        self.source.initialize(
            rng, mean_power=mean / self.scale, scale=self.scale, dtype=self.dtype
        )

    def step(self) -> None:
        source = self.source
        W, H = source.W, source.H
        model = W @ H
        model += self.floor
        component = np.empty_like(model)
        gain = np.empty_like(model)
        posterior = np.empty_like(model)
        for k in range(source.n_components):
            np.outer(W[:, k], H[k], out=component)
            np.divide(component, model, out=gain)
            # u = G (G V + V̂ − P)
            np.multiply(gain, self.V, out=posterior)
            posterior += model
            posterior -= component
            posterior *= gain
            source.update_from_posterior(k, posterior)
            model -= component
            np.outer(W[:, k], H[k], out=component)  # the new P_k, in the same buffer
            model += component
            np.maximum(model, self.floor, out=model)  # rounding in the update must not cross it
        source.normalize()

    def cost(self) -> float:
        """IS divergence D_IS(V | WH + floor) (scale-invariant), plus the source's penalty."""
        model = self.source.W @ self.source.H
        model += self.floor
        return _divergence_sum(self.V, model, 0.0, float(self.floor)) + self.source.penalty()


def fit_nmf(
    V: ArrayLike,
    n_components: int,
    *,
    beta: float = 0.0,
    algorithm: str = "mu",
    source_model: str = "isnmf",
    smoothness: float | ArrayLike | None = None,
    exponent: str = "mm",
    max_iter: int = 200,
    tol: float = 1e-5,
    check_every: int = 10,
    W: ArrayLike | None = None,
    H: ArrayLike | None = None,
    fix_W: bool | Sequence[int] | ArrayLike = False,
    H_mask: ArrayLike | None = None,
    normalize: bool = True,
    rng: np.random.Generator | int | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool = False,
    n_threads: int | None = None,
) -> NMFResult:
    """Factorize a power spectrogram V ≈ W H under the β-divergence.

    Parameters
    ----------
    V : array, shape (F, N)
        Non-negative data, typically ``|X|**2`` of one channel. float32 and float64 are
        kept as given (the result has V's dtype); other types become float64.
    n_components : int
        K, the number of components.
    beta : float
        β of the divergence: 0 Itakura–Saito (default; scale-invariant, the natural
        choice for audio power spectra), 1 Kullback–Leibler, 2 Euclidean, any real.
    algorithm : {"mu", "em"}
        Multiplicative updates (any β) or EM/SAGE (β = 0 only; slower per iteration,
        the reference of Févotte et al. 2009).
    source_model : {"isnmf", "smooth"}
        Plain NMF, or smooth IS-NMF (Févotte 2011, :class:`mnmf.SmoothNMFSource`): the
        cost adds λ Σ_k Σ_n d_IS(h_{k,n−1} | h_{k,n}), favouring slowly varying
        activations; needs β = 0 and the MM exponent (MU) or ``algorithm="em"``.
    smoothness : float or array of shape (K,)
        λ ≥ 0 of the smooth model (required by it, refused by "isnmf"); λ = 0 is
        plain IS-NMF.
    exponent : {"mm", "heuristic"}
        MU exponent: "mm" uses γ(β) of :func:`mnmf.mm_exponent`, under which the cost
        provably never increases; "heuristic" uses 1 for every β (often faster, no
        guarantee outside 1 ≤ β ≤ 2).
    max_iter, tol, check_every
        Stopping rule, see :func:`mnmf.engine.run`.
    W : array, shape (F, K_given), optional
        Initial (or, with ``fix_W``, fixed) templates for the first K_given ≤ K
        components; missing columns are drawn at random.
    H : array, shape (K, N), optional
        Initial activations.
    fix_W : bool, sequence of int or bool array (K,)
        Columns of W that are not updated: True for all given columns (supervised NMF),
        or indices / a mask (partially supervised).
    H_mask : bool array, shape (K, N), optional
        False entries of H are zero and stay zero.
    normalize : bool
        Rescale free columns of W to unit sum after every iteration (cost unchanged).
    rng : numpy.random.Generator, int or None
        Randomness of the initialization; the same seed gives the same result.
    callbacks, progress
        See :func:`mnmf.engine.run`.
    n_threads : int, optional
        Threads that share the blocks of frames in ``algorithm="mu"`` (default: every
        CPU this process may use). Results do not depend on it beyond floating-point
        summation order. The EM runs on one thread (BLAS may use more).

    Returns
    -------
    NMFResult
        ``.W`` (F, K), ``.H`` (K, N), ``.cost`` (initial cost first), ``.n_iter``,
        ``.converged``, ``.seconds``.

    Examples
    --------
    >>> import numpy as np, mnmf
    >>> rng = np.random.default_rng(0)
    >>> V = rng.random((64, 3)) @ rng.random((3, 100))
    >>> result = mnmf.fit_nmf(V, 3, max_iter=50, rng=rng)
    >>> result.W.shape, result.H.shape
    ((64, 3), (3, 100))
    """
    data = nonnegative_matrix(V, name="V")
    source = make_source(
        source_model,
        n_components,
        smoothness=smoothness,
        W=W,
        H=H,
        fix_W=fix_W,
        H_mask=H_mask,
        normalize=normalize,
    )
    model = build_nmf_model(
        data, source, beta=beta, algorithm=algorithm, exponent=exponent, n_threads=n_threads
    )
    fit = run(
        model,
        max_iter=max_iter,
        tol=tol,
        check_every=check_every,
        rng=rng,
        callbacks=callbacks,
        progress=progress,
        description=f"NMF β={beta:g} {algorithm}" + (" smooth" if source_model == "smooth" else ""),
    )
    return NMFResult(**vars(fit))


def build_nmf_model(
    V: NDArray,
    source: NMFSource,
    *,
    beta: float = 0.0,
    algorithm: str = "mu",
    exponent: str = "mm",
    block_bytes: int = BLOCK_BYTES,
    n_threads: int | None = None,
) -> BetaNMFModel | ISNMFEMModel:
    """The engine model for one validated spectrogram ``V`` (F, N) and a source model."""
    beta = finite_real(beta, name="beta")
    check_choice(algorithm, name="algorithm", choices=("mu", "em"))
    check_choice(exponent, name="exponent", choices=("mm", "heuristic"))
    block_bytes = positive_int(block_bytes, name="block_bytes")
    if algorithm == "em":
        if beta != 0:
            raise ValueError(f"algorithm='em' is the IS-NMF EM and needs beta=0, got beta={beta}")
        return ISNMFEMModel(V, source)
    gamma = mm_exponent(beta) if exponent == "mm" else 1.0
    source.check_data_model(beta=beta, exponent=gamma)
    return BetaNMFModel(
        V, source, beta=beta, exponent=gamma, block_bytes=block_bytes, n_threads=n_threads
    )
