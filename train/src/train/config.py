"""`TrainConfig`: everything a training run depends on, as one frozen, JSON-able value."""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import json
import pathlib
from typing import Annotated, Any, Literal, get_args

import skipless_models
import tyro
from tyro.constructors import PrimitiveConstructorSpec
from skipless_data import parse_tokenizer_spec
from skipless_models import ModelConfig

from .mesh import parse_mesh
from .tracker import TRACKERS, Tracker

Optimizer = Literal["adamw", "adam", "sgd"]
Schedule = Literal["cosine", "linear", "constant"]
OPTIMIZERS: tuple[str, ...] = get_args(Optimizer)
SCHEDULES: tuple[str, ...] = get_args(Schedule)
PARAM_GROUPS: tuple[str, ...] = skipless_models.GROUPS  # declared once, where the labels are given
TrainableGroup = Literal[tuple(PARAM_GROUPS)]  # type: ignore[valid-type]
"""The parameter groups a learning-rate multiplier may name (every array leaf of a model is trainable)."""
TRAINABLE_GROUPS: tuple[str, ...] = get_args(TrainableGroup)


def parse_lr_multipliers(texts: list[str]) -> dict[str, float]:
    """`["gain=30", "head=2"]` → `{"gain": 30.0, "head": 2.0}`; a one-line `ValueError` names a bad entry."""
    multipliers = {}
    for text in texts:
        group, _, factor = text.partition("=")
        try:
            multipliers[group.strip()] = float(factor)
        except ValueError:
            raise ValueError(f"--lr-mult expects GROUP=FACTOR (e.g. gain=30), got {text!r}") from None
    return multipliers


# `--lr-mult GROUP=FACTOR ...` (repeatable: `train.cli` joins repeats) fills `lr_multipliers`.
_LR_MULT = PrimitiveConstructorSpec(
    nargs="*", metavar="{" + ",".join(TRAINABLE_GROUPS) + "}=FACTOR", instance_from_str=parse_lr_multipliers,
    is_instance=lambda x: isinstance(x, dict), str_from_instance=lambda d: [f"{k}={v:g}" for k, v in d.items()])
# Off while a command line is parsed: the flags are checked once the defaults they override are complete.
_CHECKS = contextvars.ContextVar("train_config_checks", default=True)


@contextlib.contextmanager
def checks_deferred():
    """Within this block `TrainConfig` does not check its values (a command line is being parsed)."""
    token = _CHECKS.set(False)
    try:
        yield
    finally:
        _CHECKS.reset(token)


# The run shape defaults are the cpu-tiny preset's (skipless_models.PRESETS): one place for them.
_TINY = skipless_models.get_preset("cpu-tiny").run


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """A training run: the model, the data, the optimiser, the mesh and the bookkeeping (each field's text is
    its `--help`; every field is a flag of `python -m train.main`, model fields included)."""

    model: ModelConfig
    """the model (its seq_len is the training context length)"""
    preset: Annotated[str, tyro.conf.arg(metavar="{" + ",".join(skipless_models.PRESET_NAMES) + "}")] = "cpu-tiny"
    """named setup the run started from: its model and run shape are the defaults the flags override"""
    data: str = "embedded"
    """training text: 'embedded' (generated corpus), a local file/folder, or hf:NAME"""
    eval_data: str | None = None
    """separate local eval text (None: the data's held-out tail)"""
    tokenizer: str | None = None
    """'byte' or 'bpe:<vocab>' (None: byte for embedded, bpe:8192 for text; the run saves the resolved value)"""
    text_field: str = "text"
    """field holding the text in JSON Lines records and hf: rows"""
    data_dir: str | None = None
    """folder of tokenised shards, reused across runs (None: runs/data/<name>)"""
    max_train_tokens: int | None = None
    """prepare at most this many train tokens (None: all; a larger value later extends the shards)"""
    max_eval_tokens: int | None = None
    """prepare at most this many eval tokens (None: all)"""
    batch_size: int = _TINY.batch_size
    """global sequences per step (split over the 'data' axis and processes)"""
    steps: int = _TINY.steps
    """total optimiser steps of the run"""
    optimizer: Optimizer = "adamw"
    """adamw, adam (no weight decay) or sgd (with --momentum)"""
    lr: float = 1e-3
    """peak learning rate (default: per method and depth, train.presets.default_learning_rate)"""
    warmup: int = _TINY.warmup
    """linear warmup steps (default: the preset's, at most a tenth of --steps)"""
    schedule: Schedule = "cosine"
    """decay after warmup"""
    min_lr_ratio: float = 0.1
    """final learning rate as a fraction of --lr"""
    beta1: float = 0.9
    """Adam β1"""
    beta2: float = 0.95
    """Adam β2"""
    eps: float = 1e-8
    """Adam ε"""
    momentum: float = 0.9
    """SGD momentum"""
    weight_decay: float = 0.1
    """decoupled weight decay, on matrices only"""
    grad_clip: float = 1.0
    """global-norm clipping threshold (0 = off)"""
    lr_multipliers: Annotated[dict[str, float], _LR_MULT, tyro.conf.arg(name="lr-mult")] = dataclasses.field(
        default_factory=dict)
    """learning-rate factor per parameter group, e.g. gain=30 (default: 30 for Value-SkipInit's gains, else 1);
    repeatable"""
    eval_every: int = _TINY.eval_every
    """steps between evaluations (0 = only at the end)"""
    eval_batches: int = _TINY.eval_batches
    """most eval batches per evaluation (0 = the whole split)"""
    checkpoint_every: int = _TINY.checkpoint_every
    """steps between checkpoints (0 = only at the end)"""
    keep_checkpoints: int = _TINY.keep_checkpoints
    """how many newest checkpoints to keep"""
    log_every: int = _TINY.log_every
    """steps between metrics.jsonl records"""
    diagnostics_every: int = _TINY.diagnostics_every
    """steps between per-layer grad norms and Value-SkipInit alpha/beta (0 = off)"""
    out: str = "runs/default"
    """run folder (default for a new run: runs/<preset>-<UTC time>)"""
    seed: int = 0
    """seed of the initialisation and the data order"""
    mesh: str = "1x1"
    """DxM sizes of the ('data', 'model') device mesh, e.g. 4x8"""
    peak_tflops: float | None = None
    """per-device peak TFLOP/s for the MFU estimate (None: known GPUs/TPUs)"""
    tracker: Tracker = "none"
    """also send metrics, config and per-layer diagnostics to: none or wandb (the optional extra train[wandb])"""

    def __post_init__(self):
        if _CHECKS.get():
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


def unresolved_note(values: dict[str, Any], source: str) -> str | None:
    """**Returns:** one line saying which values of a saved config (`TrainConfig.to_dict()` form, from `source`)
    were not saved resolved and what today's defaults resolve them to, or None when it holds every value."""
    model = ModelConfig.from_dict(values.get("model", {}))
    names = model.unresolved_fields
    if not names:
        return None
    done = model.resolved()
    listed = ", ".join(f"{name} {getattr(done, name)}" for name in names)
    return (f"note: {source} predates configs saved resolved; its unset {', '.join(names)} take today's defaults "
            f"({listed}) and are saved so from now on")


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
        if group not in TRAINABLE_GROUPS:
            raise ValueError(f"--lr-mult {group}={factor}: unknown parameter group; "
                             f"choose from {list(TRAINABLE_GROUPS)}.")
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
