"""Depth schedules of the SPA target kernels (our choices; see docs below each function).

E-SPA: Σ_l[i, j] = exp(−γ_l |i − j|) with γ_0 = ∞ (Σ_0 = I) and γ decreasing with depth.
U-SPA: Σ_l = (1 − ρ_l) I + ρ_l 11ᵀ with ρ_0 = 0 and ρ increasing with depth.
"""

from __future__ import annotations

import numpy as np


def _check_depth(depth: int) -> None:
    if int(depth) != depth or depth < 1:
        raise ValueError(f"depth must be a positive integer, got {depth!r}")


def espa_gammas(depth: int, gamma_final: float = 0.005) -> np.ndarray:
    """E-SPA decay rates γ_0 = ∞, γ_1, …, γ_L.

    Schedule [our choice, used by a third-party E-SPA]: with α_L = √(1 − e^{−2γ_L}),
    γ_l = −½ log(1 − α_L^{2l/L}). It gives the same diagonal A_ii = α_L^{1/L} in every layer.

    **Arguments:** `depth` L ≥ 1, `gamma_final` γ_L > 0.
    **Returns:** `[L + 1]` float64, strictly decreasing, entry 0 = inf.
    """
    _check_depth(depth)
    if not (np.isfinite(gamma_final) and gamma_final > 0):
        raise ValueError(f"gamma_final must be a finite positive number, got {gamma_final!r}")
    alpha_sq = -np.expm1(-2.0 * gamma_final)  # α_L² = 1 − e^{−2γ_L}
    levels = np.arange(depth + 1) / depth
    with np.errstate(divide="ignore"):
        gammas = -0.5 * np.log1p(-(alpha_sq**levels))
    gammas[0] = np.inf
    gammas[-1] = gamma_final
    return gammas


def check_espa_gammas(gammas: np.ndarray) -> np.ndarray:
    """Validate a user-given E-SPA schedule: γ_0 = ∞ and strictly decreasing, positive values."""
    gammas = np.asarray(gammas, np.float64)
    if gammas.ndim != 1 or gammas.size < 2:
        raise ValueError("an E-SPA schedule needs γ_0 = inf followed by at least one layer's γ")
    if not np.isinf(gammas[0]):
        raise ValueError(f"γ_0 must be inf (the input kernel is the identity), got {gammas[0]!r}")
    if not (gammas[1:] > 0).all() or not np.isfinite(gammas[1:]).all():
        raise ValueError("every layer's γ must be finite and positive")
    if not (np.diff(gammas[1:]) < 0).all():
        raise ValueError("the γ schedule must be strictly decreasing with depth (kernels degrade slowly)")
    return gammas


def uspa_rhos(depth: int, rho_final: float = 0.8) -> np.ndarray:
    """U-SPA correlations ρ_0 = 0, ρ_1, …, ρ_L.

    Schedule [our choice]: 1 − ρ_l = (1 − ρ_L)^{l/L}.

    **Arguments:** `depth` L ≥ 1, `rho_final` ρ_L in [0, 1). **Returns:** `[L + 1]` float64, non-decreasing.
    """
    _check_depth(depth)
    if not 0.0 <= rho_final < 1.0:
        raise ValueError(f"rho_final must lie in [0, 1), got {rho_final!r}")
    levels = np.arange(depth + 1) / depth
    return 1.0 - (1.0 - rho_final) ** levels
