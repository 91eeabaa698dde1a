"""Named configurations. Which numbers are the paper's and which are ours is stated per preset.

Vocabulary sizes are placeholders [our choice]: the trainer overrides `vocab_size` with its tokenizer's.
"""

from __future__ import annotations

from typing import Any

from skipless_models.config import ModelConfig

_CPU_TINY = ModelConfig(
    # [our choice] small enough to train in minutes on 2 CPU cores; vanilla E-SPA with TAT MLPs and the
    # project's default knobs (sigprop.DEFAULT_ETA / DEFAULT_GAMMA_FINAL). The layer loop is unrolled
    # (scan_unroll "auto": depth <= 16); a variant deeper than 16 layers gets a rolled loop.
    vocab_size=4096, width=128, depth=8, heads=4, mlp_width=512, seq_len=128,
    block="vanilla", attention="espa", mlp_activation="tat_leaky_relu",
)

PRESETS: dict[str, ModelConfig] = {
    "cpu-tiny": _CPU_TINY,
    # The Pre-LN baseline at the cpu-tiny shape [our choice: GELU, GPT-2 init, LayerNorm].
    "cpu-tiny-preln": _CPU_TINY.replace(block="preln", attention="standard", mlp_activation="gelu"),
    # TAT's η = 0.9 and a third-party E-SPA's γ_L = 0.005 (ρ_L = 0.8 for U-SPA) at the cpu-tiny shape,
    # 16 layers deep: with 8 leaky-ReLU MLPs even ReLU cannot reach C_f(0) = 0.9.
    "tat-default": _CPU_TINY.replace(depth=16, tat_eta=0.9, gamma_final=0.005, rho_final=0.8),
    # WikiText-103: depth 36 is believed to be the paper's; width, heads, MLP width, T and vocabulary are our choice.
    "wt103-36l": ModelConfig(
        vocab_size=32768, width=512, depth=36, heads=8, mlp_width=2048, seq_len=512,
        block="vanilla", attention="espa", mlp_activation="tat_leaky_relu",
    ),
    # C4: depth 72 is believed to be the paper's; the rest is our choice.
    "c4-72l": ModelConfig(
        vocab_size=32768, width=512, depth=72, heads=8, mlp_width=2048, seq_len=512,
        block="vanilla", attention="espa", mlp_activation="tat_leaky_relu",
    ),
}


def preset(name: str, **overrides: Any) -> ModelConfig:
    """The preset `name` with fields replaced by `overrides` (e.g. `preset("cpu-tiny", attention="uspa")`)."""
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name].replace(**overrides) if overrides else PRESETS[name]
