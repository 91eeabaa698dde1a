"""The benchmarks' command lines: parsed by a module's `parse_options` (a dataclass through `train.cli_parse`), a
bad one reported as one `error:` line on stderr with exit status 2, as the other evals tools do.

`train.cli_parse` is imported only when a command line is parsed: the benchmarks' harness also runs against an
older checkout's `train` package (first on PYTHONPATH in `evals.bench_step_ab`'s baseline worker), which may
predate it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import NoReturn, TypeVar

T = TypeVar("T")


def refuse_usage(message: str) -> NoReturn:
    """Prints `error: message` on stderr and exits with status 2."""
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    raise SystemExit(2)


def options_or_exit(parse_options: Callable[[list[str]], T], argv: Sequence[str] | None) -> T:
    """**Returns:** `parse_options(argv)` (`sys.argv[1:]` when `argv` is None); a `UsageError` exits 2 with one line,
    `--help` exits 0."""
    from .one_line import parse_command_line

    args = parse_command_line(parse_options, argv)
    if args is None:
        raise SystemExit(2)
    return args


def comma_list(text: str) -> list[str]:
    """The non-empty items of a comma-separated flag value (`"a,,b"` → `["a", "b"]`)."""
    return [item.strip() for item in text.split(",") if item.strip()]
