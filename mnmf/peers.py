"""The pyroomacoustics BSS baselines, run on an STFT and returned as images.

Used by :func:`mnmf.separate` (methods ``"auxiva"``, ``"ilrma"``, ``"fastmnmf2"``) and by
:func:`mnmf.fit_mnmf` to start the multichannel models from a peer's solution
(``init="ilrma"`` …). References: AuxIVA (Ono 2011), ILRMA (Kitamura et al. 2016),
FastMNMF2 (Sekiguchi et al. 2020).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mnmf._validation import SeparationError
from mnmf.registry import accepted_options, check_options


@dataclass(frozen=True)
class Peer:
    """How one pyroomacoustics method is run.

    Attributes
    ----------
    fixed : dict
        Arguments set here, never options.
    defaults : dict
        Options with the value used unless the caller gives one.
    images : bool
        The method returns every source's image at every microphone itself (FastMNMF2's
        own multichannel Wiener filter, ``mic_index="all"``); otherwise its outputs are
        projected back onto every microphone here.
    square : bool
        The method separates exactly as many outputs as microphones: with J < I it runs
        with I outputs and the J strongest (after projection back) are kept — the usual
        over-determined practice.
    underdetermined : bool
        It handles J > I.
    """

    fixed: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    images: bool = False
    square: bool = False
    underdetermined: bool = False


#: How each peer runs. AuxIVA handles J ≤ I itself (OverIVA, Scheibler & Ono 2019);
#: ILRMA needs J = I. 100 iterations for all three: their pyroomacoustics defaults
#: (20-30) stop before they converge on 10 s mixtures (benchmarks/RESULTS.md).
PEER_SETTINGS = {
    "auxiva": Peer(fixed={"proj_back": False}, defaults={"n_iter": 100}),
    "ilrma": Peer(fixed={"proj_back": False}, defaults={"n_iter": 100}, square=True),
    "fastmnmf2": Peer(
        fixed={"mic_index": "all"}, defaults={"n_iter": 100}, images=True, underdetermined=True
    ),
}
PEERS = tuple(PEER_SETTINGS)


@contextmanager
def seeded_global_numpy(rng: np.random.Generator) -> Iterator[None]:
    """Seed NumPy's legacy global generator from ``rng`` for a block, then restore it."""
    # pyroomacoustics draws its initializations from the legacy global generator.
    saved = np.random.get_state()  # noqa: NPY002
    np.random.seed(int(rng.integers(2**32)))  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(saved)  # noqa: NPY002


def peer_options(method: str) -> set[str]:
    """The options of a peer: its pyroomacoustics function's keywords, less those set here.

    ``X``, ``n_src``, ``proj_back`` (projection back is done here, on every microphone)
    and ``return_filters`` (it would change what the function returns) are not options.
    """
    import pyroomacoustics as pra

    if method not in PEERS:
        raise ValueError(f"method must be one of {list(PEERS)}, got {method!r}")
    skip = ("X", "n_src", "return_filters", *PEER_SETTINGS[method].fixed)
    return accepted_options(getattr(pra.bss, method), skip=skip) or set()


def check_sources(method: str, n_sources: int, n_mics: int) -> None:
    """Refuse a peer that cannot separate ``n_sources`` from ``n_mics`` microphones."""
    if method not in PEERS:
        raise ValueError(f"method must be one of {list(PEERS)}, got {method!r}")
    if not PEER_SETTINGS[method].underdetermined and n_sources > n_mics:
        raise ValueError(
            f"method {method!r} separates at most as many sources as microphones "
            f"(I={n_mics}); got n_sources={n_sources}"
        )


def peer_images(
    X: NDArray[np.complexfloating],
    n_sources: int,
    method: str,
    *,
    rng: np.random.Generator,
    options: dict[str, Any] | None = None,
) -> NDArray[np.complexfloating]:
    """Separate with a pyroomacoustics baseline and project back onto every microphone.

    Parameters
    ----------
    X : complex array, shape (F, N, I)
        STFT of the mixture.
    n_sources : int
        J. AuxIVA and ILRMA need J ≤ I (ILRMA then runs I outputs and keeps the J
        strongest); FastMNMF2 takes any J.
    method : {"auxiva", "ilrma", "fastmnmf2"}
    rng : numpy.random.Generator
        Seeds the legacy global generator pyroomacoustics draws from, for this call
        only (the global state is restored afterwards).
    options : dict, optional
        Keywords of the pyroomacoustics function (``n_iter`` — 100 by default —,
        ``n_components``, ...), checked against its signature (an unknown one is a
        ValueError naming it).

    Returns
    -------
    complex array, shape (J, F, N, I)
        The image of every source at every microphone; they add up to the mixture for
        AuxIVA/ILRMA with J = I (projection back, Murata et al. 2001).

    Raises
    ------
    SeparationError
        pyroomacoustics hit a singular matrix or returned NaN/Inf (e.g. ILRMA on a
        handful of frames, or two identical channels).

    Notes
    -----
    A silent microphone (an all-zero channel of ``X``) makes every spatial covariance
    singular, and pyroomacoustics has no floor for it. Its images are zero (it received
    nothing), so the method runs on the other channels only; AuxIVA and ILRMA then
    separate at most as many sources as there are active channels, and the remaining
    estimates are zero. With every channel silent, every image is zero.
    """
    import pyroomacoustics as pra

    options = dict(options or {})
    n_mics = X.shape[2]
    check_sources(method, n_sources, n_mics)
    peer = PEER_SETTINGS[method]
    check_options(options, peer_options(method), owner=f"method {method!r}")
    active = np.flatnonzero(np.any(X != 0, axis=(0, 1)))
    if active.size < n_mics:  # silent microphones: see the docstring
        images = np.zeros((n_sources, *X.shape), dtype=np.result_type(X.dtype, np.complex64))
        separable = n_sources if peer.underdetermined else min(n_sources, active.size)
        if active.size:
            images[:separable][..., active] = peer_images(
                X[..., active], separable, method, rng=rng, options=options
            )
        return images
    function = getattr(pra.bss, method)
    outputs = n_mics if peer.square else n_sources
    arguments = peer.defaults | options | {"n_src": outputs} | peer.fixed
    frames_first = np.ascontiguousarray(X.transpose(1, 0, 2))  # pyroomacoustics: (N, F, I)
    with seeded_global_numpy(rng), np.errstate(all="ignore"):
        try:
            separated = function(frames_first, **arguments)
        except np.linalg.LinAlgError as error:
            raise SeparationError(
                f"pyroomacoustics.bss.{method} hit a singular matrix on {X.shape[1]} STFT "
                f"frames of {n_mics} channels (identical or proportional channels, or too "
                f"few frames for it?)"
            ) from error
    if not np.all(np.isfinite(separated)):
        n_bad = int(separated.size - np.count_nonzero(np.isfinite(separated)))
        raise SeparationError(
            f"pyroomacoustics.bss.{method} returned {n_bad} NaN or infinite value(s) on "
            f"{X.shape[1]} STFT frames of {n_mics} channels (too few frames for it, or "
            f"nearly dependent channels?)"
        )
    if peer.images:  # (I, N, F, J): the model's own images
        return np.ascontiguousarray(separated.transpose(3, 2, 1, 0))
    # (N, F, J) outputs. Projection back: the least-squares scale of each output on each
    # microphone turns outputs into images; pyroomacoustics returns its conjugate.
    images = np.stack(
        [
            separated * np.conj(pra.bss.projection_back(separated, frames_first[:, :, i]))[None]
            for i in range(n_mics)
        ],
        axis=-1,
    )  # (N, F, outputs, I)
    if outputs > n_sources:  # over-determined: the J strongest outputs
        energy = np.sum(np.abs(images) ** 2, axis=(0, 1, 3))
        images = images[:, :, np.sort(np.argsort(energy)[::-1][:n_sources])]
    return images.transpose(2, 1, 0, 3)  # (J, F, N, I)
