"""mnmf — multichannel audio source separation with non-negative matrix factorization.

Notation and axis orders follow docs/design.md: STFTs are (F, N[, I]), templates W
(F, K), activations H (K, N). Importing this package never imports Hydra.

Where things are:

- :mod:`mnmf.sources` — source models (NMF, smooth NMF) and their protocols;
- :mod:`mnmf.spatial` — spatial models (gains, convolutive EM) and their protocol;
- :mod:`mnmf.engine` and :mod:`mnmf.algorithms` — the iteration engine, ``fit_nmf``,
  ``fit_mnmf`` and start strategies;
- :mod:`mnmf.features` — STFT settings (:class:`Stft`), STFT, mel/log filterbanks;
- :mod:`mnmf.data` — audio files, room simulation, datasets, synthetic sources;
- :mod:`mnmf.separation`, :mod:`mnmf.methods`, :mod:`mnmf.peers` — masks, the
  ``separate`` entry point and the pyroomacoustics baselines;
- :mod:`mnmf.evaluation` — BSS Eval scores next to the mixture's own;
- :mod:`mnmf.templates` — what a template looks like (centroid, flatness, harmonicity,
  f0);
- :mod:`mnmf.divergence`, :mod:`mnmf.grouping`, :mod:`mnmf.registry` — β-divergence,
  source groupings, name registries.
"""

import sys

from mnmf import (
    algorithms,
    data,
    divergence,
    engine,
    evaluation,
    features,
    grouping,
    methods,
    peers,
    registry,
    separation,
    sources,
    spatial,
    templates,
)
from mnmf.algorithms import MNMFResult, NMFResult, fit_mnmf, fit_nmf
from mnmf.data import (
    Mixture,
    SourcePool,
    datasets,
    instantaneous_mix,
    io,
    iter_mixtures,
    load_mixture,
    simulate,
    simulate_room,
    synthetic,
)
from mnmf.divergence import beta_divergence, mm_exponent
from mnmf.engine import Callback, FitResult, IterationInfo, IterativeModel, run
from mnmf.evaluation import Evaluation, errors_near_times, evaluate, score_mixture
from mnmf.features import Filterbank, Stft, istft, stft
from mnmf.grouping import SourceGrouping
from mnmf.methods import METHODS, Separation, SeparationError, separate, separate_with_fit
from mnmf.separation import (
    binary_masks,
    group_components,
    ratio_masks,
    separate_components,
    wiener_masks,
)
from mnmf.sources import Dictionary, NMFSource, SmoothNMFSource, learn_dictionary
from mnmf.spatial import ConvolutiveEMModel, GainsModel
from mnmf.templates import TemplateFeatures, template_features

# The data modules lived at the top level before the layout grew subpackages; these
# aliases keep ``import mnmf.io`` and ``from mnmf.synthetic import ...`` working.
for _module in (datasets, io, simulate, synthetic):
    sys.modules.setdefault(f"mnmf.{_module.__name__.rsplit('.', 1)[-1]}", _module)
del _module

__version__ = "0.1.0"

__all__ = [
    "METHODS",
    "Callback",
    "ConvolutiveEMModel",
    "Dictionary",
    "Evaluation",
    "Filterbank",
    "FitResult",
    "GainsModel",
    "IterationInfo",
    "IterativeModel",
    "MNMFResult",
    "Mixture",
    "NMFResult",
    "NMFSource",
    "Separation",
    "SeparationError",
    "SmoothNMFSource",
    "SourceGrouping",
    "SourcePool",
    "Stft",
    "TemplateFeatures",
    "algorithms",
    "beta_divergence",
    "binary_masks",
    "data",
    "datasets",
    "divergence",
    "engine",
    "errors_near_times",
    "evaluate",
    "evaluation",
    "features",
    "fit_mnmf",
    "fit_nmf",
    "group_components",
    "grouping",
    "instantaneous_mix",
    "io",
    "istft",
    "iter_mixtures",
    "learn_dictionary",
    "load_mixture",
    "methods",
    "mm_exponent",
    "peers",
    "ratio_masks",
    "registry",
    "run",
    "score_mixture",
    "separate",
    "separate_components",
    "separate_with_fit",
    "separation",
    "simulate",
    "simulate_room",
    "sources",
    "spatial",
    "stft",
    "synthetic",
    "template_features",
    "templates",
    "wiener_masks",
]
