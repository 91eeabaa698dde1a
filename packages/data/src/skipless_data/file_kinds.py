"""What a file is, by its content: compressed (and how), text, or something that is not text.

Compression is recognised by the first bytes (magic numbers), never by the file name, so a `.gz`
file is decompressed and a plain file named `.gz` is read as it is. Text is checked on the first
`SNIFF_BYTES` bytes after decompression: known binary formats are named, NUL bytes or a large share
of bytes that are neither UTF-8 nor ordinary text characters mark binary data.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import re
from typing import BinaryIO

from .errors import DataError

SNIFF_BYTES = 64 << 10
# Share of undecodable bytes and control characters above which a file is binary, not text.
MAX_NON_TEXT_SHARE = 0.2
COMPRESSIONS = {"gzip": b"\x1f\x8b", "xz": b"\xfd7zXZ\x00", "bzip2": b"BZh", "zstd": b"\x28\xb5\x2f\xfd"}
_BINARY_MAGIC = (
    (b"PK\x03\x04", "a zip archive; unpack it and give the text files"),
    (b"7z\xbc\xaf\x27\x1c", "a 7z archive; unpack it and give the text files"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF-", "a PDF document; extract its text first"),
    (b"\x7fELF", "an executable (ELF)"),
    (b"PAR1", "a Parquet file; convert it to JSON Lines, or use hf:parquet"),
    (b"\x93NUMPY", "a NumPy array file"),
    (b"SQLite format 3\x00", "an SQLite database"),
)
_BOMS = ((b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16"), (b"\x00\x00\xfe\xff", "UTF-32"))
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f\ufffd]")


def compression_of(head: bytes) -> str | None:
    """The compression format whose magic number starts `head`, or None."""
    for name, magic in COMPRESSIONS.items():
        if head.startswith(magic) and (name != "bzip2" or head[3:4].isdigit()):
            return name
    return None


def _zstd_reader(raw: BinaryIO) -> BinaryIO:
    import zstandard  # imported where needed: most corpora are not zstd

    reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    return io.BufferedReader(reader, buffer_size=1 << 20)


def open_decompressed(raw: BinaryIO, compression: str | None) -> BinaryIO:
    """A binary stream of `raw`'s content, decompressed if `compression` names a format."""
    if compression is None:
        return raw
    if compression == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if compression == "xz":
        return lzma.LZMAFile(raw)
    if compression == "bzip2":
        return bz2.BZ2File(raw)
    return _zstd_reader(raw)


def decompression_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a damaged or truncated compressed stream raises while being read."""
    import zstandard

    return (OSError, EOFError, lzma.LZMAError, gzip.BadGzipFile, zstandard.ZstdError)


def damaged(path: str, compression: str, error: BaseException) -> DataError:
    """The one-line error for a compressed file that cannot be read to its end."""
    why = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return DataError(f"{path}: damaged or truncated {compression} data ({why}); replace the file.")


def _looks_binary(head: bytes) -> str | None:
    for magic, what in _BINARY_MAGIC:
        if head.startswith(magic):
            return what
    if len(head) > 262 and head[257:262] == b"ustar":
        return "a tar archive; unpack it and give the text files"
    for bom, name in _BOMS:
        if head.startswith(bom):
            return f"{name} text; convert it to UTF-8"
    if b"\x00" in head:
        return f"binary data (NUL bytes, the first at byte {head.index(0)})"
    text = head.decode("utf-8", errors="replace")
    odd = len(_CONTROL.findall(text))
    if odd > MAX_NON_TEXT_SHARE * max(len(text), 1):
        return f"binary data ({odd / len(text):.0%} of its first {len(head)} bytes are not text)"
    return None


def read_head(path: str) -> tuple[str | None, bytes]:
    """`(compression, first SNIFF_BYTES bytes of the content)` of a file, decompressed."""
    with open(path, "rb") as raw:
        compression = compression_of(raw.read(8))
        raw.seek(0)
        stream = open_decompressed(raw, compression)
        try:
            head = stream.read(SNIFF_BYTES)
        except decompression_errors() as error:
            raise damaged(path, compression or "text", error) from None
    return compression, head


def check_text(path: str) -> str | None:
    """Refuse a file whose content is not text; **Returns:** its compression (or None).

    **Raises:** `DataError` naming the file and what it looks like.
    """
    compression, head = read_head(path)
    what = _looks_binary(head)
    if what is not None:
        inside = f"{compression}-compressed " if compression else ""
        raise DataError(f"{path}: not text but {inside}{what}; give UTF-8 text or JSON Lines.")
    return compression


def is_blank(path: str, compression: str | None) -> bool:
    """Whether the content holds nothing but ASCII whitespace (read until the first other byte)."""
    with open(path, "rb") as raw:
        stream = open_decompressed(raw, compression)
        try:
            while block := stream.read(1 << 20):
                if block.strip():
                    return False
        except decompression_errors() as error:
            raise damaged(path, compression or "text", error) from None
    return True


def content_size(path: str, compression: str | None) -> int:
    """Bytes of the (decompressed) content; a full pass over a compressed file."""
    if compression is None:
        return os.path.getsize(path)
    size = 0
    with open(path, "rb") as raw:
        stream = open_decompressed(raw, compression)
        try:
            while block := stream.read(1 << 20):
                size += len(block)
        except decompression_errors() as error:
            raise damaged(path, compression, error) from None
    return size
