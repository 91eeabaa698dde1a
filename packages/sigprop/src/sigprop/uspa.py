"""Closed-form U-SPA attention (float64): the Cholesky factor of (1 − ρ) I + ρ 11ᵀ, its inverse, and A_l.

**Cholesky factor** [derived]. With u_k = 1 + k ρ (so u_{−1} = 1 − ρ), Σ = (1 − ρ) I + ρ 11ᵀ = L Lᵀ with

    L[i, i] = √((1 − ρ) u_i / u_{i−1}),   L[i, j] = ρ √(1 − ρ) / √(u_{j−1} u_j)   (j < i).

Below the diagonal every column is constant: the conditional variance of token i given tokens 0..i−1 of an
equicorrelated sequence is (1 − ρ) u_i / u_{i−1}, and its regression on them puts the same weight on each.
The inverse is lower triangular with constant rows: L⁻¹[i, i] = 1 / L[i, i], L⁻¹[i, j] = −ρ / √((1 − ρ) u_{i−1} u_i).

**Attention** A = L_l L_{l−1}⁻¹ [derived]. With ρ' = ρ_{l−1} < ρ = ρ_l, u'_k = 1 + k ρ', c = √((1 − ρ)/(1 − ρ')),
r_k = L[k, k] / L'[k, k] and Δ = ρ − ρ' (layer 1: ρ' = 0, u' = 1):

    A[i, i] = r_i,   A[i, j] = ρ r_j / u_j − ρ' r_i / u'_{i−1} − ρ ρ' Σ_{j<k<i} r_k / (u_k u'_{k−1})   (j < i).

That sum of a column and a row term is useless numerically: both are ≈ 1/j and 1/i while A[i, j] ≈ 1/j², and
at T = 8192 it loses nine digits (relative error 7e−5 in float64 for ρ: 0.7955 → 0.8). Telescoping the two terms
against the sum, and using u_{k+1} u'_{k−1} − u_{k−1} u'_{k+1} = 2Δ, gives the same matrix as sums of positive
terms (no cancellation at all), anchored at the last row N = T − 1:

    A[i, j] = col_j + row_i   (j < i),   col_j = A[N, N−1] + Σ_{k=j}^{N−2} p_k,   row_i = Σ_{k=i}^{N−1} q_k,

    p_k = 2 ρ c Δ / (√(u_k u'_k) u_{k−1} u_{k+1} (√(u'_{k−1}/u_{k−1}) + √(u'_{k+1}/u_{k+1}))),
    q_k = 2 ρ' c Δ / (√(u_k u'_k) u'_{k−1} u'_{k+1} (√(u_{k+1}/u'_{k+1}) + √(u_{k−1}/u'_{k−1}))),
    A[i, i−1] = c Δ (ρ u'_{i−1} + ρ' u_{i−1}) / (√(u_{i−1} u'_{i−1}) u_{i−2} u'_i (ρ √(u'_{i−2}/u_{i−2}) + ρ' √(u_i/u'_i))).

Every term is positive when ρ > ρ', which proves that U-SPA attention is entrywise positive for an increasing
schedule, at every length. The row sums are d_i = r_i + Σ_{j<i} col_j + i row_i. The decomposition depends on T,
the matrix does not: A[i, j] is the same entry in every longer sequence (causal attention never sees the future).
`pallas_kernels.spa` evaluates these formulas in float32 (O(T) per layer); this module is its float64 oracle.

**Non-causal** (symmetric square roots): Σ^{1/2} = √(1 − ρ) (I − P) + √u_{T−1} P with P = 11ᵀ / T, so
A = c (I − P) + s P with s = √(u_{T−1} / u'_{T−1}): diagonal c + (s − c)/T, off-diagonal (s − c)/T > 0, row sums s.
Unlike the causal matrix it depends on the whole length T.
"""

from __future__ import annotations

import numpy as np


def _check(seq_len: int, rho: float) -> None:
    if int(seq_len) != seq_len or seq_len < 1:
        raise ValueError(f"seq_len must be a positive integer, got {seq_len!r}")
    if not 0.0 <= rho < 1.0:
        raise ValueError(f"rho must lie in [0, 1), got {rho!r}")


def _check_pair(seq_len: int, rho_prev: float, rho: float) -> None:
    _check(seq_len, rho)
    if not 0.0 <= rho_prev < rho:
        raise ValueError(f"U-SPA needs 0 <= ρ_(l-1) < ρ_l < 1 (kernels degrade with depth), got ({rho_prev!r}, {rho!r})")


def _u(k, rho):
    return 1.0 + np.asarray(k, np.float64) * rho


def uspa_cholesky(seq_len: int, rho: float) -> np.ndarray:
    """The Cholesky factor of (1 − ρ) I + ρ 11ᵀ in closed form. **Returns:** `[T, T]` float64, lower triangular."""
    _check(seq_len, rho)
    k = np.arange(seq_len)
    diag = np.sqrt((1.0 - rho) * _u(k, rho) / _u(k - 1, rho))
    below = rho * np.sqrt(1.0 - rho) / np.sqrt(_u(k - 1, rho) * _u(k, rho))  # column j's entry
    return np.tril(np.broadcast_to(below[None, :], (seq_len, seq_len)), -1) + np.diag(diag)


def uspa_cholesky_inverse(seq_len: int, rho: float) -> np.ndarray:
    """The inverse of `uspa_cholesky` in closed form. **Returns:** `[T, T]` float64, lower triangular."""
    _check(seq_len, rho)
    k = np.arange(seq_len)
    diag = np.sqrt(_u(k - 1, rho) / ((1.0 - rho) * _u(k, rho)))
    below = -rho / np.sqrt((1.0 - rho) * _u(k - 1, rho) * _u(k, rho))  # row i's entry
    return np.tril(np.broadcast_to(below[:, None], (seq_len, seq_len)), -1) + np.diag(diag)


def uspa_vectors(seq_len: int, rho_prev: float, rho: float) -> dict[str, np.ndarray]:
    """The O(T) quantities of causal U-SPA (see the module docs): `col`, `row`, `diag` (r_i) and `scale` (d_i).

    **Returns:** dict of `[T]` float64 arrays; A[i, j] = col_j + row_i below the diagonal, diag_i on it.
    """
    _check_pair(seq_len, rho_prev, rho)
    gap = rho - rho_prev
    k = np.arange(seq_len)
    u, um, up = _u(k, rho), _u(k - 1, rho), _u(k + 1, rho)
    v, vm, vp = _u(k, rho_prev), _u(k - 1, rho_prev), _u(k + 1, rho_prev)
    c = np.sqrt((1.0 - rho) / (1.0 - rho_prev))
    diag = c * np.sqrt(u * vm / (um * v))
    base = 2.0 * c * gap / np.sqrt(u * v)
    p = rho * base / (um * up * (np.sqrt(vm / um) + np.sqrt(vp / up)))
    q = rho_prev * base / (vm * vp * (np.sqrt(up / vp) + np.sqrt(um / vm)))
    last = seq_len - 1
    col = np.zeros(seq_len)
    row = np.zeros(seq_len)
    if last >= 1:
        i = last
        sub = c * gap * (rho * _u(i - 1, rho_prev) + rho_prev * _u(i - 1, rho)) / (
            np.sqrt(_u(i - 1, rho) * _u(i - 1, rho_prev)) * _u(i - 2, rho) * _u(i, rho_prev)
            * (rho * np.sqrt(_u(i - 2, rho_prev) / _u(i - 2, rho)) + rho_prev * np.sqrt(_u(i, rho) / _u(i, rho_prev)))
        )
        tail_p = np.cumsum(p[: last - 1][::-1])[::-1]  # Σ_{k=j}^{N−2} p_k for j ≤ N − 2
        col[: last - 1] = tail_p
        col[:last] += sub
        row[:last] = np.cumsum(q[:last][::-1])[::-1]  # Σ_{k=i}^{N−1} q_k
    before = np.concatenate([[0.0], np.cumsum(col)[:-1]])  # Σ_{j<i} col_j
    scale = diag + before + k * row
    return {"col": col, "row": row, "diag": diag, "scale": scale}


def uspa_attention(
    seq_len: int, rho_prev: float, rho: float, *, causal: bool = True, rows: np.ndarray | None = None
) -> np.ndarray:
    """A_l = L_l L_{l−1}⁻¹ (causal) or Σ_l^{1/2} Σ_{l−1}^{−1/2} (non-causal) in closed form.

    **Arguments:** `seq_len` T; `rho_prev` ρ_{l−1} (0 for layer 1) < `rho` ρ_l; `causal`; `rows`: the query
    positions to return (default all).

    **Returns:** `[len(rows), T]` float64 (0 above the diagonal when causal).
    """
    _check_pair(seq_len, rho_prev, rho)
    i = np.arange(seq_len) if rows is None else np.asarray(rows, np.int64)
    j = np.arange(seq_len)
    if not causal:
        c = np.sqrt((1.0 - rho) / (1.0 - rho_prev))
        s = np.sqrt(_u(seq_len - 1, rho) / _u(seq_len - 1, rho_prev))
        return c * (i[:, None] == j[None, :]) + (s - c) / seq_len
    vec = uspa_vectors(seq_len, rho_prev, rho)
    a = np.where(j[None, :] < i[:, None], vec["col"][None, :] + vec["row"][i][:, None], 0.0)
    return np.where(j[None, :] == i[:, None], vec["diag"][i][:, None], a)


def uspa_log_bias(
    seq_len: int, rho_prev: float, rho: float, *, causal: bool = True, rows: np.ndarray | None = None
) -> np.ndarray:
    """log A_l (−inf strictly above the diagonal when causal). **Returns:** `[len(rows), T]` float64."""
    a = uspa_attention(seq_len, rho_prev, rho, causal=causal, rows=rows)
    with np.errstate(divide="ignore"):
        return np.log(a)


def uspa_row_scale(seq_len: int, rho_prev: float, rho: float, *, causal: bool = True) -> np.ndarray:
    """Row sums d_l[i] = Σ_j A_l[i, j] in O(T). **Returns:** `[T]` float64."""
    _check_pair(seq_len, rho_prev, rho)
    if not causal:
        return np.full(seq_len, np.sqrt(_u(seq_len - 1, rho) / _u(seq_len - 1, rho_prev)))
    return uspa_vectors(seq_len, rho_prev, rho)["scale"]
