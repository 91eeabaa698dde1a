"""Multi-host training for real: `python -m train.main` as 2 processes x 4 CPU devices on localhost.

Oracles: the single-process run with the same global batch and seed (losses to float tolerance);
the same single-process run continued past its checkpoint (a 2-process checkpoint resumed by one
process on another mesh shape, and a 1-process checkpoint resumed by two processes, must continue
its losses). Every process wait is bounded; a failure kills both processes and shows their stderr.
"""

import json
import os
import pathlib
import shutil
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))  # pytest runs with --import-mode=importlib
from multihost_launch import launch  # noqa: E402

TINY = ["--depth", "2", "--width", "32", "--heads", "4", "--mlp-width", "64", "--seq-len", "16",
        "--batch-size", "8", "--log-every", "1", "--eval-batches", "1", "--diagnostics-every", "0",
        "--progress", "false", "--steps", "6", "--warmup", "2", "--eval-every", "0"]
TIMEOUT = 300  # seconds per job: ~15-30 s on 2 idle cores, several times that on a loaded machine
RTOL = 2e-5  # a different partition of the same sums (devices, processes) rounds differently


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    root = tmp_path_factory.mktemp("multihost")
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_COORDINATOR_ADDRESS")}
    env.update(JAX_PLATFORMS="cpu", JAX_COMPILATION_CACHE_DIR=str(root / "jax-cache"),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    return {"root": root, "env": env, "data": root / "data"}


def run_job(shared, out, *flags, processes: int):
    return launch([*TINY, "--data-dir", str(shared["data"]), "--out", str(out), *flags],
                  processes=processes, timeout=TIMEOUT, env=shared["env"])


def records(out) -> list[dict]:
    return [json.loads(line) for line in (pathlib.Path(out) / "metrics.jsonl").read_text().splitlines()]


def losses(out) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in records(out) if "loss" in r}


def checkpoint_steps(out) -> list[int]:
    return sorted(int(p.name) for p in (pathlib.Path(out) / "checkpoints").iterdir() if p.name.isdigit())


def assert_losses_close(actual: dict[int, float], expected: dict[int, float], steps) -> None:
    assert sorted(s for s in actual if s in steps) == list(steps), actual
    np.testing.assert_allclose([actual[s] for s in steps], [expected[s] for s in steps], rtol=RTOL)


@pytest.fixture(scope="module")
def single(shared):
    """The oracle: one process, 2x4 mesh, 6 steps, checkpoints at 3 and 6."""
    out = shared["root"] / "single"
    run_job(shared, out, "--mesh", "2x4", "--checkpoint-every", "3", processes=1)
    assert checkpoint_steps(out) == [3, 6]
    return out


@pytest.fixture(scope="module")
def two_process(shared, single):
    """Two processes, 2x4 mesh overall, stopped with a checkpoint after 3 steps."""
    out = shared["root"] / "two"
    results = run_job(shared, out, "--mesh", "2x4", "--stop-after", "3", processes=2)
    return out, results


def test_two_processes_match_one_process(single, two_process):
    out, results = two_process
    assert_losses_close(losses(out), losses(single), range(1, 4))
    assert checkpoint_steps(out) == [3]
    # Both processes wrote their half of the arrays and their own data position.
    assert sorted(p.name for p in (out / "checkpoints" / "3" / "data").glob("*.json")) == [
        "process_0-of-2.json", "process_1-of-2.json"]
    # Only process 0 reports and writes metrics.
    assert '"mesh": "2x4"' in results[0].stdout and "stopped by stop_after at step 3" in results[0].stdout
    assert "step " not in results[1].stdout and '"mesh"' not in results[1].stdout
    assert [r["step"] for r in records(out) if "loss" in r] == [1, 2, 3]


def test_two_process_checkpoint_resumes_in_one_process_on_another_mesh(shared, single, two_process):
    out, _ = two_process
    (result,) = run_job(shared, out, "--resume", "--mesh", "4x2", processes=1)
    assert "resumed from step 3" in result.stdout
    assert_losses_close(losses(out), losses(single), range(1, 7))
    assert not (out / "checkpoints" / "corrupt").exists()  # a good checkpoint is never quarantined


def test_one_process_checkpoint_resumes_in_two_processes(shared, single):
    out = shared["root"] / "single_at_3"
    shutil.copytree(single, out)
    shutil.rmtree(out / "checkpoints" / "6")  # the run as it stood after step 3
    (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records(single) if r["step"] <= 3))
    results = run_job(shared, out, "--resume", processes=2)
    assert "resumed from step 3" in results[0].stdout
    assert_losses_close(losses(out), losses(single), range(1, 7))
    assert checkpoint_steps(out) == [3, 6]
    assert not (out / "checkpoints" / "corrupt").exists()

