"""Recorded and prepared data on disk: mixture folders and pools of dry sources.

A mixture folder (the layout of ``../shared/data``) holds ``mix.wav`` (samples, I),
``image_<j>.wav`` for j = 1..J (same shape: the true image of source j at every mic),
optionally ``source_<j>.wav`` (dry mono sources) and ``meta.yaml`` (what is known).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import soundfile
import yaml
from numpy.typing import NDArray

from mnmf._validation import as_generator, check_choice, finite_real, positive_int
from mnmf.data.io import load_audio, resample
from mnmf.data.simulate import Mixture

_IMAGE = re.compile(r"image_(\d+)\.wav$")
_SOURCE = re.compile(r"source_(\d+)\.wav$")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


def _numbered(folder: Path, pattern: re.Pattern[str]) -> list[Path]:
    """Files matching ``pattern``, checked to be numbered 1..J without gaps."""
    found = {int(m.group(1)): p for p in folder.iterdir() if (m := pattern.match(p.name))}
    if found and sorted(found) != list(range(1, len(found) + 1)):
        raise ValueError(
            f"{folder}: files {pattern.pattern} must be numbered 1..J without gaps, "
            f"found {sorted(found)}"
        )
    return [found[j] for j in sorted(found)]


def _read(path: Path, expected_fs: int | None) -> tuple[NDArray, int]:
    """Read a file as (samples, channels), checking its rate against the folder's."""
    try:
        info = soundfile.info(path)
    except (RuntimeError, soundfile.LibsndfileError) as error:
        raise ValueError(f"cannot read audio file {path}: {error}") from None
    if expected_fs is not None and info.samplerate != expected_fs:
        raise ValueError(
            f"{path} has a sample rate of {info.samplerate} Hz, but mix.wav has {expected_fs} Hz"
        )
    signal, fs = load_audio(path)
    return (signal[:, None] if signal.ndim == 1 else signal), fs


def load_mixture(folder: str | os.PathLike, *, fs: int | None = None) -> Mixture:
    """Load a mixture folder (mix.wav, image_<j>.wav, optional source_<j>.wav, meta.yaml).

    Parameters
    ----------
    folder : path-like
    fs : int, optional
        Resample everything to this rate (:func:`scipy.signal.resample_poly`); by
        default keep the files' rate.

    Returns
    -------
    Mixture
        ``meta`` holds meta.yaml's content plus ``folder``, the files' sample rate
        ``fs_file``, and ``mix_minus_images_max``, the largest |mix − Σ images| (files are
        quantized, so a sum of images rarely equals the mix to the last bit).

    Raises
    ------
    ValueError
        Naming the file: missing folder or mix.wav, no image files, gaps in numbering,
        sample rates, lengths or channel counts that disagree with mix.wav, sources
        that are not mono, an unreadable meta.yaml.
    """
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"mixture folder not found: {root}")
    mix_path = root / "mix.wav"
    if not mix_path.is_file():
        raise ValueError(
            f"{root} has no mix.wav (a mixture folder needs mix.wav and image_<j>.wav)"
        )
    image_paths = _numbered(root, _IMAGE)
    if not image_paths:
        raise ValueError(f"{root} has no image_<j>.wav files: the reference images are needed")
    source_paths = _numbered(root, _SOURCE)
    if source_paths and len(source_paths) != len(image_paths):
        raise ValueError(
            f"{root} has {len(source_paths)} source_<j>.wav for {len(image_paths)} images"
        )
    mix, file_fs = _read(mix_path, None)
    images = []
    for path in image_paths:
        image, _ = _read(path, file_fs)
        if image.shape != mix.shape:
            raise ValueError(
                f"{path} has shape (samples, channels) = {image.shape}, mix.wav has {mix.shape}"
            )
        images.append(image)
    sources = []
    for path in source_paths:
        source, _ = _read(path, file_fs)
        if source.shape != (mix.shape[0], 1):
            raise ValueError(
                f"{path} must be mono with {mix.shape[0]} samples like mix.wav, got {source.shape}"
            )
        sources.append(source[:, 0])
    meta: dict = {}
    meta_path = root / "meta.yaml"
    if meta_path.is_file():
        try:
            meta = yaml.safe_load(meta_path.read_text()) or {}
        except yaml.YAMLError as error:
            raise ValueError(f"{meta_path} is not valid YAML: {error}") from None
        if not isinstance(meta, dict):
            raise ValueError(f"{meta_path} must hold a mapping, got {type(meta).__name__}")
    images_array = np.stack(images)
    meta |= {
        "folder": str(root),
        "fs_file": file_fs,
        "mix_minus_images_max": float(np.max(np.abs(mix - images_array.sum(axis=0)))),
    }
    sources_array = np.stack(sources) if sources else None
    if fs is not None and fs != file_fs:
        fs = positive_int(fs, name="fs")
        mix = resample(mix, file_fs, fs)
        images_array = np.stack([resample(image, file_fs, fs) for image in images_array])
        if sources_array is not None:
            sources_array = np.stack([resample(s, file_fs, fs) for s in sources_array])
    return Mixture(
        mix=mix,
        images=images_array,
        fs=fs or file_fs,
        sources=sources_array,
        meta=meta,
    )


def iter_mixtures(root: str | os.PathLike, *, fs: int | None = None) -> Iterator[Mixture]:
    """Load every mixture folder below ``root`` (any folder holding a mix.wav), sorted.

    Raises ValueError naming ``root`` when it does not exist or holds no mixture folder.
    """
    base = Path(root)
    if not base.is_dir():
        raise ValueError(f"dataset folder not found: {base}")
    folders = sorted(p.parent for p in base.rglob("mix.wav"))
    if not folders:
        raise ValueError(f"{base} holds no mixture folder (no mix.wav below it)")
    for folder in folders:
        yield load_mixture(folder, fs=fs)


class SourcePool:
    """Dry source files grouped by kind, to draw from for simulations.

    The kinds are the sub-folders of ``directory`` (e.g. ``speech``, ``music``,
    ``noise`` in ``../shared/data/sources``); every audio file below a sub-folder
    belongs to that kind.

    Parameters
    ----------
    directory : path-like
    fs : int
        Sample rate that drawn sources are resampled to.
    """

    def __init__(self, directory: str | os.PathLike, *, fs: int) -> None:
        self.directory = Path(directory)
        self.fs = positive_int(fs, name="fs")
        if not self.directory.is_dir():
            raise ValueError(f"source directory not found: {self.directory}")
        self.files: dict[str, list[Path]] = {}
        for sub in sorted(p for p in self.directory.iterdir() if p.is_dir()):
            files = sorted(p for p in sub.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
            if files:
                self.files[sub.name] = files
        if not self.files:
            raise ValueError(
                f"{self.directory} holds no audio files in sub-folders (one sub-folder per kind)"
            )

    @property
    def kinds(self) -> list[str]:
        return list(self.files)

    def draw(
        self,
        kind: str,
        rng: np.random.Generator | int | None = None,
        *,
        duration: float | None = None,
        exclude: Sequence[Path] = (),
        normalize: bool = True,
    ) -> tuple[NDArray[np.float64], Path]:
        """One random mono source of ``kind``, resampled to the pool's rate.

        With ``duration`` the signal is cut at a random offset (if longer) or zero-padded
        at the end (if shorter) to exactly ``round(duration · fs)`` samples. ``exclude``
        lists files not to draw (e.g. those already used in the same mixture). With
        ``normalize`` the result has unit RMS (sources of a mixture then have equal
        power: the usual 0 dB source-to-interference set-up); silence stays silence.

        Returns
        -------
        signal : array (samples,)
        path : Path
            The file it came from.
        """
        check_choice(kind, name="kind", choices=self.kinds)
        generator = as_generator(rng)
        candidates = [p for p in self.files[kind] if p not in set(exclude)]
        if not candidates:
            raise ValueError(f"no {kind!r} file left to draw in {self.directory} after exclusions")
        path = candidates[generator.integers(len(candidates))]
        signal, _ = load_audio(path, fs=self.fs, mono=True)
        if duration is not None:
            duration = finite_real(duration, name="duration", minimum=0.0)
            length = round(duration * self.fs)
            if signal.size > length:
                start = int(generator.integers(signal.size - length + 1))
                signal = signal[start : start + length]
            else:
                signal = np.pad(signal, (0, length - signal.size))
        if normalize:
            rms = float(np.sqrt(np.mean(signal**2)))
            if rms > 0:
                signal = signal / rms
        return signal, path

    def draw_many(
        self,
        kinds: Sequence[str],
        rng: np.random.Generator | int | None = None,
        *,
        duration: float | None = None,
        exclude: Sequence[Path] = (),
        normalize: bool = True,
    ) -> tuple[list[NDArray[np.float64]], list[Path]]:
        """One source per entry of ``kinds`` (see :meth:`draw`), no file twice when avoidable.

        ``exclude`` lists files never to draw (e.g. those a dictionary was trained on).
        """
        generator = as_generator(rng)
        excluded = {Path(p) for p in exclude}
        signals, paths = [], []
        for kind in kinds:
            check_choice(kind, name="kinds", choices=self.kinds)
            allowed = [p for p in self.files[kind] if p not in excluded]
            used = [p for p in paths if p in allowed]
            repeat = used if len(used) < len(allowed) else []  # reuse once all used
            signal, path = self.draw(
                kind, generator, duration=duration, exclude=[*excluded, *repeat],
                normalize=normalize,
            )  # fmt: skip
            signals.append(signal)
            paths.append(path)
        return signals, paths
