"""`TrainConfig`: everything a training run depends on, as one frozen, JSON-able value."""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any

import skipless_models
from skipless_data import parse_tokenizer_spec
from skipless_models import ModelConfig

from .mesh import parse_mesh
from .tracker import TRACKERS

OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("cosine", "linear", "constant")
PARAM_GROUPS = ("matrix", "vector", "embedding", "head", "gain", "buffer")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """A training run: the model, the data, the optimiser, the mesh and the bookkeeping.

    **Fields:**

    - `model`: the `skipless_models.ModelConfig` (its `seq_len` is the training context length).
    - `preset`: name of the model preset the run started from (informational).
    - `data`: "embedded" (generated corpus), a local text file/folder, or "hf:NAME".
    - `eval_data`: optional separate evaluation text; `None` uses the data's own eval split.
    - `tokenizer`: "byte" or "bpe:<vocab>"; `None` lets `skipless_data` choose (byte for the
      embedded corpus, BPE for text). The run saves the resolved value.
    - `text_field`: the field holding the text in JSON Lines records (and `hf:` rows).
    - `data_dir`: where tokenised shards live (reused across runs); `None` = `runs/data/<name>`.
    - `max_train_tokens`, `max_eval_tokens`: token budgets of the prepared splits (`None` = all text).
    - `batch_size`: global sequences per step (split over the "data" axis and processes).
    - `steps`: total optimiser steps of the run.
    - `optimizer`: "adamw", "adam" (no weight decay) or "sgd" (with `momentum`).
    - `lr`, `warmup`, `schedule`, `min_lr_ratio`: peak learning rate, linear warmup steps, decay
      shape after warmup ("cosine" | "linear" | "constant") and the final fraction of `lr`.
    - `beta1`, `beta2`, `eps`, `momentum`: optimiser constants.
    - `weight_decay`: decoupled decay, applied to "matrix" parameters only.
    - `grad_clip`: global-norm clipping threshold (0 disables it).
    - `lr_multipliers`: learning-rate factor per parameter group (groups of
      `skipless_models.param_groups`; "buffer" is always frozen).
    - `eval_every`, `eval_batches`: evaluation period in steps (0 = only at the end) and the most
      eval batches per evaluation (0 = the whole split).
    - `checkpoint_every`, `keep_checkpoints`: checkpoint period (0 = only at the end) and `max_to_keep`.
    - `log_every`, `diagnostics_every`: metrics period, and period of per-layer gradient norms and
      Value-SkipInit α/β (0 disables diagnostics).
    - `out`: run folder (config.json, metrics.jsonl, TensorBoard events, checkpoints/).
    - `seed`: seed of the initialisation and of the data order.
    - `mesh`: "DxM" sizes of the ("data", "model") mesh.
    - `peak_tflops`: per-device peak FLOP/s (in TFLOP/s) for the MFU estimate; `None` = unknown.
    - `tracker`: where the metrics go besides `metrics.jsonl` and TensorBoard: "none" or "wandb" (the optional
      extra `train[wandb]`; see `train.tracker`).
    """

    model: ModelConfig
    preset: str = "cpu-tiny"
    data: str = "embedded"
    eval_data: str | None = None
    tokenizer: str | None = None
    text_field: str = "text"
    data_dir: str | None = None
    max_train_tokens: int | None = None
    max_eval_tokens: int | None = None
    batch_size: int = 16
    steps: int = 200
    optimizer: str = "adamw"
    lr: float = 1e-3
    warmup: int = 20
    schedule: str = "cosine"
    min_lr_ratio: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    momentum: float = 0.9
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    lr_multipliers: dict[str, float] = dataclasses.field(default_factory=dict)
    eval_every: int = 100
    eval_batches: int = 8
    checkpoint_every: int = 100
    keep_checkpoints: int = 3
    log_every: int = 10
    diagnostics_every: int = 50
    out: str = "runs/default"
    seed: int = 0
    mesh: str = "1x1"
    peak_tflops: float | None = None
    tracker: str = "none"

    def __post_init__(self):
        _validate(self)

    @property
    def mesh_shape(self) -> tuple[int, int]:
        return parse_mesh(self.mesh)

    def multiplier(self, group: str) -> float:
        """**Returns:** the learning-rate factor of one parameter group (1.0 when not set)."""
        return float(self.lr_multipliers.get(group, 1.0))

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        fields["model"] = self.model.to_dict()
        fields["lr_multipliers"] = dict(self.lr_multipliers)
        return fields

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"TrainConfig: unknown field(s) {unknown}; valid fields are {sorted(names)}.")
        values = dict(values)
        values["model"] = ModelConfig.from_dict(values["model"])
        return cls(**values)

    def save_json(self, path: str | pathlib.Path) -> None:
        from .run_dir import write_config  # atomic: a temporary file renamed over the old one

        write_config(pathlib.Path(path), self.to_dict())

    @classmethod
    def load_json(cls, path: str | pathlib.Path) -> "TrainConfig":
        """A run's saved config, refused in one line when its checkpoints are of a model format this code cannot
        restore (`skipless_models.check_checkpoint_format`): every caller restores the run's checkpoints next."""
        values = json.loads(pathlib.Path(path).read_text())
        skipless_models.check_checkpoint_format(values.get("model", {}))
        return cls.from_dict(values)


def _positive(name: str, value: Any, flag: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"--{flag}={value!r} must be a positive integer; pass e.g. --{flag}=8.")


def _non_negative(name: str, value: Any, flag: str) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
        raise ValueError(f"--{flag}={value!r} must be >= 0; pass 0 to disable or a positive value.")


def _validate(config: TrainConfig) -> None:
    if not isinstance(config.model, ModelConfig):
        raise ValueError("TrainConfig.model must be a skipless_models.ModelConfig; build one with skipless_models.preset(name).")
    for name in ("batch_size", "steps", "keep_checkpoints", "log_every"):
        _positive(name, getattr(config, name), name.replace("_", "-"))
    for name in ("warmup", "eval_every", "eval_batches", "checkpoint_every", "diagnostics_every",
                 "weight_decay", "grad_clip", "seed", "eps", "momentum"):
        _non_negative(name, getattr(config, name), name.replace("_", "-"))
    if config.optimizer not in OPTIMIZERS:
        raise ValueError(f"--optimizer={config.optimizer!r} is not supported; choose one of {list(OPTIMIZERS)}.")
    if config.schedule not in SCHEDULES:
        raise ValueError(f"--schedule={config.schedule!r} is not supported; choose one of {list(SCHEDULES)}.")
    if not (isinstance(config.lr, (int, float)) and config.lr > 0):
        raise ValueError(f"--lr={config.lr!r} must be a positive number; pass e.g. --lr=1e-3.")
    if not 0.0 <= config.min_lr_ratio <= 1.0:
        raise ValueError(f"--min-lr-ratio={config.min_lr_ratio} must lie in [0, 1].")
    if not (0.0 <= config.beta1 < 1.0 and 0.0 <= config.beta2 < 1.0):
        raise ValueError(f"--beta1/--beta2 ({config.beta1}, {config.beta2}) must lie in [0, 1).")
    if config.warmup > config.steps:
        raise ValueError(f"--warmup={config.warmup} exceeds --steps={config.steps}; pass a shorter warmup.")
    for group, factor in config.lr_multipliers.items():
        if group not in PARAM_GROUPS or group == "buffer":
            trainable = [g for g in PARAM_GROUPS if g != "buffer"]
            raise ValueError(f"--lr-mult {group}={factor}: unknown or frozen parameter group; choose from {trainable}.")
        if not factor >= 0:
            raise ValueError(f"--lr-mult {group}={factor} must be >= 0.")
    if config.tokenizer is not None:
        parse_tokenizer_spec(config.tokenizer)  # its message names the accepted forms
    if not (isinstance(config.text_field, str) and config.text_field):
        raise ValueError(f"--text-field={config.text_field!r} must name a field, e.g. --text-field=text.")
    if config.peak_tflops is not None and not config.peak_tflops > 0:
        raise ValueError(f"--peak-tflops={config.peak_tflops} must be positive, or leave it out.")
    parse_mesh(config.mesh)
    if config.tracker not in TRACKERS:
        raise ValueError(f"--tracker={config.tracker!r} is not supported; choose one of {list(TRACKERS)}.")
