"""Start-up strategies of the multichannel models.

Both multichannel models have poor local optima (per-frequency permutations), so where
they start matters. A strategy gives the models *start values* before the fit —
:meth:`~mnmf.sources.SourceModel.start_from` for W/H and
:meth:`~mnmf.spatial.SpatialModel.start_from_images` for the spatial parameters —
and values the user gave to the models themselves still win:

- :class:`RandomStart`: nothing; each model draws its parameters from the fit's ``rng``;
- :class:`PeerStart`: a pyroomacoustics method's images (ILRMA, AuxIVA, FastMNMF2);
  W and H from plain IS-NMF fits of each source's image power, seeded with the user's
  complete dictionary (its fixed columns kept fixed);
- :class:`ModelStart`: the images and factors of another multichannel fit (e.g. a
  gains-MU run before the convolutive EM) of a copy of the user's own source model,
  with all its options (smoothness, fixed dictionaries, …);
- ``"auto"``: the peer that fits the problem (:func:`auto_init`).

Strings name them at the edge: :func:`resolve_start` (``init="ilrma"``,
``init_iter=50``).

See docs/design.md, §7.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from mnmf._validation import positive_int
from mnmf.grouping import SourceGrouping
from mnmf.peers import PEERS, peer_images
from mnmf.registry import Registry
from mnmf.sources.base import SourceModel
from mnmf.spatial.base import SpatialModel


@runtime_checkable
class Start(Protocol):
    """A start-up strategy: give the (unbound) models start values for the mixture X."""

    def prepare(
        self,
        X: NDArray,
        grouping: SourceGrouping,
        source: SourceModel,
        spatial: SpatialModel,
        *,
        rng: np.random.Generator,
    ) -> None:
        """Call ``source.start_from`` and ``spatial.start_from_images`` (or nothing)."""


@dataclass(frozen=True)
class RandomStart:
    """Every parameter the user did not give is drawn from the fit's ``rng``."""

    def prepare(self, X, grouping, source, spatial, *, rng) -> None:
        """Nothing to prepare."""


@dataclass(frozen=True)
class PeerStart:
    """Start from a pyroomacoustics method's separated images.

    The spatial model starts from the images (its own rule, e.g. the principal
    direction of each image); each source's W_j, H_j from an IS-NMF (``n_iter``
    iterations) of its image power Σ_i |image_ij|². A complete given dictionary (K
    columns) or H seeds those per-source fits; a partial one is left to the model.

    Parameters
    ----------
    method : {"ilrma", "auxiva", "fastmnmf2"}
    n_iter : int
        Iterations of the peer and of the per-source NMFs.
    """

    method: str
    n_iter: int = 50

    def __post_init__(self) -> None:
        if self.method not in PEERS:
            raise ValueError(f"method must be one of {list(PEERS)}, got {self.method!r}")
        positive_int(self.n_iter, name="n_iter")

    def prepare(self, X, grouping, source, spatial, *, rng) -> None:
        """Peer images, then per-source IS-NMF templates and the spatial start."""
        images = peer_images(
            X, grouping.n_sources, self.method, rng=rng, options={"n_iter": self.n_iter}
        )
        W, H = factors_from_images(images, grouping, source, n_iter=self.n_iter, rng=rng)
        source.start_from(W=W, H=H)
        spatial.start_from_images(images)


@dataclass(frozen=True)
class ModelStart:
    """Start from another multichannel fit (by default a gains-MU run).

    The start fits a copy of the user's source model — every option kept — inside
    ``spatial`` for ``max_iter`` iterations from a random start; its W and H start the
    source model and its images start the spatial model.

    Parameters
    ----------
    spatial : str or SpatialModel
        The model of the start fit (``"gains"`` or an instance, e.g.
        ``GainsModel(mixing="instantaneous")``).
    max_iter : int
    """

    spatial: str | SpatialModel = "gains"
    max_iter: int = 50

    def __post_init__(self) -> None:
        from mnmf.spatial.base import SPATIAL_MODELS

        if isinstance(self.spatial, str):
            SPATIAL_MODELS.get(self.spatial)  # a clear error now, not at the fit
        positive_int(self.max_iter, name="max_iter")

    def prepare(self, X, grouping, source, spatial, *, rng) -> None:
        """Fit the start model, then hand its factors and images over."""
        from mnmf.algorithms.multichannel import fit_grouped
        from mnmf.registry import build
        from mnmf.spatial.base import SPATIAL_MODELS

        start_model = build(SPATIAL_MODELS, self.spatial, {})
        if type(start_model) is type(spatial):
            raise ValueError(
                f"init={self.spatial!r} starts a model from a fit of another one; "
                f"{type(spatial).__name__} itself takes 'random', 'auto' or a peer"
            )
        fit = fit_grouped(
            X, grouping, copy.copy(source), start_model, start=RandomStart(),
            max_iter=self.max_iter, rng=rng,
        )  # fmt: skip
        source.start_from(W=fit.W, H=fit.H)
        spatial.start_from_images(fit.image_spectrograms(X))


def factors_from_images(
    images: NDArray,
    grouping: SourceGrouping,
    source: SourceModel,
    *,
    n_iter: int,
    rng: np.random.Generator,
) -> tuple[NDArray, NDArray]:
    """W (F, K) and H (K, N) from an IS-NMF of each source's image power Σ_i |image|².

    A complete given W (K columns) starts the per-source fits, its fixed columns kept
    fixed, and a complete given H starts them (read from the source model's
    ``given_W`` / ``given_H``, which :class:`~mnmf.sources.NMFFactors` has); partial
    ones are left to the model itself.
    """
    from mnmf.algorithms.nmf import fit_nmf

    K = grouping.n_components
    n_freqs, n_frames = images.shape[1:3]
    given_W = getattr(source, "given_W", None)
    given_H = getattr(source, "given_H", None)
    if given_W is not None and given_W.shape[1] != K:
        given_W = None
    if given_H is not None and given_H.shape[0] != K:
        given_H = None
    fixed = np.zeros(K, dtype=bool)
    if given_W is not None:
        probe = copy.copy(source)  # which columns the model keeps fixed
        probe.bind(n_freqs, n_frames, n_components=K)
        fixed = ~probe.free
    templates, activations = [], []
    for j, members in enumerate(grouping.members):
        power = np.sum(np.abs(images[j]) ** 2, axis=-1)  # (F, N)
        fit = fit_nmf(
            power,
            members.size,
            beta=0.0,
            max_iter=n_iter,
            W=None if given_W is None else given_W[:, members],
            H=None if given_H is None else given_H[members],
            fix_W=fixed[members],
            rng=rng,
        )
        templates.append(fit.W)
        activations.append(fit.H)
    W = np.empty((n_freqs, K), dtype=templates[0].dtype)
    H = np.empty((K, n_frames), dtype=activations[0].dtype)
    for members, W_j, H_j in zip(grouping.members, templates, activations, strict=True):
        W[:, members] = W_j
        H[members] = H_j
    return W, H


def auto_init(n_sources: int, n_mics: int) -> str:
    """The start ``init="auto"`` picks: ILRMA if J = I, AuxIVA if J < I, FastMNMF2 if
    J > I, and random with one microphone (no spatial cue to start from).

    On the benchmark scenes (``benchmarks/RESULTS.md``) these starts moved the EM from
    0.8 to 11 dB ΔSDR on liverec, where random and gains-MU starts fell into
    per-frequency permutations.
    """
    if n_mics == 1:
        return "random"
    if n_sources == n_mics:
        return "ilrma"
    return "auxiva" if n_sources < n_mics else "fastmnmf2"


#: Start strategies by name; each factory takes (iterations of the start, J, I).
STARTS: Registry = Registry("start", argument="init")
STARTS.register("random")(lambda n_iter, n_sources, n_mics: RandomStart())
STARTS.register("auto")(
    lambda n_iter, n_sources, n_mics: STARTS.get(auto_init(n_sources, n_mics))(
        n_iter, n_sources, n_mics
    )
)
STARTS.register("gains")(lambda n_iter, n_sources, n_mics: ModelStart("gains", max_iter=n_iter))
for _peer in PEERS:
    STARTS.register(_peer)(
        lambda n_iter, n_sources, n_mics, method=_peer: PeerStart(method, n_iter=n_iter)
    )


#: Iterations of a named start's runs when ``init_iter`` is not given.
DEFAULT_INIT_ITER = 50


def resolve_start(
    init: str | Start, *, init_iter: int | None, n_sources: int, n_mics: int
) -> Start:
    """The strategy named ``init`` (``"auto"`` resolved for J and I), or ``init`` itself.

    ``init_iter`` (default :data:`DEFAULT_INIT_ITER`) sets a named start's iterations; a
    strategy instance carries its own, so it is refused with one.
    """
    if not isinstance(init, str):
        if isinstance(init, type) or not isinstance(init, Start):
            raise ValueError(
                f"init must be a name or a start strategy instance with prepare(), got {init!r}"
            )
        if init_iter is not None:
            raise ValueError(
                f"init_iter sets the iterations of a named start; {type(init).__name__} "
                "carries its own"
            )
        return init
    factory = STARTS.get(init)
    iterations = DEFAULT_INIT_ITER if init_iter is None else init_iter
    return factory(positive_int(iterations, name="init_iter"), n_sources, n_mics)
