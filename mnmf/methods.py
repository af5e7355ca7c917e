"""One entry point for every separation method: time-domain mixture in, images out.

``separate(mix, n_sources=J, method=...)`` takes a mixture (samples, I) and returns the
estimated image of every source at every microphone, (J, samples, I), on the mixture's
scale — whatever the method — so that :func:`mnmf.evaluate` can score any of them.

Methods
-------
``"nmf"``
    The core's single-channel IS-NMF: one NMF of the channel-averaged power
    spectrogram, components grouped into J sources (:func:`mnmf.group_components`),
    the same Wiener masks applied to every channel (so the channels' sources stay
    aligned). Blind to space; a baseline for the multichannel models.
``"mnmf-mu"``
    Multichannel NMF with per-source spatial gains by multiplicative updates
    (:func:`mnmf.fit_mnmf`, Ozerov & Févotte 2010); works for J > I.
``"mnmf-em"``
    Multichannel NMF with convolutive mixing filters by EM (100 iterations).
    Both MNMF methods start from a peer's solution by default (``init="auto"``:
    ILRMA if J = I, AuxIVA if J < I, FastMNMF2 if J > I; see
    :func:`mnmf.multichannel.auto_init`) — the models are sensitive to their start.
    ``init="random"`` or ``"gains"`` give the models on their own.
``"auxiva"``, ``"ilrma"``, ``"fastmnmf2"``
    The pyroomacoustics baselines (Ono 2011; Kitamura et al. 2016; Sekiguchi et al.
    2020), projected back onto every microphone so that their outputs are images.
``"oracle-irm"``
    Ideal ratio masks computed from the true images (``references=``): an upper bound
    for single-mask methods.
``"mixture"``
    The mixture itself for every source: the do-nothing lower bound.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mnmf._validation import (
    as_float_array,
    as_generator,
    check_choice,
    check_finite,
    finite_real,
    positive_int,
)
from mnmf.engine import FitResult
from mnmf.multichannel import fit_mnmf
from mnmf.nmf import fit_nmf
from mnmf.peers import peer_images
from mnmf.separation import group_components, wiener_masks
from mnmf.stft import istft, stft

METHODS = ("nmf", "mnmf-mu", "mnmf-em", "auxiva", "ilrma", "fastmnmf2", "oracle-irm", "mixture")


def separate(
    mix: ArrayLike,
    *,
    n_sources: int,
    method: str,
    fs: int | None = None,
    rng: np.random.Generator | int | None = None,
    references: ArrayLike | None = None,
    n_fft: int = 2048,
    hop: int | None = None,
    return_fit: bool = False,
    **options: Any,
) -> NDArray[np.float64] | tuple[NDArray[np.float64], FitResult | None]:
    """Separate a multichannel mixture into the images of its sources.

    Parameters
    ----------
    mix : array, shape (samples, I) or (samples,)
        The mixture (a 1-D signal is one microphone).
    n_sources : int
        J, the number of sources to estimate.
    method : str
        One of :data:`METHODS` (see the module documentation).
    fs : int, optional
        Sample rate; recorded for methods that need it (none of the current ones does).
    rng : numpy.random.Generator, int or None
        Randomness of the method's initialization; the same seed gives the same output.
        pyroomacoustics draws from NumPy's global generator: it is seeded from ``rng``
        for the call and restored afterwards, so the caller's global state is untouched.
    references : array, shape (J, samples, I), optional
        True images; required by ``"oracle-irm"``.
    n_fft, hop : int
        STFT frame and shift (default hop ``n_fft // 4``).
    return_fit : bool
        Also return the model fit (:class:`mnmf.engine.FitResult`: parameters, cost
        history, timings) of the NMF methods, None for the others.
    **options
        Passed to the method: for ``"nmf"`` ``n_components`` (default 4 per source),
        ``features`` (grouping) and the keywords of :func:`mnmf.fit_nmf` (``beta``,
        ``algorithm``, ``source_model``, ``smoothness``, ``max_iter``, ``tol``,
        ``callbacks``, ...); for ``"mnmf-mu"`` the
        keywords of :func:`mnmf.fit_mnmf` (``n_components``, ``mixing``, ``max_iter``,
        ...) and for ``"mnmf-em"`` too (``noise``, ``init``, ``init_iter``, ...); for the
        pyroomacoustics methods ``n_iter`` and their own keywords (e.g. ``model`` for
        AuxIVA, ``n_components`` for ILRMA/FastMNMF2); for ``"oracle-irm"``
        ``mask_power`` (2: ratio of powers, the oracle Wiener mask; 1: of magnitudes).

    Returns
    -------
    images : array, shape (J, samples, I)
        Float64 estimates on the mixture's scale, in no particular source order (the
        evaluation solves the permutation).
    fit : FitResult or None
        With ``return_fit=True`` only.
    """
    signal = as_float_array(mix, name="mix", ndim=(1, 2)).astype(np.float64)
    check_finite(signal, name="mix")
    if signal.ndim == 1:
        signal = signal[:, None]
    n_sources = positive_int(n_sources, name="n_sources")
    check_choice(method, name="method", choices=METHODS)
    if fs is not None:
        positive_int(fs, name="fs")
    hop = n_fft // 4 if hop is None else hop
    generator = as_generator(rng)
    length = signal.shape[0]

    fit: FitResult | None = None
    if method == "mixture":
        _no_options(method, options)
        images = np.repeat(signal[None], n_sources, axis=0)
        return (images, None) if return_fit else images
    X = stft(signal, n_fft=n_fft, hop=hop)  # (F, N, I)
    if method == "nmf":
        spectra, fit = _nmf_images(X, n_sources, generator, options)
    elif method in ("mnmf-mu", "mnmf-em"):
        defaults: dict[str, Any] = {"init": "auto"}
        if method == "mnmf-em":
            defaults |= {"spatial": "convolutive", "algorithm": "em", "max_iter": 100}
        options = defaults | options
        try:
            fit = fit_mnmf(X, n_sources, rng=generator, **options)
        except TypeError as error:  # an unknown keyword in options
            raise ValueError(
                f"method {method!r} rejected its options {sorted(options)}: {error}"
            ) from None
        spectra = fit.image_spectrograms(X)
    elif method == "oracle-irm":
        spectra = _oracle_images(X, n_sources, references, signal.shape, n_fft, hop, options)
    else:
        spectra = peer_images(X, n_sources, method, rng=generator, options=options)
    images = np.stack([istft(S, n_fft=n_fft, hop=hop, length=length) for S in spectra])
    return (images, fit) if return_fit else images


def _no_options(method: str, options: dict[str, Any]) -> None:
    if options:
        raise ValueError(f"method {method!r} takes no options, got {sorted(options)}")


def _nmf_images(
    X: NDArray, n_sources: int, rng: np.random.Generator, options: dict[str, Any]
) -> tuple[NDArray, FitResult]:
    settings = {"n_components": 4 * n_sources, "beta": 0.0, "max_iter": 200, "tol": 1e-5}
    features = options.pop("features", "spectra")
    valid = set(inspect.signature(fit_nmf).parameters) - {"V", "rng"}
    unknown = set(options) - valid
    if unknown:
        raise ValueError(
            f"method 'nmf' got unknown option(s) {sorted(unknown)}; valid: "
            f"{[*sorted(valid), 'features']}"
        )
    settings |= options
    power = np.mean(np.abs(X) ** 2, axis=2)
    fit = fit_nmf(power, rng=rng, **settings)
    labels = group_components(fit.W, fit.H, n_sources, features=features)
    masks = wiener_masks(fit.W, fit.H, groups=labels)  # (J, F, N)
    return masks[..., None] * X[None], fit


def _oracle_images(
    X: NDArray,
    n_sources: int,
    references: ArrayLike | None,
    mix_shape: tuple[int, int],
    n_fft: int,
    hop: int,
    options: dict[str, Any],
) -> NDArray:
    if references is None:
        raise ValueError("method 'oracle-irm' needs references= (the true images, (J, samples, I))")
    truth = as_float_array(references, name="references", ndim=3).astype(np.float64)
    if truth.shape != (n_sources, *mix_shape):
        raise ValueError(
            f"references must have shape (J, samples, I) = ({n_sources}, {mix_shape[0]}, "
            f"{mix_shape[1]}), got {truth.shape}"
        )
    mask_power = finite_real(options.pop("mask_power", 2.0), name="mask_power", minimum=0.0)
    _no_options("oracle-irm", options)
    magnitudes = np.abs(np.stack([stft(image, n_fft=n_fft, hop=hop) for image in truth]))
    weights = magnitudes**mask_power  # (J, F, N, I)
    total = weights.sum(axis=0)
    silent = total <= 0
    masks = np.where(silent, 1.0 / n_sources, weights / np.where(silent, 1.0, total))
    return masks * X[None]
