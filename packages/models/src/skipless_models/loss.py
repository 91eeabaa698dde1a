"""The training loss: next-token cross-entropy of a `Transformer`, its head and loss computed by the model's operations.

`loss_fn` runs the model's forward pass (`Transformer.hidden`, the one `__call__` runs too) and hands the head's input
to `Ops.head_loss`: plain `cross_entropy` over the full logits, or on CPU `head_cross_entropy`, which never
materialises the `[B, T, V]` logits (head and loss fused and chunked with a hand-written gradient; see
`skipless_models.ops.cpu_head_loss`).
"""

from __future__ import annotations

import jax
from jaxtyping import Array, Float, Int

from skipless_models.cross_entropy import cross_entropy
from skipless_models.ops import head_cross_entropy
from skipless_models.transformer import Transformer

__all__ = ["cross_entropy", "head_cross_entropy", "loss_fn"]


def loss_fn(
    model: Transformer, tokens_BxTp1: Int[Array, "B Tp1"], mask: Array | None = None
) -> tuple[Float[Array, ""], dict[str, Array]]:
    """Next-token loss: inputs `tokens[:, :-1]`, targets `tokens[:, 1:]`.

    **Arguments:**
    - `model`: a `Transformer` (its `ops` compute the head and loss).
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
    x_BxTxD = model.hidden(inputs)
    with jax.named_scope("head_loss"):
        return model.ops.head_loss(x_BxTxD, model.head, targets, mask)
