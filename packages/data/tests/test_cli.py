import json
import os
import subprocess
import sys


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "skipless_data.prepare", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_prepares_and_prints_metadata(tmp_path, text_file):
    out = tmp_path / "out"
    result = _run("--data", str(text_file), "--tokenizer", "byte", "--out", str(out))
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    with open(out / "metadata.json") as f:
        assert json.load(f) == printed
    total = printed["num_tokens"]["train"] + printed["num_tokens"]["eval"]
    assert total == os.path.getsize(text_file)
    assert "tokenising train" in result.stderr  # the progress bar


def test_cli_bad_input_is_one_error_line(tmp_path):
    result = _run("--data", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "does not exist" in lines[0]
    result = _run("--tokenizer", "bpe:banana", "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "bpe:banana" in result.stderr.strip()


def test_cli_token_budgets_are_kept_and_recorded(tmp_path, text_file):
    out = tmp_path / "out"
    result = _run("--data", str(text_file), "--tokenizer", "byte", "--out", str(out),
                  "--max-train-tokens", "1000", "--max-eval-tokens", "30", "--workers", "2")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["num_tokens"] == {"train": 1000, "eval": 30} == printed["max_tokens"]
    assert "tok" in result.stderr  # the bar runs over the budget's tokens
    bad = _run("--data", str(text_file), "--out", str(out), "--max-train-tokens", "0")
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "positive integer" in bad.stderr
