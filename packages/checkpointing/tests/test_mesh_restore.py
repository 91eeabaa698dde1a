"""Restoring onto a different mesh shape: runs in a subprocess with 8 host devices."""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys
    import jax, numpy as np
    from jax.sharding import NamedSharding, PartitionSpec as P
    from skipless_checkpoint import Checkpointer, abstract_arrays

    assert len(jax.devices()) == 8, jax.devices()
    auto = (jax.sharding.AxisType.Auto,) * 2
    rng = np.random.default_rng(0)
    values = {"w": rng.normal(size=(8, 12)).astype(np.float32), "v": rng.normal(size=(12,)).astype(np.float32)}
    save_mesh = jax.make_mesh((2, 4), ("data", "model"), axis_types=auto)
    specs = {"w": P("data", "model"), "v": P("model")}
    state = {k: jax.device_put(v, NamedSharding(save_mesh, specs[k])) for k, v in values.items()}
    with Checkpointer(sys.argv[1]) as checkpointer:
        checkpointer.save(1, state)
        checkpointer.wait_until_finished()
        for shape, new_specs in [((4, 2), {"w": P("model", "data"), "v": P(None)}),
                                 ((1, 1), {"w": P(), "v": P()}),
                                 ((8, 1), {"w": P("data", None), "v": P()})]:
            mesh = jax.make_mesh(shape, ("data", "model"), axis_types=auto)
            shardings = {k: NamedSharding(mesh, s) for k, s in new_specs.items()}
            restored = checkpointer.restore(abstract_arrays(state, shardings)).arrays
            for k in values:
                assert restored[k].sharding == shardings[k], (k, restored[k].sharding)
                np.testing.assert_array_equal(np.asarray(restored[k]), values[k])
            print("restored onto", shape)
    """
)


def test_restore_onto_other_mesh_shapes(tmp_path):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "ckpt")],
        env=env, capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("restored onto") == 3
