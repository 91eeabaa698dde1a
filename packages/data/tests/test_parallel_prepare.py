"""Tokenising over worker processes gives byte-identical shards to tokenising in one process,
and two processes preparing one folder at once leave one dataset, prepared once.

Oracles: the single-process build (`workers=1`); the tokenizer's plain `encode_batch`.
"""

import gzip
import json
import os
import subprocess
import sys
import time

import numpy as np

from skipless_data import load_tokenizer, prepare_dataset
from skipless_data import tokenise_split as tokenise_module

SMALL = dict(chunk_tokens=128, records_per_shard=8, show_progress=False)


def _corpus(folder, sample_text):
    folder.mkdir()
    (folder / "a.txt").write_text(sample_text(900))
    records = "".join(json.dumps({"text": sample_text(i % 9 + 1)}) + "\n" for i in range(300))
    (folder / "b.jsonl.gz").write_bytes(gzip.compress(records.encode()))
    return folder


def _shard_bytes(info):
    return {n: open(os.path.join(info.path, n), "rb").read() for s in info.shards for n in info.shards[s]}


def test_worker_processes_give_identical_shards(tmp_path, sample_text, monkeypatch):
    monkeypatch.setattr(tokenise_module, "BATCH_CHARS", 2000)  # many batches in flight
    corpus = _corpus(tmp_path / "corpus", sample_text)
    one = prepare_dataset(str(corpus), "bpe:400", tmp_path / "one", workers=1, **SMALL)
    for workers in (2, 3):
        many = prepare_dataset(str(corpus), "bpe:400", tmp_path / f"w{workers}", workers=workers, **SMALL)
        assert _shard_bytes(many) == _shard_bytes(one)
        assert many.num_tokens == one.num_tokens and many.num_bytes == one.num_bytes
    cut = prepare_dataset(str(corpus), "bpe:400", tmp_path / "cut", workers=2, max_train_tokens=3333, **SMALL)
    cut_one = prepare_dataset(str(corpus), "bpe:400", tmp_path / "cut1", workers=1, max_train_tokens=3333, **SMALL)
    assert _shard_bytes(cut) == _shard_bytes(cut_one) and cut.resume == cut_one.resume


def test_fast_batch_encoding_matches_plain_encoding(tmp_path, sample_text):
    info = prepare_dataset(None, "bpe:300", tmp_path / "out", embedded_tokens=20_000, **SMALL)
    tokenizer = load_tokenizer(info.tokenizer, info.path)
    texts = sample_text(60).splitlines(keepends=True) + ["", "  ", "東京 🙂\n"]
    ids, lengths = tokenizer.encode_concat(texts)
    expected = tokenizer.encode_batch(texts)
    assert lengths.tolist() == [e.size for e in expected]
    np.testing.assert_array_equal(ids, np.concatenate(expected))
    assert tokenizer.token_bytes()[ids].sum() == len("".join(texts).encode())


def _prepare(corpus, out, *extra):
    return subprocess.Popen(
        [sys.executable, "-m", "skipless_data.prepare", "--data", str(corpus), "--tokenizer", "bpe:400",
         "--out", str(out), "--workers", "1", "--chunk-tokens", "256", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_two_processes_on_one_folder_prepare_once(tmp_path, sample_text):
    corpus = tmp_path / "big.txt"
    corpus.write_text(sample_text(60_000))  # a few seconds of BPE
    out = tmp_path / "out"
    first = _prepare(corpus, out)
    lock = out / ".prepare.lock"
    deadline = time.monotonic() + 60
    while not (lock.exists() and f"process {first.pid} " in lock.read_text()):
        assert time.monotonic() < deadline and first.poll() is None, first.communicate()
        time.sleep(0.02)
    second = _prepare(corpus, out)
    results = [p.communicate(timeout=300) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], results
    assert json.loads(results[0][0]) == json.loads(results[1][0])
    assert f"waiting for process {first.pid} on" in results[1][1]
    assert "tokenising" not in results[1][1]  # the second only waited and checked
    info = json.loads(results[0][0])
    listed = {"metadata.json", ".prepare.lock", *info["files"]}
    assert set(os.listdir(out)) == listed  # no duplicate, temporary or half-written files


def test_a_killed_build_leaves_nothing_that_is_used(tmp_path, sample_text):
    corpus = tmp_path / "big.txt"
    corpus.write_text(sample_text(60_000))
    out = tmp_path / "out"
    victim = _prepare(corpus, out)
    deadline = time.monotonic() + 60
    while not (out.exists() and any(n.startswith(".prepare-") for n in os.listdir(out))):
        assert time.monotonic() < deadline and victim.poll() is None
        time.sleep(0.02)
    victim.kill()  # as kill -9 would, in the middle of its build
    victim.communicate()
    assert not (out / "metadata.json").exists()
    info = prepare_dataset(str(corpus), "bpe:400", out, workers=1, chunk_tokens=256, show_progress=False)
    assert set(os.listdir(out)) == {"metadata.json", ".prepare.lock", *info.files}  # the stale build is gone
