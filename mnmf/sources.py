"""Source models: how each source's power spectrogram is parameterized.

A source model owns the spectral templates ``W`` (F, K) and activations ``H`` (K, N)
and knows how to update them from statistics that a *data model* computes:

- multiplicative updates (MU) get a numerator and a denominator for H and for W —
  for plain NMF ``Wᵀ(V̂^(β−2) ∘ V)`` and ``Wᵀ V̂^(β−1)`` and their ``·Hᵀ`` twins; a
  multichannel spatial model sums per-channel versions of the same quantities;
- EM gets the posterior power of one component at a time (SAGE, Févotte, Bertin &
  Durrieu 2009).

This is the seam of DESIGN.md: the data (spatial) model turns the data into these
statistics, the source model turns statistics into new W/H. Smooth NMF (a different H
update and a penalty) and supervised NMF (fixed columns of W) are source models too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mnmf._validation import as_float_array, check_finite, check_nonnegative, positive_int


class NMFSource:
    """Plain NMF spectrogram model P = W H with optional fixed columns and H masks.

    Parameters
    ----------
    n_components : int
        K, the number of components (columns of W, rows of H).
    W : array, shape (F, K_given), optional
        Initial templates for the first ``K_given ≤ K`` components (e.g. a dictionary
        learned beforehand); the remaining columns are drawn at random.
    H : array, shape (K, N), optional
        Initial activations; drawn at random (scaled to the data) when omitted.
    fix_W : bool or sequence of int or bool array of shape (K,)
        Which columns of W stay fixed: ``True`` fixes every column given in ``W``
        (supervised NMF), a sequence of indices or a boolean mask fixes those columns
        (partially supervised). Fixed columns are never rescaled, so they stay
        bit-identical.
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
    stays far from overflow; :meth:`parameters` returns them in the user's units.
    """

    def __init__(
        self,
        n_components: int,
        *,
        W: ArrayLike | None = None,
        H: ArrayLike | None = None,
        fix_W: bool | Sequence[int] | ArrayLike = False,
        H_mask: ArrayLike | None = None,
        normalize: bool = True,
    ) -> None:
        self.n_components = positive_int(n_components, name="n_components")
        self._W_given = None if W is None else _nonnegative(W, name="W")
        self._H_given = None if H is None else _nonnegative(H, name="H")
        self._fix_W_spec = fix_W
        self._H_mask_given = None if H_mask is None else np.asarray(H_mask)
        self.normalize_columns = bool(normalize)
        self.W: NDArray = np.empty((0, 0))
        self.H: NDArray = np.empty((0, 0))
        self.free: NDArray[np.bool_] = np.ones(self.n_components, dtype=bool)

    # ------------------------------------------------------------------ set-up
    def bind(self, n_freqs: int, n_frames: int) -> None:
        """Check every given array against the data's shape (F, N); no randomness."""
        K = self.n_components
        if self._W_given is not None:
            if self._W_given.ndim != 2 or self._W_given.shape[0] != n_freqs:
                raise ValueError(
                    f"W must have shape (F, K) = ({n_freqs}, {K}) (or fewer columns), "
                    f"got {self._W_given.shape}"
                )
            if self._W_given.shape[1] > K:
                raise ValueError(f"W has {self._W_given.shape[1]} columns but n_components={K}")
        if self._H_given is not None and self._H_given.shape != (K, n_frames):
            raise ValueError(
                f"H must have shape (K, N) = ({K}, {n_frames}), got {self._H_given.shape}"
            )
        if self._H_mask_given is not None and self._H_mask_given.shape != (K, n_frames):
            raise ValueError(
                f"H_mask must have shape (K, N) = ({K}, {n_frames}), got {self._H_mask_given.shape}"
            )
        self.free = ~self._fixed_columns()
        self._n_freqs, self._n_frames = n_freqs, n_frames

    def _fixed_columns(self) -> NDArray[np.bool_]:
        K, spec = self.n_components, self._fix_W_spec
        fixed = np.zeros(K, dtype=bool)
        if isinstance(spec, bool | np.bool_):
            if spec:
                if self._W_given is None:
                    raise ValueError(
                        "fix_W=True needs W: there is no given dictionary to keep fixed"
                    )
                fixed[: self._W_given.shape[1]] = True
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
        given = 0 if self._W_given is None else self._W_given.shape[1]
        if fixed[given:].any():
            raise ValueError(
                f"fix_W fixes column(s) {np.flatnonzero(fixed[given:]) + given} "
                f"that W (with {given} columns) does not give"
            )
        return fixed

    def initialize(
        self, rng: np.random.Generator, *, mean_power: float, scale: float, dtype: np.dtype
    ) -> None:
        """Fill W and H: given values (divided by ``scale`` for H), else random draws.

        Random templates are uniform in [0.5, 1.5) before normalization; random
        activations are uniform too, then scaled so that the model's mean power
        matches the data's ``mean_power`` (internal units).
        """
        F, N, K = self._n_freqs, self._n_frames, self.n_components
        W = rng.uniform(0.5, 1.5, size=(F, K)).astype(dtype)
        W /= W.sum(axis=0, keepdims=True)
        if self._W_given is not None:
            W[:, : self._W_given.shape[1]] = self._W_given
        if self._H_given is not None:
            H = (self._H_given / scale).astype(dtype)
        else:
            H = rng.uniform(0.5, 1.5, size=(K, N)).astype(dtype)
        if self._H_mask_given is not None:
            H[~self._H_mask_given.astype(bool)] = 0
        if self._H_given is None:
            model_mean = float(W.mean(axis=0, dtype=np.float64) @ H.mean(axis=1, dtype=np.float64))
            if model_mean > 0:
                H *= dtype.type(mean_power / model_mean)
        self.W, self.H = W, H
        self.normalize()

    # ------------------------------------------------------------------ updates
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
        self.H[:, frames] *= _mu_factor(numerator, denominator, exponent)

    def update_W_mu(self, numerator: NDArray, denominator: NDArray, exponent: float) -> None:
        """W ← W ∘ (numerator / denominator)^exponent on free columns; shapes (F, K)."""
        factor = _mu_factor(numerator, denominator, exponent)
        if self.free.all():
            self.W *= factor
        elif self.free.any():
            self.W[:, self.free] *= factor[:, self.free]

    def update_from_posterior(self, k: int, posterior_power: NDArray) -> None:
        """EM M-step for component ``k`` from its posterior power u_k (F, N).

        Maximizes the expected complete-data log-likelihood Σ_fn −log(w_f h_n) − u/(w_f h_n)
        over h (closed form h_n = mean_f u_fn / w_f), then over w with the new h
        (w_f = mean_n u_fn / h_n) — a generalized EM step, so the likelihood never
        decreases. Fixed columns keep their w.
        """
        tiny = np.finfo(self.W.dtype).tiny
        n_freqs, n_frames = posterior_power.shape
        # Where w (or h) is 0 the posterior power is exactly 0 too: the floor gives 0, not 0/0.
        sums = np.reciprocal(np.maximum(self.W[:, k], tiny)) @ posterior_power
        h_new = self._h_from_posterior_sums(sums[None], n_freqs, rows=slice(k, k + 1))[0]
        self.H[k] = h_new
        if self.free[k]:
            self.W[:, k] = (posterior_power @ np.reciprocal(np.maximum(h_new, tiny))) / n_frames

    # ------------------------------------------------------------------ blocked EM
    # Multichannel EM hands over posterior component powers u_k,fn one block of
    # frequencies at a time (never K×F×N at once). The M-step maximizes
    # Σ −log(w_fk h_kn) − u_kfn/(w_fk h_kn): w first, per frequency, from the current h
    # (w_fk = mean_n u/h), then h from the new w (h_kn = mean_f u/w), accumulated over
    # blocks — coordinate ascent, so the likelihood never decreases.

    def em_begin(self) -> None:
        """Start an M-step: reset the accumulator of Σ_f u / w_new."""
        self._em_sum = np.zeros_like(self.H)

    def em_block(self, frequencies: slice, posterior_power: NDArray) -> None:
        """M-step contribution of one block of frequencies; ``posterior_power`` is (K, F_b, N)."""
        tiny = np.finfo(self.W.dtype).tiny
        inverse_h = np.reciprocal(np.maximum(self.H, tiny))  # (K, N)
        w_new = np.einsum("kfn,kn->fk", posterior_power, inverse_h) / self.H.shape[1]
        w_new[w_new < tiny] = 0  # denormals are dead templates (and slow arithmetic)
        block = self.W[frequencies]
        block[:, self.free] = w_new[:, self.free]
        inverse_w = np.reciprocal(np.maximum(block, tiny))  # (F_b, K)
        self._em_sum += np.einsum("kfn,fk->kn", posterior_power, inverse_w)

    def em_end(self) -> None:
        """Finish the M-step: h_kn = mean_f u_kfn / w_fk (u = 0 where h = 0: zeros stay)."""
        self.H = self._h_from_posterior_sums(
            self._em_sum, self.W.shape[0], rows=slice(None)
        ).astype(self.H.dtype)
        del self._em_sum

    def _h_from_posterior_sums(self, sums: NDArray, n_freqs: int, *, rows: slice) -> NDArray:
        """EM M-step for the H rows ``rows`` given S_kn = Σ_f u_kfn / w_fk, (K', N).

        Plain NMF: h = S / F, the maximizer of Σ_f −log(w h) − u / (w h).
        """
        return sums / n_freqs

    def normalize(self) -> None:
        """Free columns of W to unit sum, the scale moved into H (cost unchanged)."""
        if not self.normalize_columns or not self.free.any():
            return
        columns = self.free if not self.free.all() else slice(None)
        sums = self.W[:, columns].sum(axis=0)
        sums[sums <= 0] = 1  # a dead (all-zero) column stays zero
        self.W[:, columns] /= sums
        self.H[columns] *= sums[:, None]

    def free_sources(self, labels: NDArray) -> NDArray[np.bool_]:
        """For each source j of ``labels`` (K,), whether every one of its columns is free.

        Spatial models move scale into the rows of W only for such sources: a fixed
        dictionary must stay bit-identical.
        """
        return np.array([self.free[labels == j].all() for j in range(int(labels.max()) + 1)])

    def penalty(self) -> float:
        """Extra cost terms of the source model (none for plain NMF)."""
        return 0.0

    def check_data_model(self, *, beta: float, exponent: float) -> None:
        """Refuse data models whose statistics this source model cannot use (none here)."""

    def parameters(self, *, scale: float) -> dict[str, NDArray]:
        """W and H in the user's units (copies)."""
        return {"W": self.W.copy(), "H": self.H * self.H.dtype.type(scale)}


class SmoothNMFSource(NMFSource):
    """Smooth IS-NMF (Févotte 2011): P = W H with a penalty on jumps of H over frames.

    The cost adds to the IS data term (single- or multichannel) the penalty

        λ_k Σ_{n≥2} d_IS(h_{k,n−1} | h_{k,n}),

    which favours activations that change slowly and is invariant to the scale of each
    row of H (so normalizing W's columns changes nothing). λ = 0 is plain IS-NMF.

    H updates (both vectorized over frames: all even frames, then all odd frames — a
    frame's update only sees its neighbours, so each half-step minimizes exactly):

    - MU (MM): with G⁺ = Wᵀ V̂⁻¹ and G⁻ = Wᵀ(V V̂⁻²) at the current H̃ (the numerator and
      denominator any data model hands over), every h_kn minimizes the IS majorizer
      G⁺ h + G⁻ h̃² / h plus its exact penalty terms: the positive root of
      a h² + b h − c = 0 with a = G⁺ + λ / h_{n+1}, c = G⁻ h̃² + λ h_{n−1}, b = 0 inside,
      b = −λ for the first frame (no h_{n−1} term) and +λ for the last (no h_{n+1}).
    - EM M-step: with S = Σ_f u / w from the posterior powers u, every h_kn maximizes
      the expected complete-data log-likelihood minus the penalty: the positive root
      with a = λ / h_{n+1}, b = F + λ (last) − λ (first), c = S + λ h_{n−1}.

    The cost never increases under either. W: the plain IS updates.

    Parameters
    ----------
    n_components : int
    smoothness : float or array of shape (K,)
        λ ≥ 0, one for all components or one per component.
    W, H, fix_W, normalize
        As :class:`NMFSource`. ``H_mask`` is refused (a zero in H makes the penalty
        infinite); zeros of a given H are raised to the smallest normal number.
    """

    frame_separable = False

    def __init__(
        self,
        n_components: int,
        *,
        smoothness: float | ArrayLike,
        W: ArrayLike | None = None,
        H: ArrayLike | None = None,
        fix_W: bool | Sequence[int] | ArrayLike = False,
        H_mask: ArrayLike | None = None,
        normalize: bool = True,
    ) -> None:
        super().__init__(n_components, W=W, H=H, fix_W=fix_W, normalize=normalize)
        if H_mask is not None:
            raise ValueError(
                "H_mask cannot be combined with the smooth source model: a zero activation "
                "makes the smoothness penalty infinite"
            )
        self.smoothness = _smoothness(smoothness, n_components)

    def check_data_model(self, *, beta: float, exponent: float) -> None:
        """Smooth NMF's updates are MM steps of the IS divergence with exponent ½."""
        if beta != 0:
            raise ValueError(f"the smooth source model needs beta=0 (IS divergence), got {beta}")
        if exponent != 0.5:
            raise ValueError(
                'the smooth source model takes only exponent="mm" (its H update is the exact '
                "minimizer of the IS majorizer)"
            )

    def initialize(
        self, rng: np.random.Generator, *, mean_power: float, scale: float, dtype: np.dtype
    ) -> None:
        super().initialize(rng, mean_power=mean_power, scale=scale, dtype=dtype)
        # The penalty needs positive activations: zeros of a given H (or of a start that
        # underflowed) become the smallest normal number.
        np.maximum(self.H, np.finfo(dtype).tiny, out=self.H)
        self._lambda = self.smoothness.astype(dtype)[:, None]  # (K, 1)

    def update_H_mu(
        self,
        numerator: NDArray,
        denominator: NDArray,
        exponent: float,
        *,
        frames: slice = slice(None),
    ) -> None:
        """MM update of every frame from G⁻ = ``numerator`` and G⁺ = ``denominator`` (K, N)."""
        if frames != slice(None):
            raise ValueError("the smooth source model updates all frames at once")
        if not np.any(self._lambda):
            super().update_H_mu(numerator, denominator, exponent)
            return
        data_term = numerator * self.H**2  # G⁻ h̃²
        self.H = _smooth_pass(
            self.H, a=denominator, b=np.zeros_like(self.H), c=data_term, lam=self._lambda
        )

    def _h_from_posterior_sums(self, sums: NDArray, n_freqs: int, *, rows: slice) -> NDArray:
        lam = self._lambda[rows]
        if not np.any(lam):
            return sums / n_freqs
        start = self.H[rows].astype(sums.dtype, copy=False)  # _smooth_pass works on a copy
        return _smooth_pass(
            start,
            a=np.zeros_like(start),
            b=np.full_like(start, n_freqs),
            c=sums,
            lam=lam.astype(sums.dtype),
        )

    def penalty(self) -> float:
        """λ_k Σ_{n≥2} d_IS(h_{k,n−1} | h_{k,n}), summed over components (float64)."""
        if self.H.shape[1] < 2 or not np.any(self.smoothness):
            return 0.0
        return float(np.sum(self.smoothness[:, None] * smoothness_terms(self.H)))


SOURCE_MODELS = ("isnmf", "smooth")


def make_source(
    source_model: str,
    n_components: int,
    *,
    smoothness: float | ArrayLike | None = None,
    **options: object,
) -> NMFSource:
    """The source model named ``source_model`` ("isnmf" or "smooth") with ``options``
    (``W``, ``H``, ``fix_W``, ``H_mask``, ``normalize``).

    ``smoothness`` (λ) is required by "smooth" and refused by "isnmf", so that a
    forgotten or misplaced λ is an error rather than a silent plain NMF.
    """
    if source_model not in SOURCE_MODELS:
        raise ValueError(f"source_model must be one of {list(SOURCE_MODELS)}, got {source_model!r}")
    if source_model == "smooth":
        if smoothness is None:
            raise ValueError(
                "source_model='smooth' needs smoothness=λ (a float ≥ 0, or one per component)"
            )
        return SmoothNMFSource(n_components, smoothness=smoothness, **options)  # type: ignore[arg-type]
    if smoothness is not None:
        raise ValueError("smoothness applies to source_model='smooth' only")
    return NMFSource(n_components, **options)  # type: ignore[arg-type]


def smoothness_terms(H: ArrayLike) -> NDArray[np.float64]:
    """d_IS(h_{k,n−1} | h_{k,n}) for n = 2…N, shape (K, N−1), in float64.

    Entries are floored at the smallest normal number, so the value stays finite.
    """
    activations = np.maximum(np.asarray(H, dtype=np.float64), np.finfo(np.float64).tiny)
    ratio = activations[:, :-1] / activations[:, 1:]
    return ratio - np.log(ratio) - 1.0


def _smooth_pass(H: NDArray, *, a: NDArray, b: NDArray, c: NDArray, lam: NDArray) -> NDArray:
    """Even frames then odd frames: h_n ← positive root of A h² + B h − C = 0 with
    A = a + λ / h_{n+1}, B = b + λ·[n last] − λ·[n first], C = c + λ h_{n−1}.

    ``a``, ``b``, ``c`` and ``H`` are (K, N), ``lam`` (K, 1); returns the new H (a copy).
    """
    H = H.copy()
    n_frames = H.shape[1]
    tiny = np.finfo(H.dtype).tiny
    for parity in (0, 1):
        frames = slice(parity, None, 2)
        A, B, C = a[:, frames].copy(), b[:, frames].copy(), c[:, frames].copy()
        width = A.shape[1]
        if width == 0:
            continue
        # Neighbours of frames parity, parity + 2, …: previous n − 1 (frame 0 has none),
        # next n + 1 (frame N − 1 has none). Odd frames see the even frames just updated.
        if parity == 0:
            C[:, 1:] += lam * H[:, 1::2][:, : width - 1]
        else:
            C += lam * H[:, 0::2][:, :width]
        following = H[:, parity + 1 :: 2]
        n_next = following.shape[1]
        A[:, :n_next] += lam / np.maximum(following, tiny)
        if parity == 0:
            B[:, 0] -= lam[:, 0]  # frame 0: −λ log h from d(h_0 | h_1)
        if (n_frames - 1) % 2 == parity:
            B[:, -1] += lam[:, 0]  # frame N−1: +λ log h from d(h_{N−2} | h_{N−1})
        H[:, frames] = _positive_root(A, B, C)
    return H


def _positive_root(a: NDArray, b: NDArray, c: NDArray) -> NDArray:
    """The root h ≥ 0 of a h² + b h − c = 0 (a, c ≥ 0), in the form without cancellation."""
    tiny = np.finfo(a.dtype).tiny
    discriminant = np.sqrt(b * b + 4 * a * c)
    upper = np.maximum(b + discriminant, tiny)  # b > 0: h = 2c / (b + √Δ)
    lower = np.maximum(2 * a, tiny)  # b ≤ 0: h = (√Δ − b) / 2a
    root = np.where(b > 0, 2 * c / upper, (discriminant - b) / lower)
    return np.maximum(root, tiny)


def _smoothness(value: float | ArrayLike, n_components: int) -> NDArray[np.float64]:
    """λ as a (K,) float64 array; a clear error for negative, NaN or mis-shaped values."""
    array = np.asarray(value)
    if array.dtype == bool or not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise ValueError(f"smoothness must be a real number or one per component, got {value!r}")
    array = array.astype(np.float64)
    if array.ndim == 0:
        array = np.full(n_components, float(array))
    elif array.shape != (n_components,):
        raise ValueError(
            f"smoothness must be a scalar or have shape (K,) = ({n_components},), "
            f"got shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"smoothness must be finite, got {value!r}")
    if np.any(array < 0):
        raise ValueError(f"smoothness must be >= 0, got {value!r}")
    return array


def _nonnegative(value: ArrayLike, *, name: str) -> NDArray:
    array = as_float_array(value, name=name, ndim=2)
    check_finite(array, name=name)
    check_nonnegative(array, name=name)
    return array


def _mu_factor(numerator: NDArray, denominator: NDArray, exponent: float) -> NDArray:
    """(numerator / denominator)^exponent with a floored denominator (0/0 → 0)."""
    factor = np.maximum(denominator, np.finfo(denominator.dtype).tiny)
    np.divide(numerator, factor, out=factor)
    if exponent == 0.5:
        np.sqrt(factor, out=factor)
    elif exponent != 1:
        np.power(factor, exponent, out=factor)
    return factor
