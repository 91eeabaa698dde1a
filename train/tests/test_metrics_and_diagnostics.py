"""metrics.jsonl / TensorBoard output, per-layer gradient norms and Value-SkipInit gains."""

import json
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import skipless_models
from train.diagnostics import gain_values
from train.metrics import MetricsWriter, read_metrics
from train.step import per_layer_grad_norms


def test_metrics_jsonl_and_tensorboard(tmp_path):
    writer = MetricsWriter(tmp_path)
    writer.write({"step": 1, "loss": 2.5, "layer_grad_norm": [0.1, 0.2]})
    writer.write({"step": 2, "loss": math.nan})
    writer.close()
    assert read_metrics(tmp_path / "metrics.jsonl") == [
        {"step": 1, "loss": 2.5, "layer_grad_norm": [0.1, 0.2]}, {"step": 2, "loss": None}
    ]
    # Appending keeps a resumed run's history in the same file.
    MetricsWriter(tmp_path, tensorboard=False).write({"step": 3, "loss": 1.0})
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 3
    events = list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1
    content = events[0].read_bytes()
    assert b"loss" in content and b"layer_grad_norm/1" in content
    MetricsWriter(tmp_path / "other", enabled=False).write({"step": 1, "loss": 1.0})
    assert not (tmp_path / "other").exists()


def _model(attention="value_skipinit"):
    config = skipless_models.preset("cpu-tiny", depth=4, width=32, heads=4, mlp_width=64, seq_len=16,
                                    vocab_size=64, attention=attention)
    return skipless_models.build_model(config, key=jax.random.key(0), verbose=False)


def test_per_layer_grad_norms_match_numpy():
    model = _model("espa")
    params = eqx.filter(model, eqx.is_array)
    rng = np.random.default_rng(0)
    grads = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), params)
    norms = np.asarray(per_layer_grad_norms(grads))
    leaves = [np.asarray(g, np.float64) for g in jax.tree.leaves(grads.blocks)]
    expected = [np.sqrt(sum(np.sum(leaf[layer] ** 2) for leaf in leaves)) for layer in range(4)]
    np.testing.assert_allclose(norms, expected, rtol=1e-5)


def test_gain_values_read_alpha_and_beta_per_layer():
    model = _model()
    params = eqx.filter(model, eqx.is_array)
    labels = skipless_models.param_groups(model)
    alpha = params.blocks.attention.skip_alpha
    params = eqx.tree_at(lambda p: p.blocks.attention.skip_beta, params, jnp.arange(alpha.size, dtype=jnp.float32).reshape(alpha.shape))
    gains = gain_values(params, labels)
    assert gains["skip_alpha"] == [1.0] * 4  # Value-SkipInit starts at alpha = 1, beta = 0
    assert gains["skip_beta"] == [0.0, 1.0, 2.0, 3.0]
    assert json.dumps(gains)
    assert gain_values(eqx.filter(_model("espa"), eqx.is_array), skipless_models.param_groups(_model("espa"))) == {}
