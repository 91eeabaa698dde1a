import re

import numpy as np
import pytest

from skipless_data import embedded_corpus
from skipless_data.embedded_corpus import EmbeddedCorpus, EmbeddedCorpusConfig

SMALL = EmbeddedCorpusConfig(num_words=64, branching=4, structure_seed=3)


@pytest.fixture(scope="module")
def small():
    return EmbeddedCorpus(SMALL)


def test_stationary_distribution_matches_dense_eigenvector(small):
    p_WxW = small.transition_matrix()
    np.testing.assert_allclose(p_WxW.sum(axis=1), 1.0, atol=1e-12)
    values, vectors = np.linalg.eig(p_WxW.T)
    pi = np.real(vectors[:, np.argmin(np.abs(values - 1.0))])
    pi /= pi.sum()
    np.testing.assert_allclose(small.stationary_W, pi, atol=1e-10)
    # Irreducible and aperiodic: some power of P is entrywise positive.
    assert np.all(np.linalg.matrix_power(p_WxW, 4 * SMALL.num_words) > 0)


def test_entropy_rate_matches_plug_in_estimate_from_counts(small):
    words = small.sample_words(300_000, seed=11)
    counts = np.zeros((SMALL.num_words, SMALL.num_words))
    np.add.at(counts, (words[:-1], words[1:]), 1.0)
    joint = counts / counts.sum()
    conditional = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    nz = counts > 0
    empirical = -np.sum(joint[nz] * np.log(conditional[nz]))
    assert empirical == pytest.approx(small.word_entropy_rate(), abs=0.01)
    # The empirical word frequencies match the stationary distribution.
    frequencies = np.bincount(words, minlength=SMALL.num_words) / words.size
    np.testing.assert_allclose(frequencies, small.stationary_W, atol=0.01)


def test_text_decodes_into_allowed_transitions_and_byte_rate_matches(small):
    text = "".join(small.iter_text(600_000, seed=5))
    assert len(text) == 600_000
    spelled = re.findall(r"[^ \n]*[ \n]", text)
    index = {s: i for i, s in enumerate(small.spellings)}
    words = np.array([index[s] for s in spelled])
    assert "".join(small.spellings[w] for w in words) == text[: sum(map(len, spelled))]
    assert np.all(small.transition_matrix()[words[:-1], words[1:]] > 0)
    bytes_per_word = len(text) / len(words)
    assert bytes_per_word == pytest.approx(small.mean_bytes_per_word(), rel=0.01)
    log_likelihood = np.log(small.transition_matrix()[words[:-1], words[1:]]).sum()
    assert -log_likelihood / len(text) == pytest.approx(small.byte_entropy_rate(), rel=0.02)


def test_default_corpus_ergodic_estimate():
    corpus = embedded_corpus.default_corpus()
    words = corpus.sample_words(200_000, seed=2)
    nll = -np.log(corpus.transition_matrix()[words[:-1], words[1:]]).mean()
    assert nll == pytest.approx(corpus.word_entropy_rate(), rel=0.02)
    assert embedded_corpus.entropy_rate() == pytest.approx(
        corpus.word_entropy_rate() / corpus.mean_bytes_per_word()
    )


def test_generate_is_deterministic_and_exact_length():
    a = embedded_corpus.generate(5000, seed=1)
    assert len(a) == len(a.encode("utf-8")) == 5000
    assert a == embedded_corpus.generate(5000, seed=1)
    assert a != embedded_corpus.generate(5000, seed=2)
    with pytest.raises(ValueError):
        embedded_corpus.generate(0, seed=1)
