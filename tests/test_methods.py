import numpy as np
import pytest

from mnmf import evaluate, separate
from mnmf.data.datasets import SourcePool
from mnmf.data.simulate import simulate_room
from mnmf.data.synthetic import synthetic_sources
from mnmf.features import Stft
from mnmf.methods import METHODS

FS = 8000


@pytest.fixture(scope="module")
def room():
    rng = np.random.default_rng(11)
    sources = synthetic_sources(["speech", "music"], fs=FS, duration=2.0, rng=rng)
    return simulate_room(list(sources), FS, rt60=0.3, rng=rng)


@pytest.mark.parametrize("method", METHODS)
def test_every_method_returns_images_on_the_mixture_scale(room, method):
    references = room.images if method == "oracle-irm" else None
    arguments = dict(n_sources=2, method=method, rng=3, references=references, stft=Stft(n_fft=512))
    state = np.random.get_state()  # noqa: NPY002
    a = separate(room.mix, **arguments)
    after = np.random.get_state()  # noqa: NPY002
    assert a.shape == (2, *room.mix.shape) and a.dtype == np.float64
    assert np.all(np.isfinite(a))
    b = separate(room.mix, **arguments)
    np.testing.assert_array_equal(a, b)  # same seed, same output
    assert all(np.array_equal(x, y) for x, y in zip(state[1:], after[1:], strict=False))
    # Images on the mixture's scale: for the mask-based and projected-back methods the
    # estimates add up to (nearly) the mixture.
    error = np.sum((a.sum(axis=0) - room.mix) ** 2) / np.sum(room.mix**2)
    if method in ("nmf", "mnmf-mu", "oracle-irm"):
        assert error < 1e-20
    elif method == "mnmf-em":
        # Multichannel Wiener images add up to x minus what the model calls sensor
        # noise: 0.55 % of the energy on this room (measured).
        assert error < 0.05
    elif method != "mixture":
        assert error < 0.1


def test_mixture_method_has_zero_improvement(room):
    estimates = separate(room.mix, n_sources=2, method="mixture")
    result = evaluate(estimates, room.images, mixture=room.mix)
    np.testing.assert_allclose(result.improvements["ΔSDR"], 0.0, atol=1e-9)


def test_oracle_irm_beats_the_mixture_by_10_db(room):
    estimates = separate(room.mix, n_sources=2, method="oracle-irm", references=room.images)
    result = evaluate(estimates, room.images, mixture=room.mix)
    assert result.mean("ΔSDR") > 10


def test_auxiva_separates_two_talkers_in_a_room(shared_data):
    """Two speech files from ../shared/data, RT60 0.3 s, 5 cm spacing, 6 s.

    Over seeds 0-9 AuxIVA's mean image ΔSDR measured 4.7-10.0 dB (mean 8.3); seeds 0-2
    gave 7.7, 9.7 and 9.3. The bar is the issue's 5 dB, on the mean of seeds 0-2.
    """
    pool = SourcePool(shared_data / "sources", fs=16000)
    gains = []
    for seed in range(3):
        signals, _ = pool.draw_many(["speech", "speech"], seed, duration=6.0)
        mixture = simulate_room(signals, 16000, rt60=0.3, mic_spacing=0.05, rng=seed)
        estimates = separate(mixture.mix, n_sources=2, method="auxiva", rng=seed, n_iter=50)
        gains.append(evaluate(estimates, mixture.images, mixture=mixture.mix).mean("ΔSDR"))
    assert np.mean(gains) > 5


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"method": "pca"}, "method must be one of"),
        ({"method": "oracle-irm"}, "needs references"),
        ({"method": "auxiva", "n_sources": 3}, "at most as many sources"),
        # One check, one wording: the method named, the option named.
        ({"method": "nmf", "n_compnents": 4}, r"method 'nmf' got unknown option\(s\) \['n_c"),
        ({"method": "nmf", "max_itr": 4}, r"method 'nmf' got unknown option\(s\) \['max_itr"),
        ({"method": "mnmf-mu", "n_compnents": 4}, r"method 'mnmf-mu' got unknown option"),
        ({"method": "mnmf-em", "mixing": "instantaneous"}, r"'mnmf-em' got unknown .*mixing"),
        ({"method": "auxiva", "n_itr": 4}, r"method 'auxiva' got unknown option\(s\) \['n_itr"),
        ({"method": "auxiva", "return_filters": True}, "method 'auxiva' got unknown"),
        ({"method": "mixture", "n_iter": 4}, r"method 'mixture' got unknown option"),
        ({"method": "nmf", "group_by": "colour"}, "features must be one of"),
        ({"method": "nmf", "n_sources": 0}, "n_sources"),
    ],
)
def test_bad_calls(room, kwargs, match):
    arguments = {"n_sources": 2} | kwargs
    with pytest.raises(ValueError, match=match):
        separate(room.mix, **arguments)


def test_oracle_references_must_match(room):
    with pytest.raises(ValueError, match="references must have shape"):
        separate(room.mix, n_sources=2, method="oracle-irm", references=room.images[:, :-1])


@pytest.mark.parametrize("method", ["auxiva", "ilrma", "fastmnmf2"])
def test_each_peer_wrapper_equals_its_direct_call(room, method):
    """The wrapper runs pyroomacoustics as a user following its documentation would:
    100 iterations, AuxIVA/ILRMA projected back (here onto every mic; mic 0 is what
    ``proj_back=True`` gives), FastMNMF2's own per-mic images (``mic_index="all"``).
    The issue's bar is 0.3 dB; same seed, same STFT: the outputs are the same."""
    import pyroomacoustics as pra

    from mnmf.peers import peer_images, seeded_global_numpy

    settings = Stft(n_fft=512)
    X = settings.analyze(room.mix)
    frames_first = np.ascontiguousarray(X.transpose(1, 0, 2))
    with seeded_global_numpy(np.random.default_rng(7)):
        if method == "fastmnmf2":
            direct = pra.bss.fastmnmf2(frames_first, n_src=2, n_iter=100, mic_index="all")
            direct = direct.transpose(3, 2, 1, 0)[..., 0]  # (J, F, N) at mic 0
        else:
            direct = getattr(pra.bss, method)(frames_first, n_src=2, n_iter=100)
            direct = direct.transpose(2, 1, 0)  # projected back onto mic 0
    wrapped = peer_images(X, 2, method, rng=np.random.default_rng(7))[..., 0]
    np.testing.assert_allclose(wrapped, direct, rtol=1e-6, atol=1e-9 * np.abs(direct).max())


@pytest.mark.parametrize("method, options", [
    ("ilrma", {}), ("auxiva", {}), ("mnmf-em", {"init": "ilrma", "max_iter": 10}),
])  # fmt: skip
def test_two_sources_on_three_microphones(method, options):
    """Over-determined: ILRMA runs 3 outputs and keeps the 2 strongest, AuxIVA is
    OverIVA; pyroomacoustics' ILRMA assertion (J = I) never reaches the user."""
    rng = np.random.default_rng(3)
    sources = synthetic_sources(["speech", "music"], fs=FS, duration=2.0, rng=rng)
    room = simulate_room(list(sources), FS, rt60=0.2, n_mics=3, rng=rng)
    estimates = separate(
        room.mix, n_sources=2, method=method, rng=0, stft=Stft(n_fft=512), **options
    )
    assert estimates.shape == (2, *room.mix.shape)
    assert evaluate(estimates, room.images, mixture=room.mix).mean("ΔSDR") > 0.5  # 0.8-4.4


# ------------------------------------------------------------------------ binary masks
def test_binary_masks_are_one_hot_at_the_loudest():
    from mnmf import binary_masks

    contributions = np.array([[[1.0, 2.0, 3.0]], [[2.0, 2.0, 1.0]]])  # (J=2, 1, 3)
    masks = binary_masks(contributions)
    np.testing.assert_array_equal(masks[:, 0], [[0, 1, 1], [1, 0, 0]])  # tie: the first
    np.testing.assert_array_equal(masks.sum(axis=0), 1.0)
    assert binary_masks(np.array([[1, 0], [0, 1]])).dtype == np.float64


@pytest.mark.parametrize("method", ["nmf", "oracle-irm"])
def test_binary_masks_give_each_bin_to_one_source(method):
    from mnmf.methods import MethodInput

    rng = np.random.default_rng(0)
    references = synthetic_sources(["speech", "music"], fs=8000, duration=1.0, rng=rng)[:, :, None]
    mix = references.sum(axis=0)
    stft = Stft(n_fft=256)
    X = stft.analyze(mix)
    options = {} if method == "oracle-irm" else {"max_iter": 20}

    def spectra(mask: str) -> np.ndarray:
        data = MethodInput(
            mix=mix, X=X, stft=stft, n_sources=2, rng=np.random.default_rng(0),
            references=references, fs=8000,
        )  # fmt: skip
        return METHODS.get(method)(data, mask=mask, **options).spectra

    soft, binary = spectra("soft"), spectra("binary")
    # Each bin goes whole to the source whose soft mask (the same fit) is largest.
    winner = np.argmax(np.abs(soft), axis=0)
    for j in range(2):
        np.testing.assert_allclose(binary[j], np.where(winner == j, X, 0.0), atol=1e-12)
    if method == "oracle-irm":  # the ideal binary mask: the louder reference wins
        magnitudes = np.abs(np.stack([stft.analyze(image) for image in references]))
        loud = np.abs(X) > 1e-6 * np.abs(X).max()
        np.testing.assert_array_equal(winner[loud], np.argmax(magnitudes, axis=0)[loud])
    estimates = separate(
        mix, n_sources=2, method=method, stft=stft, rng=0, mask="binary",
        references=references if method == "oracle-irm" else None, **options,
    )  # fmt: skip
    np.testing.assert_allclose(estimates.sum(axis=0), mix, atol=1e-10)
    with pytest.raises(ValueError, match="mask must be one of"):
        spectra("hard")
