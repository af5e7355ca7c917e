"""Source models: how each source's power spectrogram is parameterized.

- ``"isnmf"``, :class:`NMFSource`: β-NMF / IS-NMF, fixed or partly fixed
  dictionaries, masks on H;
- ``"smooth"``, :class:`SmoothNMFSource`: smooth IS-NMF (Févotte 2011).

Templates learned beforehand (:func:`learn_dictionary`, :class:`Dictionary`, saved as
``.npz``) make any of them supervised: ``NMFSource(W=dictionary.W, fix_W=True)``.

Any object that follows :class:`SourceModel` (and :class:`MUSourceModel` and/or
:class:`EMSourceModel` for the algorithms it supports) plugs into
:func:`mnmf.fit_nmf`, :func:`mnmf.fit_mnmf` and every spatial model; registering it in
:data:`SOURCE_MODELS` is only needed to select it by name. See docs/design.md, §4.
"""

from mnmf.sources.base import SOURCE_MODELS, EMSourceModel, MUSourceModel, SourceModel
from mnmf.sources.dictionary import Dictionary, learn_dictionary
from mnmf.sources.nmf import MultiplicativeUpdates, NMFFactors, NMFSource, PosteriorUpdates
from mnmf.sources.smooth import SmoothNMFSource, smoothness_terms

__all__ = [
    "SOURCE_MODELS",
    "Dictionary",
    "EMSourceModel",
    "MUSourceModel",
    "MultiplicativeUpdates",
    "NMFFactors",
    "NMFSource",
    "PosteriorUpdates",
    "SmoothNMFSource",
    "SourceModel",
    "learn_dictionary",
    "smoothness_terms",
]
