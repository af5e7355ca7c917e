"""FastMNMF: jointly diagonalizable spatial covariances, any source model.

x_fn ~ N_c(0, Σ_j λ_jfn G_jf) with G_jf = D_f⁻¹ diag(g_jf) D_f⁻ᴴ: one diagonalizer D_f
(I×I) per frequency shared by every source, and per-source diagonal gains g (FastMNMF1,
Sekiguchi et al. 2019: g_jf per frequency; FastMNMF2, Sekiguchi et al. 2020: g_j tied
over frequencies). With x̃_fnm = |(D_f x_fn)_m|² and ŷ_fnm = Σ_j λ_jfn g_jm the
negative log-likelihood is

    Σ_fnm [x̃_fnm / ŷ_fnm + log ŷ_fnm] − N Σ_f log |det D_f|²   (+ const.),

i.e. the per-source gains model (:class:`~mnmf.spatial.GainsModel`) on the power of the
diagonalized channels, plus a term in D. So the source model sees the gains model's
statistics (Σ_m g_jm x̃ ŷ⁻² and Σ_m g_jm ŷ⁻¹: IS-NMF, smooth IS-NMF, fixed dictionaries
all plug in), g gets its MM update, and each row of D_f its iterative-projection update
(Ono 2011): with U_fm = (1/N) Σ_n x_fn x_fnᴴ / ŷ_fnm, d_fm ← (D_f U_fm)⁻¹ e_m, then
d_fm ← d_fm / √(d_fmᴴ U_fm d_fm) (row m of D_f is d_fmᴴ). Every block is an exact MM or
block-coordinate step: the cost never increases.

Images: ŝ_jfn = D_f⁻¹ diag(λ_jfn g_j / ŷ_fn) D_f x_fn, which add up to x exactly.

ILRMA (Kitamura et al. 2016) is the rank-1 case: J = I and g_j fixed to e_j, so each
diagonalized channel holds one source (D_f is the demixing matrix). The same updates
with G frozen are ILRMA's — IP for D, the source model's MU on |(D_f x_fn)_j|² — and
every source model plugs in there too (``variant="ilrma"``).

References: D. Kitamura, N. Ono, H. Sawada, H. Kameoka, H. Saruwatari (2016), Determined blind
source separation unifying independent vector analysis and nonnegative matrix
factorization, IEEE/ACM TASLP 24;
K. Sekiguchi, A. A. Nugraha, Y. Bando, K. Yoshii (2019), Fast multichannel
source separation based on jointly diagonalizable spatial covariance matrices, EUSIPCO;
K. Sekiguchi, Y. Bando, A. A. Nugraha, K. Yoshii, T. Kawahara (2020), Fast multichannel
nonnegative matrix factorization with directivity-aware jointly-diagonalizable spatial
covariance matrices for blind source separation, IEEE/ACM TASLP 28. See docs/design.md §5.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mnmf._validation import check_choice, frozen_copy
from mnmf.grouping import SourceGrouping
from mnmf.separation import ratio_masks
from mnmf.sources.base import SourceModel
from mnmf.spatial.base import SPATIAL_MODELS
from mnmf.spatial.gains import GainsModel

VARIANTS = {"fastmnmf2": "instantaneous", "fastmnmf1": "convolutive", "ilrma": "instantaneous"}

#: Diagonal loading of the projection's weighted covariances, relative to their mean
#: eigenvalue (keeps them invertible on linearly dependent channels).
LOADING_RELATIVE = 1e-12

#: Gain of a source on the diagonalized channels it does not start on (the
#: pyroomacoustics start: source j owns channel j mod I at gain 1, 0.05 elsewhere).
START_GAIN_ELSEWHERE = 5e-2


@SPATIAL_MODELS.register("fastmnmf")
class FastMNMFModel(GainsModel):
    """FastMNMF1/FastMNMF2 (and ILRMA) by MM/iterative-projection updates, in the
    spatial-model seam.

    Parameters
    ----------
    variant : {"fastmnmf2", "fastmnmf1", "ilrma"}
        Gains tied over frequencies (FastMNMF2, G of shape (I, J)), one per frequency
        (FastMNMF1, (I, J, F)), or fixed to the identity (ILRMA: J must equal I, G is
        not an option).
    D : complex array, shape (F, I, I), optional
        Initial diagonalizers; the identity by default.
    G : array, shape (I, J) or (I, J, F), optional
        Initial gains on the diagonalized channels (columns are normalized to unit sum);
        by default each source owns one channel (j mod I) at gain 1 and has 0.05 on the
        others, as pyroomacoustics' FastMNMF2 starts.
    n_threads : int, optional
        Threads that share the blocks of frames of the gains step (see
        :class:`~mnmf.spatial.GainsModel`).

    Notes
    -----
    After each iteration the gains of each source sum to one over channels (scale into
    its templates), the columns of W to one (scale into H), and D_f is scaled to
    ‖D_f‖²_F = I (its scale moved into every template's row f) — the cost is unchanged.
    With fixed dictionaries the scales stay where they are. Works in float64, any I ≥ 1
    and J ≥ 1 (J > I included). Memory: O(F·N·(I + J)) plus O(F·I²).
    """

    def __init__(
        self,
        *,
        variant: str = "fastmnmf2",
        D: ArrayLike | None = None,
        G: ArrayLike | None = None,
        n_threads: int | None = None,
    ) -> None:
        check_choice(variant, name="variant", choices=tuple(VARIANTS))
        if variant == "ilrma" and G is not None:
            raise ValueError(
                "G is fixed to the identity in variant='ilrma'; drop G or pick a FastMNMF variant"
            )
        super().__init__(
            mixing=VARIANTS[variant], Q=G, fix_Q=variant == "ilrma", n_threads=n_threads
        )
        self.variant = variant
        self.given_D = None
        if D is not None:
            given = np.asarray(D)
            if given.ndim != 3 or given.shape[1] != given.shape[2]:
                raise ValueError(f"D must be a complex (F, I, I) array, got shape {given.shape}")
            if not np.all(np.isfinite(given)):
                raise ValueError("D contains NaN or infinite values")
            self.given_D = frozen_copy(given.astype(np.complex128))

    # ------------------------------------------------------------------ set-up
    def bind(self, X: NDArray, source: SourceModel, grouping: SourceGrouping) -> None:
        """Check D against (F, I, I), then the gains model's checks (G as its Q)."""
        n_freqs, _, n_mics = X.shape
        if self.variant == "ilrma":
            if grouping.n_sources != n_mics:
                raise ValueError(
                    f"variant='ilrma' separates as many sources as microphones: "
                    f"n_sources must be {n_mics}, got {grouping.n_sources} (a FastMNMF "
                    f"variant takes any number)"
                )
            self.given_Q = frozen_copy(np.eye(n_mics))
        expected = (n_freqs, n_mics, n_mics)
        if self.given_D is not None:
            if self.given_D.shape != expected:
                raise ValueError(
                    f"D must have shape (F, I, I) = {expected}, got {self.given_D.shape}"
                )
            if np.any(np.abs(np.linalg.det(self.given_D)) == 0):
                raise ValueError("D must be invertible at every frequency")
        super().bind(X, source, grouping)

    def start_from_images(self, images: NDArray) -> None:
        """Gains from the images' powers per microphone (D starts at the identity).

        With ``variant="ilrma"`` nothing: G is the identity and D still starts at the
        identity, so a start strategy gives W and H only (their order is then not tied
        to the channels; ILRMA's usual start is ``init="random"``).
        """
        if self.variant == "ilrma":
            return
        power = np.mean(np.abs(images) ** 2, axis=2)  # (J, F, I)
        gains = power.transpose(2, 0, 1)  # (I, J, F)
        self._Q_start = gains.mean(axis=2) if self.instantaneous else gains

    def preferred_start(self, n_sources: int, n_mics: int) -> str | None:
        """FastMNMF starts from its own initial D and gains (``init="auto"`` → random)."""
        return "random"

    def _initial_gains(self, rng: np.random.Generator, shape: tuple[int, ...]) -> NDArray:
        gains = np.full(shape, START_GAIN_ELSEWHERE)
        for m in range(self.n_mics):
            gains[m, m % self.n_sources] = 1.0
        return gains

    def _channel_powers(self) -> NDArray:
        """|D_f x_fn|² of every diagonalized channel, (F, N, I), float64."""
        if not hasattr(self, "D"):
            eye = np.eye(self.n_mics, dtype=np.complex128)
            self.D = (
                self.given_D.copy()
                if self.given_D is not None
                else np.repeat(eye[None], self.n_freqs, axis=0)
            )
        transformed = np.einsum("fmi,fni->fnm", self.D, self.X.astype(np.complex128))
        return np.abs(transformed) ** 2

    def initialize(self, rng: np.random.Generator) -> None:
        if hasattr(self, "D"):
            del self.D  # a fresh start
        super().initialize(rng)
        self.X_internal = self.X.astype(np.complex128) / np.sqrt(self.scale)
        # Outer products x xᴴ are never formed: U_fm comes from one product per channel.
        self._X_t = np.ascontiguousarray(self.X_internal.transpose(0, 2, 1))  # (F, I, N)
        self._normalize_diagonalizers()

    # ------------------------------------------------------------------ engine API
    def step(self) -> None:
        super().step()  # H, W, the gains, normalization
        self._update_diagonalizers()
        self._normalize_diagonalizers()

    def cost(self) -> float:
        """Σ (x̃/ŷ + log ŷ) − N Σ_f log |det D_f|² (internal units), plus the penalty."""
        _, logdet = np.linalg.slogdet(self.D)
        penalty = self.source.penalty()
        return self._model_terms() - 2.0 * self.n_frames * float(logdet.sum()) + penalty

    def parameters(self) -> dict[str, NDArray]:
        return self.source.parameters(scale=self.scale) | {"G": self.Q.copy(), "D": self.D.copy()}

    def image_spectrograms(
        self, X: NDArray, params: dict[str, NDArray], grouping: SourceGrouping
    ) -> NDArray:
        """ŝ_jfn = D_f⁻¹ diag(λ_jfn g_j / ŷ_fn) D_f x_fn, shape (J, F, N, I)."""
        return fastmnmf_images(X, params["D"], params["G"], params["W"], params["H"], grouping)

    def image_power_scales(self, params: dict[str, NDArray]) -> NDArray:
        """c_jf = Σ_m g_jm ‖(D_f⁻¹)_{:,m}‖², shape (J, F): λ_jfn c_jf is the total power
        of source j's image (λ lives on the diagonalized channels). Starts that hand W to
        a model whose λ is the image power (the EM, the gains model) scale W's rows by it.
        """
        column_power = np.sum(np.abs(np.linalg.inv(params["D"])) ** 2, axis=1)  # (F, I)
        gains = params["G"]  # (I, J) or (I, J, F)
        subscripts = "mj,fm->jf" if gains.ndim == 2 else "mjf,fm->jf"
        return np.einsum(subscripts, gains, column_power)

    # ------------------------------------------------------------------ pieces
    def _update_diagonalizers(self) -> None:
        """Iterative projection of every row of every D_f, then x̃ for the new D."""
        eye = np.eye(self.n_mics, dtype=np.complex128)
        eye_index = np.arange(self.n_mics)
        for m in range(self.n_mics):
            weights = 1.0 / self._model(m)  # 1/ŷ_fnm, (F, N)
            # U_fm = (1/N) Σ_n x xᴴ / ŷ_m as one batched product (F, I, N) @ (F, N, I).
            U = (self._X_t * weights[:, None, :]) @ self._X_t.conj().transpose(0, 2, 1)
            U /= self.n_frames
            # U is singular when the channels are linearly dependent (identical
            # microphones, a mono file on two channels, silence), and the projection needs
            # (D_f U_fm)⁻¹: there only, its smallest eigenvalue is lifted to 10⁻¹² of the
            # mean one (elsewhere the update stays the exact minimizer).
            mean = np.trace(U, axis1=1, axis2=2).real / self.n_mics
            smallest = np.linalg.eigvalsh(U)[:, 0]
            wanted = np.maximum(LOADING_RELATIVE * mean, np.finfo(float).tiny)
            lift = np.where(smallest < wanted, wanted - smallest, 0.0)
            U[:, eye_index, eye_index] += lift[:, None]
            target = np.broadcast_to(eye[:, m, None], (self.n_freqs, self.n_mics, 1))
            row = np.linalg.solve(self.D @ U, target)[..., 0]  # (D_f U_fm)⁻¹ e_m
            norm = np.sqrt(np.einsum("fi,fij,fj->f", row.conj(), U, row).real)
            self.D[:, m, :] = (row / norm[:, None]).conj()
            transformed = np.einsum("fi,fni->fn", self.D[:, m, :], self.X_internal)
            self.V[m] = np.abs(transformed) ** 2

    def _normalize_diagonalizers(self) -> None:
        """‖D_f‖²_F = I with the scale moved into every template row (free sources only)."""
        if not self.source.free.all():
            return
        phi = np.sum(np.abs(self.D) ** 2, axis=(1, 2)) / self.n_mics  # (F,)
        self.D /= np.sqrt(phi)[:, None, None]
        self.V /= phi[None, :, None]
        self.source.scale_templates(1.0 / phi[:, None])


def fastmnmf_images(
    X: NDArray, D: NDArray, G: NDArray, W: NDArray, H: NDArray, grouping: SourceGrouping
) -> NDArray[np.complexfloating]:
    """FastMNMF's multichannel Wiener images, (J, F, N, I).

    X (F, N, I), D (F, I, I), G (I, J) or (I, J, F), W (F, K), H (K, N).
    """
    powers = grouping.source_powers(W, H)  # λ (J, F, N)
    gains = G if G.ndim == 3 else G[:, :, None]  # (I, J, F or 1)
    contributions = powers[:, :, :, None] * gains.transpose(1, 2, 0)[:, :, None, :]  # (J,F,N,I)
    shares = ratio_masks(contributions)  # λ_j g_j / ŷ on every diagonalized channel
    transformed = np.einsum("fmi,fni->fnm", D, X)  # D_f x_fn
    inverse = np.linalg.inv(D)  # (F, I, I)
    return np.einsum("fim,jfnm->jfni", inverse, shares * transformed[None])
