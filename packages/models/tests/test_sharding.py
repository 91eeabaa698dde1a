"""Partition specs on ("data", "model") meshes of fake CPU devices: sharded forward == unsharded forward."""

import os
import subprocess
import sys
import textwrap

import jax
import pytest
from jax.sharding import PartitionSpec as P

import skipless_models as sm

_SCRIPT = textwrap.dedent(
    """
    import os
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
    import equinox as eqx, jax, numpy as np
    from jax.sharding import NamedSharding, AxisType
    import skipless_models as sm

    def check(cfg, mesh_shape):
        model = sm.build_model(cfg, key=jax.random.key(0), verbose=False)
        tokens = jax.random.randint(jax.random.key(1), (8, cfg.seq_len), 0, cfg.vocab_size)
        want = np.asarray(eqx.filter_jit(lambda m, t: m(t))(model, tokens))
        mesh = jax.make_mesh(mesh_shape, ("data", "model"), axis_types=(AxisType.Auto,) * 2)
        specs = sm.partition_specs(model, mesh)
        params, static = eqx.partition(model, eqx.is_array)
        n_sharded = 0
        for leaf, spec in zip(jax.tree.leaves(params), jax.tree.leaves(specs, is_leaf=lambda x: isinstance(x, jax.sharding.PartitionSpec))):
            for dim, axis in zip(leaf.shape, tuple(spec)):
                if axis is not None:
                    assert dim % mesh.shape[axis] == 0, (leaf.shape, spec)
                    n_sharded += 1
        shardings = jax.tree.map(lambda s: NamedSharding(mesh, s), specs, is_leaf=lambda x: isinstance(x, jax.sharding.PartitionSpec))
        params = jax.device_put(params, shardings)
        tokens = jax.device_put(tokens, NamedSharding(mesh, jax.sharding.PartitionSpec("data")))
        got = jax.jit(lambda p, t: eqx.combine(p, static)(t))(params, tokens)
        np.testing.assert_allclose(np.asarray(got), want, atol=2e-4, rtol=2e-4)
        return n_sharded

    base = sm.ModelConfig(vocab_size=24, width=32, heads=4, depth=2, seq_len=8, mlp_width=64)
    assert check(base, (2, 4)) > 5
    assert check(base.replace(block="preln", attention="value_skipinit", value_skipinit_per_head=True), (4, 2)) > 5
    # width 36 and vocabulary 23 do not divide by 8: those dimensions fall back to replication
    check(sm.ModelConfig(vocab_size=23, width=36, heads=4, depth=2, seq_len=8, mlp_width=72), (8, 1))
    print("SHARDING-OK")
    """
)


def test_sharded_forward_matches_unsharded():
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    proc = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, env=env, timeout=600)
    assert "SHARDING-OK" in proc.stdout, proc.stderr[-4000:]


def test_specs_without_mesh_and_fallback(tiny):
    model = sm.build_model(tiny(width=32, heads=4, mlp_width=64), key=jax.random.key(0), verbose=False)
    specs = sm.partition_specs(model)
    assert specs.blocks.attention.w_qkv == P(None, "data", "model", None, None)
    assert specs.blocks.mlp.w_in == P(None, "data", "model") and specs.head == P("data", "model")
    odd = sm.partition_specs(model, (3, 8))  # 32 % 3 ≠ 0, 4 heads % 8 ≠ 0, 64 % 8 = 0
    assert odd.blocks.attention.w_qkv == P(None, None, None, None, None)
    assert odd.blocks.mlp.w_in == P(None, None, "model")
    assert sm.partition_specs(model, {"data": 2}).blocks.mlp.w_in == P(None, "data", None)


def test_check_mesh_compatible(tiny):
    cfg = tiny(width=32, heads=4, mlp_width=64)
    assert sm.check_mesh_compatible(cfg, (4, 2)) == []
    assert sm.check_mesh_compatible(cfg, {"data": 8, "model": 4}) == []
    # 4 heads over a model axis of 8: attention replicated, the MLP (64) still split; one note says so
    (note,) = sm.check_mesh_compatible(cfg, (4, 8))
    assert "heads=4" in note and "replicated" in note
    (note,) = sm.check_mesh_compatible(tiny(width=64, heads=8, mlp_width=68), (2, 8))
    assert "mlp_width=68" in note
    # an axis that divides neither would shard nothing a block computes
    with pytest.raises(ValueError, match="divides neither heads=4 nor mlp_width=64"):
        sm.check_mesh_compatible(cfg, (1, 3))
    with pytest.raises(ValueError, match="no MLP"):
        sm.check_mesh_compatible(tiny(width=32, heads=4, use_mlp=False), (1, 8))
