"""Token budgets: a split stops at exactly N tokens; a larger budget extends the shards exactly as a
fresh build would, a smaller one reads a prefix; nothing from other inputs is ever mixed in.

Oracles: the split prepared without a budget (a budget keeps its first N tokens), and a fresh
build with the larger budget (an extension must give the same files byte for byte).
"""

import json
import os

import numpy as np
import pytest

from skipless_data import load_dataset_info, prepare_dataset, split_tokens, verify_dataset

SMALL = dict(chunk_tokens=64, records_per_shard=4, show_progress=False, workers=1)


@pytest.fixture
def corpus(tmp_path, sample_text):
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "a.txt").write_text(sample_text(300))
    (folder / "b.jsonl").write_text("".join(json.dumps({"text": f"record {i} " * 9}) + "\n" for i in range(80)))
    return folder


def _files(out):
    names = sorted(n for n in os.listdir(out) if n.endswith((".array_record", ".json")) and n != "metadata.json")
    return {n: (out / n).read_bytes() for n in names}


def _metadata(out):
    fields = json.loads((out / "metadata.json").read_text())
    fields.pop("path")
    return fields


def test_budget_keeps_the_first_tokens_and_is_recorded(tmp_path, corpus):
    full = prepare_dataset(str(corpus), "bpe:300", tmp_path / "full", **SMALL)
    cut = prepare_dataset(str(corpus), "bpe:300", tmp_path / "cut", max_train_tokens=777, max_eval_tokens=50, **SMALL)
    for split, n in (("train", 777), ("eval", 50)):
        np.testing.assert_array_equal(split_tokens(cut, split), split_tokens(full, split)[:n])
    saved = load_dataset_info(tmp_path / "cut")
    assert saved.num_tokens == {"train": 777, "eval": 50}
    assert saved.max_tokens == {"train": 777, "eval": 50}
    assert saved.complete == {"train": False, "eval": False}
    assert full.complete == {"train": True, "eval": True} and full.max_tokens == {"train": None, "eval": None}


@pytest.mark.parametrize("tokenizer", ["byte", "bpe:300"])
def test_a_larger_budget_extends_exactly_as_a_fresh_build(tmp_path, corpus, tokenizer):
    out = tmp_path / "grown"
    first = prepare_dataset(str(corpus), tokenizer, out, max_train_tokens=700, max_eval_tokens=40, **SMALL)
    kept = {n: os.stat(out / n).st_mtime_ns for n in first.shards["train"][:-1]}
    assert kept, "the test needs shards that an extension keeps"
    grown = prepare_dataset(str(corpus), tokenizer, out, max_train_tokens=1500, max_eval_tokens=40, **SMALL)
    fresh = prepare_dataset(str(corpus), tokenizer, tmp_path / "fresh", max_train_tokens=1500,
                            max_eval_tokens=40, **SMALL)
    assert _files(out) == _files(tmp_path / "fresh")
    assert _metadata(out) == _metadata(tmp_path / "fresh")
    assert grown.num_tokens["train"] == 1500 and grown.num_bytes == fresh.num_bytes
    assert {n: os.stat(out / n).st_mtime_ns for n in kept} == kept  # untouched, not rewritten
    # ...and on to the end of the source, again as a fresh build without a budget.
    prepare_dataset(str(corpus), tokenizer, out, **SMALL)
    prepare_dataset(str(corpus), tokenizer, tmp_path / "all", **SMALL)
    assert _files(out) == _files(tmp_path / "all")
    verify_dataset(load_dataset_info(out))


def test_a_smaller_budget_reads_a_prefix_and_changes_nothing(tmp_path, corpus):
    out = tmp_path / "out"
    big = prepare_dataset(str(corpus), "bpe:300", out, max_train_tokens=1200, **SMALL)
    before = _files(out), _metadata(out)
    small = prepare_dataset(str(corpus), "bpe:300", out, max_train_tokens=300, **SMALL)
    assert (_files(out), _metadata(out)) == before
    assert small.num_tokens["train"] == 300 and len(small.shards["train"]) == 2  # 300 tokens = 5 records
    np.testing.assert_array_equal(split_tokens(small, "train"), split_tokens(big, "train")[:300])
    oracle = prepare_dataset(str(corpus), "bpe:300", tmp_path / "oracle", max_train_tokens=300, **SMALL)
    assert small.num_bytes == oracle.num_bytes


def test_a_budget_beyond_the_source_is_complete_and_then_reused(tmp_path, corpus):
    out = tmp_path / "out"
    info = prepare_dataset(str(corpus), "byte", out, max_train_tokens=10**9, **SMALL)
    assert info.complete["train"] and info.num_tokens["train"] < 10**9
    stamp = os.stat(out / "metadata.json").st_mtime_ns
    again = prepare_dataset(str(corpus), "byte", out, max_train_tokens=2 * 10**9, **SMALL)
    assert again == info and os.stat(out / "metadata.json").st_mtime_ns == stamp


def test_changed_inputs_are_rebuilt_never_extended(tmp_path, corpus):
    out = tmp_path / "out"
    prepare_dataset(str(corpus), "byte", out, max_train_tokens=500, **SMALL)
    (corpus / "a.txt").write_text("entirely new text\n" * 200)
    changed = prepare_dataset(str(corpus), "byte", out, max_train_tokens=900, **SMALL)
    oracle = prepare_dataset(str(corpus), "byte", tmp_path / "oracle", max_train_tokens=900, **SMALL)
    np.testing.assert_array_equal(split_tokens(changed, "train"), split_tokens(oracle, "train"))
    assert _files(out) == _files(tmp_path / "oracle")


def test_a_damaged_shard_is_noticed(tmp_path, corpus):
    out = tmp_path / "out"
    info = prepare_dataset(str(corpus), "byte", out, **SMALL)
    shard = out / info.shards["train"][0]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="does not match its SHA-256"):
        verify_dataset(load_dataset_info(out))
    with pytest.raises(ValueError, match="damaged .*does not match its SHA-256"):
        prepare_dataset(str(corpus), "byte", out, verify=True, **SMALL)
    shard.write_bytes(bytes(data[:-10]))  # a plain reuse checks sizes and rebuilds what is cut short
    with pytest.warns(RuntimeWarning, match="damaged"):
        rebuilt = prepare_dataset(str(corpus), "byte", out, **{**SMALL, "show_progress": True})
    verify_dataset(rebuilt)


@pytest.mark.parametrize("budget", [0, -3, 2.5])
def test_bad_budget_is_one_line(tmp_path, corpus, budget):
    with pytest.raises(ValueError, match="must be a positive integer"):
        prepare_dataset(str(corpus), "byte", tmp_path / "out", max_train_tokens=budget, **SMALL)
