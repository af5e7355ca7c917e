"""The fast convolutive EM equals the reference implementation it replaced (issue 17).

``tests/reference_convolutive_em.py`` holds the EM as it was before its rewrite; on
planted problems (several I, J, noise modes, a fixed dictionary, zero activations) both
run from the same start and must give the same costs and parameters to 1e-10 relative
in float64.
"""

from __future__ import annotations

import numpy as np
import pytest

from mnmf import fit_mnmf
from tests.helpers import planted_convolutive
from tests.reference_convolutive_em import ReferenceConvolutiveEM


def _pair(X, n_sources, *, spatial_options=None, **options):
    spatial_options = spatial_options or {}
    common = {"algorithm": "em", "tol": 0, "check_every": 1, "rng": 3} | options
    fast = fit_mnmf(X, n_sources, spatial="convolutive", **spatial_options, **common)
    reference = fit_mnmf(X, n_sources, spatial=ReferenceConvolutiveEM(**spatial_options), **common)
    return fast, reference


def _assert_same(fast, reference, X):
    np.testing.assert_allclose(fast.cost, reference.cost, rtol=1e-10)
    for name in ("W", "H", "A"):
        a, b = fast.params[name], reference.params[name]
        scale = np.max(np.abs(b))
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10 * scale, err_msg=name)
    # The noise is a difference, diag(R_xx − A R_xsᴴ − R_xs Aᴴ + A R_ss Aᴴ), of terms of
    # the data's power: its rounding is relative to that power, not to its own value.
    power = np.mean(np.abs(X) ** 2)
    np.testing.assert_allclose(
        fast.params["noise"], reference.params["noise"], rtol=1e-10, atol=1e-10 * power
    )


@pytest.mark.parametrize(
    "n_mics, n_sources", [(1, 1), (1, 2), (2, 1), (2, 2), (2, 3), (3, 2), (4, 3)]
)
def test_equal_to_reference(n_mics, n_sources):
    rng = np.random.default_rng(10 * n_mics + n_sources)
    _, X, *_ = planted_convolutive(rng, n_mics=n_mics, n_sources=n_sources, n_freqs=70)
    fast, reference = _pair(
        X, n_sources, n_components=3, max_iter=25, spatial_options={"block_frequencies": 16}
    )
    _assert_same(fast, reference, X)


def test_equal_to_reference_annealed_fixed_and_masked():
    rng = np.random.default_rng(7)
    _, X, W, *_ = planted_convolutive(rng, n_freqs=50, n_frames=90)
    H_mask = np.ones((6, X.shape[1]), bool)
    H_mask[1, 20:50] = False
    fast, reference = _pair(
        X,
        2,
        n_components=3,
        max_iter=30,
        W=W[:, :1],
        fix_W=True,
        H_mask=H_mask,
        spatial_options={"noise": "anneal", "anneal_iter": 10, "noise_end": 1e-3},
    )
    _assert_same(fast, reference, X)
    assert np.all(fast.H[1, 20:50] == 0)


# ------------------------------------------------------------------ gains and FastMNMF


@pytest.mark.parametrize(
    "spatial, options",
    [
        ("gains", {}),
        ("gains", {"mixing": "instantaneous"}),
        ("gains", {"fix_Q": True, "Q": "given"}),
        ("fastmnmf", {}),
    ],
)
@pytest.mark.parametrize("n_threads", [1, 3])
def test_block_parallel_mu_equals_reference(spatial, options, n_threads):
    """The gains model's frame blocks and threads (and FastMNMF's, which runs its step)
    give the numbers of the whole-array step they replaced."""
    from mnmf.spatial import SPATIAL_MODELS
    from tests.helpers import planted_mixture
    from tests.reference_gains import ReferenceFastMNMFModel, ReferenceGainsModel

    rng = np.random.default_rng(4)
    images, *_ = planted_mixture(rng, n_freqs=33, n_frames=301, n_mics=3)
    X = images.sum(0)
    # Sensor noise: without it 3 mics hear a rank-2 mixture, FastMNMF's U_fm are singular
    # and its D update turns rounding into differences of 1e-6 (not a test of the step).
    X = X + 0.05 * np.sqrt(np.mean(np.abs(X) ** 2)) * (
        rng.standard_normal(X.shape) + 1j * rng.standard_normal(X.shape)
    )
    options = dict(options)
    if options.get("Q") == "given":
        options["Q"] = rng.uniform(0.2, 1.0, (3, 2, 33))
    reference_class = ReferenceFastMNMFModel if spatial == "fastmnmf" else ReferenceGainsModel
    common = {"n_components": 3, "max_iter": 25, "tol": 0, "check_every": 1, "rng": 2}
    fast = fit_mnmf(
        X, 2, spatial=SPATIAL_MODELS.get(spatial)(**options, n_threads=n_threads), **common
    )
    reference = fit_mnmf(X, 2, spatial=reference_class(**options), **common)
    np.testing.assert_allclose(fast.cost, reference.cost, rtol=1e-10)
    for name in reference.params:
        np.testing.assert_allclose(
            fast.params[name], reference.params[name], rtol=1e-9, atol=1e-12, err_msg=name
        )
