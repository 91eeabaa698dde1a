"""Run metrics: `metrics.jsonl` (one JSON object per logged step), TensorBoard events and other trackers."""

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


class TensorBoardSink:
    """Scalars as TensorBoard events under `DIR/tensorboard/` (tensorboardX)."""

    def __init__(self, out_dir: str | pathlib.Path):
        from tensorboardX import SummaryWriter

        self._tb = SummaryWriter(str(pathlib.Path(out_dir) / "tensorboard"))

    def add(self, scalars: dict[str, float], step: int) -> None:
        for name, value in scalars.items():
            self._tb.add_scalar(name, value, step)

    def close(self) -> None:
        try:
            self._tb.close()
        except OSError:  # e.g. a full disk: stop its thread now, so nothing retries at exit
            _abandon(self._tb)
            raise


class MetricsWriter:
    """Appends metric records to `DIR/metrics.jsonl` and sends the same numbers to every tracker (TensorBoard, and
    the sinks of `train.tracker`, e.g. wandb).

    Only the process with index 0 writes (pass `enabled=False` elsewhere). Appending, not
    truncating, keeps the history of a resumed run in one file.

    **Arguments:**

    - `out_dir`: the run folder.
    - `enabled`: whether this process writes.
    - `tensorboard`: also write event files under `DIR/tensorboard/`.
    - `trackers`: further sinks (`train.tracker.ScalarSink`: `add(scalars, step)`, `close()`), used only when enabled.
    """

    def __init__(self, out_dir: str | pathlib.Path, *, enabled: bool = True, tensorboard: bool = True,
                 trackers: tuple = ()):
        self.enabled = enabled
        self.path = pathlib.Path(out_dir) / "metrics.jsonl"
        self._file = open(self.path, "a", buffering=1) if enabled else None
        self._sinks = ([TensorBoardSink(out_dir)] if tensorboard else []) + list(trackers) if enabled else []

    def write(self, record: dict[str, Any]) -> None:
        """Writes one record; it must hold an int `step`. Non-finite numbers become JSON `null`."""
        if not self.enabled:
            return
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
        self._file.write(json.dumps(clean, sort_keys=True) + "\n")
        scalars = _scalars(record)
        for sink in self._sinks:
            sink.add(scalars, record["step"])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        sinks, self._sinks = self._sinks, []
        error = None
        for sink in sinks:  # close them all; the first failure is raised afterwards
            try:
                sink.close()
            except OSError as failed:
                error = error or failed
        if error is not None:
            raise error


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
