"""`--tracker wandb`: a run's metrics, per-layer diagnostics and config as wandb recorded them (offline mode, no
network), read back from wandb's own run file and compared with `metrics.jsonl` and `config.json`."""

import json
import pathlib
import sys

import pytest

from train.metrics import read_metrics


def wandb_records(run_file: pathlib.Path):
    """The protobuf records of a wandb run file (`run-<id>.wandb`): wandb's header (7 bytes), then the LevelDB log
    format: 32 KiB blocks of chunks, each with a 7-byte header (checksum, little-endian length, type 1 = whole
    record, 2/3/4 = first/middle/last piece)."""
    from wandb.proto import wandb_internal_pb2

    data = run_file.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, piece, records = 7, 32768, b"", []
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        piece += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(piece)
            records.append(record)
            piece = b""
    return records


def _items(items):
    return {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in items}


@pytest.fixture
def offline_wandb(tmp_path, monkeypatch):
    """wandb in offline mode (no network), its files under `tmp_path/wandb_dir`."""
    pytest.importorskip("wandb")
    for name, value in {"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path / "wandb_dir"), "WANDB_SILENT": "true",
                        "WANDB_PROJECT": "skipless-test"}.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "wandb_dir").mkdir()
    return tmp_path / "wandb_dir"


def test_wandb_offline_receives_what_metrics_jsonl_holds(tmp_path, offline_wandb):
    from skipless_models import ModelConfig
    from train.config import TrainConfig
    from train.loop import run

    config = TrainConfig(
        model=ModelConfig(depth=2, width=16, heads=2, mlp_width=32, seq_len=16, attention="value_skipinit"),
        data="embedded", tokenizer="byte", data_dir=str(tmp_path / "data"), batch_size=4, steps=4, warmup=1,
        eval_every=2, eval_batches=1, checkpoint_every=0, log_every=1, diagnostics_every=2, out=str(tmp_path / "run"),
        tracker="wandb")
    run(config, progress_bar=False)

    run_files = list(offline_wandb.glob("wandb/offline-run-*/run-*.wandb"))
    assert len(run_files) == 1
    records = wandb_records(run_files[0])
    history = {}
    for record in records:
        if record.WhichOneof("record_type") == "history":
            row = _items(record.history.item)
            history.setdefault(row["_step"], {}).update(row)
    expected = {}
    for record in read_metrics(tmp_path / "run" / "metrics.jsonl"):
        row = expected.setdefault(record["step"], {})
        for name, value in record.items():
            if isinstance(value, list):
                row.update({f"{name}/{i}": v for i, v in enumerate(value)})
            elif name != "step":
                row[name] = value
    assert sorted(history) == sorted(expected) == [1, 2, 3, 4]
    assert {"layer_grad_norm/1", "skip_alpha/1", "skip_beta/0", "eval_loss"} <= set(expected[2])
    for step, row in expected.items():
        got = {k: v for k, v in history[step].items() if not k.startswith("_")}
        assert got.keys() == row.keys(), step
        for name, value in row.items():
            assert got[name] == pytest.approx(value, rel=1e-12), (step, name)

    sent = [_items(r.run.config.update) for r in records if r.WhichOneof("record_type") == "run"]
    sent += [_items(r.config.update) for r in records if r.WhichOneof("record_type") == "config"]
    config_sent = {k: v for part in sent for k, v in part.items() if k != "_wandb"}
    assert config_sent == json.loads((tmp_path / "run" / "config.json").read_text())


def test_a_resumed_run_continues_the_same_wandb_run(tmp_path, offline_wandb):
    from skipless_models import ModelConfig
    from train.config import TrainConfig
    from train.loop import run

    config = TrainConfig(
        model=ModelConfig(depth=2, width=16, heads=2, mlp_width=32, seq_len=16), data="embedded", tokenizer="byte",
        data_dir=str(tmp_path / "data"), batch_size=4, steps=4, warmup=1, eval_every=0, checkpoint_every=2,
        log_every=1, diagnostics_every=0, out=str(tmp_path / "run"), tracker="wandb")
    run(config, progress_bar=False, stop_after=2)
    run(config, resume=True, progress_bar=False)

    run_files = sorted(offline_wandb.glob("wandb/offline-run-*/run-*.wandb"))
    assert len(run_files) == 2
    ids = {f.stem.removeprefix("run-") for f in run_files}
    assert ids == {(tmp_path / "run" / "wandb_run_id.txt").read_text().strip()}
    steps = []
    for run_file in run_files:
        steps.append(sorted(_items(r.history.item)["_step"] for r in wandb_records(run_file)
                            if r.WhichOneof("record_type") == "history"))
    assert steps == [[1, 2], [3, 4]]


def test_missing_wandb_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    from train.main import main

    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb now raises ImportError
    out = tmp_path / "run"
    code = main(["--tracker", "wandb", "--out", str(out), "--steps", "2", "--depth", "2", "--width", "16"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "uv sync --package train --extra wandb" in err
    assert not out.exists()


def test_unknown_tracker_refused():
    from skipless_models import ModelConfig
    from train.config import TrainConfig

    with pytest.raises(ValueError, match="--tracker='mlflow' is not supported"):
        TrainConfig(model=ModelConfig(), tracker="mlflow")
