"""The pyroomacoustics BSS baselines, run on an STFT and returned as images.

Used by :func:`mnmf.separate` (methods ``"auxiva"``, ``"ilrma"``, ``"fastmnmf2"``) and by
:func:`mnmf.fit_mnmf` to start the multichannel models from a peer's solution
(``init="ilrma"`` …). References: AuxIVA (Ono 2011), ILRMA (Kitamura et al. 2016),
FastMNMF2 (Sekiguchi et al. 2020).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from numpy.typing import NDArray

PEERS = ("auxiva", "ilrma", "fastmnmf2")


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
        J. AuxIVA and ILRMA need J ≤ I (pyroomacoustics' ILRMA: J = I).
    method : {"auxiva", "ilrma", "fastmnmf2"}
    rng : numpy.random.Generator
        Seeds the legacy global generator pyroomacoustics draws from, for this call
        only (the global state is restored afterwards).
    options : dict, optional
        Keywords of the pyroomacoustics function (``n_iter``, ``n_components``, ...).

    Returns
    -------
    complex array, shape (J, F, N, I)
        The image of every source at every microphone; they add up to the mixture for
        AuxIVA/ILRMA (projection back, Murata et al. 2001).
    """
    import pyroomacoustics as pra

    options = dict(options or {})
    n_mics = X.shape[2]
    if method not in PEERS:
        raise ValueError(f"method must be one of {list(PEERS)}, got {method!r}")
    if method in ("auxiva", "ilrma") and n_sources > n_mics:
        raise ValueError(
            f"method {method!r} separates at most as many sources as microphones "
            f"(I={n_mics}); got n_sources={n_sources}"
        )
    algorithms: dict[str, Callable[..., NDArray]] = {
        "auxiva": lambda Xp: pra.bss.auxiva(Xp, n_src=n_sources, proj_back=False, **options),
        "ilrma": lambda Xp: pra.bss.ilrma(Xp, n_src=n_sources, proj_back=False, **options),
        "fastmnmf2": lambda Xp: pra.bss.fastmnmf2(Xp, n_src=n_sources, **options),
    }
    frames_first = np.ascontiguousarray(X.transpose(1, 0, 2))  # pyroomacoustics: (N, F, I)
    try:
        with seeded_global_numpy(rng):
            separated = algorithms[method](frames_first)  # (N, F, J)
    except TypeError as error:  # an unknown keyword in options
        raise ValueError(
            f"method {method!r} rejected its options {sorted(options)}: {error}"
        ) from None
    # Projection back: the least-squares scale of each output on each microphone turns
    # outputs into images; pyroomacoustics returns the conjugate of that scale.
    images = np.stack(
        [
            separated * np.conj(pra.bss.projection_back(separated, frames_first[:, :, i]))[None]
            for i in range(n_mics)
        ],
        axis=-1,
    )  # (N, F, J, I)
    return images.transpose(2, 1, 0, 3)  # (J, F, N, I)
