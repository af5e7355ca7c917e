"""Per-iteration time of IS-NMF (MU) against scikit-learn and against the BLAS bound.

For F=513, K=20, N ∈ {1000, 5000}, float32 and float64, all measured in one run:

- mnmf: ``mnmf.fit_nmf(V, K, beta=0, algorithm="mu", W=W0, H=H0, tol=0)`` (MM
  exponent, normalization), timed twice: like for like with scikit-learn at tol=0,
  which never evaluates its loss (``check_every`` beyond the run: the cost only at the
  start and the end, which cancel in the difference below), and with the default
  ``check_every=10`` (its stopping rule's cost evaluations included);
- scikit-learn: ``NMF(beta_loss="itakura-saito", solver="mu", init="custom", tol=0)``
  from the same W0, H0 (it also uses the MM exponent γ = 1/2 for IS);
- BLAS bound: the iteration's six F×K×N matrix products alone (W@H, Wᵀ@(V V̂⁻²),
  Wᵀ@V̂⁻¹, W@H again, (V V̂⁻²)@Hᵀ, V̂⁻¹@Hᵀ) on preallocated outputs — what an iteration
  would cost if every elementwise operation were free.

Two scenarios, in the same run:

- **alone**: no BLAS work near the fit: each timed fit follows 0.25 s of elementwise
  numpy work on one thread, long enough for OpenBLAS's workers to fall asleep;
- **in a run**: every timed fit preceded (untimed) by the BLAS work a real run
  interleaves with its fits — a mir_eval BSS Eval call, then a scikit-learn NMF fit
  and a 1500×1500 matmul, multithreaded, last (the scores, the peers, the STFT):
  OpenBLAS's worker threads keep spinning for about 0.1 s after such work and compete
  for the cores with whatever runs next (docs/design.md §6). Run it with
  ``OPENBLAS_THREAD_TIMEOUT=20`` in the environment to see the spin shortened as
  mnmf's entry points do; the header says which.

Per-iteration time = (time of n_long iterations − time of n_short) / (n_long − n_short),
so set-up and initialization cancel. Each repeat measures the three side by side and
the table shows medians over repeats (ratios, like for like: median of per-repeat
ratios, with their range). The machine is shared and noisy (±20 % absolute); the ratios
are what to read.

The header names the CPU model and each BLAS library threadpoolctl finds (its API,
version, kernel architecture and threads): ratios hold per CPU family and BLAS kernel.

``--profile`` instead prints where one block's work goes (its matrix products and its
elementwise passes, one thread) and how elementwise numpy scales with a second thread.
``--block-sizes 0.25 0.5 1 2 3 4 6 8`` instead prints mnmf's per-iteration time (ms)
for each block working set, the data behind ``mnmf._parallel.cache_block_bytes``.

Usage: ``python benchmarks/bench_nmf.py [--repeats 5] [--quick]
[--scenarios alone in-a-run] [--block-sizes MIB ...] [--profile]``
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np

import mnmf
import mnmf._parallel

F, K = 513, 20
SCENARIOS = ("alone", "in-a-run")


def per_iteration(run, n_short: int, n_long: int, before=None) -> float:
    """(t(n_long) − t(n_short)) / (n_long − n_short): set-up and init cancel out.

    ``before()``, when given, runs untimed right before each of the two timed runs.
    """
    if before is not None:
        before()
    t0 = time.perf_counter()
    run(n_short)
    elapsed_short = time.perf_counter() - t0
    if before is not None:
        before()
    t1 = time.perf_counter()
    run(n_long)
    elapsed_long = time.perf_counter() - t1
    return (elapsed_long - elapsed_short) / (n_long - n_short)


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux; platform's guess elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_libraries() -> list[str]:
    """Each BLAS threadpoolctl finds: API, version, kernel (architecture), threads."""
    from threadpoolctl import threadpool_info

    return [
        f"{pool.get('internal_api')} {pool.get('version')} kernel {pool.get('architecture')} "
        f"{pool.get('num_threads')} threads ({pool.get('threading_layer', '?')})"
        for pool in threadpool_info()
        if pool.get("user_api") == "blas"
    ]


def blas_work_of_a_run():
    """The multithreaded BLAS work a run does between fits (see the module docstring)."""
    import mir_eval
    from sklearn.decomposition import NMF

    rng = np.random.default_rng(1)
    V = rng.gamma(0.5, size=(F, 400)) + 1e-3
    a = rng.standard_normal((1500, 1500))
    references = rng.standard_normal((2, 8000))
    estimates = references + 0.3 * rng.standard_normal((2, 8000))

    def work() -> None:
        # mir_eval first: it runs long enough (single-threaded) for OpenBLAS's workers
        # to fall asleep; the threaded BLAS calls come last, right before the fit, as
        # an STFT or a scikit-learn fit would.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # FutureWarning: deprecated, still there < 0.9
            mir_eval.separation.bss_eval_sources(references, estimates)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning
            NMF(K, init="random", solver="mu", max_iter=50, random_state=0).fit(V)
        a @ a

    return work


_BUSY = np.linspace(0.0, 1.0, 1 << 18)


def settle() -> None:
    """0.25 s of work without BLAS (elementwise numpy on this thread): OpenBLAS's
    workers fall asleep (their spin lasts about 0.1 s) while the CPU stays busy, as
    it does in a run (a sleep instead lets the CPU idle, and the next fit then starts
    slower for reasons of its own)."""
    end = time.perf_counter() + 0.25
    while time.perf_counter() < end:
        np.sin(_BUSY)


def blas_bound(V, W, H) -> float:
    """Seconds of the six matrix products of one IS MU iteration (mean of 10)."""
    model = np.empty_like(V)
    ratio_num, ratio_den = V.copy(), np.ones_like(V)
    H_out = np.empty_like(H)
    W_out = np.empty_like(W)
    t0 = time.perf_counter()
    for _ in range(10):
        np.matmul(W, H, out=model)
        np.matmul(W.T, ratio_num, out=H_out)
        np.matmul(W.T, ratio_den, out=H_out)
        np.matmul(W, H, out=model)
        np.matmul(ratio_num, H.T, out=W_out)
        np.matmul(ratio_den, H.T, out=W_out)
    return (time.perf_counter() - t0) / 10


def block_sweep(sizes_mib: list[float], *, repeats: int) -> None:
    """mnmf's IS MU per-iteration time for each block working set (the cache rule's data)."""
    from mnmf.algorithms.nmf import build_nmf_model
    from mnmf.sources import NMFSource

    print(
        f"# block sweep: F={F}, K={K}, IS MU, median of {repeats}; CPU {cpu_model()}; "
        f"default block {mnmf._parallel.cache_block_bytes() >> 10} KiB"
    )
    print(f"{'N':>5} {'dtype':>7} | " + " ".join(f"{size:>6g}MiB" for size in sizes_mib))
    for n_frames in (1000, 5000):
        for dtype in (np.float32, np.float64):
            rng = np.random.default_rng(0)
            W_true, H_true = rng.gamma(0.5, size=(F, K)), rng.gamma(0.5, size=(K, n_frames))
            V = ((W_true @ H_true) * rng.exponential(size=(F, n_frames))).astype(dtype)
            cells = []
            for size in sizes_mib:

                def ours(n_iter, size=size, V=V):
                    model = build_nmf_model(V, NMFSource(K), block_bytes=int(size * 2**20))
                    mnmf.run(model, max_iter=n_iter, tol=0, check_every=10**9, rng=0)

                samples = [per_iteration(ours, 10, 50, settle) for _ in range(repeats)]
                cells.append(f"{1e3 * float(np.median(samples)):>9.2f}")
            print(f"{n_frames:>5} {np.dtype(dtype).name:>7} | " + " ".join(cells), flush=True)


def _block_operations(dtype, n_frames: int, rng) -> dict:
    """The operations of one block's MU iteration on an (F, n) block, as callables."""
    W, H = rng.random((F, K)).astype(dtype), rng.random((K, n_frames)).astype(dtype)
    V = rng.random((F, n_frames)).astype(dtype)
    work = np.empty((2, F, n_frames), dtype)
    frame_major = np.empty((n_frames, K), dtype)
    both = np.empty((2 * F, K), dtype)
    return {
        "W @ H": lambda: np.matmul(W, H, out=work[0]),
        "+ floor": lambda: np.add(work[0], dtype(1e-9), out=work[0]),
        "divide(1, x)": lambda: np.divide(dtype(1), work[0], out=work[0]),
        "square": lambda: np.square(work[0], out=work[1]),
        "* V": lambda: np.multiply(work[1], V, out=work[1]),
        "ratio.T @ W": lambda: np.matmul(work[1].T, W, out=frame_major),
        "(2F, n) @ H.T": lambda: np.matmul(work.reshape(2 * F, n_frames), H.T, out=both),
    }


def _elementwise_loop(a, b, out) -> None:
    for _ in range(4000):
        np.multiply(a, b, out=out)
        np.add(out, a, out=out)


def block_profile(n_frames: int = 500, repeats: int = 300) -> None:
    """Where one block's MU work goes, single-threaded: its products and its elementwise
    passes, timed one by one on an (F, n) block (n = 500: a thread's block at N = 1000)."""
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    print(f"# block profile: F={F}, K={K}, n={n_frames}, one thread, µs per operation")
    for dtype in (np.float32, np.float64):
        seconds = {}
        with threadpool_limits(limits=1, user_api="blas"):
            for name, operation in _block_operations(dtype, n_frames, rng).items():
                operation()
                t0 = time.perf_counter()
                for _ in range(repeats):
                    operation()
                seconds[name] = (time.perf_counter() - t0) / repeats
        # One iteration of a block: the model twice, H's two products, W's one product;
        # the four elementwise passes twice.
        products = 2 * seconds["W @ H"] + 2 * seconds["ratio.T @ W"] + seconds["(2F, n) @ H.T"]
        passes = 2 * sum(seconds[name] for name in ("+ floor", "divide(1, x)", "square", "* V"))
        cells = "  ".join(f"{name} {1e6 * value:.1f}" for name, value in seconds.items())
        print(
            f"{np.dtype(dtype).name}: {cells}\n  per block and iteration: products "
            f"{1e6 * products:.0f} µs, elementwise {1e6 * passes:.0f} µs, products' share "
            f"{products / (products + passes):.2f}"
        )
    # How elementwise numpy scales with a second thread on this machine.
    a, b = rng.random((64, 316)), rng.random((64, 316))
    outs = [np.empty_like(a), np.empty_like(a)]
    t0 = time.perf_counter()
    _elementwise_loop(a, b, outs[0])
    _elementwise_loop(a, b, outs[1])
    sequential = time.perf_counter() - t0
    with ThreadPoolExecutor(2) as pool:
        t0 = time.perf_counter()
        for future in [pool.submit(_elementwise_loop, a, b, out) for out in outs]:
            future.result()
        parallel = time.perf_counter() - t0
    print(f"elementwise numpy (64 x 316 arrays), 2 threads over 1: {sequential / parallel:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=None, help="default 7")
    parser.add_argument(
        "--quick", action="store_true", help="N=1000 only (3 repeats unless --repeats is given)"
    )
    parser.add_argument(
        "--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS),
        help="alone, and/or each timed fit preceded by a run's BLAS work (default: both)",
    )  # fmt: skip
    parser.add_argument(
        "--block-sizes", nargs="+", type=float, metavar="MIB",
        help="instead: mnmf's per-iteration time with each block working set (MiB)",
    )  # fmt: skip
    parser.add_argument(
        "--profile", action="store_true",
        help="instead: where one block's work goes (products vs elementwise passes)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.profile:
        block_profile()
        return
    if args.block_sizes:
        block_sweep(args.block_sizes, repeats=args.repeats or 5)
        return
    from sklearn import __version__ as sklearn_version
    from sklearn.decomposition import NMF

    frame_counts = [1000] if args.quick else [1000, 5000]
    repeats = args.repeats or (3 if args.quick else 7)
    work = blas_work_of_a_run()
    work()  # loads every library the work uses, so that the header lists their BLAS
    print(
        f"# bench_nmf: F={F}, K={K}, IS MU; numpy {np.__version__}, scikit-learn "
        f"{sklearn_version}; CPU {cpu_model()}, {mnmf._parallel.available_cpus()} "
        f"available; BLAS: {'; '.join(blas_libraries()) or 'none found'}; "
        f"OPENBLAS_THREAD_TIMEOUT={os.environ.get('OPENBLAS_THREAD_TIMEOUT', 'unset')}; "
        f"block {mnmf._parallel.cache_block_bytes() >> 10} KiB"
    )
    header = (
        f"{'scenario':>9} {'N':>5} {'dtype':>7} | {'mnmf ms/it':>10} {'(check=10)':>12} "
        f"{'sklearn ms/it':>13} {'BLAS ms/it':>10} | {'sklearn/mnmf':>12} {'bound/mnmf':>10} "
        "| range over repeats"
    )
    print(header)
    print("-" * len(header))
    for n_frames in frame_counts:
        for dtype in (np.float32, np.float64):
            rng = np.random.default_rng(0)
            W_true = rng.gamma(0.5, size=(F, K))
            H_true = rng.gamma(0.5, size=(K, n_frames))
            V = ((W_true @ H_true) * rng.exponential(size=(F, n_frames))).astype(dtype)
            W0 = rng.uniform(0.5, 1.5, (F, K)).astype(dtype)
            H0 = rng.uniform(0.5, 1.5, (K, n_frames)).astype(dtype) * dtype(V.mean() / K)

            def ours(n_iter, V=V, W0=W0, H0=H0, check_every=10**9):
                mnmf.fit_nmf(V, K, W=W0, H=H0, max_iter=n_iter, tol=0, check_every=check_every)

            def ours_default(n_iter):
                ours(n_iter, check_every=10)

            def sklearn(n_iter, V=V, W0=W0, H0=H0):
                nmf = NMF(
                    K, init="custom", solver="mu", beta_loss="itakura-saito", max_iter=n_iter, tol=0
                )
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter
                    nmf.fit_transform(V, W=W0.copy(), H=H0.copy())

            # 10 and 60 iterations at N = 1000, as issue 17 measured it.
            n_short, n_long = (10, 60) if n_frames <= 1000 else (10, 40)
            # Each repeat times the contenders, in both scenarios, side by side, so a
            # burst of load on the shared machine hits all of them; ratios are medians
            # of per-repeat ratios.
            rows: dict[str, list[tuple[float, ...]]] = {scenario: [] for scenario in args.scenarios}
            for _ in range(repeats):
                for scenario in args.scenarios:
                    before = work if scenario == "in-a-run" else settle
                    t_ours = per_iteration(ours, n_short, n_long, before)
                    t_sklearn = per_iteration(sklearn, n_short, n_long, before)
                    before()
                    t_bound = blas_bound(V, W0, H0)
                    t_default = per_iteration(ours_default, n_short, n_long, before)
                    rows[scenario].append(
                        (t_ours, t_default, t_sklearn, t_bound, t_sklearn / t_ours,
                         t_bound / t_ours)
                    )  # fmt: skip
            name = np.dtype(dtype).name
            for scenario, scenario_rows in rows.items():
                table = np.array(scenario_rows)
                t_ours, t_default, t_sklearn, t_bound, speedup, fraction = np.median(table, axis=0)
                low, high = np.min(table[:, 4:], axis=0), np.max(table[:, 4:], axis=0)
                print(
                    f"{scenario:>9} {n_frames:>5} {name:>7} | {1e3 * t_ours:>10.2f} "
                    f"{1e3 * t_default:>12.2f} "
                    f"{1e3 * t_sklearn:>13.2f} {1e3 * t_bound:>10.2f} | "
                    f"{speedup:>11.2f}x {fraction:>10.2f} | "
                    f"{low[0]:.2f}-{high[0]:.2f}x  {low[1]:.2f}-{high[1]:.2f}",
                    flush=True,
                )
            if len(rows) == 2:
                slower = np.array(rows["in-a-run"])[:, 0] / np.array(rows["alone"])[:, 0]
                print(
                    f"{'':>17} | mnmf in a run / alone: {np.median(slower):.2f} "
                    f"(range {slower.min():.2f}-{slower.max():.2f})",
                    flush=True,
                )
    print(
        "targets: sklearn/mnmf >= 1.5x in both scenarios; bound/mnmf >= 0.8 (0.85 on Intel's "
        "SkylakeX kernel) for float32; mnmf in a run within 10 % of alone (ratio <= 1.10)"
    )


if __name__ == "__main__":
    main()
