"""Every bad flag of `python -m train.main` gives a one-line error naming the problem and the fix."""

import json

import jax
import pytest

from train.main import main


@pytest.fixture(autouse=True)
def _keep_xla_flags(monkeypatch):
    # main() sets XLA_FLAGS for the mesh it is given. Start JAX's backend first so that cannot change
    # this process's devices, and keep the variable out of later tests' subprocesses.
    jax.devices()
    monkeypatch.delenv("XLA_FLAGS", raising=False)


def _error_line(argv, capsys) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2, err[-2000:]
    assert len(lines) == 1, err[-2000:]
    return lines[0]


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--mesh", "4by8"], "is not of the form DxM"),
        (["--mesh", "5x1", "--batch-size", "10"], "needs 5 devices but"),
        (["--mesh", "1x3"], "the 'model' mesh axis (3) divides neither heads=4 nor mlp_width=512"),
        (["--mesh", "4x1", "--batch-size", "6"], "--batch-size=6 is not divisible by the mesh's data axis (4)"),
        (["--attention", "sparse"], "invalid choice 'sparse' for argument '--attention'. Expected one of ('standard'"),
        (["--lr", "-1"], "--lr=-1.0 must be a positive number"),
        (["--optimizer", "lion"], "invalid choice 'lion' for argument '--optimizer'"),
        (["--schedule", "step"], "invalid choice 'step' for argument '--schedule'"),
        (["--lr-mult", "buffer=2"], "unknown parameter group"),
        (["--steps", "0"], "--steps=0 must be a positive integer"),
        (["--warmup", "500", "--steps", "100"], "--warmup=500 exceeds --steps=100"),
        (["--preset", "gpt5"], "unknown preset 'gpt5'; choose one of cpu-tiny"),
        (["--steps", "many"], "Error parsing --steps: invalid literal for int() with base 10: 'many'"),
        (["--causal", "maybe"], "Error parsing --causal: expected true or false, got 'maybe'"),
        (["--no-such-flag", "3"], "Unrecognized options: --no-such-flag"),
        (["--coordinator", "localhost:1234"], "multi-host needs all of --coordinator"),
        (["--tokenizer", "bpe:-5"], "the BPE vocabulary size -5 must lie in [257, 1048576]"),
        (["--text-field", ""], "--text-field='' must name a field"),
    ],
)
def test_bad_flag_is_a_one_line_error(flags, expected, tmp_path, capsys):
    line = _error_line(["--out", str(tmp_path / "run"), *flags], capsys)
    assert expected in line


def test_non_empty_out_without_resume_refuses(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("keep me")
    line = _error_line(["--out", str(tmp_path / "run")], capsys)
    assert "is not empty; pass --resume" in line and "--out" in line
    assert (tmp_path / "run" / "notes.txt").read_text() == "keep me"


def test_resume_needs_an_existing_run(tmp_path, capsys):
    assert "--resume needs --out" in _error_line(["--resume"], capsys)
    (tmp_path / "empty").mkdir()
    assert "config.json not found" in _error_line(["--resume", "--out", str(tmp_path / "empty")], capsys)
    assert "--preset cannot change on --resume" in _error_line(
        ["--resume", "--out", str(tmp_path / "empty"), "--preset", "cpu-tiny"], capsys
    )


def test_help_lists_every_flag_and_exits_zero(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert all(flag in text for flag in ("--mesh", "--preset", "--attention", "--lr-mult", "--resume", "--seq-len"))


def test_text_field_is_a_real_flag(tmp_path, capsys):
    """The data error says "pass --text-field": train.main has that flag, and it reaches the data."""
    corpus = tmp_path / "corpus.jsonl"
    rows = [{"body": f"line {i} of a small corpus about nothing much at all"} for i in range(400)]
    corpus.write_text("".join(json.dumps(row) + "\n" for row in rows))
    flags = ["--data", str(corpus), "--tokenizer", "byte", "--data-dir", str(tmp_path / "data"), "--depth", "2",
             "--width", "32", "--heads", "4", "--mlp-width", "64", "--seq-len", "16", "--batch-size", "4",
             "--steps", "2", "--eval-every", "0", "--progress", "false"]
    line = _error_line([*flags, "--out", str(tmp_path / "a")], capsys)
    assert "no field 'text'" in line and "pass --text-field" in line
    assert main([*flags, "--text-field", "body", "--out", str(tmp_path / "b")]) == 0
    assert json.loads((tmp_path / "b" / "config.json").read_text())["text_field"] == "body"


def test_unexpected_error_is_one_line_and_debug_shows_the_traceback(tmp_path, capsys, monkeypatch):
    import train.loop

    def broken(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(train.loop, "run", broken)
    assert main(["--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error: unexpected KeyError: 'a bug' (rerun with --debug" in err
    assert main(["--out", str(tmp_path / "run"), "--debug"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.rstrip().splitlines()[-1] == "error: unexpected KeyError: 'a bug'"
