"""Data loaders of the Hydra layer, one per ``data.kind`` (a registry, no if/else chain).

Each :class:`DataKind` has a loader — the composed config and the run's data generator
in, a :class:`mnmf.Mixture` (mixture and true images) or a :class:`Recording` (no
references: nothing to score) out — and says which ``data`` settings it needs.
Recordings keep ``data.excerpt`` seconds (null: all); generated and drawn data last
``data.duration`` seconds.
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


@dataclass(frozen=True)
class DataKind:
    """A loader and the ``data`` settings it needs.

    Attributes
    ----------
    load : callable
        ``(cfg, rng) -> Mixture | Recording``.
    needs : tuple of str
        ``data`` fields that must be set.
    recording : bool
        Read from disk: ``data.excerpt`` applies, ``data.duration`` does not.
    reads : tuple of str
        ``data`` fields naming the files or folders the loader reads (their sizes and
        modification times enter the run's fingerprint, :mod:`experiments.fingerprint`).
    """

    load: Loader
    needs: tuple[str, ...] = ()
    recording: bool = False
    reads: tuple[str, ...] = ()

    def validate(self, cfg: DictConfig) -> None:
        data = cfg.data
        for name in self.needs:
            if data[name] is None:
                raise ValueError(f"data.kind={data.kind!r} needs data.{name}")
        if self.recording and data.duration is not None:
            raise ValueError(
                f"data.duration is the length of generated data; a recording "
                f"(data.kind={data.kind!r}) keeps data.excerpt seconds"
            )
        if not self.recording and data.fs is None:
            raise ValueError(
                f"data.fs=null (a recording's own rate) applies to recordings; "
                f"data.kind={data.kind!r} needs a sample rate"
            )
        if data.n_sources is not None and data.n_sources < 1:
            raise ValueError(f"data.n_sources must be >= 1, got {data.n_sources}")
        if not self.recording and data.excerpt is not None:
            raise ValueError(
                f"data.excerpt applies to recordings; data.kind={data.kind!r} lasts "
                "data.duration seconds"
            )


#: Data kinds by ``data.kind``.
DATA_KINDS: Registry[DataKind] = Registry("data kind", argument="data.kind")


def data_kind(name: str, **metadata: object) -> Callable[[Loader], Loader]:
    """Register a loader as the data kind ``name`` (see :class:`DataKind`)."""

    def decorator(load: Loader) -> Loader:
        DATA_KINDS.register(name)(DataKind(load, **metadata))
        return load

    return decorator


def load_data(cfg: DictConfig, rng: np.random.Generator) -> mnmf.Mixture | Recording:
    """The configured mixture (or recording), from the loader of ``data.kind``."""
    return DATA_KINDS.get(cfg.data.kind).load(cfg, rng)


def _crop(signal: np.ndarray, seconds: float | None, fs: int) -> np.ndarray:
    return signal[: round(seconds * fs)] if seconds else signal


@data_kind("folder", needs=("path",), recording=True, reads=("path",))
def _folder(cfg: DictConfig, rng: np.random.Generator) -> mnmf.Mixture:
    data = cfg.data
    mixture = mnmf.load_mixture(data_path(cfg, data.path), fs=data.fs)
    if not data.excerpt:
        return mixture
    kept = slice(round(data.excerpt * mixture.fs))
    return dataclasses.replace(
        mixture,
        mix=mixture.mix[kept],
        images=mixture.images[:, kept],
        sources=None if mixture.sources is None else mixture.sources[:, kept],
        noise=None if mixture.noise is None else mixture.noise[kept],
        meta=mixture.meta | {"excerpt_seconds": data.excerpt},
    )


@data_kind("file", needs=("path",), recording=True, reads=("path",))
def _file(cfg: DictConfig, rng: np.random.Generator) -> Recording:
    data = cfg.data
    signal, fs = load_audio(data_path(cfg, data.path), fs=data.fs, mono=data.mono)
    signal = signal if signal.ndim == 2 else signal[:, None]
    return Recording(mix=_crop(signal, data.excerpt, fs), fs=fs)


@data_kind("sine")
def _sine(cfg: DictConfig, rng: np.random.Generator) -> mnmf.Mixture:
    data, shape = cfg.data, cfg.data.sine
    duration = 4 * np.pi if data.duration is None else float(data.duration)
    references = mnmf.synthetic.gated_sines(
        fs=data.fs, duration=duration, alpha=shape.alpha, beta=shape.beta,
        gamma=shape.gamma, delta=shape.delta,
    )  # fmt: skip
    if data.snr is not None:
        level = np.sqrt(np.mean(references**2)) * 10 ** (-data.snr / 20)
        references = references + level * rng.standard_normal(references.shape)
    images = references[:, :, None]
    edges = mnmf.synthetic.gate_edges(duration=duration, rates=(shape.alpha, shape.beta))
    meta = {"kind": "sine", "edges": edges.tolist()}
    return mnmf.Mixture(mix=images.sum(axis=0), images=images, fs=data.fs, meta=meta)


@data_kind("synthetic", needs=("duration",))
def _synthetic(cfg: DictConfig, rng: np.random.Generator) -> mnmf.Mixture:
    data = cfg.data
    signals = list(
        mnmf.synthetic.synthetic_sources(
            list(data.sources), fs=data.fs, duration=data.duration, rng=rng
        )
    )
    return _room(cfg, signals, rng)


@data_kind("room", needs=("duration",), reads=("source_dir",))
def _room_of_files(cfg: DictConfig, rng: np.random.Generator) -> mnmf.Mixture:
    return _room(cfg, _drawn(cfg, rng), rng)


@data_kind("mix", needs=("duration",), reads=("source_dir",))
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
    directory = data_path(cfg, data.source_dir)
    pool = mnmf.SourcePool(directory, fs=data.fs)
    reserved = [directory / name for files in data.train.values() for name in files]
    signals, _ = pool.draw_many(list(data.sources), rng, duration=data.duration, exclude=reserved)
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
