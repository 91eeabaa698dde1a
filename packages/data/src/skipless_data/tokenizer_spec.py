"""Tokenizer specifications: the strings `"byte"`, `"bpe:<vocab_size>"` and `"word:<vocab_size>"` (the generated
source's words; valid with `--data generated` only)."""

from __future__ import annotations

import dataclasses
import re

BYTE_VOCAB_SIZE = 256
MIN_BPE_VOCAB_SIZE = BYTE_VOCAB_SIZE + 1
MAX_BPE_VOCAB_SIZE = 1 << 20


@dataclasses.dataclass(frozen=True)
class TokenizerSpec:
    """A parsed tokenizer specification.

    **Arguments:**

    - `kind`: `"byte"` (UTF-8 bytes, no training) or `"bpe"` (byte-level BPE trained on the corpus).
    - `vocab_size`: 256 for bytes; the requested vocabulary size for BPE.
    """

    kind: str
    vocab_size: int

    def __str__(self) -> str:
        return "byte" if self.kind == "byte" else f"{self.kind}:{self.vocab_size}"


def parse_tokenizer_spec(spec: str) -> TokenizerSpec:
    """Parse `"byte"` or `"bpe:<vocab_size>"`.

    **Arguments:**

    - `spec`: the specification string, e.g. `"bpe:8192"`.

    **Returns:** a `TokenizerSpec`.

    **Raises:** `ValueError` naming the problem and the accepted forms.
    """
    if not isinstance(spec, str):
        raise ValueError(
            f"tokenizer spec must be a string like 'byte' or 'bpe:8192', got {spec!r}."
        )
    text = spec.strip().lower()
    if text == "byte":
        return TokenizerSpec("byte", BYTE_VOCAB_SIZE)
    if text.startswith("bpe:"):
        size_text = text[len("bpe:") :].strip()
        if not re.fullmatch(r"[+-]?\d+", size_text):
            raise ValueError(
                f"tokenizer spec {spec!r}: the vocabulary size after 'bpe:' must be a whole number in "
                f"[{MIN_BPE_VOCAB_SIZE}, {MAX_BPE_VOCAB_SIZE}] (the 256 bytes plus merges), e.g. 'bpe:8192'."
            )
        size = int(size_text)
        if not MIN_BPE_VOCAB_SIZE <= size <= MAX_BPE_VOCAB_SIZE:
            raise ValueError(
                f"tokenizer spec {spec!r}: the BPE vocabulary size {size} must lie in "
                f"[{MIN_BPE_VOCAB_SIZE}, {MAX_BPE_VOCAB_SIZE}] (the 256 bytes plus merges); "
                "write e.g. 'bpe:8192'."
            )
        return TokenizerSpec("bpe", size)
    if text.startswith("word:"):
        size_text = text[len("word:") :].strip()
        if not re.fullmatch(r"\d+", size_text) or not 2 <= int(size_text) <= 1 << 16:
            raise ValueError(f"tokenizer spec {spec!r}: the word vocabulary size must be a whole number in [2, 65536].")
        return TokenizerSpec("word", int(size_text))
    raise ValueError(f"unknown tokenizer spec {spec!r}; use 'byte', 'bpe:<vocab_size>' or 'word:<vocab_size>'.")
