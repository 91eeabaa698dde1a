"""Next-token cross-entropy, computed in float32 from the model's logits."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from skipless_models.transformer import Transformer


def cross_entropy(
    logits_BxTxV: Float[Array, "B T V"], targets_BxT: Int[Array, "B T"], mask_BxT: Array | None = None
) -> tuple[Float[Array, ""], dict[str, Array]]:
    """Masked mean cross-entropy.

    **Arguments:** `logits_BxTxV` `[B, T, V]`, `targets_BxT` int `[B, T]`, `mask_BxT` `[B, T]`
    (1 = counted; default all ones).

    **Returns:** `(mean_loss, aux)` with aux keys `loss`, `accuracy`, `n_tokens`, `logit_rms` (scalars).
    """
    logits = logits_BxTxV.astype(jnp.float32)
    lse_BxT = jax.nn.logsumexp(logits, axis=-1)
    target_logit_BxT = jnp.take_along_axis(logits, targets_BxT[..., None], axis=-1)[..., 0]
    nll_BxT = lse_BxT - target_logit_BxT
    mask = jnp.ones_like(nll_BxT) if mask_BxT is None else mask_BxT.astype(jnp.float32)
    n_tokens = jnp.sum(mask)
    denom = jnp.maximum(n_tokens, 1.0)
    loss = jnp.sum(nll_BxT * mask) / denom
    correct = (jnp.argmax(logits, axis=-1) == targets_BxT).astype(jnp.float32)
    aux = {
        "loss": loss,
        "accuracy": jnp.sum(correct * mask) / denom,
        "n_tokens": n_tokens,
        "logit_rms": jnp.sqrt(jnp.mean(jnp.square(jax.lax.stop_gradient(logits)))),
    }
    return loss, aux


def loss_fn(
    model: Transformer, tokens_BxTp1: Int[Array, "B Tp1"], mask: Array | None = None
) -> tuple[Float[Array, ""], dict[str, Array]]:
    """Next-token loss: inputs `tokens[:, :-1]`, targets `tokens[:, 1:]`.

    **Arguments:**
    - `model`: a `Transformer`.
    - `tokens_BxTp1`: int `[B, T+1]`, T ≤ seq_len.
    - `mask`: optional `[B, T]` weights on the targets (e.g. 0 on padding), or `[B, T+1]` (the first
      column is dropped).

    **Returns:** `(mean_loss, aux)`; aux holds `loss`, `accuracy`, `n_tokens`, `logit_rms`.
    """
    if tokens_BxTp1.ndim != 2 or tokens_BxTp1.shape[1] < 2:
        raise ValueError(f"loss_fn expects tokens [B, T+1] with T >= 1, got shape {tokens_BxTp1.shape}")
    inputs, targets = tokens_BxTp1[:, :-1], tokens_BxTp1[:, 1:]
    if mask is not None and mask.shape[1] == tokens_BxTp1.shape[1]:
        mask = mask[:, 1:]
    if mask is not None and mask.shape != targets.shape:
        raise ValueError(f"mask shape {mask.shape} must be [B, T] = {targets.shape} (or [B, T+1])")
    return cross_entropy(model(inputs), targets, mask)
