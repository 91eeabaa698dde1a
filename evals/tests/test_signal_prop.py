"""The signal-propagation report against the theory's float64 targets."""

import json
from pathlib import Path

import numpy as np
import pytest
import sigprop

from evals import signal_prop

TEXT = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "wikitext-2" / "valid.txt"


def _run(tmp_path, *flags):
    report = signal_prop.main([*flags, "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "signal_prop.json").read_text())
    return report, saved


@pytest.mark.parametrize("kind", ["espa", "uspa"])
def test_attention_only_spa_matches_targets_to_float32_precision(tmp_path, kind):
    _, saved = _run(tmp_path, "--attention", kind, "--mlp", "none", "--inputs", "orthogonal", "--depth", "36",
                    "--width", "128", "--seq-len", "128", "--batch", "1", "--no-plot")
    layers = saved["layers"]
    assert len(layers) == 36 and all(r["where"] == "after_attention" for r in layers)
    assert max(r["max_abs_err"] for r in layers) <= 1e-4
    # the targets in the report are sigprop's kernels, independently recomputed here
    knobs = saved["config"]
    gamma = sigprop.DEFAULT_GAMMA_FINAL if knobs["gamma_final"] is None else knobs["gamma_final"]
    rho = sigprop.DEFAULT_RHO_FINAL if knobs["rho_final"] is None else knobs["rho_final"]
    final = sigprop.spa_layers(kind, 36, 128, gamma_final=gamma, rho_final=rho)[-1].kernel
    want = sigprop.mean_offdiag(sigprop.cosine_from_kernel(final))
    assert abs(layers[-1]["target_mean_offdiag_cosine"] - want) < 1e-9
    assert abs(layers[-1]["mean_offdiag_cosine"] - want) < 1e-4
    assert all(abs(r["norm_min"] - 1) < 1e-4 and abs(r["norm_max"] - 1) < 1e-4 for r in layers)


def test_report_with_mlps_tracks_theory_and_writes_plot(tmp_path):
    _, saved = _run(tmp_path, "--attention", "espa", "--depth", "6", "--width", "256", "--seq-len", "32",
                    "--batch", "2", "--tat-eta", "0.5")
    assert (tmp_path / "signal_prop.png").stat().st_size > 10_000
    layers = saved["layers"]
    assert [r["where"] for r in layers[:2]] == ["after_attention", "after_mlp"] and len(layers) == 12
    # attention sub-blocks reproduce their input-dependent targets; MLPs follow the C-map at finite width
    final = layers[-1]
    assert abs(final["mean_offdiag_cosine"] - final["target_mean_offdiag_cosine"]) < 0.06
    assert abs(saved["predicted_final_cosine"] - final["target_mean_offdiag_cosine"]) < 0.02
    for r in layers:
        for key in ("rms", "norm_min", "norm_max", "mean_abs_err"):
            assert np.isfinite(r[key])
    assert layers[0]["attention_entropy"] > 0 and layers[1]["attention_entropy"] is None


def test_compare_shows_standard_attention_collapsing_and_spa_not(tmp_path):
    _, saved = _run(tmp_path, "--compare", "--mlp", "none", "--init", "sigprop", "--depth", "12", "--width", "64",
                    "--seq-len", "32", "--batch", "1")
    assert (tmp_path / "signal_prop.png").is_file()
    final = {r["config"]["attention"]: r["layers"][-1] for r in saved["runs"]}
    assert set(final) == {"standard", "value_skipinit", "uspa", "espa"}
    assert final["standard"]["mean_offdiag_cosine"] > 0.99  # rank collapse by layer 12
    assert final["espa"]["mean_offdiag_cosine"] < 0.9 and final["uspa"]["mean_offdiag_cosine"] < 0.9
    assert abs(final["value_skipinit"]["mean_offdiag_cosine"]) < 1e-5  # identity attention keeps Σ = I
    for r in saved["runs"]:  # with W_Q = 0 every variant matches its theory
        assert max(x["max_abs_err"] for x in r["layers"]) < 1e-4


@pytest.mark.skipif(not TEXT.is_file(), reason=f"WikiText-2 not found at {TEXT} (shared data folder absent)")
def test_real_token_inputs(tmp_path):
    _, saved = _run(tmp_path, "--inputs", "tokens", "--attention", "espa", "--mlp", "none", "--depth", "4",
                    "--width", "64", "--seq-len", "32", "--vocab-size", "256", "--no-plot")
    assert "valid.txt" in saved["inputs"]
    # repeated bytes make some input cosines 1, so Σ_0 ≠ I; the target starts from the measured Σ_0
    assert saved["input_mean_offdiag_cosine"] > 0.01
    assert max(r["max_abs_err"] for r in saved["layers"]) < 1e-4


def test_bad_input_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        signal_prop.main(["--inputs", "orthogonal", "--width", "32", "--heads", "4", "--seq-len", "64", "--out", str(tmp_path)])
    assert "seq_len <= width" in capsys.readouterr().err


def test_command_line_is_generated_from_the_model_config(capsys):
    model, options = signal_prop.parse_args(["--width=64", "--attention", "uspa", "--mlp", "none", "--out", "x"])
    assert (model.width, model.mlp_width, model.depth, model.attention) == (64, 256, 24, "uspa")  # 4·width
    assert signal_prop.config_from_args(model, options).use_mlp is False and options.no_plot is False
    assert signal_prop.COMPARE_ATTENTIONS == sigprop.ATTENTION_KINDS
    with pytest.raises(SystemExit) as stop:
        signal_prop.main(["--attention", "nope", "--out", "x"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1 and "invalid choice 'nope'" in err
