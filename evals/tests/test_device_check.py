"""The prepared GPU check, run as its CPU smoke run (same code paths, tiny sizes, kernels in interpret mode)."""

import json

import pytest

from evals import device_check


@pytest.mark.slow  # about 20 s: a pytest subprocess, a benchmark and two short trainings
def test_smoke_run_writes_every_section_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "check"
    assert device_check.main(["--out", str(out), "--smoke"]) == 0
    result = json.loads((out / "device_check.json").read_text())
    assert result["smoke"] and not result["errors"]
    tests = result["compiled_tests"]
    assert tests["tests"] > 0 and tests["skipped"] == tests["tests"]  # compiled tests skip without a GPU
    assert tests["gpu_verified"] is False  # never from a smoke run
    methods = {r["method"] for r in result["attention"]["rows"]}
    assert methods == set(device_check.BENCH_METHODS)
    assert result["attention"]["interpret"] is True
    train = result["training"]
    assert train["runs"]["pallas"]["impl"] == "pallas" and train["runs"]["xla"]["impl"] == "xla"
    assert len(train["runs"]["pallas"]["losses"]) == result["plan"]["train_steps"]
    assert train["losses_agree"] and train["runs"]["pallas"]["losses"] != train["runs"]["xla"]["losses"]
    assert "losses agree: True" in (out / "summary.txt").read_text()
    capsys.readouterr()
    assert device_check.main(["--out", str(out), "--smoke"]) == 2  # nothing already written is changed
    assert "exists" in capsys.readouterr().err


def test_without_a_gpu_the_full_check_is_a_clear_error(tmp_path, capsys):
    import jax

    if jax.default_backend() == "gpu":
        pytest.skip("this machine has a GPU")
    assert device_check.main(["--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "no CUDA device" in err and "--smoke" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
    assert device_check.main(["--out", str(tmp_path / "y"), "--skip", "nope"]) == 2


def test_junit_counts_and_targets_read_what_they_are_given(tmp_path):
    xml = tmp_path / "r.xml"
    xml.write_text(
        '<testsuites><testsuite tests="3" failures="1" errors="0" skipped="1">'
        '<testcase name="a"/><testcase name="b"><failure message="mismatch 1e-3&#10;more"/></testcase>'
        '<testcase name="c"><skipped/></testcase></testsuite></testsuites>')
    counts = device_check.junit_counts(xml)
    assert (counts["tests"], counts["failures"], counts["skipped"]) == (3, 1, 1)
    assert counts["failed"] == ["b: mismatch 1e-3"]
    rows = [dict(method="pallas_generated_espa", seq_len=2048, head_dim=64, fwd_bwd_ms=2.0),
            dict(method="xla_custom_vjp_bias", seq_len=2048, head_dim=64, fwd_bwd_ms=5.0),
            dict(method="jax_dpa_cudnn", seq_len=2048, head_dim=64, fwd_bwd_ms=1.0)]
    assert device_check.bench_targets(rows) == {"d64": dict(speedup_vs_xla=2.5, met_vs_xla=True, speed_vs_cudnn=0.5,
                                                            met_vs_cudnn=False)}


def test_command_line_defaults():
    """The flags' defaults are those of the hand-written parser this replaced."""
    options = device_check.parse_options(["--out", "d"])
    assert (options.out, options.smoke, options.budget_s, options.skip) == ("d", False, 420.0, "")
    options = device_check.parse_options(["--out", "d", "--smoke", "--budget-s", "60", "--skip", "tests,training"])
    assert (options.smoke, options.budget_s, options.skip) == (True, 60.0, "tests,training")


@pytest.mark.parametrize("args,words", [
    ([], "--out"),
    (["--out", "d", "--budget-s", "soon"], "--budget-s"),
    (["--out", "d", "--smoke", "yes"], "yes"),
    (["--out", "d", "--smok"], "--smok"),
])
def test_bad_command_lines_are_one_line_exit_2(tmp_path, capsys, monkeypatch, args, words):
    monkeypatch.chdir(tmp_path)
    assert device_check.main(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: ") and err.count("\n") == 1 and words in err, err
    assert list(tmp_path.iterdir()) == []
