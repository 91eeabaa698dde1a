"""Exit codes of `python -m train.main`, and the one line that explains a failure.

| code | meaning |
|---|---|
| 0 | finished, or stopped by `--stop-after` (with a checkpoint) |
| 1 | unexpected error (a bug): the traceback is in the run's `train.log`, or shown with `--debug` |
| 2 | bad flags or input (including a resume whose flags the saved run cannot follow) |
| 3 | non-finite loss or gradient (the last good checkpoint is kept) |
| 4 | data or checkpoint integrity: no checkpoint verifies, a damaged run folder |
| 5 | out of disk space or memory, or no permission to write |
| 6 | the run folder is in use by another process |
| 128 + N | interrupted by signal N (130 SIGINT, 143 SIGTERM); in training, after writing a checkpoint |
"""

from __future__ import annotations

import errno
import re

EXIT_UNEXPECTED = 1
EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3
EXIT_INTEGRITY = 4
EXIT_NO_RESOURCES = 5
EXIT_BUSY = 6

_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_NO_PERMISSION = (errno.EACCES, errno.EPERM, errno.EROFS)
# Libraries that wrap the OS error (tensorstore, XLA) keep its text: read it there.
_SPACE_TEXT = re.compile(r"No space left on device|Disk quota exceeded|os_error_code='(?:28|122)'")
_PERMISSION_TEXT = re.compile(r"Permission denied|Read-only file system|Operation not permitted")
_MEMORY_TEXT = re.compile(r"RESOURCE_EXHAUSTED: Out of memory|Cannot allocate memory|out of memory", re.IGNORECASE)


class RunFolderDamaged(RuntimeError):
    """A run folder's own files (e.g. `config.json`) cannot be read back."""


def one_line(error: BaseException) -> str:
    """**Returns:** the error's message on one line (whitespace collapsed)."""
    return re.sub(r"\s+", " ", str(error)).strip() or type(error).__name__


def _chain(error: BaseException):
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def resource_problem(error: BaseException) -> str | None:
    """**Returns:** "disk space", "permission" or "memory" when `error` (or its cause) is an
    exhausted or forbidden resource, else None."""
    for link in _chain(error):
        if isinstance(link, MemoryError):
            return "memory"
        if isinstance(link, OSError) and link.errno in _NO_SPACE:
            return "disk space"
        if isinstance(link, OSError) and link.errno in _NO_PERMISSION:
            return "permission"
        text = str(link)
        if _SPACE_TEXT.search(text):
            return "disk space"
        if _PERMISSION_TEXT.search(text):
            return "permission"
        if _MEMORY_TEXT.search(text):
            return "memory"
    return None


def short_cause(error: BaseException, limit: int = 200) -> str:
    """**Returns:** the gist of an error for a one-line message: the operating system's words when
    a wrapped OS error carries them ("No space left on device"), else its first `limit` characters."""
    for link in _chain(error):
        if isinstance(link, OSError) and link.strerror:
            return link.strerror + (f": {link.filename}" if link.filename else "")
        for pattern in (_SPACE_TEXT, _PERMISSION_TEXT):
            found = pattern.search(str(link))
            if found and not found.group(0).startswith("os_error_code"):
                return found.group(0)
    text = one_line(error)
    return text if len(text) <= limit else text[:limit] + "..."


def describe(error: BaseException, out: str | None) -> tuple[int, str]:
    """Maps an exception that ended a run to `(exit code, one-line message)`.

    **Arguments:** `error`; `out`: the run folder, when known (named in the advice).
    """
    from skipless_checkpoint import CheckpointIntegrityError

    from .loop import NonFiniteLoss
    from .run_lock import RunFolderBusy

    resume = f"python -m train.main --resume --out {out}" if out else "python -m train.main --resume --out DIR"
    if isinstance(error, RunFolderBusy):
        return EXIT_BUSY, one_line(error)
    if isinstance(error, NonFiniteLoss):
        return EXIT_DIVERGED, one_line(error)
    problem = resource_problem(error)
    if problem == "disk space":
        return EXIT_NO_RESOURCES, (f"out of disk space: {_gist(error)}. Free some space, then continue with: {resume}")
    if problem == "permission":
        return EXIT_NO_RESOURCES, f"no permission to write: {_gist(error)}. Pass --out in a folder you can write to."
    if problem == "memory":
        return EXIT_NO_RESOURCES, (f"out of memory: {_gist(error)}. Use a smaller --batch-size, --seq-len or model, "
                                   "or spread it over more devices with --mesh.")
    if isinstance(error, (CheckpointIntegrityError, RunFolderDamaged)):
        return EXIT_INTEGRITY, one_line(error)
    if isinstance(error, (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError)):
        return EXIT_BAD_INPUT, one_line(error)
    return EXIT_UNEXPECTED, f"unexpected {type(error).__name__}: {_gist(error)}"


def _gist(error: BaseException) -> str:
    """The error's own message when it is short (ours are), else the cause's gist."""
    text = one_line(error)
    return text if len(text) <= 400 else short_cause(error)
