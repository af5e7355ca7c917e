"""mnmf-report (experiments.report) on fabricated run folders: CSV, summary, links, errors."""

from __future__ import annotations

import csv
import io
import json
import math
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
        assert (html_path.parent / unquote(parsed.path)).is_file(), link
    assert parser.tags["audio"] == 2 * 5 + 1  # 2 models × (mixture + 2 × 2) + smooth study
    audio = [link for link in parser.links if link.endswith(".wav")]
    assert all(link.startswith("../sweep/") or link.startswith("../other/") for link in audio)
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
    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert "4 complete run(s), 4 separation (4 scored); 0 failed" in markdown
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
