"""Shared test helpers: planted problems drawn from each model, and checks.

Imported by the test modules (``from tests.helpers import ...``); fixtures live in
``tests/conftest.py``.
"""

from __future__ import annotations

import numpy as np

from mnmf.grouping import SourceGrouping


def planted_spectrogram(
    rng: np.random.Generator, n_freqs: int = 40, n_frames: int = 60, n_components: int = 3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """V drawn from the IS-NMF generative model: |x|² with x ~ N_c(0, WH), plus W and H."""
    W = rng.gamma(1.0, size=(n_freqs, n_components))
    H = rng.gamma(1.0, size=(n_components, n_frames))
    V = (W @ H) * rng.exponential(size=(n_freqs, n_frames))
    return V, W, H


def planted_mixture(
    rng, *, n_freqs=40, n_frames=80, n_mics=2, n_sources=2, per_source=2, instantaneous=False
):
    """STFT of images drawn from the gains model: X_ij = √q_ij,f · S_j, S_j ~ N_c(0, W_j H_j)."""
    K = n_sources * per_source
    labels = SourceGrouping.from_counts(n_sources, per_source).labels
    W = rng.gamma(0.3, size=(n_freqs, K)) + 1e-3
    H = rng.gamma(0.5, size=(K, n_frames)) + 1e-3
    Q = rng.uniform(0.05, 1.0, size=(n_mics, n_sources) + (() if instantaneous else (n_freqs,)))
    Q /= Q.sum(axis=0, keepdims=True)
    gains = Q if not instantaneous else Q[:, :, None]
    images = []
    for j in range(n_sources):
        power = W[:, labels == j] @ H[labels == j]
        S = np.sqrt(power / 2) * (
            rng.standard_normal(power.shape) + 1j * rng.standard_normal(power.shape)
        )
        images.append(np.sqrt(gains[:, j].T)[:, None, :] * S[..., None])  # (F, N, I)
    return np.stack(images), W, H, Q, labels


def planted_convolutive(
    rng, *, n_freqs=40, n_frames=120, n_mics=2, n_sources=2, per_source=2, noise=1e-3
):
    """X = A s + b drawn from the EM's own model, with A (F, I, J) random complex."""
    K = n_sources * per_source
    labels = SourceGrouping.from_counts(n_sources, per_source).labels
    W = rng.gamma(0.3, size=(n_freqs, K)) + 1e-3
    H = rng.gamma(0.5, size=(K, n_frames)) + 1e-3
    A = rng.standard_normal((n_freqs, n_mics, n_sources)) + 1j * rng.standard_normal(
        (n_freqs, n_mics, n_sources)
    )
    A /= np.linalg.norm(A, axis=1, keepdims=True)
    images = []
    for j in range(n_sources):
        power = W[:, labels == j] @ H[labels == j]
        S = np.sqrt(power / 2) * (
            rng.standard_normal(power.shape) + 1j * rng.standard_normal(power.shape)
        )
        images.append(A[:, None, :, j] * S[..., None])  # (F, N, I)
    images = np.stack(images)
    level = noise * np.mean(np.abs(images.sum(0)) ** 2)
    B = np.sqrt(level / 2) * (
        rng.standard_normal(images.shape[1:]) + 1j * rng.standard_normal(images.shape[1:])
    )
    return images, images.sum(0) + B, W, H, A, labels, np.full((n_freqs, n_mics), level)


def increases(cost):
    """Indices where the cost history rises by more than rounding (1e-10 relative)."""
    return np.flatnonzero(np.diff(cost) > 1e-10 * np.abs(cost[:-1]))


def stft_sdr(images, estimates):
    """Per-source SDR (dB) of two image STFTs (2, F, N, I), under the better pairing."""

    def error(order):
        return [np.sum(np.abs(estimates[order[j]] - images[j]) ** 2) for j in range(2)]

    order = min(((0, 1), (1, 0)), key=lambda o: sum(error(o)))
    energies = [np.sum(np.abs(images[j]) ** 2) for j in range(2)]
    return np.array([10 * np.log10(e / d) for e, d in zip(energies, error(order), strict=True)])
