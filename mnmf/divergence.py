"""β-divergence and the exponent that turns multiplicative updates into MM steps.

All of β's special cases live here, in one place (docs/design.md, §3):
the value of the divergence, the two ratios whose projections give the multiplicative
updates, and how a model splits its cost into a data-only constant and per-block
terms (:class:`BetaDivergence`). Models never test β themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import xlogy

from mnmf._validation import as_float_array, check_finite, finite_real

#: Relative floor of the model (and of the data inside terms that diverge at zero),
#: as a fraction of the data's mean power. Far below any meaningful power, far above
#: what overflows when raised to the negative powers the updates use.
FLOOR_RELATIVE = 1e-12


def data_floor(V: NDArray) -> float:
    """The absolute floor used for a given data array: ``FLOOR_RELATIVE · mean(V)``.

    Silence (an all-zero ``V``) has no scale; it gets ``FLOOR_RELATIVE`` itself.
    """
    mean = float(np.mean(V, dtype=np.float64))
    return FLOOR_RELATIVE * mean if mean > 0 else FLOOR_RELATIVE


def internal_scale(mean_power: float) -> tuple[float, float]:
    """How models hold data internally: ``(scale, floor)``.

    ``scale`` is the power of two nearest the data's mean power: dividing by it is exact
    in floating point and keeps float32 far from overflow in V̂^(β−2) whatever the
    recording's level. ``floor`` is the model floor in those internal units,
    FLOOR_RELATIVE times the (internal) mean power. Silence gets scale 1.
    """
    if mean_power > 0:
        scale = float(2.0 ** np.round(np.log2(mean_power)))
        return scale, FLOOR_RELATIVE * mean_power / scale
    return 1.0, FLOOR_RELATIVE


def mm_exponent(beta: float) -> float:
    """Exponent γ(β) that makes β-divergence multiplicative updates MM steps.

    Févotte & Idier (2011), "Algorithms for nonnegative matrix factorization with the
    β-divergence", Neural Computation 23(9): with updates raised to γ(β) the cost never
    increases.

    Returns
    -------
    float
        ``1 / (2 - β)`` for β < 1, ``1`` for 1 ≤ β ≤ 2, ``1 / (β - 1)`` for β > 2.
    """
    beta = finite_real(beta, name="beta")
    if beta < 1:
        return 1.0 / (2.0 - beta)
    if beta > 2:
        return 1.0 / (beta - 1.0)
    return 1.0


def beta_divergence(
    V: ArrayLike,
    V_hat: ArrayLike,
    beta: float,
    *,
    floor: float | None = None,
) -> float:
    """Sum over all entries of the β-divergence d_β(V | V_hat).

    d_β(x|y) = (x^β + (β−1) y^β − β x y^(β−1)) / (β(β−1)) for β ∉ {0, 1};
    d_1(x|y) = x log(x/y) − x + y (Kullback–Leibler);
    d_0(x|y) = x/y − log(x/y) − 1 (Itakura–Saito).

    Parameters
    ----------
    V : array, any shape
        Non-negative data (e.g. a power spectrogram (F, N)).
    V_hat : array, same shape as V
        Non-negative model.
    beta : float
        Any real β.
    floor : float, optional
        Small positive value; defaults to :func:`data_floor` of ``V``. ``V_hat`` is
        floored at it. For β ≤ 0 the divergence is infinite wherever ``V`` is zero
        (silence), so entries of ``V`` below the floor are measured relative to the
        floor: d(x|ŷ) − d(x|floor). Only a data-dependent constant is removed, so the
        comparison of two models — and hence the MM descent guarantee — is unchanged;
        the value stays ≥ 0, is 0 when ``V_hat`` sits at the floor there, and equals the
        usual formula wherever ``V >= floor``.

    Returns
    -------
    float
        The divergence, accumulated in float64 whatever the input precision.
    """
    data = as_float_array(V, name="V", ndim=range(0, 8))
    model = as_float_array(V_hat, name="V_hat", ndim=range(0, 8))
    if data.shape != model.shape:
        raise ValueError(
            f"V and V_hat must have the same shape, got {data.shape} and {model.shape}"
        )
    check_finite(data, name="V")
    check_finite(model, name="V_hat")
    beta = finite_real(beta, name="beta")
    if floor is None:
        floor = data_floor(data)
    floor = finite_real(floor, name="floor")
    if floor <= 0:
        raise ValueError(f"floor must be positive, got {floor}")
    return _divergence_sum(data, model, beta, floor)


def is_data_constant(V: NDArray, floor: float) -> float:
    """Σ (x/x̃ + log x̃), x̃ = max(x, floor): the data-only part of the IS divergence.

    D_IS(V | V̂) = Σ (x/ŷ + log ŷ) − this constant (with ``floor`` ≤ ŷ), which lets a
    model that evaluates its cost often compute the data part once.
    """
    x = V.astype(np.float64, copy=False)
    x_floored = np.maximum(x, floor)
    return float(np.sum(x / x_floored) + np.sum(np.log(x_floored)))


def is_model_terms(V: NDArray, V_hat: NDArray, *, scratch: NDArray) -> float:
    """Σ (x/ŷ + log ŷ) in the arrays' own precision, returned as a float64 sum.

    ``V_hat`` must already be floored; ``scratch`` (same shape) is overwritten.
    """
    np.divide(V, V_hat, out=scratch)
    total = float(scratch.sum())
    np.log(V_hat, out=scratch)
    return total + float(scratch.sum())


def _divergence_sum(V: NDArray, V_hat: NDArray, beta: float, floor: float) -> float:
    """:func:`beta_divergence` without the checks, for the models' inner loops."""
    x = V.astype(np.float64, copy=False)
    y = np.maximum(V_hat, floor, dtype=np.float64)
    if beta == 0:
        x_floored = np.maximum(x, floor)
        return float(np.sum(x / y - x / x_floored - np.log(x_floored / y)))
    if beta == 1:
        return float(np.sum(xlogy(x, x / y) - x + y))
    if beta == 2:
        return float(0.5 * np.sum((x - y) ** 2))
    if beta < 0:
        xf = np.maximum(x, floor)
        terms = (beta - 1) * (y**beta - xf**beta) - beta * x * (y ** (beta - 1) - xf ** (beta - 1))
    else:
        terms = x**beta + (beta - 1) * y**beta - beta * x * y ** (beta - 1)
    return float(np.sum(terms) / (beta * (beta - 1)))


def mu_ratios(
    V: NDArray, V_hat: NDArray, beta: float, *, out: NDArray
) -> tuple[NDArray, NDArray | None]:
    """The two arrays whose projections give β-divergence MU numerators and denominators.

    Returns ``(V ∘ V̂^(β−2), V̂^(β−1))``; the second is None for β = 1, where it is all
    ones (callers then use sums instead of a matrix product). Works in place: ``V_hat``
    (already floored) may be overwritten and ``out`` (same shape) receives one of the
    results, so a call allocates nothing. The returned arrays may alias ``V``,
    ``V_hat`` or ``out``.
    """
    if beta == 0:  # IS: V / V̂², 1 / V̂  (divide(1, ·) vectorizes; reciprocal does not)
        np.divide(V_hat.dtype.type(1), V_hat, out=V_hat)
        np.square(V_hat, out=out)
        out *= V
        return out, V_hat
    if beta == 1:  # KL: V / V̂, 1
        np.divide(V, V_hat, out=out)
        return out, None
    if beta == 2:  # Euclidean: V, V̂
        return V, V_hat
    np.power(V_hat, beta - 1, out=out)  # V̂^(β−1)
    np.divide(out, V_hat, out=V_hat)  # V̂^(β−2)
    V_hat *= V
    return V_hat, out


def mu_factor(numerator: NDArray, denominator: NDArray, exponent: float) -> NDArray:
    """(numerator / denominator)^exponent with a floored denominator (0/0 → 0).

    The factor of every multiplicative update (of W, H, or a spatial model's gains).
    """
    factor = np.maximum(denominator, np.finfo(denominator.dtype).tiny)
    np.divide(numerator, factor, out=factor)
    if exponent == 0.5:
        np.sqrt(factor, out=factor)
    elif exponent != 1:
        np.power(factor, exponent, out=factor)
    return factor


@dataclass(frozen=True)
class BetaDivergence:
    """The β-divergence as the models use it: MU ratios, cost terms, units.

    A data model holds one of these and never tests β itself.

    Parameters
    ----------
    beta : float
        Any real β (0 Itakura–Saito, 1 Kullback–Leibler, 2 Euclidean).
    """

    beta: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "beta", finite_real(self.beta, name="beta"))

    @property
    def is_itakura_saito(self) -> bool:
        """β = 0: the divergence of the Gaussian composite model, which EM algorithms need."""
        return self.beta == 0

    def mm_exponent(self) -> float:
        """γ(β), see :func:`mm_exponent`."""
        return mm_exponent(self.beta)

    def ratios(self, V: NDArray, V_hat: NDArray, *, out: NDArray) -> tuple[NDArray, NDArray | None]:
        """:func:`mu_ratios`: ``(V ∘ V̂^(β−2), V̂^(β−1))``, the second None when all ones."""
        return mu_ratios(V, V_hat, self.beta, out=out)

    def data_constant(self, blocks: Iterable[NDArray], floor: float) -> float:
        """The data-only part of the cost that :meth:`block_terms` leaves out (IS only)."""
        if self.beta != 0:
            return 0.0
        return sum(is_data_constant(V_b, floor) for V_b in blocks)

    def block_terms(self, V: NDArray, V_hat: NDArray, *, scratch: NDArray, floor: float) -> float:
        """The cost of one block minus its share of :meth:`data_constant`.

        ``V_hat`` must be floored; ``scratch`` (same shape) may be overwritten.
        """
        if self.beta == 0:
            return is_model_terms(V, V_hat, scratch=scratch)
        return _divergence_sum(V, V_hat, self.beta, floor)

    def in_user_units(self, internal: float, scale: float) -> float:
        """A cost computed on data divided by ``scale``, in the data's own units.

        d_β is homogeneous of degree β: d_β(λx | λy) = λ^β d_β(x | y).
        """
        return internal * scale**self.beta


#: The Itakura–Saito divergence (β = 0), the data term of every multichannel model.
ITAKURA_SAITO = BetaDivergence(0.0)
