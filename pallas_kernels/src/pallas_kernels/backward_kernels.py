"""Backward kernels: dq (per query tile), dk/dv (per key tile) and the explicit bias's gradient.

With P = softmax(S), Õ = P V and O = diag(d) Õ, the incoming dO becomes dÕ = diag(d) dO (done outside the
kernels), δ_i = Σ_j P_ij (dÕ_i · v_j) = dO_i · O_i, and dS = P ∘ (dÕ Vᵀ − δ). Then dQ = sm_scale · dS K,
dK = sm_scale · dSᵀ Q, dV = Pᵀ dÕ and dBias = dS summed over the bias's broadcast batch / head axes.
Each kernel recomputes P from the stored log-sum-exp, so nothing T×T is kept between passes.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl

from pallas_kernels.config import FlashConfig
from pallas_kernels.forward_kernel import num_key_blocks
from pallas_kernels.tiles import logits_tile, matmul, read_rows


def _split_bias(cfg: FlashConfig, refs):
    rest = list(refs)
    bias_ref = spa_ref = None
    if cfg.bias_mode == "array":
        bias_ref = rest.pop(0)
    elif cfg.generated:
        spa_ref = rest.pop(0)
    return bias_ref, spa_ref, rest


def _score_gradient(cfg, q, k, v, do, lse, delta, q_start, k_start, bias_tile, spa_ref):
    """P and dS of one tile. **Returns:** `([bq, bk], [bq, bk])` float32."""
    s = logits_tile(cfg, q, k, q_start, k_start, bias_tile, spa_ref)
    p = jnp.exp(s - lse)
    dp = matmul(do, v, transpose_b=True)
    return p, p * (dp - delta)


def dq_kernel(cfg: FlashConfig, q_ref, k_ref, v_ref, *refs):
    """Grid `(B, H, num_q_blocks)`; refs q `[bq, D]`, k, v `[T, D]`, bias source, dÕ `[bq, D]`, lse, δ; out dq."""
    bias_ref, spa_ref, (do_ref, lse_ref, delta_ref, dq_ref) = _split_bias(cfg, refs)
    bq, bk = cfg.block_q, cfg.block_k
    q_start = pl.program_id(2) * bq
    q = q_ref[...]
    do = do_ref[...]
    lse = read_rows(cfg, lse_ref)
    delta = read_rows(cfg, delta_ref)

    def body(kb, dq):
        k_start = pl.multiple_of(kb * bk, bk)
        k = k_ref[pl.ds(k_start, bk), :]
        v = v_ref[pl.ds(k_start, bk), :]
        bias_tile = bias_ref[:, pl.ds(k_start, bk)] if bias_ref is not None else None
        _, ds = _score_gradient(cfg, q, k, v, do, lse, delta, q_start, k_start, bias_tile, spa_ref)
        return dq + matmul(ds.astype(k.dtype), k)

    dq = lax.fori_loop(0, num_key_blocks(cfg, q_start), body, jnp.zeros(q.shape, jnp.float32))
    dq_ref[...] = (dq * cfg.sm_scale).astype(dq_ref.dtype)


def dkv_kernel(cfg: FlashConfig, q_ref, k_ref, v_ref, *refs):
    """Grid `(B, H, num_k_blocks)`; refs q `[T, D]`, k, v `[bk, D]`, bias source, dÕ `[T, D]`, lse, δ; out dk, dv."""
    bias_ref, spa_ref, (do_ref, lse_ref, delta_ref, dk_ref, dv_ref) = _split_bias(cfg, refs)
    bq, bk = cfg.block_q, cfg.block_k
    k_start = pl.program_id(2) * bk
    k = k_ref[...]
    v = v_ref[...]
    first = lax.div(k_start, bq) if cfg.causal else 0

    def body(qb, carry):
        dk, dv = carry
        q_start = pl.multiple_of(qb * bq, bq)
        q = q_ref[pl.ds(q_start, bq), :]
        do = do_ref[pl.ds(q_start, bq), :]
        lse = read_rows(cfg, lse_ref, q_start, bq)
        delta = read_rows(cfg, delta_ref, q_start, bq)
        bias_tile = bias_ref[pl.ds(q_start, bq), :] if bias_ref is not None else None
        p, ds = _score_gradient(cfg, q, k, v, do, lse, delta, q_start, k_start, bias_tile, spa_ref)
        dv = dv + matmul(p.astype(do.dtype), do, transpose_a=True)
        dk = dk + matmul(ds.astype(q.dtype), q, transpose_a=True)
        return dk, dv

    zeros = jnp.zeros(k.shape, jnp.float32)
    dk, dv = lax.fori_loop(first, cfg.num_q_blocks, body, (zeros, zeros))
    dk_ref[...] = (dk * cfg.sm_scale).astype(dk_ref.dtype)
    dv_ref[...] = dv.astype(dv_ref.dtype)


def dbias_kernel(cfg: FlashConfig, num_batch: int, num_heads: int, q_ref, k_ref, v_ref, bias_ref, *refs):
    """Grid `(Bb, Hb, num_q_blocks, num_k_blocks)`: one `[bq, bk]` tile of dBias, summed in-kernel over the
    batch / head axes the bias broadcasts over. Refs hold every batch and head of their tile:
    q, dÕ `[B, bq, H, D]`, k, v `[B, bk, H, D]` (TPU: `[B, H, t, D]`), lse, δ `[B, H, bq]`; out `[bq, bk]`."""
    do_ref, lse_ref, delta_ref, dbias_ref = refs
    bq, bk = cfg.block_q, cfg.block_k
    q_start = pl.program_id(2) * bq
    k_start = pl.program_id(3) * bk
    reduce_batch = cfg.bias_batch == 1
    reduce_heads = cfg.bias_heads == 1
    heads_in_loop = num_heads if reduce_heads else 1
    count = (num_batch if reduce_batch else 1) * heads_in_loop
    bias_tile = bias_ref[...]
    own_batch, own_head = pl.program_id(0), pl.program_id(1)

    def head_tile(ref, b, h):
        return ref[b, :, h, :] if cfg.backend == "gpu" else ref[b, h, :, :]

    def rows(ref, b, h):
        x = ref[b, h, :] if cfg.backend == "gpu" else ref[b, h, :, :]
        x = x.astype(jnp.float32)
        return x[:, None] if cfg.backend == "gpu" else x

    def body(r, acc):
        b = lax.div(r, heads_in_loop) if reduce_batch else own_batch
        h = lax.rem(r, heads_in_loop) if reduce_heads else own_head
        q = head_tile(q_ref, b, h)
        k = head_tile(k_ref, b, h)
        v = head_tile(v_ref, b, h)
        do = head_tile(do_ref, b, h)
        _, ds = _score_gradient(
            cfg, q, k, v, do, rows(lse_ref, b, h), rows(delta_ref, b, h), q_start, k_start, bias_tile, None
        )
        return acc + ds

    def store():
        acc = lax.fori_loop(0, count, body, jnp.zeros((bq, bk), jnp.float32))
        dbias_ref[...] = acc.astype(dbias_ref.dtype)

    if not cfg.causal:
        store()
        return
    visible = k_start <= q_start + bq - 1
    pl.when(visible)(store)

    @pl.when(jnp.logical_not(visible))
    def _():
        dbias_ref[...] = jnp.zeros((bq, bk), dbias_ref.dtype)
