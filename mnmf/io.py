"""Audio files in and out. Writes are atomic: a reader never sees a half-written file."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile
from numpy.typing import ArrayLike

from mnmf._validation import as_float_array, check_finite, positive_int


def write_audio(
    path: str | os.PathLike, signal: ArrayLike, fs: int, *, normalize: bool = False
) -> Path:
    """Write a WAV file (32-bit float) atomically.

    Parameters
    ----------
    path : path-like
        Destination; parent folders are created.
    signal : array, shape (samples,) or (samples, channels)
    fs : int
        Sample rate in Hz.
    normalize : bool
        Scale the peak to 0.99 (for listening); by default samples are written as they
        are (float WAV keeps values beyond ±1, so nothing clips).

    Returns
    -------
    Path
        The written file.
    """
    samples = as_float_array(signal, name="signal", ndim=(1, 2))
    check_finite(samples, name="signal")
    fs = positive_int(fs, name="fs")
    if normalize:
        peak = float(np.max(np.abs(samples)))
        if peak > 0:
            samples = samples * (0.99 / peak)
    return _atomic_write(
        Path(path),
        lambda temporary: soundfile.write(temporary, samples, fs, subtype="FLOAT", format="WAV"),
    )


def write_json(path: str | os.PathLike, data: object) -> Path:
    """Write ``data`` as indented JSON, atomically (a crash leaves the old file or none)."""
    text = json.dumps(data, indent=2, allow_nan=True)
    return _atomic_write(Path(path), lambda temporary: Path(temporary).write_text(text + "\n"))


def _atomic_write(destination: Path, write: Callable[[str], object]) -> Path:
    """Write through a temporary file in the same folder, then rename it into place."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        dir=destination.parent, prefix=f".{destination.name}.", suffix=".tmp"
    )
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return destination
