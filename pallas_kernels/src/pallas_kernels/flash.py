"""The fused attention as a `jax.custom_vjp` over Pallas forward and backward kernels.

Works on arrays already in kernel form: padded to a multiple of the tiles, in the backend's layout,
bias as `[Bb, Hb, T, T]`, row scale as `[Br, Hr, T]` (TPU: `[..., T, 1]`), a generated bias as its SPA
tables (E-SPA `[8]` coefficients, U-SPA `[4, T]` vectors). `pallas_kernels.fused.fused_attention` does that preparation.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero
from jax.experimental import pallas as pl

from pallas_kernels import specs
from pallas_kernels.backward_kernels import dbias_kernel, dkv_kernel, dq_kernel
from pallas_kernels.config import FlashConfig
from pallas_kernels.spa import SCALE, espa_scale_from_positions
from pallas_kernels.forward_kernel import forward_kernel


def _dims(cfg: FlashConfig, q):
    """(batch, heads, head_dim) of a kernel-layout array."""
    if cfg.backend == "gpu":
        b, _, h, d = q.shape
    else:
        b, h, _, d = q.shape
    return b, h, d


def _rows_shape(cfg: FlashConfig, b: int, h: int) -> tuple[int, ...]:
    return (b, h, cfg.seq_len) if cfg.backend == "gpu" else (b, h, cfg.seq_len, 1)


def _bias_operands(cfg: FlashConfig, bias, spa, rows: int | None, cols: int | None):
    if cfg.bias_mode == "array":
        return [bias], [specs.bias_spec(cfg, rows, cols)]
    if cfg.generated:
        return [spa], [specs.spa_tables_spec(cfg)]
    return [], []


def _forward(cfg: FlashConfig, q, k, v, bias, row_scale, spa):
    b, h, d = _dims(cfg, q)
    operands, in_specs = [q, k, v], [specs.seq_spec(cfg, cfg.block_q, d), specs.seq_spec(cfg, None, d), specs.seq_spec(cfg, None, d)]
    extra, extra_specs = _bias_operands(cfg, bias, spa, cfg.block_q, None)
    operands += extra
    in_specs += extra_specs
    if cfg.has_row_scale:
        operands.append(row_scale)
        in_specs.append(specs.rows_spec(cfg, cfg.block_q, cfg.row_scale_batch, cfg.row_scale_heads))
    return pl.pallas_call(
        functools.partial(forward_kernel, cfg),
        grid=(b, h, cfg.num_q_blocks),
        in_specs=in_specs,
        out_specs=[specs.seq_spec(cfg, cfg.block_q, d), specs.rows_spec(cfg, cfg.block_q)],
        out_shape=[jax.ShapeDtypeStruct(q.shape, q.dtype), jax.ShapeDtypeStruct(_rows_shape(cfg, b, h), jnp.float32)],
        name="biased_attention_fwd",
        **specs.launch_kwargs(cfg, 3),
    )(*operands)


def _dq(cfg, q, k, v, bias, spa, do, lse, delta):
    b, h, d = _dims(cfg, q)
    extra, extra_specs = _bias_operands(cfg, bias, spa, cfg.block_q, None)
    return pl.pallas_call(
        functools.partial(dq_kernel, cfg),
        grid=(b, h, cfg.num_q_blocks),
        in_specs=[specs.seq_spec(cfg, cfg.block_q, d), specs.seq_spec(cfg, None, d), specs.seq_spec(cfg, None, d)]
        + extra_specs
        + [specs.seq_spec(cfg, cfg.block_q, d), specs.rows_spec(cfg, cfg.block_q), specs.rows_spec(cfg, cfg.block_q)],
        out_specs=specs.seq_spec(cfg, cfg.block_q, d),
        out_shape=jax.ShapeDtypeStruct(q.shape, q.dtype),
        name="biased_attention_dq",
        **specs.launch_kwargs(cfg, 3),
    )(q, k, v, *extra, do, lse, delta)


def _dkv(cfg, q, k, v, bias, spa, do, lse, delta):
    b, h, d = _dims(cfg, q)
    extra, extra_specs = _bias_operands(cfg, bias, spa, None, cfg.block_k)
    kv_tile = specs.seq_spec(cfg, cfg.block_k, d)
    return pl.pallas_call(
        functools.partial(dkv_kernel, cfg),
        grid=(b, h, cfg.num_k_blocks),
        in_specs=[specs.seq_spec(cfg, None, d), kv_tile, kv_tile]
        + extra_specs
        + [specs.seq_spec(cfg, None, d), specs.rows_spec(cfg, None), specs.rows_spec(cfg, None)],
        out_specs=[kv_tile, kv_tile],
        out_shape=[jax.ShapeDtypeStruct(k.shape, k.dtype), jax.ShapeDtypeStruct(v.shape, v.dtype)],
        name="biased_attention_dkv",
        **specs.launch_kwargs(cfg, 3),
    )(q, k, v, *extra, do, lse, delta)


def _dbias(cfg, q, k, v, bias, do, lse, delta):
    b, h, d = _dims(cfg, q)
    q_tile = specs.all_heads_spec(cfg, b, h, cfg.block_q, d, axis=2)
    k_tile = specs.all_heads_spec(cfg, b, h, cfg.block_k, d, axis=3)
    rows = specs.all_heads_rows_spec(cfg, b, h)
    tile = pl.BlockSpec((None, None, cfg.block_q, cfg.block_k), lambda bb, hb, i, j: (bb, hb, i, j))
    return pl.pallas_call(
        functools.partial(dbias_kernel, cfg, b, h),
        grid=(cfg.bias_batch, cfg.bias_heads, cfg.num_q_blocks, cfg.num_k_blocks),
        in_specs=[q_tile, k_tile, k_tile, tile, q_tile, rows, rows],
        out_specs=tile,
        out_shape=jax.ShapeDtypeStruct(bias.shape, jnp.float32),
        name="biased_attention_dbias",
        **specs.launch_kwargs(cfg, 4),
    )(q, k, v, bias, do, lse, delta)


def _rows_to_kernel_layout(cfg: FlashConfig, x_bht):
    return x_bht if cfg.backend == "gpu" else x_bht[..., None]


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def flash_attention_core(cfg: FlashConfig, q, k, v, bias, row_scale, spa):
    """Fused attention on kernel-form operands (see module docstring). **Returns:** o, shaped like `q`."""
    return _forward(cfg, q, k, v, bias, row_scale, spa)[0]


@jax.tree_util.register_static
@dataclasses.dataclass(frozen=True)
class _Needs:
    """Which optional cotangents the caller differentiates (a static leaf of the residuals)."""

    bias: bool
    row_scale: bool


def _core_fwd(cfg, q, k, v, bias, row_scale, spa):
    # symbolic_zeros: every argument arrives as CustomVJPPrimal(value, perturbed); the bias gradient
    # kernel (a full extra pass) only runs when the bias is actually differentiated.
    needs = _Needs(bias=getattr(bias, "perturbed", False), row_scale=getattr(row_scale, "perturbed", False))
    q, k, v, bias, row_scale, spa = (getattr(x, "value", x) for x in (q, k, v, bias, row_scale, spa))
    o, lse = _forward(cfg, q, k, v, bias, row_scale, spa)
    return o, (needs, q, k, v, bias, row_scale, spa, o, lse)


def _row_scale_bht(cfg: FlashConfig, row_scale, spa, b: int, h: int):
    """The effective row scale as `[Br, Hr, T]` float32 (broadcastable to `[B, H, T]`), or None."""
    if cfg.bias_mode == "espa":
        return espa_scale_from_positions(spa, jnp.arange(cfg.seq_len))[None, None, :]
    if cfg.bias_mode == "uspa":
        return spa[SCALE][None, None, :]
    if cfg.has_row_scale:
        return row_scale if cfg.backend == "gpu" else row_scale[..., 0]
    return None


def _core_bwd(cfg, residuals, do):
    needs, q, k, v, bias, row_scale, spa, o, lse = residuals
    cfg = cfg.for_backward()
    if isinstance(do, SymbolicZero):
        do = jnp.zeros(o.shape, o.dtype)
    b, h, _ = _dims(cfg, q)
    spec = "bthd->bht" if cfg.backend == "gpu" else "bhtd->bht"
    delta_bht = jnp.einsum(spec, do.astype(jnp.float32) * o.astype(jnp.float32))  # δ = dO · O
    scale_bht = _row_scale_bht(cfg, row_scale, spa, b, h)
    if scale_bht is None:
        do_tilde = do
    else:
        scale_full = jnp.broadcast_to(scale_bht, (b, h, cfg.seq_len))
        per_row = scale_full.transpose(0, 2, 1)[..., None] if cfg.backend == "gpu" else scale_full[..., None]
        do_tilde = (do.astype(jnp.float32) * per_row).astype(do.dtype)
    delta = _rows_to_kernel_layout(cfg, delta_bht)
    dq = _dq(cfg, q, k, v, bias, spa, do_tilde, lse, delta)
    dk, dv = _dkv(cfg, q, k, v, bias, spa, do_tilde, lse, delta)
    dbias = None
    if cfg.bias_mode == "array" and needs.bias:
        dbias = _dbias(cfg, q, k, v, bias, do_tilde, lse, delta).astype(bias.dtype)
    drow_scale = None
    if cfg.has_row_scale and needs.row_scale:
        # d(loss)/d(scale_i) = dO_i · Õ_i = δ_i / scale_i (a row scale of exactly 0 gets gradient 0).
        safe = jnp.where(scale_full == 0, 1.0, scale_full)
        per_row_grad = jnp.where(scale_full == 0, 0.0, delta_bht / safe)
        drow_scale = _reduce_to(per_row_grad, scale_bht.shape)
        drow_scale = _rows_to_kernel_layout(cfg, drow_scale).astype(row_scale.dtype)
    dspa = None if spa is None else jnp.zeros_like(spa)  # generated biases are constants
    return dq, dk, dv, dbias, drow_scale, dspa


def _reduce_to(x, shape):
    axes = tuple(axis for axis, (n, m) in enumerate(zip(x.shape, shape)) if m == 1 and n != 1)
    return jnp.sum(x, axis=axes, keepdims=True)


flash_attention_core.defvjp(_core_fwd, _core_bwd, symbolic_zeros=True)
