"""The run folder: refuse to overwrite a run, find what a resume needs."""

from __future__ import annotations

import pathlib
import time

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"


def default_out_dir(preset: str) -> str:
    """**Returns:** `runs/<preset>-<UTC timestamp>`, a fresh folder name for a new run."""
    return f"runs/{preset}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"


def check_run_dir(out: str | pathlib.Path, *, resume: bool) -> pathlib.Path:
    """Validates `--out` against `--resume` and returns it as a path (created for new runs).

    **Raises:** `ValueError` when a new run would write into a non-empty folder, or when a resume
    finds no run there.
    """
    path = pathlib.Path(out)
    if resume:
        if not (path / CONFIG_FILE).is_file():
            raise ValueError(f"--resume: {path} holds no run ({CONFIG_FILE} missing); pass the --out DIR of an earlier run.")
        return path
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ValueError(
            f"--out {path} is not empty; pass --resume to continue the run there, or --out with a new folder."
        )
    path.mkdir(parents=True, exist_ok=True)
    return path
