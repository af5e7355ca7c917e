"""BSS Eval backends timed and cross-checked, and evaluation's share of a typical run.

For 2 and 3 sources × 2 mics × 10 s — ../shared/data's liverec recording (J=2) and
SiSEC08 dev2 instantaneous mix (J=3) when present, otherwise simulated rooms of
synthetic sources — and shuffled, leaky estimates (so the permutation matters):

1. Backends. The estimates' scores with the permutation solved, in ``mode="images"``
   (SDR/ISR/SIR/SAR on both channels) and ``mode="sources"`` (SDR/SIR/SAR on channel 0),
   timed with :func:`mnmf.evaluate` ``backend="mir_eval"`` (mir_eval 0.8.2) and
   ``backend="fast"`` (:mod:`mnmf.bss_eval`), and with the ``fast_bss_eval`` package in
   sources mode (its exact solver, ``use_cg_iter=None``; it has no images mode). Printed:
   seconds, speed-ups of fast over mir_eval and over fast_bss_eval, the largest absolute
   difference of any metric from mir_eval and whether the permutations agree.
   Target: fast ≥ 10× mir_eval for 3 sources × 2 channels × 10 s, images mode.
2. Share. For every method of :func:`mnmf.separate` that applies, a "typical run" —
   separate + evaluate(images, fast backend, with the mixture's own scores as a run
   reports them) — and the fraction of it spent evaluating (target: ≤ 10 %).

Usage: ``python benchmarks/bench_eval.py [--repeats 3] [--no-share]``
(``pip install -e .[bench]`` for fast_bss_eval; without it its column reads
"not installed").
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import mnmf
from mnmf.data.synthetic import synthetic_sources
from mnmf.evaluation import METRICS

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FS = 16000
TARGET_SPEEDUP = 10.0
TARGET_SHARE = 0.10


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


def shuffled_estimates(mixture: mnmf.Mixture) -> np.ndarray:
    """Each image plus 30 % of the others and a little noise, in reversed order."""
    rng = np.random.default_rng(1)
    images = mixture.images
    leaky = images + 0.3 * (mixture.mix[None] - images)
    leaky = leaky + 0.01 * images.std() * rng.standard_normal(images.shape)
    return leaky[::-1].copy()


def timed(function: Callable[[], object], repeats: int) -> tuple[float, object]:
    samples, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        samples.append(time.perf_counter() - start)
    return float(np.median(samples)), result


def fast_bss_eval_sources() -> Callable | None:
    try:
        import fast_bss_eval
    except ImportError:
        return None
    return fast_bss_eval.bss_eval_sources


def largest_gap(scores: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> float:
    """Largest |difference| over metrics and sources (equal infinities count as 0)."""
    gaps = []
    for metric, expected in reference.items():
        got = scores[metric]
        same = got == expected  # also +inf == +inf
        gaps.append(np.where(same, 0.0, np.abs(got - expected)))
    return float(np.max(gaps))


def compare_backends(repeats: int) -> None:
    peer = fast_bss_eval_sources()
    print(
        f"{'scene':<19} {'mode':<8} {'mir_eval s':>10} {'fast s':>8} {'fbe s':>13} "
        f"{'fast/mir':>9} {'fast/fbe':>9} {'max|Δ| dB':>10} {'perm':>5} "
        f"{'fbe max|Δ|':>10} {'fbe perm':>8}"
    )
    for name, mixture in scenes():
        estimates = shuffled_estimates(mixture)
        for mode in ("images", "sources"):
            mir_seconds, mir = timed(
                lambda e=estimates, m=mixture, mode=mode: mnmf.evaluate(
                    e, m.images, mode=mode, backend="mir_eval"
                ),
                repeats,
            )
            fast_seconds, fast = timed(
                lambda e=estimates, m=mixture, mode=mode: mnmf.evaluate(
                    e, m.images, mode=mode, backend="fast"
                ),
                repeats,
            )
            gap = largest_gap(fast.scores, mir.scores)
            agree = "yes" if np.array_equal(fast.permutation, mir.permutation) else "NO"
            peer_cells = _peer_cells(peer, mode, mixture, estimates, mir, repeats, fast_seconds)
            print(
                f"{name:<19} {mode:<8} {mir_seconds:>10.2f} {fast_seconds:>8.3f} "
                f"{peer_cells[0]:>13} {mir_seconds / fast_seconds:>8.1f}x {peer_cells[1]:>9} "
                f"{gap:>10.1e} {agree:>5} {peer_cells[2]:>10} {peer_cells[3]:>8}"
            )
    print(
        "fbe = fast_bss_eval (sources mode only: it has no images mode; exact solver, "
        "use_cg_iter=None)" + ("" if peer else "; not installed: pip install -e '.[bench]'")
    )
    print(f"target: fast >= {TARGET_SPEEDUP:.0f}x mir_eval for J=3 x 2 ch x 10 s, images mode")


def _peer_cells(
    peer: Callable | None,
    mode: str,
    mixture: mnmf.Mixture,
    estimates: np.ndarray,
    mir: mnmf.Evaluation,
    repeats: int,
    fast_seconds: float,
) -> tuple[str, str, str, str]:
    if peer is None:
        return ("not installed", "-", "-", "-")
    if mode == "images":
        return ("n/a", "n/a", "n/a", "n/a")
    references, channel = mixture.images[..., 0], estimates[..., 0]
    seconds, result = timed(lambda: peer(references, channel), repeats)
    *values, permutation = result
    scores = dict(zip(METRICS["sources"], (np.asarray(v) for v in values), strict=True))
    agree = "yes" if np.array_equal(permutation, mir.permutation) else "NO"
    return (
        f"{seconds:.3f}",
        f"{seconds / fast_seconds:.1f}x",
        f"{largest_gap(scores, mir.scores):.1e}",
        agree,
    )


def evaluation_share() -> None:
    print(
        f"{'scene':<19} {'method':<10} {'separate s':>10} {'evaluate s':>10} {'eval share':>10}"
        f" {'mir_eval share':>14}"
    )
    for name, mixture in scenes():
        # What a run computes: the estimates' scores and the mixture's, fast backend
        # (and, for the "before" column, mir_eval's).
        estimates = shuffled_estimates(mixture)
        evaluate_seconds, _ = timed(
            lambda m=mixture, e=estimates: mnmf.evaluate(e, m.images, mixture=m.mix), 3
        )
        mir_eval_seconds, _ = timed(
            lambda m=mixture, e=estimates: mnmf.evaluate(
                e, m.images, mixture=m.mix, backend="mir_eval"
            ),
            1,
        )
        for method in ("nmf", "mnmf-mu", "mnmf-em", "auxiva", "ilrma", "fastmnmf2"):
            if method in ("auxiva", "ilrma") and mixture.n_sources > mixture.n_mics:
                continue
            separate_seconds, _ = timed(
                lambda m=mixture, method=method: mnmf.separate(
                    m.mix, n_sources=m.n_sources, method=method, rng=0
                ),
                1,
            )
            share = evaluate_seconds / (separate_seconds + evaluate_seconds)
            before = mir_eval_seconds / (separate_seconds + mir_eval_seconds)
            print(
                f"{name:<19} {method:<10} {separate_seconds:>10.2f} {evaluate_seconds:>10.2f} "
                f"{100 * share:>9.1f}% {100 * before:>13.1f}%"
            )
    print(
        f"evaluate = fast backend, images mode, with the mixture's own scores; "
        f"target: evaluation <= {100 * TARGET_SHARE:.0f} % of a run's wall time"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-share", action="store_true", help="skip the separation runs")
    args = parser.parse_args()
    data = SHARED if SHARED.is_dir() else "simulated"
    print(f"# bench_eval: 2 mics x 10 s, median of {args.repeats}; data: {data}")
    compare_backends(args.repeats)
    if not args.no_share:
        print()
        evaluation_share()


if __name__ == "__main__":
    main()
