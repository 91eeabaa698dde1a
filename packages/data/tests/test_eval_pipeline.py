import numpy as np
import pytest

from skipless_data import eval_batches, prepare_dataset

SEQ = 16


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    path = root / "corpus.txt"
    rng = np.random.default_rng(1)
    # 1000 targets = 62 full windows + one partial window of 8 targets.
    path.write_bytes(bytes(rng.integers(97, 123, size=1001, dtype=np.uint8)))
    info = prepare_dataset(
        str(path), "byte", root / "out", eval_data=str(path), chunk_tokens=37, show_progress=False
    )
    return info, np.frombuffer(path.read_bytes(), np.uint8).astype(np.int32)


def test_covers_every_target_exactly_once_in_order(dataset):
    info, stream = dataset
    batches = eval_batches(info, seq_len=SEQ, batch_size=5)
    collected = list(batches)
    assert len(collected) == len(batches) == 13  # ceil(63 windows / 5)
    tokens = np.concatenate([b.tokens for b in collected])
    mask = np.concatenate([b.mask for b in collected])
    assert tokens.shape == (65, SEQ + 1) and tokens.dtype == np.int32 and mask.dtype == bool
    np.testing.assert_array_equal(tokens[:, 1:][mask], stream[1:])
    np.testing.assert_array_equal(tokens[:, :-1][mask], stream[:-1])
    assert mask.sum() == stream.size - 1
    assert not mask[63:].any() and mask[62].sum() == 1000 - 62 * SEQ


def test_processes_split_each_batch_and_agree_on_length(dataset):
    info, _ = dataset
    whole = list(eval_batches(info, seq_len=SEQ, batch_size=6))
    parts = [
        list(eval_batches(info, seq_len=SEQ, batch_size=6, process_index=p, process_count=3))
        for p in range(3)
    ]
    assert len({len(p) for p in parts}) == 1 and len(parts[0]) == len(whole)
    for step, batch in enumerate(whole):
        np.testing.assert_array_equal(np.concatenate([p[step].tokens for p in parts]), batch.tokens)
        np.testing.assert_array_equal(np.concatenate([p[step].mask for p in parts]), batch.mask)


def test_split_shorter_than_one_window_gives_one_padded_window(dataset):
    info, stream = dataset
    (batch,) = list(eval_batches(info, seq_len=2000, batch_size=2))
    assert batch.tokens.shape == (2, 2001) and batch.mask.sum() == 1000
    np.testing.assert_array_equal(batch.tokens[0, : stream.size], stream)
    assert not batch.tokens[0, stream.size :].any() and not batch.mask[1].any()
