"""Spatial models: how sources reach the microphones.

Per-source spatial gains Q (Ozerov & Févotte 2010, criterion C2): the power
spectrogram of microphone i is modelled as

    V̂_i,fn = Σ_j q_ij,f Σ_{k∈K_j} w_fk h_kn + floor,

with q constant over f for an instantaneous mix. With ``labels[k] = j(k)`` this is an
NMF per channel with the *effective dictionary* W̃_i = W ∘ Q_i[:, labels], so

- H's MU statistics are the single-channel ones summed over channels,
  Σ_i W̃_iᵀ(V_i V̂_i⁻²) and Σ_i W̃_iᵀ V̂_i⁻¹;
- W's and Q's both come from the per-channel (F, K) products A_i = (V_i V̂_i⁻²) Hᵀ and
  B_i = V̂_i⁻¹ Hᵀ: W's are Σ_i Q_i[:, labels] ∘ A_i, Q's are Σ_{k∈j} w_fk A_i,fk.

The source model (:class:`mnmf.NMFSource`, or smooth/supervised variants) applies its
own update to these statistics; every block is an MM step for the IS divergence (linear
in V̂ with exponent γ = ½), so the cost never increases.

Reference: A. Ozerov, C. Févotte (2010). Multichannel nonnegative matrix factorization
in convolutive mixtures for audio source separation. IEEE TASLP 18(3).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mnmf._validation import as_float_array, check_finite, check_nonnegative
from mnmf.divergence import FLOOR_RELATIVE, internal_scale, is_data_constant, is_model_terms
from mnmf.separation import source_powers
from mnmf.sources import NMFSource, _mu_factor


class GainsModel:
    """Multichannel IS-NMF with per-source spatial gains Q, by multiplicative updates.

    Parameters
    ----------
    V : array, shape (F, N, I)
        Power spectrogram of every microphone.
    source : NMFSource
        Spectral model of all K components (W (F, K), H (K, N)).
    labels : int array, shape (K,)
        Source index j(k) of every component, covering 0..J-1.
    mixing : {"convolutive", "instantaneous"}
        Gains per frequency (q_ij,f) or one gain per source and mic (q_ij).
    exponent : float
        MU exponent; ½ is the MM exponent of the IS divergence.
    Q : array, shape (I, J, F) or (I, J), optional
        Initial gains; by default uniform in [0.5, 1.5) from ``rng``, normalized.
    fix_Q : bool
        Keep Q fixed (e.g. known panning).

    Notes
    -----
    After each iteration Σ_i q_ij,f = 1 and the scale moves into the rows of W_j, then
    W's free columns are normalized to unit sum (scale into H): the cost is unchanged.
    Sources with fixed columns in W keep their scale in Q (W must not change). With one
    microphone the normalization forces q = 1, so Q is not updated and the model is
    exactly single-channel IS-NMF.
    """

    def __init__(
        self,
        V: NDArray,
        source: NMFSource,
        labels: NDArray[np.int64],
        *,
        mixing: str = "convolutive",
        exponent: float = 0.5,
        Q: ArrayLike | None = None,
        fix_Q: bool = False,
    ) -> None:
        self.V_user = V
        self.dtype = V.dtype
        self.n_freqs, self.n_frames, self.n_mics = V.shape
        self.source = source
        self.labels = labels
        self.n_sources = int(labels.max()) + 1
        self.instantaneous = mixing == "instantaneous"
        self.exponent = exponent
        self.fix_Q = bool(fix_Q)
        self._Q_given = None
        if Q is not None:
            given = as_float_array(Q, name="Q", ndim=(2, 3)).astype(self.dtype)
            check_finite(given, name="Q")
            check_nonnegative(given, name="Q")
            expected = (self.n_mics, self.n_sources) + (
                () if self.instantaneous else (self.n_freqs,)
            )
            if given.shape != expected:
                raise ValueError(
                    f"Q must have shape {expected} for mixing={mixing!r}, got {given.shape}"
                )
            self._Q_given = given
        source.bind(self.n_freqs, self.n_frames)

    # ------------------------------------------------------------------ engine API
    def initialize(self, rng: np.random.Generator) -> None:
        mean = float(np.mean(self.V_user, dtype=np.float64))
        self.scale, floor = internal_scale(mean)
        self.floor = self.dtype.type(floor)
        # (I, F, N) contiguous per channel, in internal units.
        self.V = np.ascontiguousarray(np.moveaxis(self.V_user, 2, 0)) * self.dtype.type(
            1.0 / self.scale
        )
        shape = (self.n_mics, self.n_sources) + (() if self.instantaneous else (self.n_freqs,))
        if self._Q_given is not None:
            Q = self._Q_given.copy()
        else:
            Q = rng.uniform(0.5, 1.5, size=shape).astype(self.dtype)
        self.Q = Q / Q.sum(axis=0, keepdims=True)
        # Σ_i V̂_i ≈ Σ_i V_i with Σ_i q = 1: the sources' powers match I times the mean.
        self.source.initialize(
            rng, mean_power=self.n_mics * mean / self.scale, scale=self.scale, dtype=self.dtype
        )
        self.normalize()
        self._constant = sum(is_data_constant(V_i, float(self.floor)) for V_i in self.V)

    def step(self) -> None:
        source = self.source
        # H: statistics through the effective dictionaries W̃_i.
        numerator = np.zeros_like(source.H)
        denominator = np.zeros_like(source.H)
        for i, (ratio_num, ratio_den) in self._channel_ratios():
            effective = self._effective_dictionary(i)
            numerator += effective.T @ ratio_num
            denominator += effective.T @ ratio_den
        source.update_H_mu(numerator, denominator, self.exponent)
        # W: per-channel (F, K) products weighted by each component's gains.
        if source.free.any():
            numerator, denominator = np.zeros_like(source.W), np.zeros_like(source.W)
            for i, (A, B) in self._channel_products():
                gains = self._component_gains(i)
                numerator += gains * A
                denominator += gains * B
            source.update_W_mu(numerator, denominator, self.exponent)
        # Q: the same products, summed over each source's components (and f if instantaneous).
        if not self.fix_Q and self.n_mics > 1:
            numerator, denominator = np.zeros_like(self.Q), np.zeros_like(self.Q)
            for i, (A, B) in self._channel_products():
                numerator[i] = self._per_source(source.W * A)
                denominator[i] = self._per_source(source.W * B)
            self.Q *= _mu_factor(numerator, denominator, self.exponent)
        self.normalize()

    def cost(self) -> float:
        """C2 = Σ_i D_IS(V_i | V̂_i) (scale-invariant), plus the source model's penalty."""
        total = 0.0
        scratch = np.empty((self.n_freqs, self.n_frames), self.dtype)
        for i in range(self.n_mics):
            total += is_model_terms(self.V[i], self._model(i), scratch=scratch)
        return total - self._constant + self.source.penalty()

    def parameters(self) -> dict[str, NDArray]:
        return self.source.parameters(scale=self.scale) | {
            "Q": self.Q.copy(),
            "labels": self.labels.copy(),
        }

    # ------------------------------------------------------------------ pieces
    def normalize(self) -> None:
        """Σ_i q_ij,f = 1 with the scale moved into W_j's rows, then W's columns."""
        source = self.source
        if self.n_mics > 1:
            totals = self.Q.sum(axis=0)  # (J, F) or (J,)
            totals[totals <= 0] = 1
            totals[~source.free_sources(self.labels)] = (
                1  # fixed dictionaries keep their scale in Q
            )
            self.Q /= totals
            per_component = totals[self.labels]  # (K, F) or (K,)
            source.W *= per_component.T if not self.instantaneous else per_component
        source.normalize()

    def _component_gains(self, i: int) -> NDArray:
        """q_{i, j(k), f} as an (F, K) array (broadcastable for instantaneous mixing)."""
        gains = self.Q[i][self.labels]  # (K, F) or (K,)
        return gains.T if not self.instantaneous else gains[None, :]

    def _effective_dictionary(self, i: int) -> NDArray:
        return self.source.W * self._component_gains(i)

    def _model(self, i: int) -> NDArray:
        model = self._effective_dictionary(i) @ self.source.H
        model += self.floor
        return model

    def _channel_ratios(self):  # -> Iterator[tuple[int, tuple[NDArray, NDArray]]]
        """For each channel, (V_i V̂_i⁻², V̂_i⁻¹) at the current parameters."""
        for i in range(self.n_mics):
            inverse = self._model(i)
            np.divide(self.dtype.type(1), inverse, out=inverse)
            ratio = np.square(inverse)
            ratio *= self.V[i]
            yield i, (ratio, inverse)

    def _channel_products(self):  # -> Iterator[tuple[int, tuple[NDArray, NDArray]]]
        """For each channel, A_i = (V_i V̂_i⁻²) Hᵀ and B_i = V̂_i⁻¹ Hᵀ, both (F, K)."""
        H_t = self.source.H.T
        for i, (ratio_num, ratio_den) in self._channel_ratios():
            yield i, (ratio_num @ H_t, ratio_den @ H_t)

    def _per_source(self, per_component: NDArray) -> NDArray:
        """Sum an (F, K) array over each source's components: (J, F), or (J,) summed over f."""
        sums = np.stack(
            [per_component[:, self.labels == j].sum(axis=1) for j in range(self.n_sources)]
        )
        return sums.sum(axis=1) if self.instantaneous else sums


def gains_images(
    X: NDArray,
    Q: NDArray,
    W: NDArray,
    H: NDArray,
    labels: NDArray,
    *,
    floor_relative: float = FLOOR_RELATIVE,
) -> NDArray[np.complexfloating]:
    """Source images by per-channel Wiener gains: ŝ_ij = q_ij,f P_j / V̂_i · X_i.

    Parameters
    ----------
    X : complex array, shape (F, N, I)
    Q : array, shape (I, J, F) or (I, J)
    W : array, shape (F, K)
    H : array, shape (K, N)
    labels : int array, shape (K,)

    Returns
    -------
    images : complex array, shape (J, F, N, I)
        They add up to X exactly (the gains of each channel sum to one).
    """
    n_sources = int(labels.max()) + 1
    powers = source_powers(W, H, labels)  # (J, F, N)
    gains = Q if Q.ndim == 3 else Q[:, :, None]  # (I, J, F or 1)
    contributions = gains.transpose(1, 2, 0)[:, :, None, :] * powers[..., None]  # (J, F, N, I)
    total = contributions.sum(axis=0)
    floor = floor_relative * max(float(total.mean()), np.finfo(np.float64).tiny)
    silent = total <= floor
    weights = np.where(silent, 1.0 / n_sources, contributions / np.where(silent, 1.0, total))
    return weights * X[None]


def _inverse_and_logdet(M: NDArray) -> tuple[NDArray, NDArray]:
    """Inverse and log-determinant of Hermitian positive definite (..., I, I) matrices.

    Closed forms for I = 1 and 2 (the common cases; numpy's batched LAPACK calls cost
    microseconds per 2×2 matrix), numpy otherwise.
    """
    size = M.shape[-1]
    if size == 1:
        return 1.0 / M, np.log(M[..., 0, 0].real)
    if size == 2:
        a, b, c, d = M[..., 0, 0], M[..., 0, 1], M[..., 1, 0], M[..., 1, 1]
        determinant = (a * d - b * c).real
        inverse = np.empty_like(M)
        inverse[..., 0, 0], inverse[..., 0, 1] = d, -b
        inverse[..., 1, 0], inverse[..., 1, 1] = -c, a
        inverse /= determinant[..., None, None]
        return inverse, np.log(determinant)
    _, logdet = np.linalg.slogdet(M)
    return np.linalg.inv(M), logdet


class ConvolutiveEMModel:
    """Multichannel NMF with complex mixing filters, by expectation-maximization.

    x_fn = A_f s_fn + b_fn with s_j,fn = Σ_{k∈K_j} c_k,fn, c_k,fn ~ N_c(0, w_fk h_kn) and
    b_fn ~ N_c(0, diag(σ_b,f)). The cost is the negative log-likelihood
    Σ_fn x_fnᴴ Σ_x,fn⁻¹ x_fn + log det Σ_x,fn (constants dropped), which EM never
    increases when the noise is estimated.

    E-step, per (f, n), with z = Aᴴ Σ_x⁻¹ x and d_j = Re(a_jᴴ Σ_x⁻¹ a_j): the posterior
    mean of source j is ŝ_j = σ_j z_j and the posterior power of component k is
    u_k = σ_k + σ_k² (|z_j(k)|² − d_j(k)) — no per-component complex tensor is needed.
    M-step: A_f = R_xs R_ss⁻¹, σ_b,f = diag(R_xx − A R_xsᴴ − R_xs Aᴴ + A R_ss Aᴴ) (or
    annealed), W and H by :meth:`NMFSource.em_block` from u. Frequencies are processed in
    blocks so memory stays O(F·N·(I + J)) plus one block's K×F_b×N powers.

    Parameters
    ----------
    X : complex array, shape (F, N, I)
    source : NMFSource
    labels : int array, shape (K,)
    A : complex array, shape (F, I, J), optional
        Initial mixing filters; random (unit-norm columns) from ``rng`` by default.
    noise : {"estimate", "anneal"}
        Estimate σ_b by EM (monotone likelihood), or anneal it geometrically from
        ``noise_start`` to ``noise_end`` times the mean power over ``anneal_iter``
        iterations, as the authors do to escape poor local optima (the likelihood may
        then rise while the noise shrinks).
    block_frequencies : int
        Frequencies per block.

    Reference: A. Ozerov, C. Févotte (2010), IEEE TASLP 18(3), section IV.
    """

    def __init__(
        self,
        X: NDArray,
        source: NMFSource,
        labels: NDArray[np.int64],
        *,
        A: ArrayLike | None = None,
        noise: str = "estimate",
        noise_start: float = 1e-1,
        noise_end: float = 1e-4,
        anneal_iter: int = 100,
        block_frequencies: int = 64,
    ) -> None:
        self.X_user = X
        self.n_freqs, self.n_frames, self.n_mics = X.shape
        self.source = source
        self.labels = labels
        self.n_sources = int(labels.max()) + 1
        self.noise_mode = noise
        self.noise_start, self.noise_end, self.anneal_iter = noise_start, noise_end, anneal_iter
        self.block_frequencies = block_frequencies
        self._A_given = None
        if A is not None:
            given = np.asarray(A)
            expected = (self.n_freqs, self.n_mics, self.n_sources)
            if given.shape != expected:
                raise ValueError(f"A must have shape (F, I, J) = {expected}, got {given.shape}")
            if not np.all(np.isfinite(given)):
                raise ValueError("A contains NaN or infinite values")
            self._A_given = given.astype(np.complex128)
        source.bind(self.n_freqs, self.n_frames)

    def initialize(self, rng: np.random.Generator) -> None:
        mean = float(np.mean(np.abs(self.X_user) ** 2))
        self.scale, _ = internal_scale(mean)
        self.X = self.X_user.astype(np.complex128) / np.sqrt(self.scale)
        self.mean_power = mean / self.scale if mean > 0 else 1.0
        self.noise_floor = FLOOR_RELATIVE * 1e3 * self.mean_power  # keeps Σ_x invertible
        if self._A_given is not None:
            A = self._A_given.copy()
        else:
            shape = (self.n_freqs, self.n_mics, self.n_sources)
            A = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
        self.A = A
        self.iteration = 0
        self.noise = np.full((self.n_freqs, self.n_mics), self._annealed_noise())  # its start
        self.source.initialize(
            rng, mean_power=self.mean_power, scale=self.scale, dtype=np.dtype(np.float64)
        )
        self.normalize()
        # R_xx,f = mean_n x xᴴ: constant.
        self.R_xx = np.einsum("fni,fnk->fik", self.X, self.X.conj()) / self.n_frames

    def _annealed_noise(self) -> float:
        """The annealing schedule at the current iteration (geometric, start to end)."""
        progress = min(self.iteration / max(self.anneal_iter, 1), 1.0)
        ratio = self.noise_start * (self.noise_end / self.noise_start) ** progress
        return max(ratio * self.mean_power, self.noise_floor)

    def _blocks(self):  # -> Iterator[slice]
        for start in range(0, self.n_freqs, self.block_frequencies):
            yield slice(start, min(start + self.block_frequencies, self.n_freqs))

    def _posterior(self, block: slice) -> tuple[NDArray, NDArray, NDArray, NDArray, NDArray]:
        """E-step quantities on a block: σ (J,F,N), z (F,N,J), Σ_x⁻¹A (F,N,I,J), logdet, Σ_x⁻¹x."""
        sigma = source_powers(self.source.W[block], self.source.H, self.labels)
        return (sigma, *_em_posterior(self.X[block], self.A[block], sigma, self.noise[block]))

    def step(self) -> None:
        source = self.source
        source.em_begin()
        for block in self._blocks():
            A = self.A[block]
            sigma, z, inverse_A, _, _ = self._posterior(block)
            X = self.X[block]
            # Sufficient statistics of the mixing model.
            projected = np.einsum("fij,fnik->fnjk", A.conj(), inverse_A)  # Aᴴ Σ_x⁻¹ A (F,N,J,J)
            s_hat = sigma.transpose(1, 2, 0) * z  # (F, N, J)
            R_xs = np.einsum("fni,fnj->fij", X, s_hat.conj()) / self.n_frames
            sig = sigma.transpose(1, 2, 0)
            R_ss = (
                np.einsum("fnj,fnl->fjl", s_hat, s_hat.conj())
                - np.einsum("fnj,fnjl,fnl->fjl", sig, projected, sig)
            ) / self.n_frames
            R_ss[:, np.arange(self.n_sources), np.arange(self.n_sources)] += sig.mean(axis=1)
            # Posterior component powers for the source model (one block at a time).
            d = projected[..., np.arange(self.n_sources), np.arange(self.n_sources)].real
            excess = (np.abs(z) ** 2 - d).transpose(2, 0, 1)  # (J, F_b, N)
            component = source.W[block].T[:, :, None] * source.H[:, None, :]  # σ_k (K,F_b,N)
            posterior = component + component**2 * excess[self.labels]
            source.em_block(block, posterior)
            # M-step for the mixing filters and the noise.
            # Pseudo-inverse: the exact maximizer when R_ss is invertible, the minimum-norm
            # one when a source has died out (its row and column of R_ss vanish). Where
            # every source has vanished at a frequency nothing informs A: it is kept.
            informed = np.trace(R_ss, axis1=1, axis2=2).real > self.noise_floor
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
                self.noise[block] = np.maximum(diagonal, self.noise_floor)
        source.em_end()
        self.iteration += 1
        if self.noise_mode == "anneal":
            self.noise[:] = self._annealed_noise()
        self.normalize()

    def normalize(self) -> None:
        """Unit-norm columns of A with their energy moved into W_j's rows, then W's columns."""
        norms = np.linalg.norm(self.A, axis=1)  # (F, J)
        norms[:, ~self.source.free_sources(self.labels)] = 1
        norms[~(norms > 0)] = 1  # a vanished column stays as it is
        self.A /= norms[:, None, :]
        self.source.W *= (norms**2)[:, self.labels]
        self.source.normalize()

    def cost(self) -> float:
        """Negative log-likelihood Σ_fn xᴴ Σ_x⁻¹ x + log det Σ_x (internal units)."""
        total = 0.0
        for block in self._blocks():
            _, _, _, logdet, whitened = self._posterior(block)
            quadratic = np.einsum("fni,fni->", self.X[block].conj(), whitened).real
            total += float(quadratic + logdet.sum())
        return total + self.source.penalty()

    def parameters(self) -> dict[str, NDArray]:
        return self.source.parameters(scale=self.scale) | {
            "A": self.A.copy(),
            "noise": self.noise * self.scale,
            "labels": self.labels.copy(),
        }


def em_images(
    X: NDArray, A: NDArray, W: NDArray, H: NDArray, labels: NDArray, noise: NDArray
) -> NDArray[np.complexfloating]:
    """Multichannel Wiener images ŝ_ij = a_ij σ_j a_jᴴ Σ_x⁻¹ x, shape (J, F, N, I)."""
    sigma = source_powers(W, H, labels)
    z = _em_posterior(X, A, sigma, noise)[0]
    s_hat = sigma * z.transpose(2, 0, 1)  # (J, F, N)
    return np.einsum("fij,jfn->jfni", A, s_hat)


def _em_posterior(
    X: NDArray, A: NDArray, sigma: NDArray, noise: NDArray
) -> tuple[NDArray, NDArray, NDArray, NDArray]:
    """E-step terms: z = Aᴴ Σ_x⁻¹ x (F,N,J), Σ_x⁻¹ A (F,N,I,J), log det Σ_x, Σ_x⁻¹ x.

    X (F, N, I), A (F, I, J), sigma (J, F, N), noise (F, I); Σ_x = A diag(σ) Aᴴ + diag(noise).
    """
    n_mics = X.shape[2]
    covariance = np.einsum("fij,jfn,fkj->fnik", A, sigma, A.conj())
    covariance[..., np.arange(n_mics), np.arange(n_mics)] += noise[:, None, :]
    inverse, logdet = _inverse_and_logdet(covariance)
    whitened = np.einsum("fnik,fnk->fni", inverse, X)
    z = np.einsum("fij,fni->fnj", A.conj(), whitened)
    inverse_A = np.einsum("fnik,fkj->fnij", inverse, A)
    return z, inverse_A, logdet, whitened
