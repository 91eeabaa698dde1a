"""Reference lines for a token stream: unigram and count-bigram cross-entropy (nats per token).

Both models are fitted by counting on the training tokens and scored on the evaluation tokens:

    unigram  p(b)     = (c(b) + 1) / (N + V)                         (add-one smoothing)
    bigram   p(b | a) = (c(a, b) + κ p(b)) / (c(a) + κ)              (Dirichlet prior = the unigram)

κ is chosen from a fixed grid by the cross-entropy on the last tenth of the training tokens, with
counts taken from the first nine tenths; the final counts then use all training tokens. The
evaluation text is never used to fit anything. A model's first prediction in a window has one token
of context, like the bigram, so these lines are directly comparable to a model's eval loss.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from jaxtyping import Float64, Int

KAPPA_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0)


@dataclasses.dataclass(frozen=True)
class CountBaselines:
    """Cross-entropies of the count models on the evaluation tokens.

    **Fields:** `unigram`, `bigram` (nats per predicted token), `kappa` (the bigram's prior
    strength), `num_train_tokens`, `num_eval_targets` (tokens scored: all eval tokens after the first).
    """

    unigram: float
    bigram: float
    kappa: float
    num_train_tokens: int
    num_eval_targets: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _check(tokens, vocab_size: int, name: str) -> np.ndarray:
    tokens = np.asarray(tokens, np.int64).ravel()
    if tokens.size < 2:
        raise ValueError(f"{name} holds {tokens.size} tokens; count baselines need at least 2.")
    if tokens.min() < 0 or tokens.max() >= vocab_size:
        raise ValueError(f"{name} holds ids outside [0, {vocab_size}); pass the tokenizer's vocab_size.")
    return tokens


def unigram_probs(train_N: Int[np.ndarray, " N"], vocab_size: int) -> Float64[np.ndarray, " V"]:
    """Add-one smoothed unigram distribution.

    **Arguments:** `train_N` token ids `[N]`; `vocab_size` V.

    **Returns:** float64 `[V]`, summing to 1.
    """
    counts_V = np.bincount(_check(train_N, vocab_size, "the training tokens"), minlength=vocab_size)
    return (counts_V + 1.0) / (counts_V.sum() + vocab_size)


def unigram_cross_entropy(train_N, eval_M, vocab_size: int) -> float:
    """**Returns:** mean −log p(b) over the eval targets `eval_M[1:]` (nats per token)."""
    probs_V = unigram_probs(train_N, vocab_size)
    targets = _check(eval_M, vocab_size, "the evaluation tokens")[1:]
    return float(-np.mean(np.log(probs_V[targets])))


class _PairCounts:
    """Sparse counts of adjacent pairs (a, b), keyed a·V + b, with fast lookup."""

    def __init__(self, tokens: np.ndarray, vocab_size: int):
        self.vocab_size = vocab_size
        self.keys, self.counts = np.unique(tokens[:-1] * vocab_size + tokens[1:], return_counts=True)
        self.context_counts = np.bincount(tokens[:-1], minlength=vocab_size).astype(np.float64)

    def lookup(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        keys = prev * self.vocab_size + nxt
        where = np.clip(np.searchsorted(self.keys, keys), 0, max(len(self.keys) - 1, 0))
        found = self.keys[where] == keys
        return np.where(found, self.counts[where], 0).astype(np.float64)


def bigram_cross_entropy_with(train_N, eval_M, vocab_size: int, kappa: float) -> float:
    """Bigram cross-entropy for a given prior strength κ.

    **Arguments:** `train_N` `[N]`, `eval_M` `[M]` token ids; `vocab_size`; `kappa` > 0.

    **Returns:** mean −log p(b | a) over adjacent eval pairs (nats per token).
    """
    if not kappa > 0:
        raise ValueError(f"kappa={kappa} must be positive.")
    train = _check(train_N, vocab_size, "the training tokens")
    tokens = _check(eval_M, vocab_size, "the evaluation tokens")
    prior_V = unigram_probs(train, vocab_size)
    pairs = _PairCounts(train, vocab_size)
    prev, nxt = tokens[:-1], tokens[1:]
    probs = (pairs.lookup(prev, nxt) + kappa * prior_V[nxt]) / (pairs.context_counts[prev] + kappa)
    return float(-np.mean(np.log(probs)))


def count_baselines(train_N, eval_M, vocab_size: int) -> CountBaselines:
    """Unigram and bigram reference lines of `eval_M` under counts of `train_N` (see module docstring).

    **Arguments:** `train_N` `[N]` and `eval_M` `[M]` token ids (N ≥ 20, M ≥ 2); `vocab_size`.

    **Returns:** a `CountBaselines`.
    """
    train = _check(train_N, vocab_size, "the training tokens")
    tokens = _check(eval_M, vocab_size, "the evaluation tokens")
    if train.size < 20:
        raise ValueError(f"the training tokens number {train.size}; count baselines need at least 20.")
    cut = train.size - train.size // 10
    held_out = {k: bigram_cross_entropy_with(train[:cut], train[cut - 1:], vocab_size, k) for k in KAPPA_GRID}
    kappa = min(held_out, key=held_out.get)
    return CountBaselines(
        unigram=unigram_cross_entropy(train, tokens, vocab_size),
        bigram=bigram_cross_entropy_with(train, tokens, vocab_size, kappa),
        kappa=float(kappa),
        num_train_tokens=int(train.size),
        num_eval_targets=int(tokens.size - 1),
    )
