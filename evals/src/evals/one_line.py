"""One-line reporting shared by the evals command lines: checkpoint fallbacks as `warning:` lines, errors as one
`error:` line with the exit code the project uses (4: no checkpoint verifies; 2: bad input)."""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


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


def parse_command_line(parse_options: Callable[[list[str]], T], argv: Sequence[str] | None) -> T | None:
    """**Returns:** `parse_options(argv)` (`sys.argv[1:]` when `argv` is None), or None after printing a bad command
    line's one `error:` line (the caller exits 2). `train.cli_parse` is imported here, not at the top: the benchmarks'
    harness also runs against an older checkout's `train`, which may predate it."""
    from train.cli_parse import UsageError

    try:
        return parse_options(list(sys.argv[1:] if argv is None else argv))
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return None
