"""skipless_models: an Equinox decoder-only transformer whose skipless variants are configuration.

Public API:
- `ModelConfig`, `PRESETS` (named setups: model and run shape), `get_preset(name)`, `preset(name, **overrides)`; `MODEL_FORMAT_VERSION`, `check_checkpoint_format`
  (call it on a run's saved model config before restoring its checkpoints)
- `build_model(config, *, key, ops="auto") -> Transformer`; `Transformer.__call__(tokens) -> logits`,
  `Transformer.intermediates(inputs)` (per-layer representations and attention matrices)
- `loss_fn(model, tokens_BxTp1, mask=None) -> (loss, aux)`, `cross_entropy`, `head_cross_entropy` (the
  vocabulary head and loss fused, chunked, with a hand-written gradient)
- `init_cache(model, batch, length)`, `decode_step(model, cache, tokens, positions)`: incremental decoding with a
  key/value cache (`skipless_models.decode`)
- `Ops`, `PLAIN_OPS`, `CPU_OPS`, `select_ops`: the operations a model computes with (plain JAX, or the CPU ones with
  hand-written backward passes), chosen once by `build_model`; `Transformer.with_ops` swaps them
- `param_groups(model)`, `partition_specs(model, mesh=None)`, `check_mesh_compatible(config, mesh_shape)`
- `model_flops_per_token(config)`, `matmul_params(config)`
- theory at init (from `sigprop`): `predicted_final_cosine(config)`, `predicted_kernels(config)`,
  `attention_at_init(config)`, `spa_levels(config)` (the schedule a model keeps), `spa_layers(config)`,
  `tat_alpha(config)`, `describe(config)`
"""

from skipless_models.attend import attend, resolve_impl
from skipless_models.attention import Attention
from skipless_models.block import Block
from skipless_models.build import build_model, describe
from skipless_models.config import MODEL_FORMAT_VERSION, ModelConfig, check_checkpoint_format
from skipless_models.decode import KVCache, decode_step, init_cache
from skipless_models.flops import matmul_params, model_flops_per_token
from skipless_models.loss import cross_entropy, head_cross_entropy, loss_fn
from skipless_models.mlp import MLP
from skipless_models.norm import Norm
from skipless_models.ops import CPU_OPS, PLAIN_OPS, Ops, select_ops
from skipless_models.param_groups import GROUPS, param_groups
from skipless_models.presets import PRESET_NAMES, PRESETS, Preset, PresetName, RunShape, get_preset, preset
from skipless_models.sharding import check_mesh_compatible, partition_specs
from skipless_models.theory import (
    attention_at_init,
    predicted_final_cosine,
    predicted_kernels,
    residual_branch_weight,
    spa_layers,
    spa_levels,
    tat_alpha,
    theory_applies,
)
from skipless_models.transformer import Transformer

__all__ = [
    "CPU_OPS",
    "GROUPS",
    "KVCache",
    "MODEL_FORMAT_VERSION",
    "MLP",
    "PRESETS",
    "PRESET_NAMES",
    "Preset",
    "PresetName",
    "RunShape",
    "get_preset",
    "Attention",
    "Block",
    "ModelConfig",
    "Norm",
    "Ops",
    "PLAIN_OPS",
    "Transformer",
    "attend",
    "attention_at_init",
    "build_model",
    "check_checkpoint_format",
    "check_mesh_compatible",
    "cross_entropy",
    "decode_step",
    "describe",
    "head_cross_entropy",
    "init_cache",
    "loss_fn",
    "matmul_params",
    "model_flops_per_token",
    "param_groups",
    "partition_specs",
    "predicted_final_cosine",
    "predicted_kernels",
    "preset",
    "residual_branch_weight",
    "resolve_impl",
    "select_ops",
    "spa_layers",
    "spa_levels",
    "tat_alpha",
    "theory_applies",
]
