"""Multichannel NMF: ``fit_mnmf`` and its result.

``fit_mnmf`` resolves its two models — a source model (:mod:`mnmf.sources`) and a
spatial model (:mod:`mnmf.spatial`), each an instance or a registered name with its own
options —, lets a start strategy (:mod:`mnmf.algorithms.starts`) give them start values,
binds them to the mixture and hands the spatial model to the engine.

See docs/design.md, §7.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mnmf._validation import as_generator, check_choice
from mnmf.algorithms.nmf import NMFResult
from mnmf.algorithms.starts import Start, resolve_start
from mnmf.engine import Callback, run
from mnmf.features import Stft
from mnmf.grouping import SourceGrouping
from mnmf.registry import accepted_options, build, check_options, named_options
from mnmf.sources.base import SOURCE_MODELS, SourceModel
from mnmf.spatial.base import SPATIAL_MODELS, SpatialModel


@dataclass(frozen=True)
class MNMFResult(NMFResult):
    """:class:`~mnmf.algorithms.nmf.NMFResult` of a multichannel NMF.

    Attributes
    ----------
    W : array (F, K)
    H : array (K, N)
    grouping : SourceGrouping
        Which components make each source (``.labels``, ``.n_sources``).
    spatial_model : SpatialModel
        The (unfitted) spatial model: it turns ``params`` into images.
    source_model : SourceModel
        The (unfitted) source model.
    stft : Stft or None
        The settings X was analysed with; :meth:`images` needs them.

    The spatial model's parameters are attributes too, by name: ``.Q`` (I, J, F) or
    (I, J) for the gains model, ``.A`` (F, I, J) and ``.noise`` (F, I) for the
    convolutive one (an AttributeError names the ones a model has).
    """

    grouping: SourceGrouping | None = None
    spatial_model: SpatialModel | None = None

    @property
    def labels(self) -> NDArray:
        """Source of every component, (K,)."""
        return self.grouping.labels

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: the spatial model's parameters by name.
        if name.startswith("_") or "params" not in self.__dict__:
            raise AttributeError(name)
        if name in self.params:
            return self.params[name]
        model = type(self.__dict__.get("spatial_model")).__name__
        raise AttributeError(
            f"this {model} fit has no parameter {name!r}; its parameters are {sorted(self.params)}"
        )

    def image_spectrograms(self, X: ArrayLike) -> NDArray[np.complexfloating]:
        """STFTs of the source images, shape (J, F, N, I), from the mixture's STFT X."""
        spectra = np.asarray(X)
        expected = (self.W.shape[0], self.H.shape[1])
        if spectra.ndim != 3 or spectra.shape[:2] != expected:
            raise ValueError(
                f"X must be the fitted STFT of shape (F, N, I) with (F, N) = {expected}, "
                f"got {spectra.shape}"
            )
        return self.spatial_model.image_spectrograms(spectra, self.params, self.grouping)

    def images(self, X: ArrayLike, *, length: int | None = None) -> NDArray[np.floating]:
        """Time-domain source images (J, samples, I), resynthesized with :attr:`stft`.

        ``length`` (the mixture's) restores the exact number of samples.
        """
        if self.stft is None:
            raise ValueError(
                "this fit does not know its STFT settings: pass stft=mnmf.Stft(...) to "
                "fit_mnmf, or resynthesize image_spectrograms(X) yourself"
            )
        return np.stack(
            [self.stft.synthesize(S, length=length) for S in self.image_spectrograms(X)]
        )


def fit_mnmf(
    X: ArrayLike,
    n_sources: int,
    *,
    n_components: int | Sequence[int] = 4,
    source_model: str | SourceModel = "isnmf",
    spatial: str | SpatialModel = "gains",
    algorithm: str | None = None,
    init: str | Start = "random",
    init_iter: int | None = None,
    stft: Stft | None = None,
    max_iter: int = 200,
    tol: float = 1e-5,
    check_every: int = 10,
    rng: np.random.Generator | int | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool = False,
    **options: object,
) -> MNMFResult:
    """Multichannel NMF of a mixture's STFT (Ozerov & Févotte 2010).

    Parameters
    ----------
    X : complex array, shape (F, N, I)
        STFT of the mixture (:meth:`mnmf.Stft.analyze` of a (samples, I) signal). I ≥ 1.
    n_sources : int
        J ≥ 1; J > I (under-determined) is fine.
    n_components : int or sequence of int
        K_j, components per source (an int gives the same to every source).
    source_model : str or SourceModel
        The spectral model of the sources: ``"isnmf"`` (default), ``"smooth"`` (smooth
        IS-NMF, Févotte 2011) or an instance (``mnmf.SmoothNMFSource(smoothness=10)``,
        ``mnmf.NMFSource(W=dictionary, fix_W=True)``, or your own model).
    spatial : str or SpatialModel
        ``"gains"``: per-source spatial gains Q on power spectrograms (criterion C2, MU).
        ``"convolutive"``: complex mixing filters A (F, I, J) and diagonal noise, the
        full Gaussian model (criterion C1, EM). Or an instance
        (``mnmf.spatial.GainsModel(mixing="instantaneous")``, or your own model).
    algorithm : {"mu", "em"}, optional
        Checked against the spatial model's own (gains: MU, convolutive: EM).
    init : str or Start
        Start (both models are sensitive to it: per-frequency permutations of a poor
        start are local optima). ``"random"``: seeded random parameters. ``"gains"``:
        a gains-MU fit of ``init_iter`` iterations (for another spatial model).
        ``"panning"``: clustering of level differences between microphones (panned
        mixtures; mnmf's own code). ``"fastmnmf"``: a native FastMNMF2 fit. A peer's
        name (``"ilrma"``, ``"auxiva"``: J ≤ I; ``"fastmnmf2"``: any J): that
        pyroomacoustics method for ``init_iter`` iterations. ``"auto"``: the spatial model's own
        blind start if it has one (instantaneous gains: ``"panning"``), else the peer
        that fits the problem (:func:`mnmf.algorithms.starts.auto_init`). Or a strategy of
        :mod:`mnmf.algorithms.starts`, with options of its own, e.g.
        ``ModelStart(GainsModel(mixing="instantaneous"), max_iter=30)``. Parameters
        given to the models still win.
    init_iter : int, optional
        Iterations of a named start's runs (default 50); a ``Start`` instance carries
        its own.
    stft : Stft, optional
        The settings X was analysed with; the result carries them so that
        ``result.images(X)`` resynthesizes exactly as it should.
    max_iter, tol, check_every, rng, callbacks, progress
        See :func:`mnmf.engine.run`.
    **options
        Options of the *named* models, each going to the one that takes it. Source
        model: ``W``, ``H``, ``fix_W`` (given or fixed templates / activations for the
        K = Σ K_j components, ordered source by source), ``normalize``, ``smoothness``
        (smooth). Gains model: ``mixing`` ("convolutive" or "instantaneous"),
        ``exponent`` ("mm" or "heuristic"), ``Q`` ((I, J, F) or (I, J)), ``fix_Q``.
        Convolutive model: ``A`` ((F, I, J) complex), ``noise`` ("estimate" or
        "anneal"), ``noise_start`` (initial noise, fraction of the mean power),
        ``noise_end`` and ``anneal_iter`` (annealing only), ``block_frequencies``.
        Every spatial model: ``n_threads`` (threads sharing its blocks; default every
        CPU). complex64 X is fitted in float32, complex128 in float64. An option that
        neither model takes is a ValueError naming it; one for an instance belongs in
        its constructor.

    Returns
    -------
    MNMFResult
        ``.W``, ``.H``, the spatial parameters (``.Q`` or ``.A``), ``.grouping``, the cost
        history, ``.images(X)``.
    """
    spectra = _check_stft(X)
    grouping = SourceGrouping.from_counts(n_sources, n_components)
    source, spatial_model = resolve_models(source_model, spatial, options)
    if algorithm is not None and algorithm != spatial_model.algorithm:
        check_choice(algorithm, name="algorithm", choices=("mu", "em"))
        raise ValueError(
            f"algorithm={algorithm!r} does not fit the spatial model "
            f"{type(spatial_model).__name__}, which takes {spatial_model.algorithm!r} steps "
            f"(in separate(): method 'mnmf-{spatial_model.algorithm}')"
        )
    generator = as_generator(rng)
    start = resolve_start(
        init,
        init_iter=init_iter,
        n_sources=grouping.n_sources,
        n_mics=spectra.shape[2],
        spatial=spatial_model,
    )
    return fit_grouped(
        spectra,
        grouping,
        source,
        spatial_model,
        start=start,
        stft=stft,
        max_iter=max_iter,
        tol=tol,
        check_every=check_every,
        rng=generator,
        callbacks=callbacks,
        progress=progress,
    )


def fit_grouped(
    X: NDArray,
    grouping: SourceGrouping,
    source: SourceModel,
    spatial: SpatialModel,
    *,
    start: Start,
    stft: Stft | None = None,
    max_iter: int = 200,
    tol: float = 1e-5,
    check_every: int = 10,
    rng: np.random.Generator,
    callbacks: Sequence[Callback] = (),
    progress: bool = False,
) -> MNMFResult:
    """:func:`fit_mnmf` on resolved pieces: a checked STFT, a grouping, two unbound models.

    The models are copied before anything changes them; the result keeps the unfitted
    descriptions.
    """
    fitted_source, fitted_spatial = copy.copy(source), copy.copy(spatial)
    start.prepare(X, grouping, fitted_source, fitted_spatial, rng=rng)
    fitted_spatial.bind(X, fitted_source, grouping)
    source_name = SOURCE_MODELS.name_of(source) or type(source).__name__
    spatial_name = SPATIAL_MODELS.name_of(spatial) or type(spatial).__name__
    fit = run(
        fitted_spatial,
        max_iter=max_iter,
        tol=tol,
        check_every=check_every,
        rng=rng,
        callbacks=callbacks,
        progress=progress,
        description=f"MNMF {spatial_name}/{spatial.algorithm} {source_name}",
    )
    return MNMFResult(
        **vars(fit), grouping=grouping, spatial_model=spatial, source_model=source, stft=stft
    )


def resolve_models(
    source_model: str | SourceModel,
    spatial: str | SpatialModel,
    options: Mapping[str, object],
) -> tuple[SourceModel, SpatialModel]:
    """Both models from names or instances; each option goes to the named model taking it.

    An option that no named model takes is a ValueError naming it; one that an
    *instance* would take belongs in that instance's constructor (a ValueError says so).
    A registered model whose options cannot be listed (``**kwargs`` all the way up)
    takes whatever the other model does not.
    """
    specs = {"source_model": (SOURCE_MODELS, source_model), "spatial": (SPATIAL_MODELS, spatial)}
    takers: dict[str, set[str] | None] = {
        role: accepted_options(registry.get(spec), skip=("n_components",))
        for role, (registry, spec) in specs.items()
        if isinstance(spec, str)
    }
    named_takers = set().union(*(accepted for accepted in takers.values() if accepted))
    for role, (_, spec) in specs.items():
        if not isinstance(spec, str) and not isinstance(spec, type):
            own = accepted_options(type(spec)) or named_options(type(spec))
            claimed = sorted((set(options) & own) - named_takers)
            if claimed:
                raise ValueError(
                    f"{role} is an instance of {type(spec).__name__}: its options {claimed} "
                    "belong in its constructor"
                )
    routed: dict[str, dict[str, object]] = {"source_model": {}, "spatial": {}}
    open_roles = [role for role, accepted in takers.items() if accepted is None]
    for name, value in options.items():
        roles = [role for role, accepted in takers.items() if accepted and name in accepted]
        if len(roles) > 1:
            raise ValueError(f"option {name!r} is taken by both models; pass instances instead")
        target = roles or open_roles
        if target:
            routed[target[0]][name] = value
    if not open_roles:
        described = [
            f"the {registry.kind} {spec!r}" if isinstance(spec, str) else f"a {type(spec).__name__}"
            for registry, spec in specs.values()
        ]
        check_options(
            options, named_takers, owner=f"fit_mnmf (with {described[0]} and {described[1]})"
        )
    return (
        build(SOURCE_MODELS, source_model, routed["source_model"], protocol=SourceModel),
        build(SPATIAL_MODELS, spatial, routed["spatial"], protocol=SpatialModel),
    )


def fit_mnmf_options(
    source_model: str | SourceModel = "isnmf", spatial: str | SpatialModel = "gains"
) -> set[str]:
    """Every keyword :func:`fit_mnmf` takes with these models (for callers that check).

    ``X``, ``n_sources``, ``rng``, ``stft`` and ``algorithm`` are left out: callers
    supply them.
    """
    names = named_options(fit_mnmf, skip=("X", "n_sources", "rng", "stft", "algorithm"))
    for registry, spec in ((SOURCE_MODELS, source_model), (SPATIAL_MODELS, spatial)):
        if isinstance(spec, str):
            names |= accepted_options(registry.get(spec), skip=("n_components",)) or set()
    return names


def _check_stft(X: ArrayLike) -> NDArray:
    spectra = np.asarray(X)
    if not np.iscomplexobj(spectra) or spectra.ndim != 3:
        raise ValueError(
            f"X must be a complex STFT of shape (F, N, I), got {spectra.dtype} {spectra.shape}"
        )
    if not np.all(np.isfinite(spectra)):
        raise ValueError("X contains NaN or infinite values")
    return spectra
