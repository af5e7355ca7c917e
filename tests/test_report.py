"""mnmf-report (experiments.report) on fabricated run folders: CSV, summary, paired
comparison, per-source tables, honest values, run bookkeeping, a self-contained report
folder, unscored sweeps, and (slow) the page in headless Chromium."""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import math
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
from scipy import stats

from experiments import report
from mnmf.data.io import write_audio, write_json

FS = 8000
MODELS = ("mnmf_em", "mnmf_mu")
RT60S = (0.2, 0.4)
SEEDS = (0, 1)


def fake_scores(model: str, rt60: float, seed: int) -> dict[str, list[float]]:
    """Deterministic per-source scores of a fabricated run."""
    offset = MODELS.index(model) + 10 * rt60 + 0.7 * seed
    return {
        "SDR": [1.0 + offset, 3.0 + offset],
        "ISR": [5.0 + offset, 6.0 + offset],
        "SIR": [4.0 + offset, 2.5 * offset],
        "SAR": [9.0 - offset, 8.0],
        "ΔSDR": [2.0 + offset, 0.5 * offset - 1.0],
        "ΔSIR": [3.0, 1.0 + offset],
    }


def fake_params(model: str, *, rt60: float, seed: int, task: str = "separate") -> dict:
    """Flattened config as experiments.run writes it (only a few keys)."""
    return {
        "name": "fake",
        "task": task,
        "seed": seed,
        "data_root": None,
        "data.kind": "synthetic",
        "data.sources": ["speech", "music"],
        "data.rt60": rt60,
        "data.duration": 0.2,
        "model.name": model,
        "model.method": model.replace("_", "-"),
        "model.options.max_iter": 5 if model == "mnmf_em" else 7,
        "stft.n_fft": 256,
        "eval.track_every": 5 if model == "mnmf_em" else 0,
    }


def write_separation_run(
    folder: Path, *, model: str, rt60: float, seed: int, track: bool = False
) -> None:
    """A complete separate-task run: small wavs, a figure name, metrics.json last."""
    rng = np.random.default_rng(seed)
    names: dict = {"mixture": "mixture.wav", "estimates": [], "references": []}
    write_audio(folder / "mixture.wav", 0.1 * rng.standard_normal((FS // 20, 2)), FS)
    for j in (1, 2):
        for kind in ("reference", "estimate"):
            name = f"{kind}_{j}.wav"
            write_audio(folder / name, 0.1 * rng.standard_normal((FS // 20, 2)), FS)
            names[f"{kind}s"].append(name)
    (folder / "spectrograms.png").write_bytes(PNG)
    names["figures"] = ["spectrograms.png", "factors.png"]  # factors.png is missing
    s = fake_scores(model, rt60, seed)
    cost = list(np.linspace(100.0, 10.0 + seed, 4) * (1 + rt60))
    metrics = {
        "model": model,
        "method": model.replace("_", "-"),
        "data": "synthetic_room",
        "fs": FS,
        "n_sources": 2,
        "n_mics": 2,
        "duration": 0.05,
        "scores": {key: s[key] for key in ("SDR", "ISR", "SIR", "SAR")},
        "mixture_scores": {"SDR": [-1.0, 1.0], "ISR": [9.0, 9.0], "SIR": [-2.0, 2.0]},
        "improvements": {key: s[key] for key in ("ΔSDR", "ΔSIR")},
        "summary": {key: float(np.mean(value)) for key, value in s.items()},
        "objective": float(np.mean(s["ΔSDR"])),
        "fit": {
            "n_iter": 6,
            "converged": False,
            "seconds": 0.1,
            "cost": cost,
            "cost_iterations": [0, 2, 4, 6],
            "cost_seconds": [0.0, 0.03, 0.06, 0.1],
        },
        "timings": {"load": 0.1, "separate": 0.25 + seed, "evaluate": 0.5, "total": 1.0},
        "files": names,
        "status": "complete",
        "name": "fake",
        "task": "separate",
        "seed": seed,
        "overrides": [f"model={model}", f"data.rt60={rt60}", f"seed={seed}"],
        "params": fake_params(model, rt60=rt60, seed=seed),
        "versions": {"mnmf": "0.1.0"},
    }
    if track:
        metrics["sdr_track"] = [{"iteration": 2, "SDR": 1.5}, {"iteration": 4, "SDR": 2.5}]
    write_json(folder / "metrics.json", metrics)


def _png() -> bytes:
    figure, axis = plt.subplots(figsize=(1, 1))
    axis.plot([0, 1])
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=20)
    plt.close(figure)
    return buffer.getvalue()


PNG = _png()


def fabricate_sweep(root: Path) -> dict[str, Path]:
    """2 models × 2 RT60s × 2 seeds, a failed run, an incomplete one and a smooth study."""
    for model in MODELS:
        for rt60 in RT60S:
            for seed in SEEDS:
                folder = root / "sweep" / f"model={model},data.rt60={rt60},seed={seed}"
                track = (model, rt60, seed) == ("mnmf_em", 0.2, 0)
                write_separation_run(folder, model=model, rt60=rt60, seed=seed, track=track)
    failed = root / "sweep" / "model=auxiva,data.rt60=0.2,seed=0"
    write_json(
        failed / "failed.json",
        {
            "status": "failed",
            "error": "ValueError: auxiva <rejected> its options",
            "traceback": "Traceback (most recent call last):\n  ...",
            "overrides": ["model=auxiva"],
        },
    )
    incomplete = root / "sweep" / "model=ilrma,still_running"
    metrics = {"model": "ilrma", "scores": {"SDR": [1.0]}, "params": {"data.rt60": 9.9}}
    write_json(incomplete / "metrics.json", metrics)
    study = root / "other" / "smooth_study"
    (study / "activations.png").parent.mkdir(parents=True)
    (study / "activations.png").write_bytes(PNG)
    write_audio(study / "upmix.wav", np.zeros((FS // 20, 2)), FS)
    write_json(
        study / "metrics.json",
        {
            "model": "smooth_study",
            "data": "ragtime_piano_30s.wav",
            "study": {"lambdas": [0.0, 10.0]},
            "timings": {"study": 1.0},
            "files": {"figures": ["activations.png"], "audio": ["upmix.wav"]},
            "status": "complete",
            "name": "smooth_study",
            "task": "smooth_study",
            "seed": 0,
            "overrides": ["task=smooth_study"],
            "params": fake_params("mnmf_em", rt60=0.7, seed=0, task="smooth_study"),
        },
    )
    return {"root": root, "failed": failed, "incomplete": incomplete, "study": study}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The fabricated folders and their report (built once for the module)."""
    paths = fabricate_sweep(tmp_path_factory.mktemp("runs"))
    paths["out"] = report.build_report(paths["root"], examples=1)
    return paths


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


class Links(HTMLParser):
    """Collects every src/href and counts tags."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.tags: dict[str, int] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] = self.tags.get(tag, 0) + 1
        self.links += [value for name, value in attrs if name in ("src", "href") and value]


def test_report_files_and_conditions(built: dict[str, Path]) -> None:
    out = built["out"]
    assert out == built["root"] / "report"
    for name in ("results.csv", "report.md", "report.html"):
        assert (out / name).is_file()
    assert sorted(p.name for p in (out / "img").glob("*.png")) == [
        "convergence.png",
        "delta_sdr_box.png",
        "delta_sdr_vs_data.rt60.png",
        "sdr_track.png",
    ]
    assert not list(out.rglob(".*.tmp"))  # atomic writes leave no temporary file
    separations = [run for run in report.find_runs(built["root"])[0] if run.is_separation]
    assert report.condition_keys(separations) == ["data.rt60"]


def test_results_csv(built: dict[str, Path]) -> None:
    columns, rows = read_csv(built["out"] / "results.csv")
    assert columns[:8] == ["run", "name", "task", "model", "method", "data", "seed", "data.rt60"]
    assert columns[8:] == [
        "source",
        *("SDR", "SIR", "SAR", "ISR", "ΔSDR", "ΔSIR"),
        *("mixture_SDR", "mixture_SIR", "separate_seconds"),
    ]
    separation = [row for row in rows if row["task"] == "separate"]
    assert len(separation) == len(MODELS) * len(RT60S) * len(SEEDS) * 2
    assert next(row for row in rows if row["task"] == "smooth_study")["SDR"] == ""
    assert not any("ilrma" in row["run"] or "auxiva" in row["run"] for row in rows)
    row = next(
        r
        for r in rows
        if r["run"] == "sweep/model=mnmf_mu,data.rt60=0.4,seed=1" and r["source"] == "2"
    )
    expected = fake_scores("mnmf_mu", 0.4, 1)
    for key in ("SDR", "SIR", "SAR", "ISR", "ΔSDR", "ΔSIR"):
        assert float(row[key]) == pytest.approx(expected[key][1])
    assert float(row["mixture_SDR"]) == 1.0
    assert row["mixture_SIR"] == "2.0"
    assert float(row["data.rt60"]) == 0.4
    assert (row["model"], row["method"], row["seed"]) == ("mnmf_mu", "mnmf-mu", "1")
    assert float(row["separate_seconds"]) == pytest.approx(1.25)


def test_summary_mean_and_ci_by_hand(built: dict[str, Path]) -> None:
    per_run = [np.mean(fake_scores("mnmf_em", 0.2, seed)["ΔSDR"]) for seed in SEEDS]
    n = len(per_run)
    mean = np.mean(per_run)
    half = stats.t.ppf(0.975, n - 1) * np.std(per_run, ddof=1) / math.sqrt(n)
    markdown = (built["out"] / "report.md").read_text(encoding="utf-8")
    line = next(line for line in markdown.splitlines() if line.startswith("| mnmf_em | 0.2 |"))
    assert line.split(" | ")[2] == "2"  # n runs
    assert line.rstrip(" |").endswith(f"{mean:.2f} ± {half:.2f}")
    header = "| model | data.rt60 | n runs | SDR (dB) | SIR (dB) | SAR (dB) | ΔSDR (dB) |"
    assert header in markdown
    table = [line for line in markdown.splitlines() if line.startswith("| mnmf_")]
    assert [line.split(" | ")[:2] for line in table[:4]] == [
        ["| mnmf_em", "0.2"],
        ["| mnmf_mu", "0.2"],
        ["| mnmf_em", "0.4"],
        ["| mnmf_mu", "0.4"],
    ]
    runs = [run for run in report.find_runs(built["root"])[0] if run.is_separation]
    groups = report.summarize(runs, ["data.rt60"])
    group = next(g for g in groups if (g.model, g.condition) == ("mnmf_em", (0.2,)))
    assert group.stats["ΔSDR"] == pytest.approx((mean, half))


def test_markdown_and_html_listings(built: dict[str, Path]) -> None:
    markdown = (built["out"] / "report.md").read_text(encoding="utf-8")
    page = (built["out"] / "report.html").read_text(encoding="utf-8")
    for text in (markdown, page):
        assert "model=auxiva,data.rt60=0.2,seed=0" in text  # the failed run
        assert "still_running" not in text and "ilrma" not in text  # the incomplete one
        assert "other/smooth_study" in text
    assert "ValueError: auxiva <rejected> its options" in markdown
    assert "ValueError: auxiva &lt;rejected&gt; its options" in page
    assert "(img/delta_sdr_box.png)" in markdown
    assert "coincide here" not in markdown  # fabricated scores: SDR - mixture SDR != ΔSDR
    assert "overflow-x: auto" in page and "max-width: 100%" in page
    assert "<script" not in page


def test_html_links_resolve(built: dict[str, Path]) -> None:
    html_path = built["out"] / "report.html"
    parser = Links()
    parser.feed(html_path.read_text(encoding="utf-8"))
    assert parser.links
    for link in parser.links:
        parsed = urlparse(link)
        assert not parsed.scheme and not parsed.netloc, link  # relative links only
        assert ".." not in Path(unquote(parsed.path)).parts, link  # inside the report
        assert (html_path.parent / unquote(parsed.path)).is_file(), link
    assert parser.tags["audio"] == 2 * 5 + 1  # 2 models × (mixture + 2 × 2) + smooth study
    audio = [link for link in parser.links if link.endswith(".wav")]
    assert all(link.startswith("media/") for link in audio)
    assert sum(link.endswith("activations.png") for link in parser.links) == 2  # <a> + <img>
    assert not any("factors.png" in link for link in parser.links)  # listed, not on disk


def test_examples_are_median_runs(built: dict[str, Path]) -> None:
    runs = report.find_runs(built["root"])[0]
    chosen = report.choose_examples(runs, count=1)
    assert sorted(chosen) == list(MODELS)  # the smooth study is no separation model
    for model, (run,) in chosen.items():
        values = sorted(r.means()["ΔSDR"] for r in runs if r.model == model)
        assert run.means()["ΔSDR"] in values[1:3]  # a middle one of four
    assert len(report.choose_examples(runs, count=3)["mnmf_em"]) == 3
    assert report.choose_examples(runs, count=0) == {}


def test_single_run_folder_and_main(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "run"
    write_separation_run(folder, model="mnmf_em", rt60=0.3, seed=0)
    assert report.main([str(folder), "--out", str(tmp_path / "out"), "--examples", "2"]) == 0
    assert str((tmp_path / "out" / "report.html").resolve()) in capsys.readouterr().out
    columns, rows = read_csv(tmp_path / "out" / "results.csv")
    assert "data.rt60" not in columns  # one run: no condition
    assert [row["run"] for row in rows] == [".", "."]
    assert [row["source"] for row in rows] == ["1", "2"]
    markdown = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "| mnmf_em | 1 |" in markdown and f"± {report.DASH}" in markdown  # n = 1: no CI

    out = report.build_report(folder)  # default: inside the run folder, never read as a run
    assert out == folder / "report"
    (out / "copy").mkdir()
    (out / "copy" / "metrics.json").write_bytes((folder / "metrics.json").read_bytes())
    assert len(read_csv(report.build_report(folder) / "results.csv")[1]) == 2


def test_unscored_run_is_listed(tmp_path: Path) -> None:
    folder = tmp_path / "file_run"
    write_separation_run(folder, model="mnmf_em", rt60=0.3, seed=0)
    metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    for key in ("scores", "mixture_scores", "improvements", "summary", "objective"):
        del metrics[key]
    del metrics["files"]["references"]
    write_json(folder / "metrics.json", metrics)
    out = report.build_report(tmp_path)
    _, rows = read_csv(out / "results.csv")
    assert len(rows) == 1 and rows[0]["source"] == "" and rows[0]["SDR"] == ""
    assert "No scored runs." in (out / "report.md").read_text(encoding="utf-8")
    assert (out / "report.html").read_text(encoding="utf-8").count("<audio") == 3


def test_no_runs_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(ValueError, match="no runs in"):
        report.build_report(tmp_path / "empty")
    with pytest.raises(SystemExit) as exit_info:
        report.main([str(tmp_path / "empty")])
    assert exit_info.value.code == 2
    assert "no runs in" in capsys.readouterr().err
    with pytest.raises(ValueError, match="not a folder"):
        report.build_report(tmp_path / "missing")


def test_report_of_runs_written_by_the_run_code(tmp_path: Path) -> None:
    """metrics.json as experiments.run writes it (not fabricated): the report reads it."""
    from hydra import compose, initialize_config_dir

    from experiments.config import register
    from experiments.run import run_experiment

    register()
    conf = str(Path(__file__).resolve().parents[1] / "conf")
    tiny = ["data.duration=1.5", "stft.n_fft=512", "stft.hop=128", "output.figures=false"]
    for model in ("mixture", "isnmf"):
        for seed in (0, 1):
            overrides = [f"model={model}", f"seed={seed}", *tiny]
            with initialize_config_dir(version_base="1.3", config_dir=conf):
                cfg = compose("config", overrides=overrides)
            run_experiment(cfg, tmp_path / "sweep" / f"{model},{seed}", overrides=overrides)
    out = report.build_report(tmp_path / "sweep")
    columns, rows = read_csv(out / "results.csv")
    assert len(rows) == 2 * 2 * 2  # models × seeds × sources
    assert "seed" in columns and "model.name" not in columns  # no condition: one setting
    for row in rows:
        metrics = json.loads((tmp_path / "sweep" / row["run"] / "metrics.json").read_text())
        j = int(row["source"]) - 1
        assert float(row["SDR"]) == pytest.approx(metrics["scores"]["SDR"][j])
        assert float(row["ΔSDR"]) == pytest.approx(metrics["improvements"]["ΔSDR"][j])
        if row["model"] == "mixture":
            assert float(row["ΔSDR"]) == pytest.approx(0.0, abs=1e-9)
            assert metrics["scores"]["SAR"][j] > 100  # BSS Eval's numerical noise...
            assert row["SAR"] == ""  # ...is no value
    markdown = (out / "report.md").read_text(encoding="utf-8")
    mixture_line = next(
        line for line in markdown.splitlines() if line.startswith("| mixture | 2 |")
    )
    assert mixture_line.split(" | ")[4] == report.DASH  # its SAR
    assert "Mean SDR and mean ΔSDR coincide here" in markdown  # 2 sources: mixture SDR 0
    assert "| isnmf | mixture | 2 |" in markdown or "| mixture | isnmf | 2 |" in markdown
    assert "4 complete run(s) (4 scored separation run(s)); 0 failed; 0 unfinished" in markdown
    assert any(line.startswith("| isnmf | 2 |") for line in markdown.splitlines())


def test_a_sweep_over_a_models_option_is_a_condition() -> None:
    """model.* keys are conditions only where they vary between runs of one model."""

    def run(model: str, smoothness: float, max_iter: int) -> report.Run:
        params = {"model.name": model, "model.options.smoothness": smoothness}
        params["model.options.max_iter"] = max_iter
        return report.Run(folder=Path("."), name=model, metrics={"model": model, "params": params})

    runs = [run("smooth", 1.0, 5), run("smooth", 10.0, 5), run("plain", 0.0, 7)]
    assert report.condition_keys(runs) == ["model.options.smoothness"]
    assert report.condition_keys([runs[0], runs[2]]) == []  # differs only between models


# --- compact fabricated runs (no audio) for the statistics and bookkeeping tests ----------


def fingerprint(*, config: str, code: str = "code-1", data: str = "data-1") -> dict:
    """A fingerprint as experiments.run records it (parts hashed into the digest)."""
    parts = {"config": config, "code": code, "data": data}
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
    return {"digest": digest, "parts": parts}


def write_run(
    folder: Path,
    *,
    model: str,
    seed: int,
    delta: float,
    spread: float = 1.0,
    rt60: float = 0.3,
    method: str | None = None,
    fingerprinted: bool = True,
    code: str = "code-1",
    finished_at: str | None = None,
    overrides: list[str] | None = None,
) -> dict:
    """A complete scored run whose per-run mean ΔSDR is ``delta`` (sources ± ``spread``).

    Its mixture SDRs are opposite (2 sources: mean 0), its SAR huge for method mixture.
    """
    mixture_sdr = [-2.0 - 0.1 * seed, 2.0 + 0.1 * seed]
    improvements = [delta + spread, delta - spread]
    sar = [170.0, 170.5] if method == "mixture" else [9.0 + seed, 11.0]
    metrics = {
        "model": model,
        "method": method or model,
        "data": "synthetic_room",
        "n_sources": 2,
        "scores": {
            "SDR": [m + d for m, d in zip(mixture_sdr, improvements, strict=True)],
            "SIR": [5.0, 7.0 + seed],
            "SAR": sar,
        },
        "mixture_scores": {"SDR": mixture_sdr, "SIR": [-1.0, 1.0], "SAR": [170.0, 170.5]},
        "improvements": {"ΔSDR": improvements, "ΔSIR": [1.0, 2.0]},
        "files": {},
        "status": "complete",
        "task": "separate",
        "seed": seed,
        "overrides": overrides or [f"model={model}", f"seed={seed}", f"data.rt60={rt60}"],
        "params": {
            "seed": seed,
            "model.name": model,
            "data.kind": "synthetic",
            "data.sources": ["speech", "music"],
            "data.rt60": rt60,
        },
    }
    if fingerprinted:
        config = f"{model}-{seed}-{rt60}"
        metrics["fingerprint"] = fingerprint(config=config, code=code)
    if finished_at is not None:
        metrics["finished_at"] = finished_at
    write_json(folder / "metrics.json", metrics)
    return metrics


def markdown_rows(markdown: str, first: str) -> list[list[str]]:
    """The cells of the Markdown table rows that start with ``| first |``."""
    return [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in markdown.splitlines()
        if line.startswith(f"| {first} |")
    ]


def section(markdown: str, title: str) -> str:
    """The text of a ``## title`` section of report.md."""
    start = markdown.index(f"## {title}")
    end = markdown.find("\n## ", start + 1)
    return markdown[start : end if end >= 0 else None]


EM = [3.0, 1.0, 4.0, 2.5, 5.0, 2.0]  # per-run mean ΔSDR of "em", seeds 0..5
GAP = [0.5, 0.2, 1.1, -0.3, 0.8, 0.4]  # em - mu, per seed


@pytest.fixture(scope="module")
def paired(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """em and mu on 6 seeds, "same" equal to em, "once" on one seed, the mixture on 6."""
    root = tmp_path_factory.mktemp("paired")
    for seed, (em, gap) in enumerate(zip(EM, GAP, strict=True)):
        write_run(root / f"em,{seed}", model="em", seed=seed, delta=em)
        write_run(root / f"mu,{seed}", model="mu", seed=seed, delta=em - gap, spread=2.0)
        write_run(root / f"same,{seed}", model="same", seed=seed, delta=em)
        write_run(
            root / f"mixture,{seed}",
            model="mixture",
            seed=seed,
            delta=0.0,
            spread=0.0,
            method="mixture",
        )
    write_run(root / "once,0", model="once", seed=0, delta=1.0)
    report.build_report(root)
    return root


def test_paired_comparison_by_hand(paired: Path) -> None:
    differences = -np.asarray(GAP)  # mu - em
    n = differences.size
    mean = differences.mean()
    half = stats.t.ppf(0.975, n - 1) * differences.std(ddof=1) / math.sqrt(n)
    rng = np.random.default_rng(report.statistics.BOOTSTRAP_SEED)
    means = differences[rng.integers(0, n, size=(10_000, n))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    p = stats.wilcoxon(differences).pvalue

    runs = report.find_runs(paired)[0]
    baseline = report.choose_baseline(runs)
    assert baseline is not None and (baseline.model, baseline.chosen) == ("em", False)
    (mu,) = [c for c in report.compare(runs, [], baseline="em") if c.model == "mu"]
    assert mu.n == n and mu.mean == pytest.approx(mean)
    assert mu.t_interval == pytest.approx((mean - half, mean + half))
    assert mu.bootstrap == pytest.approx((low, high))
    assert mu.p == pytest.approx(p)

    markdown = (paired / "report" / "report.md").read_text(encoding="utf-8")
    text = section(markdown, "Paired comparison with the baseline")
    assert "Baseline: `em` (mean ΔSDR 2.92 dB over 6 run(s); the highest mean ΔSDR" in text
    assert "Each row pairs a model's per-run ΔSDR" in text
    assert "| model | baseline | n pairs | mean difference (dB) |" in text
    expected = [
        "mu",
        "em",
        "6",
        f"{mean:.2f}",
        f"[{mean - half:.2f}, {mean + half:.2f}]",
        f"[{low:.2f}, {high:.2f}]",
        f"{p:.2g}",
    ]
    assert markdown_rows(text, "mu") == [expected]
    dash = report.DASH
    assert markdown_rows(text, "same") == [
        ["same", "em", "6", "0.00", "[0.00, 0.00]", "[0.00, 0.00]", dash]
    ]
    assert markdown_rows(text, "once") == [["once", "em", "1", "-2.00", dash, dash, dash]]
    assert not markdown_rows(text, "em")  # the baseline has no row of its own
    page = (paired / "report" / "report.html").read_text(encoding="utf-8")
    assert "Paired comparison with the baseline" in page and "<code>em</code>" in page


def test_paired_comparison_pairs_scenes_and_few_pairs() -> None:
    """Scenes pair by condition, seed and data part; under 5 pairs no bootstrap."""

    def run(model: str, seed: int, delta: float, rt60: float, data: str = "d") -> report.Run:
        metrics = {
            "model": model,
            "seed": seed,
            "scores": {"SDR": [delta]},
            "improvements": {"ΔSDR": [delta]},
            "params": {"data.rt60": rt60},
            "fingerprint": {"digest": f"{model}{seed}{rt60}", "parts": {"data": data}},
        }
        return report.Run(folder=Path("."), name=f"{model},{seed},{rt60}", metrics=metrics)

    runs = [run("a", s, 1.0 + s, r) for s in range(3) for r in (0.2, 0.4)]
    runs += [run("b", s, 2.0 + 2 * s, 0.2) for s in range(3)]  # one condition only
    runs += [run("b", 7, 5.0, 0.2), run("b", 0, 9.0, 0.4, data="other")]  # no partner
    comparisons = report.compare(runs, ["data.rt60"], baseline="a")
    assert [(c.model, c.condition, c.n) for c in comparisons] == [
        ("b", (0.2,), 3),
        ("b", (0.4,), 0),
    ]
    first = comparisons[0]
    assert first.differences == [1.0, 2.0, 3.0] and first.bootstrap is None
    assert first.p == pytest.approx(stats.wilcoxon([1.0, 2.0, 3.0]).pvalue)
    assert math.isnan(comparisons[1].mean) and comparisons[1].p is None
    assert report.paired_statistics([0.0, 0.0, 0.0])["p"] is None
    assert report.paired_statistics([1.0])["t_interval"] is None


def test_baseline_option_and_unknown_baseline(
    paired: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert report.main([str(paired), "--out", str(out), "--baseline", "mu"]) == 0
    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert "Baseline: `mu`" in markdown and "chosen with --baseline" in markdown
    assert markdown_rows(section(markdown, "Paired comparison"), "em")[0][:3] == ["em", "mu", "6"]
    with pytest.raises(SystemExit) as exit_info:
        report.main([str(paired), "--out", str(out), "--baseline", "nope"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "mnmf-report: error: --baseline 'nope' has no scored run" in error
    assert "em, mixture, mu, once, same" in error


def test_per_source_table(paired: Path) -> None:
    markdown = (paired / "report" / "report.md").read_text(encoding="utf-8")
    text = section(markdown, "Per source")
    assert "| model | source | n runs | SDR (dB) | SIR (dB) | SAR (dB) | ΔSDR (dB) |" in text
    rows = markdown_rows(text, "mu")
    assert [row[1] for row in rows] == ["1 (speech)", "2 (music)"]
    delta_1 = [em - gap + 2.0 for em, gap in zip(EM, GAP, strict=True)]
    mean, half = report.mean_ci(delta_1)
    assert rows[0][2] == "6" and rows[0][6] == f"{mean:.2f} ± {half:.2f}"
    mixture_1 = [-2.0 - 0.1 * seed for seed in range(6)]
    mean, half = report.mean_ci(mixture_1)
    assert rows[0][7] == f"{mean:.2f} ± {half:.2f}"  # the mixture's own SDR, source 1
    page = (paired / "report" / "report.html").read_text(encoding="utf-8")
    details = page[page.index("<h2>Per source</h2>") :]
    assert details.split("\n", 1)[1].startswith("<details>")
    assert "1 (speech)" in details


def test_honest_values(paired: Path) -> None:
    markdown = (paired / "report" / "report.md").read_text(encoding="utf-8")
    dash = report.DASH
    (mixture,) = markdown_rows(section(markdown, "Summary"), "mixture")
    assert mixture[4] == dash  # SAR of the mixture as estimate: no value
    assert all(row[5] == dash for row in markdown_rows(section(markdown, "Per source"), "mixture"))
    assert not re.search(r"17\d\.\d\d", markdown)  # no raw 170.25 anywhere
    assert "Mean SDR and mean ΔSDR coincide here" in markdown
    assert "SAR of the `mixture` model" in markdown
    _, rows = read_csv(paired / "report" / "results.csv")
    assert {row["SAR"] for row in rows if row["model"] == "mixture"} == {""}
    assert all(row["SAR"] for row in rows if row["model"] != "mixture")
    page = (paired / "report" / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"17\d\.\d\d", page)
    # Infinite values read as such; the note goes when the mixture's mean SDR is not 0.
    assert [report.render.number(v) for v in (math.inf, -math.inf, math.nan)] == [
        "∞",
        "\u2212∞",
        dash,
    ]
    assert report.mean_ci([1.0, math.inf]) == (math.inf, None)
    assert report.mean_ci([1.0, math.nan, 3.0])[0] == 2.0  # NaN: absent, left out
    runs = report.find_runs(paired)[0]
    assert report.statistics.mixture_sdr_is_zero(report.summarize(runs, []))
    shifted = [
        report.Run(r.folder, r.name, r.metrics | {"mixture_scores": {"SDR": [1.0, 2.0]}})
        for r in runs
    ]
    assert not report.statistics.mixture_sdr_is_zero(report.summarize(shifted, []))


def test_infinite_scores_show_as_infinity(tmp_path: Path) -> None:
    metrics = write_run(tmp_path / "oracle,0", model="oracle", seed=0, delta=1.0)
    metrics["scores"]["SDR"] = [math.inf, math.inf]
    write_json(tmp_path / "oracle,0" / "metrics.json", metrics)
    markdown = (report.build_report(tmp_path) / "report.md").read_text(encoding="utf-8")
    (row,) = markdown_rows(section(markdown, "Summary"), "oracle")
    assert row[2] == "∞"
    assert markdown_rows(section(markdown, "Runs"), "oracle,0")[0][3] == "∞"


def test_unfinished_runs_are_counted_and_listed(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    planned = [
        [f"model={model}", f"seed={seed}", "name=x"] for model in ("a", "b") for seed in (0, 1)
    ]
    write_json(
        sweep / "sweep.json",
        {"started": "2025-01-01T10:00:00+01:00", "total": 4, "planned": planned},
    )
    write_run(sweep / "a0", model="a", seed=0, delta=1.0, overrides=["seed=0", "name=x", "model=a"])
    write_json(sweep / "a1" / "failed.json", {"error": "ValueError: no", "overrides": planned[1]})
    (sweep / "b0" / ".hydra").mkdir(parents=True)  # started, running or interrupted
    (sweep / "b0" / ".hydra" / "overrides.yaml").write_text("- model=b\n- seed=0\n- name=x\n")
    write_json(sweep / "b0" / "metrics.json", {"status": "running"})  # not complete
    (sweep / "stray" / ".hydra").mkdir(parents=True)  # started, not in the plan
    markdown = (report.build_report(tmp_path) / "report.md").read_text(encoding="utf-8")
    assert (
        "1 complete run(s) (1 scored separation run(s)); 1 failed; "
        "3 unfinished (not started or still running / interrupted) of 4 planned"
    ) in markdown
    text = section(markdown, "Unfinished runs")
    assert "3 unfinished: not started or still running / interrupted." in text
    not_started = text[text.index("Not started") : text.index("Started, not finished")]
    assert "- `sweep: model=b seed=1 name=x`" in not_started
    assert "model=a" not in not_started and "seed=0" not in not_started
    started = text[text.index("Started, not finished") :]
    assert "- `sweep/b0 (model=b seed=0 name=x)`" in started and "- `sweep/stray`" in started
    page = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert "3 unfinished: not started or still running / interrupted." in page
    assert "<code>sweep/stray</code>" in page


def test_duplicates_count_once_newest_kept(tmp_path: Path) -> None:
    write_run(
        tmp_path / "old", model="em", seed=0, delta=1.0, finished_at="2025-01-01T10:00:00+00:00"
    )
    write_run(
        tmp_path / "new", model="em", seed=0, delta=5.0, finished_at="2025-01-01T12:00:00+01:00"
    )
    write_run(tmp_path / "em,1", model="em", seed=1, delta=3.0)
    for name, when in (("m_old", 1_000_000), ("m_new", 2_000_000)):  # by metrics.json mtime
        write_run(tmp_path / name, model="mu", seed=0, delta=when / 1e6)
        os.utime(tmp_path / name / "metrics.json", (when, when))
    failure = {"error": "E", "fingerprint": fingerprint(config="x")}
    write_json(tmp_path / "f1" / "failed.json", failure | {"finished_at": "2025-01-01T10:00"})
    write_json(tmp_path / "f2" / "failed.json", failure | {"finished_at": "2025-01-02T10:00"})
    runs, dropped = report.drop_duplicates(report.find_runs(tmp_path)[0])
    assert sorted((d.dropped, d.kept) for d in dropped) == [("m_old", "m_new"), ("old", "new")]
    assert sorted(run.name for run in runs) == ["em,1", "m_new", "new"]
    markdown = (report.build_report(tmp_path) / "report.md").read_text(encoding="utf-8")
    assert "; 1 failed; " in markdown  # f1 and f2 are one failure
    assert "; 3 duplicate run(s) dropped (same fingerprint)" in markdown
    (row,) = markdown_rows(section(markdown, "Summary"), "em")
    assert row[1] == "2" and row[5].startswith("4.00 ±")  # mean of 5 and 3
    assert markdown_rows(section(markdown, "Duplicate runs"), "old") == [["old", "new"]]


def test_mixed_fingerprints_are_refused_unless_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for seed in (0, 1, 2):
        write_run(tmp_path / f"em,{seed}", model="em", seed=seed, delta=1.0 + seed)
    write_run(tmp_path / "em,3", model="em", seed=3, delta=2.0, code="code-2")
    write_run(tmp_path / "mu,0", model="mu", seed=0, delta=2.0, rt60=0.5)  # another condition
    with pytest.raises(SystemExit) as exit_info:
        report.main([str(tmp_path)])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("mnmf-report: error: refusing to average runs")
    assert "group model em, rt60=0.3" in error and "'code' part" in error
    assert "3 run(s) with code code-1; 1 run(s) with code code-2" in error
    assert "--allow-mixed-fingerprints" in error
    assert report.main([str(tmp_path), "--allow-mixed-fingerprints"]) == 0
    markdown = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    assert "**Warning** (--allow-mixed-fingerprints): group model em, rt60=0.3" in markdown
    page = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert 'class="warning"' in page


def test_old_and_new_runs_do_not_mix(tmp_path: Path) -> None:
    write_run(tmp_path / "new", model="em", seed=0, delta=1.0)
    write_run(tmp_path / "old", model="em", seed=1, delta=1.0, fingerprinted=False)
    with pytest.raises(ValueError, match=r"1 run\(s\) with code unknown \(no fingerprint\)"):
        report.build_report(tmp_path)
    (tmp_path / "new" / "metrics.json").unlink()  # old runs alone: nothing to compare
    assert report.build_report(tmp_path).is_dir()


def test_report_folder_is_self_contained(built: dict[str, Path], tmp_path: Path) -> None:
    """Copy the report folder alone, delete the runs: every link still resolves."""
    runs = tmp_path / "runs"
    shutil.copytree(built["root"], runs)
    out = report.build_report(runs)
    copy = tmp_path / "elsewhere" / "report"
    shutil.copytree(out, copy)
    shutil.rmtree(runs)
    parser = Links()
    parser.feed((copy / "report.html").read_text(encoding="utf-8"))
    markdown = (copy / "report.md").read_text(encoding="utf-8")
    links = {
        "report.html": parser.links,
        "report.md": re.findall(r"\]\(([^)]+)\)", markdown),
    }
    assert any(link.endswith(".wav") for link in links["report.html"])
    assert any(link.endswith(".png") for link in links["report.html"])
    assert any(link.startswith("media/") for link in links["report.md"])  # other runs' figures
    for page, found in links.items():
        for link in found:
            parsed = urlparse(link)
            assert not parsed.scheme and not parsed.netloc, (page, link)
            assert (copy / unquote(parsed.path)).is_file(), (page, link)
    assert not list(copy.rglob(".*.tmp"))


def test_media_are_refreshed_and_pruned(tmp_path: Path) -> None:
    folder = tmp_path / "runs" / "run"
    write_separation_run(folder, model="mnmf_em", rt60=0.3, seed=0)
    out = report.build_report(tmp_path / "runs")
    placed = sorted(p.relative_to(out).as_posix() for p in (out / "media").rglob("*.*"))
    assert len(placed) == 6 and all("run-" in name for name in placed)  # 5 wav + 1 png
    stale = out / "media" / "gone-12345678" / "estimate_1.wav"
    stale.parent.mkdir()
    stale.write_bytes(b"x")
    report.build_report(tmp_path / "runs")
    assert not stale.parent.exists()
    wav = next((out / "media").rglob("mixture.wav"))
    assert wav.read_bytes() == (folder / "mixture.wav").read_bytes()
    assert wav.stat().st_ino == (folder / "mixture.wav").stat().st_ino  # a hard link


def test_media_are_copied_where_links_fail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "runs" / "run"
    write_separation_run(folder, model="mnmf_em", rt60=0.3, seed=0)

    def refuse(source: object, target: object) -> None:
        raise OSError("Invalid cross-device link")

    monkeypatch.setattr(report.media.os, "link", refuse)
    out = report.build_report(tmp_path / "runs")
    wav = next((out / "media").rglob("mixture.wav"))
    assert wav.read_bytes() == (folder / "mixture.wav").read_bytes()
    assert wav.stat().st_ino != (folder / "mixture.wav").stat().st_ino  # a copy
    assert not list(out.rglob(".*.tmp"))


def write_unscored_run(folder: Path, *, model: str, seed: int) -> None:
    """A run on a recording (no references): mixture, estimates, per-estimate figures."""
    rng = np.random.default_rng(seed)
    write_audio(folder / "mixture.wav", 0.1 * rng.standard_normal(FS // 20), FS)
    figures = ["spectrograms.png", "spectrogram_estimate_1.png", "spectrogram_estimate_2.png"]
    estimates = []
    for j in (1, 2):
        write_audio(folder / f"estimate_{j}.wav", 0.1 * rng.standard_normal(FS // 20), FS)
        estimates.append(f"estimate_{j}.wav")
    for name in figures:
        (folder / name).write_bytes(PNG)
    write_json(
        folder / "metrics.json",
        {
            "model": model,
            "method": model,
            "data": "piano",
            "n_sources": 2,
            "files": {"mixture": "mixture.wav", "estimates": estimates, "figures": figures},
            "status": "complete",
            "task": "separate",
            "seed": seed,
            "overrides": [f"model={model}", f"seed={seed}"],
            "params": {
                "seed": seed,
                "model.name": model,
                "data.kind": "file",
                "data.path": "piano/ragtime.wav",
            },
        },
    )


def test_unscored_sweep_shows_methods_side_by_side(tmp_path: Path) -> None:
    for model in ("isnmf", "mnmf_em"):
        write_unscored_run(tmp_path / f"{model},0", model=model, seed=0)
    out = report.build_report(tmp_path)
    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert "2 complete run(s) (0 scored separation run(s), 2 unscored runs)" in markdown
    text = section(markdown, "Unscored runs: methods side by side")
    assert "### data piano · piano/ragtime.wav" in text
    assert "- **isnmf · seed 0** (`isnmf,0`): [estimate 1](media/" in text
    assert "[spectrogram estimate 2](media/" in text
    assert "Paired comparison" not in markdown  # nothing scored: no baseline
    page = (out / "report.html").read_text(encoding="utf-8")
    listening = page[page.index("<h2>Unscored runs") : page.index("<h2>Runs</h2>")]
    assert listening.count('class="compare-row"') == 2
    assert listening.count("<audio") == 1 + 2 * 2  # the mixture once, the estimates
    assert listening.count('alt="spectrogram of estimate') == 2 * 2
    assert "<h2>Examples</h2>" not in page  # the examples are scored runs
    parser = Links()
    parser.feed(page)
    assert all((out / unquote(link)).is_file() for link in parser.links)


# --- the page in a browser -------------------------------------------------------------

#: Injected into a temporary copy of report.html (the report itself has no script):
#: on load, every image must have decoded and every audio element loaded its metadata.
BROWSER_CHECK = """<script>
window.addEventListener("load", () => {
  const problems = [];
  for (const img of document.images) {
    if (!(img.complete && img.naturalWidth > 0)) problems.push("img " + img.getAttribute("src"));
  }
  const audios = Array.from(document.querySelectorAll("audio"));
  let pending = audios.length;
  const finish = () => {
    const out = document.createElement("pre");
    out.id = "browser-check";
    out.textContent = JSON.stringify({images: document.images.length, audios: audios.length,
                                      problems: problems});
    document.body.appendChild(out);
  };
  const settle = (audio, ok) => {
    if (audio.dataset.checked) return;
    audio.dataset.checked = "1";
    if (!ok) problems.push("audio " + audio.getAttribute("src"));
    if (--pending === 0) finish();
  };
  if (pending === 0) { finish(); return; }
  for (const audio of audios) {
    if (audio.error) { settle(audio, false); continue; }
    if (audio.readyState >= 1) { settle(audio, true); continue; }
    audio.addEventListener("loadedmetadata", () => settle(audio, true));
    audio.addEventListener("error", () => settle(audio, false));
    audio.preload = "metadata";
    audio.load();
  }
  setTimeout(() => { for (const audio of audios) settle(audio, audio.readyState >= 1); }, 8000);
});
</script>"""


def chromium() -> str:
    for candidate in (
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.skip("no headless Chromium (/usr/bin/chromium or chromium on PATH)")


def browser_check(page: Path, tmp_path: Path, *, extra: str = "") -> dict:
    """Load a copy of ``page`` with :data:`BROWSER_CHECK` in headless Chromium."""
    text = page.read_text(encoding="utf-8").replace(' loading="lazy"', "")
    probe = page.with_name(".browser_check.html")
    probe.write_text(text.replace("</body>", extra + BROWSER_CHECK + "</body>"), encoding="utf-8")
    try:
        command = [
            chromium(),
            *("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"),
            f"--user-data-dir={tmp_path / 'chromium'}",
            *("--virtual-time-budget=10000", "--dump-dom", probe.as_uri()),
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    finally:
        probe.unlink()
    found = re.search(r'<pre id="browser-check">(.*?)</pre>', result.stdout, re.DOTALL)
    assert found, f"no result from Chromium (exit {result.returncode}): {result.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


@pytest.mark.slow
def test_report_page_in_headless_chromium(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    fabricate_sweep(root)
    for model in ("isnmf", "mnmf_em"):
        write_unscored_run(root / "file" / f"{model},0", model=model, seed=0)
    out = report.build_report(root, out=tmp_path / "copied" / "report")
    shutil.rmtree(root)  # the report folder alone
    result = browser_check(out / "report.html", tmp_path)
    assert result["problems"] == [], result
    assert result["images"] >= 5 and result["audios"] >= 10
    # The check itself catches a missing image and a missing audio file.
    broken = '<img src="missing.png" alt=""><audio src="missing.wav"></audio>'
    result = browser_check(out / "report.html", tmp_path, extra=broken)
    assert result["problems"] == ["img missing.png", "audio missing.wav"], result


def test_runs_of_other_tasks_with_a_summary_get_a_table(tmp_path):
    """djmix runs: their summaries as mean ± CI [median] per model × condition."""
    from experiments.report import build_report

    for index, (method, effect, seed, warp) in enumerate(
        [("multipass", "none", 0, 0.01), ("multipass", "none", 1, 0.03),
         ("dtw", "none", 0, 0.2), ("multipass", "bass", 0, 0.05)]
    ):  # fmt: skip
        folder = tmp_path / f"run{index}"
        folder.mkdir()
        metrics = {
            "status": "complete", "task": "djmix", "model": method, "seed": seed,
            "summary": {"warp_mae_s": warp, "gain_error_db": 0.5},
            "params": {"seed": seed, "task.method": method,
                       "task.generator.effect": effect, "task.name": "djmix"},
            "files": {},
        }  # fmt: skip
        (folder / "metrics.json").write_text(json.dumps(metrics))
    out = build_report(tmp_path)
    markdown = (out / "report.md").read_text()
    assert "## Task djmix" in markdown
    assert "| multipass | none | 2 | 0.02 ± 0.127 [0.02] | 0.5 ± 0 [0.5] |" in markdown
    assert "| dtw | none | 1 | 0.2 ± — [0.2] |" in markdown
    assert "Task djmix" in (out / "report.html").read_text()
