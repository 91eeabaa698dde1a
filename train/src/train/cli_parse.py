"""Command lines generated from dataclasses (tyro), with the house's conventions.

Every flag is a dataclass field: its type (`Literal[...]` for choices) gives the accepted values and its
docstring the `--help` text. Nested dataclasses are flattened (`--attention`, not `--model.attention`),
flags are spelled with hyphens, booleans of the configs take a value (`--causal false`: true/false, yes/no,
on/off, 1/0, any case) and optional values accept `none`. A bad command line raises `UsageError` with
tyro's message on one line (the caller prints it and exits 2); `--help` prints and exits 0.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Callable, Sequence
from typing import TypeVar

import tyro
from tyro.constructors import ConstructorRegistry, PrimitiveConstructorSpec, PrimitiveTypeInfo

T = TypeVar("T")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


class UsageError(ValueError):
    """A command line that does not parse; the message is one line."""


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _parse_none(text: str) -> None:
    if text.strip().lower() != "none":
        raise ValueError(f"expected none, got {text!r}")
    return None


_REGISTRY = ConstructorRegistry()


@_REGISTRY.primitive_rule
def _bool_rule(info: PrimitiveTypeInfo) -> PrimitiveConstructorSpec | None:
    if info.type is not bool:
        return None
    return PrimitiveConstructorSpec(nargs=1, metavar="{true,false}", instance_from_str=lambda args: parse_bool(args[0]),
                                    is_instance=lambda x: isinstance(x, bool), str_from_instance=lambda x: [str(x).lower()])


@_REGISTRY.primitive_rule
def _none_rule(info: PrimitiveTypeInfo) -> PrimitiveConstructorSpec | None:
    if info.type is not type(None):
        return None
    return PrimitiveConstructorSpec(nargs=1, metavar="none", instance_from_str=lambda args: _parse_none(args[0]),
                                    is_instance=lambda x: x is None, str_from_instance=lambda x: ["none"])


def _one_line(text: str) -> str:
    """tyro's error box as one line: its first section, the message (the box's title, its drawing, the argument's
    help and the "For full helptext" footer dropped). The box is drawn in UTF-8 (title in the top border) or in
    ASCII (title on a line of its own, then a rule)."""
    raw = [line.strip() for line in text.splitlines() if line.strip()]
    sections: list[list[str]] = [[]]
    for line in raw:
        core = line.strip("│╭╮╰╯|").strip()
        if line.startswith(("╭", "╰")) or not core:
            continue
        if set(core) <= set("─-━"):
            sections.append([])
            continue
        sections[-1].append(core)
    sections = [section for section in sections if section]
    if raw and not raw[0].startswith("╭") and len(sections) > 1:
        sections = sections[1:]  # ASCII: the first section is the title
    body = [line for line in (sections[0] if sections else []) if not line.startswith("For full helptext")]
    message = re.sub(r"\s+", " ", " ".join(body)).strip()
    return message or "the command line does not parse; see --help"


def flag_names(argv: Sequence[str]) -> set[str]:
    """**Returns:** the flags given in `argv`, as field names (`--seq-len=8` → "seq_len")."""
    return {token[2:].split("=", 1)[0].replace("-", "_") for token in argv if token.startswith("--") and len(token) > 2}


def merge_repeated(argv: Sequence[str], flag: str) -> list[str]:
    """Joins the values of every `flag` occurrence into the first (`--f a --f b` → `--f a b`), so a flag that takes
    several values may also be repeated."""
    values: list[str] = []
    rest: list[str] = []
    position = None
    index = 0
    while index < len(argv):
        token = argv[index]
        if token == flag or token.startswith(flag + "="):
            position = len(rest) if position is None else position
            if "=" in token:
                values.append(token.split("=", 1)[1])
            index += 1
            while index < len(argv) and not argv[index].startswith("--"):
                values.append(argv[index])
                index += 1
            continue
        rest.append(token)
        index += 1
    if position is None:
        return list(argv)
    return rest[:position] + [flag, *values] + rest[position:]


def parse(target: Callable[..., T], argv: Sequence[str], *, prog: str, description: str) -> T:
    """Parses `argv` into `target` (a dataclass, or a function of dataclasses with defaults) with tyro.

    **Returns:** what `target` returns. Raises `UsageError` (one line) for a bad command line; `--help` prints
    the help and raises `SystemExit(0)`.
    """
    captured = io.StringIO()
    try:
        with _REGISTRY, contextlib.redirect_stderr(captured):
            return tyro.cli(target, args=list(argv), prog=prog, description=description,
                            config=(tyro.conf.OmitArgPrefixes,))
    except SystemExit as stop:
        if stop.code in (0, None):
            raise
        raise UsageError(_one_line(captured.getvalue())) from None

