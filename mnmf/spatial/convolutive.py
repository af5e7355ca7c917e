"""Convolutive mixing filters A with diagonal sensor noise, by expectation-maximization.

x_fn = A_f s_fn + b_fn with s_j,fn = Σ_{k∈K_j} c_k,fn, c_k,fn ~ N_c(0, w_fk h_kn) and
b_fn ~ N_c(0, diag(σ_b,f)): the full Gaussian model (criterion C1) of Ozerov & Févotte
(2010), for any number of microphones I ≥ 1.

Reference: A. Ozerov, C. Févotte (2010). Multichannel nonnegative matrix factorization
in convolutive mixtures for audio source separation. IEEE TASLP 18(3), section IV.

E-step, M-step, normalization and images: docs/design.md, §5.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mnmf._parallel import cache_blocks, map_chunks
from mnmf._validation import check_choice, finite_real, frozen_copy, positive_int
from mnmf.divergence import FLOOR_RELATIVE, ITAKURA_SAITO, internal_scale
from mnmf.grouping import SourceGrouping
from mnmf.sources.base import EMSourceModel, SourceModel
from mnmf.spatial.base import SPATIAL_MODELS, SpatialModelBase, principal_filters

NOISE_MODES = ("estimate", "anneal")

#: Lowest noise variance: −40 dB re each microphone's mean power at each frequency.
#: The model's diagonal "noise" also holds what the sources do not explain (diffuse late
#: reverberation, mismatch); a channel claimed cleaner than this makes Σ_x nearly
#: singular where a source dominates. Without it the estimate falls to 10⁻⁹ of the mean
#: power in an anechoic simulation (no sensor noise). The E- and M-steps stay exact and
#: monotone either way (determinant_parts); measured in the rt60 sweep's anechoic room
#: (seeds 0-2) the floor took ΔSDR from 26.7 / 29.6 / 24.1 to 27.0 / 32.1 / 24.5 dB, and
#: changed liverec by at most 0.02 dB (benchmarks/RESULTS.md).
NOISE_FLOOR_RELATIVE = 1e-4

#: Real arrays of F_b × N that one block's E-step holds at once, counting a complex one
#: twice (Σ_x⁻¹'s entries, Σ_x⁻¹x, z, ŝ, the determinant's parts, the K posterior powers
#: and temporaries): what sizes a block of frequencies from the cache.
EM_BLOCK_ARRAYS = 20


@SPATIAL_MODELS.register("convolutive")
class ConvolutiveEMModel(SpatialModelBase):
    """Multichannel NMF with complex mixing filters, by expectation-maximization.

    The cost is the negative log-likelihood Σ_fn x_fnᴴ Σ_x,fn⁻¹ x_fn + log det Σ_x,fn
    (constants dropped), which EM never increases when the noise is estimated.

    E-step, per (f, n), with z = Aᴴ Σ_x⁻¹ x and d_j = Re(a_jᴴ Σ_x⁻¹ a_j): the posterior
    mean of source j is ŝ_j = σ_j z_j and the posterior power of component k is
    u_k = σ_k + σ_k² (|z_j(k)|² − d_j(k)) — no per-component complex tensor is needed.
    M-step: A_f = R_xs R_ss⁻¹, σ_b,f = diag(R_xx − A R_xsᴴ − R_xs Aᴴ + A R_ss Aᴴ) (or
    annealed), W and H by the source model's blocked M-step
    (:meth:`~mnmf.sources.EMSourceModel.em_block`) from u. Frequencies are processed in
    blocks, shared by worker threads, so memory stays O(F·N·(I + J)) plus each thread's
    block of K×F_b×N powers (docs/design.md §5).

    Parameters
    ----------
    A : complex array, shape (F, I, J), optional
        Initial mixing filters; random from ``rng`` by default (then unit-norm columns).
    noise : {"estimate", "anneal"}
        Estimate σ_b by EM (monotone likelihood), or anneal it geometrically from
        ``noise_start`` to ``noise_end`` times the mean power over ``anneal_iter``
        iterations, as the authors do to escape poor local optima (the likelihood may
        then rise while the noise shrinks).
    noise_start : float
        The initial noise variance, as a fraction (> 0) of the mixture's mean power
        (both modes start from it).
    noise_end, anneal_iter : float, int
        ``noise="anneal"`` only: the final fraction (> 0) and the iterations to reach it
        (defaults 1e-4 and 100).
    block_frequencies : int, optional
        Frequencies per block (at most). By default from the cache: the E-step's
        working set, about ``EM_BLOCK_ARRAYS`` real arrays of block_frequencies × N,
        within :func:`mnmf._parallel.cache_block_bytes` (64 frequencies for 10 s at hop
        512 in float64 on a 1 MiB-L2 CPU; fewer for longer signals, whose blocks would
        otherwise leave the cache — 256 frequencies ran 3× slower per iteration than 64
        on 10 s, benchmarks/RESULTS.md).
    n_threads : int, optional
        Threads that share the blocks of frequencies (default: every CPU this process
        may use). Results do not depend on it beyond floating-point summation order.

    Notes
    -----
    complex64 data are fitted in float32 (E-step, W and H; the likelihood drift against
    float64 is in benchmarks/RESULTS.md), complex128 data in float64.
    """

    algorithm = "em"

    def __init__(
        self,
        *,
        A: ArrayLike | None = None,
        noise: str = "estimate",
        noise_start: float = 1e-1,
        noise_end: float | None = None,
        anneal_iter: int | None = None,
        block_frequencies: int | None = None,
        n_threads: int | None = None,
    ) -> None:
        check_choice(noise, name="noise", choices=NOISE_MODES)
        if noise != "anneal" and (noise_end is not None or anneal_iter is not None):
            raise ValueError('noise_end and anneal_iter set the schedule of noise="anneal"')
        self.noise_mode = noise
        self.noise_start = _positive_fraction(noise_start, name="noise_start")
        self.noise_end = _positive_fraction(
            1e-4 if noise_end is None else noise_end, name="noise_end"
        )
        self.anneal_iter = positive_int(
            100 if anneal_iter is None else anneal_iter, name="anneal_iter"
        )
        self.block_frequencies = (
            None
            if block_frequencies is None
            else positive_int(block_frequencies, name="block_frequencies")
        )
        self.n_threads = None if n_threads is None else positive_int(n_threads, name="n_threads")
        self.given_A = None
        if A is not None:
            given = np.asarray(A)
            if given.ndim != 3 or not np.issubdtype(given.dtype, np.number):
                raise ValueError(f"A must be a numeric (F, I, J) array, got {given.shape}")
            if not np.all(np.isfinite(given)):
                raise ValueError("A contains NaN or infinite values")
            self.given_A = frozen_copy(given.astype(np.complex128))
        self._A_start: NDArray | None = None

    # ------------------------------------------------------------------ set-up
    def bind(self, X: NDArray, source: SourceModel, grouping: SourceGrouping) -> None:
        """Check A against (F, I, J) and the source model's protocol; bind the source model."""
        super().bind(X, source, grouping)
        if not isinstance(source, EMSourceModel):
            raise ValueError(
                f"the convolutive model takes EM steps; source model {type(source).__name__} "
                "has no em_block/em_end"
            )
        expected = (self.n_freqs, self.n_mics, self.n_sources)
        if self.given_A is not None and self.given_A.shape != expected:
            raise ValueError(f"A must have shape (F, I, J) = {expected}, got {self.given_A.shape}")
        source.bind(self.n_freqs, self.n_frames, n_components=grouping.n_components)
        source.check_compatible(divergence=ITAKURA_SAITO, algorithm="em", exponent=None)
        # Blocks of frequencies whose E-step arrays — about EM_BLOCK_ARRAYS real arrays
        # of F_b × N — stay in cache, shared by the worker threads (mnmf._parallel).
        itemsize = 4 if X.dtype == np.complex64 else 8
        if self.block_frequencies is None:
            bytes_per_frequency, budget = EM_BLOCK_ARRAYS * self.n_frames * itemsize, None
        else:
            bytes_per_frequency, budget = 1, self.block_frequencies
        self.blocks, self.chunks = cache_blocks(
            self.n_freqs, bytes_per_frequency, n_threads=self.n_threads, block_bytes=budget
        )
        self.worker_threads = len(self.chunks)

    def start_from_images(self, images: NDArray) -> None:
        """A from each image's principal spatial direction (unit-norm, per frequency)."""
        self._A_start = principal_filters(images)

    # ------------------------------------------------------------------ engine API
    def initialize(self, rng: np.random.Generator) -> None:
        # complex64 data are fitted in float32 (E-step, W and H), complex128 in float64;
        # A, the noise and the M-step's statistics R_xx, R_xs, R_ss stay in (complex)
        # float64: they are (F, I, J)-sized.
        single = self.X.dtype == np.complex64
        self.dtype = np.dtype(np.float32 if single else np.float64)
        self.complex_dtype = np.dtype(np.complex64 if single else np.complex128)
        channel_power = np.mean(np.abs(self.X) ** 2, axis=1, dtype=np.float64)  # (F, I)
        mean = float(np.mean(channel_power))
        self.scale, _ = internal_scale(mean)
        # The mixture frequency-major, (F, I, N): a block of frequencies is one
        # contiguous slab and each microphone's (F_b, N) rows are contiguous in it.
        self.X_internal = np.ascontiguousarray(self.X.transpose(0, 2, 1)).astype(
            self.complex_dtype, copy=False
        ) * self.dtype.type(1 / np.sqrt(self.scale))
        self.mean_power = mean / self.scale if mean > 0 else 1.0
        # The noise never falls below NOISE_FLOOR_RELATIVE × each microphone's mean power
        # at that frequency: it bounds how ill-conditioned Σ_x can get (see the constant).
        channel_power = channel_power / self.scale
        self.noise_floor = np.maximum(
            NOISE_FLOOR_RELATIVE * channel_power, FLOOR_RELATIVE * self.mean_power
        )
        if self.given_A is not None:
            A = self.given_A.copy()
        elif self._A_start is not None:
            A = self._A_start.astype(np.complex128)
        else:
            shape = (self.n_freqs, self.n_mics, self.n_sources)
            A = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
        self.A = A
        self.iteration = 0
        self.noise = self._annealed_noise()  # (F, I): the schedule's start
        self.source.initialize(rng, mean_power=self.mean_power, scale=self.scale, dtype=self.dtype)
        self.normalize()
        # R_xx,f = mean_n x xᴴ: constant.
        X = self.X_internal.astype(np.complex128, copy=False)
        self.R_xx = np.matmul(X, X.conj().transpose(0, 2, 1)) / self.n_frames

    def _annealed_noise(self) -> float:
        """The annealing schedule at the current iteration (geometric, start to end)."""
        progress = min(self.iteration / self.anneal_iter, 1.0)
        ratio = self.noise_start * (self.noise_end / self.noise_start) ** progress
        return np.maximum(ratio * self.mean_power, self.noise_floor)

    def _posterior(self, block: slice, *, with_z: bool = True) -> tuple[NDArray, Posterior]:
        """The source powers σ (J, F_b, N) on a block and the E-step terms there."""
        sigma = self.grouping.source_powers(self.source.W[block], self.source.H)
        mixing = self._mixing.block(block)
        return sigma, _em_posterior(self.X_internal[block], mixing, sigma, with_z=with_z)

    def _refresh_mixing(self) -> None:
        """Recompute the per-frequency E-step factors of the current A and noise."""
        self._mixing = MixingFactors.of(self.A, self.noise, dtype=self.dtype)

    def step(self) -> None:
        # Blocks of frequencies are independent given the current parameters: each
        # fills its rows of R_xs (F, I, J), R_ss (F, J, J) and W and returns its part of
        # H's statistics, summed in block order (mnmf._parallel); then H, and A and the
        # noise for every frequency at once.
        self._R_xs = np.empty((self.n_freqs, self.n_mics, self.n_sources), np.complex128)
        self._R_ss = np.empty((self.n_freqs, self.n_sources, self.n_sources), np.complex128)
        self._refresh_mixing()
        parts = map_chunks(self._chunk_step, len(self.chunks))
        self.source.em_end(functools.reduce(np.add, parts))
        self._mixing_m_step(self._R_xs, self._R_ss)
        del self._R_xs, self._R_ss
        self.iteration += 1
        if self.noise_mode == "anneal":
            self.noise[:] = self._annealed_noise()
        self.normalize()

    def _chunk_step(self, chunk: int) -> NDArray:
        """EM on every block of a chunk; the sum of their H statistics (K, N)."""
        total = None
        for index in self.chunks[chunk]:
            statistics = self._block_step(self.blocks[index])
            total = statistics if total is None else np.add(total, statistics, out=total)
        return total

    def _block_step(self, block: slice) -> NDArray:
        """E-step and M-step on one block of frequencies; returns its H statistics."""
        source = self.source
        sigma, post = self._posterior(block)
        X = self.X_internal[block]
        n_frames = self.n_frames
        # Posterior variances without cancellation: with det Σ_x = R_j + σ_j P_j
        # (determinant_parts), σ_j − σ_j² a_jᴴΣ_x⁻¹a_j = σ_j R_j / det, and for a
        # component k of source j, σ_k − σ_k² a_jᴴΣ_x⁻¹a_j = σ_k (R_j + (σ_j − σ_k) P_j)
        # / det — sums of non-negative terms, where the differences lose every digit
        # once a source is ~10⁹ times the noise.
        parts = post.determinant
        inverse_total = np.reciprocal(parts.total)
        # Sufficient statistics of the mixing model: R_xs = mean x ŝᴴ and
        # R_ss = mean ŝ ŝᴴ + Σ_s − Σ_s Aᴴ Σ_x⁻¹ A Σ_s (posterior covariance).
        s_hat = post.z * sigma.transpose(1, 0, 2)  # (F_b, J, N)
        s_hat_h = s_hat.conj().transpose(0, 2, 1)  # (F_b, N, J)
        R_xs = (np.matmul(X, s_hat_h) / n_frames).astype(np.complex128, copy=False)
        R_ss = (np.matmul(s_hat, s_hat_h) / n_frames).astype(np.complex128, copy=False)
        A = self.A[block]  # read only: the mixing M-step follows every block's E-step
        for j, l in itertools.combinations(range(self.n_sources), 2):
            # mean_n σ_j σ_l a_jᴴ Σ_x⁻¹ a_l = Σ_ik conj(a_ij) a_kl mean_n(σ_j σ_l Σ_x⁻¹_ik)
            weights = (sigma[j] * sigma[l])[:, :, None]  # (F_b, N, 1)
            weighted = np.matmul(post.inverse.reshape(len(X), -1, n_frames), weights)
            weighted = weighted.reshape(len(X), self.n_mics, self.n_mics) / n_frames
            term = np.einsum("fi,fik,fk->f", A[:, :, j].conj(), weighted, A[:, :, l])
            R_ss[:, j, l] -= term
            R_ss[:, l, j] -= term.conj()
        # Its diagonal without cancellation: mean |ŝ_j|² + σ_j R_j / det.
        diagonal = np.arange(self.n_sources)
        R_ss[:, diagonal, diagonal] = (
            R_ss[:, diagonal, diagonal].real
            + np.mean(sigma * parts.without * inverse_total, axis=2, dtype=np.float64).T
        )
        # Posterior component powers for the source model (one block at a time):
        # u_k = σ_k (R_j + (σ_j − σ_k) P_j) / det + σ_k² |z_j|².
        # Source by source, its components stacked (K_j, F_b, N): few, large operations
        # (each numpy call hands the GIL over; many small ones stall the other threads).
        posterior = np.empty((self.grouping.n_components, *sigma.shape[1:]), sigma.dtype)
        W_block = source.W[block]
        for j, members_j in enumerate(self.grouping.members):
            own = np.multiply(W_block.T[members_j, :, None], source.H[members_j, None, :])
            excess = np.abs(post.z[:, j])
            excess *= excess  # |z_j|², (F_b, N)
            # Written in place when the source's components are contiguous (the usual
            # grouping): no copy of K_j × F_b × N per source.
            first, last = members_j[0], members_j[-1] + 1
            contiguous = last - first == len(members_j)
            share = posterior[first:last] if contiguous else np.empty_like(own)
            np.subtract(sigma[j], own, out=share)
            share *= parts.partial[j] * inverse_total  # P_j / det
            share += parts.without[j] * inverse_total  # R_j / det
            share += own * excess
            share *= own
            if not contiguous:
                posterior[members_j] = share
        self._R_xs[block], self._R_ss[block] = R_xs, R_ss
        return source.em_block(block, posterior)

    def _mixing_m_step(self, R_xs: NDArray, R_ss: NDArray) -> None:
        """A_f = R_xs R_ss⁻¹ and σ_b,f = diag(R_xx − A R_xsᴴ − R_xs Aᴴ + A R_ss Aᴴ), every f."""
        # Pseudo-inverse: the exact maximizer when R_ss is invertible, the minimum-norm
        # one when a source has died out (its row and column of R_ss vanish). Where
        # every source has vanished at a frequency nothing informs A: it is kept.
        informed = np.trace(R_ss, axis1=1, axis2=2).real > self.noise_floor.min(axis=1)
        A_new = self.A.copy()
        A_new[informed] = R_xs[informed] @ np.linalg.pinv(R_ss[informed], hermitian=True)
        self.A = A_new
        if self.noise_mode == "estimate":
            residual = (
                self.R_xx
                - A_new @ R_xs.conj().transpose(0, 2, 1)
                - R_xs @ A_new.conj().transpose(0, 2, 1)
                + A_new @ R_ss @ A_new.conj().transpose(0, 2, 1)
            )
            diagonal = residual[:, np.arange(self.n_mics), np.arange(self.n_mics)].real
            self.noise = np.maximum(diagonal, self.noise_floor)

    def normalize(self) -> None:
        """Unit-norm columns of A with their energy moved into W_j's rows, then W's columns."""
        norms = np.linalg.norm(self.A, axis=1)  # (F, J)
        norms[:, ~self._free_sources()] = 1
        norms[~(norms > 0)] = 1  # a vanished column stays as it is
        self.A /= norms[:, None, :]
        self.source.scale_templates(self.grouping.per_component((norms**2).T).T)
        self.source.normalize()

    def cost(self) -> float:
        """Negative log-likelihood Σ_fn xᴴ Σ_x⁻¹ x + log det Σ_x (internal units)."""

        self._refresh_mixing()

        def chunk_cost(chunk: int) -> float:
            total = 0.0
            for index in self.chunks[chunk]:
                block = self.blocks[index]
                _, post = self._posterior(block, with_z=False)
                quadratic = np.vdot(self.X_internal[block], post.whitened).real
                total += float(quadratic) + float(
                    np.sum(np.log(post.determinant.total), dtype=np.float64)
                )
            return total

        return sum(map_chunks(chunk_cost, len(self.chunks))) + self.source.penalty()

    def parameters(self) -> dict[str, NDArray]:
        return self.source.parameters(scale=self.scale) | {
            "A": self.A.copy(),
            "noise": self.noise * self.scale,
        }

    def image_spectrograms(
        self, X: NDArray, params: dict[str, NDArray], grouping: SourceGrouping
    ) -> NDArray:
        """Multichannel Wiener images from ``params`` (``W``, ``H``, ``A``, ``noise``)."""
        return em_images(X, params["A"], params["W"], params["H"], grouping, params["noise"])


def _positive_fraction(value: object, *, name: str) -> float:
    number = finite_real(value, name=name)
    if number <= 0:
        raise ValueError(f"{name} must be > 0 (a fraction of the mean power), got {number}")
    return number


def em_images(
    X: NDArray,
    A: NDArray,
    W: NDArray,
    H: NDArray,
    grouping: SourceGrouping,
    noise: NDArray,
) -> NDArray[np.complexfloating]:
    """Multichannel Wiener images ŝ_ij = a_ij σ_j a_jᴴ Σ_x⁻¹ x, shape (J, F, N, I)."""
    sigma = grouping.source_powers(W, H)
    frequency_major = np.ascontiguousarray(np.asarray(X).transpose(0, 2, 1))  # (F, I, N)
    mixing = MixingFactors.of(A, noise, dtype=sigma.dtype)
    z = _em_posterior(frequency_major, mixing, sigma).z  # (F, J, N)
    s_hat = sigma.transpose(1, 0, 2) * z
    return np.einsum("fij,fjn->jfni", A, s_hat)


@dataclass(frozen=True)
class DeterminantParts:
    """det Σ_x and, per source j, the parts it splits into: det Σ_x = R_j + σ_j P_j.

    Attributes
    ----------
    total : array (F, N)
        det Σ_x.
    without : array (J, F, N)
        R_j = det Σ_{−j}, the determinant without source j.
    partial : array (J, F, N)
        P_j = ∂ det Σ_x / ∂σ_j = a_jᴴ adj(Σ_{−j}) a_j, so that a_jᴴ Σ_x⁻¹ a_j = P_j / det.
    """

    total: NDArray
    without: NDArray
    partial: NDArray


def determinant_parts(A: NDArray, sigma: NDArray, noise: NDArray) -> DeterminantParts:
    """det Σ_x, R_j and P_j as sums of non-negative terms, for any I and J.

    With Σ_x = diag(n) + A diag(σ) Aᴴ, the Cauchy–Binet formula (applied to every
    principal minor) gives

        det Σ_x = Σ_{L ⊆ {1..J}, |L| ≤ I}  c_L · Π_{l∈L} σ_l,
        c_L = Σ_{K ⊆ {1..I}, |K| = |L|}  Π_{i∉K} n_i · |det A[K, L]|²  ≥ 0

    (L = ∅ gives Π_i n_i); R_j sums the terms without j, P_j those with j, divided by
    σ_j. Every term is non-negative, so the values keep full relative precision however
    ill-conditioned Σ_x is — where a determinant from Σ_x's entries (``a d − |b|²`` for
    two microphones) cancels to zero, or below, once a source is about 10⁸ times the
    noise (the NaN of the rt60 sweep's anechoic room), and where a posterior variance
    σ_j − σ_j² a_jᴴ Σ_x⁻¹ a_j cancels long before.
    """
    return _determinant_from_terms(_determinant_terms(A, noise, dtype=sigma.dtype), sigma)


def _determinant_terms(
    A: NDArray, noise: NDArray, *, dtype: np.dtype
) -> list[tuple[tuple[int, ...], NDArray]]:
    """The Cauchy–Binet coefficients (L, c_L (F, 1)) of det Σ_x, for every L (see above)."""
    n_freqs, n_mics, n_sources = A.shape
    terms = []
    for size in range(min(n_mics, n_sources) + 1):
        for sources in itertools.combinations(range(n_sources), size):
            coefficient = np.zeros(n_freqs)
            for mics in itertools.combinations(range(n_mics), size):
                others = [i for i in range(n_mics) if i not in mics]
                minor = _minor_power(A, mics, sources)
                coefficient += np.prod(noise[:, others], axis=1) * minor
            terms.append((sources, coefficient[:, None].astype(dtype)))
    return terms


def _determinant_from_terms(
    terms: list[tuple[tuple[int, ...], NDArray]], sigma: NDArray
) -> DeterminantParts:
    """det Σ_x, R_j and P_j on sigma (J, F, N) from :func:`_determinant_terms`' coefficients."""
    n_sources, shape = sigma.shape[0], sigma.shape[1:]
    total = np.zeros(shape, sigma.dtype)
    without = np.zeros((n_sources, *shape), sigma.dtype)
    partial = np.zeros((n_sources, *shape), sigma.dtype)
    for sources, coefficient in terms:
        for j in sources:  # the term's derivative in σ_j
            partial[j] += _scaled_product(coefficient, sigma, [l for l in sources if l != j])
        term = _scaled_product(coefficient, sigma, sources)
        total += term
        for j in set(range(n_sources)) - set(sources):
            without[j] += term
    return DeterminantParts(total=total, without=without, partial=partial)


def _minor_power(A: NDArray, rows: tuple[int, ...], columns: tuple[int, ...]) -> NDArray | float:
    """|det A_f[rows, columns]|² for every frequency, (F,) (1 for the empty minor)."""
    if not rows:
        return 1.0
    if len(rows) == 1:
        value = A[:, rows[0], columns[0]]
        return value.real**2 + value.imag**2
    if len(rows) == 2:
        (i, k), (j, l) = rows, columns
        value = A[:, i, j] * A[:, k, l] - A[:, i, l] * A[:, k, j]
        return value.real**2 + value.imag**2
    return np.abs(np.linalg.det(A[:, list(rows)][:, :, list(columns)])) ** 2


def _scaled_product(coefficient: NDArray, sigma: NDArray, indices) -> NDArray:
    """coefficient (F, 1) × Π_{l ∈ indices} σ_l (F, N); the coefficient alone if none."""
    if not len(indices):
        return coefficient
    product = coefficient * sigma[indices[0]]
    for l in indices[1:]:
        product *= sigma[l]
    return product


def _covariance_determinant(A: NDArray, sigma: NDArray, noise: NDArray) -> NDArray:
    """det Σ_x (F, N), from :func:`determinant_parts`."""
    return determinant_parts(A, sigma, noise).total


@dataclass(frozen=True)
class MixingFactors:
    """What the E-step needs from A and the noise, per frequency: computed once per
    iteration for every frequency, sliced per block (:meth:`block`).

    Attributes
    ----------
    A, conjugate : complex arrays (F, I, J)
        The filters and their conjugates, in the working precision.
    weights : dict of (i, k) to array (F, J)
        a_ij conj(a_kj) for i ≤ k (real for i = k): Σ_x,ik = Σ_j weights_j σ_j (+ noise_i).
    noise : array (F, I)
    terms : list of (tuple, array (F, 1))
        The Cauchy–Binet coefficients of det Σ_x (:func:`determinant_parts`).
    """

    A: NDArray
    conjugate: NDArray
    weights: dict[tuple[int, int], NDArray]
    noise: NDArray
    terms: list[tuple[tuple[int, ...], NDArray]]

    @classmethod
    def of(cls, A: NDArray, noise: NDArray, *, dtype: np.dtype) -> MixingFactors:
        """The factors of A (F, I, J) and noise (F, I), in real precision ``dtype``."""
        complex_dtype = np.result_type(dtype, np.complex64)
        A = A.astype(complex_dtype, copy=False)
        n_mics = A.shape[1]
        weights = {}
        for i in range(n_mics):
            for k in range(i, n_mics):
                product = A[:, i, :] * A[:, k, :].conj()
                weights[i, k] = np.ascontiguousarray(product.real if i == k else product)
        return cls(
            A=A,
            conjugate=A.conj(),
            weights=weights,
            noise=noise.astype(dtype, copy=False),
            terms=_determinant_terms(A, noise, dtype=np.dtype(dtype)),
        )

    def block(self, frequencies: slice) -> MixingFactors:
        """The factors of a block of frequencies (views)."""
        return MixingFactors(
            A=self.A[frequencies],
            conjugate=self.conjugate[frequencies],
            weights={key: value[frequencies] for key, value in self.weights.items()},
            noise=self.noise[frequencies],
            terms=[(sources, c[frequencies]) for sources, c in self.terms],
        )


def _inverse_covariance(mixing: MixingFactors, sigma: NDArray, determinant: NDArray) -> NDArray:
    """Σ_x⁻¹ for Σ_x = A diag(σ) Aᴴ + diag(noise), shape (F, I, I, N); sigma (J, F, N).

    ``determinant`` comes from the factors (:func:`determinant_parts`), never from Σ_x's
    entries. Entry by entry on (F, N) arrays — the adjugate over that determinant for
    I ≤ 2 —, numpy's batched LU for I ≥ 3.
    """
    n_freqs, n_mics, n_sources = mixing.A.shape
    n_frames = sigma.shape[2]

    def entry(i: int, k: int) -> NDArray:  # Σ_x,ik (F, N)
        weights = mixing.weights[i, k]
        value = weights[:, 0, None] * sigma[0]
        for j in range(1, n_sources):
            value += weights[:, j, None] * sigma[j]
        if i == k:
            value += mixing.noise[:, i, None]
        return value

    inverse = np.empty((n_freqs, n_mics, n_mics, n_frames), mixing.A.dtype)
    inverse_determinant = np.reciprocal(determinant)
    if n_mics == 1:
        inverse[:, 0, 0] = inverse_determinant
    elif n_mics == 2:
        np.multiply(entry(1, 1), inverse_determinant, out=inverse[:, 0, 0])
        np.multiply(entry(0, 0), inverse_determinant, out=inverse[:, 1, 1])
        off_diagonal = inverse[:, 0, 1]
        np.multiply(entry(0, 1), -inverse_determinant, out=off_diagonal)
        np.conjugate(off_diagonal, out=inverse[:, 1, 0])
    else:
        covariance = np.empty((n_freqs, n_frames, n_mics, n_mics), mixing.A.dtype)
        for i in range(n_mics):
            for k in range(i, n_mics):
                covariance[:, :, i, k] = entry(i, k)
                covariance[:, :, k, i] = covariance[:, :, i, k].conj()
        inverse[...] = np.linalg.inv(covariance).transpose(0, 2, 3, 1)
    return inverse


@dataclass(frozen=True)
class Posterior:
    """E-step terms on a block of frequencies (see :func:`_em_posterior`)."""

    z: NDArray | None  # Aᴴ Σ_x⁻¹ x, (F, J, N); None when not asked for
    inverse: NDArray  # Σ_x⁻¹, (F, I, I, N)
    whitened: NDArray  # Σ_x⁻¹ x, (F, I, N)
    determinant: DeterminantParts


def _em_posterior(
    X: NDArray, mixing: MixingFactors, sigma: NDArray, *, with_z: bool = True
) -> Posterior:
    """E-step terms for X (F, I, N) frequency-major and sigma (J, F, N).

    Σ_x = A diag(σ) Aᴴ + diag(noise); every product is taken entry by entry on (F, N)
    arrays (I and J are small), so no (F, N, I, I) tensor is formed for I ≤ 2.
    ``with_z=False`` leaves z out (None): the likelihood needs only Σ_x⁻¹x and det Σ_x.
    """
    n_mics, n_sources = mixing.A.shape[1:]
    parts = _determinant_from_terms(mixing.terms, sigma)
    inverse = _inverse_covariance(mixing, sigma, parts.total)
    whitened = np.empty(X.shape, inverse.dtype)
    for i in range(n_mics):
        row = whitened[:, i]
        np.multiply(inverse[:, i, 0], X[:, 0], out=row)
        for k in range(1, n_mics):
            row += inverse[:, i, k] * X[:, k]
    if not with_z:
        return Posterior(z=None, inverse=inverse, whitened=whitened, determinant=parts)
    z = np.empty((X.shape[0], n_sources, X.shape[2]), inverse.dtype)
    for j in range(n_sources):
        row = z[:, j]
        np.multiply(mixing.conjugate[:, 0, j, None], whitened[:, 0], out=row)
        for i in range(1, n_mics):
            row += mixing.conjugate[:, i, j, None] * whitened[:, i]
    return Posterior(z=z, inverse=inverse, whitened=whitened, determinant=parts)
