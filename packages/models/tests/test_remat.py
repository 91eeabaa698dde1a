"""Rematerialised and unrolled layer loops give the same loss and gradients as the rolled scan, and the
scan itself equals applying each layer's block in a plain Python loop."""

import equinox as eqx
import jax
import numpy as np
import pytest

import skipless_models as sm


def _loop_loss(model, tokens):
    """Oracle: the same model with its blocks applied one by one (no scan)."""
    params, static = eqx.partition(model.blocks, eqx.is_array)
    x = model.embed_tokens(tokens[:, :-1])
    for i in range(model.config.depth):
        x = eqx.combine(jax.tree.map(lambda a: a[i], params), static)(x)
    logits = model.readout(x)
    return sm.cross_entropy(logits, tokens[:, 1:])


@pytest.mark.parametrize("variant", [dict(remat=True), dict(scan_unroll=1), dict(scan_unroll=0), dict(scan_unroll=2), dict(scan_unroll=3), dict(scan_unroll=99)])
def test_layer_loop_variants_match_plain_backward(tiny, run_fast, variant):
    cfg = tiny(attention="value_skipinit", block="preln")
    tokens = jax.random.randint(jax.random.key(1), (2, cfg.seq_len + 1), 0, cfg.vocab_size)
    vg = lambda m, t: eqx.filter_value_and_grad(sm.loss_fn, has_aux=True)(m, t)  # noqa: E731
    model = sm.build_model(cfg, key=jax.random.key(0), verbose=False)
    (l0, _), g0 = run_fast(lambda m, t: eqx.filter_value_and_grad(_loop_loss, has_aux=True)(m, t), model, tokens)
    other = sm.build_model(cfg.replace(**variant), key=jax.random.key(0), verbose=False)
    (l1, _), g1 = run_fast(vg, other, tokens)
    np.testing.assert_allclose(float(l1), float(l0), rtol=1e-6)
    for a, b in zip(jax.tree.leaves(g0), jax.tree.leaves(g1), strict=True):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-4, atol=1e-7)


def test_scan_unroll_must_not_be_negative(tiny):
    with pytest.raises(ValueError, match="scan_unroll"):
        tiny(scan_unroll=-1)


@pytest.mark.parametrize(("depth", "unroll", "resolved"), [(4, 0, 4), (16, 0, 16), (17, 0, 1), (72, 0, 1),
                                                           (16, 1, 1), (16, 3, 3), (4, 99, 4)])
def test_auto_unroll_is_full_when_shallow_and_rolled_when_deep(depth, unroll, resolved):
    assert sm.ModelConfig(depth=depth, scan_unroll=unroll).resolved_scan_unroll == resolved
