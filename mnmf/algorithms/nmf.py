"""Single-channel NMF: β-divergence multiplicative updates and IS-NMF by EM (SAGE).

``fit_nmf`` resolves the source model (an instance, or a registered name and its
options), wraps it in a *data model* — :class:`BetaNMFModel` (MU, any β, blocks of
frames shared by threads) or :class:`ISNMFEMModel` (SAGE) — and hands that to the
engine (:func:`mnmf.engine.run`).

References
----------
C. Févotte, J. Idier (2011). Algorithms for nonnegative matrix factorization with the
β-divergence. Neural Computation 23(9).
C. Févotte, N. Bertin, J.-L. Durrieu (2009). Nonnegative matrix factorization with the
Itakura-Saito divergence: with application to music analysis. Neural Computation 21(3).

See docs/design.md, §7.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mnmf._parallel import cache_blocks, map_chunks
from mnmf._validation import check_choice, nonnegative_matrix, positive_int
from mnmf.divergence import BetaDivergence, _divergence_sum, internal_scale
from mnmf.engine import Callback, FitResult, run
from mnmf.features import Filterbank, Stft
from mnmf.registry import Registry, accepted_options, build, named_options
from mnmf.sources.base import SOURCE_MODELS, EMSourceModel, MUSourceModel, SourceModel

T = TypeVar("T")


@dataclass(frozen=True)
class NMFResult(FitResult):
    """:class:`~mnmf.engine.FitResult` of an NMF, with its factors as attributes.

    Attributes
    ----------
    W : array, shape (F, K)
    H : array, shape (K, N)
    source_model : SourceModel
        The (unfitted) source model the fit started from.
    stft : Stft or None
        The STFT settings of the analysed spectrogram, when ``fit_nmf`` was told them.
    filterbank : Filterbank or None
        The bands the rows of V (and of W) are, when they are bands.
    """

    source_model: SourceModel | None = None
    stft: Stft | None = None
    filterbank: Filterbank | None = None

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
        self,
        V: NDArray,
        source: SourceModel,
        *,
        n_components: int | None,
        block_bytes: int | None,
        n_threads: int | None,
    ) -> None:
        self.source = source
        self.dtype = V.dtype
        self._V_user = V
        n_freqs, n_frames = V.shape
        source.bind(n_freqs, n_frames, n_components=n_components)
        # A block's working set is its data and a work array of twice its size (model,
        # ratios): three F×n arrays within the cache budget. Contiguous runs of blocks,
        # one per worker thread.
        self.blocks, self.chunks = cache_blocks(
            n_frames, 3 * n_freqs * V.itemsize, n_threads=n_threads, block_bytes=block_bytes
        )
        self.worker_threads = len(self.chunks)

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
        """``work(chunk)`` for every chunk of blocks, by parallel threads (see mnmf._parallel)."""
        return map_chunks(work, len(self.chunks))

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
        source: MUSourceModel,
        *,
        n_components: int | None,
        divergence: BetaDivergence,
        exponent: float,
        block_bytes: int | None,
        n_threads: int | None,
    ) -> None:
        super().__init__(
            V, source, n_components=n_components, block_bytes=block_bytes, n_threads=n_threads
        )
        self.divergence = divergence
        self.exponent = exponent

    def initialize(self, rng: np.random.Generator) -> None:
        super().initialize(rng)
        self._data_constant = self.divergence.data_constant(self.V_blocks, float(self.floor))

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
        num, den = self.divergence.ratios(V_b, model, out=work[1])
        np.matmul(num.T, W, out=numerator_t)
        if den is None:  # β = 1: the denominator is Wᵀ1
            denominator_t[...] = W.sum(axis=0)
        else:
            np.matmul(den.T, W, out=denominator_t)

    def _w_statistics(
        self, b: slice, V_b: NDArray, work: NDArray, numerator: NDArray, denominator: NDArray
    ) -> None:
        """Add block ``b``'s MU statistics of W (F, K) to ``numerator`` and ``denominator``."""
        model_half, ratio_half = work[0], work[1]
        model = self._model_block(b, out=model_half)
        num, den = self.divergence.ratios(V_b, model, out=ratio_half)
        H_b_t = self.source.H[:, b].T
        # When the two ratios fill the two contiguous halves of the work array (IS and
        # the general β), one (2F, n) product gives both statistics.
        halves = (num is model_half and den is ratio_half, num is ratio_half and den is model_half)
        if any(halves):
            n_freqs = work.shape[1]
            both = work.reshape(2 * n_freqs, -1) @ H_b_t
            upper, lower = (numerator, denominator) if halves[0] else (denominator, numerator)
            upper += both[:n_freqs]
            lower += both[n_freqs:]
            return
        numerator += num @ H_b_t
        if den is None:
            denominator += H_b_t.sum(axis=0)
        else:
            denominator += den @ H_b_t

    def cost(self) -> float:
        """β-divergence D_β(V | WH + floor) in the user's units, plus the source's penalty."""

        floor = float(self.floor)

        def chunk_sum(chunk: int) -> float:
            total = 0.0
            for b, V_b, work in self._block_views(chunk):
                model = self._model_block(b, out=work[0])
                total += self.divergence.block_terms(V_b, model, scratch=work[1], floor=floor)
            return total

        internal = sum(self._map_chunks(chunk_sum)) - self._data_constant
        return self.divergence.in_user_units(internal, self.scale) + self.source.penalty()


class ISNMFEMModel(_SingleChannelData):
    """IS-NMF by the SAGE expectation-maximization algorithm (Févotte et al. 2009).

    Each component k is a hidden complex Gaussian c_k ~ N_c(0, w_k h_k); with the
    Wiener gain G_k = w_k h_k / V̂ its posterior power is
    u_k = G_k² V + G_k (V̂ − w_k h_k), and the M-step sets h_k = mean_f(u_k / w_k) then
    w_k = mean_n(u_k / h_k). Components are visited one at a time, V̂ refreshed after
    each (space-alternating EM): the IS cost never increases.
    """

    def __init__(self, V: NDArray, source: EMSourceModel, *, n_components: int | None) -> None:
        super().__init__(V, source, n_components=n_components, block_bytes=None, n_threads=1)
        # Whole arrays on one thread of its own, so BLAS keeps its threads (no hold).
        self.worker_threads = None

    def initialize(self, rng: np.random.Generator) -> None:
        # The EM works on whole F×N arrays, one component at a time: no frame blocks.
        mean = self._set_scale()
        self.V = self._V_user * self.dtype.type(1.0 / self.scale)
        self.source.initialize(
            rng, mean_power=mean / self.scale, scale=self.scale, dtype=self.dtype
        )

    def step(self) -> None:
        source = self.source
        model = source.W @ source.H
        model += self.floor
        component = np.empty_like(model)
        gain = np.empty_like(model)
        posterior = np.empty_like(model)
        for k in range(source.W.shape[1]):
            # W and H are read from the source model every time: its update may replace them.
            np.outer(source.W[:, k], source.H[k], out=component)
            np.divide(component, model, out=gain)
            # u = G (G V + V̂ − P)
            np.multiply(gain, self.V, out=posterior)
            posterior += model
            posterior -= component
            posterior *= gain
            source.update_from_posterior(k, posterior)
            model -= component
            np.outer(source.W[:, k], source.H[k], out=component)  # the new P_k, same buffer
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
    n_components: int | None = None,
    *,
    source_model: str | SourceModel = "isnmf",
    beta: float = 0.0,
    algorithm: str = "mu",
    exponent: str | None = None,
    max_iter: int = 200,
    tol: float = 1e-5,
    check_every: int = 10,
    rng: np.random.Generator | int | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool = False,
    n_threads: int | None = None,
    stft: Stft | None = None,
    filterbank: Filterbank | None = None,
    **source_options: object,
) -> NMFResult:
    """Factorize a power spectrogram V ≈ W H under the β-divergence.

    Parameters
    ----------
    V : array, shape (F, N)
        Non-negative data, typically ``|X|**2`` of one channel (or band powers, see
        :class:`mnmf.Filterbank`). float32 and float64 are kept as given (the result
        has V's dtype); other types become float64.
    n_components : int, optional
        K, the number of components; may be left out when ``source_model`` is an
        instance that gives it.
    source_model : str or SourceModel
        A registered name (``"isnmf"``: plain NMF; ``"smooth"``: smooth IS-NMF, Févotte
        2011 — see :data:`mnmf.sources.SOURCE_MODELS`) whose options are passed as
        keywords, or an instance (``mnmf.SmoothNMFSource(smoothness=10)``, or a model of
        your own that follows :class:`mnmf.sources.MUSourceModel` /
        :class:`~mnmf.sources.EMSourceModel`), which is copied, never modified.
    beta : float
        β of the divergence: 0 Itakura–Saito (default; scale-invariant, the natural
        choice for audio power spectra), 1 Kullback–Leibler, 2 Euclidean, any real.
    algorithm : {"mu", "em"}
        Multiplicative updates (any β) or EM/SAGE (β = 0 only; slower per iteration,
        the reference of Févotte et al. 2009).
    exponent : {"mm", "heuristic"}, optional
        MU exponent: "mm" (default) uses γ(β) of :func:`mnmf.mm_exponent`, under which
        the cost provably never increases; "heuristic" uses 1 for every β (often faster,
        no guarantee outside 1 ≤ β ≤ 2). The EM takes none.
    max_iter, tol, check_every, rng, callbacks, progress
        See :func:`mnmf.engine.run`; the same seed gives the same result.
    n_threads : int, optional
        Threads that share the blocks of frames in ``algorithm="mu"`` (default: every
        CPU this process may use). Results do not depend on it beyond floating-point
        summation order. The EM runs on one thread (BLAS may use more).
    stft : Stft, optional
        The settings V was analysed with; carried by the result for resynthesis.
    filterbank : Filterbank, optional
        The bands V holds, when it is ``filterbank.apply(|X|²)`` rather than the STFT
        power itself; carried by the result (W then has one row per band).
    **source_options
        Options of the named source model. ``"isnmf"``: ``W`` (F, K_given ≤ K) initial
        or fixed templates, ``H`` (K, N) initial activations, ``fix_W`` (True for every
        given column — supervised NMF —, or indices / a mask), ``H_mask`` (bool (K, N):
        False entries stay zero), ``normalize``. ``"smooth"``: the same (no ``H_mask``)
        and ``smoothness`` λ ≥ 0 (scalar or (K,)). An option the model does not take is
        a ValueError naming it.

    Returns
    -------
    NMFResult
        ``.W`` (F, K), ``.H`` (K, N), ``.cost`` (initial cost first), ``.n_iter``,
        ``.converged``, ``.seconds``, ``.source_model``, ``.stft``.

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
    template = build(SOURCE_MODELS, source_model, source_options, protocol=SourceModel)
    source = copy.copy(template)  # the result keeps the unfitted description
    model = build_nmf_model(
        data,
        source,
        n_components=n_components,
        beta=beta,
        algorithm=algorithm,
        exponent=exponent,
        n_threads=n_threads,
    )
    name = SOURCE_MODELS.name_of(template) or type(template).__name__
    fit = run(
        model,
        max_iter=max_iter,
        tol=tol,
        check_every=check_every,
        rng=rng,
        callbacks=callbacks,
        progress=progress,
        description=f"NMF β={beta:g} {algorithm} {name}",
    )
    return NMFResult(**vars(fit), source_model=template, stft=stft, filterbank=filterbank)


def fit_nmf_options(source_model: str | SourceModel = "isnmf") -> set[str]:
    """Every keyword :func:`fit_nmf` takes with this source model (for callers that check).

    ``V``, ``n_components``, ``rng`` and ``stft`` are left out: callers supply them.
    """
    own = named_options(fit_nmf, skip=("V", "n_components", "rng", "stft", "filterbank"))
    if not isinstance(source_model, str):
        return own
    return own | (
        accepted_options(SOURCE_MODELS.get(source_model), skip=("n_components",)) or set()
    )


def build_nmf_model(
    V: NDArray,
    source: SourceModel,
    *,
    n_components: int | None = None,
    beta: float = 0.0,
    algorithm: str = "mu",
    exponent: str | None = None,
    block_bytes: int | None = None,
    n_threads: int | None = None,
) -> BetaNMFModel | ISNMFEMModel:
    """The engine model for one validated spectrogram ``V`` (F, N) and a source model."""
    divergence = BetaDivergence(beta)
    if exponent is not None:
        check_choice(exponent, name="exponent", choices=("mm", "heuristic"))
    if block_bytes is not None:
        block_bytes = positive_int(block_bytes, name="block_bytes")
    return DATA_MODELS.get(algorithm)(
        V,
        source,
        n_components=n_components,
        divergence=divergence,
        exponent=exponent,
        block_bytes=block_bytes,
        n_threads=n_threads,
    )


def _em_data_model(
    V: NDArray,
    source: SourceModel,
    *,
    n_components: int | None,
    divergence: BetaDivergence,
    exponent: str | None,
    block_bytes: int | None,
    n_threads: int | None,
) -> ISNMFEMModel:
    """SAGE on whole arrays (one thread; ``block_bytes`` and ``n_threads`` do not apply)."""
    if exponent is not None:
        raise ValueError("exponent is the MU exponent; algorithm='em' takes none")
    if not divergence.is_itakura_saito:
        raise ValueError(
            f"algorithm='em' is the IS-NMF EM and needs beta=0, got beta={divergence.beta}"
        )
    if not isinstance(source, EMSourceModel):
        raise ValueError(
            f"algorithm='em' needs a source model with EM updates; "
            f"{type(source).__name__} has no update_from_posterior"
        )
    source.check_compatible(divergence=divergence, algorithm="em", exponent=None)
    return ISNMFEMModel(V, source, n_components=n_components)


def _mu_data_model(
    V: NDArray,
    source: SourceModel,
    *,
    n_components: int | None,
    divergence: BetaDivergence,
    exponent: str | None,
    block_bytes: int | None,
    n_threads: int | None,
) -> BetaNMFModel:
    """Multiplicative updates for any β, blocks of frames shared by threads."""
    if not isinstance(source, MUSourceModel):
        raise ValueError(
            f"algorithm='mu' needs a source model with multiplicative updates; "
            f"{type(source).__name__} has no update_H_mu/update_W_mu"
        )
    gamma = 1.0 if exponent == "heuristic" else divergence.mm_exponent()
    source.check_compatible(divergence=divergence, algorithm="mu", exponent=gamma)
    return BetaNMFModel(
        V,
        source,
        n_components=n_components,
        divergence=divergence,
        exponent=gamma,
        block_bytes=block_bytes,
        n_threads=n_threads,
    )


#: Single-channel data models by algorithm.
DATA_MODELS: Registry = Registry("algorithm", argument="algorithm")
DATA_MODELS.register("mu")(_mu_data_model)
DATA_MODELS.register("em")(_em_data_model)
