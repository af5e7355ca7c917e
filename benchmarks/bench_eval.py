"""Seconds of evaluation, and its share of a typical separation run's wall time.

For 2 and 3 sources × 2 mics × 10 s — ../shared/data's liverec recording (J=2) and
SiSEC08 dev2 instantaneous mix (J=3) when present, otherwise simulated rooms of
synthetic sources — it times :func:`mnmf.evaluate` in ``mode="images"`` (mir_eval's
bss_eval_images: SDR/ISR/SIR/SAR on both channels) and ``mode="sources"``
(bss_eval_sources on one channel), each with the mixture's own scores (what a run
reports). Then, for every method of :func:`mnmf.separate` that applies, a "typical
run" — separate + evaluate(images) — and the fraction of it spent evaluating
(target: ≤ 10 %).

Usage: ``python benchmarks/bench_eval.py [--repeats 3]``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import mnmf
from mnmf.data.synthetic import synthetic_sources

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FS = 16000


def scenes() -> list[tuple[str, mnmf.Mixture]]:
    if SHARED.is_dir():
        return [
            ("liverec (J=2)", mnmf.load_mixture(SHARED / "recorded" / "liverec_female4_130ms_5cm")),
            (
                "sisec08 inst (J=3)",
                mnmf.load_mixture(SHARED / "mixtures" / "sisec08_dev2_nodrums_inst"),
            ),
        ]
    rng = np.random.default_rng(0)
    found = []
    for kinds in (["speech", "speech"], ["speech", "music", "percussion"]):
        sources = synthetic_sources(kinds, fs=FS, duration=10.0, rng=rng)
        found.append(
            (f"simulated (J={len(kinds)})", mnmf.simulate_room(list(sources), FS, rng=rng))
        )
    return found


def timed(function, repeats: int) -> tuple[float, object]:
    samples, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        samples.append(time.perf_counter() - start)
    return float(np.median(samples)), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = SHARED if SHARED.is_dir() else "simulated"
    print(f"# bench_eval: 2 mics x 10 s, median of {args.repeats}; data: {data}")
    print(f"{'scene':<20} {'mode':<8} {'evaluate s':>10}")
    eval_seconds = {}
    for name, mixture in scenes():
        estimates = mnmf.separate(mixture.mix, n_sources=mixture.n_sources, method="mixture")
        estimates = estimates + 0.1 * mixture.images  # any non-trivial estimate costs the same
        for mode in ("images", "sources"):
            seconds, _ = timed(
                lambda m=mixture, e=estimates, mode=mode: mnmf.evaluate(
                    e, m.images, mixture=m.mix, mode=mode
                ),
                args.repeats,
            )
            eval_seconds[name, mode] = seconds
            print(f"{name:<20} {mode:<8} {seconds:>10.2f}")

    print()
    print(f"{'scene':<20} {'method':<10} {'separate s':>10} {'evaluate s':>10} {'eval share':>10}")
    for name, mixture in scenes():
        for method in ("nmf", "auxiva", "ilrma", "fastmnmf2"):
            if method in ("auxiva", "ilrma") and mixture.n_sources > mixture.n_mics:
                continue
            seconds, estimates = timed(
                lambda m=mixture, method=method: mnmf.separate(
                    m.mix, n_sources=m.n_sources, method=method, rng=0
                ),
                1,
            )
            evaluation = eval_seconds[name, "images"]
            share = evaluation / (seconds + evaluation)
            print(
                f"{name:<20} {method:<10} {seconds:>10.2f} {evaluation:>10.2f} {100 * share:>9.0f}%"
            )
    print("target: evaluation <= 10 % of a run's wall time")


if __name__ == "__main__":
    main()
