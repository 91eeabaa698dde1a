"""SIGTERM / SIGINT: during training, finish the current step, save a checkpoint and stop; before
and after it, stop at once with a clear line (`Interrupted`) instead of a traceback."""

from __future__ import annotations

import signal
import threading

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Interrupted(KeyboardInterrupt):
    """A SIGTERM or SIGINT that stops the program where it is (outside the training loop, or a
    second SIGINT while a stop is under way). **Attributes:** `signum`."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


def _raise(signum, frame) -> None:
    raise Interrupted(signum)


def interrupt_on_signals() -> dict:
    """Makes SIGTERM and SIGINT raise `Interrupted` in the main thread (no-op elsewhere).

    **Returns:** the previous handlers, for `restore_handlers`.
    """
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, _raise) for sig in SIGNALS}


def restore_handlers(previous: dict) -> None:
    """Puts back the handlers `interrupt_on_signals` replaced."""
    for sig, handler in previous.items():
        signal.signal(sig, handler)


class StopRequest:
    """Records a SIGTERM or SIGINT instead of dying, so the loop can checkpoint first.

    Use as a context manager around the training loop; the previous handlers come back on exit.
    A second SIGINT while stopping raises `Interrupted` (the escape hatch for a stuck save).
    """

    SIGNALS = SIGNALS

    def __init__(self):
        self.signum: int | None = None
        self._previous = {}

    @property
    def signal_name(self) -> str | None:
        return None if self.signum is None else signal.Signals(self.signum).name

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise Interrupted(signum)
        self.signum = signum

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}
