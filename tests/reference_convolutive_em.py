"""The convolutive EM as it was before its E-step was rewritten for speed (issue 17).

A frozen copy of ``ConvolutiveEMModel.step`` / ``cost`` and their helpers at commit
977cbc6 (einsums over (F, N, I, I) tensors, float64 throughout), kept as the naive
reference the fast implementation is tested equal to (1e-10 relative in float64).
The source model's blocked M-step is inlined as it was then (W rows from the old H,
then H from Σ_f u / w_new), so the reference does not depend on today's protocol.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from mnmf.spatial.convolutive import ConvolutiveEMModel


@dataclass(frozen=True)
class _Parts:
    total: np.ndarray
    without: np.ndarray
    partial: np.ndarray


def _determinant_parts(A, sigma, noise):
    n_freqs, n_mics, n_sources = A.shape
    shape = sigma.shape[1:]
    total = np.zeros(shape)
    without = np.zeros((n_sources, *shape))
    partial = np.zeros((n_sources, *shape))
    for size in range(min(n_mics, n_sources) + 1):
        for sources in itertools.combinations(range(n_sources), size):
            coefficient = np.zeros(n_freqs)
            for mics in itertools.combinations(range(n_mics), size):
                others = [i for i in range(n_mics) if i not in mics]
                minor = np.abs(np.linalg.det(A[:, mics][:, :, sources])) ** 2 if size else 1.0
                coefficient += np.prod(noise[:, others], axis=1) * minor
            coefficient = coefficient[:, None]
            for j in sources:
                others = [l for l in sources if l != j]
                partial[j] += (
                    coefficient * np.prod(sigma[others], axis=0) if others else coefficient
                )
            term = coefficient * np.prod(sigma[list(sources)], axis=0) if size else coefficient
            total += term
            for j in set(range(n_sources)) - set(sources):
                without[j] += term
    return _Parts(total=total, without=without, partial=partial)


def _inverse_and_logdet(M, determinant):
    size = M.shape[-1]
    if size == 1:
        return 1.0 / M, np.log(determinant)
    if size == 2:
        a, b, c, d = M[..., 0, 0], M[..., 0, 1], M[..., 1, 0], M[..., 1, 1]
        inverse = np.empty_like(M)
        inverse[..., 0, 0], inverse[..., 0, 1] = d, -b
        inverse[..., 1, 0], inverse[..., 1, 1] = -c, a
        inverse /= determinant[..., None, None]
        return inverse, np.log(determinant)
    return np.linalg.inv(M), np.log(determinant)


def _posterior(X, A, sigma, noise):
    n_mics = X.shape[2]
    covariance = np.einsum("fij,jfn,fkj->fnik", A, sigma, A.conj(), optimize=True)
    covariance[..., np.arange(n_mics), np.arange(n_mics)] += noise[:, None, :]
    parts = _determinant_parts(A, sigma, noise)
    inverse, logdet = _inverse_and_logdet(covariance, parts.total)
    whitened = np.einsum("fnik,fnk->fni", inverse, X)
    z = np.einsum("fij,fni->fnj", A.conj(), whitened)
    return z, inverse, logdet, whitened, parts


class ReferenceConvolutiveEM(ConvolutiveEMModel):
    """``ConvolutiveEMModel`` with the step and cost of 977cbc6 (float64).

    Set-up (scale, noise floor, start values, normalization) is today's; the reference
    keeps its own (F, N, I) copy of the scaled mixture, as the EM did then.
    """

    def initialize(self, rng) -> None:
        super().initialize(rng)
        self.X_reference = self.X.astype(np.complex128) / np.sqrt(self.scale)

    def _blocks(self):
        width = self.block_frequencies or 64  # the default then
        for start in range(0, self.n_freqs, width):
            yield slice(start, min(start + width, self.n_freqs))

    def _sigma(self, block):
        return np.stack(
            [self.source.W[block][:, m] @ self.source.H[m] for m in self.grouping.members]
        )

    def step(self) -> None:
        source = self.source
        members = np.arange(self.n_sources)
        tiny = np.finfo(source.W.dtype).tiny
        h_sums = np.zeros_like(source.H)
        for block in self._blocks():
            A = self.A[block]
            sigma = self._sigma(block)
            z, inverse, _, _, parts = _posterior(
                self.X_reference[block], A, sigma, self.noise[block]
            )
            X = self.X_reference[block]
            projected = np.einsum("fij,fnik,fkl->fnjl", A.conj(), inverse, A, optimize=True)
            s_hat = sigma.transpose(1, 2, 0) * z
            R_xs = np.einsum("fni,fnj->fij", X, s_hat.conj()) / self.n_frames
            sig = sigma.transpose(1, 2, 0)
            R_ss = (
                np.einsum("fnj,fnl->fjl", s_hat, s_hat.conj())
                - np.einsum("fnj,fnjl,fnl->fjl", sig, projected, sig)
            ) / self.n_frames
            R_ss[:, members, members] = (
                np.mean(np.abs(s_hat) ** 2, axis=1)
                + np.mean(sigma * parts.without / parts.total, axis=2).T
            )
            component = source.W[block].T[:, :, None] * source.H[:, None, :]
            posterior = np.empty_like(component)
            inverse_total = 1.0 / parts.total
            excess = np.abs(z.transpose(2, 0, 1)) ** 2
            for j, members_j in enumerate(self.grouping.members):
                own = component[members_j]
                share = sigma[j] - own
                share *= parts.partial[j]
                share += parts.without[j]
                share *= inverse_total
                share += own * excess[j]
                share *= own
                posterior[members_j] = share
            # The source model's blocked M-step as it was (PosteriorUpdates.em_block).
            inverse_h = np.reciprocal(np.maximum(source.H, tiny))
            sums = np.einsum("kfn,kn->fk", posterior, inverse_h)
            w_new = source.templates_from_posterior(sums, source.H.shape[1], columns=slice(None))
            np.maximum(w_new, tiny, out=w_new)
            W_block = source.W[block]
            W_block[:, source.free] = w_new[:, source.free]
            inverse_w = np.reciprocal(np.maximum(W_block, tiny))
            h_sums += np.einsum("kfn,fk->kn", posterior, inverse_w)
            informed = np.trace(R_ss, axis1=1, axis2=2).real > self.noise_floor[block].min(axis=1)
            A_new = self.A[block].copy()
            A_new[informed] = R_xs[informed] @ np.linalg.pinv(R_ss[informed], hermitian=True)
            self.A[block] = A_new
            if self.noise_mode == "estimate":
                residual = (
                    self.R_xx[block]
                    - A_new @ R_xs.conj().transpose(0, 2, 1)
                    - R_xs @ A_new.conj().transpose(0, 2, 1)
                    + A_new @ R_ss @ A_new.conj().transpose(0, 2, 1)
                )
                diagonal = residual[:, np.arange(self.n_mics), np.arange(self.n_mics)].real
                self.noise[block] = np.maximum(diagonal, self.noise_floor[block])
        source.H = source.activations_from_posterior(
            h_sums, source.W.shape[0], rows=slice(None)
        ).astype(source.H.dtype)
        self.iteration += 1
        if self.noise_mode == "anneal":
            self.noise[:] = self._annealed_noise()
        self.normalize()

    def cost(self) -> float:
        total = 0.0
        for block in self._blocks():
            sigma = self._sigma(block)
            _, _, logdet, whitened, _ = _posterior(
                self.X_reference[block], self.A[block], sigma, self.noise[block]
            )
            quadratic = np.einsum("fni,fni->", self.X_reference[block].conj(), whitened).real
            total += float(quadratic + logdet.sum())
        return total + self.source.penalty()
