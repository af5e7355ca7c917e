"""Convolutive mixing filters A with diagonal sensor noise, by expectation-maximization.

x_fn = A_f s_fn + b_fn with s_j,fn = Σ_{k∈K_j} c_k,fn, c_k,fn ~ N_c(0, w_fk h_kn) and
b_fn ~ N_c(0, diag(σ_b,f)): the full Gaussian model (criterion C1) of Ozerov & Févotte
(2010), for any number of microphones I ≥ 1.

Reference: A. Ozerov, C. Févotte (2010). Multichannel nonnegative matrix factorization
in convolutive mixtures for audio source separation. IEEE TASLP 18(3), section IV.

E-step, M-step, normalization and images: docs/design.md, §5.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

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
    blocks so memory stays O(F·N·(I + J)) plus one block's K×F_b×N powers.

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
    block_frequencies : int
        Frequencies per block.
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
        block_frequencies: int = 64,
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
        self.block_frequencies = positive_int(block_frequencies, name="block_frequencies")
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
                "has no em_begin/em_block/em_end"
            )
        expected = (self.n_freqs, self.n_mics, self.n_sources)
        if self.given_A is not None and self.given_A.shape != expected:
            raise ValueError(f"A must have shape (F, I, J) = {expected}, got {self.given_A.shape}")
        source.bind(self.n_freqs, self.n_frames, n_components=grouping.n_components)
        source.check_compatible(divergence=ITAKURA_SAITO, algorithm="em", exponent=None)

    def start_from_images(self, images: NDArray) -> None:
        """A from each image's principal spatial direction (unit-norm, per frequency)."""
        self._A_start = principal_filters(images)

    # ------------------------------------------------------------------ engine API
    def initialize(self, rng: np.random.Generator) -> None:
        mean = float(np.mean(np.abs(self.X) ** 2))
        self.scale, _ = internal_scale(mean)
        self.X_internal = self.X.astype(np.complex128) / np.sqrt(self.scale)
        self.mean_power = mean / self.scale if mean > 0 else 1.0
        # The noise never falls below NOISE_FLOOR_RELATIVE × each microphone's mean power
        # at that frequency: it bounds how ill-conditioned Σ_x can get (see the constant).
        channel_power = np.mean(np.abs(self.X_internal) ** 2, axis=1)  # (F, I)
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
        self.source.initialize(
            rng, mean_power=self.mean_power, scale=self.scale, dtype=np.dtype(np.float64)
        )
        self.normalize()
        # R_xx,f = mean_n x xᴴ: constant.
        X = self.X_internal
        self.R_xx = np.einsum("fni,fnk->fik", X, X.conj()) / self.n_frames

    def _annealed_noise(self) -> float:
        """The annealing schedule at the current iteration (geometric, start to end)."""
        progress = min(self.iteration / self.anneal_iter, 1.0)
        ratio = self.noise_start * (self.noise_end / self.noise_start) ** progress
        return np.maximum(ratio * self.mean_power, self.noise_floor)

    def _blocks(self):  # -> Iterator[slice]
        for start in range(0, self.n_freqs, self.block_frequencies):
            yield slice(start, min(start + self.block_frequencies, self.n_freqs))

    def _posterior(self, block: slice) -> tuple[NDArray, Posterior]:
        """The source powers σ (J, F_b, N) on a block and the E-step terms there."""
        sigma = self.grouping.source_powers(self.source.W[block], self.source.H)
        return sigma, _em_posterior(self.X_internal[block], self.A[block], sigma, self.noise[block])

    def step(self) -> None:
        source = self.source
        members = np.arange(self.n_sources)
        source.em_begin()
        for block in self._blocks():
            A = self.A[block]
            sigma, post = self._posterior(block)
            X = self.X_internal[block]
            # Posterior variances without cancellation: with det Σ_x = R_j + σ_j P_j
            # (determinant_parts), σ_j − σ_j² a_jᴴΣ_x⁻¹a_j = σ_j R_j / det, and for a
            # component k of source j, σ_k − σ_k² a_jᴴΣ_x⁻¹a_j = σ_k (R_j + (σ_j − σ_k) P_j)
            # / det — sums of non-negative terms, where the differences lose every digit
            # once a source is ~10⁹ times the noise.
            parts = post.determinant
            # Sufficient statistics of the mixing model.
            projected = np.einsum(  # Aᴴ Σ_x⁻¹ A, (F, N, J, J)
                "fij,fnik,fkl->fnjl", A.conj(), post.inverse, A, optimize=True
            )
            s_hat = sigma.transpose(1, 2, 0) * post.z  # (F, N, J)
            R_xs = np.einsum("fni,fnj->fij", X, s_hat.conj()) / self.n_frames
            sig = sigma.transpose(1, 2, 0)
            R_ss = (
                np.einsum("fnj,fnl->fjl", s_hat, s_hat.conj())
                - np.einsum("fnj,fnjl,fnl->fjl", sig, projected, sig)
            ) / self.n_frames
            # Its diagonal again, without cancellation: mean |ŝ_j|² + σ_j R_j / det.
            R_ss[:, members, members] = (
                np.mean(np.abs(s_hat) ** 2, axis=1)
                + np.mean(sigma * parts.without / parts.total, axis=2).T
            )
            # Posterior component powers for the source model (one block at a time):
            # u_k = σ_k (R_j + (σ_j − σ_k) P_j) / det + σ_k² |z_j|².
            component = source.W[block].T[:, :, None] * source.H[:, None, :]  # σ_k (K,F_b,N)
            posterior = np.empty_like(component)
            inverse_total = 1.0 / parts.total
            excess = np.abs(post.z.transpose(2, 0, 1)) ** 2  # |z_j|², (J, F_b, N)
            for j, members_j in enumerate(self.grouping.members):
                own = component[members_j]
                share = sigma[j] - own
                share *= parts.partial[j]
                share += parts.without[j]
                share *= inverse_total
                share += own * excess[j]
                share *= own
                posterior[members_j] = share
            source.em_block(block, posterior)
            # M-step for the mixing filters and the noise.
            # Pseudo-inverse: the exact maximizer when R_ss is invertible, the minimum-norm
            # one when a source has died out (its row and column of R_ss vanish). Where
            # every source has vanished at a frequency nothing informs A: it is kept.
            informed = np.trace(R_ss, axis1=1, axis2=2).real > self.noise_floor[block].min(axis=1)
            A_new = self.A[block].copy()
            A_new[informed] = R_xs[informed] @ np.linalg.pinv(R_ss[informed], hermitian=True)
            self.A[block] = A_new
            if self.noise_mode == "estimate":
                residual = (
                    self.R_xx[block]
                    - A_new @ R_xs.conj().transpose(0, 2, 1)
                    - R_xs @ A_new.conj().transpose(0, 2, 1)
                    + A_new @ R_ss @ A_new.conj().transpose(0, 2, 1)
                )
                diagonal = residual[:, np.arange(self.n_mics), np.arange(self.n_mics)].real
                self.noise[block] = np.maximum(diagonal, self.noise_floor[block])
        source.em_end()
        self.iteration += 1
        if self.noise_mode == "anneal":
            self.noise[:] = self._annealed_noise()
        self.normalize()

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
        total = 0.0
        for block in self._blocks():
            _, post = self._posterior(block)
            quadratic = np.einsum("fni,fni->", self.X_internal[block].conj(), post.whitened).real
            total += float(quadratic + post.logdet.sum())
        return total + self.source.penalty()

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
    z = _em_posterior(X, A, sigma, noise).z
    s_hat = sigma * z.transpose(2, 0, 1)  # (J, F, N)
    return np.einsum("fij,jfn->jfni", A, s_hat)


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
    n_freqs, n_mics, n_sources = A.shape
    shape = sigma.shape[1:]
    total = np.zeros(shape)
    without = np.zeros((n_sources, *shape))
    partial = np.zeros((n_sources, *shape))
    for size in range(min(n_mics, n_sources) + 1):
        for sources in itertools.combinations(range(n_sources), size):
            coefficient = np.zeros(n_freqs)
            for mics in itertools.combinations(range(n_mics), size):
                others = [i for i in range(n_mics) if i not in mics]
                minor = np.abs(np.linalg.det(A[:, mics][:, :, sources])) ** 2 if size else 1.0
                coefficient += np.prod(noise[:, others], axis=1) * minor
            coefficient = coefficient[:, None]  # (F, 1)
            for j in sources:  # the term's derivative in σ_j
                others = [l for l in sources if l != j]
                partial[j] += (
                    coefficient * np.prod(sigma[others], axis=0) if others else coefficient
                )
            term = coefficient * np.prod(sigma[list(sources)], axis=0) if size else coefficient
            total += term
            for j in set(range(n_sources)) - set(sources):
                without[j] += term
    return DeterminantParts(total=total, without=without, partial=partial)


def _covariance_determinant(A: NDArray, sigma: NDArray, noise: NDArray) -> NDArray:
    """det Σ_x (F, N), from :func:`determinant_parts`."""
    return determinant_parts(A, sigma, noise).total


def _inverse_and_logdet(M: NDArray, determinant: NDArray) -> tuple[NDArray, NDArray]:
    """Inverse and log-determinant of Σ_x = M = A diag(σ) Aᴴ + diag(noise), (F, N, I, I).

    ``determinant`` comes from the factors (:func:`determinant_parts`), never from M's
    entries. The inverse: closed forms for I = 1 and 2 (the adjugate over
    that determinant; numpy's batched LAPACK calls cost microseconds per 2×2 matrix),
    numpy's LU otherwise.
    """
    size = M.shape[-1]
    if size == 1:
        return 1.0 / M, np.log(determinant)
    if size == 2:
        a, b, c, d = M[..., 0, 0], M[..., 0, 1], M[..., 1, 0], M[..., 1, 1]
        inverse = np.empty_like(M)
        inverse[..., 0, 0], inverse[..., 0, 1] = d, -b
        inverse[..., 1, 0], inverse[..., 1, 1] = -c, a
        inverse /= determinant[..., None, None]
        return inverse, np.log(determinant)
    return np.linalg.inv(M), np.log(determinant)


@dataclass(frozen=True)
class Posterior:
    """E-step terms on a block of frequencies (see :func:`_em_posterior`)."""

    z: NDArray  # Aᴴ Σ_x⁻¹ x, (F, N, J)
    inverse: NDArray  # Σ_x⁻¹, (F, N, I, I)
    logdet: NDArray  # log det Σ_x, (F, N)
    whitened: NDArray  # Σ_x⁻¹ x, (F, N, I)
    determinant: DeterminantParts


def _em_posterior(X: NDArray, A: NDArray, sigma: NDArray, noise: NDArray) -> Posterior:
    """E-step terms for X (F, N, I), A (F, I, J), sigma (J, F, N), noise (F, I).

    Σ_x = A diag(σ) Aᴴ + diag(noise).
    """
    n_mics = X.shape[2]
    covariance = np.einsum("fij,jfn,fkj->fnik", A, sigma, A.conj(), optimize=True)
    covariance[..., np.arange(n_mics), np.arange(n_mics)] += noise[:, None, :]
    parts = determinant_parts(A, sigma, noise)
    inverse, logdet = _inverse_and_logdet(covariance, parts.total)
    whitened = np.einsum("fnik,fnk->fni", inverse, X)
    z = np.einsum("fij,fni->fnj", A.conj(), whitened)
    return Posterior(z=z, inverse=inverse, logdet=logdet, whitened=whitened, determinant=parts)
