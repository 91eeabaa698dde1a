"""Command line → `TrainConfig`: every `ModelConfig` field and every `TrainConfig` field is a flag.

Only flags given explicitly override: a new run starts from the preset's model and the training
defaults; `--resume` starts from the run's saved `config.json`.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing

import skipless_models
from skipless_models import ModelConfig

from .config import OPTIMIZERS, SCHEDULES, TrainConfig
from .presets import training_defaults
from .run_dir import default_out_dir, load_saved_config

# Launch options: they steer this invocation, not the run, so they are not saved in config.json.
LAUNCH_FLAGS = ("resume", "stop_after", "progress", "debug", "coordinator", "num_processes", "process_id")
_SKIP_TRAIN_FIELDS = ("model", "lr_multipliers")
_HELP = {
    "preset": f"model preset: {', '.join(sorted(skipless_models.PRESETS))}",
    "data": "training text: 'embedded' (generated corpus), a local file/folder, or hf:NAME",
    "eval_data": "separate local eval text (default: the data's held-out tail)",
    "tokenizer": "'byte' or 'bpe:<vocab>' (default: byte for embedded, bpe:8192 for text)",
    "text_field": "field holding the text in JSON Lines records and hf: rows (default text)",
    "data_dir": "folder of tokenised shards, reused across runs (default runs/data/<name>)",
    "max_train_tokens": "prepare at most this many train tokens (a larger value later extends the shards)",
    "max_eval_tokens": "prepare at most this many eval tokens",
    "batch_size": "global sequences per step",
    "steps": "total optimiser steps",
    "optimizer": f"one of {', '.join(OPTIMIZERS)}",
    "lr": "peak learning rate (default: per method, see train.presets)",
    "warmup": "linear warmup steps",
    "schedule": f"decay after warmup: {', '.join(SCHEDULES)}",
    "min_lr_ratio": "final learning rate as a fraction of --lr",
    "weight_decay": "decoupled weight decay on matrices only",
    "grad_clip": "global-norm clipping threshold (0 = off)",
    "eval_every": "steps between evaluations (0 = only at the end)",
    "eval_batches": "most eval batches per evaluation (0 = the whole split)",
    "checkpoint_every": "steps between checkpoints (0 = only at the end)",
    "keep_checkpoints": "how many newest checkpoints to keep",
    "log_every": "steps between metrics.jsonl records",
    "diagnostics_every": "steps between per-layer grad norms and Value-SkipInit alpha/beta (0 = off)",
    "out": "run folder (default runs/<preset>-<UTC time>)",
    "seed": "seed of the initialisation and the data order",
    "mesh": "DxM sizes of the ('data', 'model') device mesh, e.g. 4x8",
    "peak_tflops": "per-device peak TFLOP/s for the MFU estimate (default: known GPUs/TPUs)",
    "tracker": "also send metrics, config and per-layer diagnostics to: none or wandb (extra: train[wandb])",
}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _optional(kind):
    def parse(text: str):
        return None if text.strip().lower() == "none" else kind(text)

    parse.__name__ = kind.__name__
    return parse


def _parser_type(annotation: str):
    base = {"int": int, "float": float, "str": str, "bool": _bool}[annotation.split("|")[0].strip()]
    return _optional(base) if "None" in annotation else base


def _lr_multiplier(text: str) -> tuple[str, float]:
    group, _, factor = text.partition("=")
    try:
        return group.strip(), float(factor)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--lr-mult expects GROUP=FACTOR (e.g. gain=30), got {text!r}") from None


# ModelConfig's option lists (skipless_models.config constants), shown in --help.
_MODEL_CHOICES = {
    "block": "BLOCKS", "norm": "NORMS", "attention": "ATTENTIONS", "mlp_activation": "ACTIVATIONS",
    "init": "INITS", "kernel_budget": "BUDGETS", "position": "POSITIONS",
    "attention_impl": "ATTENTION_IMPLS", "compute_dtype": "COMPUTE_DTYPES",
}


def _model_help(name: str) -> str:
    import skipless_models.config as model_config

    choices = getattr(model_config, _MODEL_CHOICES.get(name, ""), None)
    default = getattr(skipless_models.preset("cpu-tiny"), name)
    text = f"one of {', '.join(choices)}" if choices else name.replace("_", " ")
    return f"{text} (cpu-tiny: {default})"


def build_parser() -> argparse.ArgumentParser:
    """**Returns:** the `python -m train.main` parser (all defaults suppressed, so only explicit flags appear)."""
    parser = argparse.ArgumentParser(
        prog="python -m train.main", argument_default=argparse.SUPPRESS,
        description="Train a deep transformer (vanilla E-SPA by default) on a device mesh.",
    )
    run = parser.add_argument_group("run")
    run.add_argument("--preset", help=_HELP["preset"])
    for field in dataclasses.fields(TrainConfig):
        if field.name in _SKIP_TRAIN_FIELDS or field.name == "preset":
            continue
        run.add_argument(_flag(field.name), type=_parser_type(field.type), metavar=field.name.upper(),
                         help=_HELP.get(field.name, field.name.replace("_", " ")))
    run.add_argument("--lr-mult", dest="lr_multipliers", action="append", type=_lr_multiplier, metavar="GROUP=FACTOR",
                     help="learning-rate factor of a parameter group (matrix, vector, embedding, head, gain); repeatable")
    model = parser.add_argument_group("model (fields of skipless_models.ModelConfig; override the preset)")
    for field in dataclasses.fields(ModelConfig):
        model.add_argument(_flag(field.name), dest=f"model.{field.name}", type=_parser_type(field.type),
                           metavar=field.name.upper(), help=_model_help(field.name))
    launch = parser.add_argument_group("launch")
    launch.add_argument("--resume", action="store_true", help="continue the run in --out from its newest readable checkpoint")
    launch.add_argument("--stop-after", type=int, metavar="STEPS", help="stop with a checkpoint after this many steps of this invocation")
    launch.add_argument("--progress", type=_bool, metavar="BOOL", help="rich progress bar (default: when stdout is a terminal)")
    launch.add_argument("--debug", action="store_true",
                        help="show full tracebacks and library error output on stderr (otherwise they go to the run's train.log)")
    launch.add_argument("--coordinator", metavar="HOST:PORT", help="multi-host: address of process 0 (jax.distributed)")
    launch.add_argument("--num-processes", type=int, metavar="N", help="multi-host: number of processes")
    launch.add_argument("--process-id", type=int, metavar="I", help="multi-host: index of this process")
    return parser


def config_from_args(args: dict[str, typing.Any]) -> tuple[TrainConfig, dict[str, typing.Any]]:
    """Resolves explicit flags into a `TrainConfig` and the launch options.

    **Arguments:** `args`: `vars(build_parser().parse_args(argv))` (explicit flags only).

    **Returns:** `(config, launch)`; raises `ValueError` with the fix for inconsistent flags.
    """
    args = dict(args)
    launch = {name: args.pop(name) for name in LAUNCH_FLAGS if name in args}
    model_overrides = {k.split(".", 1)[1]: args.pop(k) for k in list(args) if k.startswith("model.")}
    if "lr_multipliers" in args:
        args["lr_multipliers"] = dict(args["lr_multipliers"])
    if launch.get("resume"):
        if "out" not in args:
            raise ValueError("--resume needs --out DIR: the folder of the run to continue.")
        if "preset" in args:
            raise ValueError("--preset cannot change on --resume; drop it (the run's saved config is used).")
        base = TrainConfig.from_dict(load_saved_config(args["out"]))
        model = base.model.replace(**model_overrides) if model_overrides else base.model
        return base.replace(model=model, **args), launch
    preset = args.pop("preset", "cpu-tiny")
    model = skipless_models.preset(preset, **model_overrides)
    defaults = training_defaults(preset, model)
    defaults.update(args)
    if "warmup" not in args:  # the preset's warmup, but never beyond a tenth of a shorter run
        defaults["warmup"] = min(defaults["warmup"], defaults["steps"] // 10)
    defaults.setdefault("out", default_out_dir(preset))
    return TrainConfig(model=model, preset=preset, **defaults), launch
