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
from pallas_kernels.espa import MASK_VALUE, espa_bias_from_positions, espa_scale_from_positions


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


def logits_tile(cfg: FlashConfig, q, k, q_start, k_start, bias_tile=None, espa_ref=None) -> jax.Array:
    """Masked logits `q kᵀ · sm_scale + bias` of one tile.

    **Arguments:** `q` `[bq, D]`, `k` `[bk, D]`; `bias_tile` `[bq, bk]` (mode "array"); `espa_ref` the
    coefficient vector (mode "espa").

    **Returns:** `[bq, bk]` float32, `MASK_VALUE` where masked.
    """
    s = matmul(q, k, transpose_b=True) * cfg.sm_scale
    i, j = tile_positions(q_start, k_start, q.shape[0], k.shape[0])
    if cfg.bias_mode == "array":
        s = s + bias_tile.astype(jnp.float32)
    elif cfg.bias_mode == "espa":
        s = s + espa_bias_from_positions(espa_ref, i, j)
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


def espa_row_scale_column(espa_ref, q_start, block_q: int) -> jax.Array:
    """E-SPA row scale d[i] for the tile's queries. **Returns:** `[bq, 1]` float32."""
    i = q_start + lax.broadcasted_iota(jnp.int32, (block_q, 1), 0)
    return espa_scale_from_positions(espa_ref, i)

