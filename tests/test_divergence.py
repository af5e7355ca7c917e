import numpy as np
import pytest

import mnmf
from mnmf.divergence import data_floor, mu_ratios


def naive_beta_divergence(x, y, beta):
    """Term-by-term textbook formula (Févotte & Idier 2011, eq. 2), strictly positive data."""
    total = 0.0
    for a, b in zip(np.ravel(x), np.ravel(y), strict=True):
        if beta == 0:
            total += a / b - np.log(a / b) - 1
        elif beta == 1:
            total += a * np.log(a / b) - a + b
        else:
            total += (a**beta + (beta - 1) * b**beta - beta * a * b ** (beta - 1)) / (
                beta * (beta - 1)
            )
    return total


@pytest.mark.parametrize("beta", [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0])
def test_matches_naive_formula(rng, beta):
    x = rng.uniform(0.1, 3.0, size=(7, 9))
    y = rng.uniform(0.1, 3.0, size=(7, 9))
    assert mnmf.beta_divergence(x, y, beta) == pytest.approx(
        naive_beta_divergence(x, y, beta), rel=1e-12
    )


def test_euclidean_is_half_squared_error(rng):
    x, y = rng.random((5, 5)), rng.random((5, 5))
    assert mnmf.beta_divergence(x, y, 2) == pytest.approx(0.5 * np.sum((x - y) ** 2))


@pytest.mark.parametrize("limit", [0.0, 1.0])
def test_continuous_at_the_special_cases(rng, limit):
    x = rng.uniform(0.1, 3.0, size=(6, 6))
    y = rng.uniform(0.1, 3.0, size=(6, 6))
    exact = mnmf.beta_divergence(x, y, limit)
    for offset in (1e-6, -1e-6):
        assert mnmf.beta_divergence(x, y, limit + offset) == pytest.approx(exact, rel=1e-4)


@pytest.mark.parametrize("beta", [-0.5, 0.0, 0.5, 1.0, 2.0])
def test_zero_only_when_equal_and_nonnegative(rng, beta):
    x = rng.uniform(0.1, 3.0, size=(6, 6))
    assert mnmf.beta_divergence(x, x, beta) == pytest.approx(0.0, abs=1e-12)
    assert mnmf.beta_divergence(x, 1.1 * x, beta) > 0


def test_itakura_saito_is_scale_invariant(rng):
    x, y = rng.uniform(0.1, 3, (5, 5)), rng.uniform(0.1, 3, (5, 5))
    assert mnmf.beta_divergence(1e6 * x, 1e6 * y, 0) == pytest.approx(mnmf.beta_divergence(x, y, 0))


@pytest.mark.parametrize("beta", [-1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0])
def test_silence_gives_finite_nonnegative_values(rng, beta):
    zeros = np.zeros((4, 4))
    y = rng.random((4, 4))
    for model in (y, zeros):
        value = mnmf.beta_divergence(zeros, model, beta)
        assert np.isfinite(value) and value >= 0
    mixed = rng.random((4, 4))
    mixed[0] = 0
    assert np.isfinite(mnmf.beta_divergence(mixed, y, beta))


def test_floor_convention_leaves_model_comparisons_unchanged(rng):
    """With zeros in V, the difference between two models is the exact IS difference."""
    x = rng.uniform(0.1, 2, (6, 6))
    x[:2] = 0
    y1, y2 = rng.uniform(0.1, 2, (2, 6, 6))
    difference = mnmf.beta_divergence(x, y1, 0) - mnmf.beta_divergence(x, y2, 0)
    exact = np.sum(x / y1 + np.log(y1)) - np.sum(x / y2 + np.log(y2))
    assert difference == pytest.approx(exact, rel=1e-10)


def test_mm_exponent():
    assert mnmf.mm_exponent(0) == 0.5
    assert mnmf.mm_exponent(-1) == pytest.approx(1 / 3)
    assert mnmf.mm_exponent(1) == mnmf.mm_exponent(1.5) == mnmf.mm_exponent(2) == 1
    assert mnmf.mm_exponent(3) == 0.5


@pytest.mark.parametrize("beta", [-0.5, 0.0, 0.5, 1.0, 2.0, 3.0])
def test_mu_ratios_match_definitions(rng, beta):
    V = rng.uniform(0.1, 2, (5, 7))
    V_hat = rng.uniform(0.1, 2, (5, 7))
    num, den = mu_ratios(V.copy(), V_hat.copy(), beta, out=np.empty_like(V))
    np.testing.assert_allclose(num, V * V_hat ** (beta - 2))
    if beta == 1:
        assert den is None
    else:
        np.testing.assert_allclose(den, V_hat ** (beta - 1))


def test_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        mnmf.beta_divergence(np.ones(3), np.ones(4), 0)
    with pytest.raises(ValueError, match="V_hat"):
        mnmf.beta_divergence(np.ones(3), np.array([1, np.nan, 1]), 0)
    with pytest.raises(ValueError, match="beta"):
        mnmf.beta_divergence(np.ones(3), np.ones(3), np.inf)
    with pytest.raises(ValueError, match="floor"):
        mnmf.beta_divergence(np.ones(3), np.ones(3), 0, floor=0.0)
    assert data_floor(np.zeros(3)) > 0
