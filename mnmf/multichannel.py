"""Multichannel NMF: ``fit_mnmf`` and its result.

See :mod:`mnmf.spatial` for the models. ``fit_mnmf`` builds a source model (the core's
:class:`~mnmf.NMFSource`) and a spatial model and hands them to the engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mnmf._validation import as_generator, check_choice, positive_int
from mnmf.divergence import mm_exponent
from mnmf.engine import Callback, FitResult, run
from mnmf.nmf import fit_nmf
from mnmf.peers import PEERS, peer_images
from mnmf.sources import SOURCE_MODELS, make_source
from mnmf.spatial import ConvolutiveEMModel, GainsModel, em_images, gains_images
from mnmf.stft import istft

SPATIAL_MODELS = ("gains", "convolutive")
ALGORITHMS = {"gains": ("mu",), "convolutive": ("em",)}
INITS = ("random", "auto", "gains", *PEERS)


@dataclass(frozen=True)
class MNMFResult(FitResult):
    """:class:`~mnmf.engine.FitResult` of a multichannel NMF.

    Attributes
    ----------
    W : array (F, K)
    H : array (K, N)
    Q : array (I, J, F) or (I, J)
        Spatial gains (gains model).
    A : complex array (F, I, J)
        Mixing filters (convolutive EM), with ``params["noise"]`` (F, I).
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
    def A(self) -> NDArray:
        return self.params["A"]

    @property
    def labels(self) -> NDArray:
        return self.params["labels"]

    def image_spectrograms(self, X: ArrayLike) -> NDArray[np.complexfloating]:
        """STFTs of the source images, shape (J, F, N, I), from the mixture's STFT X."""
        spectra = np.asarray(X)
        n_mics = self.A.shape[1] if "A" in self.params else self.Q.shape[0]
        expected = (self.W.shape[0], self.H.shape[1], n_mics)
        if spectra.shape != expected:
            raise ValueError(
                f"X must be the fitted STFT of shape (F, N, I) = {expected}, got {spectra.shape}"
            )
        if "A" in self.params:
            noise = self.params["noise"]
            return em_images(spectra, self.A, self.W, self.H, self.labels, noise)
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


def fit_mnmf(
    X: ArrayLike,
    n_sources: int,
    *,
    n_components: int | Sequence[int] = 4,
    spatial: str = "gains",
    algorithm: str = "mu",
    mixing: str = "convolutive",
    source_model: str = "isnmf",
    smoothness: float | ArrayLike | None = None,
    exponent: str = "mm",
    max_iter: int = 200,
    tol: float = 1e-5,
    check_every: int = 10,
    W: ArrayLike | None = None,
    H: ArrayLike | None = None,
    fix_W: bool | Sequence[int] | ArrayLike = False,
    Q: ArrayLike | None = None,
    fix_Q: bool = False,
    A: ArrayLike | None = None,
    init: str = "random",
    init_iter: int = 50,
    noise: str = "estimate",
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
    spatial : {"gains", "convolutive"}
        ``"gains"``: per-source spatial gains Q on power spectrograms (criterion C2).
        ``"convolutive"``: complex mixing filters A (F, I, J) and diagonal noise, the
        full Gaussian model (criterion C1).
    algorithm : {"mu", "em"}
        ``"mu"`` for the gains model (MM: the IS cost never increases); ``"em"`` for
        the convolutive model (the likelihood never decreases with ``noise="estimate"``).
    mixing : {"convolutive", "instantaneous"}
        Gains model only: gains per frequency, or constant over frequency (panned mixes).
    source_model : {"isnmf", "smooth"}
        Spectral model of each source: IS-NMF, or smooth IS-NMF (Févotte 2011) with
        penalty λ Σ_k Σ_n d_IS(h_{k,n−1} | h_{k,n}) — in the MU its H update is the MM
        step of the penalized C2 cost, in the EM its M-step maximizes the penalized
        expected log-likelihood; both keep their monotonicity.
    smoothness : float or array of shape (K,)
        λ ≥ 0 of ``source_model="smooth"`` (required by it, refused otherwise).
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
    A : complex array (F, I, J), optional
        Given initial mixing filters (convolutive EM).
    init : {"random", "auto", "gains", "auxiva", "ilrma", "fastmnmf2"}
        Start (both models are sensitive to it: per-frequency permutations of a poor
        start are local optima). ``"random"``: seeded random W, H, Q / A. ``"gains"``
        (EM only): a gains-MU run of ``init_iter`` iterations. A peer's name: that
        pyroomacoustics method run for ``init_iter`` iterations (AuxIVA/ILRMA need
        J ≤ I; FastMNMF2 works for J > I). From the start's images, a_j,f is the
        principal eigenvector of source j's image covariance (Q: its squared moduli,
        averaged over f if instantaneous) and W_j, H_j an IS-NMF (``init_iter``
        iterations) of the source's power Σ_i |image|². ``"auto"``: the peer that
        fits the problem (:func:`auto_init`). Given W/H/Q/A override.
    init_iter : int
        Iterations of the start's runs.
    noise : {"estimate", "anneal"}
        EM noise covariance: estimated (monotone likelihood) or annealed from large to
        small as in the authors' toolbox.

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
    check_choice(init, name="init", choices=INITS)
    check_choice(noise, name="noise", choices=("estimate", "anneal"))
    init_iter = positive_int(init_iter, name="init_iter")
    if init == "gains" and spatial == "gains":
        raise ValueError(
            'init="gains" starts the convolutive EM; the gains model takes '
            f"one of {[i for i in INITS if i != 'gains']}"
        )
    rng = as_generator(rng)
    if init == "auto":
        init = auto_init(n_sources, spectra.shape[2])
    if init in PEERS:
        start = _peer_start(spectra, labels, init, init_iter=init_iter, W=W, H=H, rng=rng)
        W = start["W"] if W is None else W
        H = start["H"] if H is None else H
        A = start["A"] if A is None else A
        if Q is None and spatial == "gains":
            gains = np.abs(start["A"].transpose(1, 2, 0)) ** 2  # (I, J, F)
            Q = gains.mean(axis=2) if mixing == "instantaneous" else gains
    if spatial == "gains":
        source = make_source(
            source_model, labels.size, smoothness=smoothness, W=W, H=H, fix_W=fix_W
        )
        source.check_data_model(beta=0.0, exponent=mm_exponent(0.0) if exponent == "mm" else 1.0)
        model = GainsModel(
            np.abs(spectra) ** 2,  # (F, N, I), float32 for complex64
            source,
            labels,
            mixing=mixing,
            exponent=mm_exponent(0.0) if exponent == "mm" else 1.0,
            Q=Q,
            fix_Q=fix_Q,
        )
    else:
        if init == "gains" and (W is None or H is None or A is None):
            start = fit_mnmf(
                spectra,
                n_sources,
                n_components=n_components,
                W=W,
                H=H,
                fix_W=fix_W,
                max_iter=init_iter,
                rng=rng,
            )
            W = start.W if W is None else W
            H = start.H if H is None else H
            A = _principal_filters(start.image_spectrograms(spectra)) if A is None else A
        source = make_source(
            source_model, labels.size, smoothness=smoothness, W=W, H=H, fix_W=fix_W
        )
        model = ConvolutiveEMModel(spectra, source, labels, A=A, noise=noise)
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


def _principal_filters(images: NDArray) -> NDArray[np.complex128]:
    """Unit-norm principal eigenvector of each image's spatial covariance, (F, I, J).

    ``images`` is (J, F, N, I). With unit-norm filters, σ_j = Σ_k w h keeps the power
    the gains model gave source j (its images' total over microphones).
    """
    covariance = np.einsum("jfni,jfnk->fjik", images, images.conj()) / images.shape[2]
    _, vectors = np.linalg.eigh(covariance)  # ascending eigenvalues
    return np.ascontiguousarray(vectors[..., -1].transpose(0, 2, 1))


def _peer_start(
    spectra: NDArray,
    labels: NDArray[np.int64],
    method: str,
    *,
    init_iter: int,
    W: ArrayLike | None,
    H: ArrayLike | None,
    rng: np.random.Generator,
) -> dict[str, NDArray]:
    """W (F, K), H (K, N) and unit-norm A (F, I, J) from a peer's separated images.

    Each source's templates come from an IS-NMF of its power Σ_i |image|² (with unit
    filters, exactly its σ_j); given templates are kept and only H is fitted then.
    """
    n_sources = int(labels.max()) + 1
    images = peer_images(spectra, n_sources, method, rng=rng, options={"n_iter": init_iter})
    # Only a complete given W (K columns) or H can seed the per-source fits; a partial
    # dictionary is left to the model itself.
    given_W = None if W is None else np.asarray(W)
    given_H = None if H is None else np.asarray(H)
    if given_W is not None and (given_W.ndim != 2 or given_W.shape[1] != labels.size):
        given_W = None
    if given_H is not None and (given_H.ndim != 2 or given_H.shape[0] != labels.size):
        given_H = None
    templates, activations = [], []
    for j in range(n_sources):
        members = labels == j
        power = np.sum(np.abs(images[j]) ** 2, axis=-1)  # (F, N)
        fit = fit_nmf(
            power,
            int(members.sum()),
            beta=0.0,
            max_iter=init_iter,
            W=None if given_W is None else given_W[:, members],
            H=None if given_H is None else given_H[members],
            fix_W=given_W is not None,
            rng=rng,
        )
        templates.append(fit.W)
        activations.append(fit.H)
    return {
        "W": np.concatenate(templates, axis=1),
        "H": np.concatenate(activations, axis=0),
        "A": _principal_filters(images),
    }
