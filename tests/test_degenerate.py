"""Degenerate audio at the one boundary of :func:`mnmf.separate` (issue 14, item 3).

Every method gets the same checks before it runs (a ValueError naming ``mix`` or
``references``), the same answer where one is defined (silence → zeros), the same
guard after it runs (never a NaN: :class:`SeparationError`), and must separate partly
silent input without NaN or error.
"""

from __future__ import annotations

import numpy as np
import pytest

import mnmf
from mnmf.data.simulate import simulate_room
from mnmf.data.synthetic import synthetic_sources
from mnmf.features import Stft
from mnmf.methods import METHODS, MethodOutput, SeparationError, method_options
from mnmf.peers import PEER_SETTINGS

FS = 8000
STFT = Stft(n_fft=512)  # 64 ms
#: Every method, as fast as it goes: a few iterations of everything.
ITERATIONS = {"max_iter": 5, "init_iter": 5, "n_iter": 5}


def fast(method: str) -> dict[str, int]:
    """The iteration options ``method`` takes, set low."""
    return {k: v for k, v in ITERATIONS.items() if k in method_options(method)}


def run(mix, method, *, n_sources=2, references=None, **extra):
    """separate() with the fast settings; references only where the method uses them."""
    if method == "oracle-irm" and references is None:
        references = np.zeros((n_sources, *np.shape(mix)))
    return mnmf.separate(
        mix,
        n_sources=n_sources,
        method=method,
        stft=STFT,
        fs=FS,
        rng=0,
        references=references if method == "oracle-irm" else None,
        **(fast(method) | extra),
    )


def applies(method: str, n_sources: int, n_mics: int) -> bool:
    settings = PEER_SETTINGS.get(method)
    return settings is None or settings.underdetermined or n_sources <= n_mics


@pytest.fixture(scope="module")
def room():
    """1 s, two sources, two microphones, peak normalized into [0.5, 1)."""
    rng = np.random.default_rng(14)
    sources = synthetic_sources(["speech", "music"], fs=FS, duration=1.0, rng=rng)
    room = simulate_room(list(sources), FS, rt60=0.2, rng=rng)
    scale = 2.0 ** -np.frexp(np.abs(room.mix).max())[1]
    return room.mix * scale, room.images * scale


# ------------------------------------------------------------------- bad input
def _with_bad_values(shape):
    mix = np.full(shape, 0.1)
    mix[[3, 50, 70], 0] = np.nan
    mix[9, 1] = -np.inf
    return mix


BAD_MIXES = {
    # case: (mix, the start of the message)
    "ragged channels": (
        [np.zeros(4000), np.zeros(3999)],
        r"mix must be an array \(samples,\) or \(samples, I\) with as many samples in every "
        r"channel; got a ragged sequence \(entries of lengths 4000, 3999\)",
    ),
    "ragged rows": ([[0.1, 0.2]] * 3000 + [[0.3]], "mix must be an array .* ragged"),
    "object dtype": (
        np.array([np.zeros(4000), np.zeros(3999)], dtype=object),
        "mix must be a float array .* got dtype object",
    ),
    "NaN and Inf": (
        _with_bad_values((4000, 2)),
        r"mix contains 3 NaN and 1 infinite value\(s\), the first at index \(3, 0\)",
    ),
    "int16 PCM": (
        np.zeros((4000, 2), dtype=np.int16),
        r"mix must be a float array \(samples in \[-1, 1\]\), got integer dtype int16: .* "
        r"mix\.astype\(np\.float64\) / 32768",
    ),
    "uint8 PCM": (
        np.full((4000, 2), 128, dtype=np.uint8),
        r"got integer dtype uint8: .*\(mix\.astype\(np\.float64\) - 128\) / 128",
    ),
    "int32 PCM": (np.ones((4000, 2), dtype=np.int32), r"mix\.astype\(np\.float64\) / 2147483648"),
    "python ints": ([[0, 1]] * 4000, "mix must be a float array .* integer dtype int64"),
    "bool": (np.ones((4000, 2), dtype=bool), "mix must be a float array, got dtype bool"),
    "complex": (np.ones((4000, 2), dtype=complex), r"mix must be real .*complex128"),
    "strings": (np.full((4000, 2), "a"), "mix must be a float array .* got dtype <U1"),
    "single sample": (np.array([0.5]), r"mix has 1 sample \(0.000125 s at 8000 Hz\), shorter"),
    "single frame of 2 mics": (np.ones((1, 1)), r"mix has 1 sample "),
    "0.05 s": (
        np.ones((400, 2)),
        r"mix has 400 samples \(0.05 s at 8000 Hz\), shorter than the STFT window of 512 "
        r"samples \(0.064 s\): give at least 512 samples or a shorter window",
    ),
    "transposed": (
        np.ones((2, 8000)),
        r"mix must be \(samples, I\) with one column per microphone \(at most 64\); got shape "
        r"\(2, 8000\), i.e. 8000 channels of 2 sample\(s\): if its rows are the channels, "
        r"pass mix\.T",
    ),
    "transposed list": (
        [np.ones(8000), np.ones(8000)],
        r"8000 channels of 2 sample\(s\): if its rows are the channels, pass np\.transpose\(mix\)",
    ),
    "65 channels": (np.ones((8000, 65)), r"at most 64\); got shape \(8000, 65\)"),
    "3-D": (np.ones((2, 4000, 2)), r"mix must be \(samples,\) or \(samples, I\), got an array"),
    "scalar": (np.float64(0.5), r"mix must be \(samples,\) or \(samples, I\), got .* \(\)"),
    "empty": (np.zeros((0, 2)), r"mix must not be empty, got shape \(0, 2\)"),
}


@pytest.mark.parametrize("case", BAD_MIXES)
@pytest.mark.parametrize("method", METHODS)
def test_a_bad_mixture_is_refused_naming_mix(method, case):
    mix, message = BAD_MIXES[case]
    with pytest.raises(ValueError, match=message) as raised:
        mnmf.separate(mix, n_sources=2, method=method, stft=STFT, fs=FS, rng=0)
    assert type(raised.value) is ValueError  # not a LinAlgError from inside


def test_lengths_are_said_in_seconds_only_when_fs_is_known():
    with pytest.raises(ValueError, match=r"^mix has 400 samples, shorter than the STFT window "):
        mnmf.separate(np.ones((400, 2)), n_sources=2, method="nmf", stft=STFT)
    with pytest.raises(ValueError, match=r"window of 2048 samples \(0.256 s\)"):  # the default
        mnmf.separate(np.ones((2047, 2)), n_sources=2, method="nmf", fs=FS)


def _bad_references(mix):
    wrong_length = np.zeros((2, mix.shape[0] - 1, 2))
    with_nan = np.zeros((2, *mix.shape))
    with_nan[1, 10, 1] = np.nan
    return {
        "wrong length": (wrong_length, r"references must have shape \(J, samples, I\) = "
                         r"\(2, 4000, 2\): .* got \(2, 3999, 2\)"),
        "wrong J": (np.zeros((3, *mix.shape)), r"references must have shape .* got \(3, 4000"),
        "mixture-shaped": (mix, r"references must have shape .* got \(4000, 2\)"),
        "NaN": (with_nan, r"references contains 1 NaN and 0 infinite value\(s\), the first at "
                r"index \(1, 10, 1\)"),
        "int16": (np.zeros((2, *mix.shape), dtype=np.int16), "references must be a float array"),
        "ragged": ([mix, mix[:-1]], "references must be an array .* ragged"),
    }  # fmt: skip


@pytest.mark.parametrize(
    "case", ["wrong length", "wrong J", "mixture-shaped", "NaN", "int16", "ragged"]
)
@pytest.mark.parametrize("method", METHODS)
def test_bad_references_are_refused_naming_references(method, case):
    mix = np.random.default_rng(0).standard_normal((4000, 2))
    references, message = _bad_references(mix)[case]
    with pytest.raises(ValueError, match=message) as raised:
        mnmf.separate(mix, n_sources=2, method=method, stft=STFT, references=references)
    assert type(raised.value) is ValueError


def test_mono_references_may_drop_the_channel_axis(room):
    mix, images = room
    mono = mix[:, 0]
    a = mnmf.separate(mono, n_sources=2, method="oracle-irm", stft=STFT, references=images[..., 0])
    b = mnmf.separate(mono, n_sources=2, method="oracle-irm", stft=STFT, references=images[..., :1])
    assert a.shape == (2, mix.shape[0], 1)
    np.testing.assert_array_equal(a, b)


def test_float32_and_lists_of_floats_are_accepted(room):
    mix, _ = room
    as_float32 = mnmf.separate(mix.astype(np.float32), n_sources=2, method="mixture", stft=STFT)
    as_list = mnmf.separate(mix.tolist(), n_sources=2, method="mixture", stft=STFT)
    assert as_float32.dtype == np.float64 and as_list.dtype == np.float64
    np.testing.assert_array_equal(as_list[0], mix)


# -------------------------------------------------------------------- silence
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape", [(4000, 2), (4000,)])
def test_a_silent_mixture_gives_silent_estimates(method, shape):
    n_mics = 1 if len(shape) == 1 else shape[1]
    n_sources = 2 if applies(method, 2, n_mics) else 1
    silence = np.zeros(shape)
    references = np.zeros((n_sources, shape[0], n_mics)) if method == "oracle-irm" else None
    separation = mnmf.separate_with_fit(
        silence, n_sources=n_sources, method=method, stft=STFT, rng=0, references=references
    )
    assert separation.images.shape == (n_sources, shape[0], n_mics)
    assert separation.images.dtype == np.float64 and not separation.images.any()
    assert separation.fit is None and separation.scale == 1.0
    assert separation.X.shape[2] == n_mics and not separation.X.any()


def test_silence_skips_the_method_but_not_the_checks(monkeypatch):
    def never(data, **options):
        raise AssertionError("a silent mixture ran the method")

    monkeypatch.setitem(METHODS._entries, "never-run", never)
    silence = np.zeros((4000, 2))
    images = mnmf.separate(silence, n_sources=3, method="never-run", stft=STFT)
    assert images.shape == (3, 4000, 2) and not images.any()
    # Whether a call is valid does not depend on the audio: the same errors as for sound.
    with pytest.raises(ValueError, match="needs references"):
        mnmf.separate(silence, n_sources=2, method="oracle-irm", stft=STFT)
    with pytest.raises(ValueError, match="at most as many sources as microphones"):
        mnmf.separate(silence, n_sources=3, method="auxiva", stft=STFT)
    with pytest.raises(ValueError, match="got unknown option"):
        mnmf.separate(silence, n_sources=2, method="nmf", stft=STFT, n_iter=3)


# ---------------------------------------------------------------- partly silent
def _partly_silent(room, case):
    """(mix, references) of a partly silent input."""
    mix, images = room
    if case == "one silent channel":
        return mix * [1.0, 0.0], images * [1.0, 0.0]
    if case == "one silent source":
        return images[0], np.stack([images[0], np.zeros_like(images[0])])
    if case == "leading and trailing silence":
        pad = ((0, 0), (FS // 2, FS // 2), (0, 0))
        return np.pad(mix, pad[1:]), np.pad(images, pad)
    if case == "near silence":  # |x|² underflows: 1e-160² is below the smallest double
        return mix * 1e-160, images * 1e-160
    if case == "near overflow":
        return mix * 1e160, images * 1e160
    raise ValueError(case)


PARTLY_SILENT = [
    "one silent channel",
    "one silent source",
    "leading and trailing silence",
    "near silence",
    "near overflow",
]


@pytest.mark.parametrize("case", PARTLY_SILENT)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.filterwarnings("ignore:1 of the 2 channels of mix are silent")  # tested below
def test_partly_silent_input_separates_without_nan(room, method, case):
    mix, references = _partly_silent(room, case)
    images = run(mix, method, references=references)
    assert images.shape == (2, *mix.shape) and images.dtype == np.float64
    assert np.all(np.isfinite(images))
    assert np.abs(images).max() <= 10 * np.abs(mix).max()  # on the mixture's scale
    if case == "one silent channel" and method not in ("mnmf-em", "mnmf-fastmnmf", "fastmnmf2"):
        # Masks and projection back put nothing on a silent microphone (the
        # multichannel Wiener filters of the full-covariance models leak a little).
        assert not images[..., 1].any()


@pytest.mark.parametrize("method", ["auxiva", "ilrma"])
def test_a_peer_with_fewer_active_channels_than_sources_says_so(room, method):
    mix, _ = room
    with pytest.warns(UserWarning, match=f"1 of the 2 channels of mix are silent: method "
                      f"'{method}' separates 1 of the 2 sources"):  # fmt: skip
        images = run(mix * [0.0, 1.0], method)
    assert not images[1].any() and not images[..., 0].any()
    np.testing.assert_allclose(images[0, :, 1], mix[:, 1], atol=1e-10)  # all of it


@pytest.mark.parametrize("method", METHODS)
def test_the_level_of_the_mixture_does_not_matter(room, method):
    """A mixture far out of range is scaled by an exact power of two: the very same
    separation, on its own scale."""
    mix, references = room
    scale = 2.0**-600
    normal = mnmf.separate_with_fit(
        mix, n_sources=2, method=method, stft=STFT, rng=0, references=references, **fast(method)
    )
    tiny = mnmf.separate_with_fit(
        mix * scale,
        n_sources=2,
        method=method,
        stft=STFT,
        rng=0,
        references=references * scale,
        **fast(method),
    )
    assert normal.scale == 1.0 and tiny.scale == 2.0**600
    np.testing.assert_array_equal(tiny.images, normal.images * scale)
    np.testing.assert_array_equal(tiny.X, normal.X)  # what the method worked on


# ----------------------------------------------------------------------- guard
@pytest.mark.parametrize("where", ["spectra", "images"])
def test_a_method_returning_nan_is_an_error_naming_it(monkeypatch, room, where):
    def broken(data, **options):
        if where == "images":
            images = np.repeat(data.mix[None], data.n_sources, axis=0)
            images[0, 5, 0] = np.nan
            return MethodOutput(images=images)
        return MethodOutput(spectra=np.full((data.n_sources, *data.X.shape), np.nan + 0j))

    monkeypatch.setitem(METHODS._entries, "broken", broken)
    with pytest.raises(SeparationError, match=r"method 'broken' returned \d+ NaN or infinite "
                       r"value\(s\) among its \d+ estimates. .* Try .*another method"):  # fmt: skip
        mnmf.separate(room[0], n_sources=2, method="broken", stft=STFT)
    assert issubclass(SeparationError, FloatingPointError)


def test_the_fake_method_is_gone(room):
    assert "broken" not in METHODS and "never-run" not in METHODS


def test_a_singular_matrix_inside_a_method_is_an_error_naming_it(monkeypatch, room):
    def singular(data, **options):
        return MethodOutput(spectra=np.linalg.solve(np.zeros((2, 2)), np.ones(2)))

    monkeypatch.setitem(METHODS._entries, "singular", singular)
    with pytest.raises(SeparationError, match="method 'singular' failed: Singular matrix") as e:
        mnmf.separate(room[0], n_sources=2, method="singular", stft=STFT)
    assert isinstance(e.value.__cause__, np.linalg.LinAlgError)


@pytest.mark.parametrize("method", METHODS)
def test_one_window_of_audio_is_estimated_or_refused_never_nan(method):
    """The shortest accepted mixture: ILRMA (and the MNMF methods starting from it)
    diverge on so few frames; that must be a SeparationError, not NaN estimates."""
    mix = np.random.default_rng(1).standard_normal((STFT.n_fft, 2))
    try:
        images = run(mix, method, n_iter=100) if method in PEER_SETTINGS else run(mix, method)
    except SeparationError as error:
        assert f"method {method!r}" in str(error) and "STFT frames" in str(error)
    else:
        assert np.all(np.isfinite(images))


@pytest.mark.parametrize("method", ["ilrma", "mnmf-mu"])
def test_ilrma_on_a_few_frames_is_a_clear_error(method):
    """Measured: pyroomacoustics' ILRMA returns NaN on 9 frames of noise (seed 0)."""
    mix = np.random.default_rng(0).standard_normal((700, 2))
    options = {"n_iter": 100} if method == "ilrma" else {"init_iter": 100, "max_iter": 2}
    with pytest.raises(SeparationError, match=f"method '{method}' failed: pyroomacoustics"):
        mnmf.separate(mix, n_sources=2, method=method, stft=STFT, rng=0, **options)


@pytest.mark.parametrize("method", ["auxiva", "ilrma", "fastmnmf2", "mnmf-em"])
def test_identical_channels_are_a_clear_error(room, method):
    """Two identical channels make every spatial covariance singular (pyroomacoustics
    has no floor): an error naming the method and the likely cause."""
    mix = room[0][:, [0, 0]]
    with pytest.raises(SeparationError, match=f"method '{method}' failed: .*identical"):
        run(mix, method)


@pytest.fixture(scope="module")
def long_room():
    """2 s, two sources, two microphones (the issue's example length)."""
    rng = np.random.default_rng(15)
    sources = synthetic_sources(["speech", "music"], fs=FS, duration=2.0, rng=rng)
    room = simulate_room(list(sources), FS, rt60=0.3, rng=rng)
    return room.mix, room.images


@pytest.mark.slow
@pytest.mark.parametrize("case", PARTLY_SILENT)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.filterwarnings("ignore:1 of the 2 channels of mix are silent")
def test_partly_silent_input_with_default_iterations(long_room, method, case):
    """As above with every method's default iterations (divergence takes its time), on
    2 s of signal; the padded case is the issue's 1 s of zeros before and after."""
    mix, references = long_room
    if case == "leading and trailing silence":
        mix, references = (
            np.pad(mix, ((FS, FS), (0, 0))),
            np.pad(references, ((0, 0), (FS, FS), (0, 0))),
        )
    else:
        mix, references = _partly_silent((mix, references), case)
    images = mnmf.separate(
        mix,
        n_sources=2,
        method=method,
        stft=STFT,
        rng=0,
        references=references if method == "oracle-irm" else None,
    )
    assert images.shape == (2, *mix.shape) and np.all(np.isfinite(images))
