"""Smooth IS-NMF (Févotte 2011): plain NMF with a penalty on jumps of the activations.

Registered as ``"smooth"``. The H updates (MM and EM) and the penalty; W is updated as
in plain NMF. See docs/design.md, §4.

Reference: C. Févotte (2011). Majorization-minimization algorithm for smooth
Itakura-Saito nonnegative matrix factorization. ICASSP.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mnmf.divergence import BetaDivergence
from mnmf.sources.base import SOURCE_MODELS
from mnmf.sources.nmf import NMFSource


@SOURCE_MODELS.register("smooth")
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
    n_components : int, optional
        As :class:`NMFSource`.
    smoothness : float or array of shape (K,)
        λ ≥ 0, one for all components or one per component (required).
    W, H, fix_W, normalize
        As :class:`NMFSource`. ``H_mask`` is refused (a zero in H makes the penalty
        infinite); zeros of a given H are raised to the smallest normal number.

    Examples
    --------
    >>> import numpy as np, mnmf
    >>> V = np.random.default_rng(0).random((64, 100))
    >>> smooth = mnmf.fit_nmf(V, 4, source_model="smooth", smoothness=10.0, rng=0)
    >>> same = mnmf.fit_nmf(V, source_model=mnmf.SmoothNMFSource(4, smoothness=10.0), rng=0)
    >>> bool(np.allclose(smooth.H, same.H))
    True
    """

    frame_separable = False

    def __init__(
        self,
        n_components: int | None = None,
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
        self.smoothness = _smoothness(smoothness, self.n_components)

    def _repr_options(self) -> list[str]:
        values = np.unique(self.smoothness)
        shown = f"{values[0]:g}" if values.size == 1 else "[per component]"
        return [f"smoothness={shown}", *super()._repr_options()]

    def bind(self, n_freqs: int, n_frames: int, *, n_components: int | None = None) -> None:
        super().bind(n_freqs, n_frames, n_components=n_components)
        self.smoothness = _smoothness(self.smoothness, self.n_components)

    def check_compatible(
        self, *, divergence: BetaDivergence, algorithm: str, exponent: float | None
    ) -> None:
        """Smooth NMF's updates are MM or EM steps of the IS divergence (MU exponent ½)."""
        if not divergence.is_itakura_saito:
            raise ValueError(
                f"the smooth source model needs beta=0 (IS divergence), got {divergence.beta}"
            )
        if algorithm == "mu" and exponent != 0.5:
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

    def activations_from_posterior(self, sums: NDArray, n_freqs: int, *, rows: slice) -> NDArray:
        """The penalized M-step: each h_kn the positive root given its neighbours."""
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


def _smoothness(value: float | ArrayLike, n_components: int | None) -> NDArray[np.float64]:
    """λ as a (K,) float64 array (a scalar stays 0-d while K is unknown); a clear error
    for negative, NaN or mis-shaped values."""
    array = np.asarray(value)
    if array.dtype == bool or not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise ValueError(f"smoothness must be a real number or one per component, got {value!r}")
    array = array.astype(np.float64)
    if array.ndim == 0:
        if n_components is not None:
            array = np.full(n_components, float(array))
    elif (n_components is not None and array.shape != (n_components,)) or array.ndim > 1:
        raise ValueError(
            f"smoothness must be a scalar or have shape (K,) = ({n_components},), "
            f"got shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"smoothness must be finite, got {value!r}")
    if np.any(array < 0):
        raise ValueError(f"smoothness must be >= 0, got {value!r}")
    return array
