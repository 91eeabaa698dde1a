"""The decoder-only transformer: embeddings → L blocks (stacked, run with `lax.scan`) → vocabulary head."""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pallas_kernels
from jaxtyping import Array, Float, Int

from skipless_models.block import Block
from skipless_models.config import ModelConfig
from skipless_models.dense import head_logits
from skipless_models.norm import Norm
from skipless_models.ops import PLAIN_OPS, Ops, select_ops

_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


class Transformer(eqx.Module):
    """A decoder-only transformer whose variant is its `config`.

    **Fields:**
    - `embed` `[V, D]`; `pos_embed` `[T, D]` (learned positions only, else `None`).
    - `blocks`: one `Block` whose array leaves carry a leading depth axis `[L, ...]`.
    - `final_norm` (Pre-LN and skipless+LN only, else `None`); `head` `[D, V]` (untied).
    - `config`: the `ModelConfig` (static).
    - `spa_levels`: SPA models only (else `None`), static: the schedule γ_0 = inf, γ_1, …, γ_L (E-SPA) or
      ρ_0 = 0, ρ_1, …, ρ_L (U-SPA) from `sigprop`. Layer l's attention bias and row scale are closed-form
      functions of (level[l−1], level[l]) and the positions, generated where attention runs: these L + 1
      numbers are all a model keeps of them (not parameters: nothing to train, checkpoint or shard).
    - `ops`: static, the operations every module computes with (`skipless_models.ops`), chosen once by
      `build_model`; `with_ops` swaps them (e.g. the plain ones for forward-mode autodiff).
    """

    embed: Float[Array, "V D"]
    pos_embed: Float[Array, "T D"] | None
    blocks: Block
    final_norm: Norm | None
    head: Float[Array, "D V"]
    config: ModelConfig = eqx.field(static=True)
    spa_levels: tuple[float, ...] | None = eqx.field(static=True, default=None)
    ops: Ops = eqx.field(static=True, default=PLAIN_OPS)

    def with_ops(self, ops: str | Ops) -> Transformer:
        """The same model (same arrays) computing with other operations: "plain", "cpu", "auto" or an `Ops`."""
        return dataclasses.replace(self, ops=select_ops(ops))

    # ----- pieces -----------------------------------------------------------------------------------
    def spa_numbers(self) -> Float[Array, "L 2"] | None:
        """Each layer's SPA schedule numbers as the attention takes them: `[level, step]` per layer, with the step
        (γ_{l−1} − γ_l, inf for layer 1; ρ_l − ρ_{l−1}) taken in float64 before rounding. None without SPA."""
        if self.spa_levels is None:
            return None
        levels = np.asarray(self.spa_levels, np.float64)
        steps = levels[:-1] - levels[1:] if self.config.attention == "espa" else levels[1:] - levels[:-1]
        return jnp.asarray(np.stack([levels[1:], steps], axis=1), jnp.float32)

    def spa_tables(self, seq_len: int) -> pallas_kernels.SpaTables | None:
        """Every layer's generated-bias inputs at `seq_len`, prepared in one vectorised computation (leading axis
        L; O(L·T): E-SPA `[L, 8]` coefficients, U-SPA `[L, 4, T]` vectors, and `[L, T]` row scales). None
        without SPA. Each layer step of `run_blocks` receives its slice and builds its `[T, T]` bias from it."""
        numbers = self.spa_numbers()
        if numbers is None:
            return None
        kind, causal = self.config.attention, self.config.causal

        def prepare(layer):
            spec = pallas_kernels.SpaSpec(level=layer[0], step=layer[1], kind=kind)
            return pallas_kernels.spa_prepare(spec, seq_len, causal=causal)

        return jax.vmap(prepare)(numbers)

    def embed_tokens(self, tokens_BxT: Int[Array, "B T"]) -> Float[Array, "B T D"]:
        """Token (+ learned position) embeddings in the compute dtype. **Returns:** `[B, T, D]`.

        Any length works except with learned positions, which exist up to `config.seq_len` only."""
        t = tokens_BxT.shape[-1]
        if self.pos_embed is not None and t > self.pos_embed.shape[0]:
            raise ValueError(
                f"sequence length {t} exceeds the {self.pos_embed.shape[0]} learned position embeddings; "
                "feed shorter sequences, or use position='none' or 'rope' (any length)"
            )
        x = jnp.take(self.embed, tokens_BxT, axis=0)
        if self.pos_embed is not None:
            x = x + self.pos_embed[:t]
        return x.astype(_DTYPES[self.config.compute_dtype])

    def run_blocks(self, x_BxTxD: Float[Array, "B T D"]) -> Float[Array, "B T D"]:
        """All L blocks under one `lax.scan` (`config.resolved_scan_unroll` layers per iteration). **Returns:** `[B, T, D]`."""
        params, static = eqx.partition(self.blocks, eqx.is_array)

        def step(x, layer):
            layer_params, spa = layer
            return eqx.combine(layer_params, static)(x, spa, ops=self.ops), None

        if self.config.remat:
            step = jax.checkpoint(step)
        unroll = self.config.resolved_scan_unroll
        layers = (params, self.spa_tables(x_BxTxD.shape[1]))
        x_BxTxD, _ = jax.lax.scan(step, x_BxTxD, layers, unroll=True if unroll == self.config.depth else unroll)
        return x_BxTxD

    def features(self, x_BxTxD: Float[Array, "B T D"]) -> Float[Array, "B T D"]:
        """The final norm (identity without one): what the vocabulary head reads. **Returns:** `[B, T, D]`."""
        return x_BxTxD if self.final_norm is None else self.final_norm(x_BxTxD, ops=self.ops)

    def readout(self, x_BxTxD: Float[Array, "B T D"]) -> Float[Array, "B T V"]:
        """Final norm (if any) and vocabulary head as one 2-D matmul. **Returns:** float32 logits."""
        return head_logits(self.features(x_BxTxD), self.head)

    # ----- forward ----------------------------------------------------------------------------------
    @jax.named_scope("transformer")
    def hidden(self, tokens_BxT: Int[Array, "B T"]) -> Float[Array, "B T D"]:
        """The forward pass up to the vocabulary head: embeddings → blocks → final norm (what the head reads).
        `__call__` and `loss_fn` both run it. **Returns:** `[B, T, D]` in the compute dtype."""
        return self.features(self.run_blocks(self.embed_tokens(tokens_BxT)))

    def __call__(self, tokens_BxT: Int[Array, "B T"]) -> Float[Array, "B T V"]:
        """**Arguments:** `tokens_BxT` int `[B, T]`, any T (≤ seq_len with learned positions).
        **Returns:** float32 logits `[B, T, V]`."""
        return head_logits(self.hidden(tokens_BxT), self.head)

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

        def step(x, layer):
            layer_params, spa = layer
            block = eqx.combine(layer_params, static)
            attn = block.attention.attention_matrix(block.attention_input(x, ops=self.ops), spa)
            x_attn, x_mlp = block.trace(x, spa, ops=self.ops)
            return x_mlp, (x_attn, x_mlp, attn)

        _, (after_attention, after_mlp, attention) = jax.lax.scan(step, x, (params, self.spa_tables(x.shape[1])))
        return {"input": x, "after_attention": after_attention, "after_mlp": after_mlp, "attention": attention}
