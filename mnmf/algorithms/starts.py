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
from mnmf.divergence import FLOOR_RELATIVE
from mnmf.grouping import SourceGrouping
from mnmf.peers import PEERS, peer_images
from mnmf.registry import Registry
from mnmf.sources.base import SourceModel
from mnmf.spatial.base import SpatialModel

#: Lowest power a start gives a source in any bin, relative to the mixture's mean power.
START_POWER_FLOOR = 1e-6

#: Level directions closer than this (1 − cosine) are one direction to the panning start.
SAME_DIRECTION = 1e-6


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
class PanningStart:
    """A blind start from level differences between microphones (DUET/DEMIX-style).

    In a panned (instantaneous) mixture each source reaches the microphones with fixed
    power gains, so the direction of |x_fn| ∈ R^I (its level vector, normalized) points
    at the dominant source's gains in every time-frequency bin where one source
    dominates. The directions, weighted by the bins' power, are clustered into J groups
    by weighted spherical k-means (``restarts`` seeded restarts, the lowest spread
    kept); each bin goes to its nearest direction (a binary mask); the masked mixture
    gives each source's images, from which — as for a peer's images — the spatial
    model starts (the gains model: q_ij = the squared direction) and each source's W_j,
    H_j come from an IS-NMF (``n_iter`` iterations) of its masked power. With one
    microphone there is no direction: the start is random. No pyroomacoustics, no
    peer: mnmf's own code only.

    Parameters
    ----------
    n_iter : int
        Iterations of the per-source IS-NMFs.
    restarts : int
        k-means restarts.
    """

    n_iter: int = 50
    restarts: int = 5

    def __post_init__(self) -> None:
        positive_int(self.n_iter, name="n_iter")
        positive_int(self.restarts, name="restarts")

    def prepare(self, X, grouping, source, spatial, *, rng) -> None:
        """Cluster the level directions, mask, then start both models from the masks."""
        if X.shape[2] == 1:
            return
        images = panning_images(X, grouping.n_sources, rng=rng, restarts=self.restarts)
        W, H = factors_from_images(images, grouping, source, n_iter=self.n_iter, rng=rng)
        source.start_from(W=W, H=H)
        spatial.start_from_images(images)


def panning_images(
    X: NDArray, n_sources: int, *, rng: np.random.Generator, restarts: int = 5
) -> NDArray:
    """Images (J, F, N, I) of a panned mixture by clustering level directions.

    Every bin's |x_fn| / ‖x_fn‖ is assigned to the nearest of J directions found by
    power-weighted spherical k-means; silent bins go to the first source.
    """
    magnitude = np.abs(X).reshape(-1, X.shape[2])  # (F·N, I)
    power = np.sum(magnitude**2, axis=1)
    norm = np.sqrt(power)
    directions = magnitude / np.where(norm > 0, norm, 1.0)[:, None]
    active = power > FLOOR_RELATIVE * max(float(power.mean()), np.finfo(float).tiny)
    best_centers, best_spread = None, np.inf
    for _ in range(restarts):
        centers, spread = _weighted_spherical_kmeans(
            directions[active], power[active], n_sources, rng=rng
        )
        if spread < best_spread:
            best_centers, best_spread = centers, spread
    nearest = np.argmax(directions @ best_centers.T, axis=1).reshape(X.shape[:2])
    masks = (nearest[None] == np.arange(n_sources)[:, None, None]).astype(float)  # (J, F, N)
    # Directions that coincide (identical gains) carry nothing to split their sources
    # by: their bins are shared equally, left to the source models to separate.
    alike = best_centers @ best_centers.T > 1.0 - SAME_DIRECTION
    masks = (alike / alike.sum(axis=1, keepdims=True)) @ masks.reshape(n_sources, -1)
    return masks.reshape(n_sources, *X.shape[:2])[..., None] * X[None]


def _weighted_spherical_kmeans(
    points: NDArray, weights: NDArray, k: int, *, rng: np.random.Generator, n_iter: int = 50
) -> tuple[NDArray, float]:
    """Unit-norm centres of k clusters of unit vectors (cosine similarity), k-means++ start.

    Returns the centres (k, I) and the weighted spread Σ w (1 − cos).
    """
    probabilities = weights / weights.sum()
    centers = [points[rng.choice(len(points), p=probabilities)]]
    for _ in range(1, k):
        distance = 1.0 - np.max(points @ np.array(centers).T, axis=1)
        score = weights * np.maximum(distance, 0.0)
        score = score / score.sum() if score.sum() > 0 else probabilities
        centers.append(points[rng.choice(len(points), p=score)])
    centers = np.array(centers)
    for _ in range(n_iter):
        labels = np.argmax(points @ centers.T, axis=1)
        updated = np.stack(
            [
                (weights[labels == j, None] * points[labels == j]).sum(axis=0)
                if np.any(labels == j)
                else centers[j]
                for j in range(k)
            ]
        )
        updated /= np.maximum(np.linalg.norm(updated, axis=1, keepdims=True), np.finfo(float).tiny)
        if np.allclose(updated, centers):
            break
        centers = updated
    similarity = np.max(points @ centers.T, axis=1)
    return centers, float(np.sum(weights * (1.0 - similarity)))


@dataclass(frozen=True)
class ModelStart:
    """Start from another multichannel fit (by default a gains-MU run).

    By default the start fits a copy of the user's source model — every option kept —
    inside ``spatial`` for ``max_iter`` iterations from a random start; its W and H
    start the source model (rescaled to image power where the start model's λ lives
    elsewhere, see ``FastMNMFModel.image_power_scales``) and its images start the
    spatial model. With ``n_components`` the start is a separation of its own, as a
    peer's is: a plain IS-NMF source model with that many components per source,
    whose images start the spatial model and, through per-source IS-NMF fits of their
    power, W and H (:func:`factors_from_images`).

    Parameters
    ----------
    spatial : str or SpatialModel
        The model of the start fit (``"gains"`` or an instance, e.g.
        ``GainsModel(mixing="instantaneous")``, ``FastMNMFModel(variant="ilrma")``).
    max_iter : int
    start : Start, optional
        Where the start fit itself starts (random by default): strategies chain, e.g.
        ``ModelStart(GainsModel(mixing="instantaneous"), start=PanningStart())``.
    n_components : int, optional
        Components per source of an IS-NMF start fit independent of the user's source
        model (``init="mnmf-ilrma"``: ILRMA's 2, as pyroomacoustics').
    """

    spatial: str | SpatialModel = "gains"
    max_iter: int = 50
    start: Start | None = None
    n_components: int | None = None

    def __post_init__(self) -> None:
        from mnmf.spatial.base import SPATIAL_MODELS

        if isinstance(self.spatial, str):
            SPATIAL_MODELS.get(self.spatial)  # a clear error now, not at the fit
        positive_int(self.max_iter, name="max_iter")
        if self.n_components is not None:
            positive_int(self.n_components, name="n_components")

    def prepare(self, X, grouping, source, spatial, *, rng) -> None:
        """Fit the start model, then hand its factors and images over."""
        from mnmf.algorithms.multichannel import fit_grouped
        from mnmf.registry import build
        from mnmf.spatial.base import SPATIAL_MODELS

        start_model = build(SPATIAL_MODELS, self.spatial, {})
        if type(start_model) is type(spatial):
            named = self.spatial if isinstance(self.spatial, str) else type(self.spatial).__name__
            raise ValueError(
                f"init={named!r} starts a model from a fit of another one; "
                f"{type(spatial).__name__} itself takes 'random', 'auto', a peer or a "
                f"start from another kind of model"
            )
        if self.n_components is not None:  # a separation of its own, as a peer's
            from mnmf.sources.nmf import NMFSource

            own = SourceGrouping.from_counts(
                grouping.n_sources, [self.n_components] * grouping.n_sources
            )
            fit = fit_grouped(
                X, own, NMFSource(), start_model, start=self.start or RandomStart(),
                max_iter=self.max_iter, rng=rng,
            )  # fmt: skip
            images = fit.image_spectrograms(X)
            W, H = factors_from_images(images, grouping, source, n_iter=self.max_iter, rng=rng)
            source.start_from(W=W, H=H)
            spatial.start_from_images(images)
            return
        fit = fit_grouped(
            X, grouping, copy.copy(source), start_model, start=self.start or RandomStart(),
            max_iter=self.max_iter, rng=rng,
        )  # fmt: skip
        W, H = fit.W, fit.H
        to_image_power = getattr(start_model, "image_power_scales", None)
        if to_image_power is not None:  # λ on another footing (FastMNMF's diagonalized channels)
            scales = grouping.per_component(to_image_power(fit.params)).T  # (F, K)
            W, H = _to_image_power(
                W, H, scales, _free_columns(source, *X.shape[:2], grouping.n_components)
            )
        source.start_from(W=W, H=H)
        spatial.start_from_images(fit.image_spectrograms(X))


def _free_columns(source: SourceModel, n_freqs: int, n_frames: int, n_components: int) -> NDArray:
    """Which of the K columns of W the source model updates (a bound probe's ``free``)."""
    probe = copy.copy(source)
    probe.bind(n_freqs, n_frames, n_components=n_components)
    free = np.asarray(getattr(probe, "free", ()), dtype=bool)
    return free if free.shape == (n_components,) else np.ones(n_components, dtype=bool)


def _to_image_power(
    W: NDArray, H: NDArray, scales: NDArray, free: NDArray
) -> tuple[NDArray, NDArray]:
    """Factors whose λ is the image power: free templates' rows times c_jf (exact); a
    fixed template keeps its shape, so its activations take c_jf averaged over the
    template's own frequency weights. W (F, K), H (K, N), scales c per component (F, K)."""
    W = np.where(free[None, :], W * scales, W)
    weights = np.sum(W * scales, axis=0) / np.maximum(np.sum(W, axis=0), np.finfo(float).tiny)
    H = np.where(free[:, None], H, H * weights[:, None])
    return W, H


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
        fixed = ~_free_columns(source, n_freqs, n_frames, K)
    # A start never gives a source zero power: multiplicative updates keep zeros, so a
    # source started silent (an empty cluster, a peer's null output) could never return.
    floor = START_POWER_FLOOR * float(np.mean(np.sum(np.abs(images) ** 2, axis=(0, -1))))
    templates, activations = [], []
    for j, members in enumerate(grouping.members):
        power = np.maximum(np.sum(np.abs(images[j]) ** 2, axis=-1), floor)  # (F, N)
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
    """The start ``init="auto"`` picks: ILRMA if J ≤ I (over-determined when J < I: I
    outputs, the J strongest kept), FastMNMF2 if J > I, and random with one microphone
    (no spatial cue to start from).

    On the benchmark scenes (``benchmarks/RESULTS.md``, issue 13) the EM reached 10.2 dB
    ΔSDR on liverec from this start against 3.0 from a random one (per-frequency
    permutations). With 3 mics and 2 talkers the EM from over-determined ILRMA reached
    5.9 dB, from AuxIVA (OverIVA, the earlier choice) 2.1.
    """
    if n_mics == 1:
        return "random"
    return "ilrma" if n_sources <= n_mics else "fastmnmf2"


#: Components per source of the native ILRMA start (pyroomacoustics' ILRMA default).
ILRMA_COMPONENTS = 2


def _native_ilrma() -> SpatialModel:
    from mnmf.spatial.fastmnmf import FastMNMFModel

    return FastMNMFModel(variant="ilrma")


#: Start strategies by name; each factory takes (iterations of the start, J, I).
STARTS: Registry = Registry("start", argument="init")
STARTS.register("random")(lambda n_iter, n_sources, n_mics: RandomStart())
STARTS.register("auto")(
    lambda n_iter, n_sources, n_mics: STARTS.get(auto_init(n_sources, n_mics))(
        n_iter, n_sources, n_mics
    )
)
STARTS.register("gains")(lambda n_iter, n_sources, n_mics: ModelStart("gains", max_iter=n_iter))
STARTS.register("fastmnmf")(
    lambda n_iter, n_sources, n_mics: ModelStart("fastmnmf", max_iter=n_iter)
)


@STARTS.register("mnmf-ilrma")
def _mnmf_ilrma_start(n_iter: int, n_sources: int, n_mics: int) -> ModelStart:
    if n_sources != n_mics:
        raise ValueError(
            f"init='mnmf-ilrma' needs as many sources as microphones (J = I = {n_mics}), "
            f"got n_sources={n_sources}; init='fastmnmf' takes any J, the peer 'ilrma' "
            f"J ≤ I (over-determined), 'fastmnmf2' any J"
        )
    return ModelStart(_native_ilrma(), max_iter=n_iter, n_components=ILRMA_COMPONENTS)


STARTS.register("panning")(lambda n_iter, n_sources, n_mics: PanningStart(n_iter=n_iter))
for _peer in PEERS:
    STARTS.register(_peer)(
        lambda n_iter, n_sources, n_mics, method=_peer: PeerStart(method, n_iter=n_iter)
    )


#: Iterations of a named start's runs when ``init_iter`` is not given.
DEFAULT_INIT_ITER = 50


def resolve_start(
    init: str | Start,
    *,
    init_iter: int | None,
    n_sources: int,
    n_mics: int,
    spatial: SpatialModel | None = None,
) -> Start:
    """The strategy named ``init``, or ``init`` itself.

    ``"auto"`` is the spatial model's own blind start when it names one
    (``spatial.preferred_start``: the panning start for instantaneous gains), else the
    peer that fits J and I (:func:`auto_init`). ``init_iter`` (default
    :data:`DEFAULT_INIT_ITER`) sets a named start's iterations; a strategy instance
    carries its own, so it is refused with one.
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
    if init == "auto" and spatial is not None:
        preferred = getattr(spatial, "preferred_start", lambda n_sources, n_mics: None)
        init = preferred(n_sources, n_mics) or init
    factory = STARTS.get(init)
    iterations = DEFAULT_INIT_ITER if init_iter is None else init_iter
    return factory(positive_int(iterations, name="init_iter"), n_sources, n_mics)
