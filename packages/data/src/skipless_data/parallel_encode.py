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


def _start_worker(spec: str, text: str) -> None:
    global _worker_tokenizer
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one core per worker process
    _worker_tokenizer = tokenizer_from_str(spec, text)


def _encode_in_worker(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    return _worker_tokenizer.encode_concat(texts)


class BatchEncoder:
    """Maps `(key, texts)` batches to `(key, (ids, lengths))` in order (see the module docstring).

    **Arguments:**

    - `tokenizer`: a `ByteTokenizer` or `BpeTokenizer`.
    - `workers`: worker processes; `None` = every usable core; 1 = tokenise in this process.

    Use as a context manager; leaving it stops the workers (unfinished batches are dropped).
    """

    def __init__(self, tokenizer, workers: int | None = None):
        if workers is not None and workers < 1:
            raise ValueError(f"workers={workers} must be at least 1 (or None for every core).")
        self.tokenizer = tokenizer
        self.workers = usable_cores() if workers is None else workers
        self._pool = None

    def __enter__(self) -> "BatchEncoder":
        return self

    def _parallel(self) -> bool:
        if self._pool is None and self.workers > 1 and not isinstance(self.tokenizer, ByteTokenizer):
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(str(self.tokenizer.spec), self.tokenizer.to_str()),
            )
        return self._pool is not None

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def map(self, batches: Iterable[tuple[Any, list[str]]]) -> Iterator[tuple[Any, tuple[np.ndarray, np.ndarray]]]:
        """Tokenise each batch: yields `(key, (ids, lengths))` in the order of `batches`."""
        pending: collections.deque = collections.deque()
        for number, (key, texts) in enumerate(batches):
            if number < INLINE_BATCHES or not self._parallel():
                yield key, self.tokenizer.encode_concat(texts)
                continue
            pending.append((key, self._pool.submit(_encode_in_worker, texts)))
            if len(pending) > 2 * self.workers:
                key0, future = pending.popleft()
                yield key0, future.result()
        while pending:
            key0, future = pending.popleft()
            yield key0, future.result()
