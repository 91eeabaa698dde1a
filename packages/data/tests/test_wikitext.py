import os

import numpy as np

from skipless_data import eval_batches, load_tokenizer, prepare_dataset, split_tokens, train_dataset


def test_wikitext2_bpe_train_on_valid_eval_on_test(wikitext, tmp_path):
    valid, test = os.path.join(wikitext, "valid.txt"), os.path.join(wikitext, "test.txt")
    info = prepare_dataset(
        valid, "bpe:2048", tmp_path / "wt2", eval_data=test, seq_len=128, show_progress=False
    )
    tokenizer = load_tokenizer(info.tokenizer, info.path)
    with open(test, encoding="utf-8") as f:
        assert tokenizer.decode(split_tokens(info, "eval")) == f.read()
    assert info.num_bytes == {"train": os.path.getsize(valid), "eval": os.path.getsize(test)}
    # English BPE with 2k merges: roughly 3-4.5 bytes per token.
    assert 3.0 < info.num_bytes["eval"] / info.num_tokens["eval"] < 4.5
    batch = next(iter(train_dataset(info, seq_len=128, global_batch_size=8, seed=0)))
    assert batch.shape == (8, 129) and 0 <= batch.min() and batch.max() < 2048
    stream = split_tokens(info, "eval")
    first = next(iter(eval_batches(info, seq_len=128, batch_size=4)))
    np.testing.assert_array_equal(first.tokens[1], stream[128:257])
