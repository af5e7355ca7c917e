"""Data loaders of the Hydra layer, one per ``data.kind`` (a registry, no if/else chain).

Each loader takes the composed config and the run's data generator and returns a
:class:`mnmf.Mixture` (mixture and true images), or :class:`Recording` for data that
has no references (nothing to score).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from omegaconf import DictConfig

import mnmf
from experiments.config import data_path
from mnmf.data.io import load_audio
from mnmf.registry import Registry


@dataclass(frozen=True)
class Recording:
    """A signal without references: ``mix`` (samples, I) at ``fs``."""

    mix: np.ndarray
    fs: int


Loader = Callable[[DictConfig, np.random.Generator], "mnmf.Mixture | Recording"]

#: Loaders by ``data.kind``.
DATA_KINDS: Registry[Loader] = Registry("data kind", argument="data.kind")


def load_data(cfg: DictConfig, rng: np.random.Generator) -> mnmf.Mixture | Recording:
    """The configured mixture (or recording), from the loader of ``data.kind``."""
    return DATA_KINDS.get(cfg.data.kind)(cfg, rng)


def _crop(signal: np.ndarray, seconds: float, fs: int) -> np.ndarray:
    return signal[: round(seconds * fs)] if seconds > 0 else signal


@DATA_KINDS.register("folder")
def _folder(cfg: DictConfig, rng: np.random.Generator) -> mnmf.Mixture:
    data = cfg.data
    mixture = mnmf.load_mixture(data_path(cfg, data.path), fs=data.fs)
    if data.duration <= 0:
        return mixture
    kept = slice(round(data.duration * mixture.fs))
    return dataclasses.replace(
        mixture,
        mix=mixture.mix[kept],
        images=mixture.images[:, kept],
        sources=None if mixture.sources is None else mixture.sources[:, kept],
        noise=None if mixture.noise is None else mixture.noise[kept],
        meta=mixture.meta | {"kept_seconds": data.duration},
    )


@DATA_KINDS.register("file")
def _file(cfg: DictConfig, rng: np.random.Generator) -> Recording:
    data = cfg.data
    signal, fs = load_audio(data_path(cfg, data.path), fs=data.fs, mono=data.mono)
    signal = signal if signal.ndim == 2 else signal[:, None]
    return Recording(mix=_crop(signal, data.duration, fs), fs=fs)


@DATA_KINDS.register("sine")
def _sine(cfg: DictConfig, rng: np.random.Generator) -> mnmf.Mixture:
    data = cfg.data
    references = mnmf.synthetic.gated_sines(fs=data.fs)
    if data.snr is not None:
        level = np.sqrt(np.mean(references**2)) * 10 ** (-data.snr / 20)
        references = references + level * rng.standard_normal(references.shape)
    images = references[:, :, None]
    return mnmf.Mixture(mix=images.sum(axis=0), images=images, fs=data.fs, meta={"kind": "sine"})


@DATA_KINDS.register("synthetic")
def _synthetic(cfg: DictConfig, rng: np.random.Generator) -> mnmf.Mixture:
    data = cfg.data
    signals = list(
        mnmf.synthetic.synthetic_sources(
            list(data.sources), fs=data.fs, duration=data.duration, rng=rng
        )
    )
    return _room(cfg, signals, rng)


@DATA_KINDS.register("room")
def _room_of_files(cfg: DictConfig, rng: np.random.Generator) -> mnmf.Mixture:
    return _room(cfg, _drawn(cfg, rng), rng)


@DATA_KINDS.register("mix")
def _mix(cfg: DictConfig, rng: np.random.Generator) -> mnmf.Mixture:
    data = cfg.data
    signals = _drawn(cfg, rng)
    if data.n_mics == 1:
        images = np.stack(signals)[:, :, None]
        return mnmf.Mixture(mix=images.sum(axis=0), images=images, fs=data.fs, meta={"kind": "mix"})
    return mnmf.instantaneous_mix(signals, data.fs, n_mics=data.n_mics, rng=rng)


def _drawn(cfg: DictConfig, rng: np.random.Generator) -> list[np.ndarray]:
    """Dry sources of the configured kinds, drawn from the folders of ``source_dir``."""
    data = cfg.data
    pool = mnmf.SourcePool(data_path(cfg, data.source_dir), fs=data.fs)
    signals, _ = pool.draw_many(list(data.sources), rng, duration=data.duration)
    return signals


def _room(cfg: DictConfig, signals: list[np.ndarray], rng: np.random.Generator) -> mnmf.Mixture:
    data = cfg.data
    return mnmf.simulate_room(
        signals,
        data.fs,
        rt60=data.rt60,
        mic_spacing=data.mic_spacing,
        n_mics=data.n_mics,
        snr_db=data.snr,
        rng=rng,
    )
