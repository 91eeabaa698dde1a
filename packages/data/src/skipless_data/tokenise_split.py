"""Tokenise one split's text stream into shards, up to a token budget, resumable at any token.

Pieces of the stream (lines, records, rows) are numbered from 0; a split stops exactly at its
budget, possibly inside a piece, and records where it stopped (`pieces`, `skip_tokens`), so that a
larger budget later continues the same token stream: re-read the stream, skip `pieces` pieces and
the first `skip_tokens` tokens of the next, and go on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np

from .parallel_encode import BatchEncoder
from .prepare_progress import PrepareProgress
from .shard_writer import ShardWriter
from .text_stream import TextStream

BATCH_CHARS = 1 << 20


@dataclasses.dataclass
class SplitResult:
    """What `tokenise_split` added: tokens, their UTF-8 bytes, where the source continues
    (`pieces`, `skip_tokens`), whether the source ended (`complete`), and whether any piece held
    more than whitespace (`saw_text`)."""

    tokens: int = 0
    num_bytes: int = 0
    pieces: int = 0
    skip_tokens: int = 0
    complete: bool = False
    saw_text: bool = False


def _batches(stream: TextStream, start_piece: int, progress: PrepareProgress, result: SplitResult) -> Iterator[tuple[int, list[str]]]:
    batch, chars, first, index = [], 0, start_piece, -1
    for index, (text, advance) in enumerate(stream.pieces()):
        progress.read(advance)
        if index < start_piece:
            continue
        if not result.saw_text and text.strip():
            result.saw_text = True
        batch.append(text)
        chars += len(text)
        if chars >= BATCH_CHARS:
            yield first, batch
            batch, chars, first = [], 0, index + 1
    if batch:
        yield first, batch
    result.pieces = max(index + 1, start_piece)  # read only when the stream ran to its end


def tokenise_split(
    stream: TextStream,
    encoder: BatchEncoder,
    writer: ShardWriter,
    token_bytes: np.ndarray,
    progress: PrepareProgress,
    *,
    max_tokens: int | None,
    start_piece: int = 0,
    skip_tokens: int = 0,
) -> SplitResult:
    """Write the split's tokens from piece `start_piece` (less its first `skip_tokens` tokens)
    until the stream ends or `max_tokens` new tokens are written.

    **Returns:** a `SplitResult`.
    """
    result = SplitResult()
    batches = _batches(stream, start_piece, progress, result)
    for first, (ids, lengths, num_bytes) in encoder.map(batches):
        if first == start_piece and skip_tokens:
            ids, lengths, num_bytes = ids[skip_tokens:], lengths.copy(), None
            lengths[0] -= skip_tokens
        room = None if max_tokens is None else max_tokens - result.tokens
        if room is not None and ids.size >= room:
            ends = np.cumsum(lengths)
            piece = int(np.searchsorted(ends, room, side="left"))  # the piece holding token `room - 1`
            before = int(ends[piece - 1]) if piece else 0
            taken = room - before
            if first + piece == start_piece:
                taken += skip_tokens  # tokens of that piece already written before
            if taken == (lengths[piece] + (skip_tokens if first + piece == start_piece else 0)):
                result.pieces, result.skip_tokens = first + piece + 1, 0
            else:
                result.pieces, result.skip_tokens = first + piece, taken
            _write(writer, ids[:room], token_bytes, result, progress, None)
            batches.close()
            return result
        _write(writer, ids, token_bytes, result, progress, num_bytes)
    result.complete = True
    return result


def _write(writer: ShardWriter, ids: np.ndarray, token_bytes: np.ndarray, result: SplitResult,
           progress: PrepareProgress, num_bytes: int | None) -> None:
    """Append `ids`; `num_bytes` is their UTF-8 bytes when known (else counted here)."""
    writer.write(ids)
    result.tokens += int(ids.size)
    if num_bytes is None:
        num_bytes = int(token_bytes[ids].sum()) if ids.size else 0
    result.num_bytes += num_bytes
    progress.wrote(int(ids.size))
