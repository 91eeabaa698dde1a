"""Incremental decoding: the transformer's forward pass over new positions only, with a key/value cache.

`decode_step(model, cache, tokens_BxN, positions_BxN)` runs N new tokens per row (N = the prompt for the first
call, then 1 per step) at their own positions, writes their keys and values into the cache and attends to every
cached position at or before each query. Its logits equal the full forward pass `model(tokens)` at those positions.

Nothing of the model's maths is restated here. Each block runs through its own `Block.trace` (so every block
arrangement is covered as it is defined there) with its attention sub-layer swapped for `CachedAttention`, which
uses the layer's own projections (`Attention._qkv`, RoPE at the tokens' positions), Value-SkipInit gains
(`Attention._gains`) and output projection (`Attention._out`), and `pallas_kernels.attention_reference` for the
softmax. SPA layers get the bias row and row scale of each query position from their two schedule numbers
(`pallas_kernels.spa_row`): nothing of size T × T is stored or sliced.

Positions are per row: a batch of prompts of different lengths is stored left-aligned (row b's token t at slot t),
each row continuing at its own next position, so padding never shifts a sequence's positions (which SPA's bias,
RoPE and learned positions all depend on). Padding tokens past a row's end write keys and values into slots that the
row overwrites before any query of its own can see them.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import pallas_kernels
from pallas_kernels.spa import MASK_VALUE
from jaxtyping import Array, Float, Int

from skipless_models.ops import PLAIN_OPS, Ops
from skipless_models.transformer import Transformer


class KVCache(eqx.Module):
    """Keys and values of every layer at every cached position: `keys`, `values` `[L, B, S, H, K]` (compute dtype)."""

    keys: Float[Array, "L B S H K"]
    values: Float[Array, "L B S H K"]

    @property
    def length(self) -> int:
        return self.keys.shape[2]


def init_cache(model: Transformer, batch: int, length: int) -> KVCache:
    """An empty cache for `batch` rows of up to `length` positions. **Returns:** `KVCache` of zeros."""
    cfg = model.config
    if not cfg.causal:
        raise ValueError("decoding needs a causal model: a non-causal (encoder) model's earlier outputs change with "
                         "every new token")
    shape = (cfg.depth, batch, length, cfg.heads, cfg.head_dim)
    zeros = jnp.zeros(shape, jnp.dtype(cfg.compute_dtype))
    return KVCache(keys=zeros, values=zeros)


class CachedAttention:
    """Stands in for a block's `Attention` during one decoding call: same sub-computations, keys and values from the
    cache. After the call, `keys` / `values` hold the layer's cache with the new positions written."""

    def __init__(self, attention, keys_BxSxHxK, values_BxSxHxK, positions_BxN, spa: pallas_kernels.SpaSpec | None):
        self.attention, self.keys, self.values = attention, keys_BxSxHxK, values_BxSxHxK
        self.positions, self.spa = positions_BxN, spa

    def __call__(self, x_BxNxD, spa=None, *, ops: Ops = PLAIN_OPS):
        att = self.attention
        q, k, v = att._qkv(x_BxNxD, self.positions, ops=ops)
        write = jax.vmap(lambda cache, at, new: cache.at[at].set(new.astype(cache.dtype)))
        self.keys, self.values = write(self.keys, self.positions, k), write(self.values, self.positions, v)
        slots = self.keys.shape[1]
        if self.spa is None:
            bias = jnp.where(jnp.arange(slots) <= self.positions[..., None], 0.0, MASK_VALUE)
            scale = None
        else:
            bias, scale = pallas_kernels.spa_row(self.spa, self.positions, slots)  # [B, N, S], [B, N]
            scale = scale[:, None]
        heads = pallas_kernels.attention_reference(
            q, self.keys, self.values, bias=bias[:, None], row_scale=scale, causal=False
        )
        if att.kind == "value_skipinit":
            alpha, beta = att._gains()
            heads = (alpha * v.astype(jnp.float32) + beta * heads.astype(jnp.float32)).astype(v.dtype)
        return att._out(heads, ops=ops)


def embed_at(model: Transformer, tokens_BxN: Int[Array, "B N"], positions_BxN: Int[Array, "B N"]) -> Array:
    """Token (+ learned position) embeddings of tokens at the given positions, in the compute dtype: what
    `Transformer.embed_tokens` gives for positions 0 … N−1. **Returns:** `[B, N, D]`."""
    x = jnp.take(model.embed, tokens_BxN, axis=0)
    if model.pos_embed is not None:
        x = x + jnp.take(model.pos_embed, positions_BxN, axis=0)
    return x.astype(jnp.dtype(model.config.compute_dtype))


def decode_step(
    model: Transformer, cache: KVCache, tokens_BxN: Int[Array, "B N"], positions_BxN: Int[Array, "B N"]
) -> tuple[Float[Array, "B N V"], KVCache]:
    """The model on N new tokens per row at `positions_BxN` (each < `cache.length`), attending to the cache.

    **Arguments:** `model`; `cache` (from `init_cache` or a previous call); `tokens_BxN` int; `positions_BxN` int,
    the tokens' positions (every earlier position of the row must already be in the cache or among the new tokens).

    **Returns:** `(logits [B, N, V] float32, cache with the new keys and values)`.
    """
    params, static = eqx.partition(model.blocks, eqx.is_array)
    numbers = model.spa_numbers()
    kind = model.config.attention

    def layer(x, inputs):
        block_params, spa_numbers, keys, values = inputs
        block = eqx.combine(block_params, static)
        spa = None if spa_numbers is None else pallas_kernels.SpaSpec(spa_numbers[0], spa_numbers[1], kind)
        cached = CachedAttention(block.attention, keys, values, positions_BxN, spa)
        _, x = eqx.tree_at(lambda b: b.attention, block, cached).trace(x, ops=model.ops)
        return x, (cached.keys, cached.values)

    x = embed_at(model, tokens_BxN, positions_BxN)
    x, (keys, values) = jax.lax.scan(layer, x, (params, numbers, cache.keys, cache.values))
    return model.readout(x), KVCache(keys=keys, values=values)
