"""Parameter groups: labels, Value-SkipInit gains learn from step 0, SPA buffers never move."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import skipless_models as sm


def test_labels_match_parameter_structure(tiny):
    model = sm.build_model(tiny(attention="value_skipinit", block="preln", position="learned"), key=jax.random.key(0), verbose=False)
    params = eqx.filter(model, eqx.is_array)
    labels = sm.param_groups(model)
    assert jax.tree.structure(labels) == jax.tree.structure(params)
    assert set(jax.tree.leaves(labels)) <= set(sm.GROUPS)
    assert labels.embed == "embedding" and labels.pos_embed == "embedding" and labels.head == "head"
    assert labels.blocks.attention.w_qkv == "matrix" and labels.blocks.mlp.w_out == "matrix"
    assert labels.blocks.attention.skip_beta == "gain" and labels.blocks.mlp.b_in == "vector"
    assert labels.blocks.norm_attention.gain == "vector" and labels.final_norm.bias == "vector"
    spa = sm.build_model(tiny(attention="espa"), key=jax.random.key(0), verbose=False)
    spa_labels = sm.param_groups(spa)
    assert spa_labels.blocks.attention.spa_bias == "buffer" and spa_labels.blocks.attention.spa_scale == "buffer"


@pytest.mark.parametrize("block, per_head", [("vanilla", False), ("preln", True)])
def test_value_skipinit_beta_gets_gradient_at_step_0(tiny, run_fast, block, per_head):
    cfg = tiny(attention="value_skipinit", block=block, value_skipinit_per_head=per_head)
    model = sm.build_model(cfg, key=jax.random.key(0), verbose=False)
    tokens = jax.random.randint(jax.random.key(1), (4, cfg.seq_len + 1), 0, cfg.vocab_size)
    grads = run_fast(lambda m, t: eqx.filter_grad(lambda m: sm.loss_fn(m, t)[0])(m), model, tokens)
    g_beta = np.asarray(grads.blocks.attention.skip_beta)
    assert g_beta.shape == ((cfg.depth, cfg.heads) if per_head else (cfg.depth,))
    assert np.all(np.abs(g_beta) > 1e-7), g_beta
    assert np.all(np.isfinite(np.asarray(grads.blocks.attention.skip_alpha)))


def test_spa_buffers_get_no_optimiser_updates(tiny, run_fast):
    cfg = tiny(attention="uspa")
    model = sm.build_model(cfg, key=jax.random.key(0), verbose=False)
    labels = sm.param_groups(model)
    opt = optax.multi_transform(
        {
            "matrix": optax.adamw(1e-2, weight_decay=0.1),
            "vector": optax.adam(1e-2),
            "embedding": optax.adam(1e-2),
            "head": optax.adam(1e-2),
            "gain": optax.adam(1e-1),
            "buffer": optax.set_to_zero(),
        },
        lambda _: labels,  # a Module is callable: optax would call it as a label function
    )
    params = eqx.filter(model, eqx.is_array)
    state = opt.init(params)
    tokens = jax.random.randint(jax.random.key(1), (4, cfg.seq_len + 1), 0, cfg.vocab_size)

    def step(params, state, tokens):
        grads = eqx.filter_grad(lambda p: sm.loss_fn(eqx.combine(p, model), tokens)[0])(params)
        updates, state = opt.update(grads, state, params)
        return eqx.apply_updates(params, updates), state, grads

    new = params
    for _ in range(3):
        new, state, grads = run_fast(step, new, state, tokens)
    # the forward never differentiates into the buffers, and the optimiser does not move them
    assert float(jnp.abs(grads.blocks.attention.spa_bias).max()) == 0.0
    np.testing.assert_array_equal(np.asarray(new.blocks.attention.spa_bias), np.asarray(params.blocks.attention.spa_bias))
    np.testing.assert_array_equal(np.asarray(new.blocks.attention.spa_scale), np.asarray(params.blocks.attention.spa_scale))
    assert float(jnp.abs(new.blocks.mlp.w_in - params.blocks.mlp.w_in).max()) > 1e-4
