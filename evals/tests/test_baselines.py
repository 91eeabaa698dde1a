"""Count baselines against a brute-force count with Python dictionaries and loops."""

import collections
import math

import numpy as np
import pytest

from evals.baselines import KAPPA_GRID, bigram_cross_entropy_with, count_baselines, unigram_cross_entropy


def _brute_unigram(train, evals, vocab):
    counts = collections.Counter(train)
    return -sum(math.log((counts[b] + 1) / (len(train) + vocab)) for b in evals[1:]) / (len(evals) - 1)


def _brute_bigram(train, evals, vocab, kappa):
    uni = collections.Counter(train)
    pairs = collections.Counter(zip(train[:-1], train[1:]))
    contexts = collections.Counter(train[:-1])
    total = 0.0
    for a, b in zip(evals[:-1], evals[1:]):
        prior = (uni[b] + 1) / (len(train) + vocab)
        total -= math.log((pairs[(a, b)] + kappa * prior) / (contexts[a] + kappa))
    return total / (len(evals) - 1)


@pytest.fixture
def tiny():
    rng = np.random.default_rng(0)
    vocab = 7
    # A sticky chain, so the bigram has something to find; token 6 never occurs in training.
    train = [0]
    for _ in range(300):
        train.append(train[-1] if rng.random() < 0.6 else int(rng.integers(0, 6)))
    evals = [int(x) for x in rng.integers(0, 7, size=50)]
    return train, evals, vocab


def test_unigram_matches_brute_force(tiny):
    train, evals, vocab = tiny
    assert unigram_cross_entropy(np.array(train), np.array(evals), vocab) == pytest.approx(
        _brute_unigram(train, evals, vocab), rel=1e-12)


@pytest.mark.parametrize("kappa", [0.3, 5.0])
def test_bigram_matches_brute_force(tiny, kappa):
    train, evals, vocab = tiny
    assert bigram_cross_entropy_with(np.array(train), np.array(evals), vocab, kappa) == pytest.approx(
        _brute_bigram(train, evals, vocab, kappa), rel=1e-12)


def test_kappa_chosen_on_training_tail_only(tiny):
    train, evals, vocab = tiny
    result = count_baselines(np.array(train), np.array(evals), vocab)
    cut = len(train) - len(train) // 10
    tail = {k: _brute_bigram(train[:cut], train[cut - 1:], vocab, k) for k in KAPPA_GRID}
    assert result.kappa == min(tail, key=tail.get)
    assert result.bigram == pytest.approx(_brute_bigram(train, evals, vocab, result.kappa), rel=1e-12)
    assert result.num_eval_targets == len(evals) - 1


def test_bigram_beats_unigram_on_sticky_text(tiny):
    train, _, vocab = tiny
    result = count_baselines(np.array(train[:250]), np.array(train[250:]), vocab)
    assert result.bigram < result.unigram - 0.2


def test_bad_ids_are_rejected(tiny):
    train, evals, vocab = tiny
    with pytest.raises(ValueError, match="outside"):
        count_baselines(np.array(train), np.array(evals), vocab - 2)
