"""Every block × attention × activation combination builds, runs forward and backward, no NaN."""

import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import skipless_models as sm
from skipless_models.config import ACTIVATIONS, ATTENTIONS, BLOCKS

COMBOS = list(itertools.product(BLOCKS, ATTENTIONS, ACTIVATIONS))


@pytest.mark.parametrize("block, attention, activation", COMBOS)
def test_forward_backward_finite(tiny, block, attention, activation):
    cfg = tiny(block=block, attention=attention, mlp_activation=activation, depth=2)
    model = sm.build_model(cfg, key=jax.random.key(0), verbose=False)
    tokens = jax.random.randint(jax.random.key(1), (2, cfg.seq_len + 1), 0, cfg.vocab_size)

    # Op-by-op: the 48 variants share almost all primitives, whose compilations are cached, where 48
    # whole-program compilations would dominate the suite's run time. Jitted paths are tested elsewhere.
    with jax.disable_jit():
        (loss, aux), grads = eqx.filter_value_and_grad(sm.loss_fn, has_aux=True)(model, tokens)
    assert np.isfinite(float(loss)), (block, attention, activation)
    # a loss of a random-init model sits near log V, far from 0 and not astronomically large
    assert 0.5 < float(loss) < 10 * np.log(cfg.vocab_size)
    leaves = jax.tree.leaves(eqx.filter(grads, eqx.is_array))
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    # every trainable matrix receives gradient (buffers excluded)
    labels = jax.tree.leaves(sm.param_groups(model))
    for label, g in zip(labels, leaves):
        if label == "matrix":
            assert float(jnp.max(jnp.abs(g))) > 0.0
