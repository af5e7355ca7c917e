"""One entry point for every separation method: time-domain mixture in, images out.

``separate(mix, n_sources=J, method=...)`` takes a mixture (samples, I) and returns the
estimated image of every source at every microphone, (J, samples, I), on the mixture's
scale — whatever the method — so that :func:`mnmf.evaluate` can score any of them.
``separate_with_fit`` returns the same images together with the mixture's STFT, the
STFT settings and the fitted model (:class:`Separation`).

Methods (the registry :data:`METHODS`; ``n_components`` is always *per source*)
------------------------------------------------------------------------------
``"nmf"``
    Single-channel NMF of the channel-averaged power spectrogram (or of its mel or
    log-frequency bands), components grouped into J sources
    (:func:`mnmf.group_components`), the same Wiener masks applied to every channel (so
    the channels' sources stay aligned). Blind to space; a baseline for the
    multichannel models.
``"mnmf-mu"``
    Multichannel NMF with a multiplicative-update spatial model, by default the
    per-source spatial gains (:func:`mnmf.fit_mnmf`, Ozerov & Févotte 2010); J > I works.
``"mnmf-em"``
    Multichannel NMF with an EM spatial model, by default the convolutive mixing
    filters (100 iterations). Both MNMF methods start from a peer's solution by default
    (``init="auto"``: ILRMA if J ≤ I, FastMNMF2 if J > I; for
    instantaneous gains the level-difference clustering ``"panning"``) — the models
    are sensitive to their start. ``init="random"`` gives the models on their own,
    ``init="gains"`` starts the EM from a gains-MU fit, and ``"mnmf-ilrma"``,
    ``"fastmnmf"``, ``"panning"`` are starts from mnmf's own code (no peer).
``"mnmf-fastmnmf"``
    Native FastMNMF (:class:`mnmf.spatial.FastMNMFModel`, Sekiguchi et al. 2019/2020):
    ``variant="fastmnmf2"`` (default), ``"fastmnmf1"``, or ``"ilrma"`` (G fixed to the
    identity, J = I); any source model (``source_model=``, ``dictionaries=``), 100
    iterations from its own start.
``"auxiva"``, ``"ilrma"``, ``"fastmnmf2"``
    The pyroomacoustics baselines (Ono 2011; Kitamura et al. 2016; Sekiguchi et al.
    2020), projected back onto every microphone so that their outputs are images.
``"oracle-irm"``
    Ideal ratio masks computed from the true images (``references=``): an upper bound
    for single-mask methods.
``"mixture"``
    The mixture itself for every source: the do-nothing lower bound.

A method of your own: a function ``(data: MethodInput, *, options...) -> MethodOutput``
registered with ``@METHODS.register("name")`` (and ``@forwards(...)`` if it passes
``**options`` on, ``@requires(...)`` if it needs something of the input). Every call's
options are checked once, by :func:`method_options`.

Degenerate audio, at one boundary
---------------------------------
``separate`` checks the mixture (and ``references``) once, before any method runs
(:func:`mnmf._validation.check_signal`): ragged channels, NaN/Inf, integer PCM (convert
to floats in [-1, 1] first: its scale is ambiguous), bool/complex/object/string
dtypes, a signal shorter than the STFT window, a (channels, samples) array, and
references not shaped (J, samples, I) are ValueErrors naming the argument. Where the
answer is defined it is returned: an all-zero mixture gives all-zero images
(J, samples, I), whatever the method, without running it; a mixture whose peak is
outside [2**-32, 2**32] is scaled by a power of two (exactly) before the method sees
it and the images scaled back, so that no method meets powers that under- or
overflow. Silent channels, silent sources and leading or trailing silence separate
like any other input. Last, no estimate is ever NaN or infinite: a method whose
numerics break down raises :class:`SeparationError` (a FloatingPointError) naming it
and what to try.

See docs/design.md, §9.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mnmf._validation import (
    SeparationError,
    as_generator,
    check_choice,
    check_images,
    check_signal,
    finite_real,
    positive_int,
)
from mnmf.algorithms.multichannel import fit_mnmf, fit_mnmf_options
from mnmf.algorithms.nmf import fit_nmf, fit_nmf_options
from mnmf.engine import FitResult
from mnmf.features import FILTERBANKS, Stft, filterbank
from mnmf.grouping import SourceGrouping
from mnmf.peers import PEER_SETTINGS, PEERS, check_sources, peer_images, peer_options
from mnmf.registry import Registry, check_options, named_options
from mnmf.separation import (
    MASK_KINDS,
    binary_masks,
    group_components,
    ratio_masks,
    wiener_masks,
)
from mnmf.sources.dictionary import Dictionary

T = TypeVar("T")


@dataclass(frozen=True)
class MethodInput:
    """What every separation method receives.

    Attributes
    ----------
    mix : array, shape (samples, I)
        The mixture, float64, checked (finite, not silent, at least one window long)
        and scaled by :attr:`Separation.scale`.
    X : complex array, shape (F, N, I)
        Its STFT with :attr:`stft`.
    stft : Stft
    n_sources : int
    rng : numpy.random.Generator
    references : array (J, samples, I) or None
        The true images, for oracle methods.
    fs : int or None
        The sample rate, for methods that need it.
    """

    mix: NDArray[np.float64]
    X: NDArray[np.complexfloating]
    stft: Stft
    n_sources: int
    rng: np.random.Generator
    references: NDArray[np.float64] | None = None
    fs: int | None = None


@dataclass(frozen=True)
class MethodOutput:
    """A method's estimates: image STFTs (J, F, N, I), or time-domain images directly."""

    spectra: NDArray[np.complexfloating] | None = None
    images: NDArray[np.float64] | None = None
    fit: FitResult | None = None


@dataclass(frozen=True)
class Separation:
    """What :func:`separate_with_fit` returns.

    Attributes
    ----------
    images : array, shape (J, samples, I)
        The estimates (what :func:`separate` returns).
    X : complex array, shape (F, N, I)
        The mixture's STFT the method worked on.
    stft : Stft
        Its settings (``fit.images(X, length=...)`` resynthesizes with the same ones).
    fit : FitResult or None
        The fitted model (parameters, cost history, timings) of the NMF methods; None
        for the others, and for a silent mixture (no model is fitted to zeros).
    scale : float
        What the mixture was multiplied by before the method saw it: 1, or a power of
        two when its peak was outside [2**-32, 2**32]. ``X`` and ``fit`` describe the
        scaled mixture (``images == fit.images(X, length=...) / scale``).
    """

    images: NDArray[np.float64]
    X: NDArray[np.complexfloating]
    stft: Stft
    fit: FitResult | None
    scale: float = 1.0


#: Separation methods by name.
METHODS: Registry[Callable[..., MethodOutput]] = Registry("method", argument="method")

#: A mixture whose peak is outside [1 / SAFE_PEAK, SAFE_PEAK] is brought to [0.5, 1) by
#: a power of two before any method sees it: its powers would under- or overflow (a
#: peak of 1e-100 gave NaN in FastMNMF2 and MNMF-EM, 1e-160 in every NMF method).
SAFE_PEAK = 2.0**32


def separate(
    mix: ArrayLike,
    *,
    n_sources: int,
    method: str,
    stft: Stft | None = None,
    fs: int | None = None,
    rng: np.random.Generator | int | None = None,
    references: ArrayLike | None = None,
    **options: Any,
) -> NDArray[np.float64]:
    """Separate a multichannel mixture into the images of its sources.

    Parameters
    ----------
    mix : array, shape (samples, I) or (samples,)
        The mixture (a 1-D signal is one microphone).
    n_sources : int
        J, the number of sources to estimate.
    method : str
        A name of :data:`METHODS` (see the module documentation).
    stft : Stft, optional
        Analysis and synthesis settings (default ``Stft()``: 2048 samples, hop 512, sine).
    fs : int, optional
        Sample rate; needed by ``"nmf"`` on mel or log-frequency bands.
    rng : numpy.random.Generator, int or None
        Randomness of the method's initialization; the same seed gives the same output.
        pyroomacoustics draws from NumPy's global generator: it is seeded from ``rng``
        for the call and restored afterwards, so the caller's global state is untouched.
    references : array, shape (J, samples, I), optional
        True images; required by ``"oracle-irm"``.
    **options
        The method's options, checked against what it takes (an unknown one is a
        ValueError naming it): for ``"nmf"`` ``n_components`` (per source, default 4),
        ``group_by`` ("spectra" or "activations"), ``frequency_scale`` ("linear",
        "mel", "log") with ``bands`` (a dict of :meth:`mnmf.Filterbank.mel` /
        :meth:`~mnmf.Filterbank.log` options, e.g. ``{"n_bands": 64}``), and the
        keywords of :func:`mnmf.fit_nmf`
        (``beta``, ``algorithm``, ``source_model``, ``smoothness``, ``max_iter``, ...);
        for ``"mnmf-mu"`` and ``"mnmf-em"`` the keywords of :func:`mnmf.fit_mnmf`
        (``n_components``, ``source_model``, ``spatial``, ``init``, ``mixing``,
        ``noise``, ...); for the pyroomacoustics methods their own keywords (``n_iter``,
        ``model`` for AuxIVA, ``n_components`` for ILRMA/FastMNMF2); for
        ``"oracle-irm"`` ``mask_power`` (2: ratio of powers; 1: of magnitudes). ``"nmf"``
        and ``"oracle-irm"`` take ``mask``: "soft" (Wiener / ratio masks, the default)
        or "binary" (1 for the loudest source of each bin: the ideal binary mask).

    Returns
    -------
    images : array, shape (J, samples, I)
        Float64 estimates on the mixture's scale, in no particular source order (the
        evaluation solves the permutation); all zeros for an all-zero mixture. Always
        finite.

    Raises
    ------
    ValueError
        A bad argument, named: ``mix`` ragged, not float (integer PCM: convert to
        floats in [-1, 1] first), with NaN/Inf, not (samples,) or (samples, I) — more
        channels than samples, or more than 64, reads as transposed —, or shorter than
        the STFT window; ``references`` not (J, samples, I) or not finite; an unknown
        method or option; a method's precondition (``references`` for the oracle, at
        most I sources for AuxIVA and ILRMA).
    SeparationError
        The method's numerics broke down (NaN/Inf estimates, a singular matrix); a
        FloatingPointError. Estimates are never silently zeroed.
    """
    return separate_with_fit(
        mix,
        n_sources=n_sources,
        method=method,
        stft=stft,
        fs=fs,
        rng=rng,
        references=references,
        **options,
    ).images


def separate_with_fit(
    mix: ArrayLike,
    *,
    n_sources: int,
    method: str,
    stft: Stft | None = None,
    fs: int | None = None,
    rng: np.random.Generator | int | None = None,
    references: ArrayLike | None = None,
    **options: Any,
) -> Separation:
    """:func:`separate`, returning the images with the STFT, its settings and the fit.

    The same checks and the same result as :func:`separate`, in a :class:`Separation`
    (``fit`` is None for a silent mixture: nothing is fitted).
    """
    n_sources = positive_int(n_sources, name="n_sources")
    function = METHODS.get(method)
    if fs is not None:
        fs = positive_int(fs, name="fs")
    settings = Stft() if stft is None else stft
    if not isinstance(settings, Stft):
        raise ValueError(f"stft must be an mnmf.Stft, got {type(settings).__name__}")
    signal = check_signal(mix, name="mix", window=settings.n_fft, fs=fs)  # (samples, I)
    truth = None
    if references is not None:
        truth = check_images(references, name="references", shape=(n_sources, *signal.shape))
    check_options(options, method_options(method, options), owner=f"method {method!r}")
    peak = float(np.max(np.abs(signal)))
    scale = 1.0
    if peak > 0 and not 1 / SAFE_PEAK <= peak <= SAFE_PEAK:
        scale = float(np.ldexp(1.0, -np.frexp(peak)[1]))  # exact: a power of two
        signal = signal * scale
        truth = None if truth is None else truth * scale
    X = settings.analyze(signal)  # (F, N, I)
    data = MethodInput(
        mix=signal,
        X=X,
        stft=settings,
        n_sources=n_sources,
        rng=as_generator(rng),
        references=truth,
        fs=fs,
    )
    requirement = getattr(function, "requirement", None)
    if requirement is not None:
        requirement(data)
    if peak == 0:  # silence: every source's image is silent, whatever the method
        silent = np.zeros((n_sources, *signal.shape))
        return Separation(images=silent, X=X, stft=settings, fit=None)
    try:
        output = function(data, **options)
    except (np.linalg.LinAlgError, SeparationError) as error:
        raise SeparationError(
            f"method {method!r} failed: {error}. {_what_to_try(method, data)}"
        ) from error
    if output.images is not None:
        images = output.images
    else:
        length = signal.shape[0]
        images = np.stack([settings.synthesize(S, length=length) for S in output.spectra])
    finite = np.isfinite(images)
    if not finite.all():
        raise SeparationError(
            f"method {method!r} returned {images.size - np.count_nonzero(finite)} NaN or "
            f"infinite value(s) among its {images.size} estimates. {_what_to_try(method, data)}"
        )
    if scale != 1.0:
        images = images / scale
    return Separation(images=images, X=X, stft=settings, fit=output.fit, scale=scale)


def _what_to_try(method: str, data: MethodInput) -> str:
    """The advice of a :class:`SeparationError`."""
    n_frames = data.X.shape[1]
    advice = [
        f"The mixture has {data.mix.shape[0]} samples ({n_frames} STFT frames) of "
        f"{data.mix.shape[1]} channel(s). Try"
    ]
    if method in ("mnmf-mu", "mnmf-em"):
        advice.append("init='random' or init='panning' (init='auto' may run a peer),")
    if method in PEERS:
        advice.append("fewer iterations (n_iter=...),")
    advice.append(
        "a longer mixture or a shorter STFT window (stft=Stft(n_fft=...)), or another "
        "method (e.g. 'mnmf-fastmnmf')"
    )
    return " ".join(advice)


def method_options(method: str, given: Mapping[str, Any] | None = None) -> set[str]:
    """Every option ``method`` takes, given the options chosen so far (``given``).

    A method's own keywords, plus what it forwards: :func:`mnmf.fit_nmf`'s keywords for
    ``"nmf"``, :func:`mnmf.fit_mnmf`'s for the MNMF methods (each with the named models'
    options), the pyroomacoustics function's for the peers.
    """
    function = METHODS.get(method)
    names = named_options(function, skip=("data",))
    forwarded = getattr(function, "forwarded_options", None)
    if forwarded is not None:
        names |= forwarded(dict(given or {}))
    return names


def requires(check: Callable[[MethodInput], None]) -> Callable[[T], T]:
    """Declare what a method needs of its input (a ValueError otherwise).

    ``check(data)`` runs before the method, and also where the method itself is skipped
    (a silent mixture): whether a call is valid never depends on the audio.
    """

    def decorator(function: T) -> T:
        function.requirement = check  # type: ignore[attr-defined]
        return function

    return decorator


def forwards(options_of: Callable[[dict[str, Any]], set[str]]) -> Callable[[T], T]:
    """Declare the options a method passes on (its ``**options``), given the chosen ones."""

    def decorator(function: T) -> T:
        function.forwarded_options = options_of  # type: ignore[attr-defined]
        return function

    return decorator


# ---------------------------------------------------------------------- methods
@METHODS.register("mixture")
def _mixture(data: MethodInput) -> MethodOutput:
    return MethodOutput(images=np.repeat(data.mix[None], data.n_sources, axis=0))


@METHODS.register("nmf")
@forwards(lambda given: fit_nmf_options(given.get("source_model", "isnmf")))
def _nmf(
    data: MethodInput,
    *,
    n_components: int = 4,
    group_by: str = "spectra",
    frequency_scale: str = "linear",
    bands: dict[str, Any] | None = None,
    dictionaries: Sequence[Any] | None = None,
    mask: str = "soft",
    **fit_options: Any,
) -> MethodOutput:
    check_choice(mask, name="mask", choices=MASK_KINDS)
    settings = {"beta": 0.0, "max_iter": 200, "tol": 1e-5} | fit_options
    counts = [positive_int(n_components, name="n_components")] * data.n_sources
    if dictionaries is not None:
        if frequency_scale != "linear":
            raise ValueError("dictionaries hold STFT templates: use frequency_scale='linear'")
        supervised, counts = supervised_sources(dictionaries, data, n_components)
        settings |= _merge_source_options(settings, supervised)
    total = sum(counts)
    power = np.mean(np.abs(data.X) ** 2, axis=2)  # (F, N)
    bank = None
    if frequency_scale == "linear":
        if bands:
            raise ValueError('bands= sets the filterbank of frequency_scale="mel" or "log"')
    else:
        FILTERBANKS.get(frequency_scale)  # the valid scales, before asking for fs
        if data.fs is None:
            raise ValueError(f"frequency_scale={frequency_scale!r} needs fs= (the sample rate)")
        bank = filterbank(frequency_scale, fs=data.fs, stft=data.stft, **(bands or {}))
        power = bank.apply(power)
    fit = fit_nmf(power, total, rng=data.rng, stft=data.stft, filterbank=bank, **settings)
    if dictionaries is not None:  # the components' sources are known
        labels = SourceGrouping.from_counts(data.n_sources, counts).labels
    else:
        labels = group_components(fit.W, fit.H, data.n_sources, features=group_by)
    masks = wiener_masks(fit.W, fit.H, groups=labels)  # (J, F or bands, N)
    if bank is not None:
        masks = np.moveaxis(bank.to_stft(np.moveaxis(masks, 1, 0)), 0, 1)
    if mask == "binary":  # the loudest source of each STFT bin
        masks = binary_masks(masks)
    return MethodOutput(spectra=masks[..., None] * data.X[None], fit=fit)


def _mnmf_forwarded(default_spatial: str) -> Callable[[dict[str, Any]], set[str]]:
    return lambda given: fit_mnmf_options(
        given.get("source_model", "isnmf"), given.get("spatial", default_spatial)
    )


def _mnmf(data: MethodInput, algorithm: str, options: dict[str, Any]) -> MethodOutput:
    dictionaries = options.pop("dictionaries", None)
    if dictionaries is not None:
        supervised, counts = supervised_sources(dictionaries, data, options.get("n_components", 4))
        options = options | _merge_source_options(options, supervised) | {"n_components": counts}
    fit = fit_mnmf(
        data.X, data.n_sources, algorithm=algorithm, stft=data.stft, rng=data.rng, **options
    )
    return MethodOutput(spectra=fit.image_spectrograms(data.X), fit=fit)


def supervised_sources(
    dictionaries: Sequence[Any], data: MethodInput, n_components: int | Sequence[int]
) -> tuple[dict[str, Any], list[int]]:
    """Source-model options (fixed ``W``) and per-source counts for ``dictionaries``.

    ``dictionaries`` has one entry per source: a :class:`mnmf.sources.Dictionary`, the
    path of one (``.npz``), an (F, K_j) array of templates, or None for a source left
    free (``n_components`` components, learned blind). Free sources come after the
    supervised ones (the given templates are the first columns of W).
    """
    if len(dictionaries) != data.n_sources:
        raise ValueError(
            f"dictionaries needs one entry per source ({data.n_sources}), got {len(dictionaries)}"
        )
    free = positive_int(n_components, name="n_components") if isinstance(n_components, int) else 4
    templates, counts = [], []
    for j, entry in enumerate(dictionaries):
        if entry is None:
            counts.append(free)
            continue
        if len(templates) < j:  # a free source came before this one
            raise ValueError(
                "dictionaries: list the supervised sources before the free ones (None)"
            )
        if isinstance(entry, str | os.PathLike):
            entry = Dictionary.load(entry)
        if isinstance(entry, Dictionary):
            if entry.stft != data.stft:
                raise ValueError(
                    f"dictionaries[{j}] ({entry.name or 'unnamed'}) was learned with {entry.stft}, "
                    f"the separation uses {data.stft}"
                )
            if data.fs is not None and entry.fs != data.fs:
                raise ValueError(
                    f"dictionaries[{j}] was learned at fs={entry.fs} Hz, the mixture's is {data.fs}"
                )
            W = entry.W
        else:
            W = np.asarray(entry, dtype=np.float64)
            if W.ndim != 2 or W.shape[0] != data.stft.n_freqs:
                raise ValueError(
                    f"dictionaries[{j}] must be (F, K_j) with F = {data.stft.n_freqs}, "
                    f"got {W.shape}"
                )
        templates.append(W)
        counts.append(W.shape[1])
    options = {"W": np.concatenate(templates, axis=1), "fix_W": True} if templates else {}
    return options, counts


def _merge_source_options(given: dict[str, Any], supervised: dict[str, Any]) -> dict[str, Any]:
    """The dictionaries' W/fix_W, refusing a W or fix_W given as well."""
    clash = sorted(set(given) & set(supervised))
    if clash:
        raise ValueError(f"dictionaries set {clash}: do not give them as well")
    if supervised and not isinstance(given.get("source_model", "isnmf"), str):
        raise ValueError(
            "dictionaries go with a named source model; give W and fix_W to your instance"
        )
    return supervised


@METHODS.register("mnmf-mu")
@forwards(_mnmf_forwarded("gains"))
def _mnmf_mu(
    data: MethodInput,
    *,
    init: Any = "auto",
    spatial: Any = "gains",
    dictionaries: Sequence[Any] | None = None,
    **options: Any,
) -> MethodOutput:
    options = options | {"init": init, "spatial": spatial, "dictionaries": dictionaries}
    return _mnmf(data, "mu", options)


@METHODS.register("mnmf-em")
@forwards(_mnmf_forwarded("convolutive"))
def _mnmf_em(
    data: MethodInput,
    *,
    init: Any = "auto",
    spatial: Any = "convolutive",
    max_iter: int = 100,
    dictionaries: Sequence[Any] | None = None,
    **options: Any,
) -> MethodOutput:
    options = options | {"init": init, "spatial": spatial, "max_iter": max_iter}
    return _mnmf(data, "em", options | {"dictionaries": dictionaries})


@METHODS.register("mnmf-fastmnmf")
@forwards(_mnmf_forwarded("fastmnmf"))
def _mnmf_fastmnmf(
    data: MethodInput,
    *,
    init: Any = "random",
    spatial: Any = "fastmnmf",
    max_iter: int = 100,
    dictionaries: Sequence[Any] | None = None,
    **options: Any,
) -> MethodOutput:
    options = options | {"init": init, "spatial": spatial, "max_iter": max_iter}
    return _mnmf(data, "mu", options | {"dictionaries": dictionaries})


def _needs_references(data: MethodInput) -> None:
    if data.references is None:
        raise ValueError("method 'oracle-irm' needs references= (the true images, (J, samples, I))")


@METHODS.register("oracle-irm")
@requires(_needs_references)
def _oracle_irm(data: MethodInput, *, mask_power: float = 2.0, mask: str = "soft") -> MethodOutput:
    _needs_references(data)
    mask_power = finite_real(mask_power, name="mask_power", minimum=0.0)
    check_choice(mask, name="mask", choices=MASK_KINDS)
    magnitudes = np.abs(np.stack([data.stft.analyze(image) for image in data.references]))
    if mask == "binary":  # the ideal binary mask: the loudest image of each bin
        return MethodOutput(spectra=binary_masks(magnitudes) * data.X[None])
    return MethodOutput(spectra=ratio_masks(magnitudes**mask_power) * data.X[None])


def _register_peer(name: str) -> None:
    @forwards(lambda given: peer_options(name))
    @requires(lambda data: check_sources(name, data.n_sources, data.mix.shape[1]))
    def peer(data: MethodInput, **options: Any) -> MethodOutput:
        n_mics = data.X.shape[2]
        active = int(np.count_nonzero(np.any(data.X != 0, axis=(0, 1))))
        if not PEER_SETTINGS[name].underdetermined and active < data.n_sources:
            warnings.warn(
                f"{n_mics - active} of the {n_mics} channels of mix are silent: method "
                f"{name!r} separates {active} of the {data.n_sources} sources from the "
                f"{active} active one(s); the other estimates are zero",
                UserWarning,
                stacklevel=2,
            )
        return MethodOutput(
            spectra=peer_images(data.X, data.n_sources, name, rng=data.rng, options=options)
        )

    peer.__name__ = f"_{name}"
    METHODS.register(name)(peer)


for _name in PEERS:
    _register_peer(_name)
