"""A generated word-level source with long-range structure and an exactly computable per-token likelihood.

Each sequence is drawn as follows (V words, K topics, copy probability c):

1. a topic k ~ uniform over K, hidden and fixed for the whole sequence;
2. the first word x_0 ~ π_k, the stationary distribution of topic k's bigram chain P_k;
3. for t ≥ 1, with probability c — only if the previous word x_{t−1} occurred before, at some s < t − 1 — the
   word that followed its most recent earlier occurrence is repeated (x_t = x_{s+1}, "copying" as in repeated
   names and phrases; an induction head predicts it); otherwise x_t ~ P_k(· | x_{t−1}).

Dependence thus reaches back over the whole sequence twice: the topic is only known through all earlier words,
and a copy needs the earlier occurrence. The conditional probability of a word given everything before it is exact
and cheap: with the topic posterior w_k ∝ P(k | x_<t) (a forward filter over K states),

    p(x_t | x_<t) = Σ_k w_k [ c·h_t·1(x_t = copy_t) + (1 − c·h_t)·P_k(x_t | x_{t−1}) ]      (h_t = a copy exists).

So the best possible mean loss over the targets of a length-T window, E[−1/T Σ_{t=1..T} log p(x_t | x_<t)], is
estimated by Monte Carlo over many sequences with an exact integrand, with its standard error.

Fitted to a text [our construction]: the words are the text's V − 1 most frequent whitespace-separated words plus
one "<unk>" for the rest; the base bigram is the text's bigram counts smoothed with its unigram; topic k tilts the
bigram towards the words of the k-th of K contiguous parts of the text (P_k(j | i) ∝ P(j | i)·r_kj, r_kj the part's
smoothed unigram over the text's).
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

UNK = "<unk>"
# Bump when the source's output for a given fit and index changes.
GENERATOR_VERSION = 1


@dataclasses.dataclass(frozen=True)
class GeneratedSourceConfig:
    """How the source is fitted: `vocab_size` V (words incl. "<unk>"), `topics` K, `copy_prob` c, `smoothing`
    (pseudo-counts of the unigram added to each bigram row), `topic_smoothing` (pseudo-counts of each topic's
    unigram)."""

    vocab_size: int = 1024
    topics: int = 8
    copy_prob: float = 0.15
    smoothing: float = 20.0
    topic_smoothing: float = 1.0

    def __post_init__(self):
        if not 2 <= self.vocab_size <= 1 << 16:
            raise ValueError(f"generated source: vocab_size={self.vocab_size} must lie in [2, 65536].")
        if self.topics < 1:
            raise ValueError(f"generated source: topics={self.topics} must be at least 1.")
        if not 0.0 <= self.copy_prob < 1.0:
            raise ValueError(f"generated source: copy_prob={self.copy_prob} must lie in [0, 1).")


class GeneratedSource:
    """The process of the module docstring, from explicit tables (see `fit_source` for fitting them to text).

    **Arguments:** `bigrams_KxVxV` (rows sum to 1, float64), `copy_prob` c, `words` (V strings, for decoding).
    """

    def __init__(self, bigrams_KxVxV: np.ndarray, copy_prob: float, words: list[str] | None = None):
        self.bigrams = np.asarray(bigrams_KxVxV, np.float64)
        k, v, v2 = self.bigrams.shape
        if v != v2 or not np.allclose(self.bigrams.sum(-1), 1.0, atol=1e-9):
            raise ValueError("generated source: bigram tables must be [K, V, V] with rows summing to 1.")
        self.copy_prob = float(copy_prob)
        self.words = words if words is not None else [str(i) for i in range(v)]
        self.stationary = np.stack([_stationary(p) for p in self.bigrams])  # [K, V]
        self.cdfs = np.cumsum(self.bigrams, axis=-1)
        self.cdfs[..., -1] = 1.0
        self.start_cdfs = np.cumsum(self.stationary, axis=-1)
        self.start_cdfs[:, -1] = 1.0

    @property
    def vocab_size(self) -> int:
        return self.bigrams.shape[1]

    @property
    def topics(self) -> int:
        return self.bigrams.shape[0]

    def fingerprint(self) -> str:
        digest = hashlib.sha256(self.bigrams.tobytes())
        digest.update(repr((self.copy_prob, GENERATOR_VERSION)).encode())
        return digest.hexdigest()[:16]

    def sample(self, indices: np.ndarray, stream: tuple[int, ...], length: int) -> np.ndarray:
        """Sequences `indices` of a stream: each a pure function of (`stream`, index), drawn together.

        **Arguments:** `indices` `[N]` non-negative ints; `stream` the stream's seed words (e.g. (0, run seed));
        `length` tokens per sequence. **Returns:** int32 `[N, length]`.
        """
        indices = np.asarray(indices, np.int64).reshape(-1)
        n = indices.size
        uniforms = np.stack([np.random.default_rng([*stream, int(i)]).random(2 * length + 1) for i in indices]) \
            if n else np.zeros((0, 2 * length + 1))
        rows = np.arange(n)
        topic = np.minimum((uniforms[:, 0] * self.topics).astype(np.int64), self.topics - 1)
        tokens = np.zeros((n, length), np.int64)
        tokens[:, 0] = _inverse_cdf(self.start_cdfs[topic], uniforms[:, 1])
        follower = np.full((n, self.vocab_size), -1, np.int64)  # word after the latest occurrence of each word
        for t in range(1, length):
            prev = tokens[:, t - 1]
            if t >= 2:
                follower[rows, tokens[:, t - 2]] = prev
            candidate = follower[rows, prev]
            bigram = _inverse_cdf(self.cdfs[topic, prev], uniforms[:, 2 * t])
            copy = (candidate >= 0) & (uniforms[:, 2 * t + 1] < self.copy_prob)
            tokens[:, t] = np.where(copy, candidate, bigram)
        return tokens.astype(np.int32)

    def log_probs(self, tokens: np.ndarray) -> np.ndarray:
        """Exact log p(x_t | x_<t) of every token (t = 0: log p(x_0)). **Returns:** float64 `[N, L]`."""
        tokens = np.asarray(tokens, np.int64)
        n, length = tokens.shape
        rows = np.arange(n)
        out = np.zeros((n, length))
        joint = self.stationary[:, tokens[:, 0]].T / self.topics  # [N, K]
        total = joint.sum(1)
        out[:, 0] = np.log(total)
        posterior = joint / total[:, None]
        follower = np.full((n, self.vocab_size), -1, np.int64)
        for t in range(1, length):
            prev, word = tokens[:, t - 1], tokens[:, t]
            if t >= 2:
                follower[rows, tokens[:, t - 2]] = prev
            candidate = follower[rows, prev]
            c = np.where(candidate >= 0, self.copy_prob, 0.0)[:, None]
            q = (1.0 - c) * self.bigrams[:, prev, word].T + c * (candidate == word)[:, None]  # [N, K]
            p = (posterior * q).sum(1)
            out[:, t] = np.log(p)
            posterior = posterior * q / p[:, None]
        return out

    def optimal_loss(self, seq_len: int, *, sequences: int = 4096, stream: tuple[int, ...] = (3,)) -> tuple[float, float]:
        """Best possible mean loss over the targets 1..T of a window of T + 1 tokens, and its standard error.

        Monte Carlo over `sequences` independent sequences of `stream` with the exact integrand of `log_probs`.
        """
        per_sequence = []
        for start in range(0, sequences, 512):
            tokens = self.sample(np.arange(start, min(start + 512, sequences)), stream, seq_len + 1)
            per_sequence.append(-self.log_probs(tokens)[:, 1:].mean(1))
        losses = np.concatenate(per_sequence)
        return float(losses.mean()), float(losses.std(ddof=1) / np.sqrt(losses.size))

    def bigram_loss(self, seq_len: int, base_bigram: np.ndarray, *, sequences: int = 1024,
                    stream: tuple[int, ...] = (3,)) -> float:
        """Mean loss of a bigram predictor `base_bigram` `[V, V]` (no topic, no copying) on the same windows."""
        tokens = self.sample(np.arange(sequences), stream, seq_len + 1).astype(np.int64)
        return float(-np.log(base_bigram[tokens[:, :-1], tokens[:, 1:]]).mean())


def _inverse_cdf(cdf_NxV: np.ndarray, u_N: np.ndarray) -> np.ndarray:
    return np.minimum((cdf_NxV <= u_N[:, None]).sum(1), cdf_NxV.shape[1] - 1)


def _stationary(p_VxV: np.ndarray) -> np.ndarray:
    """π with π P = π, Σ π = 1, by one linear solve (the smoothed chains are irreducible and aperiodic)."""
    v = p_VxV.shape[0]
    system = p_VxV.T - np.eye(v)
    system[-1] = 1.0
    rhs = np.zeros(v)
    rhs[-1] = 1.0
    pi = np.linalg.solve(system, rhs)
    return np.clip(pi, 0.0, None) / np.clip(pi, 0.0, None).sum()


def fit_source(text: str, config: GeneratedSourceConfig = GeneratedSourceConfig()) -> tuple[GeneratedSource, np.ndarray]:
    """Fit the source's tables to `text` (see the module docstring).

    **Returns:** `(source, base_bigram_VxV)` — the base bigram is the topic-free smoothed bigram (a baseline).
    """
    words = text.split()
    if len(words) < 2:
        raise ValueError("generated source: the text to fit holds fewer than two words.")
    counts: dict[str, int] = {}
    for w in words:
        counts[w] = counts.get(w, 0) + 1
    counts.pop(UNK, None)
    kept = sorted(counts, key=lambda w: (-counts[w], w))[: config.vocab_size - 1]
    vocab = [UNK] + kept
    index = {w: i for i, w in enumerate(vocab)}
    ids = np.array([index.get(w, 0) for w in words], np.int64)
    v = len(vocab)
    unigram = np.bincount(ids, minlength=v) + 1.0
    unigram /= unigram.sum()
    pair = np.zeros((v, v))
    np.add.at(pair, (ids[:-1], ids[1:]), 1.0)
    base = (pair + config.smoothing * unigram) / (pair.sum(1, keepdims=True) + config.smoothing)
    tables = []
    for part in np.array_split(ids, config.topics):
        topic_unigram = np.bincount(part, minlength=v) + config.topic_smoothing * unigram * v
        topic_unigram /= topic_unigram.sum()
        tilted = base * (topic_unigram / unigram)[None, :]
        tables.append(tilted / tilted.sum(1, keepdims=True))
    return GeneratedSource(np.stack(tables), config.copy_prob, vocab), base
