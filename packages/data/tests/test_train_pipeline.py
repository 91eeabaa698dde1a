import numpy as np
import pytest

from skipless_data import prepare_dataset, split_tokens, train_dataset

SEQ = 32


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    path = root / "corpus.txt"
    rng = np.random.default_rng(0)
    path.write_bytes(bytes(rng.integers(97, 123, size=20_000, dtype=np.uint8)))
    info = prepare_dataset(
        str(path), "byte", root / "out", eval_data=str(path), chunk_tokens=100, show_progress=False
    )
    return info, np.frombuffer(path.read_bytes(), np.uint8).astype(np.int32)


def _take(iterator, steps):
    return [next(iterator) for _ in range(steps)]


def _windows(stream):
    count = (stream.size - 1) // SEQ
    return np.stack([stream[w * SEQ : w * SEQ + SEQ + 1] for w in range(count)])


def test_batches_shape_and_each_epoch_is_a_permutation_of_all_windows(dataset):
    info, stream = dataset
    np.testing.assert_array_equal(split_tokens(info, "train"), stream)
    expected = _windows(stream)
    count = len(expected)
    iterator = iter(train_dataset(info, seq_len=SEQ, global_batch_size=4, seed=0))
    batches = _take(iterator, -(-2 * count // 4))
    assert all(b.shape == (4, SEQ + 1) and b.dtype == np.int32 for b in batches)
    rows = np.concatenate(batches)
    epoch0, epoch1 = rows[:count], rows[count : 2 * count]
    key = lambda a: a[np.lexsort(a.T[::-1])]  # noqa: E731
    np.testing.assert_array_equal(key(epoch0), key(expected))
    np.testing.assert_array_equal(key(epoch1), key(expected))
    assert not np.array_equal(epoch0, expected)  # shuffled
    assert not np.array_equal(epoch0, epoch1)  # reshuffled per epoch


def test_shuffle_is_seeded(dataset):
    info, _ = dataset
    make = lambda seed: _take(  # noqa: E731
        iter(train_dataset(info, seq_len=SEQ, global_batch_size=4, seed=seed)), 5
    )
    np.testing.assert_array_equal(make(3), make(3))
    assert not np.array_equal(make(3), make(4))


def test_processes_read_disjoint_slices_of_the_global_batch(dataset):
    info, _ = dataset
    steps = 40  # crosses an epoch boundary
    whole = _take(iter(train_dataset(info, seq_len=SEQ, global_batch_size=8, seed=1)), steps)
    parts = [
        _take(
            iter(
                train_dataset(
                    info, seq_len=SEQ, global_batch_size=8, seed=1, process_index=p, process_count=2
                )
            ),
            steps,
        )
        for p in range(2)
    ]
    for step in range(steps):
        assert parts[0][step].shape == (4, SEQ + 1)
        np.testing.assert_array_equal(np.concatenate([parts[0][step], parts[1][step]]), whole[step])
    first = {r.tobytes() for b in parts[0][:5] for r in b}
    second = {r.tobytes() for b in parts[1][:5] for r in b}
    assert not first & second


def test_iterator_state_resumes_exactly(dataset):
    info, _ = dataset
    dataset_ = train_dataset(info, seq_len=SEQ, global_batch_size=4, seed=2)
    straight = iter(dataset_)
    _take(straight, 180)  # past the first epoch (156 windows)
    state = straight.get_state()
    expected = _take(straight, 10)
    resumed = iter(train_dataset(info, seq_len=SEQ, global_batch_size=4, seed=2))
    resumed.set_state(state)
    np.testing.assert_array_equal(_take(resumed, 10), expected)


def test_iterator_state_through_orbax(dataset, tmp_path):
    ocp = pytest.importorskip("orbax.checkpoint", reason="orbax-checkpoint is not installed")
    import grain

    info, _ = dataset
    straight = iter(train_dataset(info, seq_len=SEQ, global_batch_size=4, seed=5))
    _take(straight, 13)
    manager = ocp.CheckpointManager(tmp_path / "ckpt", item_names=("data",))
    manager.save(13, args=ocp.args.Composite(data=grain.checkpoint.CheckpointSave(straight)))
    manager.wait_until_finished()
    expected = _take(straight, 6)
    resumed = iter(train_dataset(info, seq_len=SEQ, global_batch_size=4, seed=5))
    manager.restore(13, args=ocp.args.Composite(data=grain.checkpoint.CheckpointRestore(resumed)))
    manager.close()
    np.testing.assert_array_equal(_take(resumed, 6), expected)


def test_bad_arguments(dataset):
    info, _ = dataset
    with pytest.raises(ValueError, match="not divisible by process_count"):
        train_dataset(info, seq_len=SEQ, global_batch_size=6, seed=0, process_count=4)
    with pytest.raises(ValueError, match="process_index"):
        train_dataset(
            info, seq_len=SEQ, global_batch_size=4, seed=0, process_index=2, process_count=2
        )
    with pytest.raises(ValueError, match="shorter than one window"):
        train_dataset(info, seq_len=50_000, global_batch_size=4, seed=0)
