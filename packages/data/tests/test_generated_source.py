"""The generated source against independent computations: exact enumeration, the stationary entropy rate,
determinism, no repetition, exact resume."""

import itertools

import numpy as np
import pytest

import skipless_data as sd
from skipless_data.generated_source import GeneratedSource


def _small_source(topics=2, copy_prob=0.3, v=3, seed=0):
    rng = np.random.default_rng(seed)
    tables = rng.dirichlet(np.ones(v) * 0.8, size=(topics, v))
    return GeneratedSource(tables, copy_prob)


def _oracle_joint(source, seq):
    """p(x_0..x_n) by summing over the topic, written from the generative story with plain loops."""
    total = 0.0
    for k in range(source.topics):
        p = source.stationary[k, seq[0]] / source.topics
        for t in range(1, len(seq)):
            earlier = [s for s in range(t - 1) if seq[s] == seq[t - 1]]
            if earlier:
                copy = seq[earlier[-1] + 1]
                p *= source.copy_prob * (seq[t] == copy) + (1 - source.copy_prob) * source.bigrams[k, seq[t - 1], seq[t]]
            else:
                p *= source.bigrams[k, seq[t - 1], seq[t]]
        total += p
    return total


def test_log_probs_sum_to_the_enumerated_joint_probability():
    source = _small_source()
    seqs = np.array(list(itertools.product(range(3), repeat=6)))
    joint = np.array([_oracle_joint(source, list(s)) for s in seqs])
    np.testing.assert_allclose(joint.sum(), 1.0, atol=1e-12)
    np.testing.assert_allclose(source.log_probs(seqs).sum(1), np.log(joint), atol=1e-10)


def test_optimal_loss_matches_the_exact_conditional_entropy():
    source = _small_source()
    length = 6  # targets 1..5 of a window of 6 tokens: (H(X_0..X_5) − H(X_0)) / 5 by the chain rule
    seqs = np.array(list(itertools.product(range(3), repeat=length)))
    joint = np.array([_oracle_joint(source, list(s)) for s in seqs])
    first = np.array([joint[seqs[:, 0] == v].sum() for v in range(3)])
    exact = (-(joint * np.log(joint)).sum() + (first * np.log(first)).sum()) / (length - 1)
    mean, se = source.optimal_loss(length - 1, sequences=20000)
    assert abs(mean - exact) < 4 * se and se < 0.01, (mean, se, exact)


def test_pure_bigram_rate_is_the_stationary_entropy_rate():
    source = _small_source(topics=1, copy_prob=0.0, v=5, seed=3)
    p, pi = source.bigrams[0], source.stationary[0]
    np.testing.assert_allclose(pi @ p, pi, atol=1e-12)
    exact = float(-(pi[:, None] * p * np.log(p)).sum())
    mean, se = source.optimal_loss(32, sequences=4000)
    assert abs(mean - exact) < 4 * se, (mean, se, exact)


def test_samples_follow_the_enumerated_distribution():
    source = _small_source()
    tokens = source.sample(np.arange(30000), (9,), 3)
    codes = tokens @ np.array([9, 3, 1])
    freq = np.bincount(codes, minlength=27) / len(codes)
    exact = np.array([_oracle_joint(source, list(s)) for s in itertools.product(range(3), repeat=3)])
    assert np.abs(freq - exact).max() < 0.01


def test_sequences_are_a_pure_function_of_stream_and_index_and_never_repeat():
    source, _ = sd.fit_source(sd.embedded_corpus.generate(60_000, seed=1), sd.GeneratedSourceConfig(vocab_size=128))
    a = source.sample(np.arange(0, 64), (0, 5), 33)
    b = source.sample(np.array([40, 3]), (0, 5), 33)
    np.testing.assert_array_equal(b, a[[40, 3]])
    assert len({row.tobytes() for row in a}) == 64
    assert not np.array_equal(source.sample(np.arange(4), (0, 6), 33), a[:4])


def test_fitted_source_has_long_range_structure():
    text = sd.embedded_corpus.generate(200_000, seed=2)
    source, base = sd.fit_source(text, sd.GeneratedSourceConfig(vocab_size=256))
    optimal, se = source.optimal_loss(64, sequences=512)
    assert source.bigram_loss(64, base, sequences=512) > optimal + 0.05 > 0.05 + 20 * se


def test_train_stream_resumes_exactly_and_eval_streams_are_held_out(tmp_path):
    info = sd.prepare_dataset("generated", "word:128", None, seq_len=16, max_eval_tokens=16 * 8)
    assert info.tokenizer == "word:128" and info.entropy_rate > 0
    it = iter(sd.train_dataset(info, seq_len=16, global_batch_size=4, seed=0))
    first = [next(it) for _ in range(3)]
    state = it.get_state()
    fourth = next(it)
    again = iter(sd.train_dataset(info, seq_len=16, global_batch_size=4, seed=0))
    again.set_state(state)
    np.testing.assert_array_equal(next(again), fourth)
    seen = {row.tobytes() for batch in first + [fourth] for row in batch}
    assert len(seen) == 16
    for split in ("eval", "test"):
        rows = [row.tobytes() for b in sd.eval_batches(info, split=split, seq_len=16, batch_size=4) for row in b.tokens]
        assert len(rows) == 8 and not seen & set(rows)
    with pytest.raises(ValueError, match="word"):
        sd.prepare_dataset("generated", "bpe:1024", None, seq_len=16)
