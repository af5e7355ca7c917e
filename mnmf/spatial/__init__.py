"""Spatial models: how the sources reach the microphones.

- ``"gains"``, :class:`GainsModel` (MU): per-source power gains Q (Ozerov & Févotte
  2010, criterion C2);
- ``"convolutive"``, :class:`ConvolutiveEMModel` (EM): complex mixing filters A and
  sensor noise (criterion C1);
- ``"fastmnmf"``, :class:`FastMNMFModel` (MU + iterative projection): jointly
  diagonalizable spatial covariances (FastMNMF1/FastMNMF2, Sekiguchi et al.).

Any object that follows :class:`SpatialModel` plugs into :func:`mnmf.fit_mnmf` with any
source model that supports its algorithm; registering it in :data:`SPATIAL_MODELS` is
only needed to select it by name. See docs/design.md, §5.
"""

from mnmf.spatial.base import SPATIAL_MODELS, SpatialModel, SpatialModelBase, principal_filters
from mnmf.spatial.convolutive import ConvolutiveEMModel, em_images
from mnmf.spatial.fastmnmf import FastMNMFModel, fastmnmf_images
from mnmf.spatial.gains import GainsModel, gains_images

__all__ = [
    "SPATIAL_MODELS",
    "ConvolutiveEMModel",
    "FastMNMFModel",
    "GainsModel",
    "SpatialModel",
    "SpatialModelBase",
    "em_images",
    "fastmnmf_images",
    "gains_images",
    "principal_filters",
]
