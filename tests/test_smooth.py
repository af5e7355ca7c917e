"""Smooth IS-NMF (Févotte 2011): updates against a naive reference, descent, invariances."""

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

import mnmf
from mnmf.algorithms.multichannel import fit_mnmf
from mnmf.sources import SmoothNMFSource, smoothness_terms
from mnmf.sources.smooth import _smooth_pass
from tests.helpers import increases, planted_convolutive, planted_spectrogram

LAMBDAS = [0.0, 0.1, 10.0, 1000.0]


def penalized_cost(V, W, H, lam):
    """D_IS(V | WH) + λ Σ_k Σ_n d_IS(h_{k,n−1} | h_{k,n}), written out term by term."""
    model = W @ H
    ratio = V / model
    data = np.sum(ratio - np.log(ratio) - 1)
    r = H[:, :-1] / H[:, 1:]
    return data + np.sum(np.broadcast_to(lam, (H.shape[0],))[:, None] * (r - np.log(r) - 1))


def naive_pass(H, a, b, c, lam):
    """Frame by frame (even frames, then odd), minimize numerically over log h the
    one-dimensional objective of each frame given its neighbours at that moment:
    (a + λ/h_next) h + (c + λ h_prev) / h + (b + λ[last] − λ[first]) log h
    (MU: a = G⁺, b = 0, c = G⁻ h̃²; EM: a = 0, b = F, c = Σ_f u / w).
    """
    H = H.copy()
    K, N = H.shape
    for start in (0, 1):
        for n in range(start, N, 2):
            for k in range(K):
                A = a[k, n] + (lam[k] / H[k, n + 1] if n + 1 < N else 0.0)
                C = c[k, n] + (lam[k] * H[k, n - 1] if n > 0 else 0.0)
                B = b[k, n] + (lam[k] if n == N - 1 else 0.0) - (lam[k] if n == 0 else 0.0)

                def objective(t, A=A, B=B, C=C):
                    return A * np.exp(t) + C * np.exp(-t) + B * t

                best = minimize_scalar(
                    objective, bounds=(-30, 30), method="bounded", options={"xatol": 1e-12}
                )
                H[k, n] = np.exp(best.x)
    return H


@pytest.mark.parametrize("n_frames", [1, 2, 7, 8])
@pytest.mark.parametrize("form", ["mu", "em"])
def test_frame_updates_are_the_exact_minimizers_of_their_majorizers(rng, n_frames, form):
    """Every frame — first, interior, last — against a numerical minimization of its
    one-dimensional objective (the IS majorizer plus the exact penalty terms for MU,
    the penalized expected log-likelihood for the EM)."""
    K = 3
    H = rng.gamma(2.0, size=(K, n_frames))
    lam = np.array([0.0, 0.7, 25.0])
    if form == "mu":  # a = G⁺, c = G⁻ h̃², b = 0
        a, c = rng.gamma(2.0, size=(K, n_frames)), rng.gamma(2.0, size=(K, n_frames))
        b = np.zeros((K, n_frames))
    else:  # a = 0, b = F, c = S = Σ_f u / w
        a, b, c = (
            np.zeros((K, n_frames)),
            np.full((K, n_frames), 5.0),
            rng.gamma(5.0, size=(K, n_frames)),
        )
    fast = _smooth_pass(H, a=a, b=b, c=c, lam=lam[:, None])
    slow = naive_pass(H, a, b, c, lam)
    np.testing.assert_allclose(fast, slow, rtol=1e-5)


def test_zero_smoothness_is_plain_is_nmf_and_the_formula_tends_to_it(rng):
    V, _, _ = planted_spectrogram(rng)
    for algorithm in ("mu", "em"):
        plain = mnmf.fit_nmf(V, 3, algorithm=algorithm, max_iter=40, tol=0, rng=1)
        smooth = mnmf.fit_nmf(
            V,
            3,
            algorithm=algorithm,
            source_model="smooth",
            smoothness=0.0,
            max_iter=40,
            tol=0,
            rng=1,
        )
        np.testing.assert_array_equal(smooth.W, plain.W)
        np.testing.assert_array_equal(smooth.H, plain.H)
        # λ → 0 through the smooth formulas (not the λ = 0 shortcut).
        tiny = mnmf.fit_nmf(
            V,
            3,
            algorithm=algorithm,
            source_model="smooth",
            smoothness=1e-12,
            max_iter=40,
            tol=0,
            rng=1,
        )
        np.testing.assert_allclose(tiny.H, plain.H, rtol=1e-6)


@pytest.mark.parametrize("lam", LAMBDAS)
@pytest.mark.parametrize("algorithm", ["mu", "em"])
def test_penalized_cost_never_increases_single_channel(rng, lam, algorithm):
    V, _, _ = planted_spectrogram(rng, n_frames=45)
    fit = mnmf.fit_nmf(
        V,
        4,
        algorithm=algorithm,
        source_model="smooth",
        smoothness=lam,
        max_iter=60,
        check_every=1,
        tol=0,
        rng=rng,
    )
    assert increases(fit.cost).size == 0
    # The reported cost is the penalized cost of the result, term by term.
    np.testing.assert_allclose(fit.cost[-1], penalized_cost(V, fit.W, fit.H, lam), rtol=1e-6)


@pytest.mark.parametrize("lam", LAMBDAS)
@pytest.mark.parametrize(
    "spatial, algorithm, mixing",
    [
        ("gains", "mu", "convolutive"),
        ("gains", "mu", "instantaneous"),
        ("convolutive", "em", "convolutive"),
    ],
)
def test_penalized_cost_never_increases_multichannel(rng, lam, spatial, algorithm, mixing):
    _, X, *_ = planted_convolutive(rng, n_frames=50)
    fit = fit_mnmf(
        X,
        2,
        n_components=2,
        spatial=spatial,
        algorithm=algorithm,
        **({"mixing": mixing} if spatial == "gains" else {}),
        source_model="smooth",
        smoothness=lam,
        max_iter=40,
        check_every=1,
        tol=0,
        rng=rng,
    )
    assert increases(fit.cost).size == 0
    assert np.all(np.isfinite(fit.H)) and np.all(fit.H > 0)


@pytest.mark.parametrize("spatial, algorithm", [("gains", "mu"), ("convolutive", "em")])
def test_zero_smoothness_multichannel_is_the_plain_model(rng, spatial, algorithm):
    _, X, *_ = planted_convolutive(rng)
    options = dict(n_components=2, spatial=spatial, algorithm=algorithm, max_iter=15, rng=3)
    plain = fit_mnmf(X, 2, **options)
    smooth = fit_mnmf(X, 2, source_model="smooth", smoothness=0.0, **options)
    np.testing.assert_array_equal(plain.H, smooth.H)
    np.testing.assert_array_equal(plain.cost, smooth.cost)


def test_cost_is_invariant_to_rescaling_components(rng):
    V, W, H = planted_spectrogram(rng)
    D = rng.uniform(0.01, 100.0, size=W.shape[1])
    lam = np.array([0.5, 3.0, 40.0])
    np.testing.assert_allclose(
        penalized_cost(V, W * D, H / D[:, None], lam), penalized_cost(V, W, H, lam), rtol=1e-10
    )
    # And so is the source model's own penalty.
    source = SmoothNMFSource(3, smoothness=lam)
    source.H = H
    reference = source.penalty()
    source.H = H / D[:, None]
    np.testing.assert_allclose(source.penalty(), reference, rtol=1e-10)


def test_large_smoothness_makes_activations_nearly_constant(rng):
    V, _, _ = planted_spectrogram(rng, n_frames=80)
    spread = {}
    for lam in (0.0, 1e5):
        fit = mnmf.fit_nmf(V, 3, source_model="smooth", smoothness=lam, max_iter=200, rng=2)
        spread[lam] = np.std(np.log(fit.H), axis=1).max()
    # Measured: 0.033 at λ = 1e5 (still converging: 0.014 after 1000 iterations)
    # against 5.5 without smoothing.
    assert spread[1e5] < 0.05 and spread[0.0] > 100 * spread[1e5]


def test_per_component_smoothness(rng):
    V, _, _ = planted_spectrogram(rng, n_frames=80)
    fit = mnmf.fit_nmf(
        V, 2, source_model="smooth", smoothness=[0.0, 1e4], max_iter=200, normalize=True, rng=2
    )
    jumps = np.mean(smoothness_terms(fit.H), axis=1)
    assert jumps[1] < 1e-3 < jumps[0]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"source_model": "smooth", "smoothness": -1.0}, "smoothness must be >= 0"),
        ({"source_model": "smooth", "smoothness": np.nan}, "smoothness must be finite"),
        ({"source_model": "smooth", "smoothness": [1.0, 2.0]}, r"shape \(K,\)"),
        ({"source_model": "smooth", "smoothness": "high"}, "smoothness must be a real"),
        ({"source_model": "smooth"}, r"'smooth' needs the option\(s\) \['smoothness'\]"),
        ({"smoothness": 1.0}, r"source model 'isnmf' got unknown option\(s\) \['smoothness'\]"),
        ({"source_model": "smooth", "smoothness": 1.0, "beta": 1.0}, "beta=0"),
        ({"source_model": "smooth", "smoothness": 1.0, "exponent": "heuristic"}, "exponent"),
        ({"source_model": "smooth", "smoothness": 1.0, "H_mask": np.ones((3, 60), bool)}, "H_mask"),
        ({"source_model": "sparse"}, "source_model must be one of"),
    ],
)
def test_bad_smoothness_gives_clear_errors(rng, kwargs, match):
    V, _, _ = planted_spectrogram(rng)
    with pytest.raises(ValueError, match=match):
        mnmf.fit_nmf(V, 3, **kwargs)


def test_bad_smoothness_multichannel(rng):
    _, X, *_ = planted_convolutive(rng)
    with pytest.raises(ValueError, match="smoothness must be >= 0"):
        fit_mnmf(X, 2, source_model="smooth", smoothness=-0.1)
    with pytest.raises(ValueError, match="exponent"):
        fit_mnmf(X, 2, source_model="smooth", smoothness=1.0, exponent="heuristic")


def test_study_script_writes_its_figures_and_audio(tmp_path):
    """The seed talk's study end to end on a synthetic melody (no data needed), tiny."""
    from experiments.tasks import smooth_study
    from mnmf.data.io import write_audio
    from mnmf.data.synthetic import melody

    audio = tmp_path / "melody.wav"
    write_audio(audio, melody(fs=8000, duration=2.0, rng=np.random.default_rng(0)), 8000)
    out = tmp_path / "study"
    metrics = smooth_study.main(
        [
            "--audio",
            str(audio),
            "--out",
            str(out),
            "--fs",
            "8000",
            "--n-fft",
            "512",
            "--components",
            "4",
            "--iterations",
            "5",
            "--lambdas",
            "0",
            "10",
        ]
    )
    for name in (
        "cost_mm_vs_em.png",
        "activations.png",
        "smoothness.png",
        "masks.png",
        "mixture.wav",
        "upmix.wav",
        "remix.wav",
        "metrics.json",
    ):
        assert (out / name).stat().st_size > 0, name
    kinds = metrics["components_by_kind"]
    assert sorted(kinds) == ["bass", "noise", "pitched"]
    assert len({entry["component"] for entry in kinds.values()}) == 3  # distinct
    for kind in kinds:
        assert (out / f"component_{kind}.wav").stat().st_size > 0
    upmix, fs = mnmf.io.load_audio(out / "upmix.wav")
    assert upmix.shape[1] == 2 and fs == 8000
    # The MM reaches a lower penalized cost than the EM in as many iterations.
    costs = metrics["mm_vs_em"]
    assert costs["MM (multiplicative)"]["final_cost"] < costs["EM (SAGE)"]["final_cost"]


def test_study_command_line_reads_the_shared_piano_by_default(tmp_path, shared_data):
    """``python -m experiments.smooth_study`` with its default audio (../shared/data)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "study"
    subprocess.run(
        [
            sys.executable, "-m", "experiments.smooth_study", "--out", str(out),
            "--seconds", "1", "--components", "2", "--iterations", "2", "--lambdas", "0",
        ],
        cwd=Path(__file__).resolve().parents[1], check=True, capture_output=True,
    )  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    expected = shared_data / "piano" / "ragtime_piano_30s.wav"
    assert Path(metrics["audio"]).resolve() == expected.resolve()


def test_components_are_picked_by_kind_on_planted_spectra():
    from experiments.tasks.smooth_study import pick_by_kind

    frequencies = np.arange(513) * (16000 / 1024)
    floor = 1e-6
    bass = floor + np.exp(-0.5 * ((frequencies - 60.0) / 20.0) ** 2)  # one low bump
    pitched = np.full(513, floor)
    f0 = 220.0
    harmonics = np.arange(1, 11)  # a harmonic comb
    pitched[np.round(harmonics * f0 / frequencies[1]).astype(int)] = 1.0 / harmonics
    rng = np.random.default_rng(0)
    noise = 1.0 + 0.1 * rng.random(513)  # flat
    bright = floor + np.exp(-0.5 * ((frequencies - 5000.0) / 300.0) ** 2)  # one high bump
    W = np.stack([bright, noise, pitched, bass], axis=1)
    features = mnmf.template_features(W, frequencies)
    assert features.flatness[1] > 0.9 and features.harmonicity[2] > 0.9
    assert features.centroid[3] < 100
    assert pick_by_kind(features) == {"bass": 3, "pitched": 2, "noise": 1}
