"""Next-token cross-entropy against a float64 numpy oracle."""

import dataclasses
import functools

import equinox as eqx
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


def _oracle_head(x, head, targets, mask):
    """Loss, accuracy, logit RMS and d loss / d (x, head) in float64 numpy: softmax minus one-hot."""
    x64, w64 = x.astype(np.float64), head.astype(np.float64)
    z = x64 @ w64
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    weights = mask / mask.sum()
    onehot = np.eye(head.shape[1])[targets]
    dz = (p - onehot) * weights[..., None]
    acc = ((z.argmax(-1) == targets) * weights).sum()
    return _oracle(z, targets, mask), acc, np.sqrt(np.mean(z**2)), dz @ w64.T, np.einsum("btd,btv->dv", x64, dz)


@pytest.mark.parametrize("chunk_tokens", [None, 1, 6, 8, 10_000])
def test_head_cross_entropy_and_its_gradient_match_float64_oracle(chunk_tokens):
    """Chunks of 1 and 6 tokens at B=3, T=7 exercise padding (c=2 → T padded to 8) and c=1."""
    rng = np.random.default_rng(0)
    b, t, d, v = 3, 7, 5, 11
    x = rng.standard_normal((b, t, d)).astype(np.float32)
    head = rng.standard_normal((d, v)).astype(np.float32)
    targets = rng.integers(0, v, (b, t))
    mask = np.ones((b, t), np.float32)
    mask[0, 3:] = 0
    mask[2, 0] = 0

    def f(x, head):
        return sm.head_cross_entropy(x, head, targets, mask, chunk_tokens=chunk_tokens)

    (loss, aux), (dx, dhead) = jax.jit(jax.value_and_grad(f, argnums=(0, 1), has_aux=True))(x, head)
    want_loss, want_acc, want_rms, want_dx, want_dhead = _oracle_head(x, head, targets, mask)
    np.testing.assert_allclose(float(loss), want_loss, rtol=1e-6)
    np.testing.assert_allclose(float(aux["accuracy"]), want_acc, rtol=1e-6)
    np.testing.assert_allclose(float(aux["logit_rms"]), want_rms, rtol=1e-6)
    assert float(aux["n_tokens"]) == mask.sum()
    np.testing.assert_allclose(np.asarray(dx), want_dx, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.asarray(dhead), want_dhead, rtol=1e-5, atol=1e-7)
    # forward without differentiation takes the same path minus the gradient
    loss_only, _ = jax.jit(f)(x, head)
    np.testing.assert_allclose(float(loss_only), want_loss, rtol=1e-6)


def test_head_cross_entropy_scales_gradient_by_the_loss_cotangent_and_rejects_bad_chunks():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 3)).astype(np.float32)
    head = rng.standard_normal((3, 6)).astype(np.float32)
    targets = rng.integers(0, 6, (2, 4))
    g1 = jax.grad(lambda x: sm.head_cross_entropy(x, head, targets)[0])(x)

    def scaled(x):
        loss, aux = sm.head_cross_entropy(x, head, targets)
        return 3.0 * loss + aux["accuracy"]  # accuracy is a constant to autodiff

    g3 = jax.grad(scaled)(x)
    np.testing.assert_allclose(np.asarray(g3), 3 * np.asarray(g1), rtol=1e-6)
    with pytest.raises(ValueError, match="chunk_tokens"):
        sm.head_cross_entropy(x, head, targets, chunk_tokens=0)


@pytest.mark.parametrize("block", ["preln", "vanilla"])
def test_loss_fn_gradient_matches_autodiff_through_full_logits(tiny, block):
    """The fused head (final norm included) against plain autodiff of `cross_entropy(model(inputs))`."""
    kw = dict(block="preln", attention="standard", mlp_activation="gelu") if block == "preln" else {}
    cfg = tiny(**kw)
    model = sm.build_model(cfg, key=jax.random.key(0), verbose=False)
    tokens = jax.random.randint(jax.random.key(1), (4, cfg.seq_len + 1), 0, cfg.vocab_size)

    chunked = dataclasses.replace(sm.CPU_OPS, head_loss=functools.partial(sm.head_cross_entropy, chunk_tokens=8))
    model = model.with_ops(chunked)

    def plain(m):
        return sm.cross_entropy(m.with_ops("plain")(tokens[:, :-1]), tokens[:, 1:])

    def fused(m):
        return sm.loss_fn(m, tokens)

    (l_fused, aux_fused), g_fused = eqx.filter_jit(eqx.filter_value_and_grad(fused, has_aux=True))(model)
    (l_plain, aux_plain), g_plain = eqx.filter_jit(eqx.filter_value_and_grad(plain, has_aux=True))(model)
    np.testing.assert_allclose(float(l_fused), float(l_plain), rtol=1e-6)
    for key in ("accuracy", "logit_rms"):
        np.testing.assert_allclose(float(aux_fused[key]), float(aux_plain[key]), rtol=1e-5)
    leaves_f, leaves_p = jax.tree.leaves(g_fused), jax.tree.leaves(g_plain)
    assert len(leaves_f) == len(leaves_p) > 0
    for a, b in zip(leaves_f, leaves_p):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)


def test_accuracy_counts_a_tie_for_the_top_as_a_hit_in_both_losses():
    """Accuracy is 'the target's logit is the row maximum' (numpy oracle), equal to argmax off ties."""
    rng = np.random.default_rng(2)
    d, v = 4, 6
    head = rng.standard_normal((d, v)).astype(np.float32)
    head[:, 3] = head[:, 1]  # ids 1 and 3 always tie
    x = rng.standard_normal((1, 40, d)).astype(np.float32)
    z = x[0].astype(np.float64) @ head.astype(np.float64)
    top = z.argmax(-1)
    # targets: the first maximiser, its tied twin where it has one, or the runner-up (a miss)
    twin = np.where(top == 1, 3, np.where(top == 3, 1, top))
    runner_up = np.argsort(z, -1)[:, -2]
    runner_up = np.where(np.isin(top, (1, 3)) & np.isin(runner_up, (1, 3)), np.argsort(z, -1)[:, -3], runner_up)
    targets = np.where(np.arange(40) % 3 == 0, top, np.where(np.arange(40) % 3 == 1, twin, runner_up))[None]
    want = (np.take_along_axis(z, targets[0][:, None], -1)[:, 0] >= z.max(-1)).mean()
    assert 0.3 < want < 0.9  # both hits (ties included) and misses occur
    _, aux_fused = sm.head_cross_entropy(x, head, targets, chunk_tokens=8)
    _, aux_plain = sm.cross_entropy(jax.numpy.asarray(x @ head), targets)
    np.testing.assert_allclose(float(aux_fused["accuracy"]), want, rtol=1e-6)
    np.testing.assert_allclose(float(aux_plain["accuracy"]), want, rtol=1e-6)
