"""Per-iteration time of IS-NMF (MU) against scikit-learn and against the BLAS bound.

For F=513, K=20, N ∈ {1000, 5000}, float32 and float64, all measured in one run:

- mnmf: ``mnmf.fit_nmf(V, K, beta=0, algorithm="mu", W=W0, H=H0, tol=0)`` with its
  default settings (MM exponent, cost checked every 10 iterations, normalization);
- scikit-learn: ``NMF(beta_loss="itakura-saito", solver="mu", init="custom", tol=0)``
  from the same W0, H0 (it also uses the MM exponent γ = 1/2 for IS);
- BLAS bound: the iteration's six F×K×N matrix products alone (W@H, Wᵀ@(V V̂⁻²),
  Wᵀ@V̂⁻¹, W@H again, (V V̂⁻²)@Hᵀ, V̂⁻¹@Hᵀ) on preallocated outputs — what an iteration
  would cost if every elementwise operation were free.

Per-iteration time = (time of n_long iterations − time of n_short) / (n_long − n_short),
median over repeats, so set-up and initialization cancel. The machine is shared and
noisy (±20 % absolute); the ratios, measured side by side, are what to read.

Usage: ``python benchmarks/bench_nmf.py [--repeats 5] [--quick]``
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings

import numpy as np

import mnmf

F, K = 513, 20


def per_iteration(run, n_short: int, n_long: int, repeats: int) -> float:
    """Median over repeats of (t(n_long) − t(n_short)) / (n_long − n_short)."""
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run(n_short)
        t1 = time.perf_counter()
        run(n_long)
        t2 = time.perf_counter()
        samples.append(((t2 - t1) - (t1 - t0)) / (n_long - n_short))
    return float(np.median(samples))


def blas_bound(V, W, H, repeats: int) -> float:
    """Seconds of the six matrix products of one IS MU iteration, median of repeats."""
    model = np.empty_like(V)
    ratio_num, ratio_den = np.empty_like(V), np.empty_like(V)
    ratio_num[...] = V
    ratio_den[...] = 1.0
    H_out = np.empty_like(H)
    W_out = np.empty_like(W)
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(10):
            np.matmul(W, H, out=model)
            np.matmul(W.T, ratio_num, out=H_out)
            np.matmul(W.T, ratio_den, out=H_out)
            np.matmul(W, H, out=model)
            np.matmul(ratio_num, H.T, out=W_out)
            np.matmul(ratio_den, H.T, out=W_out)
        samples.append((time.perf_counter() - t0) / 10)
    return float(np.median(samples))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="N=1000 only, 3 repeats")
    args = parser.parse_args()
    from sklearn import __version__ as sklearn_version
    from sklearn.decomposition import NMF

    frame_counts = [1000] if args.quick else [1000, 5000]
    repeats = 3 if args.quick else args.repeats
    print(
        f"# bench_nmf: F={F}, K={K}, IS MU; numpy {np.__version__}, scikit-learn "
        f"{sklearn_version}, {platform.processor() or platform.machine()}"
    )
    header = (
        f"{'N':>5} {'dtype':>7} | {'mnmf ms/it':>10} {'sklearn ms/it':>13} {'BLAS ms/it':>10} |"
        f" {'sklearn/mnmf':>12} {'bound/mnmf':>10}"
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

            def ours(n_iter, V=V, W0=W0, H0=H0):
                mnmf.fit_nmf(V, K, W=W0, H=H0, max_iter=n_iter, tol=0)

            def sklearn(n_iter, V=V, W0=W0, H0=H0):
                nmf = NMF(
                    K, init="custom", solver="mu", beta_loss="itakura-saito", max_iter=n_iter, tol=0
                )
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter
                    nmf.fit_transform(V, W=W0.copy(), H=H0.copy())

            n_short, n_long = (10, 40) if n_frames <= 1000 else (5, 20)
            t_ours = per_iteration(ours, n_short, n_long, repeats)
            t_sklearn = per_iteration(sklearn, n_short, n_long, repeats)
            t_bound = blas_bound(V, W0, H0, repeats)
            print(
                f"{n_frames:>5} {np.dtype(dtype).name:>7} | {1e3 * t_ours:>10.2f} "
                f"{1e3 * t_sklearn:>13.2f} {1e3 * t_bound:>10.2f} | "
                f"{t_sklearn / t_ours:>11.2f}x {t_bound / t_ours:>10.2f}"
            )
    print("targets: sklearn/mnmf >= 1.5x; bound/mnmf >= 0.8 for float32")


if __name__ == "__main__":
    main()
