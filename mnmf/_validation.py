"""Input checks shared by the public functions.

Every check raises :class:`ValueError` naming the offending argument and what was
expected, so that a user's mistake reads as a sentence rather than a traceback from
deep inside a numerical loop.
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
