"""Attention at init against float64 oracles: sigprop's SPA matrices and an explicit numpy attention."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sigprop

import skipless_models as sm


def _softmax64(logits):
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("kind", ["espa", "uspa"])
def test_model_attention_equals_scaled_softmax_of_sigprop_bias(tiny, kind):
    cfg = tiny(attention=kind, depth=3, seq_len=16, width=32)
    model = sm.build_model(cfg, key=jax.random.key(0), verbose=False)
    tokens = jax.random.randint(jax.random.key(1), (2, cfg.seq_len), 0, cfg.vocab_size)
    attn = np.asarray(eqx.filter_jit(lambda m, t: m.intermediates(t))(model, tokens)["attention"], np.float64)  # [L, B, H, T, T]
    layers = sigprop.spa_layers(
        kind, cfg.depth, cfg.seq_len, gamma_final=cfg.resolved_knobs()["gamma_final"],
        rho_final=cfg.resolved_knobs()["rho_final"],
    )
    for l, layer in enumerate(layers):
        masked = np.where(np.isfinite(layer.bias), layer.bias, -np.inf)
        oracle = layer.scale[:, None] * _softmax64(masked)
        np.testing.assert_allclose(oracle, layer.attention, atol=1e-12)  # sigprop's own consistency
        got = attn[l]
        assert got.shape == (2, cfg.heads, cfg.seq_len, cfg.seq_len)
        np.testing.assert_allclose(got, np.broadcast_to(oracle, got.shape), atol=2e-6, rtol=1e-5)


def test_standard_and_value_skipinit_attention_at_init(tiny):
    tokens = jax.random.randint(jax.random.key(1), (2, 8), 0, 23)
    uniform = np.tril(np.ones((8, 8))) / np.arange(1, 9)[:, None]
    std = sm.build_model(tiny(attention="standard", init="sigprop"), key=jax.random.key(0), verbose=False)
    np.testing.assert_allclose(np.asarray(std.intermediates(tokens)["attention"]), np.broadcast_to(uniform, (3, 2, 4, 8, 8)), atol=1e-6)
    vsi = sm.build_model(tiny(attention="value_skipinit"), key=jax.random.key(0), verbose=False)
    np.testing.assert_allclose(np.asarray(vsi.intermediates(tokens)["attention"]), np.broadcast_to(np.eye(8), (3, 2, 4, 8, 8)), atol=1e-6)


def test_sigprop_init_weights(tiny):
    cfg = tiny(width=32, mlp_width=96, depth=2)
    model = sm.build_model(cfg, key=jax.random.key(0), verbose=False)
    att, mlp = model.blocks.attention, model.blocks.mlp
    w_qkv = np.asarray(att.w_qkv, np.float64)  # [L, D, H, 3, K]
    assert np.all(w_qkv[:, :, :, 0] == 0.0)  # W_Q = 0
    eye = np.eye(cfg.width)
    for l in range(cfg.depth):
        wv = w_qkv[l, :, :, 2].reshape(cfg.width, cfg.width)
        wo = np.asarray(att.w_o[l], np.float64).reshape(cfg.width, cfg.width)
        np.testing.assert_allclose(wv.T @ wv, eye, atol=1e-5)
        np.testing.assert_allclose(wo @ wo.T, eye, atol=1e-5)
        assert np.abs(wv.T @ wo).max() > 1e-3  # independent draws, not W_O = W_Vᵀ
        w_in = np.asarray(mlp.w_in[l], np.float64)  # [D, F], scale √(F/D)
        np.testing.assert_allclose(w_in @ w_in.T, (cfg.mlp_width / cfg.width) * eye, atol=1e-4)
        w_out = np.asarray(mlp.w_out[l], np.float64)  # [F, D], orthonormal columns
        np.testing.assert_allclose(w_out.T @ w_out, eye, atol=1e-5)
    assert np.all(np.asarray(mlp.b_in) == 0) and np.all(np.asarray(mlp.b_out) == 0)
    wk = w_qkv[:, :, :, 1]
    assert abs(wk.std() * np.sqrt(cfg.width) - cfg.wk_init_scale) < 0.1
    wk2 = sm.build_model(cfg.replace(wk_init_scale=0.5), key=jax.random.key(0), verbose=False)
    np.testing.assert_allclose(np.asarray(wk2.blocks.attention.w_qkv[:, :, :, 1]), 0.5 * wk, rtol=1e-5, atol=1e-7)


def _sigprop_bias_scale(kind, t, prev, level):
    """Layer bias and row scale from the float64 theory (None, None for non-SPA attention)."""
    if kind == "espa":
        return sigprop.espa_log_bias(t, prev, level), sigprop.espa_row_scale(t, prev, level)
    if kind == "uspa":
        return sigprop.uspa_log_bias(t, prev, level), sigprop.uspa_row_scale(t, prev, level)
    return None, None


def _numpy_attention_layer(att, x, rope, bias=None, scale=None):
    """Float64 oracle of one attention sub-block with per-head softmax, computed from scratch (SPA: `bias`,
    `scale` from sigprop)."""
    d = x.shape[-1]
    w = np.asarray(att.w_qkv, np.float64)  # [D, H, 3, K]
    h, k = w.shape[1], w.shape[3]
    q = np.einsum("btd,dhk->bthk", x, w[:, :, 0])
    kk = np.einsum("btd,dhk->bthk", x, w[:, :, 1])
    v = np.einsum("btd,dhk->bthk", x, w[:, :, 2])
    t = x.shape[1]
    if rope:
        half = k // 2
        ang = np.arange(t)[:, None] * (10000.0 ** (-np.arange(half) / half))[None]
        c, s = np.cos(ang)[None, :, None], np.sin(ang)[None, :, None]
        rot = lambda z: np.concatenate([z[..., :half] * c - z[..., half:] * s, z[..., :half] * s + z[..., half:] * c], -1)  # noqa: E731
        q, kk = rot(q), rot(kk)
    logits = np.einsum("bthk,bshk->bhts", q, kk) / np.sqrt(k)
    if bias is not None:
        logits = logits + bias
    logits = np.where(np.tril(np.ones((t, t), bool)), logits, -np.inf)
    a = _softmax64(logits)
    if scale is not None:
        a = a * scale[:, None]
    heads = np.einsum("bhts,bshk->bthk", a, v)
    if att.kind == "value_skipinit":
        alpha = np.asarray(att.skip_alpha, np.float64).reshape((1, 1, -1, 1) if att.skip_alpha.ndim else ())
        beta = np.asarray(att.skip_beta, np.float64).reshape((1, 1, -1, 1) if att.skip_beta.ndim else ())
        heads = alpha * v + beta * heads
    return heads.reshape(x.shape[0], t, h * k) @ np.asarray(att.w_o, np.float64).reshape(h * k, d)


@pytest.mark.parametrize(
    "kind, rope, per_head",
    [("standard", False, False), ("espa", True, False), ("uspa", False, False), ("value_skipinit", True, True)],
)
def test_attention_layer_matches_float64_oracle_after_training_moves_weights(tiny, kind, rope, per_head):
    cfg = tiny(attention=kind, position="rope" if rope else "none", value_skipinit_per_head=per_head, seq_len=8)
    model = sm.build_model(cfg, key=jax.random.key(0), verbose=False)
    att = jax.tree.map(lambda a: a[0], model.blocks.attention)
    # move away from init: non-zero W_Q, β ≠ 0, α ≠ 1 so every term of the formula matters
    kq, kb = jax.random.split(jax.random.key(3))
    w = att.w_qkv.at[:, :, 0].set(jax.random.normal(kq, att.w_qkv[:, :, 0].shape) / np.sqrt(cfg.width))
    att = eqx.tree_at(lambda a: a.w_qkv, att, w)
    if kind == "value_skipinit":
        shape = att.skip_beta.shape
        att = eqx.tree_at(lambda a: (a.skip_alpha, a.skip_beta), att,
                          (0.7 + jnp.zeros(shape), 0.3 + 0.1 * jax.random.normal(kb, shape)))
    t = 11  # longer than the model's seq_len = 8: SPA attention is generated at any length
    x = np.asarray(jax.random.normal(jax.random.key(4), (2, t, cfg.width)))
    spa = None if model.spa_levels is None else jax.tree.map(lambda a: a[0], model.spa_tables(t))
    got = np.asarray(eqx.filter_jit(lambda a, x, s: a(x, s))(att, jnp.asarray(x, jnp.float32), spa), np.float64)
    levels = model.spa_levels or (None, None)
    bias, scale = _sigprop_bias_scale(kind, t, levels[0], levels[1])
    want = _numpy_attention_layer(att, x.astype(np.float64), rope, bias, scale)
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=1e-4)
