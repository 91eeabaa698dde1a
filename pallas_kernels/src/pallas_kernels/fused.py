"""Prepare operands for the fused kernels: validate, pad ragged lengths, pick tiles, change layout.

Padding and layout changes happen outside the `custom_vjp`, so JAX differentiates them itself and every
gradient comes back in the caller's shapes (a `[T, T]` bias gets a `[T, T]` gradient, summed in-kernel
over batch and heads).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from pallas_kernels.config import FlashConfig
from pallas_kernels.flash import flash_attention_core
from pallas_kernels.spa import SpaSpec, SpaTables, as_prepared

DEFAULT_BLOCK = 128
MIN_BLOCK = 16  # Triton's smallest matmul tile


def _next_power_of_two(n: int) -> int:
    return 1 << max(n - 1, 0).bit_length()


def choose_block(seq_len: int, requested: int | None) -> int:
    """Tile size: the requested one, else 128, shrunk to the smallest power of two ≥ T (at least 16)."""
    block = DEFAULT_BLOCK if requested is None else requested
    if block < 1 or block & (block - 1):
        raise ValueError(f"block sizes must be powers of two, got {block}; pass e.g. 64 or 128")
    return max(MIN_BLOCK, min(block, _next_power_of_two(seq_len)))


def _leading(shape: tuple[int, ...], full: tuple[int, int], what: str, hint: str) -> tuple[int, int]:
    """Leading (batch, heads) sizes of a broadcastable operand, each 1 or full."""
    padded = (1,) * (2 - len(shape)) + tuple(shape)
    for size, n, axis in zip(padded, full, ("batch", "heads")):
        if size not in (1, n):
            raise ValueError(f"{what} {axis} axis has size {size}, expected 1 or {n}; {hint}")
    return padded[0], padded[1]


def _prepare_bias(bias, batch: int, heads: int, seq_len: int, padded: int):
    hint = "pass a bias broadcastable to [B, H, T, T] ([T, T], [H, T, T] or [B, H, T, T])"
    if bias.ndim < 2 or bias.ndim > 4:
        raise ValueError(f"bias must have 2 to 4 dims, got shape {bias.shape}; {hint}")
    if bias.shape[-2] not in (1, seq_len) or bias.shape[-1] not in (1, seq_len):
        raise ValueError(f"bias shape {bias.shape} does not match sequence length {seq_len}; {hint}")
    bb, hb = _leading(bias.shape[:-2], (batch, heads), "bias", hint)
    bias = jnp.broadcast_to(bias.reshape(bb, hb, *bias.shape[-2:]), (bb, hb, seq_len, seq_len))
    pad = padded - seq_len
    return jnp.pad(bias, ((0, 0), (0, 0), (0, pad), (0, pad))), bb, hb


def _prepare_row_scale(row_scale, batch: int, heads: int, seq_len: int, padded: int):
    hint = "pass a row_scale broadcastable to [B, H, T] ([T], [H, T] or [B, H, T])"
    row_scale = jnp.asarray(row_scale, jnp.float32)
    if row_scale.ndim < 1 or row_scale.ndim > 3 or row_scale.shape[-1] not in (1, seq_len):
        raise ValueError(f"row_scale has shape {row_scale.shape}; {hint}")
    br, hr = _leading(row_scale.shape[:-1], (batch, heads), "row_scale", hint)
    row_scale = jnp.broadcast_to(row_scale.reshape(br, hr, row_scale.shape[-1]), (br, hr, seq_len))
    return jnp.pad(row_scale, ((0, 0), (0, 0), (0, padded - seq_len)), constant_values=1.0), br, hr


def fused_attention(
    q: Float[Array, "B T H D"],
    k: Float[Array, "B T H D"],
    v: Float[Array, "B T H D"],
    *,
    bias: Float[Array, "..."] | None = None,
    row_scale: Float[Array, "..."] | None = None,
    spa: SpaSpec | SpaTables | None = None,
    sm_scale: float | None = None,
    causal: bool = True,
    backend: str = "gpu",
    interpret: bool = False,
    block_q: int | None = None,
    block_k: int | None = None,
    num_warps: int | None = None,
    num_stages: int = 2,
    backward_block_q: int | None = None,
    backward_block_k: int | None = None,
) -> Float[Array, "B T H D"]:
    """Flash-style attention `diag(scale) · softmax(q kᵀ · sm_scale + bias + mask) · v` in Pallas.

    **Arguments:**
    - `q`, `k`, `v`: `[B, T, H, D]`, float32 or bfloat16 (accumulation is float32).
    - `bias`: explicit additive bias broadcastable to `[B, H, T, T]`; differentiable.
    - `row_scale`: per-query scale broadcastable to `[B, H, T]`; differentiable.
    - `spa`: a `SpaSpec` (E-SPA or U-SPA layer) or its `SpaTables`: the kernel generates the bias and row scale
      itself from the tables (no gradient flows to them). Exclusive with `bias` and `row_scale`.
    - `sm_scale`: logit scale, default `1/sqrt(D)`; `causal`: mask future keys.
    - `backend`: "gpu" (Triton-style) or "tpu" (Mosaic); `interpret`: run in that backend's interpret mode.
    - `block_q`, `block_k`: tile sizes (powers of two); `num_warps`, `num_stages`: Triton launch settings.
    - `backward_block_q`, `backward_block_k`: backward tiles; default the forward ones, 64 on GPU for
      head dims above 64 (the backward kernels' tiles must fit the GPU's shared memory).

    **Returns:** `[B, T, H, D]` in the dtype of `q`.
    """
    if q.ndim != 4 or k.shape != q.shape or v.shape != q.shape:
        raise ValueError(
            f"q, k, v must all be [B, T, H, D] with equal shapes, got {q.shape}, {k.shape}, {v.shape}; "
            "reshape to the [batch, time, heads, head_dim] layout"
        )
    if spa is not None and (bias is not None or row_scale is not None):
        raise ValueError("spa generates its own bias and row scale; pass either spa or bias/row_scale, not both")
    batch, seq_len, heads, head_dim = q.shape
    if sm_scale is None:
        sm_scale = 1.0 / head_dim**0.5
    bq, bk = choose_block(seq_len, block_q), choose_block(seq_len, block_k)
    padded_dim = max(MIN_BLOCK, _next_power_of_two(head_dim)) if backend == "gpu" else head_dim
    small = 64 if backend == "gpu" and padded_dim > 64 else None
    bwd_bq = choose_block(seq_len, backward_block_q or small or bq)
    bwd_bk = choose_block(seq_len, backward_block_k or small or bk)
    largest = max(bq, bk, bwd_bq, bwd_bk)
    padded = -(-seq_len // largest) * largest

    bias_mode, bb, hb = "none", 1, 1
    if bias is not None:
        bias, bb, hb = _prepare_bias(bias, batch, heads, seq_len, padded)
        bias_mode = "array"
    tables = None
    if spa is not None:
        bias_mode = spa.kind
        tables = jax.lax.stop_gradient(as_prepared(spa, seq_len, bool(causal)).tables)
        if spa.kind == "uspa":  # vectors at the true length, padded with harmless values (log 1 = 0)
            tables = jnp.pad(tables, ((0, 0), (0, padded - seq_len)), constant_values=1.0)
    br, hr = 1, 1
    if row_scale is not None:
        row_scale, br, hr = _prepare_row_scale(row_scale, batch, heads, seq_len, padded)

    # Zero feature columns leave q·k unchanged and give zero outputs, so any head_dim maps onto a
    # power of two that Triton tiles accept.
    pad = ((0, 0), (0, padded - seq_len), (0, 0), (0, padded_dim - head_dim))
    q, k, v = (jnp.pad(x, pad) for x in (q, k, v))
    if backend == "tpu":
        q, k, v = (x.transpose(0, 2, 1, 3) for x in (q, k, v))
        if row_scale is not None:
            row_scale = row_scale[..., None]

    cfg = FlashConfig(
        block_q=bq,
        block_k=bk,
        seq_len=padded,
        kv_len=seq_len,
        sm_scale=float(sm_scale),
        causal=bool(causal),
        bias_mode=bias_mode,
        bias_batch=bb,
        bias_heads=hb,
        has_row_scale=row_scale is not None,
        row_scale_batch=br,
        row_scale_heads=hr,
        backend=backend,
        interpret=interpret,
        num_warps=num_warps if num_warps is not None else (4 if padded_dim <= 64 else 8),
        num_stages=num_stages,
        backward_block_q=bwd_bq,
        backward_block_k=bwd_bk,
    )
    out = flash_attention_core(cfg, q, k, v, bias, row_scale, tables)
    if backend == "tpu":
        out = out.transpose(0, 2, 1, 3)
    return out[:, :seq_len, :, :head_dim]
