"""`<run>/train.log`: where the libraries' own error output goes while the run folder is ours.

Orbax reports one failed write as dozens of asyncio tracebacks and logging lines, printed while
the trainer is still deciding what happened. While a `RunLog` is active, Python-level stderr
(tracebacks printed by libraries, `logging`, `warnings`) is appended to `train.log` instead, and
the trainer's own lines go to `RunLog.console` (the terminal's stderr). The traceback of the error
that ends the run is appended last. Output written by C++ straight to file descriptor 2 (XLA's
fatal errors) still reaches the terminal.

After a failed run, asyncio's reports go on to the log: the parallel writes of a failed checkpoint
leave tasks whose exceptions nobody retrieved, and asyncio reports each one when its task is
garbage-collected, which can be after the trainer has printed its one line (at interpreter exit).
The next `RunLog` takes that route back.
"""

from __future__ import annotations

import gc
import logging
import pathlib
import sys
import time
import traceback
from typing import IO

LOG_FILE = "train.log"


class _Quiet:
    """A text stream that never raises (a full disk must not turn logging into a second failure)."""

    def __init__(self, handle: IO[str]):
        self.handle, self.failed = handle, False

    def write(self, text: str) -> int:
        try:
            return self.handle.write(text)
        except (OSError, ValueError):
            self.failed = True
            return len(text)

    def flush(self) -> None:
        try:
            self.handle.flush()
        except (OSError, ValueError):
            self.failed = True

    def isatty(self) -> bool:
        return False


class RunLog:
    """Redirects Python-level stderr into `folder/<name>` for the duration of a `with` block.

    **Arguments:** `folder` (the run folder, existing), `name` (file name; process 0 uses
    `train.log`), `enabled` (False: log nothing and redirect nothing, e.g. with `--debug`),
    `header` (first line of this invocation's section).

    **Attributes:** `console` (the stream for lines the user must see), `path` (the log file, or
    None when it could not be opened or written).
    """

    def __init__(self, folder: str | pathlib.Path, *, name: str = LOG_FILE, enabled: bool = True, header: str = ""):
        self.console = sys.stderr
        self.path: pathlib.Path | None = pathlib.Path(folder) / name if enabled else None
        self._header = header
        self._stream: _Quiet | None = None
        self._handlers: list[tuple[logging.StreamHandler, IO]] = []

    def __enter__(self) -> "RunLog":
        _late_route.close()
        if self.path is None:
            return self
        try:
            self._stream = _Quiet(open(self.path, "a", buffering=1))
        except OSError:
            self.path = None
            return self
        self._stream.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S %Z')} {self._header}\n")
        self.console = sys.stderr
        sys.stderr = self._stream
        for handler in _stream_handlers():
            if handler.stream in (self.console, sys.__stderr__):
                self._handlers.append((handler, handler.setStream(self._stream)))
        return self

    def record(self, error: BaseException) -> pathlib.Path | None:
        """Appends `error`'s traceback. **Returns:** the log's path, or None if it could not be written."""
        if self._stream is None:
            return None
        self._stream.write("".join(traceback.format_exception(error)))
        self._stream.flush()
        return None if self._stream.failed else self.path

    def __exit__(self, exc_type: type | None, *exc_info: object) -> None:
        if self._stream is None:
            return
        if exc_type is not None:
            gc.collect()  # abandoned failed tasks that are garbage already report now, into the log
            _late_route.open(self.path)
        for handler, previous in self._handlers:
            handler.setStream(previous)
        self._handlers = []
        if sys.stderr is self._stream:
            sys.stderr = self.console
        try:
            self._stream.handle.close()
        except OSError:
            pass
        self._stream = None


class _LateRoute:
    """asyncio's logger, sent to a failed run's log file instead of the console (see the module doc)."""

    def __init__(self):
        self._handler: logging.StreamHandler | None = None

    def open(self, path: pathlib.Path) -> None:
        self.close()
        try:
            stream = _Quiet(open(path, "a", buffering=1))
        except OSError:
            return
        self._handler = logging.StreamHandler(stream)
        self._handler.setFormatter(logging.Formatter("%(levelname)s:%(name)s:%(message)s"))
        logger = logging.getLogger("asyncio")
        logger.addHandler(self._handler)
        logger.propagate = False

    def close(self) -> None:
        if self._handler is None:
            return
        logger = logging.getLogger("asyncio")
        logger.removeHandler(self._handler)
        logger.propagate = True
        try:
            self._handler.stream.handle.close()
        except OSError:
            pass
        self._handler = None


_late_route = _LateRoute()


def _stream_handlers() -> list[logging.StreamHandler]:
    """The root logger's stream handlers (absl and Orbax log through it); `logging.lastResort`
    needs no change, it looks up `sys.stderr` on every record."""
    return [h for h in logging.getLogger().handlers
            if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)]
