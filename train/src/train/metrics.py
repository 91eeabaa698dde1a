"""Run metrics: `metrics.jsonl` (one JSON object per logged step) and TensorBoard events."""

from __future__ import annotations

import json
import math
import pathlib
from typing import Any


def _scalars(record: dict[str, Any]) -> dict[str, float]:
    """Flattens numbers and lists of numbers (e.g. per-layer norms → `name/0`, `name/1`, ...)."""
    flat = {}
    for name, value in record.items():
        if isinstance(value, (list, tuple)):
            flat.update({f"{name}/{i}": float(v) for i, v in enumerate(value)})
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and name != "step":
            flat[name] = float(value)
    return flat


class MetricsWriter:
    """Appends metric records to `DIR/metrics.jsonl` and mirrors the numbers to TensorBoard.

    Only the process with index 0 writes (pass `enabled=False` elsewhere). Appending, not
    truncating, keeps the history of a resumed run in one file.

    **Arguments:**

    - `out_dir`: the run folder.
    - `enabled`: whether this process writes.
    - `tensorboard`: also write event files under `DIR/tensorboard/`.
    """

    def __init__(self, out_dir: str | pathlib.Path, *, enabled: bool = True, tensorboard: bool = True):
        self.enabled = enabled
        self.path = pathlib.Path(out_dir) / "metrics.jsonl"
        self._file = open(self.path, "a", buffering=1) if enabled else None
        self._tb = None
        if enabled and tensorboard:
            from tensorboardX import SummaryWriter

            self._tb = SummaryWriter(str(pathlib.Path(out_dir) / "tensorboard"))

    def write(self, record: dict[str, Any]) -> None:
        """Writes one record; it must hold an int `step`. Non-finite numbers become JSON `null`."""
        if not self.enabled:
            return
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
        self._file.write(json.dumps(clean, sort_keys=True) + "\n")
        if self._tb is not None:
            for name, value in _scalars(record).items():
                self._tb.add_scalar(name, value, record["step"])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tb is not None:
            tb, self._tb = self._tb, None
            try:
                tb.close()
            except OSError:  # e.g. a full disk: stop its thread now, so nothing retries at exit
                _abandon(tb)
                raise


def _abandon(tb) -> None:
    """Stops a tensorboardX writer whose close failed: joins its writer thread and marks it closed,
    so its exit hook does not write (and fail) again. Internals of tensorboardX 2.6."""
    for file_writer in (getattr(tb, "all_writers", None) or {}).values():
        events = getattr(file_writer, "event_writer", None)
        worker = getattr(events, "_worker", None)
        try:
            if worker is not None:
                worker.stop()
        except Exception:
            pass
        if events is not None:
            events._closed = True


def read_metrics(path: str | pathlib.Path) -> list[dict[str, Any]]:
    """**Returns:** the records of a `metrics.jsonl` file, in order."""
    lines = pathlib.Path(path).read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]
