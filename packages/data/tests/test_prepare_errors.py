import os

import pytest

from skipless_data import load_dataset_info, prepare_dataset

QUIET = dict(show_progress=False)


def _one_line(error):
    message = str(error.value)
    assert message and "\n" not in message
    return message


def test_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        prepare_dataset(str(tmp_path / "nope.txt"), "byte", tmp_path / "out", **QUIET)
    assert "does not exist" in _one_line(error)


def test_empty_corpus(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ValueError) as error:
        prepare_dataset(str(tmp_path / "empty.txt"), "byte", tmp_path / "out", **QUIET)
    assert "empty" in _one_line(error)
    assert not os.path.exists(tmp_path / "out" / "metadata.json")


def test_empty_folder(tmp_path):
    (tmp_path / "folder").mkdir()
    with pytest.raises(ValueError) as error:
        prepare_dataset(str(tmp_path / "folder"), "byte", tmp_path / "out", **QUIET)
    assert "no files" in _one_line(error)


def test_corpus_shorter_than_one_window(tmp_path, text_file):
    with pytest.raises(ValueError) as error:
        prepare_dataset(str(text_file), "byte", tmp_path / "out", seq_len=100_000, **QUIET)
    assert "shorter than one window" in _one_line(error)
    assert not os.path.exists(tmp_path / "out" / "metadata.json")


def test_unknown_tokenizer(tmp_path, text_file):
    with pytest.raises(ValueError) as error:
        prepare_dataset(str(text_file), "sentencepiece", tmp_path / "out", **QUIET)
    assert "unknown tokenizer spec" in _one_line(error)


def test_non_utf8_bytes_warn_and_are_replaced(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes(("caf\xe9 au lait\n".encode("latin-1") + b"plain line\n") * 30)
    with pytest.warns(UnicodeWarning, match="not UTF-8"):
        info = prepare_dataset(str(path), "byte", tmp_path / "out", eval_data=str(path), **QUIET)
    assert info.num_tokens["train"] == len(("caf\ufffd au lait\nplain line\n" * 30).encode())


def test_jsonl_missing_field(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text('{"content": "x"}\n')
    with pytest.raises(ValueError) as error:
        prepare_dataset(str(path), "byte", tmp_path / "out", eval_data=str(path), **QUIET)
    assert "no field 'text'" in _one_line(error) and "content" in str(error.value)


def test_failed_rebuild_keeps_previous_dataset_and_leaves_no_partial_files(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text('{"text": "good document"}\n' * 200)
    out = tmp_path / "out"
    good = prepare_dataset(str(path), "byte", out, **QUIET)
    # A corrupt record late in the file fails the rebuild after shards were being written.
    path.write_text('{"text": "good document"}\n' * 5000 + "{not json\n")
    with pytest.raises(ValueError) as error:
        prepare_dataset(str(path), "byte", out, chunk_tokens=64, **QUIET)
    assert "invalid JSON" in _one_line(error)
    assert load_dataset_info(out) == good
    expected = [".prepare.lock", "metadata.json", *good.shards["train"], *good.shards["eval"]]
    assert sorted(os.listdir(out)) == sorted(expected)


def test_loading_a_folder_that_is_not_a_prepared_dataset(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        load_dataset_info(tmp_path)
    assert "not a prepared dataset" in _one_line(error)


def test_metadata_with_unknown_fields_is_rejected(tmp_path, text_file):
    from skipless_data import DatasetInfo

    info = prepare_dataset(str(text_file), "byte", tmp_path / "out", **QUIET)
    text = info.to_json().replace('"chunk_tokens"', '"surprise": 1, "chunk_tokens"')
    with pytest.raises(ValueError, match="unknown fields"):
        DatasetInfo.from_json(text)
