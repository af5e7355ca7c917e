"""Per-iteration time of smooth IS-NMF against plain IS-NMF (MU), same data and start.

F=513, K=20, N=5000 (issue target: smooth ≤ 1.5× plain per iteration), float32 and
float64, λ = 10. Per-iteration time = (t(n_long) − t(n_short)) / (n_long − n_short),
median over repeats, the two measured side by side in each repeat; the ratio column is
the median of per-repeat ratios (the machine is shared and noisy: read the ratios).
Both run at tol=0 with the cost evaluated only at the start and the end (which cancel).

Usage: ``python benchmarks/bench_smooth.py [--repeats 5]``
"""

from __future__ import annotations

import argparse

import numpy as np
from bench_nmf import per_iteration

import mnmf

F, K, N = 513, 20, 5000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--smoothness", type=float, default=10.0)
    args = parser.parse_args()
    print(f"# bench_smooth: F={F}, K={K}, N={N}, IS MU, λ={args.smoothness:g}")
    print(f"{'dtype':>7} | {'plain ms/it':>11} {'smooth ms/it':>12} | {'smooth/plain':>12} | range")
    for dtype in (np.float32, np.float64):
        rng = np.random.default_rng(0)
        V = (
            (rng.gamma(0.5, size=(F, K)) @ rng.gamma(0.5, size=(K, N)))
            * rng.exponential(size=(F, N))
        ).astype(dtype)
        W0 = rng.uniform(0.5, 1.5, (F, K)).astype(dtype)
        H0 = rng.uniform(0.5, 1.5, (K, N)).astype(dtype) * dtype(V.mean() / K)

        def plain(n_iter, V=V, W0=W0, H0=H0):
            mnmf.fit_nmf(V, K, W=W0, H=H0, max_iter=n_iter, tol=0, check_every=10**9)

        def smooth(n_iter, V=V, W0=W0, H0=H0):
            mnmf.fit_nmf(
                V,
                K,
                W=W0,
                H=H0,
                max_iter=n_iter,
                tol=0,
                check_every=10**9,
                source_model="smooth",
                smoothness=args.smoothness,
            )

        rows = []
        for _ in range(args.repeats):
            t_plain = per_iteration(plain, 10, 40)
            t_smooth = per_iteration(smooth, 10, 40)
            rows.append((t_plain, t_smooth, t_smooth / t_plain))
        table = np.array(rows)
        t_plain, t_smooth, ratio = np.median(table, axis=0)
        print(
            f"{np.dtype(dtype).name:>7} | {1e3 * t_plain:>11.2f} {1e3 * t_smooth:>12.2f} | "
            f"{ratio:>11.2f}x | {table[:, 2].min():.2f}-{table[:, 2].max():.2f}x"
        )
    print("target: smooth/plain <= 1.5x")


if __name__ == "__main__":
    main()
