"""The decoder-only transformer: embeddings → L blocks (stacked, run with `lax.scan`) → vocabulary head."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from skipless_models.block import Block
from skipless_models.config import ModelConfig
from skipless_models.norm import Norm

_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


class Transformer(eqx.Module):
    """A decoder-only transformer whose variant is its `config`.

    **Fields:**
    - `embed` `[V, D]`; `pos_embed` `[T, D]` (learned positions only, else `None`).
    - `blocks`: one `Block` whose array leaves carry a leading depth axis `[L, ...]`.
    - `final_norm` (Pre-LN and skipless+LN only, else `None`); `head` `[D, V]` (untied).
    - `config`: the `ModelConfig` (static).
    """

    embed: Float[Array, "V D"]
    pos_embed: Float[Array, "T D"] | None
    blocks: Block
    final_norm: Norm | None
    head: Float[Array, "D V"]
    config: ModelConfig = eqx.field(static=True)

    # ----- pieces -----------------------------------------------------------------------------------
    def embed_tokens(self, tokens_BxT: Int[Array, "B T"]) -> Float[Array, "B T D"]:
        """Token (+ learned position) embeddings in the compute dtype. **Returns:** `[B, T, D]`."""
        t = tokens_BxT.shape[-1]
        if t > self.config.seq_len:
            raise ValueError(
                f"sequence length {t} exceeds the model's seq_len={self.config.seq_len}; "
                "build the model with a larger seq_len or feed shorter sequences"
            )
        x = jnp.take(self.embed, tokens_BxT, axis=0)
        if self.pos_embed is not None:
            x = x + self.pos_embed[:t]
        return x.astype(_DTYPES[self.config.compute_dtype])

    def run_blocks(self, x_BxTxD: Float[Array, "B T D"]) -> Float[Array, "B T D"]:
        """All L blocks under one `lax.scan` (`config.resolved_scan_unroll` layers per iteration). **Returns:** `[B, T, D]`."""
        params, static = eqx.partition(self.blocks, eqx.is_array)

        def step(x, layer_params):
            return eqx.combine(layer_params, static)(x), None

        if self.config.remat:
            step = jax.checkpoint(step)
        unroll = self.config.resolved_scan_unroll
        x_BxTxD, _ = jax.lax.scan(step, x_BxTxD, params, unroll=True if unroll == self.config.depth else unroll)
        return x_BxTxD

    def features(self, x_BxTxD: Float[Array, "B T D"]) -> Float[Array, "B T D"]:
        """The final norm (identity without one): what the vocabulary head reads. **Returns:** `[B, T, D]`."""
        return x_BxTxD if self.final_norm is None else self.final_norm(x_BxTxD)

    def readout(self, x_BxTxD: Float[Array, "B T D"]) -> Float[Array, "B T V"]:
        """Final norm (if any) and vocabulary head as one 2-D matmul. **Returns:** float32 logits."""
        x_BxTxD = self.features(x_BxTxD)
        b, t, d = x_BxTxD.shape
        logits = jnp.dot(
            x_BxTxD.reshape(b * t, d), self.head.astype(x_BxTxD.dtype), preferred_element_type=jnp.float32
        )
        return logits.reshape(b, t, -1)

    # ----- forward ----------------------------------------------------------------------------------
    @jax.named_scope("transformer")
    def __call__(self, tokens_BxT: Int[Array, "B T"]) -> Float[Array, "B T V"]:
        """**Arguments:** `tokens_BxT` int `[B, T]`, T ≤ seq_len. **Returns:** float32 logits `[B, T, V]`."""
        return self.readout(self.run_blocks(self.embed_tokens(tokens_BxT)))

    def intermediates(self, inputs: Int[Array, "B T"] | Float[Array, "B T D"]) -> dict[str, Array]:
        """Per-layer representations and attention matrices, for signal-propagation diagnostics.

        **Arguments:** `inputs`: int tokens `[B, T]` or float input representations `[B, T, D]`
        (fed to the first block directly, e.g. orthogonal inputs with Σ_0 = I).

        **Returns:** dict with `input` `[B, T, D]`, `after_attention` and `after_mlp` `[L, B, T, D]`
        (compute dtype), `attention` `[L, B, H, T, T]` float32 (the matrix mixing the values, see
        `Attention.attention_matrix`; computed on what the attention layer itself sees).
        """
        if jnp.issubdtype(inputs.dtype, jnp.integer):
            x = self.embed_tokens(inputs)
        else:
            x = inputs.astype(_DTYPES[self.config.compute_dtype])
        params, static = eqx.partition(self.blocks, eqx.is_array)

        def step(x, layer_params):
            block = eqx.combine(layer_params, static)
            attn = block.attention.attention_matrix(block.attention_input(x))
            x_attn, x_mlp = block.trace(x)
            return x_mlp, (x_attn, x_mlp, attn)

        _, (after_attention, after_mlp, attention) = jax.lax.scan(step, x, params)
        return {"input": x, "after_attention": after_attention, "after_mlp": after_mlp, "attention": attention}
