import importlib.util

import numpy as np
import pytest

from skipless_data import load_tokenizer, prepare_dataset, split_tokens

HAS_DATASETS = importlib.util.find_spec("datasets") is not None
needs_datasets = pytest.mark.skipif(
    not HAS_DATASETS, reason="the optional 'datasets' library (extra 'hf') is not installed"
)


@needs_datasets
def test_hf_text_on_local_files_matches_the_local_path(tmp_path, sample_text):
    train, evals = tmp_path / "train.txt", tmp_path / "valid.txt"
    train.write_text(sample_text(200))
    evals.write_text(sample_text(30))
    via_hf = prepare_dataset(
        "hf:text", "bpe:300", tmp_path / "hf",
        hf_data_files={"train": str(train), "validation": str(evals)}, show_progress=False,
    )
    local = prepare_dataset(
        str(train), "bpe:300", tmp_path / "local", eval_data=str(evals), show_progress=False
    )
    assert via_hf.source == "hf:text"
    for split in ("train", "eval"):
        np.testing.assert_array_equal(split_tokens(via_hf, split), split_tokens(local, split))


@needs_datasets
def test_hf_without_eval_split_holds_out_tail_rows(tmp_path, sample_text):
    path = tmp_path / "all.txt"
    path.write_text(sample_text(100))
    info = prepare_dataset(
        "hf:text", "byte", tmp_path / "out", hf_data_files=str(path), eval_fraction=0.1,
        show_progress=False,
    )
    tokenizer = load_tokenizer("byte")
    train, evals = (tokenizer.decode(split_tokens(info, s)) for s in ("train", "eval"))
    assert train + evals == sample_text(100)
    assert evals == sample_text(100)[len(train):] and evals.count("\n") == 10


@pytest.mark.skipif(HAS_DATASETS, reason="checks the message shown when 'datasets' is missing")
def test_hf_without_datasets_library_says_how_to_install(tmp_path):
    with pytest.raises(ImportError, match="optional 'datasets' library"):
        prepare_dataset("hf:wikitext:wikitext-2-raw-v1", "byte", tmp_path, show_progress=False)


@pytest.mark.parametrize("spec", ["hf:", "hf:a:b:c", "hf:name:"])
def test_bad_hf_spec(spec, tmp_path):
    with pytest.raises(ValueError, match="bad Hugging Face data spec"):
        prepare_dataset(spec, "byte", tmp_path, show_progress=False)


@needs_datasets
def test_hf_with_a_budget_streams_and_matches_the_local_path(tmp_path, sample_text, monkeypatch):
    import datasets

    train, evals = tmp_path / "train.txt", tmp_path / "valid.txt"
    train.write_text(sample_text(400))
    evals.write_text(sample_text(40))
    calls = []
    original = datasets.load_dataset
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: calls.append(k) or original(*a, **k))
    via_hf = prepare_dataset(
        "hf:text", "bpe:300", tmp_path / "hf", hf_data_files={"train": str(train), "validation": str(evals)},
        max_train_tokens=2500, max_eval_tokens=300, show_progress=False, workers=1,
    )
    assert [k.get("streaming") for k in calls] == [True]  # rows read as needed, no download first
    local = prepare_dataset(str(train), "bpe:300", tmp_path / "local", eval_data=str(evals),
                            max_train_tokens=2500, max_eval_tokens=300, show_progress=False, workers=1)
    for split in ("train", "eval"):
        np.testing.assert_array_equal(split_tokens(via_hf, split), split_tokens(local, split))
    assert via_hf.num_tokens == {"train": 2500, "eval": 300}
    # A larger budget extends the streamed split exactly like the local one.
    grown = prepare_dataset("hf:text", "bpe:300", tmp_path / "hf", hf_data_files={"train": str(train),
                            "validation": str(evals)}, max_train_tokens=4000, max_eval_tokens=300,
                            show_progress=False, workers=1)
    oracle = prepare_dataset(str(train), "bpe:300", tmp_path / "local", eval_data=str(evals),
                             max_train_tokens=4000, max_eval_tokens=300, show_progress=False, workers=1)
    np.testing.assert_array_equal(split_tokens(grown, "train"), split_tokens(oracle, "train"))


@needs_datasets
def test_streamed_hf_without_eval_split_holds_out_every_kth_row(tmp_path, sample_text):
    path = tmp_path / "all.txt"
    path.write_text(sample_text(100))
    info = prepare_dataset("hf:text", "byte", tmp_path / "out", hf_data_files=str(path), eval_fraction=0.1,
                           max_train_tokens=10**6, show_progress=False)
    rows = sample_text(100).splitlines(keepends=True)
    tokenizer = load_tokenizer("byte")
    assert tokenizer.decode(split_tokens(info, "eval")) == "".join(rows[9::10])
    assert tokenizer.decode(split_tokens(info, "train")) == "".join(r for i, r in enumerate(rows) if i % 10 != 9)
