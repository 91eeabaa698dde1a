"""Local corpora: a text file, a folder of files, or JSON Lines; streamed, never loaded whole.

A split with no separate evaluation data is cut at a line boundary: the last `eval_fraction` of
the bytes (over all files in sorted order) become the evaluation split.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import warnings
from collections.abc import Iterator

from .text_stream import TextStream

JSONL_SUFFIXES = (".jsonl", ".ndjson")
# Text lines longer than this are read in pieces (cut at a UTF-8 character boundary).
MAX_PIECE_BYTES = 1 << 20


@dataclasses.dataclass(frozen=True)
class FileRange:
    """Bytes `[start, end)` of one file; `start` and `end` lie on line boundaries."""

    path: str
    start: int
    end: int
    jsonl: bool


def list_corpus_files(path: str | os.PathLike) -> list[str]:
    """The files of a corpus: the file itself, or every non-hidden file under a folder, sorted.

    **Raises:** `FileNotFoundError` for a missing path, `ValueError` for an empty folder.
    """
    path = os.fspath(path)
    if os.path.isfile(path):
        return [os.path.abspath(path)]
    if not os.path.isdir(path):
        raise FileNotFoundError(
            f"data path {path!r} does not exist; pass an existing file or folder."
        )
    files = []
    for root, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files += [os.path.join(root, n) for n in sorted(names) if not n.startswith(".")]
    if not files:
        raise ValueError(f"data folder {path!r} holds no files; put text or .jsonl files in it.")
    return [os.path.abspath(f) for f in sorted(files)]


def _is_jsonl(path: str) -> bool:
    return path.lower().endswith(JSONL_SUFFIXES)


def whole_files(files: list[str]) -> list[FileRange]:
    return [FileRange(f, 0, os.path.getsize(f), _is_jsonl(f)) for f in files]


def split_tail(files: list[str], eval_fraction: float) -> tuple[list[FileRange], list[FileRange]]:
    """Split files into (train, eval) ranges, eval being the last `eval_fraction` of the bytes.

    The cut is moved forward to the next line boundary, so no line (or JSON record) is split.
    """
    if not 0.0 < eval_fraction < 1.0:
        raise ValueError(f"eval_fraction={eval_fraction} must lie strictly between 0 and 1.")
    ranges = whole_files(files)
    total = sum(r.end for r in ranges)
    cut = math.floor(total * (1.0 - eval_fraction))
    train, evals, offset = [], [], 0
    for r in ranges:
        if offset + r.end <= cut:
            train.append(r)
        elif offset >= cut:
            evals.append(r)
        else:
            with open(r.path, "rb") as f:
                f.seek(cut - offset)
                while (piece := f.readline(MAX_PIECE_BYTES)) and not piece.endswith(b"\n"):
                    pass
                boundary = f.tell()
            train.append(dataclasses.replace(r, end=boundary))
            evals.append(dataclasses.replace(r, start=boundary))
        offset += r.end
    train = [r for r in train if r.end > r.start]
    evals = [r for r in evals if r.end > r.start]
    return train, evals


def _utf8_boundary(raw: bytes) -> int:
    """Length of the longest prefix of `raw` that does not end inside a UTF-8 character."""
    for back in range(1, min(4, len(raw)) + 1):
        byte = raw[-back]
        if byte & 0xC0 != 0x80:  # not a continuation byte: the start of the last character
            needed = 1 if byte < 0x80 else 2 if byte >> 5 == 0x6 else 3 if byte >> 4 == 0xE else 4
            return len(raw) if back >= needed else len(raw) - back
    return len(raw)


def _read_piece(f, jsonl: bool) -> bytes:
    if jsonl:
        return f.readline()  # a record must be read whole
    raw = f.readline(MAX_PIECE_BYTES)
    if len(raw) == MAX_PIECE_BYTES and not raw.endswith(b"\n"):
        keep = _utf8_boundary(raw)
        if 0 < keep < len(raw):
            f.seek(keep - len(raw), os.SEEK_CUR)
            raw = raw[:keep]
    return raw


def _decode_line(raw: bytes, counter: list[int]) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        counter[0] += 1
        return raw.decode("utf-8", errors="replace")


def _jsonl_text(line: str, path: str, line_number: int, text_field: str) -> str | None:
    if not line.strip():
        return None
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{path}:{line_number}: invalid JSON ({error.msg}); fix or remove the line."
        ) from None
    if not isinstance(record, dict) or text_field not in record:
        keys = sorted(record) if isinstance(record, dict) else type(record).__name__
        raise ValueError(
            f"{path}:{line_number}: no field {text_field!r} (found {keys}); pass --text-field."
        )
    text = str(record[text_field])
    return text if text.endswith("\n") else text + "\n"


def iter_range(r: FileRange, text_field: str = "text") -> Iterator[tuple[str, int]]:
    """Yield `(text, bytes_read)` per line of a file range; JSON Lines yield their text field.

    Undecodable bytes are replaced by U+FFFD, with one warning per file.
    """
    bad_lines = [0]
    with open(r.path, "rb") as f:
        f.seek(r.start)
        position, line_number = r.start, 0
        while position < r.end:
            raw = _read_piece(f, r.jsonl)
            if not raw:
                break
            position += len(raw)
            line_number += 1
            line = _decode_line(raw, bad_lines)
            if r.jsonl:
                text = _jsonl_text(line, r.path, line_number, text_field)
                if text is not None:
                    yield text, len(raw)
                else:
                    yield "", len(raw)
            else:
                yield line, len(raw)
    if bad_lines[0]:
        warnings.warn(
            f"{r.path}: {bad_lines[0]} line(s) held bytes that are not UTF-8; "
            "replaced with U+FFFD.",
            UnicodeWarning,
            stacklevel=2,
        )


def range_stream(ranges: list[FileRange], text_field: str = "text") -> TextStream:
    """A `TextStream` over file ranges, described by path, byte range, size and mtime."""

    def pieces() -> Iterator[tuple[str, int]]:
        for r in ranges:
            yield from iter_range(r, text_field)

    description = [
        {
            "path": r.path,
            "start": r.start,
            "end": r.end,
            "size": os.path.getsize(r.path),
            "mtime_ns": os.stat(r.path).st_mtime_ns,
            "text_field": text_field if r.jsonl else None,
        }
        for r in ranges
    ]
    return TextStream(pieces, sum(r.end - r.start for r in ranges), description)


def local_streams(
    data: str | os.PathLike,
    eval_data: str | os.PathLike | None,
    *,
    eval_fraction: float,
    text_field: str,
) -> tuple[TextStream, TextStream]:
    """Train and eval streams for local data (a held-out tail when `eval_data` is None)."""
    files = list_corpus_files(data)
    if eval_data is not None:
        train = whole_files(files)
        evals = whole_files(list_corpus_files(eval_data))
    else:
        train, evals = split_tail(files, eval_fraction)
    return range_stream(train, text_field), range_stream(evals, text_field)
