"""Models written outside the package, as a user would, to test the seams.

Nothing here is registered in :mod:`mnmf`: the models are passed as instances (or as
``_target_`` nodes of a Hydra config, see ``tests/test_seams.py``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from mnmf.divergence import ITAKURA_SAITO, internal_scale, is_data_constant, is_model_terms
from mnmf.grouping import SourceGrouping
from mnmf.separation import ratio_masks
from mnmf.sources import NMFSource
from mnmf.spatial import SpatialModelBase


class SparseNMFSource(NMFSource):
    """IS-NMF with an L1 penalty on the activations: cost + μ Σ_kn h_kn.

    The penalty is linear in H, so it adds μ to the MU denominator of H (the MM step of
    the penalized majorizer: h = h̃ √(G⁻ / (G⁺ + μ))) and turns the EM M-step of each
    h_kn into the positive root of μ h² + F h − S = 0. The penalty is not invariant to
    moving scale between W and H, so the columns of W are not normalized
    (``normalize=False``); the spatial models only move scale into the rows of W, which
    leaves it unchanged. Every step then keeps the cost from increasing.
    """

    def __init__(self, n_components: int | None = None, *, sparsity: float = 0.1, **options):
        super().__init__(n_components, normalize=False, **options)
        self.sparsity = float(sparsity)

    def update_H_mu(self, numerator, denominator, exponent, *, frames=slice(None)) -> None:
        # μ in internal units: the penalty is μ Σ h with h in user units (h · scale).
        super().update_H_mu(numerator, denominator + self._penalty_weight, exponent, frames=frames)

    def activations_from_posterior(self, sums: NDArray, n_freqs: int, *, rows: slice) -> NDArray:
        mu = self._penalty_weight
        if mu == 0:
            return sums / n_freqs
        return 2 * sums / (n_freqs + np.sqrt(n_freqs**2 + 4 * mu * sums))

    def initialize(self, rng, *, mean_power, scale, dtype) -> None:
        super().initialize(rng, mean_power=mean_power, scale=scale, dtype=dtype)
        self._scale = scale
        self._penalty_weight = dtype.type(self.sparsity * scale)

    def penalty(self) -> float:
        return self.sparsity * self._scale * float(np.sum(self.H, dtype=np.float64))


class EqualGainsModel(SpatialModelBase):
    """Every source reaches every microphone with the same power: V̂_i = Σ_j P_j / I.

    A power-spectrogram model with no spatial parameter at all (the gains model with
    Q fixed to 1/I): the source model sees the single-channel IS statistics summed over
    microphones. Its images split each channel by the sources' shares.
    """

    algorithm = "mu"

    def bind(self, X, source, grouping) -> None:
        super().bind(X, source, grouping)
        source.bind(self.n_freqs, self.n_frames, n_components=grouping.n_components)
        source.check_compatible(divergence=ITAKURA_SAITO, algorithm="mu", exponent=0.5)

    def start_from_images(self, images: NDArray) -> None:
        """No spatial parameter to start."""

    def initialize(self, rng: np.random.Generator) -> None:
        power = np.abs(self.X) ** 2
        self.scale, floor = internal_scale(float(np.mean(power)))
        self.floor = power.dtype.type(floor)
        self.V = np.moveaxis(power, 2, 0) / self.scale  # (I, F, N)
        self.source.initialize(
            rng, mean_power=float(np.mean(self.V)) * self.n_mics, scale=self.scale,
            dtype=self.V.dtype,
        )  # fmt: skip
        self._constant = sum(is_data_constant(V_i, float(self.floor)) for V_i in self.V)

    def _model(self) -> NDArray:
        model = (self.source.W / self.n_mics) @ self.source.H
        model += self.floor
        return model

    def step(self) -> None:
        source = self.source
        inverse = 1.0 / self._model()
        ratio = self.V * inverse**2  # (I, F, N)
        W_mic = source.W / self.n_mics
        numerator = W_mic.T @ ratio.sum(axis=0)
        denominator = W_mic.T @ (self.n_mics * inverse)
        source.update_H_mu(numerator, denominator, 0.5)
        inverse = 1.0 / self._model()
        ratio = (self.V * inverse**2).sum(axis=0) / self.n_mics
        source.update_W_mu(ratio @ source.H.T, inverse @ source.H.T, 0.5)
        source.normalize()

    def cost(self) -> float:
        scratch = np.empty((self.n_freqs, self.n_frames), self.V.dtype)
        model = self._model()
        total = sum(is_model_terms(V_i, model, scratch=scratch) for V_i in self.V)
        return total - self._constant + self.source.penalty()

    def parameters(self) -> dict[str, NDArray]:
        return self.source.parameters(scale=self.scale)

    def image_spectrograms(self, X, params, grouping: SourceGrouping) -> NDArray:
        powers = grouping.source_powers(params["W"], params["H"])  # (J, F, N)
        return ratio_masks(powers)[..., None] * X[None]
