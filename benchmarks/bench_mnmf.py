"""Multichannel NMF against the pyroomacoustics baselines: speed, memory and quality.

``--part speed``: on the same STFT (n_fft 2048, hop 512) of a 10 s 2-mic mixture
(../shared/data liverec, or a simulated room of synthetic sources without it), the
per-iteration time — (t(n_long) − t(n_short)) / (n_long − n_short), median of repeats,
set-up cancelling — and the peak memory of a run (tracemalloc: NumPy reports its
allocations to it) of gains-MU and EM (J = 2, 4 components per source) against ILRMA
(2 components per source, its default) and FastMNMF2 (8 components, its default).
Target: gains-MU per iteration ≤ ILRMA's. Native FastMNMF2 against pyroomacoustics'
also with J = 3 > I = 2. Target: ≤ 0.5× its time per iteration.

``--part speed`` also runs the EM on the complex64 STFT (float32) beside ILRMA on the
same complex64 STFT (target: the EM ≤ 1.5× ILRMA per iteration in float64 and in
float32), and prints the float32 EM's likelihood gap to the float64 one over 100
iterations from the same start.

``--part threads``: per-iteration time of every block-parallel model — IS-NMF MU and
smooth IS-NMF on one channel's power spectrogram, gains-MU, the convolutive EM and
FastMNMF2 on the STFT — with 1 and 2 threads, and the speed-up.

``--part em-blocks``: the EM's per-iteration time on one thread for blocks of 16 to
1025 frequencies and for the default (sized from the cache).

``--part quality``: mean SDR / SIR / ΔSDR over sources (bss_eval_images) and seconds
per run, 3 seeds, for gains-MU and the EM from random, peer and mnmf's own starts,
native FastMNMF2 with IS-NMF and smooth IS-NMF sources, and auxiva, ilrma, fastmnmf2
at 100 iterations and at pyroomacoustics' defaults (settings in ``scene_options``) on
(a) a simulated 2-talker room (RT60 0.3 s, 5 cm, 10 s of ../shared/data speech), (b)
liverec, (c) SiSEC08 dev2 instantaneous (J = 3 > I = 2: AuxIVA and ILRMA do not
apply), (d) a simulated 3-source scene (music, music, speech, RT60 0.25 s, 5 cm, 6 s)
and (e) the room of (a) heard by 3 mics (J = 2 < I = 3). For (b) and (c) the seed
changes only the methods' initialization.

``--part starts``: the EM's stability and its starts. On the rt60 sweep's rooms (two
speech files, 6 s, 5 cm, RT60 0 / 0.15 / 0.3 / 0.5 s, seeds 0-4), liverec and SiSEC08
dev2 (seeds 0-2), and a simulated 3-source scene (music, music, speech, RT60 0.25 s, 5 cm,
6 s, seeds 0-2): the ΔSDR of the EM's start (its parameters at iteration 0) and after its
100 iterations, from the default start (``init="auto"``: a peer) and from mnmf's own
start (``own_start``: native ILRMA if J = I, else native FastMNMF2; on SiSEC08 the
chained gains ← panning start).
Failures are counted; "drops" are runs ending more than 1 dB below their start.

``--part ilrma-draws``: how a 50-iteration ILRMA start (pyroomacoustics' and native)
depends on its random draw on the room scene (see ``ilrma_draws``).

Usage: ``python benchmarks/bench_mnmf.py
[--part speed|threads|em-blocks|quality|starts|ilrma-draws|all] [--repeats 3]
[--seeds 3] [--scenes "3 mics"]``
"""

from __future__ import annotations

import argparse
import functools
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np

import mnmf
from mnmf.data.synthetic import synthetic_sources

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FS, N_FFT, HOP = 16000, 2048, 512


def ten_second_mixture() -> mnmf.Mixture:
    if SHARED.is_dir():
        return mnmf.load_mixture(SHARED / "recorded" / "liverec_female4_130ms_5cm")
    sources = synthetic_sources(
        ["speech", "speech"], fs=FS, duration=10.0, rng=np.random.default_rng(0)
    )
    return mnmf.simulate_room(list(sources), FS, rt60=0.3, rng=0)


def runners(X: np.ndarray):
    import pyroomacoustics as pra

    frames_first = np.ascontiguousarray(X.transpose(1, 0, 2))
    X32 = X.astype(np.complex64)
    frames_first_32 = frames_first.astype(np.complex64)
    return {
        "mnmf gains-MU": lambda n: mnmf.fit_mnmf(X, 2, max_iter=n, tol=0, check_every=10**9, rng=0),
        "mnmf EM": lambda n: mnmf.fit_mnmf(
            X, 2, spatial="convolutive", algorithm="em", max_iter=n, tol=0, check_every=10**9, rng=0
        ),
        "mnmf FastMNMF2": lambda n: mnmf.fit_mnmf(
            X, 2, n_components=8, spatial="fastmnmf", max_iter=n, tol=0, check_every=10**9, rng=0
        ),
        "mnmf EM f32": lambda n: mnmf.fit_mnmf(
            X32, 2, spatial="convolutive", max_iter=n, tol=0, check_every=10**9, rng=0
        ),
        "pra ILRMA": lambda n: pra.bss.ilrma(frames_first, n_src=2, n_iter=n, proj_back=False),
        "pra ILRMA f32": lambda n: pra.bss.ilrma(
            frames_first_32, n_src=2, n_iter=n, proj_back=False
        ),
        "pra FastMNMF2": lambda n: pra.bss.fastmnmf2(frames_first, n_src=2, n_iter=n),
        "mnmf FastMNMF2 J=3": lambda n: mnmf.fit_mnmf(
            X, 3, n_components=8, spatial="fastmnmf", max_iter=n, tol=0, check_every=10**9, rng=0
        ),
        "pra FastMNMF2 J=3": lambda n: pra.bss.fastmnmf2(frames_first, n_src=3, n_iter=n),
    }


def per_iteration(run, n_short: int = 5, n_long: int = 25) -> float:
    """Seconds per iteration, (t(n_long) − t(n_short)) / (n_long − n_short): set-up cancels."""
    t0 = time.perf_counter()
    run(n_short)
    t1 = time.perf_counter()
    run(n_long)
    t2 = time.perf_counter()
    return ((t2 - t1) - (t1 - t0)) / (n_long - n_short)


def speed(repeats: int) -> None:
    mixture = ten_second_mixture()
    X = mnmf.Stft(n_fft=N_FFT, hop=HOP).analyze(mixture.mix)
    print(f"# speed: STFT {X.shape} (F, N, I) of {mixture.duration:.0f} s, median of {repeats}")
    print(f"{'method':<18} {'ms/iteration':>12} {'peak MiB':>9} {'vs ILRMA':>9}")
    results = {}
    for name, run in runners(X).items():
        samples = [per_iteration(run) for _ in range(repeats)]
        tracemalloc.start()
        run(10)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        results[name] = (float(np.median(samples)), peak / 2**20)
    reference = results["pra ILRMA"][0]
    for name, (seconds, peak) in results.items():
        print(f"{name:<18} {1e3 * seconds:>12.2f} {peak:>9.1f} {seconds / reference:>8.2f}x")
    for suffix in ("", " f32"):
        ratio = results[f"mnmf EM{suffix}"][0] / results[f"pra ILRMA{suffix}"][0]
        print(f"mnmf EM{suffix} / pra ILRMA{suffix} on the same STFT: {ratio:.2f}x")
    for suffix in ("", " J=3"):
        native, peer = results[f"mnmf FastMNMF2{suffix}"], results[f"pra FastMNMF2{suffix}"]
        print(
            f"native/pra FastMNMF2{suffix}: {native[0] / peer[0]:.2f}x time per iteration, "
            f"{native[1] / peer[1]:.2f}x peak memory"
        )
    print(
        "targets: mnmf gains-MU ms/iteration <= pra ILRMA's; native FastMNMF2 <= 0.5x pra's; "
        "mnmf EM <= 1.5x pra ILRMA's, float64 and float32"
    )
    em_float32_drift(mixture)


def em_float32_drift(mixture: mnmf.Mixture, n_iter: int = 100) -> None:
    """The EM in float32 against float64 from the same start (mnmf's own ILRMA start,
    then ``n_iter`` iterations): relative likelihood gap, and both fits' ΔSDR."""
    stft = mnmf.Stft(n_fft=N_FFT, hop=HOP)
    X = stft.analyze(mixture.mix)
    options = {
        "spatial": "convolutive", "init": "mnmf-ilrma", "max_iter": n_iter, "tol": 0,
        "check_every": 1, "stft": stft, "rng": 0,
    }  # fmt: skip
    fits = {name: mnmf.fit_mnmf(X.astype(dtype), 2, **options)
            for name, dtype in (("float64", np.complex128), ("float32", np.complex64))}  # fmt: skip
    double, single = fits["float64"], fits["float32"]
    gap = np.abs(single.cost - double.cost) / np.abs(double.cost)
    length = mixture.mix.shape[0]
    scores = {
        name: mnmf.evaluate(fit.images(X, length=length), mixture.images, mixture=mixture.mix)
        for name, fit in fits.items()
    }
    print(
        f"EM float32 vs float64, {n_iter} iterations from the same start: relative "
        f"likelihood gap {gap[1:].max():.1e} at most, {gap[-1]:.1e} at the end "
        f"(final costs {double.cost[-1]:.6g} / {single.cost[-1]:.6g}); ΔSDR "
        f"{scores['float64'].mean('ΔSDR'):.2f} / {scores['float32'].mean('ΔSDR'):.2f} dB"
    )


def em_blocks(repeats: int) -> None:
    """The EM's per-iteration time (1 thread) for blocks of 16 … 1025 frequencies."""
    mixture = ten_second_mixture()
    X = mnmf.Stft(n_fft=N_FFT, hop=HOP).analyze(mixture.mix)
    print(f"# em-blocks: STFT {X.shape}, 1 thread, median of {repeats}")
    for width in (None, 16, 32, 64, 128, 256, X.shape[0]):
        run = lambda n, width=width: mnmf.fit_mnmf(  # noqa: E731
            X, 2, spatial="convolutive", max_iter=n, tol=0, check_every=10**9, rng=0,
            n_threads=1, block_frequencies=width,
        )  # fmt: skip
        samples = [per_iteration(run) for _ in range(repeats)]
        label = "default (cache)" if width is None else str(width)
        print(f"block_frequencies {label:<16} {1e3 * float(np.median(samples)):8.2f} ms/iteration")


def thread_speedups(repeats: int) -> None:
    """Per-iteration time of every block-parallel model with 1 and 2 threads."""
    mixture = ten_second_mixture()
    X = mnmf.Stft(n_fft=N_FFT, hop=HOP).analyze(mixture.mix)
    V = np.abs(X[:, :, 0]) ** 2
    models = {
        "IS-NMF MU (fit_nmf, K=20)": lambda n, t: mnmf.fit_nmf(
            V, 20, max_iter=n, tol=0, check_every=10**9, rng=0, n_threads=t
        ),
        "smooth IS-NMF MM (fit_nmf, K=20)": lambda n, t: mnmf.fit_nmf(
            V, 20, source_model="smooth", smoothness=10.0, max_iter=n, tol=0,
            check_every=10**9, rng=0, n_threads=t,
        ),
        "gains-MU (J=2, 4 per source)": lambda n, t: mnmf.fit_mnmf(
            X, 2, max_iter=n, tol=0, check_every=10**9, rng=0, n_threads=t
        ),
        "convolutive EM (J=2, 4 per source)": lambda n, t: mnmf.fit_mnmf(
            X, 2, spatial="convolutive", max_iter=n, tol=0, check_every=10**9, rng=0,
            n_threads=t,
        ),
        "FastMNMF2 (J=2, 8 per source)": lambda n, t: mnmf.fit_mnmf(
            X, 2, n_components=8, spatial="fastmnmf", max_iter=n, tol=0, check_every=10**9,
            rng=0, n_threads=t,
        ),
    }  # fmt: skip
    print(f"# threads: STFT {X.shape} of {mixture.duration:.0f} s, median of {repeats}")
    print(f"{'model':<36} {'1 thread ms/it':>14} {'2 threads ms/it':>15} {'speed-up':>9}")
    for name, run in models.items():
        timings = {1: [], 2: []}
        for _ in range(repeats):
            for threads in (1, 2):  # side by side, so load bursts hit both
                timings[threads].append(per_iteration(functools.partial(run, t=threads)))
        one, two = (float(np.median(timings[t])) for t in (1, 2))
        print(f"{name:<36} {1e3 * one:>14.2f} {1e3 * two:>15.2f} {one / two:>8.2f}x", flush=True)


def quality_scenes(seed: int):
    if not SHARED.is_dir():
        raise SystemExit(f"--part quality needs {SHARED}")
    pool = mnmf.SourcePool(SHARED / "sources", fs=FS)
    speech = [p for p in pool.files["speech"] if "librispeech" in p.name or "sisec11" in p.name]
    signals = []
    rng = np.random.default_rng(seed)
    for path in rng.choice(speech, size=2, replace=False):  # files of 10 s or more
        signal, _ = mnmf.data.io.load_audio(path, fs=FS, mono=True)
        signals.append(signal[: 10 * FS] / np.sqrt(np.mean(signal[: 10 * FS] ** 2)))
    yield "room RT60 0.3 s", mnmf.simulate_room(signals, FS, rt60=0.3, mic_spacing=0.05, rng=seed)
    yield "liverec", mnmf.load_mixture(SHARED / "recorded" / "liverec_female4_130ms_5cm")
    yield "sisec08 inst", mnmf.load_mixture(SHARED / "mixtures" / "sisec08_dev2_nodrums_inst")
    three, _ = pool.draw_many(["music", "music", "speech"], seed, duration=6.0)
    yield (
        "3 sources RT60 0.25",
        mnmf.simulate_room(three, FS, rt60=0.25, mic_spacing=0.05, rng=seed),
    )
    yield "3 mics RT60 0.3", mnmf.simulate_room(signals, FS, rt60=0.3, n_mics=3, rng=seed)


def own_start(n_sources: int, n_mics: int) -> dict:
    """mnmf's own blind start on a convolutive scene: its native ILRMA (FastMNMF with G
    fixed to the identity, 2 components per source, 50 iterations — the peer start's
    settings) when J = I, else native FastMNMF2 (100 iterations)."""
    if n_sources == n_mics:
        return {"init": "mnmf-ilrma"}
    return {"init": "fastmnmf", "init_iter": 100}


def scene_options(scene: str, label: str, n_sources: int, n_mics: int) -> dict:
    """The options of one row of :data:`METHODS` on one scene.

    ``mnmf-mu`` / ``mnmf-em`` rows are named by their start: ``auto`` is ``separate``'s
    default (``init="auto"``: a peer start, see ``mnmf.algorithms.starts.auto_init``, or
    the spatial model's preferred one), ``random``, ``peer`` (the peer ``auto_init``
    names for J and I) and ``own`` (made by mnmf's code alone, :func:`own_start`; on the
    panned music scene the level-difference clustering for gains-MU
    and the chained gains-MU ← panning start of conf/model/mnmf_em_music.yaml for the EM).
    On the panned scene every MNMF row has 8 components per source and gains-MU uses
    instantaneous gains. Native FastMNMF2 has 8 components per source (pyroomacoustics'
    count); ``/smooth`` uses smooth IS-NMF sources (λ = 10, conf/model/mnmf_fastmnmf_smooth);
    ``/ilrma`` is its ILRMA variant (G fixed to the identity, J = I only, 2 components).
    """
    from mnmf.algorithms import ModelStart, PanningStart

    method, _, variant = label.partition("/")
    if method == "mnmf-fastmnmf" and variant == "ilrma":
        return {"variant": "ilrma", "n_components": 2}  # pyroomacoustics ILRMA's count
    if method == "mnmf-fastmnmf":
        smooth = {"source_model": mnmf.SmoothNMFSource(smoothness=10.0)} if variant else {}
        return {"n_components": 8} | smooth
    if not method.startswith("mnmf"):
        return {}
    panned = "inst" in scene
    options: dict = {"n_components": 8} if panned else {}
    if method == "mnmf-mu" and panned:
        options["spatial"] = mnmf.GainsModel(mixing="instantaneous")
    if variant == "random":
        options["init"] = "random"
    elif variant == "peer":
        options["init"] = "fastmnmf2" if panned else "auto"
    elif variant == "own":
        if not panned:
            options |= own_start(n_sources, n_mics)
        elif method == "mnmf-mu":
            options["init"] = "panning"
        else:
            options["init"] = ModelStart(
                mnmf.GainsModel(mixing="instantaneous"), max_iter=50, start=PanningStart()
            )
    return options


#: (label, method, options): MNMF from each kind of start, native FastMNMF2 with two
#: source models, the peers at their wrappers' defaults (100 iterations) and at
#: pyroomacoustics' own iteration counts.
METHODS = (
    ("mnmf-mu/random", "mnmf-mu", {}),
    ("mnmf-mu/peer", "mnmf-mu", {}),
    ("mnmf-mu/own", "mnmf-mu", {}),
    ("mnmf-em/random", "mnmf-em", {}),
    ("mnmf-em/peer", "mnmf-em", {}),
    ("mnmf-em/own", "mnmf-em", {}),
    ("mnmf-fastmnmf", "mnmf-fastmnmf", {}),
    ("mnmf-fastmnmf/smooth", "mnmf-fastmnmf", {}),
    ("mnmf-fastmnmf/ilrma", "mnmf-fastmnmf", {}),
    ("auxiva", "auxiva", {}),
    ("ilrma", "ilrma", {}),
    ("fastmnmf2", "fastmnmf2", {}),
    ("auxiva@20", "auxiva", {"n_iter": 20}),
    ("ilrma@20", "ilrma", {"n_iter": 20}),
    ("fastmnmf2@30", "fastmnmf2", {"n_iter": 30}),
)


def quality(seeds: int, scenes: str | None = None) -> None:
    table: dict[tuple[str, str], list[tuple[float, float, float, float]]] = {}
    failures: list[str] = []
    for seed in range(seeds):
        for scene, mixture in quality_scenes(seed):
            if scenes is not None and scenes not in scene:
                continue
            for label, method, extra in METHODS:
                if method in ("auxiva", "ilrma") and mixture.n_sources > mixture.n_mics:
                    continue
                if label.endswith("/ilrma") and mixture.n_sources != mixture.n_mics:
                    continue
                options = scene_options(scene, label, mixture.n_sources, mixture.n_mics) | extra
                t0 = time.perf_counter()
                try:
                    estimates = mnmf.separate(
                        mixture.mix, n_sources=mixture.n_sources, method=method, rng=seed,
                        **options,
                    )  # fmt: skip
                except Exception as error:  # counted, never hidden
                    failures.append(f"{scene} seed {seed} {label}: {type(error).__name__}: {error}")
                    print(f"  FAILED {failures[-1]}", flush=True)
                    continue
                seconds = time.perf_counter() - t0
                scores = mnmf.evaluate(estimates, mixture.images, mixture=mixture.mix)
                row = (scores.mean("SDR"), scores.mean("SIR"), scores.mean("ΔSDR"), seconds)
                table.setdefault((scene, label), []).append(row)
                print(
                    f"  seed {seed} {scene:<20} {label:<20} SDR {row[0]:6.2f} SIR {row[1]:6.2f} "
                    f"ΔSDR {row[2]:6.2f}  {seconds:5.1f} s",
                    flush=True,
                )
    print(f"\n# quality: mean over sources, then over {seeds} seeds (± std over seeds)")
    header = f"{'SDR':>13} {'SIR':>13} {'ΔSDR':>13} {'s/run':>6} runs"
    print(f"{'scene':<20} {'method':<20} {header}")
    for (scene, label), rows in table.items():
        values = np.array(rows)
        mean, std = values.mean(axis=0), values.std(axis=0)
        print(
            f"{scene:<20} {label:<20} {mean[0]:6.2f} ± {std[0]:4.2f} "
            f"{mean[1]:6.2f} ± {std[1]:4.2f} {mean[2]:6.2f} ± {std[2]:4.2f} {mean[3]:6.1f} "
            f"{len(rows):>4}"
        )
    print(f"failed runs: {len(failures)}")
    for failure in failures:
        print(f"  {failure}")


def stability_scenes():
    """(name, mixture, EM options for mnmf's own start) of ``--part starts``."""
    from mnmf.algorithms import ModelStart, PanningStart

    pool = mnmf.SourcePool(SHARED / "sources", fs=FS)
    native = own_start(2, 2)
    for rt60 in (0.0, 0.15, 0.3, 0.5):
        for seed in range(5):
            signals, _ = pool.draw_many(["speech", "speech"], seed, duration=6.0)
            room = mnmf.simulate_room(signals, FS, rt60=rt60, mic_spacing=0.05, rng=seed)
            yield f"room rt60 {rt60}", seed, room, {}, native
    live = mnmf.load_mixture(SHARED / "recorded" / "liverec_female4_130ms_5cm")
    panned = mnmf.load_mixture(SHARED / "mixtures" / "sisec08_dev2_nodrums_inst")
    chained = ModelStart(mnmf.GainsModel(mixing="instantaneous"), max_iter=50, start=PanningStart())
    for seed in range(3):
        yield "liverec", seed, live, {}, native
        yield (
            "sisec08 inst",
            seed,
            panned,
            {"n_components": 8},
            {"n_components": 8, "init": chained},
        )
    for seed in range(3):
        signals, _ = pool.draw_many(["music", "music", "speech"], seed, duration=6.0)
        room = mnmf.simulate_room(signals, FS, rt60=0.25, mic_spacing=0.05, rng=seed)
        yield "3 sources rt60 0.25", seed, room, {}, own_start(3, 2)


def stability() -> None:
    """The EM's ΔSDR at its start and after 100 iterations, from a peer and from its own start."""
    settings = mnmf.Stft(n_fft=N_FFT, hop=HOP)
    rows: dict[tuple[str, str], list[tuple[float, float]]] = {}
    failures: list[str] = []
    for scene, seed, mixture, base, own in stability_scenes():
        X = settings.analyze(mixture.mix)
        for start_name, options in (("peer (auto)", base), ("mnmf's own", base | own)):
            scores = []
            try:
                for iterations in (0, 100):
                    fit = mnmf.fit_mnmf(
                        X, mixture.n_sources, spatial="convolutive", max_iter=iterations,
                        stft=settings, rng=seed, **({"init": "auto"} | options),
                    )  # fmt: skip
                    images = fit.images(X, length=mixture.mix.shape[0])
                    scores.append(
                        mnmf.evaluate(images, mixture.images, mixture=mixture.mix).mean("ΔSDR")
                    )
            except Exception as error:  # counted, never hidden
                failures.append(
                    f"{scene} seed {seed} {start_name}: {type(error).__name__}: {error}"
                )
                print(f"  FAILED {failures[-1]}", flush=True)
                continue
            rows.setdefault((scene, start_name), []).append(tuple(scores))
            line = f"start {scores[0]:6.2f} end {scores[1]:6.2f}"
            print(f"  {scene:<20} seed {seed} {start_name:<12} {line}", flush=True)
    print("\n# starts: EM ΔSDR at its start and after 100 iterations (mean ± std over seeds)")
    header = f"{'runs':>4} {'at start':>14} {'after EM':>14} {'drops>1dB':>9}"
    print(f"{'scene':<20} {'start':<12} {header}")
    for (scene, start_name), values in rows.items():
        array = np.array(values)
        drops = int(np.sum(array[:, 1] < array[:, 0] - 1.0))
        print(
            f"{scene:<20} {start_name:<12} {len(values):>4} "
            f"{array[:, 0].mean():6.2f} ± {array[:, 0].std():4.2f} "
            f"{array[:, 1].mean():6.2f} ± {array[:, 1].std():4.2f} {drops:>9}"
        )
    print(f"failed runs: {len(failures)}")
    for failure in failures:
        print(f"  {failure}")


def ilrma_draws(draws: int = 5) -> None:
    """How much a 50-iteration ILRMA start depends on its random draw: on the quality
    part's room scene, seed 0, pyroomacoustics' ILRMA and mnmf's native one (FastMNMF
    with G = I, 2 components per source) from ``draws`` draws each, with the native
    fit's final cost; then the native one at 100 and 300 iterations (the quality
    part's seed)."""
    from mnmf.peers import peer_images
    from mnmf.spatial import FastMNMFModel

    settings = mnmf.Stft()
    scene, mixture = next(quality_scenes(0))
    X = settings.analyze(mixture.mix)
    length = mixture.mix.shape[0]

    def score(spectra: np.ndarray) -> float:
        images = np.stack([settings.synthesize(image, length=length) for image in spectra])
        return mnmf.evaluate(images, mixture.images, mixture=mixture.mix).mean("ΔSDR")

    print(f"# ILRMA starts on {scene}, seed 0: ΔSDR of 50 iterations from each draw")
    for draw in range(draws):
        peer = peer_images(X, 2, "ilrma", rng=np.random.default_rng(draw), options={"n_iter": 50})
        fit = mnmf.fit_mnmf(
            X, 2, n_components=2, spatial=FastMNMFModel(variant="ilrma"), max_iter=50, tol=0,
            stft=settings, rng=draw,
        )  # fmt: skip
        native = score(fit.image_spectrograms(X))
        print(
            f"  draw {draw}: pyroomacoustics {score(peer):6.2f}   native {native:6.2f} "
            f"(final cost {fit.cost[-1]:.7g})",
            flush=True,
        )
    for iterations in (100, 300):
        fit = mnmf.fit_mnmf(
            X, 2, n_components=2, spatial=FastMNMFModel(variant="ilrma"), max_iter=iterations,
            tol=0, stft=settings, rng=0,
        )  # fmt: skip
        print(f"  native, {iterations} iterations (rng 0): {score(fit.image_spectrograms(X)):6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--part",
        choices=("speed", "threads", "em-blocks", "quality", "starts", "ilrma-draws", "all"),
        default="all",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--scenes", help="quality: only the scenes whose name contains this")
    args = parser.parse_args()
    warnings.simplefilter("ignore", FutureWarning)
    if args.part in ("speed", "all"):
        speed(args.repeats)
    if args.part in ("threads", "all"):
        thread_speedups(args.repeats)
    if args.part in ("em-blocks", "all"):
        em_blocks(args.repeats)
    if args.part in ("quality", "all"):
        quality(args.seeds, args.scenes)
    if args.part in ("starts", "all"):
        stability()
    if args.part in ("ilrma-draws", "all"):
        ilrma_draws()


if __name__ == "__main__":
    main()
