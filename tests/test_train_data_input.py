"""`python -m train.main` on data as it ships: compressed JSON Lines with a named text field and a token
budget train; input that is not text stops with one `error:` line (exit 2) before the run folder is
written."""

import gzip
import json

import jax
import pytest

from skipless_data import load_dataset_info
from train.main import main

TINY = ["--depth", "1", "--width", "32", "--heads", "4", "--mlp-width", "32", "--seq-len", "16",
        "--batch-size", "2", "--steps", "1", "--eval-every", "0", "--eval-batches", "1", "--log-every", "1",
        "--diagnostics-every", "0", "--progress", "false", "--tokenizer", "byte"]


@pytest.fixture(autouse=True)
def _keep_xla_flags(monkeypatch):
    jax.devices()  # main() sets XLA_FLAGS for its mesh; the backend must already be up
    monkeypatch.delenv("XLA_FLAGS", raising=False)


def _error_line(argv, capsys) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1, err[-2000:]
    return lines[0]


def _shard(path, records):
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in records).encode()))


def test_compressed_binary_is_one_error_line(tmp_path, capsys):
    (tmp_path / "weights.gz").write_bytes(gzip.compress(bytes(range(256)) * 40))
    line = _error_line([*TINY, "--data", str(tmp_path / "weights.gz"), "--data-dir", str(tmp_path / "d"),
                        "--out", str(tmp_path / "run")], capsys)
    assert "weights.gz: not text but gzip-compressed binary data" in line
    assert not (tmp_path / "run" / "config.json").exists()


def test_text_field_and_token_budget_reach_the_data(tmp_path, capsys):
    folder = tmp_path / "c4"
    folder.mkdir()
    _shard(folder / "c4-train.00000-of-00002.json.gz", [{"content": f"document number {i}. " * 5} for i in range(60)])
    _shard(folder / "c4-train.00001-of-00002.json.gz", [{"content": f"second shard {i}. " * 5} for i in range(60)])
    common = ["--data", str(folder), "--data-dir", str(tmp_path / "d"), "--out", str(tmp_path / "run")]
    line = _error_line([*TINY, *common], capsys)
    assert "no field 'text' (found ['content']); pass --text-field" in line
    assert main([*TINY, *common, "--text-field", "content", "--max-train-tokens", "3000"]) == 0
    info = load_dataset_info(tmp_path / "d")
    assert info.num_tokens["train"] == 3000 and info.max_tokens["train"] == 3000
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["text_field"] == "content" and saved["max_train_tokens"] == 3000
