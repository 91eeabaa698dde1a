"""Multi-host training for real: `python -m train.main` as 2 processes x 4 CPU devices on localhost.

Oracles: the single-process run with the same global batch and seed (losses to float tolerance);
the same single-process run continued past its checkpoint (a 2-process checkpoint resumed by one
process, and a 1-process checkpoint resumed by two processes on another mesh shape, must continue
its losses and reach its eval loss). Every process wait is bounded; a failure kills both processes
and shows their stderr.
"""

import json
import os
import pathlib
import shutil
import signal
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))  # pytest runs with --import-mode=importlib
from multihost_launch import LaunchError, launch  # noqa: E402

TINY = ["--depth", "2", "--width", "32", "--heads", "8", "--mlp-width", "64", "--seq-len", "16",
        "--batch-size", "8", "--log-every", "1", "--eval-batches", "1", "--diagnostics-every", "0",
        "--progress", "false", "--steps", "6", "--eval-every", "0",
        # A constant learning rate keeps the compiled step independent of --steps (one cache entry).
        "--schedule", "constant", "--warmup", "0", "--lr", "2e-3"]
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


def eval_losses(out) -> list[float]:
    return [r["eval_loss"] for r in records(out) if "eval_loss" in r]


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
    """Two processes, 2x4 mesh overall, stopped with a checkpoint after 3 steps; they prepare their
    data afresh into a folder of their own (process 0 builds, process 1 waits and checks it)."""
    out = shared["root"] / "two"
    results = run_job(shared, out, "--mesh", "2x4", "--stop-after", "3", "--data-dir", str(shared["root"] / "data-two"),
                      processes=2)
    return out, results


def _folder_bytes(folder: pathlib.Path) -> dict[str, bytes]:
    """Every file but the metadata (its path differs) and the lock (it names its last holder)."""
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.name not in ("metadata.json", ".prepare.lock")}


def test_two_processes_match_one_process(shared, single, two_process):
    out, results = two_process
    # One dataset, byte for byte the one a single process prepared: no duplicate, partial or temporary files.
    fresh, oracle = shared["root"] / "data-two", shared["data"]
    assert _folder_bytes(fresh) == _folder_bytes(oracle)
    metadata = [json.loads((f / "metadata.json").read_text()) for f in (fresh, oracle)]
    assert [{k: v for k, v in m.items() if k != "path"} for m in metadata] == [
        {k: v for k, v in metadata[1].items() if k != "path"}] * 2
    assert_losses_close(losses(out), losses(single), range(1, 4))
    assert checkpoint_steps(out) == [3]
    # Both processes wrote their half of the arrays and their own data position.
    assert sorted(p.name for p in (out / "checkpoints" / "3" / "data").glob("*.json")) == [
        "process_0-of-2.json", "process_1-of-2.json"]
    # Only process 0 reports and writes metrics.
    assert '"mesh": "2x4"' in results[0].stdout and "stopped by stop_after at step 3" in results[0].stdout
    assert "step " not in results[1].stdout and '"mesh"' not in results[1].stdout
    assert [r["step"] for r in records(out) if "loss" in r] == [1, 2, 3]


def test_two_process_checkpoint_resumes_in_one_process(shared, single, two_process):
    out, _ = two_process
    (result,) = run_job(shared, out, "--resume", processes=1)
    assert "resumed from step 3" in result.stdout
    assert_losses_close(losses(out), losses(single), range(1, 7))
    np.testing.assert_allclose(eval_losses(out), eval_losses(single), rtol=RTOL)
    assert not (out / "checkpoints" / "corrupt").exists()  # a good checkpoint is never quarantined


def test_one_process_checkpoint_resumes_in_two_processes(shared, single):
    out = shared["root"] / "single_at_3"
    shutil.copytree(single, out)
    shutil.rmtree(out / "checkpoints" / "6")  # the run as it stood after step 3
    (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records(single) if r["step"] <= 3))
    # 1x8: the "model" axis spans both processes, so both load the same (whole) batch.
    results = run_job(shared, out, "--resume", "--mesh", "1x8", processes=2)
    assert "resumed from step 3" in results[0].stdout
    assert_losses_close(losses(out), losses(single), range(1, 7))
    np.testing.assert_allclose(eval_losses(out), eval_losses(single), rtol=RTOL)
    assert checkpoint_steps(out) == [3, 6]
    assert not (out / "checkpoints" / "corrupt").exists()



def test_a_failing_process_exits_at_once_with_its_error(shared, tmp_path):
    """Only process 1 gets a bad flag: it must print its error and exit 2 promptly (not wait in the
    distributed shutdown barrier until the job is killed), and the launcher must stop process 0."""
    flags = [*TINY, "--data-dir", str(shared["data"]), "--out", str(tmp_path / "bad"), "--mesh", "2x4"]
    with pytest.raises(LaunchError) as failure:
        launch(flags, processes=2, timeout=TIMEOUT, grace=2.0, env=shared["env"], process_flags={1: ["--lr", "-1"]})
    report = str(failure.value)
    assert "--- process 1: exit code 2;" in report
    assert "error: --lr=-1.0 must be a positive number" in report
    assert "process 1 of the multi-process job failed" in report
    assert "ran past" not in report


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from skipless_data import prepare_dataset

    root = tmp_path_factory.mktemp("multihost_corpus")
    text = root / "corpus.txt"
    text.write_bytes(bytes(np.random.default_rng(0).integers(97, 123, size=8_000, dtype=np.uint8)))
    return prepare_dataset(str(text), "byte", root / "data", eval_data=str(text), show_progress=False)


def _stream(corpus, index: int, count: int):
    from skipless_data import train_dataset

    stream = train_dataset(corpus, seq_len=16, global_batch_size=8, seed=3, process_index=index, process_count=count)
    return iter(stream)


def _save_states(folder: pathlib.Path, iterators) -> pathlib.Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, it in enumerate(iterators):
        (folder / f"process_{i}-of-{len(iterators)}.json").write_text(json.dumps(it.get_state()))
    return folder


def test_data_position_moves_between_process_counts(corpus, tmp_path):
    from train.data_position import restore_data_position, saved_layouts

    straight = _stream(corpus, 0, 1)
    expected = [next(straight) for _ in range(5)]
    # Two processes consume 3 global batches (their halves) and save; one process continues.
    pair = [_stream(corpus, 0, 2), _stream(corpus, 1, 2)]
    for step in range(3):
        np.testing.assert_array_equal(np.concatenate([next(it) for it in pair]), expected[step])
    two = _save_states(tmp_path / "two", pair)
    assert saved_layouts(two) == {2}
    alone = _stream(corpus, 0, 1)
    restore_data_position(alone, two)
    np.testing.assert_array_equal(next(alone), expected[3])
    # ...and back: that one process saves after step 4, two processes continue with batch 5.
    one = _save_states(tmp_path / "one", [alone])
    again = [_stream(corpus, 0, 2), _stream(corpus, 1, 2)]
    for it in again:
        restore_data_position(it, one)
    np.testing.assert_array_equal(np.concatenate([next(it) for it in again]), expected[4])


def test_data_position_refuses_unequal_or_missing_states(corpus, tmp_path):
    from train.data_position import restore_data_position, saved_layouts

    pair = [_stream(corpus, 0, 2), _stream(corpus, 1, 2)]
    next(pair[0])  # the processes disagree on the position
    with pytest.raises(ValueError, match="differ between processes"):
        restore_data_position(_stream(corpus, 0, 1), _save_states(tmp_path / "skewed", pair))
    assert saved_layouts(tmp_path / "missing") == set()
    with pytest.raises(ValueError, match="holds no data iterator state"):
        restore_data_position(_stream(corpus, 0, 1), tmp_path / "missing")


def test_a_signal_to_one_process_stops_every_process_at_the_same_step(shared, tmp_path):
    """SIGTERM reaches only process 1 (as a preemption notice can): both must stop after the same
    step and write one checkpoint together; otherwise process 1 would wait in the save's collectives
    while process 0 waits in the next step's, until the job is killed."""
    out = tmp_path / "signalled"
    flags = [*TINY, "--data-dir", str(shared["data"]), "--out", str(out), "--mesh", "2x4", "--steps", "200",
             "--checkpoint-every", "0"]
    # Both exit 143 (128 + SIGTERM): interrupted, with the checkpoint written.
    results = launch(flags, processes=2, timeout=TIMEOUT, env=shared["env"], signal_when=("step 2/", 1, signal.SIGTERM),
                     expect_code=128 + signal.SIGTERM)
    (stopped,) = checkpoint_steps(out)
    assert 2 <= stopped < 200
    assert f"stopped by a signal to another process at step {stopped}" in results[0].stdout
    assert sorted(losses(out)) == list(range(1, stopped + 1))
