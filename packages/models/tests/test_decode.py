"""Decoding with a key/value cache (`skipless_models.decode`) gives the full forward pass's logits.

Every block arrangement × attention kind of `ModelConfig` (iterated from the config's own lists, so a kind added
later is covered), with the position encodings taken in turn, on a model whose weights are perturbed away from the
initialisation (W_Q ≠ 0, Value-SkipInit β ≠ 0, norms not at identity), so every term of the attention matters.
A batch of two prompts of different lengths is decoded together: each row's logits are compared with the full
forward pass over that row alone.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import skipless_models as sm
from skipless_models.config import ATTENTIONS, BLOCKS, POSITIONS
from skipless_models.decode import decode_step, init_cache

COMBOS = [(block, attention, POSITIONS[i % len(POSITIONS)])
          for i, (block, attention) in enumerate(itertools.product(BLOCKS, ATTENTIONS))]
# Two combinations in the fast tier; the whole product (≈5 s of compiling each on 2 cores) in the slow tier.
FAST = {("vanilla", "espa"), ("preln", "value_skipinit")}
PARAMS = [pytest.param(*combo, marks=() if combo[:2] in FAST else pytest.mark.slow) for combo in COMBOS]
T, VOCAB = 10, 31
PROMPTS = (3, 6)  # row b's prompt length; the rest of its row is decoded one position per step


def perturbed(cfg, seed=0):
    model = sm.build_model(cfg, key=jax.random.key(seed), verbose=False)
    leaves, tree = jax.tree.flatten(model)
    keys = jax.random.split(jax.random.key(seed + 1), len(leaves))
    leaves = [leaf + 0.2 * jax.random.normal(k, leaf.shape) for leaf, k in zip(leaves, keys)]
    return jax.tree.unflatten(tree, leaves)


def cached_logits(model, tokens_BxT):
    """Prefill each row's prompt (right-padded with junk to the longest), then one position per step."""
    b, t = tokens_BxT.shape
    lengths = jnp.asarray(PROMPTS)
    width = max(PROMPTS)
    slots = jnp.arange(width)[None, :]
    prompt = jnp.where(slots < lengths[:, None], tokens_BxT[:, :width], VOCAB - 1)  # padding: a junk token
    logits, cache = decode_step(model, init_cache(model, b, t), prompt, jnp.broadcast_to(slots, (b, width)))
    out = jnp.zeros((b, t, logits.shape[-1]), jnp.float32).at[:, :width].set(logits)

    def step(carry, s):
        out, cache = carry
        positions = lengths + s  # each row at its own next position
        safe = jnp.minimum(positions, t - 1)
        token = jnp.take_along_axis(tokens_BxT, safe[:, None], axis=1)
        logits, new_cache = decode_step(model, cache, token, safe[:, None])
        live = (positions < t)[:, None, None]
        out = jnp.where(live & (jnp.arange(t)[None, :, None] == safe[:, None, None]), logits, out)
        cache = jax.tree.map(lambda new, old: jnp.where(live[None, :, :, :, None], new, old), new_cache, cache)
        return (out, cache), None

    (out, _), _ = jax.lax.scan(step, (out, cache), jnp.arange(t - min(PROMPTS)))
    return out


@pytest.mark.parametrize("block, attention, position", PARAMS)
def test_cached_decoding_matches_the_full_forward(run_fast, block, attention, position):
    cfg = sm.ModelConfig(vocab_size=VOCAB, width=16, depth=2, heads=2, seq_len=T, block=block, attention=attention,
                         position=position, attention_impl="xla", value_skipinit_per_head=attention == "value_skipinit")
    with pytest.warns(UserWarning) if position == "learned" and cfg.is_spa else _nothing():
        model = perturbed(cfg)
    tokens = jax.random.randint(jax.random.key(7), (2, T), 0, VOCAB - 1)
    full, cached = run_fast(lambda m, x: (m(x), cached_logits(m, x)), model, tokens)
    full, cached = np.asarray(full), np.asarray(cached)
    assert np.abs(full).max() > 1.0  # logits far from zero: a wrong attention would show
    for row, length in enumerate(PROMPTS):  # each row against the full pass (rows are independent there)
        np.testing.assert_allclose(cached[row], full[row], rtol=0, atol=2e-5 * np.abs(full[row]).max(),
                                   err_msg=f"{block}/{attention}/{position} row {row} (prompt {length})")


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_cache_rejects_non_causal_models():
    cfg = sm.ModelConfig(vocab_size=VOCAB, width=16, depth=2, heads=2, seq_len=T, attention="uspa", causal=False)
    model = sm.build_model(cfg, key=jax.random.key(0), verbose=False)
    with pytest.raises(ValueError, match="causal"):
        init_cache(model, 1, T)
