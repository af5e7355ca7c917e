"""Block-sparse activations for the fine DJ-mix passes (mnmf.djmix.sparse)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndimage
import scipy.sparse

import mnmf
import mnmf.djmix.decompose as decompose
import mnmf.djmix.sparse as sparse
from mnmf.algorithms.nmf import build_nmf_model
from mnmf.djmix.sparse import BandedNMFSource
from mnmf.engine import run


def banded_problem(seed: int = 0, F: int = 24, K_fixed: int = 50, N: int = 160):
    """Fixed templates with a diagonal band (and a scattered patch), 2 free columns."""
    rng = np.random.default_rng(seed)
    K = K_fixed + 2
    W = rng.random((F, K))
    W /= W.sum(axis=0)
    mask = np.zeros((K, N), dtype=bool)
    for n in range(N):
        centre = int(n * K_fixed / N)
        mask[max(0, centre - 3) : centre + 4, n] = True
    mask[rng.integers(0, K_fixed, 40), rng.integers(0, N, 40)] = True  # scattered entries
    mask[:, 70:80] = False  # an empty stretch
    mask[K_fixed:] = True
    H = rng.random((K, N)) * mask
    V = rng.random((F, K)) @ (rng.random((K, N)) * mask) + 0.01
    fixed = np.zeros(K, dtype=bool)
    fixed[:K_fixed] = True
    return V, W, H, mask, fixed


@pytest.mark.parametrize("beta", [0.0, 1.0, 0.5])
def test_sparse_fit_equals_dense_fit(beta):
    V, W, H, mask, fixed = banded_problem()
    dense = mnmf.fit_nmf(
        V, W.shape[1], W=W, fix_W=fixed, H=H, H_mask=mask, beta=beta, max_iter=60, tol=0,
        n_threads=1,
    )  # fmt: skip
    source = BandedNMFSource(W, scipy.sparse.csc_array(H), fix_W=fixed)
    fit = mnmf.fit_nmf(
        V, source_model=source, algorithm="sparse-mu", beta=beta, max_iter=60, tol=0,
        n_threads=2,
    )  # fmt: skip
    assert isinstance(fit.H, scipy.sparse.csc_array)
    H_sparse = fit.H.toarray()
    assert np.max(np.abs(H_sparse - dense.H)) <= 1e-10 * np.abs(dense.H).max()
    np.testing.assert_allclose(fit.W, dense.W, rtol=1e-10, atol=1e-14)
    np.testing.assert_array_equal(fit.W[:, fixed], W[:, fixed])  # fixed: bit-identical
    np.testing.assert_allclose(fit.cost, dense.cost, rtol=1e-10)
    assert np.all(H_sparse[~mask] == 0)
    assert np.all(np.diff(fit.cost) <= 1e-9 * fit.cost[0])  # MM: never increases


@pytest.mark.parametrize("ratio", [0.0, 1e9])  # every tile entry by entry / every tile dense
def test_blocks_and_tile_kinds_give_the_same_numbers(monkeypatch, ratio):
    V, W, H, mask, fixed = banded_problem(seed=1, N=300)
    dense = mnmf.fit_nmf(
        V, W.shape[1], W=W, fix_W=fixed, H=H, H_mask=mask, max_iter=30, tol=0, n_threads=1
    )
    monkeypatch.setattr(sparse, "DENSE_TILE_RATIO", ratio)
    source = BandedNMFSource(W, scipy.sparse.csc_array(H), fix_W=fixed)
    # Small blocks of frames (not multiples of the tile width), shared by two threads.
    model = build_nmf_model(
        V, source, algorithm="sparse-mu", block_bytes=24 * 3 * 8 * 45, n_threads=2
    )
    assert len(model.blocks) > 4
    fit = run(model, max_iter=30, tol=0)
    H_sparse = fit.params["H"].toarray()
    assert np.max(np.abs(H_sparse - dense.H)) <= 1e-10 * np.abs(dense.H).max()


def test_wrong_pairings_are_refused():
    V, W, H, _, fixed = banded_problem()
    source = BandedNMFSource(W, scipy.sparse.csc_array(H), fix_W=fixed)
    with pytest.raises(ValueError, match="sparse-mu"):
        mnmf.fit_nmf(V, source_model=source, max_iter=1)
    with pytest.raises(ValueError, match="BandedNMFSource"):
        mnmf.fit_nmf(V, 3, algorithm="sparse-mu", max_iter=1)
    with pytest.raises(ValueError, match="fixed"):
        BandedNMFSource(W, H, fix_W=False)
    with pytest.raises(ValueError, match="rows"):
        BandedNMFSource(W, H[:-1], fix_W=fixed)


def _dense_filter(H_gain, *, max_speed_deviation, line_frames, threshold_db):
    """The whole-matrix filter (the reference the cropped one must equal)."""
    footprints = decompose.line_footprints(max_speed_deviation, line_frames)
    enhanced = []
    for H in H_gain:
        opened = np.zeros_like(H)
        for footprint in footprints:
            np.maximum(opened, ndimage.grey_opening(H, footprint=footprint), out=opened)
        enhanced.append(ndimage.gaussian_filter(opened, decompose.BLUR_SIGMA, mode="constant"))
    overall = max(float(E.max(initial=0.0)) for E in enhanced)
    for E in enhanced:
        threshold = max(float(E.max(initial=0.0)), overall) * 10 ** (threshold_db / 10)
        E[threshold > E] = 0.0
    return enhanced


def _assemble(crops, shape):
    out = np.zeros(shape)
    for crop in crops:
        assert not out[crop.rows, crop.cols].any()  # crops never overlap
        values = crop.values
        out[crop.rows, crop.cols] = values.toarray() if scipy.sparse.issparse(values) else values
    return out


def test_cropped_filter_and_resize_equal_whole_matrix():
    rng = np.random.default_rng(3)
    bands = []
    for rows, cols in ((60, 200), (40, 200)):
        H = np.zeros((rows, cols))
        for n in range(cols):  # two paths, one touching the edges, and an isolated blob
            if n < 90:
                H[min(rows - 1, n // 2), n] = rng.uniform(0.5, 1)
            if n > 150:
                H[max(0, rows - 1 - (n - 150)), n] = rng.uniform(0.5, 1)
        H[20:23, 120:124] = rng.uniform(0.001, 0.01, (3, 4))
        H = ndimage.gaussian_filter(H, 1.0) * (rng.random(H.shape) < 0.9)
        bands.append(H)
    options = {"max_speed_deviation": 0.1, "line_frames": 5, "threshold_db": -40.0}
    expected = _dense_filter([b.copy() for b in bands], **options)
    crops = decompose._filter_bands([scipy.sparse.csc_array(b) for b in bands], **options)
    for E, track_crops, band in zip(expected, crops, bands, strict=True):
        got = _assemble(track_crops, band.shape)
        np.testing.assert_array_equal(got, E)
        # Resize onto a grid of half the hop (and onto a grid of 0.6 times the hop).
        for new_hop, shape in ((0.5, (2 * band.shape[0], 2 * band.shape[1])), (0.6, (90, 310))):
            rows = np.minimum(np.arange(shape[0]) * new_hop, band.shape[0] - 1)
            cols = np.minimum(np.arange(shape[1]) * new_hop, band.shape[1] - 1)
            grid = np.meshgrid(rows, cols, indexing="ij")
            whole = ndimage.map_coordinates(E, grid, order=1, mode="nearest")
            resized = decompose._resize_crops(track_crops, 1.0, new_hop, *shape)
            np.testing.assert_allclose(_assemble(resized, shape), whole, rtol=1e-12, atol=0)


def planted(seed: int, seconds: float, fs: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * fs)
    t = np.arange(n) / fs
    x = np.zeros(n)
    note = int(0.25 * fs)
    for start in range(0, n, note):
        f0 = rng.uniform(150, 1200)
        seg = t[start : start + note] - t[start]
        x[start : start + note] = np.exp(-seg * rng.uniform(2, 10)) * np.sin(2 * np.pi * f0 * seg)
    return x


def test_decompose_sparse_passes_equal_dense_passes(monkeypatch):
    fs = 8000
    a, b = planted(0, 14.0, fs), planted(1, 14.0, fs)
    mix = 0.6 * a
    mix[: 4 * fs] += 0.4 * b[6 * fs : 10 * fs]  # b's middle, then a alone
    options = {"hops": (1.0, 0.5, 0.25), "overlap": 4, "n_mels": 32, "max_iter": 80, "tol": 0.0}
    tracks = [("a", a, fs), ("b", b, fs)]
    results = {}
    for flag in (True, False):
        monkeypatch.setattr(decompose, "SPARSE_PASSES", flag)
        results[flag] = decompose.decompose_mix(mix, tracks, fs, rng=0, refine=False, **options)
    for fine, reference in zip(results[True].passes, results[False].passes, strict=True):
        for H, H_ref, mask, mask_ref in zip(
            fine.H, reference.H, fine.mask, reference.mask, strict=True
        ):
            np.testing.assert_array_equal(mask.toarray(), mask_ref.toarray())
            dense = H_ref.toarray()
            assert np.max(np.abs(H.toarray() - dense)) <= 1e-8 * max(dense.max(), 1e-300)
        np.testing.assert_allclose(fine.cost, reference.cost, rtol=1e-8)
    np.testing.assert_allclose(
        results[True].position_local_com, results[False].position_local_com, rtol=1e-8
    )
    # The band is what the fine passes store: far below the dense size.
    final = results[True].passes[-1]
    assert sum(H.nnz for H in final.H) < 0.5 * sum(np.prod(H.shape) for H in final.H)


def test_float32_audio_gives_the_float64_result_of_its_values():
    fs = 8000
    a = planted(2, 8.0, fs).astype(np.float32)
    mix = (0.7 * a).astype(np.float32)
    options = {"hops": (1.0, 0.5), "overlap": 4, "n_mels": 24, "max_iter": 30, "refine": False}
    single = decompose.decompose_mix(mix, [("a", a, fs)], fs, rng=0, **options)
    double = decompose.decompose_mix(
        mix.astype(np.float64), [("a", a.astype(np.float64), fs)], fs, rng=0, **options
    )
    for p, q in zip(single.passes, double.passes, strict=True):
        np.testing.assert_array_equal(p.H[0].toarray(), q.H[0].toarray())
    np.testing.assert_array_equal(single.tracks[0].gain, double.tracks[0].gain)


def test_pass_without_surviving_band_or_noise_part_runs():
    fs = 8000
    a = planted(3, 6.0, fs)
    options = {"hops": (1.0, 0.5), "overlap": 4, "n_mels": 24, "max_iter": 10, "refine": False}
    silent = decompose.decompose_mix(
        np.zeros_like(a), [("a", a, fs)], fs, rng=0, noise_components=0, **options
    )
    assert silent.passes[-1].H[0].nnz == 0
    assert not silent.tracks[0].present
