"""Next-token cross-entropy, computed in float32 from the model's logits.

`loss_fn` (the training loss) never materialises the `[B, T, V]` logits: `head_cross_entropy` runs the
vocabulary head and the softmax cross-entropy chunk by chunk along T, and computes the gradient of the
loss with respect to the head's input and weight in the same pass (a custom VJP), so the backward pass
neither stores nor re-reads the logits. On this project's 2-core CPU the head and loss of the cpu-tiny
shape (2,048 tokens, D 128, V 4,096, forward and backward) take 21.8 ms this way against 27.5 ms through
autodiff over full logits: `[rows, V]` chunks of about 4 MiB stay in cache. On other backends the
default is one chunk (no loop), which keeps the fused gradient and the memory saving.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from skipless_models.dense import weight_grad
from skipless_models.transformer import Transformer

# Logit elements per chunk on CPU (float32 [rows, V] of 4 MiB): 256 tokens at V = 4096. Measured on
# 2,048 tokens × V 4,096 (idle 2-core machine): 128 / 256 / 512 tokens per chunk 23.5 / 21.8 / 21.1 ms,
# one chunk 29.2 ms, full logits through autodiff 27.5 ms.
CPU_CHUNK_LOGITS = 2**20


def _aux(loss, accuracy, n_tokens, sumsq, n_logits) -> dict[str, Array]:
    return {"loss": loss, "accuracy": accuracy, "n_tokens": n_tokens, "logit_rms": jnp.sqrt(sumsq / n_logits)}


def _softmax_terms(logits, targets):
    """Per row: `(nll, correct, e, z)` with `e = exp(logits − max)`, `z = Σ e` (float32 logits).

    The max is a constant to autodiff (as in `jax.nn.logsumexp`), so differentiating `nll` is exact.
    `correct` is 1 where the target's logit is the row's maximum: top-1 accuracy, with a tie for the top
    counted as a hit (float32 logits of a trained or randomly initialised head do not tie in practice).
    It reuses the max and the target logit the loss needs, where an argmax costs one more pass over
    `[rows, V]` (XLA CPU's own argmax, a two-operand reduce, took 38 ms on 2,048 × 4,096 logits here; a
    compare-and-min fused with the max, the previous form, 1-2 ms of the cpu-tiny train step).
    """
    top = jax.lax.stop_gradient(jnp.max(logits, axis=-1, keepdims=True))
    e = jnp.exp(logits - top)
    z = jnp.sum(e, axis=-1, keepdims=True)
    target_logit = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
    nll = (top[..., 0] + jnp.log(z[..., 0])) - target_logit
    correct = (target_logit >= top[..., 0]).astype(jnp.float32)
    return nll, correct, e, z


def cross_entropy(
    logits_BxTxV: Float[Array, "B T V"], targets_BxT: Int[Array, "B T"], mask_BxT: Array | None = None
) -> tuple[Float[Array, ""], dict[str, Array]]:
    """Masked mean cross-entropy.

    **Arguments:** `logits_BxTxV` `[B, T, V]`, `targets_BxT` int `[B, T]`, `mask_BxT` `[B, T]`
    (1 = counted; default all ones).

    **Returns:** `(mean_loss, aux)` with aux keys `loss`, `accuracy`, `n_tokens`, `logit_rms` (scalars).
    """
    logits = logits_BxTxV.astype(jnp.float32)
    nll_BxT, correct, _, _ = _softmax_terms(logits, targets_BxT)
    mask = jnp.ones_like(nll_BxT) if mask_BxT is None else mask_BxT.astype(jnp.float32)
    n_tokens = jnp.sum(mask)
    denom = jnp.maximum(n_tokens, 1.0)
    loss = jnp.sum(nll_BxT * mask) / denom
    sumsq = jnp.sum(jnp.square(jax.lax.stop_gradient(logits)))
    return loss, _aux(loss, jnp.sum(correct * mask) / denom, n_tokens, sumsq, logits.size)


def _chunk_stats(x_RxD, head_DxV, t_R, w_R, with_grad: bool):
    """Loss terms of one chunk of R rows; with `with_grad` also d(Σ w·nll)/d(x, head)."""
    logits = jnp.dot(x_RxD, head_DxV, preferred_element_type=jnp.float32)
    nll, correct, e, z = _softmax_terms(logits, t_R)
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
    - `x_BxTxD`: the head's input (after the final norm); `head_DxV` in the same dtype.
    - `targets_BxT` int; `mask_BxT` `[B, T]` weights (default all ones; it gets no gradient).
    - `chunk_tokens`: tokens (rows of logits) per chunk, split along T (each chunk holds every batch row,
      so data-parallel sharding is kept). Default: about `CPU_CHUNK_LOGITS / V` on CPU, all of them
      elsewhere. T is padded (with zero weight) to a multiple of the chunk.

    **Returns:** `(mean_loss, aux)` as `cross_entropy`. Only `mean_loss` is differentiable: `accuracy` and
    `logit_rms` are constants to autodiff. Reverse mode only (a custom VJP: no `jax.jvp`).
    """
    b, t, d = x_BxTxD.shape
    v = head_DxV.shape[1]
    if chunk_tokens is None:
        chunk_tokens = max(1, CPU_CHUNK_LOGITS // v) if jax.default_backend() == "cpu" else b * t
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
    return stats[0], _aux(stats[0], stats[1], n_tokens, stats[2], b * t * v)


def loss_fn(
    model: Transformer,
    tokens_BxTp1: Int[Array, "B Tp1"],
    mask: Array | None = None,
    *,
    chunk_tokens: int | None = None,
) -> tuple[Float[Array, ""], dict[str, Array]]:
    """Next-token loss: inputs `tokens[:, :-1]`, targets `tokens[:, 1:]`.

    **Arguments:**
    - `model`: a `Transformer`.
    - `tokens_BxTp1`: int `[B, T+1]`, T ≤ seq_len.
    - `mask`: optional `[B, T]` weights on the targets (e.g. 0 on padding), or `[B, T+1]` (the first
      column is dropped).
    - `chunk_tokens`: see `head_cross_entropy` (the head and loss run fused, chunk by chunk).

    **Returns:** `(mean_loss, aux)`; aux holds `loss`, `accuracy`, `n_tokens`, `logit_rms`.
    """
    if tokens_BxTp1.ndim != 2 or tokens_BxTp1.shape[1] < 2:
        raise ValueError(f"loss_fn expects tokens [B, T+1] with T >= 1, got shape {tokens_BxTp1.shape}")
    inputs, targets = tokens_BxTp1[:, :-1], tokens_BxTp1[:, 1:]
    if mask is not None and mask.shape[1] == tokens_BxTp1.shape[1]:
        mask = mask[:, 1:]
    if mask is not None and mask.shape != targets.shape:
        raise ValueError(f"mask shape {mask.shape} must be [B, T] = {targets.shape} (or [B, T+1])")
    with jax.named_scope("transformer"):
        x_BxTxD = model.features(model.run_blocks(model.embed_tokens(inputs)))
    with jax.named_scope("head_loss"):
        return head_cross_entropy(x_BxTxD, model.head.astype(x_BxTxD.dtype), targets, mask, chunk_tokens=chunk_tokens)
