"""The progress display: a rich bar on a terminal, plain log lines otherwise."""

from __future__ import annotations

import sys
import time


class Progress:
    """Shows step, loss, tokens/s and ETA.

    **Arguments:**

    - `total`: the last step of the run.
    - `start`: the step the run (re)starts from.
    - `enabled`: show anything at all (False on processes other than 0).
    - `bar`: `True` rich bar, `False` plain lines, `None` = a bar when stdout is a terminal.
    - `every`: steps between plain lines.
    """

    def __init__(self, total: int, start: int, *, enabled: bool = True, bar: bool | None = None, every: int = 10):
        self.total, self.every, self.enabled = total, every, enabled
        self._start_time, self._start_step = time.time(), start
        self._bar = None
        if enabled and (sys.stdout.isatty() if bar is None else bar):
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeRemainingColumn

            self._bar = RichProgress(
                TextColumn("step"), MofNCompleteColumn(), BarColumn(),
                TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[tps]} tok/s"),
                TextColumn("ETA"), TimeRemainingColumn(),
            )
            self._task = self._bar.add_task("train", total=total, completed=start, loss="-", tps="-")
            self._bar.start()

    def update(self, step: int, loss: float, tokens_per_s: float) -> None:
        """Reports that `step` finished with `loss` at `tokens_per_s` recent throughput."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(self._task, completed=step, loss=f"{loss:.4f}", tps=f"{tokens_per_s:,.0f}")
        elif step % self.every == 0 or step == self.total:
            done = step - self._start_step
            elapsed = time.time() - self._start_time
            eta = elapsed / max(done, 1) * (self.total - step)
            print(f"step {step}/{self.total}  loss {loss:.4f}  {tokens_per_s:,.0f} tok/s  ETA {eta:,.0f}s", flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
