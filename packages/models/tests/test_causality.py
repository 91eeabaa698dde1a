"""Causality: changing token t never changes logits at positions < t; shorter sequences are prefixes."""

import equinox as eqx
import jax
import numpy as np
import pytest

import skipless_models as sm


@pytest.mark.parametrize(
    "block, attention, position",
    [("vanilla", "espa", "none"), ("vanilla", "uspa", "rope"), ("preln", "standard", "learned"),
     ("skipless_ln", "value_skipinit", "rope"), ("nf_residual", "espa", "none")],
)
def test_future_tokens_do_not_change_past_logits(tiny, run_fast, block, attention, position):
    cfg = tiny(block=block, attention=attention, position=position, seq_len=8)
    model = sm.build_model(cfg, key=jax.random.key(0), verbose=False)
    # move W_Q away from zero so attention depends on the content
    model = eqx.tree_at(lambda m: m.blocks.attention.w_qkv, model,
                        model.blocks.attention.w_qkv + 0.3 * jax.random.normal(jax.random.key(5), model.blocks.attention.w_qkv.shape))
    tokens = np.array(jax.random.randint(jax.random.key(1), (1, 8), 0, cfg.vocab_size))
    batch = [tokens[0]]
    for t in range(8):
        changed = tokens[0].copy()
        changed[t] = (changed[t] + 1 + t) % cfg.vocab_size
        batch.append(changed)
    logits = np.asarray(run_fast(lambda m, x: m(x), model, np.stack(batch)))
    for t in range(8):
        np.testing.assert_allclose(logits[1 + t, :t], logits[0, :t], atol=1e-5)
        assert np.abs(logits[1 + t, t] - logits[0, t]).max() > 1e-4  # the change itself is visible


def test_sequences_of_any_length_are_prefixes_of_longer_ones(tiny, run_fast):
    # SPA attention is generated at the batch's length: shorter and longer than seq_len are both causal prefixes.
    cfg = tiny(attention="espa", seq_len=8)
    model = sm.build_model(cfg, key=jax.random.key(0), verbose=False)
    tokens = jax.random.randint(jax.random.key(1), (2, 13), 0, cfg.vocab_size)
    longer = np.asarray(run_fast(lambda m, x: m(x), model, tokens))
    full = np.asarray(run_fast(lambda m, x: m(x), model, tokens[:, :8]))
    short = np.asarray(run_fast(lambda m, x: m(x), model, tokens[:, :5]))
    np.testing.assert_allclose(short, full[:, :5], atol=1e-5)
    np.testing.assert_allclose(full, longer[:, :8], atol=1e-5)
