"""Text tokenizers: UTF-8 bytes, and byte-level BPE trained with the `tokenizers` library.

Both are lossless on any Unicode text: `decode(concat(encode_batch(pieces))) == "".join(pieces)`,
so a corpus can be tokenised piece by piece (line by line) and still decode to the original text.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Sequence

import numpy as np
from jaxtyping import Int

from .tokenizer_spec import BYTE_VOCAB_SIZE, TokenizerSpec, parse_tokenizer_spec

TOKENIZER_FILE = "tokenizer.json"


class ByteTokenizer:
    """UTF-8 bytes as tokens: vocabulary 256, nothing to train."""

    spec = TokenizerSpec("byte", BYTE_VOCAB_SIZE)
    vocab_size = BYTE_VOCAB_SIZE

    def encode_batch(self, texts: Sequence[str]) -> list[Int[np.ndarray, " n"]]:
        """Encode each text; **Returns:** one uint8 array per text."""
        return [np.frombuffer(t.encode("utf-8"), dtype=np.uint8) for t in texts]

    def encode_concat(self, texts: Sequence[str]) -> tuple[Int[np.ndarray, " n"], Int[np.ndarray, " k"]]:
        """All texts' tokens end to end, and each text's token count (int64 `[len(texts)]`)."""
        joined = "".join(texts)
        if joined.isascii():
            lengths = np.fromiter(map(len, texts), np.int64, len(texts))
        else:
            lengths = np.fromiter((len(t.encode("utf-8")) for t in texts), np.int64, len(texts))
        return np.frombuffer(joined.encode("utf-8"), dtype=np.uint8), lengths

    def token_bytes(self) -> Int[np.ndarray, " V"]:
        """UTF-8 bytes each token stands for (all 1)."""
        return np.ones(BYTE_VOCAB_SIZE, dtype=np.int64)

    def to_str(self) -> str:
        """What `load_tokenizer` needs besides the spec: nothing for bytes."""
        return ""

    def decode(self, ids: Int[np.ndarray, " n"]) -> str:
        """Decode token ids (undecodable byte runs become U+FFFD)."""
        return np.asarray(ids, dtype=np.uint8).tobytes().decode("utf-8", errors="replace")

    def save(self, directory: str | os.PathLike) -> None:
        """Nothing to save: bytes need no vocabulary."""


class BpeTokenizer:
    """A trained byte-level BPE (GPT-2 style pre-tokenisation, no special tokens).

    **Arguments:**

    - `tokenizer`: a `tokenizers.Tokenizer` with a byte-level BPE model.
    - `spec`: the spec it was trained for; `vocab_size` is the requested size (actual merges may
        stop earlier on a small corpus, so every id is `< spec.vocab_size`).
    """

    def __init__(self, tokenizer, spec: TokenizerSpec):
        self._tokenizer = tokenizer
        self.spec = spec
        self.vocab_size = spec.vocab_size

    def encode_batch(self, texts: Sequence[str]) -> list[Int[np.ndarray, " n"]]:
        """Encode each text (in parallel); **Returns:** one int32 array per text."""
        encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [np.asarray(e.ids, dtype=np.int32) for e in encodings]

    def encode_concat(self, texts: Sequence[str]) -> tuple[Int[np.ndarray, " n"], Int[np.ndarray, " k"]]:
        """All texts' tokens end to end (int32), and each text's token count (int64 `[len(texts)]`).

        Uses `encode_batch_fast` (no character offsets): the same ids, ≈ 30 % faster here.
        """
        encodings = self._tokenizer.encode_batch_fast(list(texts), add_special_tokens=False)
        ids = [e.ids for e in encodings]
        lengths = np.fromiter(map(len, ids), np.int64, len(ids))
        flat = np.fromiter(itertools.chain.from_iterable(ids), np.int32, int(lengths.sum()))
        return flat, lengths

    def token_bytes(self) -> Int[np.ndarray, " V"]:
        """UTF-8 bytes each token id stands for (byte-level BPE: one vocabulary character per byte)."""
        table = np.zeros(self.vocab_size, dtype=np.int64)
        for token, index in self._tokenizer.get_vocab().items():
            table[index] = len(token)
        return table

    def to_str(self) -> str:
        """The tokenizer as JSON (what `tokenizer.json` holds)."""
        return self._tokenizer.to_str()

    def decode(self, ids: Int[np.ndarray, " n"]) -> str:
        """Decode token ids back to text."""
        return self._tokenizer.decode(np.asarray(ids).tolist(), skip_special_tokens=False)

    def save(self, directory: str | os.PathLike) -> None:
        """Write `tokenizer.json` into `directory`."""
        self._tokenizer.save(os.path.join(directory, TOKENIZER_FILE))


def _empty_bpe():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


def train_bpe(
    texts: Iterable[str], spec: TokenizerSpec, *, show_progress: bool = False
) -> BpeTokenizer:
    """Train a byte-level BPE on a stream of texts.

    **Arguments:**

    - `texts`: an iterable of strings (e.g. lines), consumed once.
    - `spec`: a `"bpe:<vocab_size>"` spec.
    - `show_progress`: let `tokenizers` draw its own progress bar.

    **Returns:** a `BpeTokenizer`.
    """
    from tokenizers import pre_tokenizers, trainers

    if spec.kind != "bpe":
        raise ValueError(f"train_bpe needs a 'bpe:<vocab_size>' spec, got {str(spec)!r}.")
    tokenizer = _empty_bpe()
    trainer = trainers.BpeTrainer(
        vocab_size=spec.vocab_size,
        show_progress=show_progress,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return BpeTokenizer(tokenizer, spec)


def load_tokenizer(spec: str | TokenizerSpec, directory: str | os.PathLike | None = None):
    """Load the tokenizer of a prepared dataset.

    **Arguments:**

    - `spec`: the tokenizer spec recorded in the dataset's metadata.
    - `directory`: the dataset folder holding `tokenizer.json` (needed for BPE).

    **Returns:** a `ByteTokenizer` or `BpeTokenizer`.
    """
    from tokenizers import Tokenizer

    spec = parse_tokenizer_spec(spec) if isinstance(spec, str) else spec
    if spec.kind == "byte":
        return ByteTokenizer()
    path = os.path.join(os.fspath(directory or "."), TOKENIZER_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"BPE tokenizer file {path} is missing; re-run prepare on the data."
        )
    return BpeTokenizer(Tokenizer.from_file(path), spec)


def tokenizer_from_str(spec: str, text: str):
    """Rebuild a tokenizer from its spec and `to_str()` (how worker processes get theirs)."""
    parsed = parse_tokenizer_spec(spec)
    if parsed.kind == "byte":
        return ByteTokenizer()
    from tokenizers import Tokenizer

    return BpeTokenizer(Tokenizer.from_str(text), parsed)
