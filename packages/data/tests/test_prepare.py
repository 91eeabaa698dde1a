import json
import os

import numpy as np
import pytest

from skipless_data import (
    DatasetInfo,
    embedded_corpus,
    load_dataset_info,
    load_tokenizer,
    prepare_dataset,
    split_tokens,
)

QUIET = dict(show_progress=False)


def _decoded(info, split):
    return load_tokenizer(info.tokenizer, info.path).decode(split_tokens(info, split))


def test_byte_round_trip_and_tail_holdout_at_line_boundary(tmp_path, text_file):
    raw = text_file.read_bytes()
    info = prepare_dataset(str(text_file), "byte", tmp_path / "out", chunk_tokens=97, **QUIET)
    train, evals = split_tokens(info, "train"), split_tokens(info, "eval")
    np.testing.assert_array_equal(np.concatenate([train, evals]), np.frombuffer(raw, np.uint8))
    assert bytes(train.astype(np.uint8)).endswith(b"\n")
    assert abs(evals.size / len(raw) - 0.05) < 0.01
    assert info.num_tokens == {"train": train.size, "eval": evals.size}
    assert info.num_bytes == info.num_tokens and info.vocab_size == 256
    assert info.entropy_rate is None and info.tokenizer == "byte"


def test_bpe_round_trip_with_separate_eval_file(tmp_path, sample_text):
    (tmp_path / "a.txt").write_text(sample_text(300))
    (tmp_path / "b.txt").write_text(sample_text(50)[::-1])
    info = prepare_dataset(
        str(tmp_path / "a.txt"), "bpe:300", tmp_path / "out", eval_data=str(tmp_path / "b.txt"),
        chunk_tokens=64, records_per_shard=3, **QUIET,
    )
    assert len(info.shards["train"]) > 1  # several ArrayRecord files
    assert _decoded(info, "train") == sample_text(300)
    assert _decoded(info, "eval") == sample_text(50)[::-1]
    assert info.num_tokens["train"] < info.num_bytes["train"] == len(sample_text(300).encode())
    assert max(split_tokens(info, "train").max(), split_tokens(info, "eval").max()) < 300
    assert os.path.isfile(os.path.join(info.path, "tokenizer.json"))


def test_folder_and_jsonl_sources(tmp_path):
    folder = tmp_path / "corpus"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.txt").write_text("second file\n" * 50)
    (folder / "a.txt").write_text("first file\n" * 50)
    (folder / "sub" / "c.jsonl").write_text(
        "".join(json.dumps({"body": f"doc {i} ✓", "id": i}) + "\n" for i in range(40))
    )
    (folder / ".hidden").write_text("never read\n")
    info = prepare_dataset(str(folder), "byte", tmp_path / "out", text_field="body", **QUIET)
    expected = "first file\n" * 50 + "second file\n" * 50
    expected += "".join(f"doc {i} ✓\n" for i in range(40))
    assert _decoded(info, "train") + _decoded(info, "eval") == expected


def test_reuse_when_inputs_match_and_rebuild_when_they_change(tmp_path, text_file):
    out = tmp_path / "out"
    first = prepare_dataset(str(text_file), "byte", out, **QUIET)
    shard = first.shard_paths("train")[0]
    stamp = os.stat(shard).st_mtime_ns
    again = prepare_dataset(str(text_file), "byte", out, seq_len=16, **QUIET)
    assert again == first and os.stat(shard).st_mtime_ns == stamp
    assert load_dataset_info(out) == first
    assert DatasetInfo.from_json(first.to_json()) == first
    text_file.write_text("a different corpus\n" * 200)
    changed = prepare_dataset(str(text_file), "byte", out, **QUIET)
    assert changed.fingerprint != first.fingerprint
    assert _decoded(changed, "train") + _decoded(changed, "eval") == "a different corpus\n" * 200
    assert not [n for n in os.listdir(out) if n.startswith(".prepare-")]


def test_embedded_default_is_deterministic_with_exact_entropy(tmp_path):
    info = prepare_dataset(None, None, tmp_path / "a", embedded_tokens=20_000, **QUIET)
    assert info.tokenizer == "byte" and info.source == "embedded"
    assert info.entropy_rate == pytest.approx(embedded_corpus.entropy_rate())
    assert info.num_tokens == {"train": 19_000, "eval": 1_000}
    other = prepare_dataset("embedded", "byte", tmp_path / "b", embedded_tokens=20_000, **QUIET)
    np.testing.assert_array_equal(split_tokens(info, "train"), split_tokens(other, "train"))
    reseeded = prepare_dataset(None, None, tmp_path / "c", embedded_tokens=20_000, seed=1, **QUIET)
    assert not np.array_equal(split_tokens(info, "train"), split_tokens(reseeded, "train"))
    # BPE on the embedded text: the exact byte rate scaled to the eval split's bytes per token.
    bpe = prepare_dataset(None, "bpe:300", tmp_path / "d", embedded_tokens=20_000, **QUIET)
    scale = bpe.num_bytes["eval"] / bpe.num_tokens["eval"]
    assert scale > 1.0
    assert bpe.entropy_rate == pytest.approx(embedded_corpus.entropy_rate() * scale)


def test_long_lines_are_streamed_in_pieces_without_breaking_characters(tmp_path, monkeypatch):
    import warnings

    from skipless_data import local_text

    monkeypatch.setattr(local_text, "MAX_PIECE_BYTES", 7)
    text = "naïve café 東京 🙂 " * 40 + "\n" + "x" * 50  # one long line, no final newline
    path = tmp_path / "long.txt"
    path.write_text(text, encoding="utf-8")
    pieces = [t for t, _ in local_text.iter_range(local_text.whole_files([str(path)])[0])]
    assert len(pieces) > 50 and all(len(p.encode()) <= 7 for p in pieces)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        info = prepare_dataset(str(path), "bpe:280", tmp_path / "out", **QUIET)
    assert _decoded(info, "train") + _decoded(info, "eval") == text
