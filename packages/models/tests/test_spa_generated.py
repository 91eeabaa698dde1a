"""SPA attention generated from per-layer schedule numbers: what a model keeps, any length, both paths, formats."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sigprop

import skipless_models as sm

SEQ = 24  # a length no other dimension of the tiny models has


def _levels(cfg):
    knobs = cfg.resolved_knobs()
    if cfg.attention == "espa":
        return sigprop.espa_gammas(cfg.depth, knobs["gamma_final"])
    return sigprop.uspa_rhos(cfg.depth, knobs["rho_final"])


@pytest.mark.parametrize("kind", ["espa", "uspa"])
def test_model_keeps_only_the_schedule_numbers(tiny, kind):
    cfg = tiny(attention=kind, seq_len=SEQ)
    model = sm.build_model(cfg, key=jax.random.key(0), verbose=False)
    np.testing.assert_array_equal(np.asarray(model.spa_levels), _levels(cfg))  # float64, as sigprop made them
    leaves = jax.tree.leaves(eqx.filter(model, eqx.is_array))
    assert all(SEQ not in leaf.shape for leaf in leaves), [leaf.shape for leaf in leaves]
    numbers = np.asarray(model.spa_numbers())  # [L, 2]: level, step
    levels = _levels(cfg)
    np.testing.assert_allclose(numbers[:, 0], levels[1:], rtol=1e-7)
    steps = levels[:-1] - levels[1:] if kind == "espa" else levels[1:] - levels[:-1]
    np.testing.assert_allclose(numbers[:, 1], steps, rtol=1e-7)


@pytest.mark.parametrize("depth", [3, 20])  # unrolled and rolled layer loops
def test_train_step_keeps_no_bias_between_forward_and_backward(tiny, depth):
    """The residuals of the loss's pullback (what a train step holds between its passes) include no `[T, T]`
    or `[L, T, T]` array: the bias is rebuilt per layer (the stored-buffer model kept `[L, T, T]`)."""
    cfg = tiny(attention="espa", depth=depth, seq_len=SEQ, attention_impl="xla")
    model = sm.build_model(cfg, key=jax.random.key(0), verbose=False)
    params, static = eqx.partition(model, eqx.is_array)
    tokens = jax.random.randint(jax.random.key(1), (2, SEQ + 1), 0, cfg.vocab_size)
    _, pullback = jax.vjp(lambda p: sm.loss_fn(eqx.combine(p, static), tokens)[0], params)
    shapes = [leaf.shape for leaf in jax.tree.leaves(pullback) if jnp.issubdtype(leaf.dtype, jnp.floating)]
    assert shapes, "the pullback should hold residuals"
    assert (SEQ, SEQ) not in shapes and (depth, SEQ, SEQ) not in shapes, shapes


@pytest.mark.parametrize("kind,position", [("espa", "none"), ("uspa", "rope")])
def test_evaluates_beyond_its_training_length(tiny, kind, position):
    """A model built for T = 16 scores T = 40 exactly as one built for T = 40 (same weights), and its attention at
    init is the float64 theory's at T = 40."""
    short = sm.build_model(tiny(attention=kind, position=position, seq_len=16), key=jax.random.key(0), verbose=False)
    long = sm.build_model(tiny(attention=kind, position=position, seq_len=40), key=jax.random.key(0), verbose=False)
    tokens = jax.random.randint(jax.random.key(1), (2, 40), 0, 23)
    logits = eqx.filter_jit(lambda m, t: m(t))
    np.testing.assert_allclose(np.asarray(logits(short, tokens)), np.asarray(logits(long, tokens)), rtol=1e-6, atol=1e-6)
    attention = np.asarray(eqx.filter_jit(lambda m, t: m.intermediates(t))(short, tokens)["attention"], np.float64)
    levels = short.spa_levels
    for layer in range(len(levels) - 1):
        fn = sigprop.espa_attention if kind == "espa" else sigprop.uspa_attention
        want = fn(40, levels[layer], levels[layer + 1])
        np.testing.assert_allclose(attention[layer], np.broadcast_to(want, attention[layer].shape), atol=2e-6, rtol=1e-5)


def test_learned_positions_still_bound_the_length(tiny):
    model = sm.build_model(tiny(attention="standard", position="learned", seq_len=8), key=jax.random.key(0), verbose=False)
    with pytest.raises(ValueError, match="learned position embeddings"):
        model(jnp.zeros((1, 9), jnp.int32))


@pytest.mark.parametrize("kind", ["espa", "uspa"])
def test_pallas_kernel_and_xla_path_agree_inside_the_model(tiny, kind):
    """The same model through the Pallas kernel (interpret mode here) and the XLA path: loss and gradients."""
    cfg = tiny(attention=kind, seq_len=20, depth=2)
    tokens = jax.random.randint(jax.random.key(1), (2, 21), 0, cfg.vocab_size)
    results = []
    for impl in ("xla", "pallas"):
        model = sm.build_model(cfg.replace(attention_impl=impl), key=jax.random.key(0), verbose=False)
        # move W_Q off zero so the logits matter
        w = model.blocks.attention.w_qkv
        model = eqx.tree_at(lambda m: m.blocks.attention.w_qkv, model,
                            w.at[..., 0, :].set(0.3 * jax.random.normal(jax.random.key(2), w[..., 0, :].shape)))
        results.append(eqx.filter_jit(eqx.filter_value_and_grad(lambda m: sm.loss_fn(m, tokens)[0]))(model))
    (loss_x, grads_x), (loss_p, grads_p) = results
    np.testing.assert_allclose(float(loss_p), float(loss_x), rtol=1e-5)
    for a, b in zip(jax.tree.leaves(eqx.filter(grads_p, eqx.is_array)), jax.tree.leaves(eqx.filter(grads_x, eqx.is_array))):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=2e-5)


def test_non_causal_uspa_follows_the_symmetric_root_and_non_causal_espa_is_refused(tiny):
    model = sm.build_model(tiny(attention="uspa", causal=False, seq_len=12), key=jax.random.key(0), verbose=False)
    attention = np.asarray(model.intermediates(jnp.zeros((1, 12), jnp.int32))["attention"], np.float64)
    levels = model.spa_levels
    for layer in range(len(levels) - 1):
        want = sigprop.uspa_attention(12, levels[layer], levels[layer + 1], causal=False)
        np.testing.assert_allclose(attention[layer, 0, 0], want, atol=2e-6, rtol=1e-5)
    with pytest.raises(ValueError, match="non-causal E-SPA"):
        tiny(attention="espa", causal=False)


def test_config_records_its_format_and_old_spa_checkpoints_are_refused(tiny):
    cfg = tiny(attention="espa")
    saved = json.loads(json.dumps(cfg.to_dict()))
    assert saved["format_version"] == sm.MODEL_FORMAT_VERSION == 3
    assert sm.ModelConfig.from_dict(saved) == cfg.resolved()
    sm.check_checkpoint_format(saved)  # this code's own format loads
    old = {k: v for k, v in saved.items() if k != "format_version"}  # what config.json held before versions
    with pytest.raises(ValueError, match="model format 1") as error:
        sm.check_checkpoint_format(old)
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="model format 1"):  # its trees held the (None) SPA fields too
        sm.check_checkpoint_format({**old, "attention": "standard"})
    with pytest.raises(ValueError, match="model format 2 .*optimiser state"):  # one more optimiser stage then
        sm.check_checkpoint_format({**saved, "format_version": 2})
    with pytest.raises(ValueError, match="newer than this code"):
        sm.check_checkpoint_format({**saved, "format_version": 4})
    with pytest.raises(ValueError, match="not a positive integer"):
        sm.check_checkpoint_format({**saved, "format_version": "two"})
