"""Native FastMNMF (jointly diagonalizable spatial covariances) in the spatial-model seam."""

from __future__ import annotations

import numpy as np
import pytest

import mnmf
from mnmf.algorithms.multichannel import fit_mnmf
from mnmf.grouping import SourceGrouping
from mnmf.sources import NMFSource, SmoothNMFSource
from mnmf.spatial import FastMNMFModel
from tests.helpers import increases, planted_convolutive, stft_sdr


@pytest.mark.parametrize("variant", ["fastmnmf2", "fastmnmf1"])
@pytest.mark.parametrize("n_mics, n_sources", [(1, 2), (2, 2), (2, 3), (3, 2)])
@pytest.mark.parametrize("source", ["isnmf", "smooth", "fixed"])
def test_cost_never_increases_with_every_source_model(rng, variant, n_mics, n_sources, source):
    _, X, W, *_ = planted_convolutive(rng, n_mics=n_mics, n_sources=n_sources, n_frames=60)
    models = {
        "isnmf": NMFSource(),
        "smooth": SmoothNMFSource(smoothness=5.0),
        "fixed": NMFSource(W=W[:, :2], fix_W=True),  # a pre-learned dictionary for source 0
    }
    fit = fit_mnmf(
        X, n_sources, n_components=2, source_model=models[source],
        spatial=FastMNMFModel(variant=variant), max_iter=30, tol=0, check_every=1, rng=1,
    )  # fmt: skip
    assert increases(fit.cost).size == 0 and fit.cost[-1] < fit.cost[0]
    images = fit.image_spectrograms(X)
    np.testing.assert_allclose(images.sum(axis=0), X, rtol=1e-9, atol=1e-12)
    if source == "fixed":
        np.testing.assert_array_equal(fit.W[:, :2], W[:, :2])
    gains = fit.G if variant == "fastmnmf2" else fit.G.mean(axis=2)
    assert gains.shape == (n_mics, n_sources)


def naive_fastmnmf2_iteration(X, D, G, W, H, labels, *, update_gains=True):
    """One iteration written from the papers' equations on full arrays, in the model's
    order: H, W (source MU with the diagonalized statistics), g, each row of D by
    iterative projection; no normalization. X (F,N,I), D (F,I,I), G (I,J), W (F,K), H (K,N).
    With ``update_gains=False`` and G = I it is ILRMA's iteration (Kitamura et al. 2016)."""
    n_sources = labels.max() + 1
    gain = G[:, labels].T  # (K, I): g of each component's source

    def model(W, H, G):
        lam = np.stack([W[:, labels == j] @ H[labels == j] for j in range(n_sources)])
        return np.einsum("jfn,mj->fnm", lam, G)  # ŷ (F, N, I)

    xt = np.abs(np.einsum("fmi,fni->fnm", D, X)) ** 2
    y = model(W, H, G)
    num = np.einsum("fk,km,fnm->kn", W, gain, xt / y**2)
    den = np.einsum("fk,km,fnm->kn", W, gain, 1 / y)
    H = H * np.sqrt(num / den)
    y = model(W, H, G)
    num = np.einsum("kn,km,fnm->fk", H, gain, xt / y**2)
    den = np.einsum("kn,km,fnm->fk", H, gain, 1 / y)
    W = W * np.sqrt(num / den)
    y = model(W, H, G)
    lam = np.stack([W[:, labels == j] @ H[labels == j] for j in range(n_sources)])
    if update_gains:
        G = G * np.sqrt(
            np.einsum("jfn,fnm->mj", lam, xt / y**2) / np.einsum("jfn,fnm->mj", lam, 1 / y)
        )
        y = model(W, H, G)
    D = D.copy()
    for m in range(X.shape[2]):
        U = np.einsum("fni,fnk,fn->fik", X, X.conj(), 1 / y[..., m]) / X.shape[1]
        d = np.stack(
            [np.linalg.solve(D[f] @ U[f], np.eye(X.shape[2])[:, m]) for f in range(len(D))]
        )
        d /= np.sqrt(np.einsum("fi,fij,fj->f", d.conj(), U, d).real)[:, None]
        D[:, m] = d.conj()
    return D, G, W, H


def scaled_start(rng, X, n_components):
    """X at mean power 1 (internal scale 1: no scaling or floor intervenes) and a start
    (D0 near the identity with ‖D_f‖²_F = I, W0 columns of unit sum, H0)."""
    X = X / np.sqrt(np.mean(np.abs(X) ** 2))
    F, N, I = X.shape
    D0 = np.eye(I)[None] + 0.3 * (
        rng.standard_normal((F, I, I)) + 1j * rng.standard_normal((F, I, I))
    )
    D0 /= np.sqrt(np.sum(np.abs(D0) ** 2, axis=(1, 2)) / I)[:, None, None]
    W0 = rng.uniform(0.5, 1.5, (F, n_components))
    W0 /= W0.sum(axis=0)
    H0 = rng.uniform(0.5, 1.5, (n_components, N))
    return X, D0, W0, H0


def test_one_iteration_equals_the_papers_equations(rng):
    """From one start (data and parameters at the scale 1 so that no internal scaling
    or floor intervenes): the model's iteration equals the direct formulas."""
    _, X, *_ = planted_convolutive(rng, n_mics=2, n_sources=3, n_frames=50)
    X, D0, W0, H0 = scaled_start(rng, X, 6)
    labels = SourceGrouping.from_counts(3, 2).labels
    G0 = rng.uniform(0.2, 1.0, (X.shape[2], 3))
    G0 /= G0.sum(axis=0)
    fit = fit_mnmf(
        X, 3, n_components=2, source_model=NMFSource(W=W0, H=H0, normalize=False),
        spatial=FastMNMFModel(D=D0, G=G0), max_iter=1, tol=0, rng=0,
    )  # fmt: skip
    D, G, W, H = naive_fastmnmf2_iteration(X, D0, G0, W0, H0, labels)
    # The model then normalizes: g columns to unit sum (scale into W), ‖D_f‖_F² = I
    # (scale into W's rows); the images do not depend on it.
    expected = mnmf.spatial.fastmnmf_images(X, D, G, W, H, SourceGrouping(labels))
    np.testing.assert_allclose(fit.image_spectrograms(X), expected, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(fit.G, G / G.sum(axis=0), rtol=1e-6)


def test_planted_fastmnmf2_problem_is_separated():
    """Data drawn from FastMNMF2 itself (per-source spatial covariances D⁻¹ diag(g_j) D⁻ᴴ):
    started at the truth, the fit stays within 1 dB of the true parameters' own Wiener
    images (15.4 / 16.6 dB; measured 15.2 / 16.4), and from its default start (D = I) it
    gets there too (measured 15.2 / 16.4)."""
    rng = np.random.default_rng(4)
    F, N, I, J, K = 48, 300, 2, 2, 2
    labels = SourceGrouping.from_counts(J, K).labels
    W = rng.gamma(0.3, size=(F, J * K)) + 1e-3
    H = rng.gamma(0.5, size=(J * K, N)) + 1e-3
    D = np.eye(I)[None] + 0.5 * (
        rng.standard_normal((F, I, I)) + 1j * rng.standard_normal((F, I, I))
    )
    G = np.array([[1.0, 0.02], [0.02, 1.0]])
    inverse = np.linalg.inv(D)
    images = []
    for j in range(J):
        lam = W[:, labels == j] @ H[labels == j]  # (F, N)
        y = np.sqrt(lam[..., None] * G[:, j] / 2) * (
            rng.standard_normal((F, N, I)) + 1j * rng.standard_normal((F, N, I))
        )  # D x has independent channels
        images.append(np.einsum("fim,fnm->fni", inverse, y))
    images = np.stack(images)
    X = images.sum(axis=0)
    grouping = SourceGrouping(labels)
    oracle = stft_sdr(images, mnmf.spatial.fastmnmf_images(X, D, G, W, H, grouping))
    truth = fit_mnmf(
        X, J, n_components=K, W=W, H=H, spatial=FastMNMFModel(D=D, G=G), max_iter=50, rng=0
    )
    assert np.all(stft_sdr(images, truth.image_spectrograms(X)) > oracle - 1.0)
    blind = fit_mnmf(X, J, n_components=K, spatial="fastmnmf", max_iter=200, rng=0)
    assert np.all(stft_sdr(images, blind.image_spectrograms(X)) > oracle - 1.0)


def test_separate_with_native_fastmnmf_and_bad_options(rng):
    mix = rng.standard_normal((4000, 2))
    images = mnmf.separate(
        mix, n_sources=3, method="mnmf-fastmnmf", rng=0, max_iter=5, stft=mnmf.Stft(n_fft=256)
    )
    np.testing.assert_allclose(images.sum(axis=0), mix, atol=1e-9)
    X = mnmf.stft(mix, n_fft=256)
    with pytest.raises(ValueError, match="variant must be one of"):
        fit_mnmf(X, 2, spatial="fastmnmf", variant="fastmnmf3")
    with pytest.raises(ValueError, match=r"D must have shape \(F, I, I\)"):
        fit_mnmf(X, 2, spatial="fastmnmf", D=np.ones((3, 2, 2), complex))
    with pytest.raises(ValueError, match="D must be invertible"):
        fit_mnmf(X, 2, spatial="fastmnmf", D=np.ones((X.shape[0], 2, 2), complex))
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['mixing'\]"):
        fit_mnmf(X, 2, spatial="fastmnmf", mixing="instantaneous")


def test_linearly_dependent_channels_do_not_break_the_projection(rng):
    """The same signal on both microphones: every U_fm is singular; the update lifts
    its smallest eigenvalue (10⁻¹² of the mean) instead of failing."""
    mono = rng.standard_normal(4000)
    mix = np.stack([mono, 0.5 * mono], axis=1)
    images = mnmf.separate(
        mix, n_sources=2, method="mnmf-fastmnmf", rng=0, max_iter=10, stft=mnmf.Stft(n_fft=256)
    )
    np.testing.assert_allclose(images.sum(axis=0), mix, atol=1e-8)


def test_ilrma_variant_is_ilrma(rng):
    """variant="ilrma": G frozen at the identity; one iteration equals ILRMA's equations
    (source MU on |(D_f x)_j|², IP of each demixing row), the cost never increases, and
    the options that do not fit it are refused."""
    _, X, *_ = planted_convolutive(rng, n_mics=2, n_sources=2, n_frames=50)
    X, D0, W0, H0 = scaled_start(rng, X, 4)
    labels = SourceGrouping.from_counts(2, 2).labels
    fit = fit_mnmf(
        X, 2, n_components=2, source_model=NMFSource(W=W0, H=H0, normalize=False),
        spatial=FastMNMFModel(variant="ilrma", D=D0), max_iter=1, tol=0, rng=0,
    )  # fmt: skip
    D, G, W, H = naive_fastmnmf2_iteration(X, D0, np.eye(2), W0, H0, labels, update_gains=False)
    expected = mnmf.spatial.fastmnmf_images(X, D, G, W, H, SourceGrouping(labels))
    np.testing.assert_allclose(fit.image_spectrograms(X), expected, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(fit.G, np.eye(2))
    long = fit_mnmf(
        X, 2, n_components=2, spatial=FastMNMFModel(variant="ilrma"), source_model="smooth",
        smoothness=2.0, max_iter=30, tol=0, check_every=1, rng=1,
    )  # fmt: skip
    assert increases(long.cost).size == 0 and long.cost[-1] < long.cost[0]
    np.testing.assert_array_equal(long.G, np.eye(2))
    with pytest.raises(ValueError, match="n_sources must be 2, got 3"):
        fit_mnmf(X, 3, spatial="fastmnmf", variant="ilrma")
    with pytest.raises(ValueError, match="G is fixed to the identity"):
        FastMNMFModel(variant="ilrma", G=np.eye(2))
    with pytest.raises(ValueError, match="init='mnmf-ilrma' needs as many sources"):
        fit_mnmf(X, 3, spatial="convolutive", algorithm="em", init="mnmf-ilrma")


def test_image_power_scales_turn_lambda_into_image_power(rng):
    """λ_jfn c_jf is the trace of source j's image covariance λ D⁻¹ diag(g_j) D⁻ᴴ, so a
    start can hand W to a model whose λ is the image power (FastMNMF1 and 2)."""
    _, X, *_ = planted_convolutive(rng, n_mics=3, n_sources=2, n_frames=40)
    for variant in ("fastmnmf2", "fastmnmf1"):
        model = FastMNMFModel(variant=variant)
        fit = fit_mnmf(X, 2, n_components=2, spatial=model, max_iter=5, rng=0)
        inverse = np.linalg.inv(fit.D)
        gains = fit.G if fit.G.ndim == 3 else np.repeat(fit.G[:, :, None], len(fit.D), axis=2)
        naive = np.array(
            [
                [np.trace(inverse[f] @ np.diag(gains[:, j, f]) @ inverse[f].conj().T).real
                 for f in range(len(fit.D))]
                for j in range(2)
            ]
        )  # fmt: skip
        np.testing.assert_allclose(model.image_power_scales(fit.params), naive, rtol=1e-10)


def test_a_fastmnmf_start_hands_over_factors_in_image_power(rng):
    """ModelStart from FastMNMF: free templates' rows times c_jf (λ c exactly), fixed
    templates as given with c folded into their activations (template-weighted mean)."""
    from mnmf.algorithms import ModelStart
    from mnmf.algorithms.starts import _to_image_power

    F, N, K = 6, 5, 3
    W = rng.uniform(0.1, 1.0, (F, K))
    H = rng.uniform(0.1, 1.0, (K, N))
    scales = rng.uniform(0.5, 2.0, (F, K))
    free = np.array([True, False, True])
    W_out, H_out = _to_image_power(W, H, scales, free)
    np.testing.assert_allclose(W_out[:, free] @ H_out[free], (W * scales)[:, free] @ H[free])
    np.testing.assert_array_equal(W_out[:, ~free], W[:, ~free])
    expected = np.sum(W[:, 1] * scales[:, 1]) / np.sum(W[:, 1])
    np.testing.assert_allclose(H_out[1], H[1] * expected)

    _, X, W_true, *_ = planted_convolutive(rng, n_mics=2, n_sources=2, n_frames=40)
    dictionary = W_true[:, :2]
    source = NMFSource(W=dictionary, fix_W=True)  # source 0's templates fixed
    grouping = SourceGrouping.from_counts(2, 2)
    ModelStart("fastmnmf", max_iter=5).prepare(
        X, grouping, source, mnmf.spatial.ConvolutiveEMModel(), rng=np.random.default_rng(0)
    )
    np.testing.assert_array_equal(source._start["W"][:, :2], dictionary)
