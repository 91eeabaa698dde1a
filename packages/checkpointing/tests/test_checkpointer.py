"""Round trips, fallback past corrupt steps, retention and Grain iterator state."""

import pathlib
import warnings

import grain
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from skipless_checkpoint import CheckpointFallbackWarning, Checkpointer, abstract_arrays


def _state(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    params = {"w": jnp.asarray(rng.normal(size=(4, 6)), jnp.float32), "b": jnp.asarray(rng.normal(size=(6,)), jnp.float32)}
    opt_state = optax.adamw(1e-3).init(params)
    return {"params": params, "opt_state": opt_state, "step": jnp.asarray(seed, jnp.int32)}


def _assert_tree_equal(actual, expected) -> None:
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(e))


def _truncate_array_files(step_dir: pathlib.Path) -> int:
    data_files = [p for p in (step_dir / "arrays").rglob("*") if p.is_file() and p.parent.name == "d"]
    for path in data_files:
        path.write_bytes(path.read_bytes()[:5])
    return len(data_files)


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


def test_corrupt_newest_falls_back_with_warning_and_can_be_rewritten(tmp_path):
    directory = tmp_path / "ckpt"
    with Checkpointer(directory, max_to_keep=5) as checkpointer:
        for step in (1, 2, 3):
            checkpointer.save(step, _state(step))
    assert _truncate_array_files(directory / "3") > 0
    checkpointer = Checkpointer(directory, max_to_keep=5)
    with pytest.warns(CheckpointFallbackWarning, match="step 3"):
        restored = checkpointer.restore(abstract_arrays(_state(0)))
    assert restored.step == 2
    _assert_tree_equal(restored.arrays, _state(2))
    # The broken step is kept for inspection but no longer listed, so step 3 can be saved anew.
    assert checkpointer.all_steps() == [1, 2]
    assert len(list((directory / "corrupt").iterdir())) == 1
    assert checkpointer.save(3, _state(33))
    checkpointer.wait_until_finished()
    _assert_tree_equal(checkpointer.restore(abstract_arrays(_state(0))).arrays, _state(33))
    checkpointer.close()


def test_missing_item_and_unfinished_write_are_skipped(tmp_path):
    directory = tmp_path / "ckpt"
    with Checkpointer(directory) as checkpointer:
        checkpointer.save(1, _state(1))
        checkpointer.save(2, _state(2))
    # A step killed mid-write only exists under Orbax's temporary name; one missing its arrays is incomplete.
    (directory / "3.orbax-checkpoint-tmp-123" / "arrays").mkdir(parents=True)
    for path in sorted((directory / "2" / "arrays").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (directory / "2" / "arrays").rmdir()
    checkpointer = Checkpointer(directory)
    assert checkpointer.latest_step() == 2
    with pytest.warns(CheckpointFallbackWarning):
        restored = checkpointer.restore(abstract_arrays(_state(0)))
    assert restored.step == 1
    _assert_tree_equal(restored.arrays, _state(1))
    checkpointer.close()


def test_no_readable_checkpoint_is_a_clear_error(tmp_path):
    checkpointer = Checkpointer(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="no readable checkpoint"):
        checkpointer.restore(abstract_arrays(_state(0)))
    checkpointer.close()


def test_mismatched_target_moves_nothing(tmp_path):
    # A wrong restore target fails on every step: the files are fine, so none may be moved aside.
    with Checkpointer(tmp_path / "ckpt") as checkpointer:
        checkpointer.save(1, _state(1))
        checkpointer.save(2, _state(2))
        checkpointer.wait_until_finished()
        wrong = abstract_arrays({"params": {"w": jnp.zeros((3, 3))}})
        with pytest.raises(FileNotFoundError, match="restore target matches"):
            checkpointer.restore(wrong)
        assert checkpointer.all_steps() == [1, 2]
        assert not (tmp_path / "ckpt" / "corrupt").exists()
        assert checkpointer.restore(abstract_arrays(_state(0))).step == 2
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
