"""The seeds report: every study of the seed documents run as a preset, on one page.

``python -m experiments.seeds`` (``make seeds``) runs each seed preset as a sweep
(``mnmf-run -m experiment=NAME``: finished runs are reused), builds each sweep's report
(:func:`experiments.report.build_report`) and writes ``outputs/seeds/index.html``: a
section per seed document (``../shared/seeds/``) with, per study, what the seed claims
(one sentence), our figures, our numbers (mean ± 95 % CI over the runs, Student t) and
whether they agree — a check computed from the runs, never typed in.
``--no-run`` builds the page from the sweeps already there; ``--only NAME ...`` keeps
some presets.
"""

from __future__ import annotations

import argparse
import html
import itertools
import math
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import librosa
import numpy as np

from experiments.report import build_report
from experiments.report.collect import Run, condition_keys, find_runs
from experiments.report.statistics import mean_ci, summarize
from experiments.report.text import condition_labels
from mnmf.data.io import atomic_write

REPO = Path(__file__).resolve().parents[1]

#: A study's check: its runs in, (our numbers as rows of cells, a verdict sentence,
#: agrees: True / False / None when the runs cannot tell) out.
Check = Callable[[list[Run]], tuple[list[list[str]], str, bool | None]]


@dataclass(frozen=True)
class Study:
    """One preset and what it tests of its seed document."""

    preset: str
    claim: str
    check: Check
    figures: tuple[str, ...] = ()  # globs under the sweep folder (report/img, run files)


@dataclass(frozen=True)
class SeedDocument:
    """A document of ../shared/seeds and its studies."""

    file: str
    title: str
    studies: tuple[Study, ...] = field(default_factory=tuple)
    link: str | None = None  # a preset whose report the section links instead of a table


# ----------------------------------------------------------------------- the numbers
def _cell(values: Sequence[float], digits: int = 2) -> str:
    mean, half = mean_ci([float(v) for v in values])
    if math.isnan(mean):
        return "—"
    return (
        f"{mean:.{digits}f} ± {'—' if half is None else f'{half:.{digits}f}'} (n = {len(values)})"
    )


def _mean(values: Sequence[float]) -> float:
    finite = [float(v) for v in values if math.isfinite(float(v))]
    return float(np.mean(finite)) if finite else math.nan


def _delta_sdr_rows(runs: list[Run]) -> list[list[str]]:
    """ΔSDR per model × condition (the conditions that vary among the runs)."""
    scored = [run for run in runs if run.is_separation and run.scored]
    conditions = condition_keys(scored)
    rows = []
    for group in summarize(scored, conditions):
        label = ", ".join(condition_labels(conditions, list(group.condition))) or "—"
        values = [run.means()["ΔSDR"] for run in group.runs]
        rows.append([group.model, label, f"ΔSDR {_cell(values)} dB"])
    return rows


def _by(runs: list[Run], *, model: str | None = None, **params: object) -> list[Run]:
    """The scored runs of ``model`` (any when None) whose settings have these values."""
    return [
        run
        for run in runs
        if run.scored
        and (model is None or run.model == model)
        and all(run.params.get(key) == value for key, value in params.items())
    ]


def _delta(runs: list[Run]) -> list[float]:
    return [run.means()["ΔSDR"] for run in runs]


def _check_sine(runs: list[Run]) -> tuple[list[list[str]], str, bool | None]:
    rows = _delta_sdr_rows(runs)
    ratios = {}
    for name in ("sine", "sine_edges"):
        chosen = _by(runs, **{"data.name": name})
        values = [_mean(run.metrics.get("gate_edges", {}).get("ratio", [])) for run in chosen]
        model_error = [
            run.metrics.get("gate_edges", {}).get("model_error", math.nan) for run in chosen
        ]
        ratios[name] = _mean(values)
        rows.append([name, "error near gate edges / elsewhere", _cell(values)])
        rows.append([name, "slides' error mean |y - (x̂₁ + x̂₂)|", _cell(model_error, 4)])
    slow = _mean(_delta(_by(runs, **{"data.name": "sine"})))
    agrees = slow > 20 and ratios.get("sine", math.nan) > 1.5
    verdict = (
        f"the slow gates separate ({slow:.1f} dB) and the error near the edges is "
        f"{ratios.get('sine', math.nan):.1f} times the error elsewhere"
    )
    return rows, verdict, agrees if math.isfinite(slow) else None


def _check_failure(runs: list[Run]) -> tuple[list[list[str]], str, bool | None]:
    blind = _mean(_delta([r for r in runs if r.scored and r.model == "isnmf"]))
    oracle = _mean(_delta([r for r in runs if r.scored and r.model == "oracle_irm"]))
    verdict = f"blind NMF {blind:.1f} dB against the oracle mask's {oracle:.1f} dB"
    agrees = None if math.isnan(blind) or math.isnan(oracle) else blind < oracle - 10
    return _delta_sdr_rows(runs), verdict, agrees


def _check_rank(runs: list[Run]) -> tuple[list[list[str]], str, bool | None]:
    by_rank: dict[int, list[Run]] = {}
    for run in runs:
        found = run.metrics.get("reconstruction")
        if run.scored and isinstance(found, dict):
            by_rank.setdefault(int(found["rank"]), []).append(run)
    rows = []
    for rank in sorted(by_rank):
        members = by_rank[rank]
        rows.append([
            f"K = {rank}",
            "IS divergence per bin / correlation / ΔSDR (dB)",
            " / ".join([
                _cell([m.metrics["reconstruction"]["is_divergence_per_bin"] for m in members], 3),
                _cell([m.metrics["reconstruction"]["correlation"] for m in members], 3),
                _cell(_delta(members)),
            ]),
        ])  # fmt: skip
    if len(by_rank) < 2:
        return rows, "fewer than two ranks ran", None
    low, high = min(by_rank), max(by_rank)

    def divergence(rank: int) -> float:
        return _mean([m.metrics["reconstruction"]["is_divergence_per_bin"] for m in by_rank[rank]])

    fit_better = divergence(high) < divergence(low)
    separation_flat = _mean(_delta(by_rank[high])) < _mean(_delta(by_rank[low])) + 1.0
    verdict = (
        f"from K = {low} to {high} the fit's divergence goes {divergence(low):.3f} → "
        f"{divergence(high):.3f} and ΔSDR {_mean(_delta(by_rank[low])):.1f} → "
        f"{_mean(_delta(by_rank[high])):.1f} dB"
    )
    return rows, verdict, fit_better and separation_flat


def _check_masks(runs: list[Run]) -> tuple[list[list[str]], str, bool | None]:
    soft = _mean(_delta([r for r in _by(runs, **{"model.options.mask": "soft"})]))
    binary = _mean(_delta([r for r in _by(runs, **{"model.options.mask": "binary"})]))
    verdict = f"soft masks {soft:.1f} dB against binary {binary:.1f} dB (mean over models and data)"
    agrees = None if math.isnan(soft) or math.isnan(binary) else soft >= binary
    return _delta_sdr_rows(runs), verdict, agrees


def _check_mnmf(runs: list[Run]) -> tuple[list[list[str]], str, bool | None]:
    mnmf = [r for r in runs if r.scored and r.model.startswith("mnmf")]
    best = max(
        (_mean(_delta([r for r in mnmf if r.model == m])) for m in {r.model for r in mnmf}),
        default=math.nan,
    )
    verdict = f"the best MNMF model reaches {best:.1f} dB ΔSDR"
    return _delta_sdr_rows(runs), verdict, None if math.isnan(best) else best > 3.0


def _check_mics(runs: list[Run]) -> tuple[list[list[str]], str, bool | None]:
    gains = []
    for model in sorted({r.model for r in runs if r.scored}):
        one = _mean(_delta(_by(runs, model=model, **{"data.n_mics": 1})))
        two = _mean(_delta(_by(runs, model=model, **{"data.n_mics": 2})))
        if math.isfinite(one) and math.isfinite(two):
            gains.append((model, two - one))
    verdict = (
        "a second mic changes the mean ΔSDR by "
        + ", ".join(f"{model} {gain:+.1f}" for model, gain in gains)
        + " dB (per model, over both source sets); the seed's claim needs it above 0 for each"
    )
    agrees = None if not gains else all(gain > 0 for _, gain in gains)
    return _delta_sdr_rows(runs), verdict, agrees


def _check_smooth(runs: list[Run]) -> tuple[list[list[str]], str, bool | None]:
    studies = [run.metrics["study"] for run in runs if isinstance(run.metrics.get("study"), dict)]
    if not studies:
        return [], "no smooth-study run", None
    names = ("MM (multiplicative)", "EM (SAGE)")
    rows = [
        [
            name,
            "final penalized cost",
            _cell([s["mm_vs_em"][name]["final_cost"] for s in studies], 0),
        ]
        for name in names
    ]
    lambdas = [entry["smoothness"] for entry in studies[0]["lambdas"]]
    by_lambda = [
        [next(e for e in s["lambdas"] if e["smoothness"] == value) for s in studies]
        for value in lambdas
    ]
    rows += [
        [f"λ = {value:g}", "median jump", _cell([e["median_jump"] for e in entries], 4)]
        for value, entries in zip(lambdas, by_lambda, strict=True)
    ]
    rows += [
        [f"λ = {value:g}", "D_IS", _cell([e["data_fit"] for e in entries], 0)]
        for value, entries in zip(lambdas, by_lambda, strict=True)
    ]
    for kind in ("bass", "pitched", "noise"):
        picked = [
            s["components_by_kind"][kind]
            for s in studies
            if kind in s.get("components_by_kind", {})
        ]
        if picked:
            rows.append([kind, "centroid (Hz)", _cell([e["centroid_hz"] for e in picked], 0)])
            rows.append([kind, "harmonicity", _cell([e["harmonicity"] for e in picked], 2)])
    smoother = sum(
        all(b["median_jump"] <= a["median_jump"] for a, b in itertools.pairwise(s["lambdas"]))
        for s in studies
    )
    lower = sum(
        s["mm_vs_em"][names[0]]["final_cost"] <= s["mm_vs_em"][names[1]]["final_cost"]
        for s in studies
    )
    verdict = (
        f"the activations get smoother as λ grows in {smoother} of {len(studies)} run(s); "
        f"MM ends below EM in {lower} of {len(studies)}"
    )
    return rows, verdict, smoother == lower == len(studies)


def _check_piano(runs: list[Run]) -> tuple[list[list[str]], str, bool | None]:
    described = [run for run in runs if isinstance(run.metrics.get("components"), dict)]
    if not described:
        return [], "no piano run with component descriptors", None
    shares, rows, notes_per_run = [], [], []
    for run in described:
        found = run.metrics["components"]
        pitched = [f0 for f0, flag in zip(found["f0_hz"], found["pitched"], strict=True) if flag]
        notes = sorted({librosa.hz_to_note(f0) for f0 in pitched}, key=librosa.note_to_hz)
        notes_per_run.append(set(notes))
        shares.append(len(pitched) / len(found["pitched"]))
        rows.append(
            [f"seed {run.params.get('seed', '?')}", f"{len(pitched)} of {len(found['pitched'])} "
             "components pitched", ", ".join(notes) or "—"]
        )  # fmt: skip
    rows.append(["all runs", "share of components pitched", _cell(shares, 2)])
    common = sorted(set.intersection(*notes_per_run), key=librosa.note_to_hz)
    rows.append(["all runs", "notes every run found", ", ".join(common) or "—"])
    verdict = (
        f"{_mean(shares):.0%} of the components are pitched notes (harmonic templates, "
        f"comb contrast ≥ 0.5, where noise templates score ≤ 0.1); {len(common)} note(s) found by "
        f"every run"
    )
    return rows, verdict, all(share > 0.5 for share in shares)


DOCUMENTS: tuple[SeedDocument, ...] = (
    SeedDocument(
        "nmf-mnmf-slides.md",
        "NMF and MNMF (slides, in French)",
        (
            Study(
                "sine",
                "NMF separates two gated sines well, and its errors sit at the discontinuities.",
                _check_sine,
                ("**/gate_edges.png",),
            ),
            Study(
                "speech_music_single_channel",
                "Single-channel NMF fails on a speech + music mixture.",
                _check_failure,
            ),
            Study(
                "speech_music_rank",
                "A higher rank reconstructs the mixture better but does not separate it better.",
                _check_rank,
                ("report/img/rank.png",),
            ),
            Study(
                "mnmf_speech_music",
                "MNMF separates a simulated speech + music mixture.",
                _check_mnmf,
                ("report/img/delta_sdr_box.png",),
            ),
            Study(
                "mnmf_mics",
                "Two microphones separate music better than one; MNMF handles more sources "
                "than mics.",
                _check_mics,
                ("report/img/delta_sdr_box.png",),
            ),
            Study(
                "recorded",
                "MNMF separates a real two-talker recording.",
                _check_mnmf,
                ("report/img/delta_sdr_box.png",),
            ),
            Study(
                "mnmf_music",
                "MNMF separates a music mixture with more sources than mics.",
                _check_mnmf,
                ("report/img/delta_sdr_box.png",),
            ),
        ),
    ),
    SeedDocument(
        "music-source-separation-slides.md",
        "Music source separation (slides)",
        (
            Study(
                "masks",
                "Soft (Wiener) masks beat binary masks.",
                _check_masks,
                ("report/img/delta_sdr_box.png",),
            ),
        ),
    ),
    SeedDocument(
        "smooth-is-nmf-talk-transcript.txt",
        "Smooth IS-NMF (talk)",
        (
            Study(
                "smooth_study",
                "The penalty smooths the activations as λ grows; MM reaches a lower "
                "penalized cost than EM in as many iterations.",
                _check_smooth,
                ("**/cost_mm_vs_em.png", "**/smoothness.png", "**/masks.png"),
            ),
        ),
    ),
    SeedDocument(
        "nmf-lecture-leglaive.md",
        "NMF (lecture, Leglaive)",
        (
            Study(
                "piano",
                "IS-NMF decomposes a piano recording into notes: most components are "
                "pitched templates.",
                _check_piano,
                ("**/factors.png",),
            ),
        ),
    ),
    SeedDocument("dj-mix-is-nmf-slides.md", "DJ-mix transcription (slides)", (), link="djmix"),
)


# ------------------------------------------------------------------------ the page
def presets() -> list[str]:
    """Every preset the page runs, in page order."""
    names = [study.preset for document in DOCUMENTS for study in document.studies]
    return names + [document.link for document in DOCUMENTS if document.link]


def run_preset(name: str, *, outputs: Path) -> int:
    """``mnmf-run -m experiment=NAME``, its sweep in ``outputs/sweeps/NAME``."""
    sweep = (outputs / "sweeps" / name).resolve()
    command = [
        sys.executable, "-m", "experiments.run", "-m", f"experiment={name}",
        f"hydra.sweep.dir={sweep}",
    ]  # fmt: skip
    print(f"[seeds] {' '.join(command[2:])}", flush=True)
    outputs.mkdir(parents=True, exist_ok=True)
    return subprocess.run(command, cwd=outputs.parent).returncode


def build_page(sweeps: Path, out: Path) -> Path:
    """Write ``out/index.html`` from the sweeps under ``sweeps`` (outputs/sweeps)."""
    out.mkdir(parents=True, exist_ok=True)
    images = out / "img"
    images.mkdir(exist_ok=True)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>mnmf: the seed studies</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 6px;font-size:90%}img{max-width:100%}"
        ".yes{color:#060}.no{color:#a00}.open{color:#666}</style></head><body>",
        "<h1>The seed studies</h1><p>Each study of the documents in <code>../shared/seeds/</code> "
        "as a preset: what the seed claims, our figures, our numbers (mean ± 95 % CI over the "
        "runs, Student t) and whether they agree (a check computed from the runs).</p>",
    ]
    for document in DOCUMENTS:
        parts.append(f"<h2>{html.escape(document.title)} — <code>{document.file}</code></h2>")
        if document.link:
            report = sweeps / document.link / "report" / "report.html"
            target = Path("..") / "sweeps" / document.link / "report" / "report.html"
            state = "" if report.is_file() else " (not run yet)"
            parts.append(
                f"<p>The DJ-mix task's report: <a href='{target}'>{target}</a>{state}.</p>"
            )
        for study in document.studies:
            folder = sweeps / study.preset
            parts.append(f"<h3><code>{study.preset}</code></h3>")
            parts.append(f"<p><b>The seed claims:</b> {html.escape(study.claim)}</p>")
            if not folder.is_dir():
                parts.append("<p class='open'>Not run (no sweep folder).</p>")
                continue
            runs, failed = find_runs(folder, skip=folder / "report")
            rows, verdict, agrees = study.check(runs)
            label = {
                True: ("yes", "agrees"),
                False: ("no", "does not agree"),
                None: ("open", "cannot tell"),
            }[agrees]
            parts.append(
                f"<p><b>Ours:</b> {len(runs)} complete run(s), {len(failed)} failed. "
                f"<span class='{label[0]}'><b>{label[1]}</b></span>: {html.escape(verdict)}.</p>"
            )
            if rows:
                parts.append(
                    "<table>"
                    + "".join(
                        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                        for row in rows
                    )
                    + "</table>"
                )
            for pattern in study.figures:
                found = [f for f in sorted(folder.glob(pattern)) if "report" not in f.parts[-3:-1]]
                for figure in (found or sorted(folder.glob(pattern)))[:1]:
                    name = f"{study.preset}_{figure.parent.name}_{figure.name}".replace(
                        "=", "-"
                    ).replace(",", "_")
                    shutil.copyfile(figure, images / name)
                    parts.append(f"<p><img src='img/{name}' alt='{html.escape(figure.name)}'></p>")
            report = folder / "report" / "report.html"
            if report.is_file():
                target = f"../sweeps/{study.preset}/report/report.html"
                parts.append(f"<p>Full report: <a href='{target}'>{study.preset}</a></p>")
    parts.append("</body></html>")
    page = out / "index.html"
    atomic_write(
        page, lambda temporary: Path(temporary).write_text("\n".join(parts), encoding="utf-8")
    )
    return page


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--outputs", type=Path, default=REPO / "outputs", help="where outputs/sweeps is"
    )
    parser.add_argument("--no-run", action="store_true", help="only build the page")
    parser.add_argument("--only", nargs="+", default=None, help="presets to run (default: all)")
    args = parser.parse_args(argv)
    chosen = args.only or presets()
    unknown = sorted(set(chosen) - set(presets()))
    if unknown:
        parser.error(f"--only: unknown seed presets {unknown}; choose among {presets()}")
    failures = 0
    if not args.no_run:
        for name in chosen:
            failures += run_preset(name, outputs=args.outputs) != 0
    sweeps = args.outputs / "sweeps"
    for name in chosen:
        if (sweeps / name).is_dir():
            try:
                build_report(sweeps / name)
            except ValueError as error:
                print(f"[seeds] no report for {name}: {error}", flush=True)
    page = build_page(sweeps, args.outputs / "seeds")
    print(
        f"[seeds] page: {page}" + (f" ({failures} preset(s) exited non-zero)" if failures else "")
    )
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
