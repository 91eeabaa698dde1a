"""FLOP accounting against a count of the model's own matrices."""

import equinox as eqx
import jax

import skipless_models as sm


def test_flops_count_the_model_matrices(tiny):
    for cfg in (tiny(), tiny(use_mlp=False), tiny(mlp_width=40, block="preln")):
        model = sm.build_model(cfg, key=jax.random.key(0), verbose=False)
        labels = jax.tree.leaves(sm.param_groups(model))
        leaves = jax.tree.leaves(eqx.filter(model, eqx.is_array))
        n = sum(x.size for x, lab in zip(leaves, labels) if lab in ("matrix", "head"))
        assert sm.matmul_params(cfg) == n
        attn = 12 * cfg.depth * cfg.width * cfg.seq_len
        assert sm.model_flops_per_token(cfg) == 6 * n + attn
        assert sm.model_flops_per_token(cfg, seq_len=4) == 6 * n + 12 * cfg.depth * cfg.width * 4
