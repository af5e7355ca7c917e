"""mnmf — multichannel audio source separation with non-negative matrix factorization.

Notation and axis orders follow DESIGN.md: STFTs are (F, N[, I]), templates W (F, K),
activations H (K, N). Importing this package never imports Hydra.
"""

from mnmf.divergence import beta_divergence, mm_exponent
from mnmf.engine import Callback, FitResult, IterationInfo, IterativeModel, run
from mnmf.nmf import NMFResult, fit_nmf
from mnmf.separation import group_components, separate_components, wiener_masks
from mnmf.sources import NMFSource
from mnmf.stft import istft, stft

__version__ = "0.1.0"

__all__ = [
    "Callback",
    "FitResult",
    "IterationInfo",
    "IterativeModel",
    "NMFResult",
    "NMFSource",
    "beta_divergence",
    "fit_nmf",
    "group_components",
    "istft",
    "mm_exponent",
    "run",
    "separate_components",
    "stft",
    "wiener_masks",
]
