"""DJ-mix transcription: from a mix and its reference tracks, each track's gain, time-warp
and transitions (André, Fourer & Schwarz 2024: multi-pass IS-NMF with the tracks'
spectrograms as fixed dictionaries), with a synthetic-mix generator that knows the truth,
the literature's evaluation and baselines.

- :mod:`~mnmf.djmix.timeline`: :class:`TrackTimeline` (gain and position curves on the
  mix time axis, and the parameters they imply) and :class:`MixTruth` (``truth.json``).
"""

from mnmf.djmix.timeline import MixTruth, TrackTimeline, derive_parameters, resampled

__all__ = ["MixTruth", "TrackTimeline", "derive_parameters", "resampled"]
