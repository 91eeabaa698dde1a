"""SIGTERM / SIGINT: finish the current step, save a checkpoint, exit cleanly."""

from __future__ import annotations

import signal
import threading


class StopRequest:
    """Records a SIGTERM or SIGINT instead of dying, so the loop can checkpoint first.

    Use as a context manager around the training loop; the previous handlers come back on exit.
    A second SIGINT while stopping raises `KeyboardInterrupt` (the escape hatch for a stuck save).
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.signal_name: str | None = None
        self._previous = {}

    @property
    def requested(self) -> bool:
        return self.signal_name is not None

    def _handle(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}
