from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator: tests never touch global random state."""
    return np.random.default_rng(20261122)


def planted_spectrogram(
    rng: np.random.Generator, n_freqs: int = 40, n_frames: int = 60, n_components: int = 3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """V drawn from the IS-NMF generative model: |x|² with x ~ N_c(0, WH), plus W and H."""
    W = rng.gamma(1.0, size=(n_freqs, n_components))
    H = rng.gamma(1.0, size=(n_components, n_frames))
    V = (W @ H) * rng.exponential(size=(n_freqs, n_frames))
    return V, W, H


SHARED_DATA = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data").resolve()


@pytest.fixture
def shared_data() -> Path:
    """../shared/data (real recordings); tests using it skip where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real audio not available: {SHARED_DATA} does not exist")
    return SHARED_DATA
