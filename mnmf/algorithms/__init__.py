"""Fitting: the single-channel data models and ``fit_nmf``, ``fit_mnmf``, start strategies.

- :mod:`mnmf.algorithms.nmf`: β-NMF by multiplicative updates (blocks of frames shared
  by threads) and IS-NMF by EM (SAGE) around any source model;
- :mod:`mnmf.algorithms.multichannel`: any source model inside any spatial model;
- :mod:`mnmf.algorithms.starts`: where the multichannel models start.

All of them hand their model to the one engine, :func:`mnmf.engine.run`.
"""

from mnmf.algorithms.multichannel import MNMFResult, fit_mnmf
from mnmf.algorithms.nmf import NMFResult, fit_nmf
from mnmf.algorithms.starts import (
    ModelStart,
    PanningStart,
    PeerStart,
    RandomStart,
    Start,
    auto_init,
)

__all__ = [
    "MNMFResult",
    "ModelStart",
    "NMFResult",
    "PanningStart",
    "PeerStart",
    "RandomStart",
    "Start",
    "auto_init",
    "fit_mnmf",
    "fit_nmf",
]
