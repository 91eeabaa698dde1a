"""A split of a corpus as a re-iterable stream of text pieces, with a fingerprint for caching."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any


@dataclasses.dataclass(frozen=True)
class TextStream:
    """One split of a corpus, read lazily.

    **Arguments:**

    - `pieces`: a function returning a fresh iterator of `(text, progress)` pairs, where `progress`
        is how far that piece advances the progress bar (bytes of input).
    - `total`: the progress total (bytes of input), or `None` when unknown.
    - `description`: a JSON-able description that changes whenever the content may have changed
        (file paths, sizes, modification times, generator parameters): it keys the shard cache.
    - `unit`: what `progress` counts, `"B"` (bytes) or `"row"`.

    The pieces must come out the same on every iteration: a split is extended by counting them.
    """

    pieces: Callable[[], Iterator[tuple[str, int]]]
    total: int | None
    description: Any
    unit: str = "B"

    def texts(self) -> Iterator[str]:
        """The text pieces alone."""
        for text, _ in self.pieces():
            yield text
