"""`build_model(config, key=...)`: initialise a `Transformer` for any variant of `ModelConfig`."""

from __future__ import annotations

import math
import warnings

import equinox as eqx
import jax
from jaxtyping import PRNGKeyArray

from skipless_models.attend import resolve_impl
from skipless_models.attention import Attention
from skipless_models.block import Block
from skipless_models.config import ModelConfig
from skipless_models.initialisers import normal
from skipless_models.mlp import MLP
from skipless_models.norm import Norm
from skipless_models.ops import Ops, select_ops
from skipless_models.theory import predicted_final_cosine, residual_branch_weight, spa_levels, tat_alpha
from skipless_models.transformer import Transformer

# Embedding / head std per init scheme [our choice]: unit-RMS token embeddings give Σ_0 ≈ I for the
# signal-propagation inits; GPT-2 uses 0.02 (0.01 for positions).
_EMBED_STD = {"gpt2": 0.02, "fan_in": 1.0, "sigprop": 1.0}
_POS_STD = {"gpt2": 0.01, "fan_in": 0.1, "sigprop": 0.1}


def _init_blocks(config: ModelConfig, key: PRNGKeyArray) -> Block:
    init = config.resolved_init
    alpha = tat_alpha(config)
    branch_weight = residual_branch_weight(config) if config.block == "nf_residual" else 1.0

    def make_block(k):
        k_attn, k_mlp = jax.random.split(k)
        attention = Attention(
            width=config.width, heads=config.heads, kind=config.attention,
            causal=config.causal, rope=config.position == "rope", impl=config.attention_impl, init=init,
            depth=config.depth, wk_init_scale=config.wk_init_scale,
            per_head_gains=config.value_skipinit_per_head, key=k_attn,
        )
        mlp = None
        if config.use_mlp:
            mlp = MLP(
                config.width, config.mlp_width, activation=config.mlp_activation, alpha=alpha, init=init,
                depth=config.depth, key=k_mlp,
            )
        return Block(attention, mlp, kind=config.block, norm=config.norm, width=config.width,
                     branch_weight=branch_weight)

    return eqx.filter_vmap(make_block)(jax.random.split(key, config.depth))


def _init_model(config: ModelConfig, key: PRNGKeyArray, ops: Ops) -> Transformer:
    """The initialisation: random parameters, and for SPA the schedule numbers from `sigprop`."""
    init = config.resolved_init
    k_embed, k_pos, k_blocks, k_head = jax.random.split(key, 4)
    embed = normal(k_embed, (config.vocab_size, config.width), _EMBED_STD[init])
    pos_embed = None
    if config.position == "learned":
        pos_embed = normal(k_pos, (config.seq_len, config.width), _POS_STD[init])
    head_std = 0.02 if init == "gpt2" else config.width**-0.5
    head = normal(k_head, (config.width, config.vocab_size), head_std)
    final_norm = Norm(config.width, config.norm) if config.block in ("preln", "skipless_ln") else None
    return Transformer(
        embed=embed, pos_embed=pos_embed, blocks=_init_blocks(config, k_blocks), final_norm=final_norm,
        head=head, config=config, spa_levels=spa_levels(config) if config.is_spa else None, ops=ops,
    )


def describe(config: ModelConfig) -> str:
    """One line naming the variant and the theory's predicted final-layer mean cosine."""
    cos = predicted_final_cosine(config)
    cos_text = f"{cos:.3f}" if not math.isnan(cos) else "n/a (theory needs a block without skips or a norm-free one, W_Q = 0)"
    if config.block == "nf_residual":
        cos_text += f", residual branch weight b = {residual_branch_weight(config):.4f}"
    return (
        f"skipless_models: {config.block}/{config.attention}/{config.mlp_activation if config.use_mlp else 'no-mlp'} "
        f"L={config.depth} D={config.width} T={config.seq_len} init={config.resolved_init} "
        f"attention_impl={resolve_impl(config.attention_impl)}; predicted final-layer mean cosine = {cos_text}"
    )


def build_model(
    config: ModelConfig, *, key: PRNGKeyArray, verbose: bool = True, ops: str | Ops = "auto"
) -> Transformer:
    """Initialise a transformer.

    **Arguments:**
    - `config`: a `ModelConfig`.
    - `key`: PRNG key (keyword-only).
    - `verbose`: print the variant and its predicted final-layer mean cosine.
    - `ops`: the operations the modules compute with (`skipless_models.ops.select_ops`): "auto" (the CPU
      operations on the CPU backend, the plain ones elsewhere), "plain" (forward-mode autodiff works) or "cpu".

    **Returns:** a `Transformer` with float32 parameters and blocks stacked along a leading depth axis.
    """
    if not isinstance(config, ModelConfig):
        raise TypeError(f"build_model expects a ModelConfig, got {type(config).__name__}")
    if config.position == "learned" and config.is_spa:
        warnings.warn(
            "learned additive position embeddings change the input kernel Σ_0 away from I, which SPA "
            "attention assumes; use position='none' or 'rope' with SPA",
            stacklevel=2,
        )
    # Op by op (or traced, under the caller's jit / eval_shape): eager primitives are compiled once per
    # shape and cached, which beats compiling one init program per configuration.
    model = _init_model(config, key, select_ops(ops))
    if verbose:
        print(describe(config), flush=True)
    return model
