"""DJ-mix transcription: the literature's errors over synthetic mixes, and the scale.

``--part accuracy`` (default): for every time scaling (none, resample, stretch) × effect
(none, bass, compression, distortion) × seed, a 3-track mix generated from
../shared/data/djmix/tracks (synthetic tracks when absent; linear crossfades) is
transcribed by the full method (multi-pass NMF + refinement), multi-pass NMF alone,
single-pass NMF (the finest hop only) and the DTW baseline; each is scored with
:func:`mnmf.djmix.evaluation.evaluate_transcription`. It prints the median over mixes
of each mix's median over tracks, per method and per variant group (as the published
tables: none / resampled / effects), beside the published numbers (UnmixDB v1.1).
``heard_level`` is a reference, not a method: the truth's positions, and each fader
gain times the level change the mix's effect makes there (:func:`heard_level`). Its
gain error is what a transcription that measured every track's level exactly as the
mix carries it would score against the fader gains — the part of the gain error that
belongs to the effect, which the mix alone cannot tell from the fader.

``--part scale``: synthetic mixes of 10, 30 and 60 minutes (3, 8 and 16 synthetic tracks
of 4 minutes) decomposed by the pitch scan and the multi-pass NMF: one child process
generates the mix (saved to a temporary folder), then a child per run loads and
decomposes it — the audio in float64 (as generated) and in float32 (as read from audio
files), float32 with the sub-frame refinement too ("refined"), and for
``--dense-minutes`` with every pass a dense fit (the reference), and for
``--fine-minutes`` with passes down to a 0.1 s hop ("fine"): wall time, time of the
pitch scan, of each pass (and a progress line per pass on stderr) and of the refinement,
the share of H the passes store
(block-sparse after the first), peak memory of the decomposing child (its maximum
resident set, the loaded mix and tracks included), against the targets (60 min within
10 min and 2 GiB).

Usage::

    python benchmarks/bench_djmix.py [--part accuracy|scale|all] [--seeds 0 1]
        [--scalings none resample stretch] [--effects none bass compression distortion]
        [--methods full multipass_nmf single_pass dtw heard_level]
        [--minutes 10 30 60] [--dense-minutes 10 30] [--fine-minutes 60]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "djmix" / "tracks"
METHODS = ("full", "multipass_nmf", "single_pass", "dtw", "heard_level")
#: The "heard_level" reference measures the effect's level change over this window (s):
#: the long frames' analysis window (two 0.5 s hops).
HEARD_WINDOW = 1.0
TIME_SCALINGS = ("none", "resample", "stretch")
EFFECTS = ("none", "bass", "compression", "distortion")
SHOWN = (
    ("warp_mae_s", "warp err s"),
    ("within_0.1s", "≤0.1 s"),
    ("cue_point_error_s", "cue err s"),
    ("start_error_s", "start err s"),
    ("speed_ratio_error_pct", "speed err %"),
    ("gain_error_db", "gain err dB"),
    ("gain_mae_linear", "gain MAE"),
)
PUBLISHED = """published (UnmixDB v1.1, medians): warp err / cue err / speed ratio / gain MAE
  multi-pass NMF (André et al. 2024)  none 2.4 s / 1.2 s / 0.99 / 0.020;
                                      resampled 3.8 s / 3.0 s / 0.94 / 0.028;
                                      distortion 7.7 s / 7.2 s / 0.75 / 0.22
  DTW + xcorr (Schwarz & Fourer)      none 0.026 s / 0.025 s / 1.00 / 0.028;
                                      resampled 1.1 s / 0.032 s / 1.00 / 0.040;
                                      distortion 1.8 s / 1.3 s / 1.00 / 0.12"""
FS = 22050
#: The "fine" scale mode's hops: down to 0.1 s, where a dense H of the hour would hold
#: ~1.4e9 cells (the issue's example).
FINE_HOPS = (4.0, 2.0, 1.0, 0.5, 0.25, 0.1)


def tracks_for_accuracy(rng: np.random.Generator):
    from mnmf.djmix import load_tracks, synthetic_tracks

    if SHARED.is_dir():
        return load_tracks(SHARED, fs=FS), str(SHARED)
    return synthetic_tracks(3, duration=40.0, fs=FS, rng=rng), "synthetic tracks"


def generate(tracks, seed: int, scaling: str, effect: str):
    """The accuracy part's mix: 3 tracks, 16–20 s each, 4–8 s linear crossfades."""
    from mnmf.djmix import generate_mix

    return generate_mix(
        tracks, fs=FS, rng=np.random.default_rng(seed), play_seconds=(16.0, 20.0),
        crossfade_seconds=(4.0, 8.0), time_scaling=scaling, effect=effect,
    )  # fmt: skip


def heard_level(tracks, generated, seed: int, scaling: str):
    """A reference, not a method: the truth's timelines with each fader gain times the
    level change the mix's effect makes there.

    The same mix is generated without its effect (the effect's draws come after every
    other draw, so the tracks, fades and positions are the same; checked), and the
    effect's level change at each truth time is ``sqrt(E_wet / E_dry)``, the energies of
    the mix with and without the effect over a Hann window of :data:`HEARD_WINDOW` s.
    Scored against the fader gains, it is the gain error of a transcription that
    measured every track's level exactly as the mix carries it: what is left is the
    effect's, which the mix alone cannot tell from the fader (a compressor's make-up
    gain, a waveshaper's drive).
    """
    from dataclasses import replace

    from scipy.signal import oaconvolve
    from scipy.signal.windows import hann

    truth = generated.truth
    dry = generate(tracks, seed, scaling, "none")
    for wet_track, dry_track in zip(truth.tracks, dry.truth.tracks, strict=True):
        same = np.array_equal(wet_track.gain, dry_track.gain) and np.array_equal(
            wet_track.position, dry_track.position, equal_nan=True
        )
        if not same:
            raise RuntimeError(f"{wet_track.name}: the mix without its effect differs")
    window = hann(int(HEARD_WINDOW * FS) | 1)
    energies = [oaconvolve(mix**2, window, mode="same") for mix in (generated.mix, dry.mix)]
    at = np.minimum(np.round(truth.tracks[0].times * FS).astype(int), generated.mix.size - 1)
    wet, clean = (e[at] for e in energies)
    floor = 1e-12 * max(float(clean.max(initial=0.0)), np.finfo(float).tiny)
    level = np.sqrt(np.maximum(wet, 0.0) / np.maximum(clean, floor))
    return [replace(track, gain=track.gain * level) for track in truth.tracks]


def transcribe(method: str, generated, rng: np.random.Generator):
    from mnmf.djmix.baselines import dtw_transcription
    from mnmf.djmix.decompose import decompose_mix

    if method == "dtw":
        return dtw_transcription(generated.mix, generated.tracks, generated.fs)
    hops = (0.5,) if method == "single_pass" else (4.0, 2.0, 1.0, 0.5)
    result = decompose_mix(
        generated.mix, generated.tracks, generated.fs, hops=hops, rng=rng,
        refine=method == "full",
    )  # fmt: skip
    return result.tracks if method == "full" else result.nmf_tracks


def accuracy(
    seeds: list[int],
    *,
    scalings: Sequence[str] = TIME_SCALINGS,
    effects: Sequence[str] = EFFECTS,
    methods: Sequence[str] = METHODS,
) -> None:
    from mnmf.djmix.evaluation import evaluate_transcription

    tracks, source = tracks_for_accuracy(np.random.default_rng(0))
    print(
        f"# bench_djmix accuracy: 3-track mixes from {source}, {FS} Hz, seeds {seeds}, "
        f"time scalings {list(scalings)}, effects {list(effects)}, methods {list(methods)}"
    )
    rows: list[dict] = []
    failures = 0
    for scaling in scalings:
        for effect in effects:
            for seed in seeds:
                generated = generate(tracks, seed, scaling, effect)
                for method in methods:
                    started = time.perf_counter()
                    try:
                        if method == "heard_level":
                            estimates = heard_level(tracks, generated, seed, scaling)
                        else:
                            estimates = transcribe(method, generated, np.random.default_rng(seed))
                        summary = evaluate_transcription(estimates, generated.truth).summary()
                    except Exception as error:  # counted, never left out
                        failures += 1
                        print(f"FAILED {method} {scaling} {effect} seed {seed}: {error!r}")
                        continue
                    rows.append(
                        {"method": method, "scaling": scaling, "effect": effect, "seed": seed,
                         "seconds": time.perf_counter() - started, **summary}
                    )  # fmt: skip
    mixes = len(scalings) * len(effects) * len(seeds)
    print(f"{mixes} mixes x {len(methods)} methods: {len(rows)} scored, {failures} failed")
    groups = {
        "all": lambda r: True,
        "none/none": lambda r: r["scaling"] == "none" and r["effect"] == "none",
        "resampled": lambda r: r["scaling"] == "resample" and r["effect"] == "none",
        "stretched": lambda r: r["scaling"] == "stretch" and r["effect"] == "none",
        "effects": lambda r: r["effect"] != "none",
        "bass": lambda r: r["effect"] == "bass",
        "compression": lambda r: r["effect"] == "compression",
        "distortion": lambda r: r["effect"] == "distortion",
    }
    header = f"{'group':<11} {'method':<14} {'n':>3} " + " ".join(f"{t:>11}" for _, t in SHOWN)
    print(header + f" {'s/mix':>6}")
    for group, keep in groups.items():
        for method in methods:
            chosen = [r for r in rows if r["method"] == method and keep(r)]
            if not chosen:
                continue
            cells = []
            for key, _ in SHOWN:
                values = [r.get(key, math.nan) for r in chosen]
                finite = [v for v in values if isinstance(v, float | int) and math.isfinite(v)]
                cells.append(f"{np.median(finite):>11.4g}" if finite else f"{'-':>11}")
            seconds = np.median([r["seconds"] for r in chosen])
            print(
                f"{group:<11} {method:<14} {len(chosen):>3} "
                + " ".join(cells)
                + f" {seconds:>6.1f}"
            )
    print("values: median over mixes of each mix's median over tracks")
    print(PUBLISHED)


def scale_generate(minutes: float, folder: str) -> None:
    """Generate one synthetic mix into ``folder`` (.npy files); print a JSON line (a child).

    Generating holds the source tracks, their time-scaled copies and the mix at once:
    it runs in its own process so that the decomposition's peak is measured alone.
    """
    from mnmf.djmix import generate_mix, synthetic_tracks

    started = time.perf_counter()
    rng = np.random.default_rng(0)
    n_tracks = max(3, round(16 * minutes / 60))
    play = 60.0 * minutes / n_tracks
    tracks = synthetic_tracks(n_tracks, duration=play * 1.25 + 10.0, fs=FS, rng=rng)
    generated = generate_mix(
        tracks, fs=FS, rng=rng, play_seconds=(0.95 * play, 1.05 * play),
        crossfade_seconds=(8.0, 16.0), time_scaling="resample",
    )  # fmt: skip
    del tracks
    out = Path(folder)
    np.save(out / "mix.npy", generated.mix)
    for k, track in enumerate(generated.tracks):
        np.save(out / f"track{k:03d}.npy", np.asarray(track.audio, dtype=np.float64))
    (out / "rng.json").write_text(json.dumps(rng.bit_generator.state))
    print(json.dumps({
        "seconds": time.perf_counter() - started, "tracks": n_tracks,
        "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }))  # fmt: skip


def scale_child(folder: str, mode: str) -> None:
    """Decompose the mix of ``folder``; print a JSON line with timings (runs in a child).

    ``mode``: "float64" (the audio as generated) or "float32" (as read from audio
    files), "refined" (float32 and the sub-frame refinement), "fine" (float32, passes
    down to :data:`FINE_HOPS`' 0.1 s) or "dense": float64 with every pass a dense fit
    (``SPARSE_PASSES = False``), the reference where it fits. The child's peak resident
    set (``peak_gib``) covers loading the mix and its tracks and the whole
    decomposition; ``input_gib`` is the resident set once they are loaded.
    """
    import mnmf.djmix.decompose
    from mnmf.djmix.decompose import decompose_mix

    dtype = "float32" if mode in ("float32", "refined", "fine") else "float64"
    mnmf.djmix.decompose.SPARSE_PASSES = mode != "dense"

    source = Path(folder)
    mix = np.load(source / "mix.npy").astype(dtype, copy=False)
    tracks = [
        (path.stem, np.load(path).astype(dtype, copy=False), FS)
        for path in sorted(source.glob("track*.npy"))
    ]  # fmt: skip
    rng = np.random.default_rng(0)
    rng.bit_generator.state = json.loads((source / "rng.json").read_text())
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="  %(message)s")
    started = time.perf_counter()
    options = {"hops": FINE_HOPS} if mode == "fine" else {}
    result = decompose_mix(mix, tracks, FS, rng=rng, refine=mode == "refined", **options)
    total = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # GiB (ru_maxrss: KiB)
    print(json.dumps({
        "minutes": mix.shape[0] / FS / 60, "tracks": len(tracks), "seconds": total,
        "passes": [[p.hop, p.seconds] for p in result.passes], "peak_gib": peak,
        "scan": result.info["pitch_scan_seconds"],
        "refine": total - result.info["pitch_scan_seconds"]
        - sum(p.seconds for p in result.passes) if mode == "refined" else None,
        "input_gib": loaded, "mode": mode,
        "stored": [[sum(H.nnz for H in p.H), sum(H.shape[0] * H.shape[1] for H in p.H)]
                   for p in result.passes],
    }))  # fmt: skip


def _child(*arguments: str) -> tuple[dict | None, str]:
    """Run this script as a child; its stderr (progress per pass) passes through."""
    child = subprocess.run(
        [sys.executable, __file__, *arguments],
        stdout=subprocess.PIPE, text=True, env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    lines = [line for line in child.stdout.splitlines() if line.startswith("{")]
    if child.returncode != 0 or not lines:
        return None, f"FAILED (exit {child.returncode}, its stderr above)"
    return json.loads(lines[-1]), ""


def scale(minutes: list[float], dense_minutes: list[float], fine_minutes: list[float]) -> None:
    import tempfile

    print("# bench_djmix scale: synthetic mixes (tracks resampled within ±8 %), multi-pass NMF")
    print(
        f"{'minutes':>7} {'tracks':>6} {'audio':>7} {'wall s':>8} {'peak GiB':>8} {'input':>6} "
        f"{'gen GiB':>7}"
        "  seconds per pass (hop s: s) [stored % of dense H]"
    )
    for length in minutes:
        with tempfile.TemporaryDirectory(prefix="bench_djmix_") as folder:
            generated, error = _child("--scale-generate", str(length), folder)
            if generated is None:
                print(f"{length:>7g} generation {error}")
                continue
            modes = ["float64", "float32", "refined"]
            modes += ["dense"] if length in dense_minutes else []
            modes += ["fine"] if length in fine_minutes else []
            for dtype in modes:
                found, error = _child("--scale-child", folder, dtype)
                if found is None:
                    print(f"{length:>7g} {dtype} {error}")
                    continue
                passes = f"pitch scan: {found['scan']:.1f}, " + ", ".join(
                    f"{hop:g}: {seconds:.1f} [{100 * stored / max(cells, 1):.2g} %]"
                    for (hop, seconds), (stored, cells) in zip(
                        found["passes"], found["stored"], strict=True
                    )
                )
                if found["refine"] is not None:
                    passes += f", refinement: {found['refine']:.1f}"
                print(
                    f"{found['minutes']:>7.1f} {found['tracks']:>6} {dtype:>7} "
                    f"{found['seconds']:>8.1f} {found['peak_gib']:>8.2f} "
                    f"{found['input_gib']:>6.2f} {generated['peak_gib']:>7.2f}  {passes}",
                    flush=True,
                )
    print(
        "targets: 60 min within 600 s wall and 2 GiB peak. peak = the decomposing child's max "
        "RSS, the mix and tracks it loads included ('audio': their dtype, float32 as read "
        "from files; 'input' = RSS once loaded); generating the mix runs in its own child "
        "('gen GiB'); 'dense' = float64 audio, every pass a dense fit (the reference); "
        "'refined' = float32 audio, the passes and the sub-frame refinement; 'fine' = "
        f"float32 audio, passes at hops {FINE_HOPS} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("accuracy", "scale", "all"), default="accuracy")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument(
        "--scalings", nargs="+", choices=TIME_SCALINGS, default=list(TIME_SCALINGS),
        help="accuracy: the time scalings to generate (default: all)",
    )  # fmt: skip
    parser.add_argument(
        "--effects", nargs="+", choices=EFFECTS, default=list(EFFECTS),
        help="accuracy: the effects to generate (default: all)",
    )  # fmt: skip
    parser.add_argument(
        "--methods", nargs="+", choices=METHODS, default=list(METHODS),
        help="accuracy: the methods to score (default: all)",
    )  # fmt: skip
    parser.add_argument("--minutes", type=float, nargs="+", default=[10.0, 30.0, 60.0])
    parser.add_argument(
        "--dense-minutes", type=float, nargs="*", default=[10.0, 30.0],
        help="lengths also decomposed with dense passes (the reference, where it fits)",
    )  # fmt: skip
    parser.add_argument(
        "--fine-minutes", type=float, nargs="*", default=[60.0],
        help="lengths also decomposed with passes down to a 0.1 s hop (float32, no refinement)",
    )  # fmt: skip
    parser.add_argument("--scale-child", nargs=2, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--scale-generate", nargs=2, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scale_generate is not None:
        scale_generate(float(args.scale_generate[0]), args.scale_generate[1])
        return
    if args.scale_child is not None:
        scale_child(*args.scale_child)
        return
    if args.part in ("accuracy", "all"):
        accuracy(args.seeds, scalings=args.scalings, effects=args.effects, methods=args.methods)
    if args.part in ("scale", "all"):
        scale(args.minutes, args.dense_minutes, args.fine_minutes)


if __name__ == "__main__":
    main()
