"""Named setups: one record per name holds the model AND the run shape. Which numbers are the paper's and
which are ours is stated per preset.

The trainer (`python -m train.main --preset NAME`), the method-comparison suites (`evals.suites`: each suite
names the preset whose shape it runs) and the docs read these records; `TrainConfig`'s defaults are the
cpu-tiny record's run shape. Vocabulary sizes are placeholders [our choice]: the trainer overrides
`vocab_size` with its tokenizer's.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, get_args

from skipless_models.config import ModelConfig

PresetName = Literal["cpu-tiny", "cpu-tiny-preln", "tat-default", "smoke", "cpu-small", "wt103-36l", "c4-72l"]
"""The named setups (the keys of `PRESETS`)."""
PRESET_NAMES: tuple[str, ...] = get_args(PresetName)


@dataclasses.dataclass(frozen=True)
class RunShape:
    """How long and how big a preset's training run is: the `TrainConfig` fields of the same names."""

    batch_size: int
    steps: int
    warmup: int
    eval_every: int
    checkpoint_every: int
    eval_batches: int = 8
    log_every: int = 10
    diagnostics_every: int = 50
    keep_checkpoints: int = 3

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named setup: `model` (`ModelConfig`), `run` (`RunShape`) and `about` (one line for `--help` and docs)."""

    model: ModelConfig
    run: RunShape
    about: str


_CPU_TINY_MODEL = ModelConfig(
    # [our choice] small enough to train in minutes on 2 CPU cores; vanilla E-SPA with TAT MLPs and the
    # project's default knobs (sigprop.DEFAULT_ETA / DEFAULT_GAMMA_FINAL). The layer loop is unrolled
    # (scan_unroll "auto": depth <= 16); a variant deeper than 16 layers gets a rolled loop.
    vocab_size=4096, width=128, depth=8, heads=4, mlp_width=512, seq_len=128,
    block="vanilla", attention="espa", mlp_activation="tat_leaky_relu",
)
# [our choice] cpu-tiny finishes in a few minutes on 2 CPU cores.
_CPU_TINY_RUN = RunShape(batch_size=16, steps=200, warmup=20, eval_every=100, checkpoint_every=100)
_PAPER_SCALE = dict(vocab_size=32768, width=512, heads=8, mlp_width=2048, seq_len=512,
                    block="vanilla", attention="espa", mlp_activation="tat_leaky_relu")

PRESETS: dict[str, Preset] = {
    "cpu-tiny": Preset(_CPU_TINY_MODEL, _CPU_TINY_RUN,
                       "vanilla E-SPA + TAT MLPs, 8 layers, width 128, T 128; 200 steps of 16 sequences"),
    # The Pre-LN baseline at the cpu-tiny shape [our choice: GELU, GPT-2 init, LayerNorm].
    "cpu-tiny-preln": Preset(_CPU_TINY_MODEL.replace(block="preln", attention="standard", mlp_activation="gelu"),
                             _CPU_TINY_RUN, "the Pre-LN baseline at the cpu-tiny shape"),
    # TAT's η = 0.9 and a third-party E-SPA's γ_L = 0.005 (ρ_L = 0.8 for U-SPA) at the cpu-tiny shape,
    # 16 layers deep: with 8 leaky-ReLU MLPs even ReLU cannot reach C_f(0) = 0.9.
    "tat-default": Preset(_CPU_TINY_MODEL.replace(depth=16, tat_eta=0.9, gamma_final=0.005, rho_final=0.8),
                          _CPU_TINY_RUN, "cpu-tiny 16 layers deep with the paper-era knobs (η 0.9, γ_L 0.005)"),
    # The smoke suite's shape [our choice]: checks the machinery in minutes, not the paper.
    "smoke": Preset(
        _CPU_TINY_MODEL.replace(depth=4, width=32, heads=4, mlp_width=64, seq_len=32),
        RunShape(batch_size=8, steps=60, warmup=6, eval_every=15, eval_batches=4, checkpoint_every=30,
                 log_every=2, diagnostics_every=0, keep_checkpoints=1),
        "the smoke suite's tiny shape: 4 layers, width 32, T 32; 60 steps of 8 sequences"),
    # The cpu-small suite's shape [our choice]: depth 16, width 128, T 128 on WikiText-2.
    "cpu-small": Preset(
        _CPU_TINY_MODEL.replace(depth=16),
        RunShape(batch_size=16, steps=1000, warmup=50, eval_every=100, eval_batches=32, checkpoint_every=200,
                 log_every=10, diagnostics_every=250, keep_checkpoints=1),
        "the cpu-small suite's shape: 16 layers, width 128, T 128; 1000 steps of 16 sequences"),
    # WikiText-103: depth 36 is believed to be the paper's; width, heads, MLP width, T, vocabulary and the run
    # shape are our choice.
    "wt103-36l": Preset(
        ModelConfig(depth=36, **_PAPER_SCALE),
        RunShape(batch_size=64, steps=50_000, warmup=1_000, eval_every=1_000, eval_batches=64,
                 checkpoint_every=1_000, log_every=50, diagnostics_every=1_000, keep_checkpoints=2),
        "the paper's WikiText-103 depth (36 layers), width 512, T 512: for accelerators"),
    # C4: depth 72 is believed to be the paper's; the rest is our choice.
    "c4-72l": Preset(
        ModelConfig(depth=72, **_PAPER_SCALE),
        RunShape(batch_size=64, steps=100_000, warmup=2_000, eval_every=2_000, eval_batches=64,
                 checkpoint_every=2_000, log_every=100, diagnostics_every=2_000, keep_checkpoints=2),
        "the paper's C4 depth (72 layers), width 512, T 512: for accelerators"),
}
assert tuple(PRESETS) == PRESET_NAMES, "PresetName lists exactly the keys of PRESETS, in order"


def get_preset(name: str) -> Preset:
    """**Returns:** the record called `name`; raises a one-line `ValueError` naming the valid ones."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESET_NAMES)}")
    return PRESETS[name]


def preset(name: str, **overrides: Any) -> ModelConfig:
    """The model of preset `name` with fields replaced by `overrides` (e.g. `preset("cpu-tiny", attention="uspa")`)."""
    model = get_preset(name).model
    return model.replace(**overrides) if overrides else model
