"""Flags → TrainConfig: presets, overrides, per-method defaults, resume, JSON round trip, mesh flags."""

import pytest

import skipless_models
from train.cli import config_from_args, parse_args
from train.config import TrainConfig
from train.mesh import parse_mesh
from train.presets import GAIN_LR_MULTIPLIER, default_learning_rate


def _resolve(argv):
    return config_from_args(parse_args(argv))


def test_defaults_are_the_cpu_tiny_espa_preset(tmp_path):
    config, launch = _resolve(["--out", str(tmp_path / "r")])
    assert config.model == skipless_models.preset("cpu-tiny")
    assert config.model.block == "vanilla" and config.model.attention == "espa"
    assert config.mesh == "1x1" and config.optimizer == "adamw" and launch == {}
    assert config.lr == default_learning_rate(config.model)


def test_flags_override_model_and_training_fields(tmp_path):
    config, launch = _resolve([
        "--out", str(tmp_path / "r"), "--attention", "value_skipinit", "--depth", "6", "--width", "64",
        "--heads", "4", "--seq-len", "64", "--batch-size", "4", "--steps", "10", "--warmup", "1",
        "--optimizer", "sgd", "--mesh", "2x2", "--lr-mult", "embedding=0.5", "--causal", "false",
        "--tat-eta", "none", "--attention-impl", "xla", "--stop-after", "3",
    ])
    assert config.model == skipless_models.preset(
        "cpu-tiny", attention="value_skipinit", depth=6, width=64, heads=4, seq_len=64, causal=False,
        tat_eta=None, attention_impl="xla",
    )
    assert (config.batch_size, config.steps, config.warmup, config.optimizer, config.mesh) == (4, 10, 1, "sgd", "2x2")
    assert config.lr_multipliers == {"embedding": 0.5}
    assert launch == {"stop_after": 3}


def test_value_skipinit_gets_its_lower_rate_and_gain_multiplier(tmp_path):
    config, _ = _resolve(["--out", str(tmp_path / "r"), "--attention", "value_skipinit", "--depth", "18"])
    assert config.lr == pytest.approx(3e-4)
    assert config.multiplier("gain") == GAIN_LR_MULTIPLIER
    assert default_learning_rate(config.model.replace(depth=72)) == pytest.approx(1e-4)
    assert default_learning_rate(skipless_models.preset("cpu-tiny-preln")) == pytest.approx(1e-3)


def test_json_round_trip_and_resume_applies_only_explicit_flags(tmp_path):
    original, _ = _resolve(["--out", str(tmp_path), "--depth", "6", "--lr-mult", "gain=7", "--steps", "50"])
    original.save_json(tmp_path / "config.json")
    saved = original.replace(model=original.model.resolved())  # config.json holds the resolved model
    assert TrainConfig.load_json(tmp_path / "config.json") == saved
    resumed, launch = _resolve(["--resume", "--out", str(tmp_path), "--steps", "80", "--mesh", "1x2"])
    assert launch == {"resume": True}
    assert resumed == saved.replace(steps=80, mesh="1x2")


@pytest.mark.parametrize("spec, expected", [("1x1", (1, 1)), ("4x8", (4, 8)), (" 2X3 ", (2, 3))])
def test_parse_mesh(spec, expected):
    assert parse_mesh(spec) == expected


@pytest.mark.parametrize("spec", ["4", "0x2", "4x", "axb", "2x2x2"])
def test_parse_mesh_rejects(spec):
    with pytest.raises(ValueError, match="DxM"):
        parse_mesh(spec)
