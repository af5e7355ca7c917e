"""Per-source spatial gains Q on power spectrograms, by multiplicative updates.

Ozerov & Févotte (2010), criterion C2: the power spectrogram of microphone i is
modelled as

    V̂_i,fn = Σ_j q_ij,f Σ_{k∈K_j} w_fk h_kn + floor,

with q constant over f for an instantaneous (panned) mix. With ``labels[k] = j(k)`` this
is an NMF per channel with the *effective dictionary* W̃_i = W ∘ Q_i[:, labels], so

- H's MU statistics are the single-channel ones summed over channels,
  Σ_i W̃_iᵀ(V_i V̂_i⁻²) and Σ_i W̃_iᵀ V̂_i⁻¹;
- W's and Q's both come from the per-channel (F, K) products A_i = (V_i V̂_i⁻²) Hᵀ and
  B_i = V̂_i⁻¹ Hᵀ: W's are Σ_i Q_i[:, labels] ∘ A_i, Q's are Σ_{k∈j} w_fk A_i,fk.

The source model applies its own update to these statistics; every block is an MM step
for the IS divergence (linear in V̂ with exponent γ = ½), so the cost never increases.

Reference: A. Ozerov, C. Févotte (2010). Multichannel nonnegative matrix factorization
in convolutive mixtures for audio source separation. IEEE TASLP 18(3).

Rules, normalization and images: docs/design.md, §5.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mnmf._parallel import cache_blocks, map_chunks
from mnmf._validation import check_choice, frozen_copy, nonnegative_matrix, positive_int
from mnmf.divergence import (
    ITAKURA_SAITO,
    internal_scale,
    is_data_constant,
    is_model_terms,
    mm_exponent,
    mu_factor,
)
from mnmf.grouping import SourceGrouping
from mnmf.separation import ratio_masks
from mnmf.sources.base import MUSourceModel, SourceModel
from mnmf.spatial.base import SPATIAL_MODELS, SpatialModelBase, principal_filters

MIXINGS = ("convolutive", "instantaneous")


@SPATIAL_MODELS.register("gains")
class GainsModel(SpatialModelBase):
    """Multichannel IS-NMF with per-source spatial gains Q, by multiplicative updates.

    Parameters
    ----------
    mixing : {"convolutive", "instantaneous"}
        Gains per frequency (q_ij,f, Q of shape (I, J, F)) or one gain per source and
        microphone (q_ij, Q of shape (I, J)) for panned mixes.
    exponent : {"mm", "heuristic"}
        MU exponent ½ (MM: the cost provably never increases) or 1.
    Q : array, shape (I, J, F) or (I, J), optional
        Initial gains; by default uniform in [0.5, 1.5) from ``rng``, normalized.
    fix_Q : bool
        Keep Q fixed (e.g. known panning).
    n_threads : int, optional
        Threads that share the blocks of frames (default: every CPU this process may
        use). Results do not depend on it beyond floating-point summation order.

    Notes
    -----
    After each iteration Σ_i q_ij,f = 1 and the scale moves into the rows of W_j, then
    W's free columns are normalized to unit sum (scale into H): the cost is unchanged.
    Sources with fixed columns in W keep their scale in Q (W must not change). With one
    microphone the normalization forces q = 1, so Q is not updated and the model is
    exactly single-channel IS-NMF.
    """

    algorithm = "mu"

    def __init__(
        self,
        *,
        mixing: str = "convolutive",
        exponent: str = "mm",
        Q: ArrayLike | None = None,
        fix_Q: bool = False,
        n_threads: int | None = None,
    ) -> None:
        check_choice(mixing, name="mixing", choices=MIXINGS)
        check_choice(exponent, name="exponent", choices=("mm", "heuristic"))
        self.mixing = mixing
        self.instantaneous = mixing == "instantaneous"
        self.exponent = mm_exponent(0.0) if exponent == "mm" else 1.0
        self.given_Q = (
            None if Q is None else frozen_copy(nonnegative_matrix(Q, name="Q", ndim=(2, 3)))
        )
        self.fix_Q = bool(fix_Q)
        self.n_threads = None if n_threads is None else positive_int(n_threads, name="n_threads")
        self._Q_start: NDArray | None = None

    # ------------------------------------------------------------------ set-up
    def _Q_shape(self, n_mics: int, n_sources: int, n_freqs: int) -> tuple[int, ...]:
        return (n_mics, n_sources) + (() if self.instantaneous else (n_freqs,))

    def bind(self, X: NDArray, source: SourceModel, grouping: SourceGrouping) -> None:
        """Check Q against (I, J[, F]) and the source model's protocol; bind the source model."""
        super().bind(X, source, grouping)
        if not isinstance(source, MUSourceModel):
            raise ValueError(
                f"the gains model takes multiplicative updates; source model "
                f"{type(source).__name__} has no update_H_mu/update_W_mu"
            )
        expected = self._Q_shape(self.n_mics, self.n_sources, self.n_freqs)
        if self.given_Q is not None and self.given_Q.shape != expected:
            raise ValueError(
                f"Q must have shape {expected} for mixing={self.mixing!r}, got {self.given_Q.shape}"
            )
        if self.given_Q is not None and np.any(self.given_Q.sum(axis=0) <= 0):
            raise ValueError(
                "Q gives a source no gain at any microphone (all zeros); every source "
                "needs a positive gain somewhere"
            )
        if self.fix_Q and self.given_Q is None and self._Q_start is None:
            raise ValueError("fix_Q=True needs Q (given, or from a start that gives one)")
        source.bind(self.n_freqs, self.n_frames, n_components=grouping.n_components)
        source.check_compatible(divergence=ITAKURA_SAITO, algorithm="mu", exponent=self.exponent)
        # Blocks of frames whose model and ratios (two F×n arrays) stay in cache, shared
        # by the worker threads as in the single-channel MU kernel (mnmf._parallel).
        itemsize = 4 if X.dtype == np.complex64 else 8
        self.blocks, self.chunks = cache_blocks(
            self.n_frames, 3 * self.n_freqs * itemsize, n_threads=self.n_threads
        )
        self.worker_threads = len(self.chunks)

    def start_from_images(self, images: NDArray) -> None:
        """Q from each image's principal spatial direction: q_ij,f = |a_ij,f|² (unit-norm a).

        Averaged over frequency for instantaneous mixing.
        """
        gains = np.abs(principal_filters(images).transpose(1, 2, 0)) ** 2  # (I, J, F)
        self._Q_start = gains.mean(axis=2) if self.instantaneous else gains

    def preferred_start(self, n_sources: int, n_mics: int) -> str | None:
        """``init="auto"``: level-difference clustering for a panned mix (measured on
        SiSEC08 dev2, mean ΔSDR 11.1 dB against 6.5 from a FastMNMF2 start), else None."""
        return "panning" if self.instantaneous and n_mics > 1 else None

    # ------------------------------------------------------------------ engine API
    def _channel_powers(self) -> NDArray:
        """The power spectrogram the gains apply to, (F, N, I): here |X|²."""
        return np.abs(self.X) ** 2  # float32 for complex64

    def _initial_gains(self, rng: np.random.Generator, shape: tuple[int, ...]) -> NDArray:
        """Gains drawn when none is given or started: uniform in [0.5, 1.5)."""
        return rng.uniform(0.5, 1.5, size=shape)

    def initialize(self, rng: np.random.Generator) -> None:
        V_user = self._channel_powers()  # (F, N, I)
        self.dtype = V_user.dtype
        mean = float(np.mean(V_user, dtype=np.float64))
        self.scale, floor = internal_scale(mean)
        self.floor = self.dtype.type(floor)
        # (I, F, N) contiguous per channel, in internal units.
        self.V = np.ascontiguousarray(np.moveaxis(V_user, 2, 0)) * self.dtype.type(1.0 / self.scale)
        shape = self._Q_shape(self.n_mics, self.n_sources, self.n_freqs)
        if self.given_Q is not None:
            Q = self.given_Q.astype(self.dtype)
        elif self._Q_start is not None:
            Q = self._Q_start.astype(self.dtype)
        else:
            Q = self._initial_gains(rng, shape).astype(self.dtype)
        self.Q = Q / Q.sum(axis=0, keepdims=True)
        # Σ_i V̂_i ≈ Σ_i V_i with Σ_i q = 1: the sources' powers match I times the mean.
        self.source.initialize(
            rng, mean_power=self.n_mics * mean / self.scale, scale=self.scale, dtype=self.dtype
        )
        self.normalize()
        self._constant = sum(is_data_constant(V_i, float(self.floor)) for V_i in self.V)

    def step(self) -> None:
        source = self.source
        # H: statistics through the effective dictionaries W̃_i, frame-major (n, K) per
        # block (the faster GEMM shape for these skinny products).
        effective = [self._effective_dictionary(i) for i in range(self.n_mics)]
        numerator_t = np.empty_like(source.H.T, order="C")
        denominator_t = np.empty_like(numerator_t)

        def h_statistics(chunk: int) -> None:
            work = self._work_buffer()
            for b in self._chunk_blocks(chunk):
                for i in range(self.n_mics):
                    ratio_num, ratio_den = self._block_ratios(i, b, effective[i], work)
                    if i == 0:
                        np.matmul(ratio_num.T, effective[i], out=numerator_t[b])
                        np.matmul(ratio_den.T, effective[i], out=denominator_t[b])
                    else:
                        numerator_t[b] += ratio_num.T @ effective[i]
                        denominator_t[b] += ratio_den.T @ effective[i]

        map_chunks(h_statistics, len(self.chunks))
        source.update_H_mu(numerator_t.T, denominator_t.T, self.exponent)
        # W: per-channel (F, K) products weighted by each component's gains.
        if source.free.any():
            numerator, denominator = np.zeros_like(source.W), np.zeros_like(source.W)
            for i, (A, B) in enumerate(self._channel_products()):
                gains = self._component_gains(i)
                numerator += gains * A
                denominator += gains * B
            source.update_W_mu(numerator, denominator, self.exponent)
        # Q: the same products, summed over each source's components (and f if instantaneous).
        if not self.fix_Q and self.n_mics > 1:
            numerator, denominator = np.zeros_like(self.Q), np.zeros_like(self.Q)
            for i, (A, B) in enumerate(self._channel_products()):
                numerator[i] = self._per_source(source.W * A)
                denominator[i] = self._per_source(source.W * B)
            self.Q *= mu_factor(numerator, denominator, self.exponent)
        self.normalize()

    def cost(self) -> float:
        """C2 = Σ_i D_IS(V_i | V̂_i) (scale-invariant), plus the source model's penalty."""
        return self._model_terms() - self._constant + self.source.penalty()

    def parameters(self) -> dict[str, NDArray]:
        return self.source.parameters(scale=self.scale) | {"Q": self.Q.copy()}

    def image_spectrograms(
        self, X: NDArray, params: dict[str, NDArray], grouping: SourceGrouping
    ) -> NDArray:
        """Per-channel Wiener images from ``params`` (``W``, ``H``, ``Q``): (J, F, N, I)."""
        return gains_images(X, params["Q"], params["W"], params["H"], grouping)

    # ------------------------------------------------------------------ pieces
    def _model_terms(self) -> float:
        """Σ_i Σ_fn (V_i / V̂_i + log V̂_i): the channels' IS terms without the data constant."""
        effective = [self._effective_dictionary(i) for i in range(self.n_mics)]

        def chunk_terms(chunk: int) -> float:
            work = self._work_buffer()
            total = 0.0
            for b in self._chunk_blocks(chunk):
                for i in range(self.n_mics):
                    model = self._block_model(i, b, effective[i], out=work[0])
                    scratch = work[1][:, : b.stop - b.start]
                    total += is_model_terms(self.V[i][:, b], model, scratch=scratch)
            return total

        return sum(map_chunks(chunk_terms, len(self.chunks)))

    def normalize(self) -> None:
        """Σ_i q_ij,f = 1 with the scale moved into W_j's rows, then W's columns."""
        if self.n_mics > 1:
            totals = self.Q.sum(axis=0)  # (J, F) or (J,)
            totals[totals <= 0] = 1
            totals[~self._free_sources()] = 1  # fixed dictionaries keep their scale in Q
            self.Q /= totals
            per_component = self.grouping.per_component(totals)  # (K, F) or (K,)
            self.source.scale_templates(per_component if self.instantaneous else per_component.T)
        self.source.normalize()

    def _component_gains(self, i: int) -> NDArray:
        """q_{i, j(k), f} as an (F, K) array (broadcastable for instantaneous mixing)."""
        gains = self.grouping.per_component(self.Q[i])  # (K, F) or (K,)
        return gains.T if not self.instantaneous else gains[None, :]

    def _effective_dictionary(self, i: int) -> NDArray:
        return self.source.W * self._component_gains(i)

    def _model(self, i: int) -> NDArray:
        model = self._effective_dictionary(i) @ self.source.H
        model += self.floor
        return model

    def _chunk_blocks(self, chunk: int) -> list[slice]:
        return [self.blocks[index] for index in self.chunks[chunk]]

    def _work_buffer(self) -> NDArray:
        """A (2, F, widest block) work array: model and ratio of one block."""
        widest = max(b.stop - b.start for b in self.blocks)
        return np.empty((2, self.n_freqs, widest), self.dtype)

    def _block_model(self, i: int, b: slice, effective: NDArray, *, out: NDArray) -> NDArray:
        """V̂_i = W̃_i H + floor on the frames of block ``b``, written into ``out``."""
        model = np.matmul(effective, self.source.H[:, b], out=out[:, : b.stop - b.start])
        model += self.floor
        return model

    def _block_ratios(
        self, i: int, b: slice, effective: NDArray, work: NDArray
    ) -> tuple[NDArray, NDArray]:
        """(V_i V̂_i⁻², V̂_i⁻¹) on block ``b``, in the two halves of ``work``."""
        inverse = self._block_model(i, b, effective, out=work[1])
        np.divide(self.dtype.type(1), inverse, out=inverse)
        ratio = np.square(inverse, out=work[0][:, : b.stop - b.start])
        ratio *= self.V[i][:, b]
        return ratio, inverse

    def _channel_products(self) -> list[tuple[NDArray, NDArray]]:
        """For each channel, A_i = (V_i V̂_i⁻²) Hᵀ and B_i = V̂_i⁻¹ Hᵀ, both (F, K).

        Summed over blocks of frames by the worker threads, in block order.
        """
        effective = [self._effective_dictionary(i) for i in range(self.n_mics)]

        def chunk_products(chunk: int) -> list[tuple[NDArray, NDArray]]:
            work = self._work_buffer()
            sums = [
                (np.zeros_like(self.source.W), np.zeros_like(self.source.W))
                for _ in range(self.n_mics)
            ]
            for b in self._chunk_blocks(chunk):
                H_t = self.source.H[:, b].T
                for i, (A, B) in enumerate(sums):
                    ratio_num, ratio_den = self._block_ratios(i, b, effective[i], work)
                    A += ratio_num @ H_t
                    B += ratio_den @ H_t
            return sums

        parts = map_chunks(chunk_products, len(self.chunks))
        return [
            (sum(part[i][0] for part in parts), sum(part[i][1] for part in parts))
            for i in range(self.n_mics)
        ]

    def _per_source(self, per_component: NDArray) -> NDArray:
        """Sum an (F, K) array over each source's components: (J, F), or (J,) summed over f."""
        sums = self.grouping.sum_per_source(per_component, axis=1).T  # (J, F)
        return sums.sum(axis=1) if self.instantaneous else sums


def gains_images(
    X: NDArray, Q: NDArray, W: NDArray, H: NDArray, grouping: SourceGrouping
) -> NDArray[np.complexfloating]:
    """Source images by per-channel Wiener gains: ŝ_ij = q_ij,f P_j / V̂_i · X_i.

    Parameters
    ----------
    X : complex array, shape (F, N, I)
    Q : array, shape (I, J, F) or (I, J)
    W : array, shape (F, K)
    H : array, shape (K, N)
    grouping : SourceGrouping

    Returns
    -------
    images : complex array, shape (J, F, N, I)
        They add up to X exactly (the shares of each channel sum to one).
    """
    powers = grouping.source_powers(W, H)  # (J, F, N)
    gains = Q if Q.ndim == 3 else Q[:, :, None]  # (I, J, F or 1)
    contributions = gains.transpose(1, 2, 0)[:, :, None, :] * powers[..., None]  # (J, F, N, I)
    return ratio_masks(contributions) * X[None]
