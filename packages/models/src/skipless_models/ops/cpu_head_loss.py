"""The vocabulary head and the softmax cross-entropy fused, chunked along T, with a hand-written gradient.

`head_cross_entropy` never materialises the `[B, T, V]` logits: it runs the head and the loss chunk by chunk and
computes the gradient of the loss with respect to the head's input and weight in the same pass (a custom VJP), so
the backward pass neither stores nor re-reads the logits. On this project's 2-core CPU the head and loss of the
cpu-tiny shape (2,048 tokens, D 128, V 4,096, forward and backward) take 21.8 ms this way against 27.5 ms through
autodiff over full logits: `[rows, V]` chunks of about 4 MiB stay in cache. Same values as
`skipless_models.ops.plain.head_loss` (its oracle); reverse mode only.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from skipless_models.cross_entropy import loss_aux, softmax_terms
from skipless_models.ops.cpu import weight_grad

# Logit elements per chunk (float32 [rows, V] of 4 MiB): 256 tokens at V = 4096. Measured on 2,048 tokens ×
# V 4,096 (idle 2-core machine): 128 / 256 / 512 tokens per chunk 23.5 / 21.8 / 21.1 ms, one chunk 29.2 ms, full
# logits through autodiff 27.5 ms.
CPU_CHUNK_LOGITS = 2**20


def _chunk_stats(x_RxD, head_DxV, t_R, w_R, with_grad: bool):
    """Loss terms of one chunk of R rows; with `with_grad` also d(Σ w·nll)/d(x, head)."""
    logits = jnp.dot(x_RxD, head_DxV, preferred_element_type=jnp.float32)
    nll, correct, e, z = softmax_terms(logits, t_R)
    stats = jnp.stack([jnp.sum(nll * w_R), jnp.sum(correct * w_R), jnp.sum(jnp.square(logits))])
    if not with_grad:
        return stats, None, None
    d = ((e / z - jax.nn.one_hot(t_R, head_DxV.shape[1], dtype=jnp.float32)) * w_R[:, None]).astype(x_RxD.dtype)
    dx = jnp.dot(d, head_DxV.T, preferred_element_type=jnp.float32).astype(x_RxD.dtype)
    dhead = weight_grad(x_RxD, d, preferred_element_type=jnp.float32)
    return stats, dx, dhead


def _scan_chunks(x_NxBxCxD, head_DxV, t_NxBxC, w_NxBxC, with_grad: bool):
    d = x_NxBxCxD.shape[-1]

    def body(carry, chunk):
        x, t, w = chunk
        stats, dx, dhead = _chunk_stats(x.reshape(-1, d), head_DxV, t.reshape(-1), w.reshape(-1), with_grad)
        if not with_grad:
            return (carry[0] + stats,), None
        return (carry[0] + stats, carry[1] + dhead), dx.reshape(x.shape)

    init = (jnp.zeros(3, jnp.float32),) + ((jnp.zeros(head_DxV.shape, jnp.float32),) if with_grad else ())
    carry, dx = jax.lax.scan(body, init, (x_NxBxCxD, t_NxBxC, w_NxBxC))
    return carry, dx


@jax.custom_vjp
def _fused_head_loss(x_NxBxCxD, head_DxV, t_NxBxC, w_NxBxC):
    """[Σ w·nll, Σ w·correct, Σ logits²]; only the first is differentiated (the others are constants)."""
    return _scan_chunks(x_NxBxCxD, head_DxV, t_NxBxC, w_NxBxC, with_grad=False)[0][0]


def _fused_fwd(x_NxBxCxD, head_DxV, t_NxBxC, w_NxBxC):
    (stats, dhead), dx = _scan_chunks(x_NxBxCxD, head_DxV, t_NxBxC, w_NxBxC, with_grad=True)
    return stats, (dx, dhead.astype(head_DxV.dtype))


def _fused_bwd(residuals, g_stats):
    dx, dhead = residuals
    g = g_stats[0]
    return dx * g.astype(dx.dtype), dhead * g.astype(dhead.dtype), None, None


_fused_head_loss.defvjp(_fused_fwd, _fused_bwd)


def head_cross_entropy(
    x_BxTxD: Float[Array, "B T D"],
    head_DxV: Float[Array, "D V"],
    targets_BxT: Int[Array, "B T"],
    mask_BxT: Array | None = None,
    *,
    chunk_tokens: int | None = None,
) -> tuple[Float[Array, ""], dict[str, Array]]:
    """`cross_entropy(x @ head, targets, mask)` without the `[B, T, V]` logits, fused with its gradient.

    **Arguments:**
    - `x_BxTxD`: the head's input (after the final norm); `head_DxV` (cast to the dtype of `x`).
    - `targets_BxT` int; `mask_BxT` `[B, T]` weights (default all ones; it gets no gradient).
    - `chunk_tokens`: tokens (rows of logits) per chunk, split along T (each chunk holds every batch row,
      so data-parallel sharding is kept). Default: about `CPU_CHUNK_LOGITS / V`. T is padded (with zero
      weight) to a multiple of the chunk.

    **Returns:** `(mean_loss, aux)` as `cross_entropy`. Only `mean_loss` is differentiable: `accuracy` and
    `logit_rms` are constants to autodiff. Reverse mode only (a custom VJP: no `jax.jvp`).
    """
    b, t, d = x_BxTxD.shape
    v = head_DxV.shape[1]
    head_DxV = head_DxV.astype(x_BxTxD.dtype)
    if chunk_tokens is None:
        chunk_tokens = max(1, CPU_CHUNK_LOGITS // v)
    if chunk_tokens < 1:
        raise ValueError(f"chunk_tokens must be >= 1, got {chunk_tokens}")
    c = max(1, min(t, chunk_tokens // b))
    n = -(-t // c)
    mask = jnp.ones((b, t), jnp.float32) if mask_BxT is None else mask_BxT.astype(jnp.float32)
    n_tokens = jnp.sum(mask)
    weights = mask / jnp.maximum(n_tokens, 1.0)
    pad = n * c - t
    if pad:
        x_BxTxD = jnp.pad(x_BxTxD, ((0, 0), (0, pad), (0, 0)))
        targets_BxT = jnp.pad(targets_BxT, ((0, 0), (0, pad)))
        weights = jnp.pad(weights, ((0, 0), (0, pad)))

    def chunks(a):  # [B, n·c, ...] -> [n, B, c, ...]
        return jnp.swapaxes(a.reshape(b, n, c, *a.shape[2:]), 0, 1)

    stats = _fused_head_loss(chunks(x_BxTxD), head_DxV, chunks(targets_BxT), chunks(weights))
    return stats[0], loss_aux(stats[0], stats[1], n_tokens, stats[2], b * t * v)
