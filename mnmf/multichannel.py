"""Multichannel NMF: ``fit_mnmf`` and its result.

See :mod:`mnmf.spatial` for the models. ``fit_mnmf`` builds a source model (the core's
:class:`~mnmf.NMFSource`) and a spatial model and hands them to the engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mnmf._validation import check_choice, positive_int
from mnmf.divergence import mm_exponent
from mnmf.engine import Callback, FitResult, run
from mnmf.sources import NMFSource
from mnmf.spatial import GainsModel, gains_images
from mnmf.stft import istft

SPATIAL_MODELS = ("gains",)
ALGORITHMS = {"gains": ("mu",)}
SOURCE_MODELS = ("isnmf",)


@dataclass(frozen=True)
class MNMFResult(FitResult):
    """:class:`~mnmf.engine.FitResult` of a multichannel NMF.

    Attributes
    ----------
    W : array (F, K)
    H : array (K, N)
    Q : array (I, J, F) or (I, J)
        Spatial gains (gains model).
    labels : int array (K,)
        Source of every component.
    """

    @property
    def W(self) -> NDArray:
        return self.params["W"]

    @property
    def H(self) -> NDArray:
        return self.params["H"]

    @property
    def Q(self) -> NDArray:
        return self.params["Q"]

    @property
    def labels(self) -> NDArray:
        return self.params["labels"]

    def image_spectrograms(self, X: ArrayLike) -> NDArray[np.complexfloating]:
        """STFTs of the source images, shape (J, F, N, I), from the mixture's STFT X."""
        spectra = np.asarray(X)
        expected = (self.W.shape[0], self.H.shape[1], self.Q.shape[0])
        if spectra.shape != expected:
            raise ValueError(
                f"X must be the fitted STFT of shape (F, N, I) = {expected}, got {spectra.shape}"
            )
        return gains_images(spectra, self.Q, self.W, self.H, self.labels)

    def images(
        self,
        X: ArrayLike,
        *,
        n_fft: int = 2048,
        hop: int = 512,
        window: str | ArrayLike = "sine",
        length: int | None = None,
    ) -> NDArray[np.floating]:
        """Time-domain source images, shape (J, samples, I) (same STFT parameters as X)."""
        return np.stack(
            [
                istft(S, n_fft=n_fft, hop=hop, window=window, length=length)
                for S in self.image_spectrograms(X)
            ]
        )


def component_labels(n_sources: int, n_components: int | Sequence[int]) -> NDArray[np.int64]:
    """Source index of every component: K_j components for source j (int: the same for all)."""
    n_sources = positive_int(n_sources, name="n_sources")
    counts = (
        [positive_int(n_components, name="n_components")] * n_sources
        if isinstance(n_components, int | np.integer)
        else [positive_int(c, name="n_components") for c in n_components]
    )
    if len(counts) != n_sources:
        raise ValueError(
            f"n_components must be an int or one count per source ({n_sources}), got {len(counts)}"
        )
    return np.repeat(np.arange(n_sources), counts).astype(np.int64)


def fit_mnmf(
    X: ArrayLike,
    n_sources: int,
    *,
    n_components: int | Sequence[int] = 4,
    spatial: str = "gains",
    algorithm: str = "mu",
    mixing: str = "convolutive",
    source_model: str = "isnmf",
    exponent: str = "mm",
    max_iter: int = 200,
    tol: float = 1e-5,
    check_every: int = 10,
    W: ArrayLike | None = None,
    H: ArrayLike | None = None,
    fix_W: bool | Sequence[int] | ArrayLike = False,
    Q: ArrayLike | None = None,
    fix_Q: bool = False,
    rng: np.random.Generator | int | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool = False,
) -> MNMFResult:
    """Multichannel NMF of a mixture's STFT (Ozerov & Févotte 2010).

    Parameters
    ----------
    X : complex array, shape (F, N, I)
        STFT of the mixture (:func:`mnmf.stft` of a (samples, I) signal). I ≥ 1.
    n_sources : int
        J ≥ 1; J > I (under-determined) is fine.
    n_components : int or sequence of int
        K_j, components per source (an int gives the same to every source).
    spatial : {"gains"}
        Per-source spatial gains Q on power spectrograms (criterion C2).
    algorithm : {"mu"}
        Multiplicative updates (MM: the IS cost never increases).
    mixing : {"convolutive", "instantaneous"}
        Gains per frequency, or constant over frequency (panned mixes).
    source_model : {"isnmf"}
        Spectral model of each source.
    exponent : {"mm", "heuristic"}
        MU exponent ½ (MM, guaranteed descent) or 1.
    max_iter, tol, check_every, rng, callbacks, progress
        See :func:`mnmf.engine.run`.
    W, H, fix_W
        Given or fixed templates / activations for the K = Σ K_j components, ordered
        source by source (supervised separation with pre-learned dictionaries); see
        :func:`mnmf.fit_nmf`.
    Q, fix_Q
        Given (and optionally fixed) spatial gains, (I, J, F) or (I, J) if instantaneous.

    Returns
    -------
    MNMFResult
        ``.W``, ``.H``, ``.Q``, ``.labels``, cost history, ``.images(X, ...)``.
    """
    spectra = np.asarray(X)
    if not np.iscomplexobj(spectra) or spectra.ndim != 3:
        raise ValueError(
            f"X must be a complex STFT of shape (F, N, I), got {spectra.dtype} {spectra.shape}"
        )
    if not np.all(np.isfinite(spectra)):
        raise ValueError("X contains NaN or infinite values")
    check_choice(spatial, name="spatial", choices=SPATIAL_MODELS)
    check_choice(algorithm, name="algorithm", choices=ALGORITHMS[spatial])
    check_choice(mixing, name="mixing", choices=("convolutive", "instantaneous"))
    check_choice(source_model, name="source_model", choices=SOURCE_MODELS)
    check_choice(exponent, name="exponent", choices=("mm", "heuristic"))
    labels = component_labels(n_sources, n_components)
    power = np.abs(spectra) ** 2  # (F, N, I), float32 for complex64
    source = NMFSource(labels.size, W=W, H=H, fix_W=fix_W)
    model = GainsModel(
        power,
        source,
        labels,
        mixing=mixing,
        exponent=mm_exponent(0.0) if exponent == "mm" else 1.0,
        Q=Q,
        fix_Q=fix_Q,
    )
    fit = run(
        model,
        max_iter=max_iter,
        tol=tol,
        check_every=check_every,
        rng=rng,
        callbacks=callbacks,
        progress=progress,
        description=f"MNMF {spatial}/{algorithm}",
    )
    return MNMFResult(**vars(fit))
