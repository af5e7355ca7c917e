"""Dictionaries learned beforehand, for supervised separation with fixed templates.

``learn_dictionary(signals_or_files, n_components, fs=..., stft=...)`` fits an IS-NMF
to the power spectrogram of training recordings of one source kind (all of them, one
after another) and keeps its templates W (F, K) with the STFT settings and sample rate
they belong to. A :class:`Dictionary` is saved and loaded as ``.npz`` — plain arrays and
a JSON header, never pickle — and plugs into every NMF method of :func:`mnmf.separate`
(``dictionaries=[speech, music]``: one per source, fixed) and into any source model
(``NMFSource(W=dictionary.W, fix_W=True)``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mnmf._validation import as_float_array, check_finite, frozen_copy, positive_int
from mnmf.features import Stft

#: Format tag written in every dictionary file.
FORMAT = "mnmf-dictionary-1"


@dataclass(frozen=True, eq=False)
class Dictionary:
    """Spectral templates of one source kind and the analysis they were learned with.

    Attributes
    ----------
    W : array, shape (F, K)
        Templates, each column summing to one (read-only).
    stft : Stft
        The STFT settings of the training spectrograms; a separation must use the same.
    fs : int
        Sample rate of the training audio.
    name : str
        What it describes (e.g. ``"speech"``).
    sources : tuple of str
        The training files (or "array #i" for arrays).
    """

    W: NDArray[np.float64]
    stft: Stft
    fs: int
    name: str = ""
    sources: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        W = as_float_array(self.W, name="W", ndim=2)
        check_finite(W, name="W")
        if W.shape[0] != self.stft.n_freqs:
            raise ValueError(
                f"W has {W.shape[0]} rows but the STFT (n_fft={self.stft.n_fft}) has "
                f"{self.stft.n_freqs} frequencies"
            )
        object.__setattr__(self, "W", frozen_copy(W.astype(np.float64)))
        object.__setattr__(self, "fs", positive_int(self.fs, name="fs"))

    @property
    def n_components(self) -> int:
        return int(self.W.shape[1])

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``path`` (.npz): W and a JSON header (no pickle). Returns the path."""
        from mnmf.data.io import atomic_write

        header = {
            "format": FORMAT,
            "stft": {"n_fft": self.stft.n_fft, "hop": self.stft.hop, "window": self.stft.window},
            "fs": self.fs,
            "name": self.name,
            "sources": list(self.sources),
        }

        def write(temporary: str) -> None:
            with open(temporary, "wb") as handle:  # np.savez would append ".npz" to a name
                np.savez(handle, W=self.W, header=np.array(json.dumps(header)))

        return atomic_write(Path(path), write)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Dictionary:
        """Read a file written by :meth:`save` (a ValueError names what is wrong)."""
        source = Path(path)
        if not source.is_file():
            raise ValueError(f"dictionary file not found: {source}")
        try:
            with np.load(source, allow_pickle=False) as data:
                W = data["W"]
                header = json.loads(str(data["header"]))
        except (OSError, KeyError, ValueError) as error:
            raise ValueError(f"{source} is not an mnmf dictionary file: {error}") from None
        if header.get("format") != FORMAT:
            raise ValueError(f"{source}: unknown dictionary format {header.get('format')!r}")
        return cls(
            W=W,
            stft=Stft(**header["stft"]),
            fs=header["fs"],
            name=header.get("name", ""),
            sources=tuple(header.get("sources", ())),
        )


def learn_dictionary(
    sources: Sequence[ArrayLike | str | os.PathLike],
    n_components: int,
    *,
    fs: int,
    stft: Stft | None = None,
    root: str | os.PathLike | None = None,
    name: str = "",
    beta: float = 0.0,
    max_iter: int = 200,
    rng: np.random.Generator | int | None = None,
    progress: bool = False,
) -> Dictionary:
    """IS-NMF templates of the training recordings of one source kind.

    Parameters
    ----------
    sources : sequence of arrays (samples[, channels]) or audio file paths
        Training material; files are read mono at ``fs`` (relative paths under
        ``root``). Their spectrograms are concatenated over time.
    n_components : int
        K, templates to learn.
    fs : int
        Sample rate (arrays must already be at it).
    stft : Stft, optional
        Analysis settings (default ``Stft()``); separations must use the same ones.
    root : path-like, optional
        Folder of relative paths in ``sources``.
    name : str
        What the dictionary describes.
    beta, max_iter, rng, progress
        See :func:`mnmf.fit_nmf`.

    Returns
    -------
    Dictionary
    """
    from mnmf.algorithms.nmf import fit_nmf
    from mnmf.data.io import load_audio

    settings = Stft() if stft is None else stft
    fs = positive_int(fs, name="fs")
    if isinstance(sources, str | os.PathLike) or len(sources) == 0:
        raise ValueError("sources must be a non-empty list of arrays or audio file paths")
    spectrograms, names = [], []
    for index, item in enumerate(sources):
        if isinstance(item, str | os.PathLike):
            path = Path(root) / item if root is not None else Path(item)
            signal, _ = load_audio(path, fs=fs, mono=True)
            names.append(str(item))
        else:
            signal = as_float_array(item, name=f"sources[{index}]", ndim=(1, 2))
            signal = signal.mean(axis=1) if signal.ndim == 2 else signal
            names.append(f"array #{index}")
        spectrograms.append(np.abs(settings.analyze(signal)) ** 2)
    power = np.concatenate(spectrograms, axis=1)
    fit = fit_nmf(
        power, n_components, beta=beta, max_iter=max_iter, rng=rng, progress=progress, stft=settings
    )
    return Dictionary(W=fit.W, stft=settings, fs=fs, name=name, sources=tuple(names))
