"""What a source model is: the protocols a data or spatial model relies on, and the registry.

A *source model* describes the power spectrogram of the sources through templates
``W`` (F, K) and activations ``H`` (K, N) and updates them from statistics that a *data
model* (single-channel NMF) or a *spatial model* (multichannel) computes:

- :class:`MUSourceModel`: multiplicative updates from a numerator and a denominator for
  H and for W (for plain NMF ``Wᵀ(V̂^(β−2) ∘ V)`` / ``Wᵀ V̂^(β−1)`` and their ``·Hᵀ``
  twins; a spatial model hands over its own per-source versions);
- :class:`EMSourceModel`: EM M-steps from posterior component powers, one component at
  a time (SAGE, single channel) or one block of frequencies at a time (multichannel).

The spatial model never writes ``W``/``H`` itself: it moves the scale of its own
normalization into the templates through :meth:`SourceModel.scale_templates`. See
docs/design.md, §4.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from mnmf.divergence import BetaDivergence
from mnmf.registry import Registry

#: Source models by name (``fit_nmf(V, K, source_model="smooth", smoothness=10)``).
SOURCE_MODELS: Registry[type] = Registry("source model", argument="source_model")


@runtime_checkable
class SourceModel(Protocol):
    """The state and life cycle every source model has.

    W and H are held in the data model's *internal units* (data divided by an exact
    power of two near their mean power); :meth:`parameters` returns user units.
    """

    W: NDArray  # (F, K)
    H: NDArray  # (K, N)
    free: NDArray[np.bool_]  # (K,): columns of W that are updated (and may be rescaled)

    def bind(self, n_freqs: int, n_frames: int, *, n_components: int | None = None) -> None:
        """Check given arrays against the data's shape (F, N) and K; no randomness."""

    def check_compatible(
        self, *, divergence: BetaDivergence, algorithm: str, exponent: float | None
    ) -> None:
        """Refuse, with a ValueError, a data model whose statistics the updates cannot use.

        ``divergence`` is the data term's, ``algorithm`` "mu" or "em", ``exponent`` the MU
        exponent (None for EM).
        """

    def start_from(self, *, W: NDArray | None = None, H: NDArray | None = None) -> None:
        """Start values (user units) from a start strategy; given arrays still win."""

    def initialize(
        self, rng: np.random.Generator, *, mean_power: float, scale: float, dtype: np.dtype
    ) -> None:
        """Fill W and H: given values, else start values, else draws from ``rng``."""

    def penalty(self) -> float:
        """Extra cost terms of the model (0 for plain NMF), added to the data model's cost."""

    def normalize(self) -> None:
        """Remove the W/H scale ambiguity without changing the cost."""

    def scale_templates(self, factors: NDArray) -> None:
        """Multiply the rows of free columns of W by ``factors`` ((F, K) or (K,)).

        How a spatial model hands the scale of its own normalization to the source
        model; fixed columns are never touched.
        """

    def parameters(self, *, scale: float) -> dict[str, NDArray]:
        """W and H (and any other parameter) in the user's units, as copies."""


@runtime_checkable
class MUSourceModel(SourceModel, Protocol):
    """A source model updated by multiplicative (MM) updates."""

    #: True when a frame's H update needs only that frame's statistics, so a data model
    #: may update H block by block.
    frame_separable: bool

    def update_H_mu(
        self,
        numerator: NDArray,
        denominator: NDArray,
        exponent: float,
        *,
        frames: slice = ...,
    ) -> None:
        """Update H (on ``frames``) from (K, n) numerator and denominator."""

    def update_W_mu(self, numerator: NDArray, denominator: NDArray, exponent: float) -> None:
        """Update the free columns of W from (F, K) numerator and denominator."""


@runtime_checkable
class EMSourceModel(SourceModel, Protocol):
    """A source model updated by EM M-steps from posterior component powers u (≥ 0)."""

    def update_from_posterior(self, k: int, posterior_power: NDArray) -> None:
        """SAGE M-step of component ``k`` from its posterior power u_k (F, N)."""

    def em_block(self, frequencies: slice, posterior_power: NDArray) -> NDArray:
        """Blocked M-step on a block of frequencies, ``posterior_power`` (K, F_b, N).

        Updates that block's rows of W and returns its part of H's statistics (K, N);
        safe to call for disjoint blocks from parallel threads.
        """

    def em_end(self, statistics: NDArray) -> None:
        """Finish the blocked M-step from the sum of every block's statistics (K, N)."""
