import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mnmf
from tests.helpers import planted_spectrogram

BETAS = [-0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0]


def naive_mu(V, W, H, beta, gamma, n_iter):
    """Textbook MU (H then W, full matrices, no blocks, no normalization)."""
    W, H = W.copy(), H.copy()
    for _ in range(n_iter):
        V_hat = W @ H
        H *= ((W.T @ (V * V_hat ** (beta - 2))) / (W.T @ V_hat ** (beta - 1))) ** gamma
        V_hat = W @ H
        W *= (((V * V_hat ** (beta - 2)) @ H.T) / (V_hat ** (beta - 1) @ H.T)) ** gamma
    return W, H


def nondecreasing_steps(cost):
    """Indices where the cost went up by more than float64 rounding."""
    return np.flatnonzero(np.diff(cost) > 1e-10 * np.abs(cost[:-1]))


@pytest.mark.parametrize("beta", BETAS)
def test_matches_naive_reference(rng, beta):
    V, _, _ = planted_spectrogram(rng, 30, 50, 3)
    W0, H0 = rng.uniform(0.5, 1.5, (30, 3)), rng.uniform(0.5, 1.5, (3, 50))
    result = mnmf.fit_nmf(V, 3, beta=beta, W=W0, H=H0, normalize=False, max_iter=20, tol=0)
    W_ref, H_ref = naive_mu(V, W0, H0, beta, mnmf.mm_exponent(beta), 20)
    np.testing.assert_allclose(result.W @ result.H, W_ref @ H_ref, rtol=1e-7)


def test_blocks_do_not_change_the_numbers(rng):
    from mnmf.algorithms.nmf import build_nmf_model
    from mnmf.sources import NMFSource

    V, _, _ = planted_spectrogram(rng, 30, 101, 3)
    results = []
    for block_bytes in (1, 3 * 30 * 8 * 7, 1 << 30):  # 1 frame, 7 frames, everything
        model = build_nmf_model(V, NMFSource(3), block_bytes=block_bytes)
        results.append(mnmf.run(model, max_iter=15, tol=0, rng=5).params["H"])
    np.testing.assert_allclose(results[0], results[1], rtol=1e-10)
    np.testing.assert_allclose(results[0], results[2], rtol=1e-10)


@pytest.mark.parametrize("beta", [0.0, 1.0, 1.5])
@pytest.mark.parametrize("fix_W", [False, [0]])
def test_fused_and_two_phase_iterations_agree(rng, beta, fix_W):
    """Block-wise H updates (fused pass) equal the textbook all-frames-then-W order."""
    from mnmf.algorithms.nmf import build_nmf_model
    from mnmf.sources import NMFSource

    V, W_true, _ = planted_spectrogram(rng, 30, 101, 3)
    results = []
    for separable in (True, False):
        source = NMFSource(3, W=W_true[:, :1], fix_W=fix_W)
        source.frame_separable = separable
        model = build_nmf_model(V, source, beta=beta, block_bytes=3 * 30 * 8 * 7, n_threads=2)
        results.append(mnmf.run(model, max_iter=15, tol=0, rng=5).params)
    np.testing.assert_allclose(results[0]["H"], results[1]["H"], rtol=1e-10)
    np.testing.assert_allclose(results[0]["W"], results[1]["W"], rtol=1e-10)


@pytest.mark.parametrize(
    "beta, algorithm, dtype",
    [(b, "mu", np.float64) for b in BETAS] + [(0.0, "em", np.float64), (0.0, "mu", np.float32)],
)
def test_reported_cost_is_the_divergence_of_the_result(rng, beta, algorithm, dtype):
    """The models' fast cost paths (IS: data part precomputed) equal beta_divergence."""
    V, _, _ = planted_spectrogram(rng, 30, 70, 3)
    V[:, :5] = 0  # silence exercises the floor convention
    V = V.astype(dtype)
    fit = mnmf.fit_nmf(V, 3, beta=beta, algorithm=algorithm, max_iter=7, rng=rng)
    expected = mnmf.beta_divergence(V, fit.W.astype(np.float64) @ fit.H, beta)
    assert fit.cost[-1] == pytest.approx(expected, rel=1e-9 if dtype == np.float64 else 1e-4)


@pytest.mark.parametrize("beta", BETAS)
def test_mu_cost_never_increases(rng, beta):
    V, _, _ = planted_spectrogram(rng, 25, 40, 4)
    result = mnmf.fit_nmf(V, 4, beta=beta, max_iter=150, tol=0, check_every=1, rng=rng)
    assert nondecreasing_steps(result.cost).size == 0
    assert result.cost[-1] < 0.9 * result.cost[0]


def test_heuristic_exponent_differs_and_is_offered(rng):
    V, _, _ = planted_spectrogram(rng)
    mm = mnmf.fit_nmf(V, 3, max_iter=20, rng=1, tol=0)
    heuristic = mnmf.fit_nmf(V, 3, exponent="heuristic", max_iter=20, rng=1, tol=0)
    assert not np.allclose(mm.H, heuristic.H)
    assert heuristic.cost[-1] < heuristic.cost[0]


@settings(max_examples=25, deadline=None)
@given(
    n_freqs=st.integers(2, 20),
    n_frames=st.integers(2, 30),
    n_components=st.integers(1, 5),
    seed=st.integers(0, 2**32 - 1),
    algorithm=st.sampled_from(["mu", "em"]),
)
def test_is_cost_never_increases_on_random_shapes(n_freqs, n_frames, n_components, seed, algorithm):
    rng = np.random.default_rng(seed)
    V, _, _ = planted_spectrogram(rng, n_freqs, n_frames, max(1, n_components - 1))
    result = mnmf.fit_nmf(
        V, n_components, algorithm=algorithm, max_iter=30, tol=0, check_every=1, rng=rng
    )
    assert nondecreasing_steps(result.cost).size == 0


def test_em_reaches_the_same_quality_as_mu(rng):
    V, _, _ = planted_spectrogram(rng, 40, 80, 3)
    em = mnmf.fit_nmf(V, 3, algorithm="em", max_iter=300, tol=0, rng=2)
    mu = mnmf.fit_nmf(V, 3, algorithm="mu", max_iter=300, tol=0, rng=2)
    assert em.cost[-1] == pytest.approx(mu.cost[-1], rel=0.03)


@pytest.mark.parametrize("algorithm", ["mu", "em"])
def test_planted_factorization_is_recovered(algorithm):
    """Data from the IS-NMF model (many independent draws, averaged) with sparse W."""
    rng = np.random.default_rng(7)
    n_freqs, n_frames, K = 60, 200, 3
    W = rng.gamma(0.3, size=(n_freqs, K)) + 1e-3
    W /= W.sum(axis=0)
    H = rng.gamma(1.0, size=(K, n_frames)) * 100
    # Average of 50 periodograms: the same model with lower-variance observations.
    V = (W @ H) * rng.gamma(50.0, 1 / 50.0, size=(n_freqs, n_frames))
    result = mnmf.fit_nmf(V, K, algorithm=algorithm, max_iter=1000, tol=1e-7, rng=rng)
    # Match components by template correlation (NMF is unique up to permutation & scale).
    corr = np.corrcoef(W.T, result.W.T)[:K, K:]
    order = np.argmax(corr, axis=1)
    assert sorted(order) == list(range(K))
    assert np.all(corr[np.arange(K), order] > 0.97)
    h_corr = [np.corrcoef(H[k], result.H[order[k]])[0, 1] for k in range(K)]
    assert np.min(h_corr) > 0.97


@pytest.mark.parametrize("algorithm", ["mu", "em"])
def test_fixed_W_stays_bit_identical(rng, algorithm):
    V, W_true, _ = planted_spectrogram(rng)
    result = mnmf.fit_nmf(V, 3, algorithm=algorithm, W=W_true, fix_W=True, max_iter=20, rng=rng)
    np.testing.assert_array_equal(result.W, W_true)


@pytest.mark.parametrize("algorithm", ["mu", "em"])
def test_partially_fixed_W(rng, algorithm):
    V, W_true, _ = planted_spectrogram(rng, n_components=3)
    result = mnmf.fit_nmf(
        V, 5, algorithm=algorithm, W=W_true[:, :2], fix_W=True, max_iter=20, rng=rng
    )
    np.testing.assert_array_equal(result.W[:, :2], W_true[:, :2])
    np.testing.assert_allclose(result.W[:, 2:].sum(axis=0), 1.0)  # free columns normalized
    by_index = mnmf.fit_nmf(V, 3, W=W_true, fix_W=[1], max_iter=20, rng=rng)
    np.testing.assert_array_equal(by_index.W[:, 1], W_true[:, 1])
    assert not np.array_equal(by_index.W[:, 0], W_true[:, 0])


@pytest.mark.parametrize("algorithm", ["mu", "em"])
def test_masked_activations_stay_zero(rng, algorithm):
    V, _, _ = planted_spectrogram(rng)
    mask = rng.random((3, V.shape[1])) > 0.3
    result = mnmf.fit_nmf(V, 3, algorithm=algorithm, H_mask=mask, max_iter=30, rng=rng)
    assert np.all(result.H[~mask] == 0)
    assert np.all(result.H[mask] > 0)


@pytest.mark.parametrize("algorithm", ["mu", "em"])
def test_float32_in_float32_out(rng, algorithm):
    V, _, _ = planted_spectrogram(rng)
    result = mnmf.fit_nmf(V.astype(np.float32), 3, algorithm=algorithm, max_iter=30, rng=rng)
    assert result.W.dtype == np.float32 and result.H.dtype == np.float32
    reference = mnmf.fit_nmf(V, 3, algorithm=algorithm, max_iter=30, rng=np.random.default_rng(1))
    assert result.cost[-1] < result.cost[0]
    assert reference.W.dtype == np.float64


@pytest.mark.parametrize("scale", [1e-30, 1e-12, 1.0, 1e12])
def test_float32_survives_any_level(rng, scale):
    V, _, _ = planted_spectrogram(rng)
    result = mnmf.fit_nmf((V * scale).astype(np.float32), 3, beta=-0.5, max_iter=30, rng=1)
    reference = mnmf.fit_nmf(V, 3, beta=-0.5, max_iter=30, rng=1)
    np.testing.assert_allclose(result.W, reference.W, rtol=2e-3, atol=1e-6)
    assert np.all(np.isfinite(result.H))


@pytest.mark.parametrize("algorithm", ["mu", "em"])
def test_same_seed_same_result(rng, algorithm):
    V, _, _ = planted_spectrogram(rng)
    a = mnmf.fit_nmf(V, 3, algorithm=algorithm, max_iter=10, rng=np.random.default_rng(3))
    b = mnmf.fit_nmf(V, 3, algorithm=algorithm, max_iter=10, rng=np.random.default_rng(3))
    c = mnmf.fit_nmf(V, 3, algorithm=algorithm, max_iter=10, rng=np.random.default_rng(4))
    np.testing.assert_array_equal(a.W, b.W)
    np.testing.assert_array_equal(a.H, b.H)
    assert not np.array_equal(a.H, c.H)


def test_scale_invariance_of_is_nmf(rng):
    V, _, _ = planted_spectrogram(rng)
    a = mnmf.fit_nmf(V, 3, max_iter=20, rng=1)
    b = mnmf.fit_nmf(V * 1024.0, 3, max_iter=20, rng=1)
    np.testing.assert_allclose(b.W, a.W, rtol=1e-9)
    np.testing.assert_allclose(b.H, 1024.0 * a.H, rtol=1e-9)
    np.testing.assert_allclose(b.cost, a.cost, rtol=1e-9)


def test_given_init_is_used(rng):
    V, W_true, H_true = planted_spectrogram(rng)
    fit = mnmf.fit_nmf(V, 3, W=W_true, H=H_true, normalize=False, max_iter=0)
    np.testing.assert_allclose(fit.W @ fit.H, W_true @ H_true)


@pytest.mark.parametrize(
    "beta, algorithm",
    [(-0.5, "mu"), (0.0, "mu"), (0.5, "mu"), (1.0, "mu"), (2.0, "mu"), (0.0, "em")],
)
def test_zeros_and_silence_never_give_nan(rng, beta, algorithm):
    V, _, _ = planted_spectrogram(rng)
    V[:, :10] = 0  # silent frames
    V[5] = 0  # an empty frequency
    for data in (V, np.zeros_like(V)):
        result = mnmf.fit_nmf(data, 3, beta=beta, algorithm=algorithm, max_iter=20, rng=rng)
        for array in (result.W, result.H, result.cost):
            assert np.all(np.isfinite(array))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"V": np.full((4, 4), np.nan)}, "NaN"),
        ({"V": np.full((4, 4), np.inf)}, "infinite"),
        ({"V": -np.ones((4, 4))}, "non-negative"),
        ({"V": np.ones(4)}, "2-D"),
        ({"V": np.ones((4, 4), dtype=complex)}, "real"),
        ({"n_components": 0}, "n_components"),
        ({"n_components": 2.5}, "n_components"),
        ({"algorithm": "als"}, "algorithm"),
        ({"exponent": "fast"}, "exponent"),
        ({"algorithm": "em", "beta": 1.0}, "beta"),
        ({"W": np.ones((3, 2))}, "W must have shape"),
        ({"W": np.ones((4, 5))}, "columns"),
        ({"H": np.ones((2, 3))}, "H must have shape"),
        ({"H_mask": np.ones((2, 2), bool)}, "H_mask"),
        ({"fix_W": True}, "fix_W=True needs W"),
        ({"W": np.ones((4, 1)), "fix_W": [1]}, "does not give"),
        ({"W": -np.ones((4, 2))}, "W must be non-negative"),
        ({"max_iter": -5}, "max_iter"),
        ({"beta": np.nan}, "beta"),
    ],
)
def test_bad_input_names_the_argument(kwargs, match):
    arguments = {"V": np.ones((4, 4)), "n_components": 2} | kwargs
    V, K = arguments.pop("V"), arguments.pop("n_components")
    with pytest.raises(ValueError, match=match):
        mnmf.fit_nmf(V, K, **arguments)
