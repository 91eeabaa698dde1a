"""Rematerialised blocks give the same loss and gradients as stored activations."""

import equinox as eqx
import jax
import numpy as np

import skipless_models as sm


def test_remat_matches_plain_backward(tiny, run_fast):
    cfg = tiny(attention="value_skipinit", block="preln")
    tokens = jax.random.randint(jax.random.key(1), (2, cfg.seq_len + 1), 0, cfg.vocab_size)
    vg = lambda m, t: eqx.filter_value_and_grad(sm.loss_fn, has_aux=True)(m, t)  # noqa: E731
    outs = []
    for remat in (False, True):
        model = sm.build_model(cfg.replace(remat=remat), key=jax.random.key(0), verbose=False)
        outs.append(run_fast(vg, model, tokens))
    (l0, _), g0 = outs[0]
    (l1, _), g1 = outs[1]
    np.testing.assert_allclose(float(l1), float(l0), rtol=1e-6)
    for a, b in zip(jax.tree.leaves(g0), jax.tree.leaves(g1)):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-4, atol=1e-7)
