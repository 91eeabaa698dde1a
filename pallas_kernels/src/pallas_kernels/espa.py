"""E-SPA attention in closed form, in JAX: the log-bias and row scale from (γ_{l−1}, γ_l).

With a = e^{−γ_l}, a' = e^{−γ_{l−1}}, s = √(1 − a²), s' = √(1 − a'²), r = s / s' (layer 1: γ_{l−1} = inf,
so a' = 0, s' = 1), the attention matrix A = L_l L_{l−1}⁻¹ is lower triangular with

    A[0, 0] = 1,  A[i, i] = r (i ≥ 1),  A[i, j] = r (a − a') a^{i−j−1} (1 ≤ j < i),  A[i, 0] = a^{i−1} (a − a' r).

Everything is computed in log space (far from the diagonal A underflows float32), and from scalars that may be
traced values (e.g. γ per layer inside `jax.lax.scan`). The same eight scalars (`espa_coefficients`) drive the
Pallas kernels, which regenerate bias and row scale per tile, like ALiBi.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float

# Large and finite: adding it to a logit must still give a finite number after softmax's max-subtraction.
MASK_VALUE = -1e30

# Index of each scalar in the coefficient vector.
LOG_DIAG, LOG_OFFDIAG, LOG_FIRST_COL, GAMMA, DIAG, GEOMETRIC, FIRST_COL, _UNUSED = range(8)
NUM_COEFFICIENTS = 8


def espa_coefficients(gamma_prev: Float[Array, ""] | float, gamma: Float[Array, ""] | float) -> Float[Array, "8"]:
    """The scalars that determine one E-SPA layer, as a float32 vector (traceable).

    **Arguments:**
    - `gamma_prev`: γ_{l−1} (`inf` for the first layer).
    - `gamma`: γ_l, finite and positive, below `gamma_prev`.

    **Returns:** `[8]` float32: log r, log(r (a − a')), log(a − a' r), γ, r, r (a − a') / (1 − a), a − a' r, 0.
    """
    g = jnp.asarray(gamma, jnp.float32)
    gp = jnp.asarray(gamma_prev, jnp.float32)
    a = jnp.exp(-g)
    a_prev = jnp.exp(-gp)
    log_s = 0.5 * jnp.log(-jnp.expm1(-2.0 * g))
    log_s_prev = 0.5 * jnp.log(-jnp.expm1(-2.0 * gp))  # 0 when gp = inf
    log_r = log_s - log_s_prev
    r = jnp.exp(log_r)
    log_gap = -g + jnp.log(-jnp.expm1(g - gp))  # log(a − a'), exact also when a' → 0
    first_col = a - a_prev * r
    geometric = r * jnp.exp(log_gap) / -jnp.expm1(-g)  # r (a − a') / (1 − a)
    return jnp.stack(
        [log_r, log_r + log_gap, jnp.log(first_col), g, r, geometric, first_col, jnp.zeros_like(g)]
    ).astype(jnp.float32)


def espa_bias_from_positions(
    coeffs: Float[Array, "8"], i: Array, j: Array
) -> Float[Array, "..."]:
    """log A[i, j] for j ≤ i (values above the diagonal are meaningless; mask them).

    **Arguments:** `coeffs` from `espa_coefficients`; `i`, `j` integer position arrays that broadcast together.

    **Returns:** float32 array of the broadcast shape of `i` and `j`.
    """
    gamma = coeffs[GAMMA]
    fi = i.astype(jnp.float32)
    fj = j.astype(jnp.float32)
    off = coeffs[LOG_OFFDIAG] - gamma * (fi - fj - 1.0)
    col0 = coeffs[LOG_FIRST_COL] - gamma * (fi - 1.0)
    bias = jnp.where(j == 0, col0, off)
    bias = jnp.where(i == j, jnp.where(i == 0, 0.0, coeffs[LOG_DIAG]), bias)
    return bias


def espa_scale_from_positions(coeffs: Float[Array, "8"], i: Array) -> Float[Array, "..."]:
    """Row sums d[i] = Σ_j A[i, j]: 1 for i = 0, else r + r(a − a')(1 − a^{i−1})/(1 − a) + a^{i−1}(a − a' r).

    **Arguments:** `coeffs` from `espa_coefficients`; `i` integer positions.

    **Returns:** float32 array shaped like `i`.
    """
    steps = jnp.maximum(i.astype(jnp.float32) - 1.0, 0.0) * coeffs[GAMMA]
    power = jnp.exp(-steps)  # a^{i−1}
    scale = coeffs[DIAG] + coeffs[GEOMETRIC] * (1.0 - power) + power * coeffs[FIRST_COL]
    return jnp.where(i == 0, 1.0, scale)


def espa_log_bias(
    seq_len: int, gamma_prev: Float[Array, ""] | float, gamma: Float[Array, ""] | float
) -> Float[Array, "T T"]:
    """log A_l on and below the diagonal, `MASK_VALUE` (−1e30) strictly above it.

    **Arguments:** `seq_len` T; `gamma_prev` γ_{l−1} (inf for layer 1); `gamma` γ_l (both may be traced).

    **Returns:** `[T, T]` float32.
    """
    _check_seq_len(seq_len)
    coeffs = espa_coefficients(gamma_prev, gamma)
    i = jnp.arange(seq_len)[:, None]
    j = jnp.arange(seq_len)[None, :]
    return jnp.where(j <= i, espa_bias_from_positions(coeffs, i, j), MASK_VALUE)


def espa_row_scale(
    seq_len: int, gamma_prev: Float[Array, ""] | float, gamma: Float[Array, ""] | float
) -> Float[Array, " T"]:
    """Row scale d_l[i] = Σ_j A_l[i, j] in closed form.

    **Arguments:** as `espa_log_bias`.

    **Returns:** `[T]` float32.
    """
    _check_seq_len(seq_len)
    return espa_scale_from_positions(espa_coefficients(gamma_prev, gamma), jnp.arange(seq_len))


def _check_seq_len(seq_len: int) -> None:
    if not isinstance(seq_len, int) or seq_len < 1:
        raise ValueError(f"seq_len must be a positive int, got {seq_len!r}; pass the static sequence length")
