"""What a spatial model is: the protocol, a base class, the registry, shared start-up.

A *spatial model* says how the sources reach the microphones. Bound to a mixture STFT
X (F, N, I), a source model and a :class:`~mnmf.grouping.SourceGrouping`, it is an
engine model (:class:`mnmf.engine.IterativeModel`): each step it computes the
statistics the source model needs (MU numerators/denominators or EM posterior powers),
hands them over, updates its own parameters and normalizes — moving the scale into the
source model through :meth:`~mnmf.sources.SourceModel.scale_templates`, never by writing
its arrays. It also knows how to turn parameters into source images and how to start
from given images (a peer's or another model's). See docs/design.md, §5.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from mnmf.grouping import SourceGrouping
from mnmf.registry import Registry
from mnmf.sources.base import SourceModel

#: Spatial models by name (``fit_mnmf(X, J, spatial="convolutive")``).
SPATIAL_MODELS: Registry[type] = Registry("spatial model", argument="spatial")


@runtime_checkable
class SpatialModel(Protocol):
    """The spatial side of a multichannel NMF.

    ``algorithm`` is the kind of step it takes (``"mu"`` or ``"em"``), which decides the
    protocol its source model must follow (:class:`~mnmf.sources.MUSourceModel` or
    :class:`~mnmf.sources.EMSourceModel`).
    """

    algorithm: str

    def bind(self, X: NDArray, source: SourceModel, grouping: SourceGrouping) -> None:
        """Attach the mixture STFT (F, N, I), the source model and the grouping; check shapes."""

    def start_from_images(self, images: NDArray) -> None:
        """Start values of the spatial parameters from source images (J, F, N, I)."""

    def initialize(self, rng: np.random.Generator) -> None:
        """Given values, else start values, else draws from ``rng``; then the source model."""

    def step(self) -> None:
        """One iteration: the source model's update from this model's statistics, then its own."""

    def cost(self) -> float:
        """The objective (data term plus the source model's penalty)."""

    def parameters(self) -> dict[str, NDArray]:
        """Every parameter in user units: the source model's and this model's."""

    def image_spectrograms(
        self, X: NDArray, params: dict[str, NDArray], grouping: SourceGrouping
    ) -> NDArray:
        """Source images (J, F, N, I) of the mixture STFT ``X`` under ``params``."""


class SpatialModelBase:
    """Shared plumbing: binding, copies, the current images.

    Subclasses set :attr:`algorithm` and implement the engine methods,
    :meth:`start_from_images` and :meth:`image_spectrograms`.
    """

    algorithm: str = "mu"
    X: NDArray
    source: SourceModel
    grouping: SourceGrouping

    def bind(self, X: NDArray, source: SourceModel, grouping: SourceGrouping) -> None:
        """Attach the data, the source model and the grouping (subclasses check their shapes)."""
        self.X = X
        self.n_freqs, self.n_frames, self.n_mics = X.shape
        self.source = source
        self.grouping = grouping
        self.n_sources = grouping.n_sources

    def images(self) -> NDArray:
        """Source images (J, F, N, I) at the current parameters (e.g. inside a callback)."""
        return self.image_spectrograms(self.X, self.parameters(), self.grouping)

    def _free_sources(self) -> NDArray[np.bool_]:
        """Sources whose templates may absorb scale: every one of their columns is free."""
        return self.grouping.sources_with_all(self.source.free)


def principal_filters(images: NDArray) -> NDArray[np.complex128]:
    """Unit-norm principal eigenvector of each image's spatial covariance, (F, I, J).

    ``images`` is (J, F, N, I). With unit-norm filters a source's variance keeps the
    power its images have over all microphones.
    """
    covariance = np.einsum("jfni,jfnk->fjik", images, images.conj()) / images.shape[2]
    _, vectors = np.linalg.eigh(covariance)  # ascending eigenvalues
    return np.ascontiguousarray(vectors[..., -1].transpose(0, 2, 1))
