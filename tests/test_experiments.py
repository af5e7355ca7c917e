"""The Hydra layer: presets compose, a run writes a complete folder, sweeps resume."""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException, MissingConfigException

import experiments.run
from experiments.config import register, validate
from experiments.data import DATA_KINDS
from experiments.run import completed_metrics, run_experiment
from mnmf.methods import method_options

REPO = Path(__file__).resolve().parents[1]
CONF = str(REPO / "conf")
PRESETS = sorted(p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml"))
TINY = ["data.duration=1.5", "stft.n_fft=512", "stft.hop=128"]


def tiny(preset: str) -> list[str]:
    """TINY for a preset: 1.5 s drawn or simulated, or a 1.5 s excerpt of a recording."""
    kind = composed([f"experiment={preset}"]).data.kind
    length = "data.excerpt=1.5" if DATA_KINDS.get(kind).recording else TINY[0]
    return [length, *TINY[1:]]


register()


def composed(overrides: list[str]):
    with initialize_config_dir(version_base="1.3", config_dir=CONF):
        return compose("config", overrides=overrides)


def run_cli(*arguments: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "experiments.run", *arguments],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_composes_and_validates(preset):
    cfg = composed([f"experiment={preset}", *tiny(preset)])
    validate(cfg)
    assert cfg.name == preset


def test_the_seed_presets_are_all_there():
    expected = {
        "sine", "speech_music_single_channel", "mnmf_speech", "mnmf_music", "recorded",
        "piano", "smooth_study", "rt60_sweep", "demo", "speech_music_supervised", "djmix",
        "djmix_sweep", "speech_music_rank", "masks", "mnmf_speech_music", "mnmf_mics",
    }  # fmt: skip
    assert expected <= set(PRESETS)


@pytest.mark.parametrize(
    "overrides, error, match",
    [
        (["data.rt6=0.3"], ConfigCompositionException, "data.rt6"),
        (["seed=abc"], ConfigCompositionException, "seed"),
        (["data.duration=long"], ConfigCompositionException, "duration"),
        (["model=mnmf_xx"], MissingConfigException, "mnmf_em"),  # lists the valid ones
        (["stft=huge"], MissingConfigException, "default"),
    ],
)
def test_bad_overrides_fail_at_composition(overrides, error, match):
    with pytest.raises(error, match=match):
        composed(overrides)


@pytest.mark.parametrize(
    "overrides, match",
    [
        (["data.kind=cloud"], r"data.kind='cloud' is not valid; choose one of \[.*'synthetic'"),
        (["model.method=pca"], r"model.method='pca' is not valid; choose one of"),
        (["data.sources=[speech,violin]"], "data.sources entry='violin'"),
        (["stft.hop=4096"], "stft: hop must be <= n_fft"),
        (["data=recorded", "data.path=null"], "needs data.path"),
        (["data=recorded", "data.duration=3"], "a recording .* keeps data.excerpt seconds"),
        (["data.excerpt=3"], "data.excerpt applies to recordings"),
        (["++model.options.n_compnents=3"], r"model.options of method 'mnmf-em' got unknown"),
    ],
)
def test_bad_values_fail_before_any_work(overrides, match):
    with pytest.raises(ValueError, match=match):
        validate(composed(overrides))


def test_end_to_end_run_writes_a_complete_folder(tmp_path):
    cfg = composed([*TINY, "++model.options.max_iter=5", "++model.options.init_iter=5"])
    objective = run_experiment(cfg, tmp_path, overrides=["test"])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["status"] == "complete" and completed_metrics(tmp_path) == metrics
    assert objective == pytest.approx(metrics["objective"])
    assert np.isfinite(objective)
    for key in ("scores", "mixture_scores", "improvements", "timings", "fit", "versions", "seed"):
        assert key in metrics, key
    np.testing.assert_allclose(
        metrics["improvements"]["ΔSDR"],
        np.subtract(metrics["scores"]["SDR"], metrics["mixture_scores"]["SDR"]),
    )
    assert len(metrics["fit"]["cost"]) == len(metrics["fit"]["cost_iterations"]) >= 2
    files = metrics["files"]
    for name in [files["mixture"], *files["estimates"], *files["references"], *files["figures"]]:
        assert (tmp_path / name).stat().st_size > 0, name
    assert {"spectrograms.png", "factors.png", "cost.png"} <= set(files["figures"])
    assert (tmp_path / "config.yaml").read_text().startswith("name: default")


def test_sine_preset_reproduces_the_seed_slides(tmp_path):
    """Two gated sines, one channel, KL-NMF K = 2. Measured 26.7-28.7 dB SDR over seeds
    0-5 (IS-NMF: −1.3 to 22 dB, its scale invariance lets the noise-floor bins decide);
    the 20 dB bar fails on any broken stage (the mixture itself scores about 0 dB)."""
    run_experiment(composed(["experiment=sine"]), tmp_path)
    metrics = completed_metrics(tmp_path)
    assert min(metrics["scores"]["SDR"]) > 20
    assert max(metrics["mixture_scores"]["SDR"]) < 1
    # The slides' point: the error sits at the gates' edges (measured 3.0× elsewhere).
    edges = metrics["gate_edges"]
    assert min(edges["ratio"]) > 1.5 and np.isfinite(edges["model_error"])
    assert edges["model_error_near"] > edges["model_error_elsewhere"]
    assert "gate_edges.png" in metrics["files"]["figures"]


def test_sine_fast_gates_put_more_of_the_error_at_the_edges(tmp_path):
    """The slides' second case (α = 23, β = 31): separation is worse than with slow
    gates (measured SDR 14.6 against 27.7 dB, seed 0) and the error is still larger
    near the edges than between them; the slides' measure mean |y − (x̂₁ + x̂₂)| rises."""
    slow, fast = tmp_path / "slow", tmp_path / "fast"
    run_experiment(composed(["experiment=sine"]), slow)
    run_experiment(composed(["experiment=sine", "data=sine_edges"]), fast)
    slow_metrics, fast_metrics = completed_metrics(slow), completed_metrics(fast)
    assert fast_metrics["data"] == "sine_edges"
    assert max(fast_metrics["scores"]["SDR"]) < min(slow_metrics["scores"]["SDR"]) - 5
    assert min(fast_metrics["gate_edges"]["ratio"]) > 1.0
    assert fast_metrics["gate_edges"]["model_error"] > slow_metrics["gate_edges"]["model_error"]
    from experiments.report import build_report

    markdown = (build_report(tmp_path) / "report.md").read_text()
    assert "## Task separate: errors at the gates' edges" in markdown
    assert "| isnmf | sine | 1 |" in markdown and "| isnmf | sine_edges | 1 |" in markdown


@pytest.mark.slow
def test_speech_music_rank_fits_better_but_does_not_separate_better(tmp_path, shared_data):
    """The seed slides' rank study on its trend (seeds 0, 1; measured: IS divergence per
    bin 1.08 → 0.35, correlation 0.63 → 0.83, ΔSDR 8.4 → −0.8 dB from r = 2 to 32): the
    model's fit of the mixture improves with the rank, the separation does not."""
    found: dict[int, list[dict]] = {}
    for components in (1, 16):
        for seed in (0, 1):
            folder = tmp_path / f"r{components}_s{seed}"
            cfg = composed(
                ["experiment=speech_music_rank", f"model.options.n_components={components}",
                 f"seed={seed}"]
            )  # fmt: skip
            run_experiment(cfg, folder)
            metrics = completed_metrics(folder)
            assert metrics["reconstruction"]["rank"] == 2 * components
            found.setdefault(2 * components, []).append(metrics)

    def mean(rank: int, value) -> float:
        return float(np.mean([value(m) for m in found[rank]]))

    def divergence(m):
        return m["reconstruction"]["is_divergence_per_bin"]

    assert mean(32, divergence) < 0.7 * mean(2, divergence)
    assert mean(32, lambda m: m["reconstruction"]["correlation"]) > mean(
        2, lambda m: m["reconstruction"]["correlation"]
    )
    assert mean(32, lambda m: m["summary"]["ΔSDR"]) < mean(2, lambda m: m["summary"]["ΔSDR"]) + 1
    from experiments.report import build_report

    report = build_report(tmp_path)
    assert (report / "img" / "rank.png").stat().st_size > 0


def test_sdr_tracking_records_a_curve(tmp_path):
    cfg = composed(
        [*TINY, "model=mnmf_mu", "eval=track", "eval.track_every=5", "++model.options.max_iter=10"]
    )
    run_experiment(cfg, tmp_path)
    track = json.loads((tmp_path / "metrics.json").read_text())["sdr_track"]
    assert [t["iteration"] for t in track] == [5, 10]
    assert (tmp_path / "sdr_track.png").exists()


def test_a_failing_run_is_recorded_and_returns_nan(tmp_path):
    cfg = composed([*TINY, "model=mnmf_mu", "++model.options.n_iter=5"])
    assert math.isnan(run_experiment(cfg, tmp_path))
    failure = json.loads((tmp_path / "failed.json").read_text())
    assert failure["status"] == "failed" and "n_iter" in failure["error"]
    assert not (tmp_path / "metrics.json").exists()
    # A later success replaces the failure record.
    fixed = composed([*TINY, "model=mixture"])
    run_experiment(fixed, tmp_path)
    assert completed_metrics(tmp_path) is not None and not (tmp_path / "failed.json").exists()


def test_more_sources_than_the_data_have_is_a_clear_failure(tmp_path):
    cfg = composed([*TINY, "model=mixture", "model.n_sources=3"])
    assert math.isnan(run_experiment(cfg, tmp_path / "scored"))
    error = json.loads((tmp_path / "scored" / "failed.json").read_text())["error"]
    assert "model.n_sources=3 but the data have 2 sources" in error
    unscored = composed([*TINY, "model=mixture", "model.n_sources=3", "eval=none"])
    run_experiment(unscored, tmp_path / "unscored")
    assert len(completed_metrics(tmp_path / "unscored")["files"]["estimates"]) == 3


def test_a_complete_run_is_skipped(tmp_path, caplog):
    cfg = composed([*TINY, "model=mixture"])
    first = run_experiment(cfg, tmp_path)
    stamp = (tmp_path / "metrics.json").stat().st_mtime_ns
    with caplog.at_level(logging.INFO, logger="mnmf-run"):
        assert run_experiment(cfg, tmp_path) == first
    assert (tmp_path / "metrics.json").stat().st_mtime_ns == stamp
    assert "skip" in caplog.text and experiments.run.last_status == "reused"


def test_a_changed_config_makes_a_finished_run_stale(tmp_path, caplog):
    """The demo's case: duration 5 -> 3 s must not reuse the 5 s result."""
    out = tmp_path / "run"
    run_experiment(composed([*TINY, "model=mixture"]), out)
    first = completed_metrics(out)
    changed = composed(["data.duration=1.0", *TINY[1:], "model=mixture"])
    with caplog.at_level(logging.INFO, logger="mnmf-run"):
        run_experiment(changed, out)
    assert "redo" in caplog.text and "data.duration: 1.5 -> 1.0" in caplog.text
    again = completed_metrics(out)
    assert again["duration"] == pytest.approx(1.0) and first["duration"] == pytest.approx(1.5)
    assert again["fingerprint"]["digest"] != first["fingerprint"]["digest"]
    assert again["fingerprint"]["parts"]["code"] == first["fingerprint"]["parts"]["code"]
    kept = json.loads((out / "metrics.stale.json").read_text())  # the old result, kept
    assert kept["duration"] == pytest.approx(1.5)


def test_on_stale_refuse_keeps_the_old_result_and_fails(tmp_path, caplog):
    out = tmp_path / "run"
    run_experiment(composed([*TINY, "model=mixture"]), out)
    before = (out / "metrics.json").read_bytes()
    refusing = composed(["data.duration=1.0", *TINY[1:], "model=mixture", "on_stale=refuse"])
    with caplog.at_level(logging.INFO, logger="mnmf-run"):
        assert math.isnan(run_experiment(refusing, out))
    assert experiments.run.last_status == "refused"
    assert "refused" in caplog.text and "on_stale=redo" in caplog.text
    assert (out / "metrics.json").read_bytes() == before and not (out / "failed.json").exists()
    # on_stale itself is not part of the fingerprint: the same run with refuse is reused.
    same = composed([*TINY, "model=mixture", "on_stale=refuse"])
    run_experiment(same, out)
    assert experiments.run.last_status == "reused"
    misspelt = composed([*TINY, "model=mixture", "on_stale=keep"])
    assert math.isnan(run_experiment(misspelt, tmp_path / "bad"))
    error = json.loads((tmp_path / "bad" / "failed.json").read_text())["error"]
    assert "on_stale='keep' is not valid" in error


def test_changed_code_or_data_files_make_a_run_stale(tmp_path, caplog):
    from mnmf.data.io import write_audio

    recording = tmp_path / "rec.wav"
    rng = np.random.default_rng(0)
    write_audio(recording, 0.1 * rng.standard_normal((8000, 3)), 8000)
    cfg = composed(["data=file", f"data.path={recording}", "model=mixture", *TINY[1:]])
    out = tmp_path / "run"
    run_experiment(cfg, out)
    metrics = completed_metrics(out)
    assert metrics["fingerprint"]["data_files"] == 1 and metrics["n_mics"] == 3
    assert metrics["fs"] == 8000 and "scores" not in metrics  # any rate, nothing scored
    # A data file rewritten since: redone.
    write_audio(recording, 0.2 * rng.standard_normal((8000, 3)), 8000)
    os.utime(recording, ns=(time.time_ns(), time.time_ns() + 10**9))
    with caplog.at_level(logging.INFO, logger="mnmf-run"):
        run_experiment(cfg, out)
    assert "data files changed" in caplog.text and experiments.run.last_status == "done"
    # A result written by other code (its recorded code part differs): redone.
    metrics = json.loads((out / "metrics.json").read_text())
    metrics["fingerprint"]["parts"]["code"] = "0" * 64
    metrics["fingerprint"]["digest"] = "0" * 64
    (out / "metrics.json").write_text(json.dumps(metrics))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="mnmf-run"):
        run_experiment(cfg, out)
    assert "code changed" in caplog.text and experiments.run.last_status == "done"
    # A result without a fingerprint (an older mnmf): redone too.
    metrics = json.loads((out / "metrics.json").read_text())
    del metrics["fingerprint"]
    (out / "metrics.json").write_text(json.dumps(metrics))
    run_experiment(cfg, out)
    assert experiments.run.last_status == "done"


def test_the_fingerprint_ignores_what_cannot_change_a_result():
    from experiments.fingerprint import fingerprint

    base = fingerprint(composed([*TINY, "model=mixture"]))
    renamed = fingerprint(composed([*TINY, "model=mixture", "name=other", "data_root=/x"]))
    reseeded = fingerprint(composed([*TINY, "model=mixture", "seed=1"]))
    assert renamed["digest"] == base["digest"]
    assert reseeded["digest"] != base["digest"]
    assert reseeded["parts"]["code"] == base["parts"]["code"]
    assert reseeded["parts"]["data"] == base["parts"]["data"]


def test_run_log_holds_the_runs_log_and_files_are_readable(tmp_path):
    out = tmp_path / "run"
    previous = os.umask(0o022)
    try:
        result = run_cli(*TINY, "model=mixture", f"hydra.run.dir={out}")
    finally:
        os.umask(previous)
    assert result.returncode == 0, result.stderr[-2000:]
    log_text = (out / "run.log").read_text()
    assert "run " in log_text and "done " in log_text and "data:" in log_text
    for name in ("metrics.json", "mixture.wav", "config.yaml", "estimate_1.wav"):
        assert ((out / name).stat().st_mode & 0o777) == 0o644, name


def test_help_is_the_apps_own():
    result = run_cli("--help")
    assert result.returncode == 0
    assert "mnmf-run: multichannel NMF" in result.stdout
    assert "data: " in result.stdout and "data=file" in result.stdout
    assert "outputs/sweeps" in result.stdout


@pytest.mark.parametrize(
    "overrides",
    [
        ["data=recorded", "data.path=/nonexistent"],
        ["stft.n_fft=-5"],
        ["++model.options.max_iter=abc"],
    ],
)
def test_a_failed_single_run_exits_non_zero(overrides, tmp_path):
    result = run_cli(*TINY, *overrides, f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 1, result.stdout[-2000:]
    assert (tmp_path / "run" / "failed.json").exists()
    assert "FAILED" in result.stdout + result.stderr


def test_smooth_study_task_runs_from_the_config(tmp_path):
    from mnmf.data.io import write_audio
    from mnmf.data.synthetic import melody

    audio = tmp_path / "melody.wav"
    write_audio(audio, melody(fs=8000, duration=2.0, rng=np.random.default_rng(0)), 8000)
    cfg = composed(
        [
            "experiment=smooth_study", f"task.audio={audio}", "task.fs=8000",
            "stft.n_fft=512", "task.components=3", "task.iterations=3", "task.lambdas=[0,10]",
        ]
    )  # fmt: skip
    out = tmp_path / "run"
    run_experiment(cfg, out)
    metrics = completed_metrics(out)
    assert metrics is not None and metrics["task"] == "smooth_study"
    assert "cost_mm_vs_em.png" in metrics["files"]["figures"]


def test_import_mnmf_does_not_import_hydra():
    code = "import sys, mnmf; assert not any(m.startswith('hydra') for m in sys.modules), 'hydra'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


@pytest.mark.slow
def test_joblib_multirun_resumes_and_redoes_deleted_runs(tmp_path):
    sweep = tmp_path / "sweep"
    arguments = [
        "-m", "model=mnmf_mu,isnmf", *TINY, "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={sweep}", "++model.options.max_iter=5",
    ]  # fmt: skip
    first = run_cli(*arguments)
    assert first.returncode == 0, first.stderr[-2000:]
    runs = sorted(p.parent for p in sweep.glob("*/metrics.json"))
    assert len(runs) == 2 and all(completed_metrics(r) for r in runs)
    assert "Joblib" in first.stderr + first.stdout  # the joblib launcher ran the jobs

    # Every finished job reports the sweep's progress, also from joblib's workers.
    assert "sweep: 1 done, 0 failed, 1 remaining of 2" in first.stdout
    assert "sweep finished: 2 done, 0 failed, 0 remaining of 2" in first.stdout
    plan = json.loads((sweep / "sweep.json").read_text())
    assert plan["total"] == 2 and len(plan["planned"]) == 2

    again = run_cli(*arguments)
    assert again.stdout.count("[mnmf-run][INFO] - skip") == 2
    assert "2 done (2 reused)" in again.stdout

    (runs[0] / "metrics.json").unlink()
    third = run_cli(*arguments)
    assert third.stdout.count("[mnmf-run][INFO] - skip") == 1
    assert third.stdout.count("[mnmf-run][INFO] - done") == 1
    assert completed_metrics(runs[0]) is not None

    # The demo's stale case: a setting changed in a preset (not in the folder names, as
    # here with the job number as folder) redoes every run of the sweep.
    numbered = [*arguments, "hydra.sweep.subdir=${hydra.job.num}"]
    run_cli(*numbered)
    runs = [sweep / "0", sweep / "1"]
    changed = [a.replace("data.duration=1.5", "data.duration=1.0") for a in numbered]
    fourth = run_cli(*changed)
    assert fourth.returncode == 0, fourth.stderr[-2000:]
    assert fourth.stdout.count("stale result: config changed (data.duration: 1.5 -> 1.0)") == 2
    assert all(completed_metrics(r)["duration"] == pytest.approx(1.0) for r in runs)


@pytest.mark.slow
def test_a_multirun_finishes_every_run_then_exits_non_zero(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli(
        "-m", "model=mixture,isnmf", *TINY, "++model.options.max_iter=3",
        f"hydra.sweep.dir={sweep}",
    )  # fmt: skip
    assert result.returncode == 1
    assert len(list(sweep.glob("*/metrics.json"))) == 1  # isnmf ran after mixture failed
    assert len(list(sweep.glob("*/failed.json"))) == 1
    assert "1 of 2 run(s) failed" in result.stdout + result.stderr
    succeeded = run_cli("-m", "model=isnmf", *TINY, "++model.options.max_iter=3",
                        f"hydra.sweep.dir={tmp_path / 'ok'}")  # fmt: skip
    assert succeeded.returncode == 0, succeeded.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize(
    "stop", [signal.SIGKILL, signal.SIGINT], ids=["killed", "ctrl-c"]
)  # SIGINT: what Ctrl-C sends to the terminal's process group
def test_an_interrupted_run_leaves_no_finished_result_and_the_relaunch_finishes_it(stop, tmp_path):
    out = tmp_path / "run"
    arguments = [
        "data.duration=4", "model=mnmf_mu", "++model.options.max_iter=100000",
        "++model.options.tol=0", f"hydra.run.dir={out}",
    ]  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "experiments.run", *arguments],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        # A terminal's foreground job takes Ctrl-C; a test runner started in the
        # background (`make test &`, nohup) passes SIGINT on ignored, and Python then
        # keeps it ignored: give the run the terminal's default.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 120
        while not (out / ".hydra").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3.0)  # inside the fit
        os.killpg(process.pid, stop)
        assert process.wait(timeout=60) != 0
    finally:
        if process.poll() is None:  # never leave a 100000-iteration fit running
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert completed_metrics(out) is None and not (out / "metrics.json").exists()
    finished = run_cli(*[a for a in arguments if "max_iter" not in a], "++model.options.max_iter=5")
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert completed_metrics(out) is not None


#: A short DJ mix (3 tracks of 6–8 s heard, 2–3 s crossfades) and few iterations.
DJMIX_TINY = [
    "task.generator.play_seconds=[6,8]", "task.generator.crossfade_seconds=[2,3]",
    "task.generator.fs=11025", "task.hops=[2.0,1.0]", "task.overlap=4", "task.n_mels=48",
    "task.max_iter=20",
]  # fmt: skip


@pytest.mark.parametrize("method", ["multipass", "multipass_nmf", "single_pass", "dtw"])
def test_the_djmix_task_scores_every_method_against_the_truth(method, tmp_path, shared_data):
    cfg = composed(["experiment=djmix", f"task.method={method}", *DJMIX_TINY])
    out = tmp_path / method
    objective = run_experiment(cfg, out)
    metrics = completed_metrics(out)
    assert metrics is not None, (out / "failed.json").read_text()
    assert metrics["model"] == method and set(metrics["per_track"]) == set(metrics["tracks"])
    assert math.isfinite(objective) and objective == metrics["summary"]["warp_mae_s"]
    files = metrics["files"]
    assert {"mix.wav", "truth.json", "estimate.csv"} <= {files["mixture"], files["truth"],
                                                          files["estimate"]}  # fmt: skip
    assert "gain.png" in files["figures"] and "warp.png" in files["figures"]
    if method != "dtw":
        assert any(name.startswith("activations_pass_") for name in files["figures"])
    header = (out / "estimate.csv").read_text().splitlines()[0]
    assert header == "track,time,gain,gain_db,position"


def preset_runs(preset: str) -> list[list[str]]:
    """Overrides of one tiny run per model of a preset (its sweep's models, or its own)."""
    with initialize_config_dir(version_base="1.3", config_dir=CONF):
        cfg = compose("config", overrides=[f"experiment={preset}"], return_hydra_config=True)
    swept = (cfg.hydra.sweeper.get("params") or {}).get("model")
    models = str(swept).split(",") if swept else [cfg.model.name]
    if cfg.task.name == "djmix":
        methods = str((cfg.hydra.sweeper.get("params") or {}).get("task.method", "multipass"))
        return [[f"task.method={method}", *DJMIX_TINY] for method in methods.split(",")]
    if cfg.task.name == "smooth_study":
        return [
            ["task.seconds=1.5", "task.fs=8000", "stft.n_fft=512", "task.components=3",
             "task.iterations=2", "task.lambdas=[0,10]"]
        ]  # fmt: skip
    runs = []
    for model in models:
        composed_model = composed([f"experiment={preset}", f"model={model}"])
        accepted = method_options(composed_model.model.method, {})
        if not isinstance(composed_model.model.options.get("init", "auto"), str):
            accepted = accepted - {"init_iter"}  # a start strategy carries its own
        iterations = ("max_iter", "init_iter", "n_iter")
        iteration_caps = [f"++model.options.{key}=3" for key in iterations if key in accepted]
        runs.append([f"model={model}", *tiny(preset), *iteration_caps])
    return runs


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_runs_with_tiny_iteration_counts(preset, tmp_path, shared_data):
    """Every preset, every model of its sweep, 1.5 s of data and 3 iterations: each run
    writes a complete folder (a preset that composes but fails at run time shows here)."""
    for index, overrides in enumerate(preset_runs(preset)):
        cfg = composed([f"experiment={preset}", *overrides])
        out = tmp_path / str(index)
        run_experiment(cfg, out, overrides=overrides)
        failure = out / "failed.json"
        assert not failure.exists(), failure.read_text()
        metrics = completed_metrics(out)
        assert metrics is not None and metrics["task"] == cfg.task.name
        if cfg.task.name == "separate" and cfg.eval.enabled:
            assert np.isfinite(metrics["objective"]), overrides
        if preset == "piano":  # what the seeds page's piano check reads
            assert len(metrics["components"]["pitched"]) == cfg.model.n_sources


@pytest.mark.parametrize("launcher", ["joblib", "submitit_local", "submitit_slurm"])
def test_launchers_compose(launcher):
    with initialize_config_dir(version_base="1.3", config_dir=CONF):
        cfg = compose("config", overrides=[f"hydra/launcher={launcher}"], return_hydra_config=True)
    assert launcher.split("_")[0] in cfg.hydra.launcher._target_.lower()


@functools.cache
def swept_models() -> frozenset[str]:
    """The models that some preset runs (its sweep's, or its own)."""
    names = set()
    for preset in PRESETS:
        with initialize_config_dir(version_base="1.3", config_dir=CONF):
            cfg = compose("config", overrides=[f"experiment={preset}"], return_hydra_config=True)
        swept = (cfg.hydra.sweeper.get("params") or {}).get("model")
        names |= set(str(swept).split(",")) if swept else {cfg.model.name}
    return frozenset(names)


#: Model configs that no preset runs (those that one does run in the test above).
UNSWEPT_MODELS = sorted(
    p.stem for p in (REPO / "conf" / "model").glob("*.yaml") if p.stem not in swept_models()
)


@pytest.mark.slow
@pytest.mark.parametrize("model", UNSWEPT_MODELS)
def test_every_model_config_runs(model, tmp_path):
    """Every model config that no preset runs, on the default synthetic room, 1.5 s and
    3 iterations (with the preset test above, every config in conf/model/ runs)."""
    accepted = method_options(composed([f"model={model}"]).model.method, {})
    caps = [
        f"++model.options.{key}=3" for key in ("max_iter", "init_iter", "n_iter") if key in accepted
    ]
    overrides = [f"model={model}", *TINY, *caps]
    out = tmp_path / "run"
    run_experiment(composed(overrides), out, overrides=overrides)
    assert not (out / "failed.json").exists(), (out / "failed.json").read_text()
    assert np.isfinite(completed_metrics(out)["objective"])


@pytest.mark.parametrize(
    ("samples", "match"),
    [
        (np.zeros((8000, 2)), None),  # silent: silent estimates, a complete run
        (0.1 * np.ones((400, 2)), "mix has 400 samples"),  # 0.05 s < the 512-sample window
        (0.1 * np.ones((1, 2)), "mix has 1 sample "),
        (np.full((8000, 2), np.nan), "mix contains"),
    ],
    ids=["silent", "short", "one-sample", "nan"],
)
def test_degenerate_recordings_through_the_cli_layer(samples, match, tmp_path):
    import soundfile

    recording = tmp_path / "rec.wav"
    soundfile.write(recording, samples, 8000, subtype="FLOAT")
    cfg = composed(["data=file", f"data.path={recording}", "model=mnmf_mu", *TINY[1:]])
    out = tmp_path / "run"
    objective = run_experiment(cfg, out)
    if match is None:
        metrics = completed_metrics(out)
        assert metrics is not None and math.isnan(objective)
        estimate, _ = soundfile.read(out / metrics["files"]["estimates"][0])
        assert estimate.shape == (8000, 2) and not np.any(estimate)
    else:
        assert math.isnan(objective) and experiments.run.last_status == "failed"
        error = json.loads((out / "failed.json").read_text())["error"]
        assert error.startswith("ValueError: ") and match in error


def test_the_mixtures_scores_are_computed_once_per_mixture(tmp_path, caplog, monkeypatch):
    import mnmf.evaluation

    calls = []
    original = mnmf.evaluation.score_mixture
    monkeypatch.setattr(
        mnmf.evaluation, "score_mixture", lambda *a, **k: calls.append(1) or original(*a, **k)
    )
    for model in ("mixture", "isnmf"):
        overrides = [*TINY, f"model={model}"]
        overrides += ["++model.options.max_iter=3"] if model == "isnmf" else []
        with caplog.at_level(logging.INFO, logger="mnmf-run"):
            run_experiment(composed(overrides), tmp_path / model)
    assert len(calls) == 1 and "mixture scores: cached" in caplog.text
    first, second = (completed_metrics(tmp_path / m) for m in ("mixture", "isnmf"))
    assert first["mixture_scores"] == second["mixture_scores"]
    # Another mixture (another seed) is scored afresh.
    run_experiment(composed([*TINY, "model=mixture", "seed=1"]), tmp_path / "seed1")
    assert len(calls) == 2
    uncached = composed([*TINY, "model=mixture", "eval.cache_mixture_scores=false"])
    run_experiment(uncached, tmp_path / "uncached")
    assert len(calls) == 2  # evaluate() computed them itself
    assert completed_metrics(tmp_path / "uncached")["mixture_scores"] == first["mixture_scores"]


def test_the_djmix_task_reads_a_folder_with_extra_silent_and_other_rate_tracks(tmp_path):
    """A mix folder whose tracks/ holds a track not in the mix, a silent one and one at
    another rate: the absent ones are reported absent (no crash), the log says what was
    resampled; an empty tracks/ and a too-short mix are clear failures."""
    import soundfile

    from mnmf.data.io import resample
    from mnmf.djmix import generate_mix, synthetic_tracks, write_mix_folder

    rng = np.random.default_rng(0)
    tracks = synthetic_tracks(3, duration=14.0, fs=11025, rng=rng)
    generated = generate_mix(
        tracks[:2], fs=11025, rng=rng, play_seconds=(8.0, 9.0), crossfade_seconds=(2.0, 3.0)
    )
    folder = write_mix_folder(tmp_path / "mix", generated)
    soundfile.write(folder / "tracks" / "unused.wav", tracks[2].audio, 11025)
    soundfile.write(folder / "tracks" / "silent.wav", np.zeros(11025 * 10), 11025)
    other_rate = resample(tracks[0].audio, 11025, 8000)
    (folder / "tracks" / f"{tracks[0].name}.wav").unlink()
    soundfile.write(folder / "tracks" / f"{tracks[0].name}.wav", other_rate, 8000)
    overrides = [f"task.mix_folder={folder}", "task.hops=[2.0,1.0,0.5]", "task.overlap=4"]
    out = tmp_path / "run"
    run_experiment(composed(["experiment=djmix", *overrides]), out)
    metrics = completed_metrics(out)
    assert metrics is not None, (out / "failed.json").read_text()
    assert metrics["tracks"]["unused"]["present"] is False
    assert metrics["tracks"]["silent"]["present"] is False
    assert metrics["tracks"][tracks[1].name]["present"] is True
    assert metrics["per_track"][tracks[1].name]["warp_mae_s"] < 0.5

    empty = tmp_path / "empty"
    (empty / "tracks").mkdir(parents=True)
    soundfile.write(empty / "mix.wav", np.zeros(11025), 11025)
    run_experiment(composed(["experiment=djmix", f"task.mix_folder={empty}"]), tmp_path / "e")
    error = json.loads((tmp_path / "e" / "failed.json").read_text())["error"]
    assert "no audio files" in error and not (tmp_path / "e" / "metrics.json").exists()

    short = composed(["experiment=djmix", f"task.mix_folder={folder}", "task.hops=[60.0,1.0]"])
    run_experiment(short, tmp_path / "s")
    error = json.loads((tmp_path / "s" / "failed.json").read_text())["error"]
    assert "hops" in error


@pytest.mark.slow
def test_the_seeds_page_has_a_section_per_seed_document(tmp_path):
    from experiments import seeds

    assert {d.file for d in seeds.DOCUMENTS} == {
        p.name for p in (REPO.parent / "shared" / "seeds").glob("*") if p.is_file()
    } or not (REPO.parent / "shared" / "seeds").is_dir()
    assert set(seeds.presets()) <= set(PRESETS)
    outputs = tmp_path / "outputs"
    assert seeds.main(["--outputs", str(outputs), "--only", "sine"]) == 0
    page = (outputs / "seeds" / "index.html").read_text()
    for document in seeds.DOCUMENTS:
        assert document.file in page
    assert "agrees</b></span>: the slow gates separate" in page
    assert page.count("Not run (no sweep folder)") == len(seeds.presets()) - 2  # sine, djmix link
    assert any(p.name.endswith("gate_edges.png") for p in (outputs / "seeds" / "img").iterdir())
    with pytest.raises(SystemExit):
        seeds.main(["--outputs", str(outputs), "--only", "nope"])


def _planted_run(name: str, metrics: dict):
    from experiments.report.collect import Run

    return Run(folder=Path(name), name=name, metrics={"status": "complete", **metrics})


def test_the_piano_check_counts_pitched_components_over_seeds():
    from experiments import seeds

    def run(seed, pitched):
        f0s = [130.81, 261.63, 196.0, 98.0]  # C3, C4, G3, G2
        return _planted_run(
            f"seed={seed}",
            {"params": {"seed": seed}, "components": {"f0_hz": f0s, "pitched": pitched}},
        )

    runs = [run(0, [True, True, True, False]), run(1, [True, False, True, True])]
    rows, verdict, agrees = seeds._check_piano(runs)
    assert agrees is True  # 3 of 4 pitched in each run
    assert "75%" in verdict and "2 note(s) found by every run" in verdict
    assert ["all runs", "notes every run found", "C3, G3"] in rows
    # One run with half its components unpitched is enough to disagree.
    _, _, agrees = seeds._check_piano([*runs, run(2, [True, True, False, False])])
    assert agrees is False
    assert seeds._check_piano([_planted_run("x", {})])[2] is None


def test_the_smooth_check_needs_every_run_smoother_and_mm_below_em():
    from experiments import seeds

    def run(jumps, mm, em):
        lambdas = [
            {"smoothness": value, "median_jump": jump, "data_fit": 1.0}
            for value, jump in zip((0.0, 1.0, 10.0), jumps, strict=True)
        ]
        costs = {"MM (multiplicative)": {"final_cost": mm}, "EM (SAGE)": {"final_cost": em}}
        return _planted_run("r", {"study": {"mm_vs_em": costs, "lambdas": lambdas}})

    good = [run((0.3, 0.1, 0.01), 1.0, 2.0), run((0.2, 0.1, 0.05), 1.5, 2.5)]
    rows, verdict, agrees = seeds._check_smooth(good)
    assert agrees is True and "in 2 of 2 run(s)" in verdict
    assert any(row[0] == "λ = 10" and row[1] == "median jump" for row in rows)
    assert seeds._check_smooth([*good, run((0.3, 0.4, 0.01), 1.0, 2.0)])[2] is False
    assert seeds._check_smooth([*good, run((0.3, 0.1, 0.01), 3.0, 2.0)])[2] is False
