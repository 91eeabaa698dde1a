"""A run folder written before model format 3 is refused in one line by everything that restores its checkpoints."""

import json

import jax
import pytest

from skipless_models import ModelConfig
from train.config import TrainConfig
from train.main import main


@pytest.fixture(autouse=True)
def _keep_xla_flags(monkeypatch):
    jax.devices()  # main() may set XLA_FLAGS; keep this process's devices and later tests' environment
    monkeypatch.delenv("XLA_FLAGS", raising=False)


def _old_run(tmp_path, attention, version=1):
    config = TrainConfig(model=ModelConfig(depth=2, width=16, heads=2, mlp_width=32, seq_len=16, attention=attention),
                         data="embedded", tokenizer="byte", out=str(tmp_path / "run"))
    saved = config.to_dict()
    assert saved["model"].pop("format_version") == 3
    if version > 1:  # format 1: what config.json held before format versions
        saved["model"]["format_version"] = version
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    path = tmp_path / "run" / "config.json"
    path.write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n")
    return path


@pytest.mark.parametrize("attention, version", [("espa", 1), ("standard", 1), ("espa", 2)])
def test_old_runs_are_refused_in_one_line_and_left_alone(tmp_path, capsys, attention, version):
    path = _old_run(tmp_path, attention, version)
    before = path.read_text()
    with pytest.raises(ValueError, match=f"model format {version}"):
        TrainConfig.load_json(path)
    assert main(["--resume", "--out", str(path.parent)]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and f"model format {version}" in lines[0] and "format 3" in lines[0]
    assert path.read_text() == before


def test_current_runs_load(tmp_path):
    config = TrainConfig(model=ModelConfig(depth=2, width=16, heads=2, mlp_width=32, seq_len=16), out=str(tmp_path))
    config.save_json(tmp_path / "config.json")
    assert json.loads((tmp_path / "config.json").read_text())["model"]["format_version"] == 3
    assert TrainConfig.load_json(tmp_path / "config.json") == config.replace(model=config.model.resolved())
