"""Every failure kind maps to its documented exit code and one line."""

import errno

import pytest

from skipless_checkpoint import CheckpointIntegrityError
from train.failures import (
    EXIT_BAD_INPUT, EXIT_BUSY, EXIT_DIVERGED, EXIT_INTEGRITY, EXIT_NO_RESOURCES, EXIT_UNEXPECTED, RunFolderDamaged,
    describe, short_cause,
)
from train.loop import CheckpointWriteFailed, NonFiniteLoss
from train.run_lock import RunFolderBusy


def _wrapped(outer: Exception, inner: BaseException) -> Exception:
    try:
        try:
            raise inner
        except BaseException as cause:
            raise outer from cause
    except Exception as error:
        return error


# tensorstore reports a full disk as a ValueError carrying the OS text (seen with orbax-checkpoint 0.12.8).
TENSORSTORE_FULL = ValueError('RESOURCE_EXHAUSTED: Error writing "x/0" in OCDBT database at local file "/r/": '
                              "Failed to write 182749 bytes to file 9: No space left on device [os_error_code='28']")


@pytest.mark.parametrize("error, code, words", [
    (ValueError("--lr=-1 must be positive"), EXIT_BAD_INPUT, "--lr=-1"),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "data.txt"), EXIT_BAD_INPUT, "data.txt"),
    (NonFiniteLoss("non-finite loss at step 3"), EXIT_DIVERGED, "step 3"),
    (CheckpointIntegrityError("no checkpoint verifies"), EXIT_INTEGRITY, "verifies"),
    (RunFolderDamaged("config.json cannot be read"), EXIT_INTEGRITY, "config.json"),
    (OSError(errno.ENOSPC, "No space left on device"), EXIT_NO_RESOURCES, "out of disk space"),
    (_wrapped(CheckpointWriteFailed("writing a checkpoint failed"), TENSORSTORE_FULL), EXIT_NO_RESOURCES,
     "out of disk space"),
    (PermissionError(errno.EACCES, "Permission denied", "/runs/x"), EXIT_NO_RESOURCES, "no permission to write"),
    (OSError(errno.EROFS, "Read-only file system", "/runs/x"), EXIT_NO_RESOURCES, "Pass --out"),
    (MemoryError("Unable to allocate 74.5 GiB"), EXIT_NO_RESOURCES, "out of memory"),
    (RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 80 GiB"), EXIT_NO_RESOURCES, "--mesh"),
    (RunFolderBusy("runs/x is in use by process 12"), EXIT_BUSY, "process 12"),
    (KeyError("surprise"), EXIT_UNEXPECTED, "unexpected KeyError"),
])
def test_each_failure_has_its_code_and_one_line(error, code, words):
    got, line = describe(error, "runs/x")
    assert got == code and words in line and "\n" not in line


def test_the_gist_of_a_wrapped_os_error_is_the_os_words():
    assert short_cause(_wrapped(RuntimeError("checkpoint failed"), TENSORSTORE_FULL)) == "No space left on device"
    assert "--resume --out runs/x" in describe(OSError(errno.ENOSPC, "No space left on device"), "runs/x")[1]
    assert len(short_cause(ValueError("x" * 1000))) < 210
