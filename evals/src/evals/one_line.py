"""One-line reporting shared by the evals command lines: checkpoint fallbacks as `warning:` lines, errors as one
`error:` line with the exit code the project uses (4: no checkpoint verifies; 2: bad input)."""

from __future__ import annotations

import contextlib
import sys
import warnings


def _line(error: BaseException | warnings.WarningMessage) -> str:
    return " ".join(str(getattr(error, "message", error)).split())


@contextlib.contextmanager
def announce_checkpoint_fallbacks():
    """Runs the block with each `CheckpointFallbackWarning` recorded, then prints each as one `warning:` line."""
    from skipless_checkpoint import CheckpointFallbackWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CheckpointFallbackWarning)
        yield
    for warning in caught:
        if issubclass(warning.category, CheckpointFallbackWarning):
            print(f"warning: {_line(warning)}", file=sys.stderr)


def refuse(error: BaseException) -> int:
    """Prints `error` as one line on stderr; returns 4 for a checkpoint that does not verify, else 2."""
    from skipless_checkpoint import CheckpointIntegrityError

    print(f"error: {_line(error)}", file=sys.stderr)
    return 4 if isinstance(error, CheckpointIntegrityError) else 2
