"""Forward-mode autodiff through the whole model (plain operations), for every block × attention kind.

Oracles: central finite differences of the logits (float32, so a loose tolerance), and the reverse-mode gradient of
the loss through the CPU operations (a different code path: `jvp(loss)(v) = ⟨∇loss, v⟩` to float32 rounding).
GELU MLPs: the kink of (leaky) ReLU makes central differences first-order wherever a pre-activation crosses zero.
Measured relative error of the differences at this step (3e-3): 3e-5 to 2e-4 (float32 rounding dominates below it).
"""

import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import skipless_models as sm
from skipless_models.config import ATTENTIONS, BLOCKS


def _tangent(params, key):
    """A random direction with each leaf scaled to its parameter's size (unit-scale leaves: 0.1)."""
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    scaled = [jax.random.normal(k, p.shape, p.dtype) * (float(jnp.std(p)) if p.size > 1 and float(jnp.std(p)) > 0
                                                        else 0.1) for k, p in zip(keys, leaves)]
    return jax.tree.unflatten(tree, scaled)


# The fast tier runs a diagonal of the product (every block and every attention kind at least once); the whole
# product runs in the slow tier.
_FAST = {(block, ATTENTIONS[i % len(ATTENTIONS)]) for i, block in enumerate(BLOCKS)} | {
    (BLOCKS[i % len(BLOCKS)], attention) for i, attention in enumerate(ATTENTIONS)}
_COMBOS = [pytest.param(*combo, marks=() if combo in _FAST else pytest.mark.slow)
           for combo in itertools.product(BLOCKS, ATTENTIONS)]


@pytest.mark.parametrize("block, attention", _COMBOS)
def test_jvp_through_the_model_matches_finite_differences_and_reverse_mode(tiny, block, attention):
    cfg = tiny(block=block, attention=attention, depth=2, width=16, heads=2, seq_len=6, vocab_size=11,
               mlp_activation="gelu")
    model = sm.build_model(cfg, key=jax.random.key(0), verbose=False, ops="plain")
    params, static = eqx.partition(model, eqx.is_array)
    tangent = _tangent(params, jax.random.key(2))
    tokens = jax.random.randint(jax.random.key(1), (2, cfg.seq_len + 1), 0, cfg.vocab_size)

    def logits(p):
        return eqx.combine(p, static)(tokens[:, :-1])

    def loss(p):
        return sm.loss_fn(eqx.combine(p, static), tokens)[0]

    # Op by op: the 16 variants share their primitives' compilations (as test_combinations).
    with jax.disable_jit():
        _, jvp_logits = jax.jvp(logits, (params,), (tangent,))
        eps = 3e-3
        shifted = [logits(jax.tree.map(lambda p, t, s=s: p + s * eps * t, params, tangent)) for s in (1.0, -1.0)]
        fd = (shifted[0] - shifted[1]) / (2 * eps)
        _, jvp_loss = jax.jvp(loss, (params,), (tangent,))
        grads = jax.grad(lambda p: sm.loss_fn(eqx.combine(p, static).with_ops("cpu"), tokens)[0])(params)
    jvp_logits, fd = np.asarray(jvp_logits, np.float64), np.asarray(fd, np.float64)
    assert np.linalg.norm(jvp_logits) > 1e-3  # the direction moves the logits
    assert np.linalg.norm(jvp_logits - fd) < 1e-3 * np.linalg.norm(jvp_logits), (block, attention)
    want = sum(float(jnp.vdot(g, t)) for g, t in zip(jax.tree.leaves(grads), jax.tree.leaves(tangent)))
    np.testing.assert_allclose(float(jvp_loss), want, rtol=1e-4, atol=1e-6)


def test_the_cpu_operations_are_reverse_mode_only(tiny):
    """They are custom VJPs: `jax.jvp` refuses them (use `with_ops("plain")`, as above)."""
    cfg = tiny(depth=1)
    model = sm.build_model(cfg, key=jax.random.key(0), verbose=False, ops="cpu")
    params, static = eqx.partition(model, eqx.is_array)
    tokens = jnp.zeros((1, cfg.seq_len), jnp.int32)
    with pytest.raises(TypeError, match="custom_vjp"):
        jax.jvp(lambda p: eqx.combine(p, static)(tokens), (params,), (params,))
