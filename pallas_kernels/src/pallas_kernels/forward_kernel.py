"""Forward kernel: one query tile against its keys, online softmax, bias added per tile, rows rescaled.

Grid `(B, H, num_q_blocks)`. Refs (in order): q `[bq, D]`, k `[T, D]`, v `[T, D]`, then the bias source
(`[bq, T]` explicit bias or the SPA tables) if any, then the row scale `[bq]` if explicit;
outputs o `[bq, D]` and the log-sum-exp `[bq]` of the unscaled softmax (for the backward pass).
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl

from pallas_kernels.config import FlashConfig
from pallas_kernels.tiles import generated_row_scale_column, logits_tile, matmul, read_rows, write_rows


def split_input_refs(cfg: FlashConfig, refs):
    """Name the optional refs. **Returns:** (bias_ref, spa_ref, row_scale_ref, remaining refs)."""
    bias_ref = spa_ref = row_scale_ref = None
    rest = list(refs)
    if cfg.bias_mode == "array":
        bias_ref = rest.pop(0)
    elif cfg.generated:
        spa_ref = rest.pop(0)
    if cfg.has_row_scale:
        row_scale_ref = rest.pop(0)
    return bias_ref, spa_ref, row_scale_ref, rest


def num_key_blocks(cfg: FlashConfig, q_start):
    """Key tiles a query tile must visit: up to its diagonal when causal, else all."""
    if not cfg.causal:
        return cfg.num_k_blocks
    return lax.div(q_start + cfg.block_q + cfg.block_k - 1, cfg.block_k)


def forward_kernel(cfg: FlashConfig, q_ref, k_ref, v_ref, *refs):
    bias_ref, spa_ref, row_scale_ref, (o_ref, lse_ref) = split_input_refs(cfg, refs)
    bq, bk = cfg.block_q, cfg.block_k
    q_start = pl.program_id(2) * bq
    q = q_ref[...]
    d = q.shape[-1]

    def body(kb, carry):
        acc, m_prev, l_prev = carry
        k_start = pl.multiple_of(kb * bk, bk)
        k = k_ref[pl.ds(k_start, bk), :]
        v = v_ref[pl.ds(k_start, bk), :]
        bias_tile = bias_ref[:, pl.ds(k_start, bk)] if bias_ref is not None else None
        s = logits_tile(cfg, q, k, q_start, k_start, bias_tile, spa_ref)
        m_new = jnp.maximum(m_prev, jnp.max(s, axis=1, keepdims=True))
        correction = jnp.exp(m_prev - m_new)
        p = jnp.exp(s - m_new)
        l_new = correction * l_prev + jnp.sum(p, axis=1, keepdims=True)
        acc = correction * acc + matmul(p.astype(v.dtype), v)
        return acc, m_new, l_new

    init = (
        jnp.zeros((bq, d), jnp.float32),
        jnp.full((bq, 1), -jnp.inf, jnp.float32),
        jnp.zeros((bq, 1), jnp.float32),
    )
    acc, m, l = lax.fori_loop(0, num_key_blocks(cfg, q_start), body, init)
    out = acc / l
    if cfg.generated:
        out = out * generated_row_scale_column(cfg, spa_ref, q_start, bq)
    if row_scale_ref is not None:
        out = out * read_rows(cfg, row_scale_ref)
    o_ref[...] = out.astype(o_ref.dtype)
    write_rows(cfg, lse_ref, m + jnp.log(l))
