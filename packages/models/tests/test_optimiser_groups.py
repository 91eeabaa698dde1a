"""Parameter groups: labels, Value-SkipInit gains learn from step 0, SPA models have nothing to freeze."""

import equinox as eqx
import jax
import numpy as np
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
    # SPA: the same parameters as standard attention (its bias is generated, not stored), so no "buffer" leaf.
    spa = eqx.filter(sm.build_model(tiny(attention="espa"), key=jax.random.key(0), verbose=False), eqx.is_array)
    std = eqx.filter(sm.build_model(tiny(attention="standard"), key=jax.random.key(0), verbose=False), eqx.is_array)
    described = lambda tree: [(jax.tree_util.keystr(path), leaf.shape)  # noqa: E731
                              for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]]
    assert described(spa) == described(std)
    assert "buffer" not in jax.tree.leaves(sm.param_groups(sm.build_model(tiny(attention="uspa"), key=jax.random.key(0),
                                                                            verbose=False)))


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
