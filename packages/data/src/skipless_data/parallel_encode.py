"""Tokenise batches of text over worker processes, results in input order, memory bounded.

With `workers > 1` each batch goes to one of `workers` spawned processes (each runs the tokenizer
single-threaded) while this process reads ahead; at most `2 * workers + 1` batches are in flight,
so a corpus is never held in memory. Results come back in submission order, so the token stream is
byte-identical to tokenising in this process. The first `INLINE_BATCHES` batches are encoded here
and the workers start only if more follow (starting them takes about a second), and byte tokens are
never worth a process: they are always encoded here.
"""

from __future__ import annotations

import collections
import multiprocessing
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

from .text_tokenizer import ByteTokenizer, tokenizer_from_str

INLINE_BATCHES = 4
_worker_tokenizer = None


def usable_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def encode_batch(tokenizer, texts: list[str], dtype: np.dtype, token_bytes: np.ndarray):
    """`(ids as dtype, tokens per text, UTF-8 bytes of all texts)` of one batch."""
    ids, lengths = tokenizer.encode_concat(texts)
    return ids.astype(dtype, copy=False), lengths, int(token_bytes[ids].sum()) if ids.size else 0


def default_workers() -> int:
    """Worker processes when none are asked for: one per usable core on more than 2 cores; on 2 or
    fewer, none (this process, with the tokenizer's own threads, measured faster there: see
    `evals.bench_prepare` in the package README)."""
    cores = usable_cores()
    return cores if cores > 2 else 1


def _start_worker(spec: str, text: str, dtype: str) -> None:
    global _worker_tokenizer
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one core per worker process
    tokenizer = tokenizer_from_str(spec, text)
    _worker_tokenizer = (tokenizer, np.dtype(dtype), tokenizer.token_bytes())


def _encode_in_worker(texts: list[str]):
    # The cast and the byte count happen here, off the reading process (half the bytes to send back).
    return encode_batch(_worker_tokenizer[0], texts, _worker_tokenizer[1], _worker_tokenizer[2])


class BatchEncoder:
    """Maps `(key, texts)` batches to `(key, (ids, lengths, num_bytes))` in order (see the module
    docstring): the batch's tokens as `dtype`, the token count of each text, and the UTF-8 bytes.

    **Arguments:**

    - `tokenizer`: a `ByteTokenizer` or `BpeTokenizer`.
    - `workers`: worker processes; 1 = tokenise in this process (with the tokenizer's own threads);
        `None` = `default_workers()`.
    - `dtype`: dtype of the returned ids (the shards' token dtype).

    Use as a context manager; leaving it stops the workers (unfinished batches are dropped).
    """

    def __init__(self, tokenizer, workers: int | None = None, dtype: np.dtype = np.dtype(np.int32)):
        if workers is not None and workers < 1:
            raise ValueError(f"workers={workers} must be at least 1 (or None for every core).")
        self.tokenizer, self.dtype, self.token_bytes = tokenizer, np.dtype(dtype), tokenizer.token_bytes()
        self.workers = default_workers() if workers is None else workers
        self._pool = None

    def __enter__(self) -> "BatchEncoder":
        return self

    def _parallel(self) -> bool:
        if self._pool is None and self.workers > 1 and not isinstance(self.tokenizer, ByteTokenizer):
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(str(self.tokenizer.spec), self.tokenizer.to_str(), self.dtype.str),
            )
        return self._pool is not None

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def map(self, batches: Iterable[tuple[Any, list[str]]]) -> Iterator[tuple[Any, tuple[np.ndarray, np.ndarray, int]]]:
        """Tokenise each batch: yields `(key, (ids, lengths, num_bytes))` in the order of `batches`."""
        pending: collections.deque = collections.deque()
        for number, (key, texts) in enumerate(batches):
            if number < INLINE_BATCHES or not self._parallel():
                yield key, encode_batch(self.tokenizer, texts, self.dtype, self.token_bytes)
                continue
            pending.append((key, self._pool.submit(_encode_in_worker, texts)))
            if len(pending) > 2 * self.workers:
                key0, future = pending.popleft()
                yield key0, future.result()
        while pending:
            key0, future = pending.popleft()
            yield key0, future.result()
