"""mnmf — multichannel audio source separation with non-negative matrix factorization.

Notation and axis orders follow DESIGN.md: STFTs are (F, N[, I]), templates W (F, K),
activations H (K, N). Importing this package never imports Hydra.
"""

from mnmf.datasets import SourcePool, iter_mixtures, load_mixture
from mnmf.divergence import beta_divergence, mm_exponent
from mnmf.engine import Callback, FitResult, IterationInfo, IterativeModel, run
from mnmf.evaluation import Evaluation, evaluate
from mnmf.methods import METHODS, separate
from mnmf.multichannel import MNMFResult, fit_mnmf
from mnmf.nmf import NMFResult, fit_nmf
from mnmf.separation import group_components, separate_components, wiener_masks
from mnmf.simulate import Mixture, instantaneous_mix, simulate_room
from mnmf.sources import NMFSource, SmoothNMFSource
from mnmf.stft import istft, stft

__version__ = "0.1.0"

__all__ = [
    "METHODS",
    "Callback",
    "Evaluation",
    "FitResult",
    "IterationInfo",
    "IterativeModel",
    "MNMFResult",
    "Mixture",
    "NMFResult",
    "NMFSource",
    "SmoothNMFSource",
    "SourcePool",
    "beta_divergence",
    "evaluate",
    "fit_mnmf",
    "fit_nmf",
    "group_components",
    "instantaneous_mix",
    "istft",
    "iter_mixtures",
    "load_mixture",
    "mm_exponent",
    "run",
    "separate",
    "separate_components",
    "simulate_room",
    "stft",
    "wiener_masks",
]
