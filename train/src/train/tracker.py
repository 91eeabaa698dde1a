"""Experiment trackers beside `metrics.jsonl`: where the same scalars go besides the file (TensorBoard always,
Weights & Biases with `--tracker wandb`).

A tracker is a `ScalarSink`: `add(scalars, step)` receives each record's numbers flattened as `metrics._scalars`
makes them (per-layer lists as `name/0`, `name/1`, ...) and `close()` ends it; `MetricsWriter` feeds every sink
from the one place a record is written. wandb is an optional extra of `train` (`train[wandb]`), imported only when
asked for.
"""

from __future__ import annotations

import os
import pathlib
import secrets
from typing import Any, Literal, Protocol, get_args

Tracker = Literal["none", "wandb"]
"""Where the metrics go besides metrics.jsonl and TensorBoard (the `--tracker` choice)."""
TRACKERS: tuple[str, ...] = get_args(Tracker)
INSTALL_WANDB = "uv sync --package train --extra wandb (or: pip install 'wandb==0.31.0')"


class ScalarSink(Protocol):
    def add(self, scalars: dict[str, float], step: int) -> None: ...

    def close(self) -> None: ...


def check_tracker(name: str) -> None:
    """Raises a one-line `ValueError` for an unknown tracker or one whose package is not installed (nothing has
    been written yet when `train.loop.run` calls this)."""
    if name not in TRACKERS:
        raise ValueError(f"--tracker={name!r} is not supported; choose one of {list(TRACKERS)}.")
    if name == "wandb":
        _import_wandb()


def _import_wandb():
    try:
        import wandb
    except ImportError:
        raise ValueError(f"--tracker wandb needs the optional wandb package; install it with: {INSTALL_WANDB}") from None
    return wandb


WANDB_ID_FILE = "wandb_run_id.txt"


def _wandb_run_id(out_dir: pathlib.Path) -> str:
    """The run folder's wandb run id: made at the first start, kept in `wandb_run_id.txt` so a resume continues
    the same wandb run."""
    path = out_dir / WANDB_ID_FILE
    if path.is_file():
        return path.read_text().strip()
    run_id = secrets.token_hex(4)  # wandb ids: letters and digits
    partial = path.with_suffix(".tmp")
    partial.write_text(run_id + "\n")
    partial.replace(path)
    return run_id


class WandbSink:
    """One wandb run per run folder, named after it: a resume continues the same wandb run (its id is kept in
    the folder's `wandb_run_id.txt`). Its files go to `$WANDB_DIR` if set, else the run folder;
    `WANDB_MODE=offline` keeps them local (`wandb sync` uploads them later, the resumed part into the same run).

    **Arguments:** `out_dir` (the run folder), `config` (the resolved `TrainConfig.to_dict()`, sent as the run's
    config), `project` (`$WANDB_PROJECT`, default "skipless").
    """

    def __init__(self, out_dir: str | pathlib.Path, config: dict[str, Any]):
        wandb = _import_wandb()
        name = pathlib.Path(out_dir).resolve().name
        self._run = wandb.init(project=os.environ.get("WANDB_PROJECT", "skipless"), name=name, group=name,
                               id=_wandb_run_id(pathlib.Path(out_dir)), resume="allow", config=config,
                               dir=os.environ.get("WANDB_DIR", str(out_dir)), reinit="create_new")

    def add(self, scalars: dict[str, float], step: int) -> None:
        self._run.log(scalars, step=step)

    def close(self) -> None:
        self._run.finish()


def open_tracker(name: str, out_dir: str | pathlib.Path, config: dict[str, Any]) -> list[ScalarSink]:
    """**Returns:** the sinks `--tracker name` adds (none for "none")."""
    check_tracker(name)
    return [WandbSink(out_dir, config)] if name == "wandb" else []
