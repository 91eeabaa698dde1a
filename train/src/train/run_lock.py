"""One process per run folder: an OS lock (`flock`) on `<run>/.lock`, released by the kernel when
its holder exits in any way (kill -9 included), so a crash never leaves a folder locked.

The lock file is never deleted (deleting a lock file races with a process about to open it); it
holds the PID and host of its current or last holder, which a refused process names.
"""

from __future__ import annotations

import fcntl
import os
import pathlib
import socket
import time

LOCK_FILE = ".lock"


class RunFolderBusy(RuntimeError):
    """Another process holds the run folder's lock."""


class RunLock:
    """An exclusive, non-blocking lock on a run folder.

    **Arguments:** `folder`: the run folder (it must exist).

    `acquire()` raises `RunFolderBusy` naming the holder's PID when another process holds it;
    `release()` (or leaving the `with` block, or the process ending) frees it.
    """

    def __init__(self, folder: str | os.PathLike):
        self.path = pathlib.Path(folder) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> "RunLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise RunFolderBusy(
                f"{self.path.parent} is in use by {holder}; wait for it to end (or stop it), "
                "or pass another --out."
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since "
                      f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    text = os.pread(fd, 200, 0).decode(errors="replace").strip()
    if text.startswith("pid "):
        return "process " + text[len("pid "):].split()[0] + " " + " ".join(text.split()[2:])
    return "another process (its PID is not recorded yet)"
