"""Empirical kernels Σ_l = X_l X_lᵀ / d of models at init against the theory's targets (float64)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sigprop

import skipless_models as sm


def orthogonal_inputs(seq_len: int, width: int, seed: int = 0) -> np.ndarray:
    """`[1, T, D]` inputs with X Xᵀ / D = I exactly (T ≤ D)."""
    return sigprop.orthogonal_inputs(1, seq_len, width, seed)


def empirical_kernels(x_LxBxTxD) -> np.ndarray:
    """`[L, T, T]`: each layer's `sigprop.kernel_stats(...).kernel`."""
    return np.stack([sigprop.kernel_stats(x).kernel for x in np.asarray(x_LxBxTxD)])


def _intermediates(model, x):
    return eqx.filter_jit(lambda m, x: m.intermediates(x))(model, jnp.asarray(x, jnp.float32))


@pytest.mark.parametrize("kind", ["espa", "uspa"])
def test_attention_only_spa_stack_reproduces_targets(kind):
    cfg = sm.ModelConfig(vocab_size=8, width=128, heads=4, depth=36, seq_len=128, attention=kind, use_mlp=False)
    model = sm.build_model(cfg, key=jax.random.key(0), verbose=False)
    got = empirical_kernels(_intermediates(model, orthogonal_inputs(128, 128))["after_attention"])
    knobs = cfg.resolved_knobs()
    targets = [x.kernel for x in sigprop.spa_layers(kind, 36, 128, gamma_final=knobs["gamma_final"], rho_final=knobs["rho_final"])]
    err = np.abs(got - np.stack(targets)).max()
    assert err <= 1e-4, f"max |Σ_emp − Σ_target| = {err:.2e}"
    # and the targets are far from trivial: the final kernel is neither I nor collapsed
    final_cos = sigprop.mean_offdiag(sigprop.cosine_from_kernel(targets[-1]))
    assert 0.05 < final_cos < 0.95


def test_uniform_attention_collapses():
    cfg = sm.ModelConfig(vocab_size=8, width=64, heads=4, depth=12, seq_len=32, attention="standard",
                         init="sigprop", use_mlp=False)
    model = sm.build_model(cfg, key=jax.random.key(0), verbose=False)
    kernels = empirical_kernels(_intermediates(model, orthogonal_inputs(32, 64))["after_attention"])
    cos = [sigprop.mean_offdiag(sigprop.cosine_from_kernel(k)) for k in kernels]
    assert cos[0] < 0.9
    assert cos[11] > 0.99, f"mean cosine after layer 12 is {cos[11]:.4f}"


def test_value_skipinit_leaves_kernel_unchanged():
    cfg = sm.ModelConfig(vocab_size=8, width=64, heads=4, depth=6, seq_len=32, attention="value_skipinit",
                         use_mlp=False, value_skipinit_per_head=True)
    model = sm.build_model(cfg, key=jax.random.key(0), verbose=False)
    x0 = orthogonal_inputs(32, 64)
    kernels = empirical_kernels(_intermediates(model, x0)["after_attention"])
    np.testing.assert_allclose(kernels, np.broadcast_to(np.eye(32), kernels.shape), atol=1e-5)


@pytest.mark.parametrize("kind, block", [("espa", "vanilla"), ("value_skipinit", "vanilla"), ("uspa", "skipless_ln")])
def test_tat_mlp_network_follows_predicted_kernels(kind, block):
    """With wide MLPs the whole network's kernel follows the theory (attention targets ∘ C-maps)."""
    cfg = sm.ModelConfig(vocab_size=8, width=256, heads=4, mlp_width=1024, depth=4, seq_len=16, attention=kind,
                         block=block, tat_eta=0.5, gamma_final=0.3)
    model = sm.build_model(cfg, key=jax.random.key(1), verbose=False)
    out = _intermediates(model, orthogonal_inputs(16, 256))
    predicted = sm.predicted_kernels(cfg)
    for where in ("after_attention", "after_mlp"):
        got = sigprop.cosine_from_kernel(empirical_kernels(out[where]))
        want = np.stack([sigprop.cosine_from_kernel(p[where]) for p in predicted])
        # finite width (D = 256, F = 1024) leaves O(1/√D) fluctuations: ~0.03 here
        assert np.abs(got - want).mean() < 0.06, where
    final = sigprop.mean_offdiag(sigprop.cosine_from_kernel(empirical_kernels(out["after_mlp"])[-1]))
    assert abs(final - sm.predicted_final_cosine(cfg)) < 0.05


def test_nf_residual_block_is_the_weighted_sum_of_shortcut_and_branch():
    """x ← a·x + b·f(x) with a² + b² = 1, checked against the sub-blocks called by hand, and b < 1 at depth."""
    cfg = sm.ModelConfig(vocab_size=8, width=32, heads=4, depth=12, seq_len=16, attention="espa", block="nf_residual")
    model = sm.build_model(cfg, key=jax.random.key(2), verbose=False)
    b = sm.residual_branch_weight(cfg)
    assert 0.0 < b < 1.0 and model.blocks.branch_weight == b
    assert model.final_norm is None and model.blocks.norm_attention is None and model.blocks.norm_mlp is None
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 16, 32)), jnp.float32)
    out = _intermediates(model, x)
    params, static = eqx.partition(model.blocks, eqx.is_array)
    layer0 = eqx.combine(jax.tree_util.tree_map(lambda p: p[0], params), static)
    spa0 = jax.tree_util.tree_map(lambda p: p[0], model.spa_tables(16))
    a = np.sqrt(1.0 - b * b)
    want_attn = a * np.asarray(x) + b * np.asarray(layer0.attention(x, spa=spa0))
    np.testing.assert_allclose(np.asarray(out["after_attention"][0]), want_attn, atol=1e-5)
    want_mlp = a * want_attn + b * np.asarray(layer0.mlp(jnp.asarray(want_attn, jnp.float32)))
    np.testing.assert_allclose(np.asarray(out["after_mlp"][0]), want_mlp, atol=1e-5)


@pytest.mark.parametrize("kind", ["espa", "standard", "uspa"])
def test_nf_residual_network_follows_predicted_kernels(kind):
    """The norm-free residual model's kernel, averaged over initialisations (the theory is an expectation over
    the weights: the shortcut-branch cross terms vanish only on average), follows the prediction."""
    cfg = sm.ModelConfig(vocab_size=8, width=256, heads=4, mlp_width=1024, depth=4, seq_len=16, attention=kind,
                         block="nf_residual", tat_eta=0.5, gamma_final=0.3)
    predicted = sm.predicted_kernels(cfg)
    got = {"after_attention": 0.0, "after_mlp": 0.0}
    seeds = 6
    for seed in range(seeds):
        model = sm.build_model(cfg, key=jax.random.key(seed), verbose=False)
        out = _intermediates(model, orthogonal_inputs(16, 256, seed=seed))
        for where in got:
            got[where] = got[where] + empirical_kernels(out[where]) / seeds
    # 6 networks at D = 256 leave ~0.025 of noise per entry; without the shortcut (b = 1) the kernels differ by far more
    unweighted = sigprop.predict_residual_kernels(sm.attention_at_init(cfg), sigprop.mlp_kernel_map(
        "tat_leaky_relu", alpha=sm.tat_alpha(cfg)), 1.0)
    for where in got:
        want = np.stack([p[where] for p in predicted])
        assert np.abs(got[where] - want).mean() < 0.035, where
        assert np.abs(got[where] - want).max() < 0.2, where
        assert np.abs(got[where] - np.stack([p[where] for p in unweighted])).mean() > 0.06, where
    assert 0.0 < sm.residual_branch_weight(cfg) < 1.0
