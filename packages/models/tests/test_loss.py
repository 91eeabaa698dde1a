"""Next-token cross-entropy against a float64 numpy oracle."""

import jax
import numpy as np
import pytest

import skipless_models as sm


def _oracle(logits, targets, mask):
    z = logits.astype(np.float64)
    lse = np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1)) + z.max(-1)
    nll = lse - np.take_along_axis(z, targets[..., None], -1)[..., 0]
    return (nll * mask).sum() / mask.sum()


def test_loss_matches_float64_oracle_with_mask(tiny, run_fast):
    cfg = tiny(block="preln", attention="standard", mlp_activation="gelu")
    model = sm.build_model(cfg, key=jax.random.key(0), verbose=False)
    tokens = np.asarray(jax.random.randint(jax.random.key(1), (3, cfg.seq_len + 1), 0, cfg.vocab_size))
    mask = np.ones((3, cfg.seq_len), np.float32)
    mask[1, 4:] = 0
    mask[2, :2] = 0
    loss, aux = run_fast(lambda m, t, k: sm.loss_fn(m, t, k), model, tokens, mask)
    logits = np.asarray(run_fast(lambda m, x: m(x), model, tokens[:, :-1]))
    np.testing.assert_allclose(float(loss), _oracle(logits, tokens[:, 1:], mask), rtol=1e-5)
    assert float(aux["n_tokens"]) == mask.sum()
    acc = ((logits.argmax(-1) == tokens[:, 1:]) * mask).sum() / mask.sum()
    np.testing.assert_allclose(float(aux["accuracy"]), acc, rtol=1e-6)
    # a [B, T+1] mask drops its first column
    full_mask = np.concatenate([np.ones((3, 1), np.float32), mask], axis=1)
    loss2, _ = run_fast(lambda m, t, k: sm.loss_fn(m, t, k), model, tokens, full_mask)
    np.testing.assert_allclose(float(loss2), float(loss), rtol=1e-6)
    with pytest.raises(ValueError, match="T\\+1"):
        sm.loss_fn(model, tokens[:, :1])
