"""The generated command line: house conventions and one-line errors (against the dataclass declarations)."""

import dataclasses
import typing

import pytest

import skipless_models
from skipless_models.config import ModelConfig
from train.cli import config_from_args, parse_args
from train.cli_parse import UsageError, _one_line, merge_repeated


def test_every_config_field_is_a_flag_with_its_declared_choices(capsys):
    with pytest.raises(SystemExit) as stop:
        parse_args(["--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    hints = typing.get_type_hints(ModelConfig)
    for field in dataclasses.fields(ModelConfig):
        assert "--" + field.name.replace("_", "-") in text, field.name
        if typing.get_origin(hints[field.name]) is typing.Literal:  # choices come from the one declaration
            assert "{" + ",".join(typing.get_args(hints[field.name])) + "}" in text.replace("\n", "").replace("│", "")


@pytest.mark.parametrize("argv, fragment", [
    (["--attention", "nope"], "invalid choice 'nope'"),
    (["--width", "x"], "--width"),
    (["--no-such-flag", "1"], "--no-such-flag"),
    (["--causal", "maybe"], "expected true or false"),
    (["--lr-mult", "gain"], "GROUP=FACTOR"),
    (["--heads", "3"], "not divisible"),
])
def test_bad_command_lines_are_one_line(argv, fragment):
    with pytest.raises(UsageError) as error:
        parse_args(argv)
    assert fragment in str(error.value) and "\n" not in str(error.value) and "│" not in str(error.value)


@pytest.mark.parametrize("text", ["true", "TRUE", "yes", "1", "on"])
def test_bools_take_a_value_in_any_case(text, tmp_path):
    args = parse_args(["--remat", text, "--use-mlp", "false", "--progress", "none", "--out", str(tmp_path)])
    assert args["model.remat"] is True and args["model.use_mlp"] is False and args["progress"] is None


def test_both_flag_forms_and_repeated_lr_mult(tmp_path):
    spaced = parse_args(["--mesh", "4x8", "--seq-len", "64", "--lr-mult", "gain=30", "--lr-mult", "head=2"])
    joined = parse_args(["--mesh=4x8", "--seq-len=64", "--lr-mult=gain=30", "head=2"])
    assert spaced == joined == {"mesh": "4x8", "model.seq_len": 64, "lr_multipliers": {"gain": 30.0, "head": 2.0}}
    assert merge_repeated(["--a", "1", "--x", "--a=2", "3"], "--a") == ["--a", "1", "2", "3", "--x"]


def test_unknown_preset_is_refused_in_one_line(tmp_path):
    with pytest.raises(ValueError, match="unknown preset 'gpt-5'; choose one of cpu-tiny"):
        config_from_args(parse_args(["--preset", "gpt-5", "--out", str(tmp_path)]))
    config, _ = config_from_args(parse_args(["--preset", "smoke", "--out", str(tmp_path)]))
    record = skipless_models.get_preset("smoke")
    assert config.model == record.model and config.steps == record.run.steps and config.batch_size == record.run.batch_size


def test_error_boxes_of_both_drawings_become_the_message():
    utf8 = ("╭─ Value error ─────╮\n│ Error parsing --width: bad 'x' │\n│ ──────── │\n│ Argument helptext: │\n"
            "│ ──────── │\n│ For full helptext, see x --help │\n╰────╯\n")
    ascii_box = " Invalid choice \n ---------- \n invalid choice 'foo' for \n argument '--a'. \n ---------- \n For full helptext \n"
    assert _one_line(utf8) == "Error parsing --width: bad 'x'"
    assert _one_line(ascii_box) == "invalid choice 'foo' for argument '--a'."
