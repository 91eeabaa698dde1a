"""End-to-end runs of `python -m train.main` on tiny models (each run is a subprocess).

Oracles: a straight run versus a stopped-and-resumed one (bitwise losses), a 1x1 mesh versus a 4x8
mesh (float tolerance), the initial loss of a uniform predictor, ln(vocab).
"""

import math
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
WIKITEXT = REPO.parent / "shared" / "data" / "wikitext-2"
TINY = ["--depth", "4", "--width", "32", "--heads", "8", "--mlp-width", "64", "--seq-len", "32",
        "--batch-size", "8", "--log-every", "1", "--eval-batches", "2", "--diagnostics-every", "0", "--progress", "false"]
# A constant learning rate makes a run's first k steps independent of --steps.
CONSTANT_LR = ["--schedule", "constant", "--warmup", "0", "--lr", "2e-3"]


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """Tokenised data and compiled programs shared by every run of this module."""
    root = tmp_path_factory.mktemp("train_e2e_shared")
    return {"data": root / "data", "jax_cache": root / "jax-cache"}


def _env(shared) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(JAX_PLATFORMS="cpu", JAX_COMPILATION_CACHE_DIR=str(shared["jax_cache"]),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    return env


def _command(shared, out, *flags) -> list[str]:
    return [sys.executable, "-m", "train.main", *TINY, "--data-dir", str(shared["data"]), "--out", str(out), *flags]


def train(shared, out, *flags, timeout=480) -> subprocess.CompletedProcess:
    result = subprocess.run(_command(shared, out, *flags), env=_env(shared), cwd=REPO,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def losses(out) -> dict[int, float]:
    import json

    records = [json.loads(line) for line in (pathlib.Path(out) / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in records if "loss" in r}


def eval_losses(out) -> list[float]:
    import json

    records = [json.loads(line) for line in (pathlib.Path(out) / "metrics.jsonl").read_text().splitlines()]
    return [r["eval_loss"] for r in records if "eval_loss" in r]


def checkpoint_steps(out) -> list[int]:
    folder = pathlib.Path(out) / "checkpoints"
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) if folder.exists() else []


# The reference run: 40 cosine-schedule steps. Runs that stop early and resume must reproduce it.
REFERENCE = ["--steps", "40", "--warmup", "4", "--lr", "3e-3", "--eval-every", "20"]


@pytest.fixture(scope="module")
def reference_run(shared, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "run"
    result = train(shared, out, *REFERENCE, "--checkpoint-every", "0")
    (out.parent / "stdout.txt").write_text(result.stdout)
    # The shared data folder is rebuilt by runs on other text: keep this corpus's numbers now.
    import json

    import skipless_data

    info = skipless_data.load_dataset_info(shared["data"])
    (out.parent / "corpus.json").write_text(json.dumps(
        {"entropy_rate": info.entropy_rate, "bytes": info.num_bytes["eval"], "tokens": info.num_tokens["eval"]}))
    return out


def test_loss_decreases_on_embedded_corpus(reference_run):
    curve = losses(reference_run)
    assert sorted(curve) == list(range(1, 41))
    # Byte vocabulary: a uniform predictor scores ln 256; training must beat it and the start clearly.
    assert np.mean([curve[s] for s in range(36, 41)]) < min(curve[1], math.log(256)) - 1.0
    first_eval, last_eval = eval_losses(reference_run)
    assert last_eval < first_eval < math.log(256)


@pytest.mark.skipif(not (WIKITEXT / "valid.txt").is_file(), reason=f"WikiText-2 not found at {WIKITEXT}")
def test_loss_decreases_on_wikitext2(shared, tmp_path):
    train(shared, tmp_path / "run", "--data", str(WIKITEXT / "valid.txt"), "--eval-data", str(WIKITEXT / "test.txt"),
          "--tokenizer", "byte", "--steps", "40", "--warmup", "4", "--lr", "3e-3", "--eval-every", "40")
    curve = losses(tmp_path / "run")
    assert np.mean([curve[s] for s in range(36, 41)]) < curve[1] - 1.0
    assert eval_losses(tmp_path / "run")[-1] < math.log(256) - 1.0


def test_last_lines_report_losses_the_gap_and_where_things_are(reference_run):
    """Oracles: the run's own metrics.jsonl, the corpus's entropy rate and byte count from its metadata."""
    import json

    lines = (reference_run.parent / "stdout.txt").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("finished at step 40;"))
    report = "\n".join(lines[start:])
    corpus = json.loads((reference_run.parent / "corpus.json").read_text())
    entropy_rate, per_byte = corpus["entropy_rate"], corpus["bytes"] / corpus["tokens"]
    final_eval = eval_losses(reference_run)[-1]
    gap = final_eval - entropy_rate
    assert f"train {losses(reference_run)[40]:.4f} (step 40)" in report
    assert f"eval {final_eval:.4f} nats/token = {final_eval / math.log(2) / per_byte:.4f} bits/byte" in report
    assert f"best possible {entropy_rate:.4f} nats/token" in report
    assert f"eval gap {gap:.4f} nats/token = {gap / math.log(2) / per_byte:.4f} bits/byte" in report
    for where in ("/checkpoints (steps 40)", "/metrics.jsonl", "/tensorboard", f"--resume --out {reference_run} --steps 80",
                  f"python -m evals.perplexity --checkpoint {reference_run} --data embedded"):
        assert where in report, where
    assert start >= len(lines) - 10  # these are the last lines


def test_mesh_4x8_matches_1x1(shared, tmp_path, reference_run):
    # Same flags as the 1x1 reference, stopped after 4 steps (the schedule is that of 40 steps).
    result = train(shared, tmp_path / "m32", "--mesh", "4x8", *REFERENCE, "--stop-after", "4", "--checkpoint-every", "0")
    assert '"mesh": "4x8"' in result.stdout
    single, sharded = losses(reference_run), losses(tmp_path / "m32")
    assert sorted(sharded) == [1, 2, 3, 4]
    np.testing.assert_allclose([sharded[s] for s in range(1, 5)], [single[s] for s in range(1, 5)], rtol=2e-5)


def test_stop_and_resume_equals_straight_run(shared, tmp_path, reference_run):
    out = tmp_path / "run"
    train(shared, out, *REFERENCE, "--checkpoint-every", "0", "--stop-after", "3")
    assert checkpoint_steps(out) == [3]
    result = train(shared, out, "--resume")
    assert "resumed from step 3" in result.stdout
    resumed = losses(out)
    assert sorted(resumed) == list(range(1, 41))
    assert resumed == losses(reference_run)  # bitwise: same mesh, same programs, same data order
    assert eval_losses(out) == eval_losses(reference_run)


def test_corrupt_newest_checkpoint_falls_back(shared, tmp_path, reference_run):
    out = tmp_path / "run"
    train(shared, out, *REFERENCE, "--checkpoint-every", "2", "--stop-after", "6")
    assert checkpoint_steps(out) == [2, 4, 6]
    for path in (out / "checkpoints" / "6" / "arrays").rglob("*"):
        if path.is_file() and path.parent.name == "d":
            path.write_bytes(b"corrupt")
    result = train(shared, out, "--resume")
    # One warning line naming the step, nothing else on stderr (no library tracebacks).
    assert result.stderr.startswith("warning: checkpoint step 6 fails verification: arrays/"), result.stderr[-3000:]
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr[-3000:]
    assert "resumed from step 4" in result.stdout
    assert losses(out) == losses(reference_run)
    assert checkpoint_steps(out)[-1] == 40


def _wait_for(predicate, process, timeout=480.0) -> None:
    deadline = time.time() + timeout
    while not predicate():
        if process.poll() is not None:
            raise AssertionError(f"run exited early: {process.stderr.read()[-3000:]}")
        if time.time() > deadline:
            process.kill()
            raise AssertionError("timed out waiting for the run")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def constant_lr_run(shared, tmp_path_factory):
    out = tmp_path_factory.mktemp("constant") / "run"
    train(shared, out, *CONSTANT_LR, "--steps", "60", "--checkpoint-every", "0", "--eval-every", "0")
    return losses(out)


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_interrupted_run_resumes_like_a_straight_run(shared, tmp_path, how, constant_lr_run):
    out = tmp_path / "run"
    every = "0" if how == "sigterm" else "3"
    process = subprocess.Popen(
        _command(shared, out, *CONSTANT_LR, "--steps", "100000", "--checkpoint-every", every, "--eval-every", "0"),
        env=_env(shared), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        if how == "sigterm":
            _wait_for(lambda: (out / "metrics.jsonl").exists() and len(losses(out)) >= 3, process)
            process.send_signal(signal.SIGTERM)
        else:
            _wait_for(lambda: len(checkpoint_steps(out)) >= 2, process)
            process.kill()
        stdout, stderr = process.communicate(timeout=480)
    finally:
        if process.poll() is None:
            process.kill()
    if how == "sigterm":
        assert process.returncode == 128 + signal.SIGTERM, stderr[-3000:]  # interrupted, checkpoint written
        assert "stopped by SIGTERM" in stdout
        # The checkpoint holds the step the signal interrupted: nothing trained is lost.
        assert checkpoint_steps(out)[-1] == max(losses(out))
    else:
        assert process.returncode == -signal.SIGKILL
        assert checkpoint_steps(out)[-1] % 3 == 0  # only finished periodic checkpoints are listed
    resume_from = checkpoint_steps(out)[-1]
    target = resume_from + 2
    assert target <= max(constant_lr_run), "the interrupted run got further than the reference run"
    result = train(shared, out, "--resume", "--steps", str(target))
    assert f"resumed from step {resume_from}" in result.stdout
    # metrics.jsonl appends: the resumed run re-logs the steps after its checkpoint, and its later
    # records win in `losses`. Every step up to the target must equal the straight run's.
    resumed = losses(out)
    for step in range(1, target + 1):
        assert resumed[step] == constant_lr_run[step], step


def test_non_finite_loss_stops_with_clear_error(shared, tmp_path):
    out = tmp_path / "run"
    result = subprocess.run(
        _command(shared, out, "--steps", "50", "--warmup", "0", "--lr", "1e12", "--grad-clip", "0",
                 "--checkpoint-every", "1", "--eval-every", "0"),
        env=_env(shared), cwd=REPO, capture_output=True, text=True, timeout=480,
    )
    assert result.returncode == 3, result.stderr[-3000:]
    message = [line for line in result.stderr.splitlines() if line.startswith("error: non-finite")]
    assert len(message) == 1, result.stderr[-3000:]
    bad_step = int(message[0].split(" at step ")[1].split(";")[0])
    assert all(math.isfinite(v) for s, v in losses(out).items() if s < bad_step)
    assert checkpoint_steps(out) and checkpoint_steps(out)[-1] == bad_step - 1
