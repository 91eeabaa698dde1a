"""train: the sharded training entrypoint, `python -m train.main`.

Public API (imported lazily: `train.main` must set XLA flags before JAX is imported):

- `TrainConfig` (train.config): the frozen run configuration; `build_parser`, `config_from_args` (train.cli).
- `run`, `RunResult`, `NonFiniteLoss`, `CheckpointWriteFailed` (train.loop): train or resume one run.
- `RunLock`, `RunFolderBusy` (train.run_lock): one process per run folder.
- `check_resume`, `resume_conflicts` (train.resume_check): which flags a resume may change.
- `describe` (train.failures): exception → (exit code, one line); the exit-code table.
- `summary_lines` (train.summary): the end-of-run report.
- `make_optimizer`, `learning_rate_schedule` (train.optim).
- `parse_mesh`, `make_mesh` (train.mesh).
- `TrainState`, `describe_model`, `state_shardings`, `init_state`, `abstract_state` (train.state).
- `make_train_step`, `make_eval_step`, `batch_sharding` (train.step).
- `MetricsWriter`, `read_metrics` (train.metrics).
- `process_rows`, `to_global` (train.data_feed): which rows of a global batch a process loads; assembly.
- `restore_data_position`, `saved_layouts` (train.data_position): data resume across process counts.
"""

import importlib

_EXPORTS = {
    "TrainConfig": "config", "build_parser": "cli", "config_from_args": "cli",
    "run": "loop", "RunResult": "loop", "NonFiniteLoss": "loop", "CheckpointWriteFailed": "loop",
    "RunLock": "run_lock", "RunFolderBusy": "run_lock",
    "check_resume": "resume_check", "resume_conflicts": "resume_check",
    "describe": "failures", "summary_lines": "summary",
    "make_optimizer": "optim", "learning_rate_schedule": "optim",
    "parse_mesh": "mesh", "make_mesh": "mesh",
    "TrainState": "state", "describe_model": "state", "state_shardings": "state",
    "init_state": "state", "abstract_state": "state",
    "make_train_step": "step", "make_eval_step": "step", "batch_sharding": "step",
    "MetricsWriter": "metrics", "read_metrics": "metrics",
    "process_rows": "data_feed", "to_global": "data_feed",
    "restore_data_position": "data_position", "saved_layouts": "data_position",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'train' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
