"""Resuming the data stream when the process count changed since the checkpoint was written.

Grain saves one iterator state per process (`data/process_<i>-of-<n>.json`) and restores only the
file of the same `<i>-of-<n>`. The training pipeline keeps the process slicing in the dataset
itself, so every process's state is the same position (global batches consumed): a checkpoint
written by `n` processes can then seed the iterators of any other process count.
"""

from __future__ import annotations

import json
import pathlib
import re
from typing import Any

_STATE_FILE = re.compile(r"process_(\d+)-of-(\d+)\.json")


def saved_layouts(data_dir: str | pathlib.Path) -> set[int]:
    """**Returns:** the process counts that wrote iterator states into a checkpoint's `data/` folder."""
    folder = pathlib.Path(data_dir)
    if not folder.is_dir():
        return set()
    return {int(m.group(2)) for p in folder.iterdir() if (m := _STATE_FILE.fullmatch(p.name))}


def restore_data_position(iterator: Any, data_dir: str | pathlib.Path) -> dict:
    """Sets a Grain iterator to the position saved by a run with a different process count.

    **Arguments:**

    - `iterator`: this process's `grain.DatasetIterator` of the training pipeline.
    - `data_dir`: the checkpoint step's `data/` folder.

    **Returns:** the state that was set. Raises `ValueError` when the folder holds no states or
    states at different positions (then only the original process count can resume exactly).
    """
    folder = pathlib.Path(data_dir)
    files = sorted(p for p in folder.iterdir() if _STATE_FILE.fullmatch(p.name)) if folder.is_dir() else []
    if not files:
        raise ValueError(f"{folder} holds no data iterator state; resume with the process count that wrote it.")
    states = {p.name: json.loads(p.read_text()) for p in files}
    distinct = {json.dumps(s, sort_keys=True) for s in states.values()}
    if len(distinct) != 1:
        raise ValueError(
            f"the data iterator states in {folder} differ between processes ({sorted(states)}); "
            "resume with the same number of processes that wrote them."
        )
    state = next(iter(states.values()))
    iterator.set_state(state)
    if hasattr(iterator, "start_prefetch"):
        iterator.start_prefetch()
    return state
