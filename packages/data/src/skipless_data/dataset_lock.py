"""One preparer per dataset folder: an OS-level lock that dies with its holder.

Every process that prepares into a folder first takes an exclusive `flock` on its `.prepare.lock`.
A second process (on this host, or on another host of a shared file system whose locks span hosts,
as NFSv4 and Lustre with `flock` do) waits for the holder and then finds its finished dataset; a
holder killed with `kill -9` releases the lock with its death. Where the file system has no locks,
preparation goes on without one (with a warning): processes must then prepare one after another.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import os
import socket
import sys
import warnings
from collections.abc import Iterator

LOCK_FILE = ".prepare.lock"


@dataclasses.dataclass(frozen=True)
class LockState:
    """`held`: this process holds the lock (no one else prepares now); `waited`: it first waited
    for another process, which then prepared the data."""

    held: bool
    waited: bool
_NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


@contextlib.contextmanager
def prepare_lock(out_dir: str, *, announce: bool = True) -> Iterator[LockState]:
    """Hold the folder's preparation lock for the `with` block.

    **Arguments:** `out_dir`: the dataset folder (exists); `announce`: say on stderr whom we wait for.

    **Yields:** a `LockState`.
    """
    path = os.path.join(out_dir, LOCK_FILE)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except PermissionError:  # a read-only dataset folder can still be reused
        yield LockState(held=False, waited=False)
        return
    waited, held = False, True
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            if announce:
                print(f"waiting for {holder} to finish preparing {out_dir}", file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
            waited = True
        except OSError as error:
            if error.errno not in _NO_LOCKS:
                raise
            held = False
            warnings.warn(f"{out_dir}: the file system has no locks; prepare from one process at a time.",
                          RuntimeWarning, stacklevel=3)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        yield LockState(held=held, waited=waited)
    finally:
        os.close(fd)  # releases the lock
