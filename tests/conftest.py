from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator: tests never touch global random state."""
    return np.random.default_rng(20261122)


SHARED_DATA = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data").resolve()


@pytest.fixture
def shared_data() -> Path:
    """../shared/data (real recordings); tests using it skip where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real audio not available: {SHARED_DATA} does not exist")
    return SHARED_DATA
