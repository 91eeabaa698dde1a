"""Perplexity of a checkpoint against independent computations: float64 numpy cross-entropy over
windows cut by hand, and the trainer's own evaluation of the same split."""

import hashlib
import json
import math
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

from evals.perplexity import eval_windows, evaluate_checkpoint, main, restore_model

STEPS = 6


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from skipless_models import ModelConfig
    from train.config import TrainConfig
    from train.loop import run

    root = tmp_path_factory.mktemp("ppl")
    config = TrainConfig(
        model=ModelConfig(depth=2, width=16, heads=2, mlp_width=32, seq_len=16), data="embedded", tokenizer="byte",
        data_dir=str(root / "data"), batch_size=8, steps=STEPS, warmup=1, lr=3e-3, eval_every=0, eval_batches=0,
        checkpoint_every=3, log_every=1, diagnostics_every=0, out=str(root / "run"))
    run(config, progress_bar=False)
    return root / "run"


def _numpy_loss(model, tokens, seq_len):
    """Mean next-token NLL in float64, windows built one by one."""
    import jax.numpy as jnp

    total, count = 0.0, 0
    inputs, targets = [], []
    for start in range(0, len(tokens) - 1, seq_len):
        window = tokens[start:start + seq_len + 1]
        inputs.append(np.pad(window[:-1], (0, seq_len - len(window) + 1)))
        targets.append(window[1:])
    for begin in range(0, len(inputs), 256):
        logits = np.asarray(model(jnp.asarray(np.stack(inputs[begin:begin + 256]))), np.float64)
        for row, target in zip(logits, targets[begin:begin + 256]):
            row = row[: len(target)]
            shifted = row - row.max(axis=-1, keepdims=True)
            log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
            total -= log_probs[np.arange(len(target)), target].sum()
            count += len(target)
    return total / count, count


def test_windows_cover_every_target_once():
    tokens = np.arange(1, 12)
    windows, mask = eval_windows(tokens, 4)
    assert windows.shape == (3, 5)
    targets = windows[:, 1:][mask]
    assert targets.tolist() == list(range(2, 12))


def test_embedded_matches_numpy_and_the_trainer(run_dir):
    import skipless_data

    report = evaluate_checkpoint(run_dir, "embedded", batch_size=32)
    config, model, step = restore_model(run_dir)
    info = skipless_data.load_dataset_info(config.data_dir)
    tokens = skipless_data.split_tokens(info, "eval")
    expected, count = _numpy_loss(model, tokens, config.model.seq_len)
    assert step == STEPS and report.num_targets == count == len(tokens) - 1
    assert report.loss == pytest.approx(expected, rel=1e-5)
    trainer_eval = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert report.loss == pytest.approx([r["eval_loss"] for r in trainer_eval if "eval_loss" in r][-1], rel=1e-5)
    assert report.perplexity == pytest.approx(math.exp(expected), rel=1e-5)
    assert report.bits_per_token == pytest.approx(expected / math.log(2), rel=1e-5)
    assert report.gap_to_entropy_rate == pytest.approx(expected - info.entropy_rate, rel=1e-5)
    assert report.bits_per_byte == pytest.approx(report.bits_per_token, rel=1e-9)  # byte tokens


def test_text_file_uses_the_run_tokenizer(run_dir, tmp_path, capsys):
    text = "the quick brown fox jumps over the lazy dog\nsecond line, with ünïcode\n" * 3
    path = tmp_path / "eval.txt"
    path.write_text(text, encoding="utf-8")
    _, model, _ = restore_model(run_dir)
    expected, _ = _numpy_loss(model, np.frombuffer(text.encode("utf-8"), np.uint8).astype(np.int32), 16)
    assert main(["--checkpoint", str(run_dir / "checkpoints"), "--data", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["loss"] == pytest.approx(expected, rel=1e-5) and report["entropy_rate"] is None


def test_bad_input(run_dir, tmp_path, capsys):
    assert main(["--checkpoint", str(tmp_path), "--data", "embedded"]) == 2
    assert "no run found" in capsys.readouterr().err
    assert main(["--checkpoint", str(run_dir), "--data", str(tmp_path / "missing.txt")]) == 2
    assert "no such text file" in capsys.readouterr().err


def _fingerprint(folder: pathlib.Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def test_a_corrupt_newest_step_is_skipped_and_left_where_it_is(run_dir, tmp_path, capsys):
    """A read-only tool: it evaluates the newest step that verifies and changes nothing in the folder."""
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    data = max((p for p in (copy / "checkpoints" / str(STEPS) / "arrays").rglob("*") if p.parent.name == "d"),
               key=lambda p: p.stat().st_size)
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2:len(raw) // 2 + 400] = bytes(400)  # same size, different content
    data.write_bytes(bytes(raw))
    before = _fingerprint(copy)
    # As a command (a subprocess: library logging reaches stderr there as it would for a user).
    done = subprocess.run([sys.executable, "-m", "evals.perplexity", "--checkpoint", str(copy), "--data", "embedded",
                           "--json"], capture_output=True, text=True, timeout=300,
                          env={k: v for k, v in os.environ.items() if k != "XLA_FLAGS"} | {"JAX_PLATFORMS": "cpu"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["step"] == 3
    warning_lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(warning_lines) == 1, done.stderr[-3000:] and warning_lines[0].startswith(f"warning: checkpoint step {STEPS} fails verification")
    assert "left in place" in warning_lines[0]
    assert _fingerprint(copy) == before
    # With the only other step gone there is nothing that verifies: exit 4.
    shutil.rmtree(copy / "checkpoints" / "3")
    assert main(["--checkpoint", str(copy), "--data", "embedded"]) == 4
    assert "no checkpoint in" in capsys.readouterr().err


def test_scores_at_a_longer_context_than_training(run_dir, capsys):
    """The run trained at T = 16 (vanilla E-SPA): --seq-len 40 scores 40-token windows, against the float64
    numpy loss of the same model on windows cut by hand at 40; bad lengths are one-line errors."""
    import skipless_data

    config, model, _ = restore_model(run_dir)
    assert config.model.seq_len == 16 and config.model.attention == "espa"
    tokens = skipless_data.split_tokens(skipless_data.load_dataset_info(config.data_dir), "eval")
    expected, count = _numpy_loss(model, tokens, 40)
    assert main(["--checkpoint", str(run_dir), "--data", "embedded", "--seq-len", "40", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["num_targets"] == count and report["loss"] == pytest.approx(expected, rel=1e-5)
    assert main(["--checkpoint", str(run_dir), "--data", "embedded", "--seq-len", "0"]) == 2
    assert "--seq-len=0 must be a positive integer" in capsys.readouterr().err
