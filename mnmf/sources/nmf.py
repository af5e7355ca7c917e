"""Plain NMF source model P = W H, split by what each piece does.

- :class:`NMFFactors`: the state (W, H, fixed columns, masks), checks and start-up,
  normalization and the scale a spatial model hands over;
- :class:`MultiplicativeUpdates`: the MU/MM updates of H and W from numerators and
  denominators (Févotte & Idier 2011);
- :class:`PosteriorUpdates`: the EM M-steps from posterior component powers, one
  component at a time (SAGE, Févotte, Bertin & Durrieu 2009) or one block of frequencies
  at a time (multichannel EM, Ozerov & Févotte 2010), through two one-line solvers —
  :meth:`~PosteriorUpdates.activations_from_posterior` and
  :meth:`~PosteriorUpdates.templates_from_posterior` — that penalized models override;
- :class:`NMFSource`: all three, registered as ``"isnmf"``.

The update rules and their sources: docs/design.md, §3–4.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mnmf._validation import frozen_copy, nonnegative_matrix, positive_int
from mnmf.divergence import BetaDivergence, mu_factor
from mnmf.sources.base import SOURCE_MODELS


class NMFFactors:
    """The factors W (F, K) and H (K, N) of a source model, with fixed columns and masks.

    Parameters
    ----------
    n_components : int, optional
        K, the number of components (columns of W, rows of H). May be left out when the
        fit supplies it (``fit_mnmf`` gives every source its ``n_components``) or a
        given ``W``/``H`` implies it.
    W : array, shape (F, K_given), optional
        Initial templates for the first ``K_given ≤ K`` components (e.g. a dictionary
        learned beforehand); the remaining columns are drawn at random.
    H : array, shape (K, N), optional
        Initial activations; drawn at random (scaled to the data) when omitted.
    fix_W : bool or sequence of int or bool array of shape (K,)
        Which columns of W stay fixed: ``True`` fixes every column given in ``W``
        (supervised NMF), a sequence of indices or a boolean mask fixes those columns
        (partially supervised). Fixed columns are never rescaled: they stay bit-identical.
    H_mask : bool array, shape (K, N), optional
        False entries of H are forced to zero and stay zero (multiplicative and EM
        updates preserve zeros), e.g. to say when a known source is silent.
    normalize : bool
        After each iteration rescale every free column of W to unit sum and move the
        scale into H. The cost is invariant to it; it only removes the scale ambiguity.

    Notes
    -----
    W and H are held in the *data model's internal units*: data models divide the data
    by a power of two close to its mean power (exact in floating point) so that float32
    stays far from overflow; :meth:`parameters` returns them in the user's units. An
    instance describes a model; fitting works on a copy (``copy.copy``), so one instance
    can be passed to several fits.
    """

    def __init__(
        self,
        n_components: int | None = None,
        *,
        W: ArrayLike | None = None,
        H: ArrayLike | None = None,
        fix_W: bool | Sequence[int] | ArrayLike = False,
        H_mask: ArrayLike | None = None,
        normalize: bool = True,
    ) -> None:
        self.n_components = (
            None if n_components is None else positive_int(n_components, name="n_components")
        )
        self.given_W = None if W is None else frozen_copy(nonnegative_matrix(W, name="W"))
        self.given_H = None if H is None else frozen_copy(nonnegative_matrix(H, name="H"))
        self._fix_W_spec = fix_W
        self._H_mask_given = None if H_mask is None else frozen_copy(np.asarray(H_mask))
        self.normalize_columns = bool(normalize)
        self._start: dict[str, NDArray] = {}
        self.W: NDArray = np.empty((0, 0))
        self.H: NDArray = np.empty((0, 0))
        self.free: NDArray[np.bool_] = np.ones(self.n_components or 0, dtype=bool)

    def __copy__(self) -> NMFFactors:
        """A copy that shares the given (read-only) arrays and has its own start values."""
        duplicate = object.__new__(type(self))
        duplicate.__dict__.update(self.__dict__)
        duplicate._start = dict(self._start)
        return duplicate

    def __repr__(self) -> str:
        given = [
            f"{name}={array.shape}"
            for name, array in (("W", self.given_W), ("H", self.given_H))
            if array is not None
        ]
        details = [f"n_components={self.n_components}", *given, *self._repr_options()]
        return f"{type(self).__name__}({', '.join(details)})"

    def _repr_options(self) -> list[str]:
        return [] if self.normalize_columns else ["normalize=False"]

    # ------------------------------------------------------------------ set-up
    def bind(self, n_freqs: int, n_frames: int, *, n_components: int | None = None) -> None:
        """Check every given array against the data's shape (F, N); no randomness."""
        K = self._resolve_n_components(n_components)
        if self.given_W is not None:
            if self.given_W.shape[0] != n_freqs:
                raise ValueError(
                    f"W must have shape (F, K) = ({n_freqs}, {K}) (or fewer columns), "
                    f"got {self.given_W.shape}"
                )
            if self.given_W.shape[1] > K:
                raise ValueError(f"W has {self.given_W.shape[1]} columns but n_components={K}")
        if self.given_H is not None and self.given_H.shape != (K, n_frames):
            raise ValueError(
                f"H must have shape (K, N) = ({K}, {n_frames}), got {self.given_H.shape}"
            )
        if self._H_mask_given is not None and self._H_mask_given.shape != (K, n_frames):
            raise ValueError(
                f"H_mask must have shape (K, N) = ({K}, {n_frames}), got {self._H_mask_given.shape}"
            )
        self.free = ~self._fixed_columns()
        self._n_freqs, self._n_frames = n_freqs, n_frames

    def _resolve_n_components(self, supplied: int | None) -> int:
        if supplied is not None:
            supplied = positive_int(supplied, name="n_components")
        implied = self.n_components
        if implied is None and self.given_H is not None:
            implied = self.given_H.shape[0]
        if implied is not None and supplied is not None and implied != supplied:
            raise ValueError(
                f"the source model has n_components={implied} but the fit needs {supplied}"
            )
        K = implied if implied is not None else supplied
        if K is None:
            if self.given_W is None:
                raise ValueError("n_components is needed (the source model does not give K)")
            K = self.given_W.shape[1]
        self.n_components = K
        return K

    def _fixed_columns(self) -> NDArray[np.bool_]:
        K, spec = self.n_components, self._fix_W_spec
        fixed = np.zeros(K, dtype=bool)
        if isinstance(spec, bool | np.bool_):
            if spec:
                if self.given_W is None:
                    raise ValueError(
                        "fix_W=True needs W: there is no given dictionary to keep fixed"
                    )
                fixed[: self.given_W.shape[1]] = True
            return fixed
        array = np.asarray(spec)
        if array.dtype == bool:
            if array.shape != (K,):
                raise ValueError(
                    f"fix_W as a mask must have shape (K,) = ({K},), got {array.shape}"
                )
            fixed = array.copy()
        elif np.issubdtype(array.dtype, np.integer) and array.ndim == 1:
            if array.size and (array.min() < 0 or array.max() >= K):
                raise ValueError(f"fix_W indices must lie in [0, {K}), got {array.tolist()}")
            fixed[array] = True
        else:
            raise ValueError(
                "fix_W must be a bool, a sequence of column indices or a boolean mask of shape (K,)"
            )
        given = 0 if self.given_W is None else self.given_W.shape[1]
        if fixed[given:].any():
            raise ValueError(
                f"fix_W fixes column(s) {np.flatnonzero(fixed[given:]) + given} "
                f"that W (with {given} columns) does not give"
            )
        return fixed

    def check_compatible(
        self, *, divergence: BetaDivergence, algorithm: str, exponent: float | None
    ) -> None:
        """Plain NMF works with any data model."""

    def start_from(self, *, W: NDArray | None = None, H: NDArray | None = None) -> None:
        """Start values in user units (from a start strategy); given ``W``/``H`` win."""
        if W is not None:
            self._start["W"] = np.asarray(W)
        if H is not None:
            self._start["H"] = np.asarray(H)

    def initialize(
        self, rng: np.random.Generator, *, mean_power: float, scale: float, dtype: np.dtype
    ) -> None:
        """Fill W and H: given values (divided by ``scale`` for H), start values, else draws.

        Random templates are uniform in [0.5, 1.5) before normalization; random
        activations are uniform too, then scaled so that the model's mean power matches
        the data's ``mean_power`` (internal units).
        """
        F, N, K = self._n_freqs, self._n_frames, self.n_components
        W = rng.uniform(0.5, 1.5, size=(F, K)).astype(dtype)
        W /= W.sum(axis=0, keepdims=True)
        given_H = self.given_H if self.given_H is not None else self._start.get("H")
        if "W" in self._start:
            W[:] = self._start["W"]
        if self.given_W is not None:
            W[:, : self.given_W.shape[1]] = self.given_W
        if given_H is not None:
            H = (given_H / scale).astype(dtype)
        else:
            H = rng.uniform(0.5, 1.5, size=(K, N)).astype(dtype)
        if self._H_mask_given is not None:
            H[~self._H_mask_given.astype(bool)] = 0
        if given_H is None:
            model_mean = float(W.mean(axis=0, dtype=np.float64) @ H.mean(axis=1, dtype=np.float64))
            if model_mean > 0:
                H *= dtype.type(mean_power / model_mean)
        self.W, self.H = W, H
        self.normalize()

    # ------------------------------------------------------------------ scale
    def normalize(self) -> None:
        """Free columns of W to unit sum, the scale moved into H (cost unchanged)."""
        if not self.normalize_columns or not self.free.any():
            return
        columns = self.free if not self.free.all() else slice(None)
        sums = self.W[:, columns].sum(axis=0)
        sums[sums <= 0] = 1  # a dead (all-zero) column stays zero
        self.W[:, columns] /= sums
        self.H[columns] *= sums[:, None]

    def scale_templates(self, factors: NDArray) -> None:
        """W[:, k] *= factors[:, k] (or factors[k]) on free columns; fixed ones untouched."""
        if self.free.all():
            self.W *= factors
        elif self.free.any():
            columns = np.flatnonzero(self.free)
            self.W[:, columns] *= factors[..., columns]

    def penalty(self) -> float:
        """Extra cost terms of the source model (none for plain NMF)."""
        return 0.0

    def parameters(self, *, scale: float) -> dict[str, NDArray]:
        """W and H in the user's units (copies)."""
        return {"W": self.W.copy(), "H": self.H * self.H.dtype.type(scale)}


class MultiplicativeUpdates:
    """MU/MM updates of NMF factors (Févotte & Idier 2011).

    With the exponent γ(β) of :func:`mnmf.mm_exponent` every update is a
    majorization–minimization step: the cost never increases.
    """

    W: NDArray
    H: NDArray
    free: NDArray[np.bool_]

    #: True when the H update of a frame needs only that frame's statistics, so a data
    #: model may update H block by block (plain NMF). Smooth NMF couples neighbouring
    #: frames and sets it to False.
    frame_separable = True

    def update_H_mu(
        self,
        numerator: NDArray,
        denominator: NDArray,
        exponent: float,
        *,
        frames: slice = slice(None),
    ) -> None:
        """H ← H ∘ (numerator / denominator)^exponent on the given frames.

        ``numerator`` and ``denominator`` have shape (K, n) for the n frames selected
        by ``frames`` (all N by default); a block of frames is only allowed when
        :attr:`frame_separable` is True.
        """
        self.H[:, frames] *= mu_factor(numerator, denominator, exponent)

    def update_W_mu(self, numerator: NDArray, denominator: NDArray, exponent: float) -> None:
        """W ← W ∘ (numerator / denominator)^exponent on free columns; shapes (F, K)."""
        factor = mu_factor(numerator, denominator, exponent)
        if self.free.all():
            self.W *= factor
        elif self.free.any():
            self.W[:, self.free] *= factor[:, self.free]


class PosteriorUpdates:
    """EM M-steps of NMF factors from posterior component powers u_k,fn.

    Each component k is a hidden complex Gaussian with variance w_fk h_kn; given u the
    expected complete-data log-likelihood is Σ_fn −log(w_fk h_kn) − u_kfn / (w_fk h_kn).
    Its maximizer over h given w, and over w given h, are
    :meth:`activations_from_posterior` and :meth:`templates_from_posterior`
    (coordinate ascent: the likelihood never decreases).
    """

    W: NDArray
    H: NDArray
    free: NDArray[np.bool_]

    # ------------------------------------------------------------------ solvers
    def activations_from_posterior(self, sums: NDArray, n_freqs: int, *, rows: slice) -> NDArray:
        """New H rows ``rows`` given S_kn = Σ_f u_kfn / w_fk, shape (K', N).

        Plain NMF: h = S / F. Penalized models override this (and only this) for H.
        """
        return sums / n_freqs

    def templates_from_posterior(
        self, sums: NDArray, n_frames: int, *, columns: slice | NDArray
    ) -> NDArray:
        """New W entries of ``columns`` given T_fk = Σ_n u_kfn / h_kn, shape (F', K').

        Plain NMF: w = T / N.
        """
        return sums / n_frames

    # ------------------------------------------------------------------ SAGE
    def update_from_posterior(self, k: int, posterior_power: NDArray) -> None:
        """SAGE M-step for component ``k`` from its posterior power u_k (F, N).

        h_k from the current w_k, then w_k from the new h_k (a generalized EM step,
        the likelihood never decreases). Fixed columns keep their w.
        """
        tiny = np.finfo(self.W.dtype).tiny
        n_freqs, n_frames = posterior_power.shape
        # Where w (or h) is 0 the posterior power is exactly 0 too: the floor gives 0, not 0/0.
        sums = np.reciprocal(np.maximum(self.W[:, k], tiny)) @ posterior_power
        h_new = self.activations_from_posterior(sums[None], n_freqs, rows=slice(k, k + 1))[0]
        self.H[k] = h_new
        if self.free[k]:
            column_sums = posterior_power @ np.reciprocal(np.maximum(h_new, tiny))
            self.W[:, k] = self.templates_from_posterior(
                column_sums[:, None], n_frames, columns=slice(k, k + 1)
            )[:, 0]

    # ------------------------------------------------------------------ blocked EM
    # Multichannel EM hands over posterior component powers u_k,fn one block of
    # frequencies at a time (never K×F×N at once): w first, per frequency, from the
    # current h, then h from the new w, accumulated over blocks.

    def em_block(self, frequencies: slice, posterior_power: NDArray) -> NDArray:
        """M-step on one block of frequencies; ``posterior_power`` is u (K, F_b, N).

        Sets the block's rows of W from the current H (w = mean_n u / h) and returns
        the block's part of H's statistics, Σ_{f∈block} u_kfn / w_new,fk, shape (K, N),
        for :meth:`em_end`. Blocks touch disjoint rows of W and only read H, so a
        spatial model may run them in parallel threads.
        """
        tiny = np.finfo(self.W.dtype).tiny
        inverse_h = np.reciprocal(np.maximum(self.H, tiny))  # (K, N)
        sums = np.matmul(posterior_power, inverse_h[:, :, None])[:, :, 0].T  # (F_b, K)
        w_new = self.templates_from_posterior(sums, self.H.shape[1], columns=slice(None))
        np.maximum(w_new, tiny, out=w_new)  # no zero or denormal template entry (see below)
        block = self.W[frequencies]
        block[:, self.free] = w_new[:, self.free]
        inverse_w = np.reciprocal(np.maximum(block, tiny))  # (F_b, K)
        return np.matmul(inverse_w.T[:, None, :], posterior_power)[:, 0, :]

    def em_end(self, statistics: NDArray) -> None:
        """Finish the M-step: H from S = Σ_f u / w_new, (K, N) (u = 0 where h = 0: zeros stay)."""
        self.H = self.activations_from_posterior(
            statistics, self.W.shape[0], rows=slice(None)
        ).astype(self.H.dtype)


@SOURCE_MODELS.register("isnmf")
class NMFSource(MultiplicativeUpdates, PosteriorUpdates, NMFFactors):
    """Plain NMF spectrogram model P = W H (β-NMF / IS-NMF), with fixed columns and masks.

    Updated by multiplicative updates (any β) or EM (IS). Parameters: see
    :class:`NMFFactors` (``n_components``, ``W``, ``H``, ``fix_W``, ``H_mask``,
    ``normalize``).

    Examples
    --------
    >>> import numpy as np, mnmf
    >>> V = np.random.default_rng(0).random((64, 100))
    >>> dictionary = np.random.default_rng(1).random((64, 3))
    >>> supervised = mnmf.NMFSource(W=dictionary, fix_W=True, n_components=5)
    >>> fit = mnmf.fit_nmf(V, source_model=supervised, max_iter=20, rng=0)
    >>> bool(np.array_equal(fit.W[:, :3], dictionary))
    True
    """
