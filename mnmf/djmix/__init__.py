"""DJ-mix transcription: from a mix and its reference tracks, each track's gain, time-warp
and transitions (André, Fourer & Schwarz 2024: multi-pass IS-NMF with the tracks'
spectrograms as fixed dictionaries), with a synthetic-mix generator that knows the truth,
the literature's evaluation and baselines.

- :mod:`~mnmf.djmix.timeline`: :class:`TrackTimeline` (gain and position curves on the
  mix time axis, and the parameters they imply) and :class:`MixTruth` (``truth.json``).
- :mod:`~mnmf.djmix.synthetic`: reference tracks (:func:`load_tracks`,
  :func:`synthetic_tracks`) and DJ mixes with their truth (:func:`generate_mix`:
  crossfade shapes, resampling / time-stretch / ramps, loops, jumps, EQ, effects,
  noise), as folders (:func:`write_mix_folder`, :func:`load_mix_folder`).
- :mod:`~mnmf.djmix.decompose`: :func:`decompose_mix`, the multi-pass IS-NMF with the
  tracks' mel spectrograms as fixed dictionaries (:mod:`~mnmf.djmix.features`), a
  filter–threshold–resize step between passes, then the sub-frame refinement
  (:mod:`~mnmf.djmix.refine`).
- :mod:`~mnmf.djmix.evaluation`: :func:`evaluate_transcription`, the literature's
  errors (warp, cue point, speed, fades, gains, jumps and loops); and
  :mod:`~mnmf.djmix.baselines`: :func:`dtw_transcription` (local DTW alignment, gains by
  least squares).
"""

from mnmf.djmix.baselines import dtw_transcription
from mnmf.djmix.decompose import DJMixResult, PassRecord, decompose_mix
from mnmf.djmix.evaluation import (
    TranscriptionScores,
    detect_events,
    evaluate_transcription,
    event_scores,
)
from mnmf.djmix.synthetic import (
    EFFECTS,
    FADE_SHAPES,
    TIME_SCALINGS,
    GeneratedMix,
    Track,
    generate_mix,
    load_mix_folder,
    load_tracks,
    synthetic_tracks,
    write_mix_folder,
)
from mnmf.djmix.timeline import MixTruth, TrackTimeline, derive_parameters, resampled

__all__ = [
    "EFFECTS",
    "FADE_SHAPES",
    "TIME_SCALINGS",
    "DJMixResult",
    "GeneratedMix",
    "MixTruth",
    "PassRecord",
    "Track",
    "TrackTimeline",
    "TranscriptionScores",
    "decompose_mix",
    "derive_parameters",
    "detect_events",
    "dtw_transcription",
    "evaluate_transcription",
    "event_scores",
    "generate_mix",
    "load_mix_folder",
    "load_tracks",
    "resampled",
    "synthetic_tracks",
    "write_mix_folder",
]
