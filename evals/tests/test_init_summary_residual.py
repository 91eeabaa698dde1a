"""The init report covers the norm-free residual block: theory applies, and the measured kernel follows it."""

import math

import skipless_models as sm

from evals.init_summary import init_signal_summary


def test_init_report_covers_the_norm_free_residual_block():
    config = sm.ModelConfig(vocab_size=16, width=128, heads=4, depth=4, seq_len=16, block="nf_residual",
                            attention="espa", gamma_final=0.3)
    summary = init_signal_summary(config, batch=4)
    assert summary["predicted_final_cosine"] == sm.predicted_final_cosine(config)
    assert math.isfinite(summary["max_kernel_error"]) and summary["mean_kernel_error"] < 0.1
    assert abs(summary["final_cosine"] - summary["predicted_final_cosine"]) < 0.1
    preln = init_signal_summary(config.replace(block="preln"), batch=2)
    assert math.isnan(preln["predicted_final_cosine"])  # skips with a norm: no theory
