"""Write a token stream into ArrayRecord shards of fixed-size records.

Record `r` of a split holds tokens `[r * chunk_tokens, (r + 1) * chunk_tokens)` of the split's
token stream as raw little-endian integers (only the last record may be shorter), so any window of
the stream is found by arithmetic. Files are written with `group_size:1` for fast random access.
"""

from __future__ import annotations

import os

import numpy as np
from jaxtyping import Int

from .checksums import file_checksum

# One record per group: reading record r does not decompress its neighbours.
WRITER_OPTIONS = "group_size:1,zstd:1"


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned dtype holding every token id (little-endian)."""
    if vocab_size <= 1 << 8:
        return np.dtype("<u1")
    if vocab_size <= 1 << 16:
        return np.dtype("<u2")
    return np.dtype("<u4")


class ShardWriter:
    """Append tokens; records of `chunk_tokens` go to files of at most `records_per_shard` records.

    **Arguments:**

    - `directory`: folder for the files (normally a private temporary folder).
    - `split`: file-name prefix, e.g. `"train"`.
    - `dtype`: on-disk token dtype (see `token_dtype`).
    - `chunk_tokens`: tokens per record.
    - `records_per_shard`: records per ArrayRecord file.
    - `first_file`: number of the first file written (an extended split rewrites its last file).

    After `close()`, `files` lists the names written and `checksums` their sizes and SHA-256.
    """

    def __init__(
        self,
        directory: str,
        split: str,
        dtype: np.dtype,
        chunk_tokens: int,
        records_per_shard: int,
        first_file: int = 0,
    ):
        if chunk_tokens < 1 or records_per_shard < 1:
            raise ValueError("chunk_tokens and records_per_shard must be positive.")
        self.directory, self.split, self.dtype = directory, split, np.dtype(dtype)
        self.chunk_tokens, self.records_per_shard = chunk_tokens, records_per_shard
        self.first_file = first_file
        self.files: list[str] = []
        self.checksums: dict[str, dict[str, int | str]] = {}
        self.records_per_file: list[int] = []
        self.num_tokens = 0
        self._pending: list[np.ndarray] = []
        self._pending_tokens = 0
        self._writer = None

    def write(self, tokens: Int[np.ndarray, " n"]) -> None:
        """Append tokens to the stream."""
        if tokens.size == 0:
            return
        self._pending.append(np.asarray(tokens).astype(self.dtype, copy=False))
        self._pending_tokens += tokens.size
        self.num_tokens += tokens.size
        if self._pending_tokens >= self.chunk_tokens:
            self._flush(final=False)

    def close(self) -> None:
        """Flush the last (possibly short) record and close the current file."""
        self._flush(final=True)
        self._close_file()

    def _close_file(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            name = self.files[-1]
            self.checksums[name] = file_checksum(os.path.join(self.directory, name))

    def _flush(self, final: bool) -> None:
        if not self._pending:
            return
        stream = np.concatenate(self._pending)
        full = (stream.size // self.chunk_tokens) * self.chunk_tokens
        end = stream.size if final else full
        for start in range(0, end, self.chunk_tokens):
            self._write_record(stream[start : min(start + self.chunk_tokens, end)])
        rest = stream[end:]
        self._pending = [rest] if rest.size else []
        self._pending_tokens = rest.size

    def _write_record(self, chunk: np.ndarray) -> None:
        from array_record.python.array_record_module import ArrayRecordWriter

        if self._writer is None or self.records_per_file[-1] == self.records_per_shard:
            self._close_file()
            name = f"{self.split}-{self.first_file + len(self.files):05d}.array_record"
            self._writer = ArrayRecordWriter(os.path.join(self.directory, name), WRITER_OPTIONS)
            self.files.append(name)
            self.records_per_file.append(0)
        self._writer.write(chunk.tobytes())
        self.records_per_file[-1] += 1
