"""Resume compares resolved values; a config.json from before configs were saved resolved still resumes."""

import json

import pytest
import sigprop

import skipless_models
from train.cli import config_from_args, parse_args
from train.config import TrainConfig, unresolved_note
from train.resume_check import check_resume, resume_conflicts

TINY = ["--depth", "2", "--width", "32", "--heads", "4", "--mlp-width", "64", "--seq-len", "16", "--tokenizer", "byte"]


def _first_run(tmp_path):
    config, _ = config_from_args(parse_args([*TINY, "--out", str(tmp_path)]))
    config.save_json(tmp_path / "config.json")  # what the trainer writes: TrainConfig.to_dict()
    return config, json.loads((tmp_path / "config.json").read_text())


def test_a_changed_default_does_not_change_a_resumed_run(tmp_path, monkeypatch):
    first, saved = _first_run(tmp_path)
    built_with = first.model.resolved_knobs()  # the oracle: computed before the defaults change
    monkeypatch.setattr(sigprop, "DEFAULT_GAMMA_FINAL", 0.02)
    monkeypatch.setattr(sigprop, "DEFAULT_ETA", 0.2)
    resumed, _ = config_from_args(parse_args(["--resume", "--out", str(tmp_path)]))
    assert resumed.model.resolved_knobs() == built_with != first.model.resolved_knobs()
    assert not resume_conflicts(saved, resumed.to_dict())
    # a new run does take the new default, and resuming the old run with it is refused in one line
    with pytest.raises(ValueError) as error:
        check_resume(saved, resumed.replace(model=resumed.model.replace(gamma_final=None)).to_dict(), source="run")
    assert "--gamma-final 0.2 (not 0.02)" in str(error.value) and "\n" not in str(error.value)


def _old_config(tmp_path):
    """A config.json as written before configs were saved resolved: nulls and "auto" for the knobs."""
    _, saved = _first_run(tmp_path)
    saved["model"].update(init="auto", tat_eta=None, gamma_final=None, rho_final=None)
    (tmp_path / "config.json").write_text(json.dumps(saved))
    return saved


def test_an_old_config_resumes_with_todays_defaults_and_says_so_once(tmp_path, capsys):
    old = _old_config(tmp_path)
    resumed, _ = config_from_args(parse_args(["--resume", "--out", str(tmp_path), "--steps", "300"]))
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("note: ") and "gamma_final 0.2" in err[0] and "init sigprop" in err[0]
    knobs = skipless_models.preset("cpu-tiny").replace(depth=2).resolved_knobs()
    assert resumed.to_dict()["model"]["gamma_final"] == knobs["gamma_final"]
    assert resumed.to_dict()["model"]["tat_eta"] == knobs["tat_eta"]
    assert not resume_conflicts(old, resumed.to_dict())  # the old file (and its checkpoints' copy) agree
    assert unresolved_note(resumed.to_dict(), "x") is None  # saved again, it holds every value


def test_an_old_config_and_an_explicit_other_value_conflict(tmp_path):
    old = _old_config(tmp_path)
    new = TrainConfig.from_dict(old)
    changed = new.replace(model=new.model.replace(gamma_final=0.5)).to_dict()
    assert [c[0] for c in resume_conflicts(old, changed)] == ["--gamma-final"]
