"""The run folder: what a new run or a resume may find there, read without changing anything.

A folder holding nothing but the lock and the log (an earlier start that ended before training
began) is free for a new run. A folder with `config.json` and no finished checkpoint (a start that
ended before its first checkpoint) is resumed as a fresh start of its saved config.
"""

from __future__ import annotations

import json
import os
import pathlib
import time

import skipless_models

from .failures import RunFolderDamaged
from .run_lock import LOCK_FILE
from .run_log import LOG_FILE

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"
_BOOKKEEPING = (LOCK_FILE, LOG_FILE)


def default_out_dir(preset: str) -> str:
    """**Returns:** `runs/<preset>-<UTC timestamp>`, a fresh folder name for a new run."""
    return f"runs/{preset}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"


def run_contents(path: pathlib.Path) -> list[str]:
    """**Returns:** the names in a run folder other than the lock and the log (empty if none or no folder)."""
    if not path.is_dir():
        return []
    return sorted(p.name for p in path.iterdir() if p.name not in _BOOKKEEPING)


def has_checkpoint(path: pathlib.Path) -> bool:
    """**Returns:** whether `path/checkpoints` holds a finished step (a folder named by a number)."""
    folder = path / CHECKPOINT_DIR
    return folder.is_dir() and any(p.name.isdigit() and p.is_dir() for p in folder.iterdir())


def check_new_run_dir(out: str | pathlib.Path) -> pathlib.Path:
    """Checks that a new run may use `out` (nothing is created or changed).

    **Raises:** `ValueError` naming the command to run instead when `out` holds a run or other files.
    """
    path = pathlib.Path(out)
    if path.exists() and not path.is_dir():
        raise ValueError(f"--out {path} is a file, not a folder; pass --out with a new folder.")
    if not run_contents(path):
        return path
    if (path / CONFIG_FILE).is_file() and not has_checkpoint(path):
        raise ValueError(
            f"--out {path} holds a run that ended before its first checkpoint; "
            f"`python -m train.main --resume --out {path}` starts it again from step 0 with its saved config. "
            f"To start it with other flags instead, remove {path} first or pass another --out."
        )
    raise ValueError(f"--out {path} is not empty; pass --resume to continue the run there, or --out with a new folder.")


def load_saved_config(out: str | pathlib.Path) -> dict:
    """Reads a run's `config.json` for `--resume` (nothing is changed).

    **Returns:** the saved config as a dict. **Raises:** `ValueError` when there is no run to
    resume (naming what to run instead), `RunFolderDamaged` when the file cannot be parsed.
    """
    path = pathlib.Path(out)
    saved = path / CONFIG_FILE
    if not saved.is_file():
        if path.is_dir() and not run_contents(path):
            raise ValueError(f"--resume: {saved} not found: nothing was trained in {path} yet "
                             "(an earlier start ended before training began); start it as a new run: drop --resume.")
        raise ValueError(f"--resume: {saved} not found; pass the --out DIR of an earlier run.")
    try:
        values = json.loads(saved.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunFolderDamaged(f"--resume: {saved} cannot be read ({error}); restore it from a checkpoint's "
                               f"config (each {CHECKPOINT_DIR}/<step>/config holds one) or start a new run.") from error
    if not isinstance(values, dict) or not isinstance(values.get("model"), dict):
        raise RunFolderDamaged(f"--resume: {saved} is not a run config; restore it or start a new run.")
    skipless_models.check_checkpoint_format(values["model"])  # an older format: one line, nothing touched
    return values


def write_config(path: pathlib.Path, values: dict) -> None:
    """Writes `config.json` atomically: a temporary file, flushed to disk, renamed over the old one."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w") as handle:
        handle.write(json.dumps(values, indent=2, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)
