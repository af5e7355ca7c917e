"""Block-parallel passes shared by the models: worker threads, and BLAS held meanwhile.

The models split their data into contiguous *chunks* of blocks (of frames or of
frequencies), one per worker thread; numpy's ufuncs and BLAS release the GIL, so the
threads share the cores without copies. BLAS must then run on one thread: its own
threads on top of ours oversubscribe the cores (measured 2× slower on 2 cores).

Why a fit holds BLAS at one thread from start to end rather than per pass: OpenBLAS's
idle worker threads busy-wait (a loop of ``nop``s since OpenBLAS 0.3.27, not
``sched_yield``) for 2²⁸ clock ticks — about 0.1 s — after every multithreaded call
before they sleep (``driver/others/blas_server.c``; ``openblas_set_num_threads`` does
not park them). A BLAS call that ran threaded between two passes of a fit would wake
them, and they would take a third of the cores from the next passes; on 2 cores the
fit's threads then run at 2/3 speed (benchmarks/RESULTS.md, bench_nmf "in a run").
Holding the limit for the whole fit keeps the fit's own BLAS calls (M-steps, costs,
normalizations) from waking them. The limit is a process-wide setting: other threads
of the process also get one BLAS thread while a parallel fit runs; it is restored
when the fit returns (:func:`blas_held`).

Spinning left over from BLAS work *before* the fit cannot be stopped from here without
a global change; the environment variable ``OPENBLAS_THREAD_TIMEOUT`` (read once, when
OpenBLAS loads) shortens it, and mnmf's command-line tools set it (docs/design.md §6).
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import lru_cache
from typing import TypeVar

import numpy as np
from threadpoolctl import ThreadpoolController

from mnmf._validation import positive_int

T = TypeVar("T")


def available_cpus() -> int:
    """CPUs this process may run on (respects affinity masks and containers)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


#: Frames (or frequencies) below which a block is not split further to give every thread
#: one (when the number of threads is left to the default).
MIN_BLOCK_ITEMS = 32

#: Working-set bytes of a block when the cache cannot be read: 3 MiB, the best of
#: 0.25-8 MiB on the development machine (1 MiB L2 per core, benchmarks/RESULTS.md).
FALLBACK_BLOCK_BYTES = 3 << 20


@lru_cache(maxsize=1)
def cache_block_bytes() -> int:
    """Working-set bytes of one block of a block-parallel pass, from the CPU's caches.

    3 × the per-core L2 cache (Linux sysfs), within [1, 8] MiB: measured on the 2-core
    AMD EPYC (1 MiB L2, 32 MiB shared L3), working sets of 2-4 MiB ran the IS-NMF MU
    kernel fastest — large enough that the small products' per-call overhead stays low,
    small enough that a block's three F×n arrays are still in cache when the next pass
    over the block reads them. Intel server cores have 1-2 MiB of L2 as well.
    :data:`FALLBACK_BLOCK_BYTES` where the cache size cannot be read.
    """
    level2 = _cache_size(level=2)
    if level2 is None:
        return FALLBACK_BLOCK_BYTES
    return int(np.clip(3 * level2, 1 << 20, 8 << 20))


def _cache_size(*, level: int) -> int | None:
    """Bytes of CPU 0's unified or data cache of ``level`` (sysfs), None when unknown."""
    root = "/sys/devices/system/cpu/cpu0/cache"
    try:
        entries = os.listdir(root)
    except OSError:
        return None
    for entry in sorted(entries):
        try:
            with open(f"{root}/{entry}/level") as file:
                if int(file.read()) != level:
                    continue
            with open(f"{root}/{entry}/type") as file:
                if file.read().strip() not in ("Unified", "Data"):
                    continue
            with open(f"{root}/{entry}/size") as file:
                text = file.read().strip()
        except (OSError, ValueError):
            continue
        units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
        try:
            if text[-1] in units:
                return int(text[:-1]) * units[text[-1]]
            return int(text)
        except (ValueError, IndexError):
            return None
    return None


def cache_blocks(
    n_items: int,
    bytes_per_item: int,
    *,
    n_threads: int | None,
    block_bytes: int | None = None,
) -> tuple[list[slice], list[np.ndarray]]:
    """Blocks along one axis (frames, or frequencies) and their chunks, one per worker.

    A block holds at most ``block_bytes`` (default :func:`cache_block_bytes`) at
    ``bytes_per_item`` per frame (or frequency); the number of blocks is a multiple of
    the workers and the blocks are of equal width (±1), so that every thread gets the
    same work — 1000 frames in blocks of 511 would give one thread twice the other's.
    """
    budget = cache_block_bytes() if block_bytes is None else block_bytes
    widest = max(1, budget // max(1, bytes_per_item))
    if n_threads is None:  # every CPU, unless the blocks would be tiny
        workers = max(1, min(available_cpus(), n_items // MIN_BLOCK_ITEMS))
    else:
        workers = max(1, min(positive_int(n_threads, name="n_threads"), n_items))
    n_blocks = -(-n_items // widest)  # ceil
    n_blocks = -(-n_blocks // workers) * workers  # a multiple of the workers
    n_blocks = min(n_blocks, n_items)
    edges = np.linspace(0, n_items, n_blocks + 1).round().astype(int)
    blocks = [slice(int(a), int(b)) for a, b in itertools.pairwise(edges)]
    return blocks, split_chunks(len(blocks), min(workers, len(blocks)))


def split_chunks(n_blocks: int, n_workers: int) -> list[np.ndarray]:
    """Contiguous runs of block indices, one per worker (none empty)."""
    return [c for c in np.array_split(np.arange(n_blocks), n_workers) if c.size]


@lru_cache(maxsize=4)
def _executor(n_workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="mnmf")


@lru_cache(maxsize=1)
def _blas_libraries():  # -> ThreadpoolController (BLAS libraries only)
    return ThreadpoolController().select(user_api="blas")


_holds = threading.local()


@contextmanager
def blas_held(active: bool = True) -> Iterator[None]:
    """Hold every BLAS library of the process at one thread inside the block.

    Re-entrant: only the outermost hold of a thread sets the limit and restores the
    settings it found. The limit goes through threadpoolctl, whose rule for a
    process-wide pool (OpenBLAS with pthreads) is that one thread at a time controls
    it: a fit held in another thread while one is held already runs under that hold,
    and once that hold ends, with BLAS's own threads. ``active=False`` does nothing.
    """
    if not active:
        yield
        return
    depth = getattr(_holds, "depth", 0)
    if depth == 0:
        limiter = _blas_libraries().limit(limits=1)
        limiter.__enter__()
        _holds.limiter = limiter
    _holds.depth = depth + 1
    try:
        yield
    finally:
        _holds.depth -= 1
        if _holds.depth == 0:
            limiter, _holds.limiter = _holds.limiter, None
            limiter.__exit__(None, None, None)


def map_chunks(work: Callable[[int], T], n_chunks: int) -> list[T]:
    """``[work(0), …, work(n_chunks − 1)]``, the chunks run by parallel threads.

    The calling thread takes chunk 0 itself rather than wait idle; BLAS is held at one
    thread meanwhile (already so inside a fit, see :func:`blas_held`). The results come
    back in chunk order, so sums over them do not depend on thread timing.
    """
    with blas_held():
        if n_chunks == 1:
            return [work(0)]
        others = [_executor(n_chunks - 1).submit(work, c) for c in range(1, n_chunks)]
        first = work(0)
        return [first, *(future.result() for future in others)]
