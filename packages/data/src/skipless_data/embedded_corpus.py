"""The embedded corpus: generated text with an exactly computable entropy rate.

The source is a sparse first-order Markov chain over a vocabulary of `num_words` invented words,
spelled out as ASCII text. Each word has a handful of possible successors (`branching` of them,
drawn with Zipf-like popularity), so the text has real but learnable structure: a byte-level model
must learn the spelling of every word and which words may follow which.

Every spelling ends in exactly one separator (a space, or a newline for the line-break word) and
contains no other separator, so the byte stream decodes uniquely back into words. Hence, for the
stationary chain with distribution π and transition matrix P,

    h_word = -Σ_i π_i Σ_j P_ij log P_ij                (nats per word)
    h_byte = h_word / Σ_i π_i len(spelling_i)           (nats per byte)

and `h_byte` is the exact entropy rate of the text under the byte tokenizer: no model can reach a
lower expected loss per byte. The chain is made irreducible (every word may be followed by the next
word in a cycle) and aperiodic (every word may be followed by word 0, and word 0 by itself).
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import string
from collections.abc import Iterator

import numpy as np
from jaxtyping import Float64, Int64

_LETTERS = string.ascii_lowercase
_STRUCTURAL_WEIGHT = 0.02
# Bump when the generator's output for a given config and seed changes (invalidates prepared data).
GENERATOR_VERSION = 1


@dataclasses.dataclass(frozen=True)
class EmbeddedCorpusConfig:
    """Parameters of the generated source (the "grammar"); the sampling seed is separate.

    **Arguments:**

    - `num_words`: vocabulary size of the word-level Markov chain.
    - `branching`: number of random successors of each word (plus the two structural ones).
    - `zipf_exponent`: popularity of word k is proportional to (k + 1) ** -zipf_exponent.
    - `concentration`: Dirichlet concentration of each word's successor weights (small = peaky).
    - `newline_every`: the mean number of words per line (the newline word's popularity).
    - `structure_seed`: seed of the grammar itself (spellings, successors, weights).
    """

    num_words: int = 2048
    branching: int = 16
    zipf_exponent: float = 1.05
    concentration: float = 0.7
    newline_every: int = 20
    structure_seed: int = 0

    def __post_init__(self):
        if self.num_words < 4:
            raise ValueError(f"num_words={self.num_words} is too small; use at least 4.")
        if not 1 <= self.branching < self.num_words:
            raise ValueError(
                f"branching={self.branching} must lie in [1, num_words); lower it."
            )


class EmbeddedCorpus:
    """The Markov source described in the module docstring, built once from its config.

    **Arguments:**

    - `config`: an `EmbeddedCorpusConfig`.
    """

    def __init__(self, config: EmbeddedCorpusConfig = EmbeddedCorpusConfig()):
        self.config = config
        rng = np.random.default_rng(config.structure_seed)
        self.spellings = _make_spellings(config, rng)
        self.successors_WxS, self.probs_WxS = _make_transitions(config, rng)
        self.stationary_W = _stationary(self.successors_WxS, self.probs_WxS)

    @property
    def num_words(self) -> int:
        return self.config.num_words

    def transition_matrix(self) -> Float64[np.ndarray, "W W"]:
        """The dense word-to-word transition matrix P (rows sum to 1)."""
        w = self.num_words
        p_WxW = np.zeros((w, w))
        rows_WxS = np.broadcast_to(np.arange(w)[:, None], self.successors_WxS.shape)
        np.add.at(p_WxW, (rows_WxS, self.successors_WxS), self.probs_WxS)
        return p_WxW

    def word_entropy_rate(self) -> float:
        """Entropy rate of the word chain, in nats per word."""
        p = self.probs_WxS
        row_entropy_W = -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=1)
        return float(self.stationary_W @ row_entropy_W)

    def mean_bytes_per_word(self) -> float:
        """Stationary mean spelling length, separator included."""
        lengths_W = np.array([len(s) for s in self.spellings], dtype=np.float64)
        return float(self.stationary_W @ lengths_W)

    def byte_entropy_rate(self) -> float:
        """Exact entropy rate of the generated text, in nats per byte (= per byte token)."""
        return self.word_entropy_rate() / self.mean_bytes_per_word()

    def sample_words(
        self, num_words: int, seed: int | np.random.SeedSequence, previous_word: int | None = None
    ) -> Int64[np.ndarray, " N"]:
        """Sample a run of the word chain.

        **Arguments:**

        - `num_words`: length of the run.
        - `seed`: sampling seed (independent of the grammar's `structure_seed`).
        - `previous_word`: continue a run that ended with this word; `None` starts from the
            stationary distribution, so the run is stationary.

        **Returns:** word ids, shape `[num_words]`.
        """
        uniforms = np.random.default_rng(seed).random(num_words).tolist()
        if previous_word is None:
            start_cdf = np.cumsum(self.stationary_W).tolist()
            state = min(bisect.bisect_right(start_cdf, uniforms[0]), self.num_words - 1)
            words, uniforms = [state], uniforms[1:]
        else:
            state, words = previous_word, []
        cdfs, successors = self._sampling_tables
        for u in uniforms:
            row = cdfs[state]
            state = successors[state][min(bisect.bisect_right(row, u), len(row) - 1)]
            words.append(state)
        return np.asarray(words, dtype=np.int64)

    @functools.cached_property
    def _sampling_tables(self) -> tuple[list[list[float]], list[list[int]]]:
        cdf_WxS = np.cumsum(self.probs_WxS, axis=1)
        cdf_WxS[:, -1] = 1.0  # no rounding gap at the top (zero-probability padding is in front)
        return [row.tolist() for row in cdf_WxS], self.successors_WxS.tolist()

    def iter_text(self, num_bytes: int, seed: int, block_words: int = 65536) -> Iterator[str]:
        """Yield the text of one stationary run in pieces, exactly `num_bytes` bytes in total."""
        remaining, previous, block = num_bytes, None, 0
        while remaining > 0:
            size = min(block_words, remaining // 2 + 64)
            block_seed = np.random.SeedSequence([seed, block])
            words = self.sample_words(size, block_seed, previous)
            previous, block = int(words[-1]), block + 1
            piece = "".join([self.spellings[w] for w in words.tolist()])[:remaining]
            remaining -= len(piece)
            yield piece


def _make_spellings(config: EmbeddedCorpusConfig, rng: np.random.Generator) -> list[str]:
    """Distinct lowercase spellings, shorter for popular words, each ending in a separator."""
    spellings, seen = [], set()
    for rank in range(config.num_words):
        if rank == 1:
            spellings.append("\n")  # the line-break word
            continue
        if rank == 2:
            spellings.append(". ")
            continue
        base = 2 + int(np.log2(rank + 2) // 2)
        while True:
            length = int(base + rng.integers(0, 4))
            word = "".join(_LETTERS[i] for i in rng.integers(0, len(_LETTERS), size=length))
            if word not in seen:
                seen.add(word)
                spellings.append(word + " ")
                break
    return spellings


def _make_transitions(
    config: EmbeddedCorpusConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Sparse successors [W, S] and their probabilities [W, S], one entry per distinct word."""
    w, b = config.num_words, config.branching
    popularity_W = (np.arange(w) + 1.0) ** -config.zipf_exponent
    popularity_W[1] = popularity_W.sum() / config.newline_every
    popularity_W /= popularity_W.sum()
    random_WxB = rng.choice(w, size=(w, b), p=popularity_W)
    cycle_W1 = ((np.arange(w) + 1) % w)[:, None]
    to_zero_W1 = np.zeros((w, 1), dtype=np.int64)
    successors_WxS = np.concatenate([random_WxB, cycle_W1, to_zero_W1], axis=1)
    weights_WxS = rng.gamma(config.concentration, size=successors_WxS.shape)
    weights_WxS[:, :b] /= weights_WxS[:, :b].sum(axis=1, keepdims=True)
    # The structural edges carry a small fixed weight: enough to make the chain irreducible and
    # aperiodic, too little to dominate the text.
    weights_WxS[:, b:] = _STRUCTURAL_WEIGHT
    probs_WxS = weights_WxS / weights_WxS.sum(axis=1, keepdims=True)
    return _merge_duplicates(successors_WxS.astype(np.int64), probs_WxS)


def _merge_duplicates(
    successors_WxS: np.ndarray, probs_WxS: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One entry per distinct successor (entropies need it); rows padded in front with p = 0."""
    merged_successors, merged_probs = np.zeros_like(successors_WxS), np.zeros_like(probs_WxS)
    width = successors_WxS.shape[1]
    for row, (targets, probs) in enumerate(zip(successors_WxS, probs_WxS)):
        unique, inverse = np.unique(targets, return_inverse=True)
        merged_successors[row, width - unique.size :] = unique
        merged_probs[row, width - unique.size :] = np.bincount(inverse, weights=probs)
    return merged_successors, merged_probs


def _stationary(successors_WxS: np.ndarray, probs_WxS: np.ndarray) -> np.ndarray:
    """Stationary distribution by power iteration (the chain is irreducible and aperiodic)."""
    w = successors_WxS.shape[0]
    pi_W = np.full(w, 1.0 / w)
    flat_targets = successors_WxS.ravel()
    for _ in range(100_000):
        new_W = np.bincount(flat_targets, weights=(pi_W[:, None] * probs_WxS).ravel(), minlength=w)
        new_W /= new_W.sum()
        if np.abs(new_W - pi_W).sum() < 1e-14:
            return new_W
        pi_W = new_W
    raise RuntimeError("The stationary distribution did not converge; change structure_seed.")


@functools.lru_cache(maxsize=8)
def default_corpus(config: EmbeddedCorpusConfig = EmbeddedCorpusConfig()) -> EmbeddedCorpus:
    """The corpus for `config`, built once per process."""
    return EmbeddedCorpus(config)


def entropy_rate(config: EmbeddedCorpusConfig = EmbeddedCorpusConfig()) -> float:
    """Exact entropy rate of the embedded text, in nats per byte token."""
    return default_corpus(config).byte_entropy_rate()


def generate(
    num_tokens: int, seed: int, config: EmbeddedCorpusConfig = EmbeddedCorpusConfig()
) -> str:
    """Generate `num_tokens` bytes (= byte tokens) of embedded text.

    **Arguments:**

    - `num_tokens`: number of ASCII characters to produce.
    - `seed`: sampling seed; the same seed gives the same text.
    - `config`: the grammar.

    **Returns:** the text, `len(text) == num_tokens`.
    """
    if num_tokens < 1:
        raise ValueError(f"num_tokens={num_tokens} must be positive.")
    return "".join(default_corpus(config).iter_text(num_tokens, seed))
