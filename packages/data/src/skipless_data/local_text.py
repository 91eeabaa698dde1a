"""Local corpora: a text file, a folder of files, or JSON Lines, any of them compressed; streamed.

A folder is one corpus: every non-hidden file under it, in sorted order (the C4 layout of
`c4-train.NNNNN-of-01024.json.gz` shards, or WikiText's `.txt` files). Every file is checked to be
text before anything is read (see `file_kinds`). Without separate evaluation data, the last
`eval_fraction` of the corpus (by bytes on disk) is held out, cut at the next line boundary; a line
longer than `MAX_PIECE_BYTES` is cut inside instead (at a UTF-8 character boundary).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import warnings
from collections.abc import Iterator

from .errors import DataError
from .file_kinds import (
    check_text,
    content_size,
    damaged,
    decompression_errors,
    is_blank,
    open_decompressed,
    read_head,
)
from .text_stream import TextStream

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
COMPRESSED_SUFFIXES = (".gz", ".xz", ".bz2", ".zst", ".zstd")
# Text is read in pieces of at most this many bytes (a longer line becomes several pieces).
MAX_PIECE_BYTES = 1 << 20


@dataclasses.dataclass(frozen=True)
class FileRange:
    """Bytes `[start, end)` of a file's content (after decompression); `end=None`: to its end."""

    path: str
    start: int
    end: int | None
    jsonl: bool
    compression: str | None = None
    content: int | None = None  # size of the whole decompressed content, when it was measured


def list_corpus_files(path: str | os.PathLike) -> list[str]:
    """The files of a corpus: the file itself, or every non-hidden file under a folder, sorted.

    **Raises:** `FileNotFoundError` for a missing path, `DataError` for an empty folder.
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
        raise DataError(f"data folder {path!r} holds no files; put text or .jsonl files in it.")
    return [os.path.abspath(f) for f in sorted(files)]


def _is_jsonl(path: str) -> bool:
    name = path.lower()
    for suffix in COMPRESSED_SUFFIXES:
        name = name.removesuffix(suffix)
    return name.endswith(JSONL_SUFFIXES)


def whole_files(files: list[str]) -> list[FileRange]:
    """Each file whole, after checking that its content is text (compressed or not)."""
    ranges = []
    for f in files:
        compression = check_text(f)
        end = os.path.getsize(f) if compression is None else None
        ranges.append(FileRange(f, 0, end, _is_jsonl(f), compression))
    return ranges


def refuse_blank(source: str, ranges: list[FileRange]) -> None:
    """Raise `DataError` when every file holds only whitespace (or nothing)."""
    if any(not is_blank(r.path, r.compression) for r in ranges):
        return
    if len(ranges) == 1:
        r = ranges[0]
        size = os.path.getsize(r.path)
        inside = f" after {r.compression} decompression" if r.compression else ""
        empty = size == 0 or not read_head(r.path)[1]
        what = f"is empty{inside}" if empty else f"holds only whitespace{inside}"
        raise DataError(f"{r.path} {what} ({size} bytes on disk); give a file with text.")
    raise DataError(f"{source}: all {len(ranges)} files are empty or whitespace only; give text.")


def _skip(stream, count: int) -> None:
    while count > 0:
        block = stream.read(min(count, 1 << 20))
        if not block:
            return
        count -= len(block)


def _utf8_boundary(raw: bytes) -> int:
    """Length of the longest prefix of `raw` that does not end inside a UTF-8 character."""
    for back in range(1, min(4, len(raw)) + 1):
        byte = raw[-back]
        if byte & 0xC0 != 0x80:  # not a continuation byte: the start of the last character
            needed = 1 if byte < 0x80 else 2 if byte >> 5 == 0x6 else 3 if byte >> 4 == 0xE else 4
            return len(raw) if back >= needed else len(raw) - back
    return len(raw)


def _boundary_after(r: FileRange, at: int, window: int) -> int:
    """The first cut at or after content offset `at`: a line end within `window` bytes (any
    distance for JSON Lines, whose records stay whole), else `at` moved to a character start."""
    with open(r.path, "rb") as raw:
        stream = open_decompressed(raw, r.compression)
        try:
            _skip(stream, at)
            line = stream.readline() if r.jsonl else stream.readline(max(window, 1))
        except decompression_errors() as error:
            raise damaged(r.path, r.compression or "text", error) from None
    if r.jsonl or line.endswith(b"\n"):
        return at + len(line)
    continuation = len(line) - len(line.lstrip(bytes(range(0x80, 0xC0))))
    return at + continuation


def split_tail(ranges: list[FileRange], eval_fraction: float) -> tuple[list[FileRange], list[FileRange]]:
    """Split file ranges into (train, eval), eval being the last `eval_fraction` of the bytes on disk.

    A compressed file that straddles the cut is cut at the same fraction of its content. The cut
    moves forward to the next line end unless that is more than `MAX_PIECE_BYTES` away or would
    take more than half of what the last file holds after the cut (one long line is cut inside).
    """
    if not 0.0 < eval_fraction < 1.0:
        raise DataError(f"eval_fraction={eval_fraction} must lie strictly between 0 and 1.")
    sizes = [os.path.getsize(r.path) for r in ranges]
    cut = math.floor(sum(sizes) * (1.0 - eval_fraction))
    train, evals, offset = [], [], 0
    for number, (r, size) in enumerate(zip(ranges, sizes)):
        if offset + size <= cut:
            train.append(r)
        elif offset >= cut:
            evals.append(r)
        else:
            content = content_size(r.path, r.compression)
            at = (cut - offset) if r.compression is None else math.floor(content * (cut - offset) / size)
            last = number == len(ranges) - 1
            window = min(MAX_PIECE_BYTES, (content - at) // 2) if last else MAX_PIECE_BYTES
            boundary = _boundary_after(r, at, window)
            train.append(dataclasses.replace(r, end=boundary, content=content))
            evals.append(dataclasses.replace(r, start=boundary, end=content, content=content))
        offset += size
    train = [r for r in train if r.end is None or r.end > r.start]
    evals = [r for r in evals if r.end is None or r.end > r.start]
    return train, evals


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
        raise DataError(
            f"{path}:{line_number}: invalid JSON ({error.msg}); fix or remove the line "
            "(JSON Lines files hold one object per line)."
        ) from None
    if not isinstance(record, dict) or text_field not in record:
        keys = sorted(record) if isinstance(record, dict) else type(record).__name__
        raise DataError(
            f"{path}:{line_number}: no field {text_field!r} (found {keys}); pass --text-field "
            "with the name of the text field."
        )
    text = str(record[text_field])
    return text if text.endswith("\n") else text + "\n"


def _raw_pieces(stream, r: FileRange) -> Iterator[bytes]:
    """Lines of the range (text lines in pieces of at most `MAX_PIECE_BYTES`)."""
    position, carry = r.start, b""
    while r.end is None or position < r.end:
        if r.jsonl:
            piece = stream.readline()
        else:
            want = MAX_PIECE_BYTES if r.end is None else min(MAX_PIECE_BYTES, r.end - position)
            piece = carry + (stream.readline(want - len(carry)) if want > len(carry) else b"")
            carry = b""
            if len(piece) == MAX_PIECE_BYTES and not piece.endswith(b"\n"):
                keep = _utf8_boundary(piece)
                if 0 < keep < len(piece):
                    piece, carry = piece[:keep], piece[keep:]
        if not piece:
            return
        position += len(piece)
        yield piece


def iter_range(r: FileRange, text_field: str = "text") -> Iterator[tuple[str, int]]:
    """Yield `(text, bytes read from disk)` per piece of a file range; JSON Lines yield their text
    field (a text longer than `MAX_PIECE_BYTES` characters in several pieces).

    Undecodable bytes are replaced by U+FFFD, with one warning per file.
    """
    bad_lines = [0]
    with open(r.path, "rb") as raw:
        stream = open_decompressed(raw, r.compression)
        pieces = _raw_pieces(stream, r)
        try:
            _skip(stream, r.start)
        except decompression_errors() as error:
            raise damaged(r.path, r.compression or "text", error) from None
        disk, line_number = raw.tell(), 0
        while True:
            try:
                piece = next(pieces, None)
            except decompression_errors() as error:
                raise damaged(r.path, r.compression or "text", error) from None
            if piece is None:
                break
            advance, disk = raw.tell() - disk, raw.tell()
            line_number += 1
            line = _decode_line(piece, bad_lines)
            if not r.jsonl:
                yield line, advance
                continue
            text = _jsonl_text(line, r.path, line_number, text_field) or ""
            for start in range(0, max(len(text), 1), MAX_PIECE_BYTES):
                yield text[start : start + MAX_PIECE_BYTES], advance if start == 0 else 0
    if bad_lines[0]:
        warnings.warn(
            f"{r.path}: {bad_lines[0]} line(s) held bytes that are not UTF-8; "
            "replaced with U+FFFD.",
            UnicodeWarning,
            stacklevel=2,
        )


def range_stream(ranges: list[FileRange], text_field: str = "text") -> TextStream:
    """A `TextStream` over file ranges, described by path, byte range, size and mtime.

    Progress counts bytes read from disk (compressed bytes for a compressed file).
    """

    def pieces() -> Iterator[tuple[str, int]]:
        for r in ranges:
            yield from iter_range(r, text_field)

    description, total = [], 0
    for r in ranges:
        stat = os.stat(r.path)
        description.append({
            "path": r.path,
            "start": r.start,
            "end": r.end,
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "compression": r.compression,
            "text_field": text_field if r.jsonl else None,
        })
        if r.compression is None:
            total += r.end - r.start
        elif r.content:  # part of a compressed file: its share of the bytes on disk
            total += stat.st_size * (r.end - r.start) // r.content
        else:
            total += stat.st_size
    return TextStream(pieces, total, description)


def local_streams(
    data: str | os.PathLike,
    eval_data: str | os.PathLike | None,
    *,
    eval_fraction: float,
    text_field: str,
) -> tuple[TextStream, TextStream]:
    """Train and eval streams for local data (a held-out tail when `eval_data` is None).

    **Raises:** `DataError` when a file is not text, or the data holds no text at all.
    """
    train = whole_files(list_corpus_files(data))
    refuse_blank(os.fspath(data), train)
    if eval_data is not None:
        evals = whole_files(list_corpus_files(eval_data))
        refuse_blank(os.fspath(eval_data), evals)
    else:
        train, evals = split_tail(train, eval_fraction)
    return range_stream(train, text_field), range_stream(evals, text_field)
