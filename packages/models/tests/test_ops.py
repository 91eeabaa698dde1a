"""Each CPU operation against its plain version (the oracle): the same values and the same gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import skipless_models as sm
from skipless_models.ops import cpu, plain


def _assert_same_value_and_vjp(fast, slow, args, *, rtol=1e-5, atol=1e-6, seed=0):
    """`fast(*args)` and `slow(*args)` agree, and so do their pullbacks of one random cotangent (every argument)."""
    y_fast, pull_fast = jax.vjp(fast, *args)
    y_slow, pull_slow = jax.vjp(slow, *args)
    leaves = jax.tree.leaves(y_slow)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    cot = jax.tree.unflatten(jax.tree.structure(y_slow),
                             [jax.random.normal(k, y.shape, jnp.float32).astype(y.dtype) for k, y in zip(keys, leaves)])
    for a, b in zip(jax.tree.leaves(y_fast), leaves):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32), rtol=rtol, atol=atol)
    grads_fast, grads_slow = pull_fast(cot), pull_slow(cot)
    assert jax.tree.structure(grads_fast) == jax.tree.structure(grads_slow)
    for a, b in zip(jax.tree.leaves(grads_fast), jax.tree.leaves(grads_slow)):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32), rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype, tol", [(jnp.float32, 1e-5), (jnp.bfloat16, 2e-2)])
@pytest.mark.parametrize("d, f", [(3, 7), (7, 3)])  # the weight gradient transposes x, or g
def test_matmul(d, f, dtype, tol):
    keys = jax.random.split(jax.random.key(d), 2)
    x = jax.random.normal(keys[0], (11, d)).astype(dtype)
    w = jax.random.normal(keys[1], (d, f)).astype(dtype)
    _assert_same_value_and_vjp(cpu.matmul, plain.matmul, (x, w), rtol=tol, atol=tol)


def test_split_qkv():
    qkv = jax.random.normal(jax.random.key(2), (2, 5, 3, 3, 4))
    _assert_same_value_and_vjp(cpu.split_qkv, plain.split_qkv, (qkv,), rtol=0, atol=0)


@pytest.mark.parametrize("centre", [True, False])
def test_normalise(centre):
    keys = jax.random.split(jax.random.key(3), 3)
    x = 3.0 * jax.random.normal(keys[0], (2, 5, 24)) + 1.5
    gain = 1.0 + 0.3 * jax.random.normal(keys[1], (24,))
    bias = jax.random.normal(keys[2], (24,)) if centre else None

    def norm(ops_normalise):
        return lambda x_, g_, *b_: ops_normalise(x_, g_, b_[0] if b_ else None, centre)

    args = (x, gain) + ((bias,) if centre else ())
    _assert_same_value_and_vjp(norm(cpu.normalise), norm(plain.normalise), args, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind, causal", [("standard", True), ("standard", False), ("espa", True), ("uspa", True),
                                          ("uspa", False)])
def test_attention(tiny, kind, causal):
    b, t, h, k = 2, 8, 4, 8
    spa = None
    if kind != "standard":  # layer 2's generated tables of a tiny SPA model
        model = sm.build_model(tiny(attention=kind, causal=causal, seq_len=t), key=jax.random.key(0), verbose=False)
        spa = jax.tree.map(lambda a: a[1], model.spa_tables(t))
    q, kk, v = (jax.random.normal(key, (b, t, h, k)) for key in jax.random.split(jax.random.key(4), 3))

    def attention(op):
        return lambda q_, k_, v_: op(q_, k_, v_, spa=spa, causal=causal)

    _assert_same_value_and_vjp(attention(cpu.attention), attention(plain.attention), (q, kk, v), rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("masked", [False, True])
def test_head_loss(masked):
    keys = jax.random.split(jax.random.key(5), 3)
    x = jax.random.normal(keys[0], (3, 7, 5))
    head = jax.random.normal(keys[1], (5, 11))
    targets = jax.random.randint(keys[2], (3, 7), 0, 11)
    mask = jnp.ones((3, 7)).at[0, 3:].set(0.0).at[2, 0].set(0.0) if masked else None

    def loss(op):
        return lambda x_, h_: op(x_, h_, targets, mask)

    _assert_same_value_and_vjp(loss(sm.CPU_OPS.head_loss), loss(sm.PLAIN_OPS.head_loss), (x, head), rtol=1e-5, atol=1e-6)


def test_whole_model_loss_and_gradients_agree(tiny):
    """Pre-LN Value-SkipInit (norms, every matmul) and vanilla U-SPA: the CPU model against the plain one."""
    for cfg in (tiny(block="preln", attention="value_skipinit", mlp_activation="gelu"), tiny(attention="uspa")):
        model = sm.build_model(cfg, key=jax.random.key(0), verbose=False, ops="cpu")
        tokens = jax.random.randint(jax.random.key(1), (2, cfg.seq_len + 1), 0, cfg.vocab_size)
        _assert_same_value_and_vjp(
            lambda m: sm.loss_fn(m, tokens)[0], lambda m: sm.loss_fn(m.with_ops("plain"), tokens)[0], (model,),
            rtol=1e-4, atol=1e-6,
        )


def test_ops_are_chosen_once_by_name():
    assert sm.select_ops("auto") is (sm.CPU_OPS if jax.default_backend() == "cpu" else sm.PLAIN_OPS)
    assert sm.select_ops("plain") is sm.PLAIN_OPS and sm.select_ops(sm.CPU_OPS) is sm.CPU_OPS
    assert sm.PLAIN_OPS.forward_mode and not sm.CPU_OPS.forward_mode
    with pytest.raises(ValueError, match="ops must be one of"):
        sm.select_ops("fast")
