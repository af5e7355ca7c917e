"""Audio files in and out. Writes are atomic: a reader never sees a half-written file."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile
from numpy.typing import ArrayLike, NDArray
from scipy.signal import resample_poly

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
    return atomic_write(
        Path(path),
        lambda temporary: soundfile.write(temporary, samples, fs, subtype="FLOAT", format="WAV"),
    )


def write_json(path: str | os.PathLike, data: object) -> Path:
    """Write ``data`` as indented JSON, atomically (a crash leaves the old file or none)."""
    text = json.dumps(data, indent=2, allow_nan=True)
    return atomic_write(Path(path), lambda temporary: Path(temporary).write_text(text + "\n"))


def atomic_write(destination: Path, write: Callable[[str], object]) -> Path:
    """Write through a temporary file in the same folder, then rename it into place.

    The file gets the permissions a plain ``open(..., "w")`` would give it (``0o666``
    less the process's umask, i.e. 0644 by default), not the private 0600 of the
    temporary file, so colleagues and a web server can read results.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        dir=destination.parent, prefix=f".{destination.name}.", suffix=".tmp"
    )
    os.close(handle)
    try:
        write(temporary)
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return destination


def _umask() -> int:
    """The process's file-creation mask.

    Read from ``/proc/self/status`` where Linux offers it (no side effect); elsewhere by
    setting it and restoring it at once.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def load_audio(
    path: str | os.PathLike, *, fs: int | None = None, mono: bool = False
) -> tuple[NDArray[np.float64], int]:
    """Read an audio file as float64, optionally resampled and down-mixed.

    Parameters
    ----------
    path : path-like
        Any format libsndfile reads (WAV, FLAC, OGG, ...).
    fs : int, optional
        Target sample rate; resampled with :func:`scipy.signal.resample_poly` (a
        polyphase filter with the exact rational ratio) when it differs from the file's.
    mono : bool
        Average the channels into one.

    Returns
    -------
    signal : array, shape (samples,) if mono or the file has one channel, else (samples, channels)
    fs : int
        The sample rate of ``signal``.
    """
    source = Path(path)
    if not source.is_file():
        raise ValueError(f"audio file not found: {source}")
    try:
        signal, file_fs = soundfile.read(source, dtype="float64", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as error:
        raise ValueError(f"cannot read audio file {source}: {error}") from None
    if signal.shape[0] == 0:
        raise ValueError(f"audio file {source} is empty")
    if mono:
        signal = signal.mean(axis=1, keepdims=True)
    if fs is not None:
        fs = positive_int(fs, name="fs")
        signal = resample(signal, file_fs, fs)
        file_fs = fs
    return (signal[:, 0] if signal.shape[1] == 1 else signal), int(file_fs)


def resample(signal: ArrayLike, fs_in: int, fs_out: int) -> NDArray[np.float64]:
    """Resample along the first axis (samples) by the exact ratio ``fs_out / fs_in``."""
    samples = np.asarray(signal, dtype=np.float64)
    fs_in = positive_int(int(fs_in), name="fs_in")
    fs_out = positive_int(int(fs_out), name="fs_out")
    if fs_in == fs_out:
        return samples
    common = math.gcd(fs_in, fs_out)
    return resample_poly(samples, fs_out // common, fs_in // common, axis=0)
