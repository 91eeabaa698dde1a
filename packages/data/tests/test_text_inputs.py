"""Compressed text is read as text; what is not text is refused in one line naming the file.

Oracle: the same text prepared from a plain, uncompressed file.
"""

import bz2
import gzip
import io
import json
import lzma
import os
import tarfile

import numpy as np
import pytest
import zstandard

from skipless_data import DataError, prepare_dataset, split_tokens

QUIET = dict(show_progress=False)
COMPRESS = {
    "gz": gzip.compress,
    "xz": lzma.compress,
    "bz2": bz2.compress,
    "zst": lambda raw: zstandard.ZstdCompressor().compress(raw),
}


def _tokens(info):
    return np.concatenate([split_tokens(info, "train"), split_tokens(info, "eval")])


def _refused(tmp_path, data, *needles, **kwargs):
    with pytest.raises(DataError) as error:
        prepare_dataset(str(data), "byte", tmp_path / "out", **QUIET, **kwargs)
    message = str(error.value)
    assert "\n" not in message, message
    for needle in needles:
        assert needle in message, message
    assert not os.path.exists(tmp_path / "out" / "metadata.json")
    return message


@pytest.mark.parametrize("kind", sorted(COMPRESS))
def test_compressed_text_reads_as_its_text(tmp_path, sample_text, kind):
    raw = sample_text(300).encode()
    plain = tmp_path / "plain.txt"
    plain.write_bytes(raw)
    packed = tmp_path / f"corpus.txt.{kind}"
    packed.write_bytes(COMPRESS[kind](raw))
    info = prepare_dataset(str(packed), "bpe:300", tmp_path / "packed", eval_data=str(packed), **QUIET)
    oracle = prepare_dataset(str(plain), "bpe:300", tmp_path / "plain", eval_data=str(plain), **QUIET)
    np.testing.assert_array_equal(split_tokens(info, "train"), split_tokens(oracle, "train"))
    assert info.num_bytes["train"] == len(raw)


def test_c4_layout_folder_of_json_gz_shards_is_one_corpus(tmp_path):
    folder = tmp_path / "c4"
    folder.mkdir()
    texts = [f"document {i}: naïve café {'words ' * (i % 7)}\nsecond line {i}" for i in range(120)]
    for shard in range(3):
        lines = "".join(json.dumps({"text": t, "url": "u", "timestamp": "t"}) + "\n" for t in texts[shard::3])
        (folder / f"c4-train.{shard:05d}-of-00003.json.gz").write_bytes(gzip.compress(lines.encode()))
    expected = "".join(t + "\n" for s in range(3) for t in texts[s::3])
    info = prepare_dataset(str(folder), "byte", tmp_path / "out", **QUIET)
    assert bytes(_tokens(info).astype(np.uint8)).decode() == expected
    assert info.num_tokens["eval"] > 0  # the tail of the last shard, cut at a record boundary


def test_compressed_file_is_recognised_by_content_not_name(tmp_path, sample_text):
    raw = sample_text(50).encode()
    (tmp_path / "named.txt").write_bytes(gzip.compress(raw))  # gzip under a text name
    (tmp_path / "plain.gz").write_bytes(raw)  # text under a gzip name
    for name in ("named.txt", "plain.gz"):
        info = prepare_dataset(str(tmp_path / name), "byte", tmp_path / name.replace(".", "_"), **QUIET)
        assert bytes(_tokens(info).astype(np.uint8)) == raw


def test_held_out_tail_of_one_compressed_file(tmp_path, sample_text):
    raw = sample_text(400).encode()
    (tmp_path / "all.txt.xz").write_bytes(lzma.compress(raw))
    info = prepare_dataset(str(tmp_path / "all.txt.xz"), "byte", tmp_path / "out", **QUIET)
    assert bytes(_tokens(info).astype(np.uint8)) == raw
    assert abs(info.num_tokens["eval"] / len(raw) - 0.05) < 0.02
    assert bytes(split_tokens(info, "train").astype(np.uint8)).endswith(b"\n")


def test_one_long_line_is_split_not_refused(tmp_path):
    rng = np.random.default_rng(0)
    words = np.array(["alpha", "beta", "gamma", "délta", "東京"])
    text = " ".join(rng.choice(words, size=700_000)) + "\n"  # one line of ≈ 4 MB
    path = tmp_path / "one_line.txt"
    path.write_text(text, encoding="utf-8")
    info = prepare_dataset(str(path), "byte", tmp_path / "out", **QUIET)
    size = len(text.encode())
    assert bytes(_tokens(info).astype(np.uint8)).decode() == text
    assert abs(info.num_tokens["eval"] / size - 0.05) < 0.001


@pytest.mark.parametrize(
    "name, content, needles",
    [
        ("random.txt", bytes(np.random.default_rng(1).integers(0, 256, 200_000, dtype=np.uint8)),
         ("random.txt", "binary data")),
        ("image.txt", b"\x89PNG\r\n\x1a\n" + bytes(300), ("image.txt", "PNG image")),
        ("packed.gz", gzip.compress(bytes(np.random.default_rng(2).integers(0, 256, 5000, dtype=np.uint8)), mtime=0),
         ("packed.gz", "gzip-compressed binary data")),
        ("utf16.txt", "hello world\n".encode("utf-16"), ("utf16.txt", "UTF-16")),
        ("archive.zip", b"PK\x03\x04" + bytes(100), ("archive.zip", "zip archive")),
    ],
)
def test_content_that_is_not_text_is_refused(tmp_path, name, content, needles):
    (tmp_path / name).write_bytes(content)
    _refused(tmp_path, tmp_path / name, "not text", *needles)


def test_compressed_tar_is_refused(tmp_path, sample_text):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = sample_text(20).encode()
        member = tarfile.TarInfo("inner.txt")
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))
    (tmp_path / "corpus.tar.gz").write_bytes(buffer.getvalue())
    _refused(tmp_path, tmp_path / "corpus.tar.gz", "corpus.tar.gz", "gzip-compressed a tar archive")


def test_a_folder_of_binary_files_is_refused_naming_the_first(tmp_path):
    folder = tmp_path / "blobs"
    folder.mkdir()
    for name in ("a.bin", "b.dat"):
        (folder / name).write_bytes(np.arange(4096, dtype=np.float32).tobytes())
    _refused(tmp_path, folder, "a.bin", "binary data")


@pytest.mark.parametrize(
    "name, content, needles",
    [
        ("empty.txt", b"", ("empty.txt", "is empty")),
        ("blank.txt", b" \n\t\n" * 950, ("blank.txt", "only whitespace")),
        ("blank.txt.gz", gzip.compress(b"\n" * 5000, mtime=0), ("blank.txt.gz", "only whitespace after gzip")),
        ("nothing.gz", gzip.compress(b"", mtime=0), ("nothing.gz", "empty after gzip")),
    ],
)
def test_empty_or_whitespace_only_is_refused(tmp_path, name, content, needles):
    (tmp_path / name).write_bytes(content)
    _refused(tmp_path, tmp_path / name, *needles)


def test_whitespace_only_held_out_tail_is_refused(tmp_path):
    (tmp_path / "tail.txt").write_bytes(b"some real text here\n" * 50 + b"\n" * 400)
    _refused(tmp_path, tmp_path / "tail.txt", "eval split", "tail.txt", "--eval-data")


def test_truncated_gzip_is_refused_as_damaged(tmp_path, sample_text):
    packed = gzip.compress(sample_text(2000).encode())
    (tmp_path / "cut.txt.gz").write_bytes(packed[: len(packed) // 2])
    _refused(tmp_path, tmp_path / "cut.txt.gz", "cut.txt.gz", "damaged or truncated gzip")


def test_a_data_error_is_a_value_error():
    assert issubclass(DataError, ValueError)  # the trainer turns ValueError into one line
