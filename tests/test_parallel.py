"""Block-parallel passes: BLAS held at one thread during a fit and restored after it,
and results that do not depend on the number of threads (issue 17)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import mnmf
from mnmf._parallel import blas_held, map_chunks
from tests.helpers import planted_convolutive, planted_spectrogram


def _blas_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


@pytest.fixture
def two_blas_threads():
    """BLAS set to 2 threads for the test (whatever the machine), then put back."""
    with threadpool_limits(limits=2, user_api="blas"):
        if not _blas_threads():
            pytest.skip("no BLAS library found by threadpoolctl")
        yield


def _fits(rng):
    V, *_ = planted_spectrogram(rng, n_freqs=30, n_frames=200)
    _, X, *_ = planted_convolutive(rng, n_freqs=30, n_frames=60)
    return {
        "nmf": lambda **kw: mnmf.fit_nmf(V, 3, max_iter=5, n_threads=2, rng=0, **kw),
        "nmf one thread": lambda **kw: mnmf.fit_nmf(V, 3, max_iter=5, n_threads=1, rng=0, **kw),
        "gains": lambda **kw: mnmf.fit_mnmf(X, 2, max_iter=5, rng=0, **kw),
        "convolutive": lambda **kw: mnmf.fit_mnmf(
            X, 2, spatial="convolutive", max_iter=5, n_threads=2, block_frequencies=8, rng=0,
            **kw,
        ),
    }  # fmt: skip


@pytest.mark.parametrize("name", ["nmf", "nmf one thread", "gains", "convolutive"])
def test_blas_held_during_a_fit_and_restored_after(two_blas_threads, rng, name):
    fit = _fits(rng)[name]
    seen = []
    fit(callbacks=[lambda info: seen.append(_blas_threads())])
    assert seen and all(threads == [1] * len(threads) for threads in seen)
    assert _blas_threads() == [2] * len(_blas_threads())

    def fail(info):
        raise RuntimeError("a callback that fails")

    with pytest.raises(RuntimeError, match="fails"):
        fit(callbacks=[fail])
    assert _blas_threads() == [2] * len(_blas_threads())  # restored on errors too


def test_blas_hold_is_reentrant(two_blas_threads):
    with blas_held():
        with blas_held():
            assert set(_blas_threads()) == {1}
        assert set(_blas_threads()) == {1}  # the inner exit does not restore
    assert set(_blas_threads()) == {2}
    with blas_held(active=False):
        assert set(_blas_threads()) == {2}


def test_a_fit_in_another_thread_restores_the_settings(rng):
    """threadpoolctl lets one thread at a time control OpenBLAS's pool (here none holds
    it): a fit in a worker thread holds and restores it as one in the main thread."""
    before = _blas_threads()
    if not before:
        pytest.skip("no BLAS library found by threadpoolctl")
    fit = _fits(rng)["convolutive"]
    seen, errors = [], []

    def run():
        try:
            fit(callbacks=[lambda info: seen.append(_blas_threads())])
        except Exception as error:  # reported below, not swallowed
            errors.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    assert not errors
    assert seen and all(set(threads) == {1} for threads in seen)
    assert _blas_threads() == before


def test_map_chunks_keeps_chunk_order():
    assert map_chunks(lambda chunk: chunk * 10, 5) == [0, 10, 20, 30, 40]


@pytest.mark.parametrize("n_mics, n_sources", [(2, 2), (3, 2)])
def test_convolutive_em_does_not_depend_on_threads_or_blocks(rng, n_mics, n_sources):
    _, X, *_ = planted_convolutive(rng, n_freqs=45, n_frames=70, n_mics=n_mics)
    options = {"spatial": "convolutive", "max_iter": 15, "tol": 0, "check_every": 1, "rng": 1}
    one = mnmf.fit_mnmf(X, n_sources, n_threads=1, **options)
    for threads, block in [(2, 8), (3, 45), (4, 5)]:
        other = mnmf.fit_mnmf(X, n_sources, n_threads=threads, block_frequencies=block, **options)
        np.testing.assert_allclose(other.cost, one.cost, rtol=1e-10)
        np.testing.assert_allclose(other.W, one.W, rtol=1e-9)
        np.testing.assert_allclose(other.A, one.A, rtol=1e-9, atol=1e-12)


def test_the_single_channel_em_leaves_blas_its_threads(two_blas_threads, rng):
    """SAGE works on whole arrays on one thread of its own: BLAS keeps its threads."""
    V, *_ = planted_spectrogram(rng, n_freqs=30, n_frames=80)
    seen = []
    callback = [lambda info: seen.append(_blas_threads())]
    mnmf.fit_nmf(V, 3, algorithm="em", max_iter=3, rng=0, callbacks=callback)
    assert seen and all(set(threads) == {2} for threads in seen)
