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
from mnmf.divergence import FLOOR_RELATIVE, is_data_constant, is_model_terms
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
        self.scale = float(2.0 ** np.round(np.log2(mean))) if mean > 0 else 1.0
        self.floor = self.dtype.type(FLOOR_RELATIVE * (mean / self.scale if mean > 0 else 1.0))
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
            movable = np.array([source.free[self.labels == j].all() for j in range(self.n_sources)])
            totals[~movable] = 1  # fixed dictionaries keep their scale in Q
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
    powers = np.stack([W[:, labels == j] @ H[labels == j] for j in range(n_sources)])  # (J,F,N)
    gains = Q if Q.ndim == 3 else Q[:, :, None]  # (I, J, F or 1)
    contributions = gains.transpose(1, 2, 0)[:, :, None, :] * powers[..., None]  # (J, F, N, I)
    total = contributions.sum(axis=0)
    floor = floor_relative * max(float(total.mean()), np.finfo(np.float64).tiny)
    silent = total <= floor
    weights = np.where(silent, 1.0 / n_sources, contributions / np.where(silent, 1.0, total))
    return weights * X[None]
