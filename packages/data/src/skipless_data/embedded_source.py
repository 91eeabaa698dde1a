"""The embedded corpus as train and eval text streams (independent samples of one source)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np

from . import embedded_corpus
from .text_stream import TextStream

EMBEDDED = "embedded"


def is_embedded(data) -> bool:
    """Whether `data` names the embedded corpus (`None` or `"embedded"`)."""
    return data is None or data == EMBEDDED


def embedded_streams(
    num_tokens: int, eval_fraction: float, seed: int, config: embedded_corpus.EmbeddedCorpusConfig
) -> tuple[TextStream, TextStream]:
    """`(train, eval)` streams of `num_tokens` bytes in all, `eval_fraction` of them for eval."""
    if num_tokens < 2:
        raise ValueError(f"embedded_tokens={num_tokens} is too small; use at least thousands.")
    if not 0.0 < eval_fraction < 1.0:
        raise ValueError(f"eval_fraction={eval_fraction} must lie strictly between 0 and 1.")
    num_eval = max(1, round(num_tokens * eval_fraction))
    train_seed, eval_seed = np.random.SeedSequence(seed).generate_state(2).tolist()

    def stream(size: int, sample_seed: int, split: str) -> TextStream:
        def pieces() -> Iterator[tuple[str, int]]:
            corpus = embedded_corpus.default_corpus(config)
            for text in corpus.iter_text(size, sample_seed):
                yield text, len(text)

        description = {
            "embedded": dataclasses.asdict(config),
            "generator_version": embedded_corpus.GENERATOR_VERSION,
            "seed": seed,
            "split": split,
            "num_bytes": size,
        }
        return TextStream(pieces, size, description)

    return (
        stream(num_tokens - num_eval, train_seed, "train"),
        stream(num_eval, eval_seed, "eval"),
    )
