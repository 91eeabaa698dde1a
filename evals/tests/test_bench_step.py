"""The train-step benchmark: its JAX step is a correct AdamW step, and the PyTorch twin computes the same model."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import skipless_models
from evals import bench_step

TINY = dict(vocab_size=64, width=32, depth=2, heads=4, mlp_width=64, seq_len=16, attention_impl="xla")
VARIANTS = {
    "preln": dict(block="preln", attention="standard", mlp_activation="gelu"),
    "espa": dict(block="vanilla", attention="espa"),
    "uspa": dict(block="vanilla", attention="uspa"),
    "vsi": dict(block="vanilla", attention="value_skipinit", value_skipinit_per_head=True),
    "rope_rms": dict(block="skipless_ln", norm="rmsnorm", attention="standard", position="rope", mlp_activation="relu"),
}


def _model(**kw):
    cfg = skipless_models.ModelConfig(**TINY, **kw)
    return skipless_models.build_model(cfg, key=jax.random.PRNGKey(1), verbose=False)


def _tokens(batch=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, TINY["vocab_size"], (batch, TINY["seq_len"] + 1), dtype=np.int32)


def test_jax_step_matches_plain_adamw():
    model = _model(**VARIANTS["espa"])
    tokens = jnp.asarray(_tokens())
    step, trained, opt_state = bench_step.make_jax_step(model)
    w_before = np.array(model.blocks.attention.w_qkv)  # the step donates the model's arrays

    # oracle: AdamW over every array leaf
    params, static = eqx.partition(model, eqx.is_array)
    params = jax.tree.map(jnp.copy, params)
    opt = optax.adamw(bench_step.LR, weight_decay=bench_step.WEIGHT_DECAY)
    ref_state = opt.init(params)
    for _ in range(2):
        grads = jax.grad(lambda p: skipless_models.loss_fn(eqx.combine(p, static), tokens)[0])(params)
        updates, ref_state = opt.update(grads, ref_state, params)
        params = optax.apply_updates(params, updates)
        trained, opt_state, _ = step(trained, opt_state, tokens)

    got = trained
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    assert not np.allclose(np.asarray(got.blocks.attention.w_qkv), w_before)  # it did train


def test_run_case_without_torch_reports_consistent_numbers():
    case = bench_step.Case(skipless_models.ModelConfig(**TINY, **VARIANTS["preln"]), batch=2)
    row = bench_step.run_case("t", case, dtype="float32", steps=2, rounds=1, torch_ok=False, scan_unroll=0)
    assert row["scan_unroll"] == TINY["depth"]  # 0 = auto: every layer unrolled at this depth
    n_tokens = 2 * TINY["seq_len"]
    assert row["tokens_per_s"] == pytest.approx(n_tokens / (row["step_ms"] / 1e3))
    flops = skipless_models.model_flops_per_token(case.config) * n_tokens
    assert row["model_gflops"] == pytest.approx(flops / (row["step_ms"] / 1e3) / 1e9)
    assert "torch_tokens_per_s" not in row and row["compile_s"] > 0 and row["cpu_ms"] > 0


def test_unknown_case_is_a_clear_error(capsys):
    with pytest.raises(SystemExit):
        bench_step.main(["--cases", "nope", "--no-torch", "--compile-depths", ""])
    assert "unknown case(s) ['nope']" in capsys.readouterr().err


@pytest.mark.parametrize("variant", sorted(VARIANTS) + ["espa_long", "uspa_long"])
def test_torch_twin_matches_jax_loss_and_gradients(variant):
    """The twin takes SPA's bias from sigprop's float64 closed forms: `*_long` runs both at 2.5x the model's
    seq_len (SPA is generated at the batch's length)."""
    torch = pytest.importorskip("torch", reason="torch not importable (it is optional; add a CPU build to PYTHONPATH)")
    from evals.torch_reference import TorchTransformer

    model = _model(**VARIANTS[variant.removesuffix("_long")])
    # perturb W_Q away from 0 (SPA / Value-SkipInit init) so the attention logits matter
    w = model.blocks.attention.w_qkv
    model = eqx.tree_at(lambda m: m.blocks.attention.w_qkv, model, w + 0.3 * jax.random.normal(jax.random.PRNGKey(2), w.shape))
    if variant == "vsi":
        beta = model.blocks.attention.skip_beta
        model = eqx.tree_at(lambda m: m.blocks.attention.skip_beta, model, beta + 0.5)
    tokens = _tokens()
    if variant.endswith("_long"):
        tokens = np.random.default_rng(5).integers(0, TINY["vocab_size"], (2, 5 * TINY["seq_len"] // 2 + 1), dtype=np.int32)

    loss, grads = jax.value_and_grad(lambda m: skipless_models.loss_fn(m, jnp.asarray(tokens))[0])(model)
    net = TorchTransformer(model)
    t_loss = net.loss(torch.from_numpy(tokens.astype(np.int64)))
    t_loss.backward()

    np.testing.assert_allclose(float(t_loss.detach()), float(loss), rtol=1e-5)
    np.testing.assert_allclose(net.head.grad.numpy(), np.asarray(grads.head), rtol=1e-3, atol=1e-5)
    g_qkv = np.asarray(grads.blocks.attention.w_qkv[0]).reshape(TINY["width"], -1)
    # atol: both are float32 with different summation orders (JAX's attention backward is flash-style, see
    # pallas_kernels.attention_xla and its float64-oracle test); entries reach ~1.5, differences 3e-5.
    np.testing.assert_allclose(net.layers[0].w_qkv.grad.numpy(), g_qkv, rtol=1e-3, atol=5e-5)


def test_summary_checks_each_target_on_the_rows():
    def row(case, tps, mfu, ratio=None):
        r = dict(case=case, dtype="float32", tokens_per_s=tps, mfu_vs_matmul=mfu)
        return r if ratio is None else {**r, "ratio_vs_torch": ratio}

    rows = [row("tiny-vanilla", 100.0, 0.7, 1.2), row("tiny-espa", 96.0, 0.65, 1.1), row("tiny-uspa", 90.0, 0.61, 0.9),
            row("wide-preln", 50.0, 0.62, 1.3), {**row("tiny-espa", 1.0, 0.01), "dtype": "bfloat16"}]
    summary = bench_step.summarise(rows)
    assert summary["min_ratio_vs_torch"] == 0.9 and summary["min_mfu_vs_matmul"] == 0.61
    assert summary["spa_vs_standard"] == pytest.approx({"tiny-espa": 0.96, "tiny-uspa": 0.9})
    met = summary["targets_met"]
    assert met == {"tokens/s >= 1x PyTorch eager": False, "model FLOP/s >= 60% of dense matmul": True,
                   "SPA within 5% of standard attention": False}
    assert bench_step.summarise([row("tiny-espa", 1.0, 0.5)])["targets_met"] == {"model FLOP/s >= 60% of dense matmul": False}
