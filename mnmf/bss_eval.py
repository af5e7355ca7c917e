"""Exact BSS Eval — mir_eval 0.8.2's ``bss_eval_images`` (v3) and ``bss_eval_sources`` — fast.

The scores are the ones :mod:`mir_eval.separation` computes, with the same distortion
filters (512 taps by default) and the same definitions; only the arithmetic is
organised differently:

- the references' delayed copies span one subspace per source (all its channels × all
  delays) and one for all sources together; their Gram matrices (block Toeplitz, from
  FFT cross-correlations) are built and Cholesky-factorized **once** per reference set
  and reused for every estimate, the mixture included;
- every estimate is projected once onto each subspace, so all J × J (reference,
  estimate) pairs — hence all permutations — come from J + 1 projections per estimate,
  where mir_eval solves the full system again for each pair;
- the energies of the decomposition are quadratic forms in the filter coefficients
  (through the Cholesky factors, so never negative), except the artifacts, whose energy
  is measured on the time-domain residual as mir_eval does, so that estimates lying in
  the references' span (the mixture itself) keep their very high SAR.

Notation: J references, K estimates, T samples, I channels, L filter taps. A basis
signal ``b = j * I + c`` is channel c of reference j; a filter coefficient ``b * L + p``
multiplies basis signal b delayed by p samples.

Decomposition of estimate channel :math:`e_i` against reference j (``P_j``: projection
on the delayed copies of all channels of reference j; ``P``: of all references):

- images (SDR, ISR, SIR, SAR)::

    SDR = ||s_j||² / ||e - s_j||²          ISR = ||s_j||² / ||P_j e - s_j||²
    SIR = ||P_j e||² / ||P e - P_j e||²    SAR = ||P e||² / ||e - P e||²

- sources (one channel; SDR, SIR, SAR)::

    SDR = ||P_j e||² / ||e - P_j e||²      SIR, SAR as above

each energy summed over the channels and taken over T + L - 1 samples, in dB.

Precision: against mir_eval 0.8.2 every metric agrees to within 1e-7 dB on real and
random signals (tests/test_bss_eval.py asserts 0.01 dB and the same permutation).
Distortions at rounding level — an estimate equal to a reference, a mixture in the
references' span — give ~300 dB (or +inf) on both sides, but not the same rounding
noise. Where a reference's channels are filtered copies of each other to within
~1e-8 (a Gram matrix singular to working precision without being exactly singular)
mir_eval's own solve is dominated by rounding and the two can differ.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.linalg
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import linear_sum_assignment

from mnmf._validation import as_float_array, check_choice, check_finite, positive_int

FILTER_LENGTH = 512
"""Taps of the time-invariant distortion filters (mir_eval's ``flen``)."""

METRICS = {"images": ("SDR", "ISR", "SIR", "SAR"), "sources": ("SDR", "SIR", "SAR")}
"""The metrics of each mode, in mir_eval's order."""

TIE_TOLERANCE_DB = 1e-8
"""Permutations whose mean SIR is within this many dB of the best count as tied."""

MAX_ENUMERATED_SOURCES = 8
"""Up to this J every permutation is enumerated (mir_eval's rule, ties included)."""


@dataclass(frozen=True)
class PairEnergies:
    """Energies of the BSS Eval decomposition of K estimates against J references.

    Every energy is summed over the I channels and taken over T + L - 1 samples.

    Attributes
    ----------
    target : array (J,)
        ``||s_j||²``, the energy of reference j.
    target_distance : array (J, K)
        ``||e_k - s_j||²`` (the images SDR's distortion).
    spatial : array (J, K)
        ``||P_j e_k - s_j||²``, the spatial (filtering) distortion.
    on_source : array (J, K)
        ``||P_j e_k||²``, the energy of the projection on reference j's subspace.
    interference : array (J, K)
        ``||P e_k - P_j e_k||²``.
    on_all : array (K,)
        ``||P e_k||²``, the energy of the projection on all references' subspace.
    artifacts : array (K,)
        ``||e_k - P e_k||²``.
    """

    target: NDArray[np.float64]
    target_distance: NDArray[np.float64]
    spatial: NDArray[np.float64]
    on_source: NDArray[np.float64]
    interference: NDArray[np.float64]
    on_all: NDArray[np.float64]
    artifacts: NDArray[np.float64]

    def scores(self, *, mode: str) -> dict[str, NDArray[np.float64]]:
        """Metrics in dB of every (reference j, estimate k) pair.

        Parameters
        ----------
        mode : {"images", "sources"}

        Returns
        -------
        dict of str to array (J, K)
            ``METRICS[mode]``; +inf where a distortion energy is exactly zero.
        """
        check_choice(mode, name="mode", choices=tuple(METRICS))
        n_sources, n_estimates = self.on_source.shape
        on_all = np.broadcast_to(self.on_all, (n_sources, n_estimates))
        artifacts = np.broadcast_to(self.artifacts, (n_sources, n_estimates))
        sir = _decibels(self.on_source, self.interference)
        sar = _decibels(on_all, artifacts)
        if mode == "sources":
            sdr = _decibels(self.on_source, self.interference + artifacts)
            return {"SDR": sdr, "SIR": sir, "SAR": sar}
        target = np.broadcast_to(self.target[:, None], (n_sources, n_estimates))
        return {
            "SDR": _decibels(target, self.target_distance),
            "ISR": _decibels(target, self.spatial),
            "SIR": sir,
            "SAR": sar,
        }


class _GramFactor:
    """A factorized Gram matrix G (n, n) of basis signals: Cholesky ``G = L Lᵀ``.

    ``whiten(d)`` returns y with ``||y||² = dᵀ G⁻¹ d`` (the energy of the projection
    whose cross-correlations with the basis are d); ``coefficients(y)`` the
    least-squares filters ``G⁻¹ d``; ``energy(x)`` the column energies ``xᵀ G x``
    (``||Lᵀ x||²``: never negative).

    A G that is not numerically positive definite — channels of one reference that
    are filtered copies of each other by filters much shorter than L, proportional
    (panned) channels, a silent channel — is factorized by Cholesky with complete
    pivoting (LAPACK ``pstrf``), which stops at G's numerical rank r: the projection
    is then on the r basis signals it selected, which span the same subspace to
    working precision, as mir_eval's solve (or lstsq, for an exactly singular G) does.

    ``gram`` must be Fortran-ordered; it is overwritten.
    """

    def __init__(self, gram: NDArray[np.float64]) -> None:
        self.pivots: NDArray[np.intp] | None = None  # None: plain Cholesky, all of G
        diagonal = np.diag(gram).copy()
        try:
            # Only the lower triangle is read and written (the upper keeps G's values).
            self.lower, _ = scipy.linalg.cho_factor(
                gram, lower=True, overwrite_a=True, check_finite=False
            )
            self.square = self.lower
        except np.linalg.LinAlgError:
            # potrf stopped half-way through the lower triangle; the upper one is intact.
            gram = np.triu(gram, 1) + np.triu(gram, 1).T + np.diag(diagonal)
            factor, pivots, rank, _ = scipy.linalg.lapack.dpstrf(gram, lower=1, overwrite_a=1)
            self.pivots = pivots[:rank] - 1  # 1-based; the first `rank` are the basis kept
            self.lower = np.asfortranarray(np.tril(factor[:, :rank])[np.argsort(pivots - 1)])
            self.square = np.asfortranarray(np.tril(factor[:rank, :rank]))

    def whiten(self, rhs: NDArray[np.float64]) -> NDArray[np.float64]:
        kept = rhs if self.pivots is None else rhs[self.pivots]
        return scipy.linalg.solve_triangular(self.square, kept, lower=True, check_finite=False)

    def coefficients(self, whitened: NDArray[np.float64]) -> NDArray[np.float64]:
        kept = scipy.linalg.solve_triangular(
            self.square, whitened, lower=True, trans="T", check_finite=False
        )
        if self.pivots is None:
            return kept
        coefficients = np.zeros((self.lower.shape[0], whitened.shape[1]))
        coefficients[self.pivots] = kept
        return coefficients

    def energy(self, vectors: NDArray[np.float64]) -> NDArray[np.float64]:
        if self.pivots is None:
            mapped = scipy.linalg.blas.dtrmm(1.0, self.lower, vectors, lower=1, trans_a=1)
        else:
            mapped = self.lower.T @ vectors  # (rank, n): G = lower @ lower.T to rank r
        return np.einsum("nc,nc->c", mapped, mapped)


class ReferenceSubspaces:
    """The references' delayed-copy subspaces, factorized once, to score many estimates.

    Parameters
    ----------
    references : array, shape (J, samples, I)
        Reference images (``I = 1`` for single-channel sources). Every reference must
        have a non-zero sample.
    filter_length : int
        L, the taps of the distortion filters (mir_eval: 512).

    Notes
    -----
    Building costs one Cholesky factorization of the (J I L)² Gram matrix of all
    references and J of the (I L)² ones of each reference; :meth:`energies` then costs
    triangular solves and FFTs per estimate.
    """

    _min_block = 1024  # samples per FFT block (FFTs of twice that); at least L

    def __init__(self, references: ArrayLike, *, filter_length: int = FILTER_LENGTH) -> None:
        self.filter_length = positive_int(filter_length, name="filter_length")
        references_array = _signals(references, name="references", ndim=3)
        self.references = references_array
        self.n_sources, self.n_samples, self.n_channels = references_array.shape
        length = self.filter_length
        # Blocks of `block` samples, FFTs of twice that: lags up to L - 1 and filters
        # of L taps fit without circular wrap (block >= L).
        self._block = max(length, self._min_block)
        self._n_blocks = -(-self.n_samples // self._block)
        basis = references_array.transpose(0, 2, 1).reshape(-1, self.n_samples)
        self._basis_spectra = self._block_spectra(basis)
        lags = self._correlations(self._basis_spectra, self._basis_spectra)
        gram = _block_toeplitz(lags)  # Fortran-ordered, symmetric
        size = self.n_channels * length
        self._each = [
            _GramFactor(
                np.array(gram[j * size : (j + 1) * size, j * size : (j + 1) * size], order="F")
            )
            for j in range(self.n_sources)
        ]
        self._all = _GramFactor(gram)
        self._target = np.einsum("jtc,jtc->j", references_array, references_array)

    def energies(self, estimates: ArrayLike) -> PairEnergies:
        """Decompose every estimate against every reference.

        Parameters
        ----------
        estimates : array, shape (K, samples, I)
            K need not equal J (the mixture alone: K = 1).

        Returns
        -------
        PairEnergies
            With (J, K) pair arrays.
        """
        estimates_array = _signals(estimates, name="estimates", ndim=3)
        if estimates_array.shape[1:] != (self.n_samples, self.n_channels):
            raise ValueError(
                f"estimates must be (K, {self.n_samples}, {self.n_channels}) like the "
                f"references, got shape {estimates_array.shape}"
            )
        n_estimates = estimates_array.shape[0]
        length, n_channels = self.filter_length, self.n_channels
        channels = estimates_array.transpose(0, 2, 1).reshape(-1, self.n_samples)  # (K I, T)
        lags = self._correlations(self._block_spectra(channels), self._basis_spectra)
        # projections[b * L + p, k * I + i] = <basis b delayed by p, channel i of estimate k>
        projections = lags.transpose(2, 0, 1).reshape(-1, channels.shape[0])

        whitened = self._all.whiten(projections)
        coefficients = self._all.coefficients(whitened)
        on_all = _per_estimate(np.einsum("nc,nc->c", whitened, whitened), n_channels)
        artifacts = _per_estimate(self._residual_energy(coefficients, channels), n_channels)

        shape = (self.n_sources, n_estimates)
        on_source, spatial = np.empty(shape), np.empty(shape)
        size = n_channels * length
        # differences[:, j, e]: filters of P e - P_j e (all references' minus reference j's)
        differences = np.repeat(coefficients[:, None, :], self.n_sources, axis=1)
        for j, factor in enumerate(self._each):
            rows = slice(j * size, (j + 1) * size)
            whitened_j = factor.whiten(projections[rows])
            coefficients_j = factor.coefficients(whitened_j)
            on_source[j] = _per_estimate(np.einsum("nc,nc->c", whitened_j, whitened_j), n_channels)
            differences[rows, j] -= coefficients_j
            # s_j's channel i is basis (j, i) undelayed: its coefficient is 1 at i * L.
            spatial_error = np.array(coefficients_j, order="C")
            by_tap = spatial_error.reshape(n_channels, length, n_estimates, n_channels)
            for i in range(n_channels):
                by_tap[i, 0, :, i] -= 1.0
            spatial[j] = _per_estimate(factor.energy(spatial_error), n_channels)
        interference = self._all.energy(differences.reshape(differences.shape[0], -1))
        interference = _per_estimate(interference, n_channels).reshape(shape)

        target_distance = np.empty(shape)
        for j in range(self.n_sources):
            difference = estimates_array - self.references[j]
            target_distance[j] = np.einsum("ktc,ktc->k", difference, difference)
        return PairEnergies(
            target=self._target.copy(),
            target_distance=target_distance,
            spatial=spatial,
            on_source=on_source,
            interference=interference,
            on_all=on_all,
            artifacts=artifacts,
        )

    def pair_scores(self, estimates: ArrayLike, *, mode: str) -> dict[str, NDArray[np.float64]]:
        """Metrics in dB of every (reference j, estimate k) pair.

        Parameters
        ----------
        estimates : array, shape (K, samples, I)
        mode : {"images", "sources"}
            ``"sources"`` needs single-channel references (I = 1).

        Returns
        -------
        dict of str to array (J, K)
        """
        check_choice(mode, name="mode", choices=tuple(METRICS))
        if mode == "sources" and self.n_channels != 1:
            raise ValueError(
                f"mode='sources' scores single-channel signals, got I={self.n_channels}"
            )
        return self.energies(estimates).scores(mode=mode)

    def _block_spectra(self, signals: NDArray[np.float64]) -> NDArray[np.complex128]:
        """Spectra (F, S, n_blocks + 1) of blocks of S signals (T,), the last block zero."""
        block, n_blocks = self._block, self._n_blocks
        padded = np.zeros((signals.shape[0], (n_blocks + 1) * block))
        padded[:, : self.n_samples] = signals
        spectra = scipy.fft.rfft(padded.reshape(-1, n_blocks + 1, block), n=2 * block, axis=-1)
        return np.ascontiguousarray(spectra.transpose(2, 0, 1))

    def _correlations(
        self, x_spectra: NDArray[np.complex128], y_spectra: NDArray[np.complex128]
    ) -> NDArray[np.float64]:
        """``r[m, a, b] = Σ_t x_a[t + m] y_b[t]`` for lags 0 ≤ m < L, shape (L, X, Y).

        Block n of y meets the 2-block segment n, n + 1 of x, whose spectrum is
        ``X_n + (-1)^f X_{n+1}``: no lag < block wraps around.
        """
        alternating = np.where(np.arange(x_spectra.shape[0]) % 2 == 0, 1.0, -1.0)
        segments = x_spectra[..., :-1] + alternating[:, None, None] * x_spectra[..., 1:]
        cross = segments @ np.conj(y_spectra[..., :-1]).transpose(0, 2, 1)
        return scipy.fft.irfft(cross, n=2 * self._block, axis=0)[: self.filter_length]

    def _residual_energy(
        self, coefficients: NDArray[np.float64], channels: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """``||e - P e||²`` of each estimate channel (E,), from the filters (B L, E).

        The projection is synthesized by overlap-add of the references' block spectra
        times the filters' spectra, over T + L - 1 samples, as mir_eval filters them.
        """
        block, n_blocks, length = self._block, self._n_blocks, self.filter_length
        n_basis = self.n_sources * self.n_channels
        energies = np.empty(channels.shape[0])
        for start in range(0, channels.shape[0], 8):  # bounded memory for long signals
            stop = min(start + 8, channels.shape[0])
            filters = coefficients[:, start:stop].reshape(n_basis, length, stop - start)
            filter_spectra = scipy.fft.rfft(filters, n=2 * block, axis=1)  # (B, F, E)
            products = filter_spectra.transpose(1, 2, 0) @ self._basis_spectra[..., :-1]
            blocks = scipy.fft.irfft(products, n=2 * block, axis=0)  # (2 block, E, n)
            blocks = blocks.transpose(1, 2, 0)
            synthesized = np.zeros((stop - start, n_blocks + 1, block))
            synthesized[:, :-1] += blocks[..., :block]
            synthesized[:, 1:] += blocks[..., block:]
            residual = synthesized.reshape(stop - start, -1)[:, : self.n_samples + length - 1]
            residual = -residual
            residual[:, : self.n_samples] += channels[start:stop]
            energies[start:stop] = np.einsum("et,et->e", residual, residual)
        return energies


def best_permutation(sir: ArrayLike) -> NDArray[np.int64]:
    """The estimate matched to each reference: the permutation of best mean SIR.

    mir_eval's rule: permutations in :func:`itertools.permutations` order, the first one
    of highest mean SIR wins (a NaN mean wins as :func:`numpy.argmax` has it). Means
    within :data:`TIE_TOLERANCE_DB` of the best count as ties, so that estimates that
    are identical, or equal up to rounding, are matched as mir_eval matches them.

    Parameters
    ----------
    sir : array, shape (J, J)
        ``sir[j, k]``: SIR of estimate k against reference j.

    Returns
    -------
    int array (J,)
        ``permutation[j]`` is the estimate matched to reference j.

    Notes
    -----
    Beyond :data:`MAX_ENUMERATED_SOURCES` sources (mir_eval would enumerate J!
    permutations) the optimum comes from :func:`scipy.optimize.linear_sum_assignment`;
    ties are then broken by that solver, and infinite SIRs are capped.
    """
    sir_array = np.asarray(sir, dtype=np.float64)
    if sir_array.ndim != 2 or sir_array.shape[0] != sir_array.shape[1]:
        raise ValueError(f"sir must be a square (J, J) array, got shape {sir_array.shape}")
    n_sources = sir_array.shape[0]
    if n_sources > MAX_ENUMERATED_SOURCES:
        capped = np.nan_to_num(sir_array, nan=-1e300, posinf=1e300, neginf=-1e300)
        _, columns = linear_sum_assignment(capped, maximize=True)
        return columns.astype(np.int64)
    permutations = np.array(list(itertools.permutations(range(n_sources))), dtype=np.int64)
    mean_sir = sir_array[np.arange(n_sources), permutations].mean(axis=1)
    not_a_number = np.isnan(mean_sir)
    if not_a_number.any():
        return permutations[int(np.argmax(not_a_number))]
    best = mean_sir.max()
    return permutations[int(np.argmax(mean_sir >= best - TIE_TOLERANCE_DB))]


def bss_eval_images(
    references: ArrayLike,
    estimates: ArrayLike,
    *,
    compute_permutation: bool = True,
    filter_length: int = FILTER_LENGTH,
) -> tuple[dict[str, NDArray[np.float64]], NDArray[np.int64]]:
    """mir_eval's ``bss_eval_images`` (BSS Eval v3 images): SDR, ISR, SIR, SAR.

    Parameters
    ----------
    references : array, shape (J, samples, I)
        True source images; none all zeros.
    estimates : array, shape (J, samples, I)
        Estimated images; none all zeros.
    compute_permutation : bool
        Match estimates to references by best mean SIR (:func:`best_permutation`);
        otherwise estimate j is scored against reference j.
    filter_length : int
        Taps of the distortion filters (mir_eval: 512).

    Returns
    -------
    scores : dict of str to array (J,)
        ``"SDR"``, ``"ISR"``, ``"SIR"``, ``"SAR"`` in dB, indexed by reference.
    permutation : int array (J,)
        ``permutation[j]`` is the estimate scored against reference j.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> references = rng.standard_normal((2, 4000, 2))
    >>> estimates = references[::-1] + 0.1 * rng.standard_normal((2, 4000, 2))
    >>> scores, permutation = bss_eval_images(references, estimates)
    >>> permutation
    array([1, 0])
    >>> list(scores), bool(np.all(scores["SDR"] > 15))
    (['SDR', 'ISR', 'SIR', 'SAR'], True)
    """
    return _bss_eval(references, estimates, 3, "images", compute_permutation, filter_length)


def bss_eval_sources(
    references: ArrayLike,
    estimates: ArrayLike,
    *,
    compute_permutation: bool = True,
    filter_length: int = FILTER_LENGTH,
) -> tuple[dict[str, NDArray[np.float64]], NDArray[np.int64]]:
    """mir_eval's ``bss_eval_sources``: SDR, SIR, SAR of single-channel sources.

    Parameters
    ----------
    references : array, shape (J, samples)
        True sources; none all zeros.
    estimates : array, shape (J, samples)
        Estimated sources; none all zeros.
    compute_permutation : bool
        Match estimates to references by best mean SIR (:func:`best_permutation`);
        otherwise estimate j is scored against reference j.
    filter_length : int
        Taps of the distortion filters (mir_eval: 512).

    Returns
    -------
    scores : dict of str to array (J,)
        ``"SDR"``, ``"SIR"``, ``"SAR"`` in dB, indexed by reference.
    permutation : int array (J,)
        ``permutation[j]`` is the estimate scored against reference j.
    """
    return _bss_eval(references, estimates, 2, "sources", compute_permutation, filter_length)


def _bss_eval(
    references: ArrayLike,
    estimates: ArrayLike,
    ndim: int,
    mode: str,
    compute_permutation: bool,
    filter_length: int,
) -> tuple[dict[str, NDArray[np.float64]], NDArray[np.int64]]:
    references_array = _signals(references, name="references", ndim=ndim)
    estimates_array = _signals(estimates, name="estimates", ndim=ndim)
    if estimates_array.shape != references_array.shape:
        raise ValueError(
            f"estimates and references must have the same shape, got {estimates_array.shape} "
            f"and {references_array.shape}"
        )
    if ndim == 2:
        references_array, estimates_array = references_array[..., None], estimates_array[..., None]
    subspaces = ReferenceSubspaces(references_array, filter_length=filter_length)
    pairs = subspaces.pair_scores(estimates_array, mode=mode)
    return select_pairs(pairs, compute_permutation=compute_permutation)


def select_pairs(
    pair_scores: dict[str, NDArray[np.float64]], *, compute_permutation: bool
) -> tuple[dict[str, NDArray[np.float64]], NDArray[np.int64]]:
    """Each reference's scores with its matched estimate.

    Parameters
    ----------
    pair_scores : dict of str to array (J, J)
        From :meth:`ReferenceSubspaces.pair_scores`; must hold ``"SIR"``.
    compute_permutation : bool
        Match by :func:`best_permutation`, or estimate j to reference j.

    Returns
    -------
    scores : dict of str to array (J,)
    permutation : int array (J,)
    """
    sir = pair_scores["SIR"]
    n_sources = sir.shape[0]
    if sir.shape != (n_sources, n_sources):
        raise ValueError(f"pair scores must be (J, J), got shape {sir.shape}")
    if compute_permutation:
        permutation = best_permutation(sir)
    else:
        permutation = np.arange(n_sources, dtype=np.int64)
    references = np.arange(n_sources)
    scores = {name: values[references, permutation] for name, values in pair_scores.items()}
    return scores, permutation


def _signals(value: ArrayLike, *, name: str, ndim: int) -> NDArray[np.float64]:
    """Finite float64 signals with no all-zero source (axis 0)."""
    array = as_float_array(value, name=name, ndim=ndim).astype(np.float64, copy=False)
    check_finite(array, name=name)
    silent = [j for j in range(array.shape[0]) if not np.any(array[j])]
    if silent:
        raise ValueError(f"{name} {silent} are all zeros; BSS Eval cannot score silence")
    return array


def _block_toeplitz(lags: NDArray[np.float64]) -> NDArray[np.float64]:
    """Gram matrix (B L, B L) of B signals delayed by 0..L-1, from ``lags`` (L, B, B).

    Entry (a L + p, b L + q) is ``<x_a delayed by p, x_b delayed by q> = r_ab[q - p]``,
    with ``r_ab[-m] = r_ba[m]``; the result is exactly symmetric, and Fortran-ordered
    (its transpose is built C-ordered: the same matrix) for LAPACK to work in place.
    """
    length, n_basis, _ = lags.shape
    positive = lags.transpose(1, 2, 0)  # [a, b, m] = r_ab[m]
    negative = lags.transpose(2, 1, 0)  # [a, b, m] = r_ba[m] = r_ab[-m]
    every_lag = np.concatenate([negative[:, :, :0:-1], positive], axis=2)  # lags 1-L..L-1
    # windows[a, b, p, q] = every_lag[a, b, (L - 1 - p) + q] = r_ab[q - p]
    windows = sliding_window_view(every_lag, length, axis=2)[:, :, ::-1]
    gram = np.empty((n_basis, length, n_basis, length))
    gram[...] = windows.transpose(0, 2, 1, 3)
    return gram.reshape(n_basis * length, n_basis * length).T


def _per_estimate(values: NDArray[np.float64], n_channels: int) -> NDArray[np.float64]:
    """Sum per-channel values (K I,) into per-estimate ones (K,)."""
    return values.reshape(-1, n_channels).sum(axis=1)


def _decibels(numerator: NDArray[np.float64], denominator: NDArray[np.float64]) -> NDArray:
    """``10 log10(numerator / denominator)``, +inf where the denominator is 0 (mir_eval)."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = 10 * np.log10(numerator / denominator)
    return np.where(denominator == 0, np.inf, ratio)
