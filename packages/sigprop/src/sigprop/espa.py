"""Closed-form E-SPA attention: log-space bias and row scale from (γ_{l−1}, γ_l) alone.

With a = e^{−γ_l}, a' = e^{−γ_{l−1}}, s = √(1 − a²), s' = √(1 − a'²), r = s / s' (layer 1: a' = 0, s' = 1),
A = L_l L_{l−1}⁻¹ for the Ornstein–Uhlenbeck kernels is lower triangular with

    A[0, 0] = 1,  A[i, i] = r (i ≥ 1),  A[i, j] = r (a − a') a^{i−j−1} (1 ≤ j < i),  A[i, 0] = a^{i−1} (a − a' r).

All entries are positive when γ_l < γ_{l−1}. Computed in log space: far from the diagonal A underflows float64's
range of float32 (≈1e−236 at T = 512), its logarithm does not. A kernel can regenerate the bias from the four
scalars of `espa_coefficients`, like ALiBi.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EspaCoefficients:
    """Scalars that determine one E-SPA layer's attention (all float64).

    - `log_diag` = log r, the log-weight of A[i, i] for i ≥ 1 (A[0, 0] = 1).
    - `log_offdiag` = log(r (a − a')), the log-weight of A[i, i − 1] for i ≥ 2.
    - `log_first_col` = log(a − a' r), the log-weight of A[1, 0].
    - `log_decay` = −γ_l, added per further step away from the diagonal.
    """

    log_diag: float
    log_offdiag: float
    log_first_col: float
    log_decay: float
    a: float
    a_prev: float
    r: float


def espa_coefficients(gamma_prev: float, gamma: float) -> EspaCoefficients:
    """The closed-form parameters of A_l from γ_{l−1} (inf for layer 1) and γ_l."""
    if not (gamma > 0 and np.isfinite(gamma)):
        raise ValueError(f"gamma must be finite and positive, got {gamma!r}")
    if not gamma_prev > gamma:
        raise ValueError(f"E-SPA needs γ_(l-1) > γ_l (kernels degrade with depth), got {gamma_prev!r} <= {gamma!r}")
    a = float(np.exp(-gamma))
    a_prev = 0.0 if np.isinf(gamma_prev) else float(np.exp(-gamma_prev))
    s = float(np.sqrt(-np.expm1(-2.0 * gamma)))
    s_prev = 1.0 if np.isinf(gamma_prev) else float(np.sqrt(-np.expm1(-2.0 * gamma_prev)))
    r = s / s_prev
    return EspaCoefficients(
        log_diag=float(np.log(r)),
        log_offdiag=float(np.log(r) + np.log(a - a_prev)),
        log_first_col=float(np.log(a - a_prev * r)),
        log_decay=-float(gamma),
        a=a,
        a_prev=a_prev,
        r=r,
    )


def espa_log_bias(seq_len: int, gamma_prev: float, gamma: float, *, rows: np.ndarray | None = None) -> np.ndarray:
    """log A_l on and below the diagonal, −inf strictly above it (only the query positions `rows`, if given).

    **Returns:** `[len(rows), T]` float64 (`[T, T]` by default).
    """
    c = espa_coefficients(gamma_prev, gamma)
    i = (np.arange(seq_len) if rows is None else np.asarray(rows, np.int64))[:, None]
    j = np.arange(seq_len)[None, :]
    steps = (i - j - 1).astype(np.float64)
    bias = c.log_offdiag + c.log_decay * steps
    bias = np.where(j == 0, c.log_first_col + c.log_decay * (i - 1), bias)
    bias = np.where(i == j, c.log_diag, bias)
    bias = np.where((i == 0) & (j == 0), 0.0, bias)
    return np.where(j <= i, bias, -np.inf)


def espa_row_scale(seq_len: int, gamma_prev: float, gamma: float) -> np.ndarray:
    """Row sums d_l[i] = Σ_j A_l[i, j] in closed form. **Returns:** `[T]` float64."""
    c = espa_coefficients(gamma_prev, gamma)
    i = np.arange(seq_len, dtype=np.float64)
    power = np.exp(c.log_decay * np.maximum(i - 1.0, 0.0))  # a^{i−1}
    geometric = -np.expm1(c.log_decay * np.maximum(i - 1.0, 0.0)) / -np.expm1(c.log_decay)  # (1 − a^{i−1}) / (1 − a)
    scale = c.r + c.r * (c.a - c.a_prev) * geometric + power * (c.a - c.a_prev * c.r)
    scale[0] = 1.0
    return scale


def espa_attention(seq_len: int, gamma_prev: float, gamma: float) -> np.ndarray:
    """A_l itself (exp of the log-bias; entries far below the diagonal may underflow to 0). **Returns:** `[T, T]`."""
    return np.exp(espa_log_bias(seq_len, gamma_prev, gamma))
