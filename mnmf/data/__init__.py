"""Data: audio files, room simulation, mixture folders and synthetic sources.

- :mod:`mnmf.data.io`: audio in and out (atomic writes, resampling);
- :mod:`mnmf.data.simulate`: pyroomacoustics rooms and instantaneous mixes
  (:class:`Mixture`);
- :mod:`mnmf.data.datasets`: mixture folders and pools of dry sources on disk;
- :mod:`mnmf.data.synthetic`: seeded synthetic notes, speech-like syllables,
  percussion and the seed slides' gated sines.
"""

from mnmf.data import datasets, io, simulate, synthetic
from mnmf.data.datasets import SourcePool, iter_mixtures, load_mixture
from mnmf.data.simulate import Mixture, instantaneous_mix, simulate_room

__all__ = [
    "Mixture",
    "SourcePool",
    "datasets",
    "instantaneous_mix",
    "io",
    "iter_mixtures",
    "load_mixture",
    "simulate",
    "simulate_room",
    "synthetic",
]
