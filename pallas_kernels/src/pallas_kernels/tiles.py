"""Tile-level pieces shared by every attention kernel: positions, logits, matmuls, row statistics.

Row statistics (max, log-sum-exp, δ, row scale) are kept as `[bq, 1]` columns inside the kernels. In
memory they are `[..., T]` vectors on GPU and `[..., T, 1]` columns on TPU (Mosaic tiles need two dims).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl

from pallas_kernels.config import FlashConfig
from pallas_kernels.spa import (
    COL,
    MASK_VALUE,
    ROW,
    SCALE,
    USPA_LOG_DIAG,
    espa_bias_from_positions,
    espa_scale_from_positions,
    uspa_bias_from_vectors,
)


def matmul(a: jax.Array, b: jax.Array, *, transpose_a: bool = False, transpose_b: bool = False) -> jax.Array:
    """`a @ b` (either operand optionally transposed) accumulated in float32.

    **Arguments:** 2-D tiles `a`, `b`. float32 operands use full precision (no TF32).

    **Returns:** float32 tile.
    """
    contract_a = 0 if transpose_a else 1
    contract_b = 1 if transpose_b else 0
    precision = lax.Precision.HIGHEST if a.dtype == jnp.float32 and b.dtype == jnp.float32 else None
    return lax.dot_general(
        a,
        b,
        (((contract_a,), (contract_b,)), ((), ())),
        precision=precision,
        preferred_element_type=jnp.float32,
    )


def tile_positions(q_start, k_start, block_q: int, block_k: int) -> tuple[jax.Array, jax.Array]:
    """Absolute query / key positions of a tile. **Returns:** two `[bq, bk]` int32 arrays."""
    i = q_start + lax.broadcasted_iota(jnp.int32, (block_q, block_k), 0)
    j = k_start + lax.broadcasted_iota(jnp.int32, (block_q, block_k), 1)
    return i, j


def logits_tile(cfg: FlashConfig, q, k, q_start, k_start, bias_tile=None, spa_ref=None) -> jax.Array:
    """Masked logits `q kᵀ · sm_scale + bias` of one tile.

    **Arguments:** `q` `[bq, D]`, `k` `[bk, D]`; `bias_tile` `[bq, bk]` (mode "array"); `spa_ref` the SPA
    tables (modes "espa", "uspa": `[8]` coefficients or `[4, T]` vectors).

    **Returns:** `[bq, bk]` float32, `MASK_VALUE` where masked.
    """
    s = matmul(q, k, transpose_b=True) * cfg.sm_scale
    i, j = tile_positions(q_start, k_start, q.shape[0], k.shape[0])
    if cfg.bias_mode == "array":
        s = s + bias_tile.astype(jnp.float32)
    elif cfg.bias_mode == "espa":
        s = s + espa_bias_from_positions(spa_ref, i, j)
    elif cfg.bias_mode == "uspa":
        col = uspa_vector(cfg, spa_ref, COL, k_start, k.shape[0], column=False)
        row = uspa_vector(cfg, spa_ref, ROW, q_start, q.shape[0], column=True)
        log_diag = uspa_vector(cfg, spa_ref, USPA_LOG_DIAG, q_start, q.shape[0], column=True)
        s = s + uspa_bias_from_vectors(col, row, log_diag, i, j)
    if cfg.causal:
        s = jnp.where(j <= i, s, MASK_VALUE)
    elif cfg.masks_padding:
        s = jnp.where(j < cfg.kv_len, s, MASK_VALUE)
    return s


def read_rows(cfg: FlashConfig, ref, start=None, size: int | None = None) -> jax.Array:
    """Load a row statistic as a `[bq, 1]` float32 column (all of `ref`, or `size` rows from `start`)."""
    if cfg.backend == "gpu":
        x = ref[...] if start is None else ref[pl.ds(start, size)]
        return x.astype(jnp.float32)[:, None]
    x = ref[...] if start is None else ref[pl.ds(start, size), :]
    return x.astype(jnp.float32)


def write_rows(cfg: FlashConfig, ref, column: jax.Array) -> None:
    """Store a `[bq, 1]` column into a row-statistic block."""
    if cfg.backend == "gpu":
        ref[...] = jnp.squeeze(column, 1).astype(ref.dtype)
    else:
        ref[...] = column.astype(ref.dtype)


def uspa_vector(cfg: FlashConfig, ref, which: int, start, size: int, *, column: bool) -> jax.Array:
    """`size` entries of U-SPA vector `which` from `start`, as a `[size, 1]` column or a `[1, size]` row."""
    if cfg.backend == "gpu":
        x = ref[which, pl.ds(start, size)]
        return x[:, None] if column else x[None, :]
    x = ref[pl.ds(which, 1), pl.ds(start, size)]  # Mosaic keeps two dims
    return x.reshape(size, 1) if column else x


def generated_row_scale_column(cfg: FlashConfig, spa_ref, q_start, block_q: int) -> jax.Array:
    """The generated (E-SPA / U-SPA) row scale d[i] of the tile's queries. **Returns:** `[bq, 1]` float32."""
    if cfg.bias_mode == "uspa":
        return uspa_vector(cfg, spa_ref, SCALE, q_start, block_q, column=True)
    i = q_start + lax.broadcasted_iota(jnp.int32, (block_q, 1), 0)
    return espa_scale_from_positions(spa_ref, i)

