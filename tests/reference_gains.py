"""The gains model's MU step as it was before its frame blocks and threads (issue 17).

A frozen copy of ``GainsModel.step`` and its helpers at commit 977cbc6 (whole (F, N)
arrays per channel), the reference the block-parallel step is tested equal to (1e-10
relative in float64).
"""

from __future__ import annotations

import numpy as np

from mnmf.divergence import is_model_terms, mu_factor
from mnmf.spatial.fastmnmf import FastMNMFModel
from mnmf.spatial.gains import GainsModel


class ReferenceGainsModel(GainsModel):
    """``GainsModel`` with the step and cost of 977cbc6."""

    def step(self) -> None:
        source = self.source
        # H: statistics through the effective dictionaries W̃_i.
        numerator = np.zeros_like(source.H)
        denominator = np.zeros_like(source.H)
        for i, (ratio_num, ratio_den) in self._reference_ratios():
            effective = self._effective_dictionary(i)
            numerator += effective.T @ ratio_num
            denominator += effective.T @ ratio_den
        source.update_H_mu(numerator, denominator, self.exponent)
        # W: per-channel (F, K) products weighted by each component's gains.
        if source.free.any():
            numerator, denominator = np.zeros_like(source.W), np.zeros_like(source.W)
            for i, (A, B) in self._reference_products():
                gains = self._component_gains(i)
                numerator += gains * A
                denominator += gains * B
            source.update_W_mu(numerator, denominator, self.exponent)
        # Q: the same products, summed over each source's components (and f if instantaneous).
        if not self.fix_Q and self.n_mics > 1:
            numerator, denominator = np.zeros_like(self.Q), np.zeros_like(self.Q)
            for i, (A, B) in self._reference_products():
                numerator[i] = self._per_source(source.W * A)
                denominator[i] = self._per_source(source.W * B)
            self.Q *= mu_factor(numerator, denominator, self.exponent)
        self.normalize()

    def _model_terms(self) -> float:
        """Σ_i Σ_fn (V_i / V̂_i + log V̂_i): the channels' IS terms without the data constant."""
        total = 0.0
        scratch = np.empty((self.n_freqs, self.n_frames), self.dtype)
        for i in range(self.n_mics):
            total += is_model_terms(self.V[i], self._model(i), scratch=scratch)
        return total

    def _reference_ratios(self):  # -> Iterator[tuple[int, tuple[NDArray, NDArray]]]
        """For each channel, (V_i V̂_i⁻², V̂_i⁻¹) at the current parameters."""
        for i in range(self.n_mics):
            inverse = self._model(i)
            np.divide(self.dtype.type(1), inverse, out=inverse)
            ratio = np.square(inverse)
            ratio *= self.V[i]
            yield i, (ratio, inverse)

    def _reference_products(self):  # -> Iterator[tuple[int, tuple[NDArray, NDArray]]]
        """For each channel, A_i = (V_i V̂_i⁻²) Hᵀ and B_i = V̂_i⁻¹ Hᵀ, both (F, K)."""
        H_t = self.source.H.T
        for i, (ratio_num, ratio_den) in self._reference_ratios():
            yield i, (ratio_num @ H_t, ratio_den @ H_t)


class ReferenceFastMNMFModel(FastMNMFModel):
    """``FastMNMFModel`` on the gains step of 977cbc6 (its own D update unchanged)."""

    _model_terms = ReferenceGainsModel._model_terms
    _reference_ratios = ReferenceGainsModel._reference_ratios
    _reference_products = ReferenceGainsModel._reference_products

    def step(self) -> None:
        ReferenceGainsModel.step(self)
        self._update_diagonalizers()
        self._normalize_diagonalizers()
