"""Input checks shared by the public functions.

Every check raises :class:`ValueError` naming the offending argument and what was
expected, so that a user's mistake reads as a sentence rather than a traceback from
deep inside a numerical loop. :func:`check_signal` and :func:`check_images` are the
checks of audio (a mixture, reference images); :class:`SeparationError` is the error
of a method that fails on audio that passed them.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from numpy.typing import ArrayLike, NDArray

FLOAT_DTYPES = (np.float32, np.float64)


def as_float_array(value: ArrayLike, *, name: str, ndim: int | Iterable[int]) -> NDArray:
    """Return ``value`` as a float32/float64 array with an allowed number of dimensions.

    Float32 and float64 inputs keep their precision; every other numeric type is
    converted to float64. Complex input is refused (a power spectrogram is real).
    """
    array = np.asarray(value)
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if array.ndim not in allowed:
        shapes = " or ".join(f"{d}-D" for d in allowed)
        raise ValueError(f"{name} must be {shapes}, got an array of shape {array.shape}")
    if np.iscomplexobj(array):
        raise ValueError(f"{name} must be real, got dtype {array.dtype}")
    if array.dtype not in FLOAT_DTYPES:
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
            raise ValueError(f"{name} must be numeric, got dtype {array.dtype}")
        array = array.astype(np.float64)
    if array.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {array.shape}")
    return array


def check_finite(array: NDArray, *, name: str) -> None:
    """Refuse NaN and ±Inf, saying how many entries are bad."""
    if not np.isfinite(array).all():
        n_bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        raise ValueError(f"{name} contains {n_bad} NaN or infinite value(s)")


def check_nonnegative(array: NDArray, *, name: str) -> None:
    """Refuse negative entries (after the finiteness check)."""
    minimum = array.min()
    if minimum < 0:
        raise ValueError(f"{name} must be non-negative, found a minimum of {minimum:g}")


def nonnegative_matrix(value: ArrayLike, *, name: str, ndim: int = 2) -> NDArray:
    """A finite, non-negative float array of ``ndim`` dimensions."""
    array = as_float_array(value, name=name, ndim=ndim)
    check_finite(array, name=name)
    check_nonnegative(array, name=name)
    return array


def check_choice(value: object, *, name: str, choices: Iterable[object]) -> None:
    """Refuse a value outside ``choices``, listing the valid ones."""
    options = tuple(choices)
    if value not in options:
        listed = ", ".join(repr(c) for c in options)
        raise ValueError(f"{name} must be one of {listed}; got {value!r}")


def positive_int(value: object, *, name: str, minimum: int = 1) -> int:
    """An integer ≥ ``minimum`` (bools refused: ``True`` is not a count)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def finite_real(value: object, *, name: str, minimum: float | None = None) -> float:
    """A finite real number, optionally bounded below (inclusive)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    number = float(value)
    if not np.isfinite(number):
        raise ValueError(f"{name} must be finite, got {number}")
    if minimum is not None and number < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {number}")
    return number


def as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """Accept a Generator, a seed, or None (fresh entropy); never touch global state."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, int | np.integer) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise ValueError(
        f"rng must be a numpy.random.Generator, an integer seed or None, got {type(rng).__name__}"
    )


def frozen_copy(array: NDArray) -> NDArray:
    """A private, read-only copy: a model description never changes once made."""
    copy = np.array(array)
    copy.setflags(write=False)
    return copy


# ----------------------------------------------------------------- audio signals
#: The most microphones a mixture may have. More columns than this, or more columns
#: than rows, means a (channels, samples) array was passed where (samples, I) is meant.
MAX_CHANNELS = 64


class SeparationError(FloatingPointError):
    """A separation method's numerics broke down on an input that passed every check.

    Raised by :func:`mnmf.separate` (and :func:`mnmf.peers.peer_images`) when a method
    returns NaN or infinite estimates or hits a singular matrix; the message names the
    method and what to try. Never replaced by zeros: a failed separation is not silence.
    A :class:`FloatingPointError`, so ``except FloatingPointError`` catches it too.
    """


def check_signal(
    value: ArrayLike,
    *,
    name: str,
    window: int | None = None,
    fs: int | None = None,
    max_channels: int = MAX_CHANNELS,
) -> NDArray[np.float64]:
    """A time-domain signal as a finite float64 array of shape (samples, I).

    Every rule is a ValueError naming ``name`` and what was expected.

    Parameters
    ----------
    value : array, shape (samples,) or (samples, I)
        Floating-point samples (any float dtype; converted to float64). Integer PCM is
        refused rather than guessed at: its full scale (128 offset for 8-bit, 32768 for
        16-bit, 2**31 for 32-bit…) is not in the array, so the message says how to
        convert it to floats in [-1, 1]. Bool, complex, object and string dtypes are
        refused, and so are ragged (unequal-length) channels.
    name : str
        The argument's name, used in the messages (``"mix"``).
    window : int, optional
        The STFT window length in samples: a shorter signal is refused (without one, a
        signal needs 2 samples).
    fs : int, optional
        The sample rate, to say lengths in seconds too.
    max_channels : int
        More columns than this, or than rows, is read as a transposed array (the
        message suggests ``name.T``).

    Returns
    -------
    array, shape (samples, I)
        float64; a 1-D signal becomes one column.
    """
    expected = "(samples,) or (samples, I)"
    array = _real_samples(value, name=name, expected=expected)
    if array.ndim not in (1, 2):
        raise ValueError(f"{name} must be {expected}, got an array of shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {array.shape}")
    if array.ndim == 1:
        array = array[:, None]
    n_samples, n_channels = array.shape
    # Wider than tall reads as transposed, unless even the transpose could not be
    # analysed (a handful of samples on a few channels is just too short).
    long_enough_transposed = window is None or n_channels >= window
    if n_channels > max_channels or (n_channels > n_samples and long_enough_transposed):
        raise ValueError(
            f"{name} must be (samples, I) with one column per microphone (at most "
            f"{max_channels}); got shape {array.shape}, i.e. {n_channels} channels of "
            f"{n_samples} sample(s): if its rows are the channels, pass "
            f"{name + '.T' if isinstance(value, np.ndarray) else f'np.transpose({name})'}"
        )
    if window is None and n_samples < 2:
        raise ValueError(f"{name} has a single sample; a signal needs at least 2")
    if window is not None and n_samples < window:
        raise ValueError(
            f"{name} has {_samples(n_samples, fs)}, shorter than the STFT window of "
            f"{_samples(window, fs, rate=False)}: give at least {window} samples or a shorter "
            f"window (stft=Stft(n_fft=...))"
        )
    _check_all_finite(array, name=name)
    return array


def check_images(
    value: ArrayLike, *, name: str, shape: tuple[int, int, int]
) -> NDArray[np.float64]:
    """Per-source images (e.g. ``references``) as a finite float64 array of ``shape``.

    Parameters
    ----------
    value : array, shape (J, samples, I), or (J, samples) where I = 1
        The same dtype rules as :func:`check_signal`.
    name : str
    shape : tuple (J, samples, I)
        What the images must match (the mixture's samples and channels, J sources).

    Returns
    -------
    array, shape (J, samples, I)
        float64.
    """
    expected = "(J, samples, I) = ({}, {}, {})".format(*shape)
    array = _real_samples(value, name=name, expected=expected)
    if array.ndim == 2 and shape[2] == 1:
        array = array[:, :, None]
    if array.shape != tuple(shape):
        raise ValueError(
            f"{name} must have shape {expected}: one image per source on the mixture's "
            f"samples and channels; got {array.shape}"
        )
    _check_all_finite(array, name=name)
    return array


def _real_samples(value: ArrayLike, *, name: str, expected: str) -> NDArray[np.float64]:
    """``value`` as a float64 array, refusing ragged input and non-float dtypes."""
    try:
        array = np.asarray(value)
    except ValueError:  # NumPy refuses ragged nested sequences
        raise ValueError(
            f"{name} must be an array {expected} with as many samples in every channel; "
            f"got a ragged sequence{_lengths(value)}"
        ) from None
    dtype = array.dtype
    if dtype == np.object_:
        raise ValueError(
            f"{name} must be a float array {expected}, got dtype object (channels of "
            f"different lengths{_lengths(value)}, or entries that are not numbers)"
        )
    if dtype == np.bool_ or np.iscomplexobj(array):
        what = "real (a time-domain signal)" if np.iscomplexobj(array) else "a float array"
        raise ValueError(f"{name} must be {what}, got dtype {dtype}")
    if np.issubdtype(dtype, np.integer):
        raise ValueError(
            f"{name} must be a float array (samples in [-1, 1]), got integer dtype {dtype}: "
            f"the full scale of integer PCM is ambiguous, convert it first, e.g. "
            f"{_pcm_hint(dtype, name)}"
        )
    if not np.issubdtype(dtype, np.floating):
        raise ValueError(f"{name} must be a float array {expected}, got dtype {dtype}")
    return array.astype(np.float64, copy=False)


def _pcm_hint(dtype: np.dtype, name: str) -> str:
    info = np.iinfo(dtype)
    if dtype == np.uint8:  # 8-bit WAV is unsigned, centred on 128
        return f"({name}.astype(np.float64) - 128) / 128"
    if info.min < 0 and info.bits <= 32:
        return f"{name}.astype(np.float64) / {2 ** (info.bits - 1)}"
    return f"{name}.astype(np.float64) / full_scale (32768 for 16-bit PCM)"


def _lengths(value: object) -> str:
    """`` (lengths 16000, 15999)`` for a sequence of sequences, else nothing."""
    try:
        lengths = [len(entry) for entry in value]  # type: ignore[attr-defined]
    except TypeError:
        return ""
    shown = ", ".join(str(n) for n in lengths[:6]) + (", …" if len(lengths) > 6 else "")
    return f" (entries of lengths {shown})"


def _samples(n: int, fs: int | None, *, rate: bool = True) -> str:
    """``400 samples (0.05 s at 8000 Hz)``; only the count without ``fs``."""
    text = f"{n} sample{'s' if n != 1 else ''}"
    if fs is None:
        return text
    return f"{text} ({n / fs:.3g} s at {fs} Hz)" if rate else f"{text} ({n / fs:.3g} s)"


def _check_all_finite(array: NDArray, *, name: str) -> None:
    """Refuse NaN and ±Inf, saying how many of each and where the first one is."""
    finite = np.isfinite(array)
    if finite.all():
        return
    n_nan = int(np.count_nonzero(np.isnan(array)))
    n_inf = int(array.size - np.count_nonzero(finite)) - n_nan
    first = tuple(int(i) for i in np.argwhere(~finite)[0])
    raise ValueError(
        f"{name} contains {n_nan} NaN and {n_inf} infinite value(s), the first at index "
        f"{first}: {name} must be finite"
    )
