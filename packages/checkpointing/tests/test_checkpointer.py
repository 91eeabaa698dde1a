"""Round trips, checksums, verified fallback past corrupt steps, read-only use, retention and Grain iterator state."""

import hashlib
import pathlib
import shutil
import subprocess
import warnings

import grain
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from skipless_checkpoint import (
    CHECKSUM_FILE,
    CheckpointFallbackWarning,
    CheckpointIntegrityError,
    Checkpointer,
    abstract_arrays,
)


def _state(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    params = {"w": jnp.asarray(rng.normal(size=(4, 6)), jnp.float32), "b": jnp.asarray(rng.normal(size=(6,)), jnp.float32)}
    opt_state = optax.adamw(1e-3).init(params)
    return {"params": params, "opt_state": opt_state, "step": jnp.asarray(seed, jnp.int32)}


def _assert_tree_equal(actual, expected) -> None:
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(e))


def test_round_trip_keeps_structure_values_and_config(tmp_path):
    state = _state(7)
    with Checkpointer(tmp_path / "ckpt") as checkpointer:
        assert checkpointer.save(7, state, config={"lr": 0.01, "name": "x"})
        checkpointer.wait_until_finished()
        restored = checkpointer.restore(abstract_arrays(state))
    assert restored.step == 7
    assert restored.config == {"lr": 0.01, "name": "x"}
    # The optax namedtuples must come back as namedtuples, not lists.
    _assert_tree_equal(restored.arrays, state)


def _zero_bytes_inside(step_dir: pathlib.Path, count: int = 400) -> pathlib.Path:
    """Overwrites `count` bytes in the middle of the step's largest array data file (size unchanged)."""
    path = max((p for p in (step_dir / "arrays").rglob("*") if p.is_file() and p.parent.name == "d"),
               key=lambda p: p.stat().st_size)
    data = bytearray(path.read_bytes())
    start = max(len(data) // 2 - count // 2, 0)
    data[start:start + count] = bytes(min(count, len(data)))
    path.write_bytes(bytes(data))
    return path


def _fingerprint(folder: pathlib.Path) -> dict[str, str]:
    """Every file and folder under `folder`: its content hash (files) or a marker (folders)."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def _saved(directory: pathlib.Path, steps, **kwargs) -> None:
    with Checkpointer(directory, max_to_keep=5) as checkpointer:
        for step in steps:
            checkpointer.save(step, _state(step), **kwargs)


def test_every_step_carries_checksums_of_all_its_files(tmp_path):
    directory = tmp_path / "ckpt"
    _saved(directory, [1, 2])
    for step in ("1", "2"):
        step_dir = directory / step
        listed = dict(reversed(line.split("  ", 1)) for line in (step_dir / CHECKSUM_FILE).read_text().splitlines())
        # Oracle: hash the files here, independently of the package; every data file must be listed.
        for name, digest in listed.items():
            assert hashlib.sha256((step_dir / name).read_bytes()).hexdigest() == digest, name
        data_files = {p.relative_to(step_dir).as_posix() for p in (step_dir / "arrays").rglob("*")
                      if p.is_file() and p.parent.name == "d"}
        assert data_files and data_files <= set(listed)
        assert {"config/metadata"} <= set(listed)
        if shutil.which("sha256sum"):  # the format is that of coreutils: check it with the tool itself
            check = subprocess.run(["sha256sum", "--quiet", "-c", CHECKSUM_FILE], cwd=step_dir, capture_output=True, text=True)
            assert check.returncode == 0, check.stdout + check.stderr


def test_silently_corrupted_newest_falls_back_and_can_be_rewritten(tmp_path):
    directory = tmp_path / "ckpt"
    _saved(directory, [1, 2, 3])
    size = {p: p.stat().st_size for p in (directory / "3").rglob("*") if p.is_file()}
    changed = _zero_bytes_inside(directory / "3")
    assert changed.stat().st_size == size[changed]  # same size: only the content says it is corrupt
    checkpointer = Checkpointer(directory, max_to_keep=5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        restored = checkpointer.restore(abstract_arrays(_state(0)))
    assert [type(w.message) for w in caught] == [CheckpointFallbackWarning]  # one warning, naming the step and file
    assert "step 3" in str(caught[0].message) and changed.name in str(caught[0].message)
    assert restored.step == 2 and [s for s, _ in restored.skipped] == [3]
    _assert_tree_equal(restored.arrays, _state(2))
    # The broken step is kept for inspection but no longer listed, so step 3 can be saved anew.
    assert checkpointer.all_steps() == [1, 2]
    assert len(list((directory / "corrupt").iterdir())) == 1
    assert checkpointer.save(3, _state(33))
    checkpointer.wait_until_finished()
    _assert_tree_equal(checkpointer.restore(abstract_arrays(_state(0))).arrays, _state(33))
    checkpointer.close()


def test_missing_data_iterator_state_falls_back_to_the_intact_step(tmp_path):
    directory = tmp_path / "ckpt"
    iterator = _iterator()
    with Checkpointer(directory) as checkpointer:
        for step in (1, 2):
            next(iterator)
            checkpointer.save(step, _state(step), data_iterator=iterator)
    (state_file,) = (directory / "2" / "data").glob("process_*.json")
    state_file.unlink()
    fresh, straight = _iterator(), _iterator()
    next(straight)
    with Checkpointer(directory) as checkpointer, pytest.warns(CheckpointFallbackWarning, match="data/process_0-of-1.json is missing"):
        restored = checkpointer.restore(abstract_arrays(_state(0)), data_iterator=fresh)
    assert restored.step == 1
    np.testing.assert_array_equal(next(fresh), next(straight))  # the iterator is at step 1's position


def test_read_only_falls_back_without_touching_a_file(tmp_path):
    directory = tmp_path / "ckpt"
    _saved(directory, [1, 2])
    _zero_bytes_inside(directory / "2")
    (directory / "3.orbax-checkpoint-tmp").mkdir()  # an interrupted save: not ours to clean up
    before = _fingerprint(directory)
    with Checkpointer(directory, read_only=True) as checkpointer:
        with pytest.warns(CheckpointFallbackWarning, match="left in place"):
            assert checkpointer.restore(abstract_arrays(_state(0))).step == 1
        with pytest.raises(ValueError, match="read-only"):
            checkpointer.save(4, _state(4))
    assert _fingerprint(directory) == before
    with pytest.raises(FileNotFoundError, match="no checkpoint folder"):
        Checkpointer(tmp_path / "missing", read_only=True)
    assert not (tmp_path / "missing").exists()


def test_a_writable_checkpointer_removes_interrupted_saves(tmp_path):
    directory = tmp_path / "ckpt"
    _saved(directory, [1])
    (directory / "2.orbax-checkpoint-tmp" / "arrays").mkdir(parents=True)
    with Checkpointer(directory) as checkpointer:
        assert checkpointer.all_steps() == [1]
        assert checkpointer.save(2, _state(2))
        checkpointer.wait_until_finished()
        assert checkpointer.restore(abstract_arrays(_state(0))).step == 2
    assert not list(directory.glob("*.orbax-checkpoint-tmp*"))


def test_a_step_without_checksums_is_not_trusted(tmp_path):
    directory = tmp_path / "ckpt"
    _saved(directory, [1, 2])
    (directory / "2" / CHECKSUM_FILE).unlink()
    with Checkpointer(directory) as checkpointer, pytest.warns(CheckpointFallbackWarning, match=f"no {CHECKSUM_FILE}"):
        assert checkpointer.restore(abstract_arrays(_state(0))).step == 1


def test_requested_step_must_verify_and_nothing_verifying_is_an_error(tmp_path):
    directory = tmp_path / "ckpt"
    _saved(directory, [1, 2])
    _zero_bytes_inside(directory / "2")
    with Checkpointer(directory) as checkpointer:
        with pytest.raises(CheckpointIntegrityError, match="step 2 .* fails verification"):
            checkpointer.restore(abstract_arrays(_state(0)), step=2)
        assert checkpointer.restore(abstract_arrays(_state(0)), step=1).step == 1
    _zero_bytes_inside(directory / "1")
    before = _fingerprint(directory)
    with Checkpointer(directory) as checkpointer:
        with pytest.raises(CheckpointIntegrityError, match="no checkpoint in .* verifies"):
            checkpointer.restore(abstract_arrays(_state(0)))
    assert _fingerprint(directory) == before  # with nothing to fall back to, nothing is moved


def test_no_checkpoint_is_a_clear_error(tmp_path):
    checkpointer = Checkpointer(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="no finished checkpoint"):
        checkpointer.restore(abstract_arrays(_state(0)))
    checkpointer.close()


def test_mismatched_target_moves_nothing(tmp_path):
    # A wrong restore target fails on a step that verifies: the files are fine, so none may be moved aside.
    with Checkpointer(tmp_path / "ckpt") as checkpointer:
        checkpointer.save(1, _state(1))
        checkpointer.save(2, _state(2))
        checkpointer.wait_until_finished()
        wrong = abstract_arrays({"params": {"w": jnp.zeros((3, 3))}})
        with pytest.raises(CheckpointIntegrityError, match="verifies but does not restore"):
            checkpointer.restore(wrong)
        assert checkpointer.all_steps() == [1, 2]
        assert not (tmp_path / "ckpt" / "corrupt").exists()
        assert checkpointer.restore(abstract_arrays(_state(0))).step == 2
        assert checkpointer.read_config(2) == {}
    with pytest.raises(ValueError, match="max_to_keep"):
        Checkpointer(tmp_path / "bad", max_to_keep=0)


def test_max_to_keep_deletes_oldest(tmp_path):
    with Checkpointer(tmp_path / "ckpt", max_to_keep=2) as checkpointer:
        for step in range(1, 6):
            checkpointer.save(step, _state(step))
        checkpointer.wait_until_finished()
        assert checkpointer.all_steps() == [4, 5]
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir() if p.name.isdigit()) == ["4", "5"]


def _iterator():
    dataset = grain.MapDataset.range(1000).shuffle(seed=3).map(lambda x: x * 2).batch(4, drop_remainder=True)
    return iter(dataset.to_iter_dataset())


def test_iterator_state_is_captured_at_save_time_and_resumes_exactly(tmp_path):
    straight = _iterator()
    reference = [next(straight) for _ in range(12)]
    iterator = _iterator()
    for _ in range(5):
        next(iterator)
    with Checkpointer(tmp_path / "ckpt") as checkpointer:
        checkpointer.save(5, _state(5), data_iterator=iterator)
        # Advancing before the async write finishes must not change what was saved.
        for _ in range(4):
            next(iterator)
        checkpointer.wait_until_finished()
        fresh = _iterator()
        restored = checkpointer.restore(abstract_arrays(_state(0)), data_iterator=fresh)
    assert restored.step == 5
    for expected in reference[5:]:
        np.testing.assert_array_equal(next(fresh), expected)


def test_restore_without_warning_when_newest_is_fine(tmp_path):
    with Checkpointer(tmp_path / "ckpt") as checkpointer:
        checkpointer.save(1, _state(1))
        checkpointer.save(2, _state(2))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert checkpointer.restore(abstract_arrays(_state(0))).step == 2
