"""Suite definitions: the documented train.main command of every run builds the same config as the
suite runner, and the suites hold what the issue asks for."""

import shlex

import pytest

from evals.reproduce import main, train_command
from evals.suite_runs import DataPaths, model_config, train_config
from evals.suites import METHODS, SUITES, RunSpec, Suite, get_suite


@pytest.mark.parametrize("name", sorted(SUITES))
def test_commands_match_the_runner_config(name, tmp_path):
    from train.cli import config_from_args, parse_args

    suite = get_suite(name)
    for spec in suite.runs:
        command = train_command(suite, spec, "0.0005", "/data", tmp_path)
        args = parse_args(shlex.split(command)[3:])
        from_cli, _ = config_from_args(args)
        paths = DataPaths(from_cli.data, from_cli.eval_data, from_cli.data_dir)
        direct = train_config(suite, spec, 5e-4, paths, tmp_path / "runs" / spec.name)
        expected = direct.to_dict()
        assert from_cli.preset == direct.preset == suite.preset
        assert from_cli.to_dict() | {"model": {**from_cli.model.to_dict(), "vocab_size": direct.model.vocab_size}} == expected


def test_cpu_small_has_the_issue_matrix():
    suite = get_suite("cpu-small")
    sweeps = {}
    for r in suite.runs:
        if r.role == "sweep":
            sweeps.setdefault(r.method, []).append(r.lr)
    # cpu-small is the earlier matrix: every method but those added after it ran (the norm-free residual one)
    assert set(sweeps) == set(METHODS) - {"nf-espa"} and all(len(v) >= 2 for v in sweeps.values())
    assert {r.method for r in suite.runs if r.role == "seed"} >= {"preln", "vanilla-espa", "ln-espa"}
    changed = set().union(*[set(r.model) | set(r.train) for r in suite.runs if r.role == "ablation"])
    assert changed >= {"tat_eta", "gamma_final", "kernel_budget", "lr_multipliers"}
    assert model_config(suite, suite.run("vanilla-espa-lr1e-4")).depth == 16


def test_bad_suites_are_rejected():
    with pytest.raises(ValueError, match="unknown suite"):
        get_suite("nope")
    with pytest.raises(ValueError, match="no sweep"):
        Suite("x", "", "smoke", (RunSpec("a", "preln", "sweep", lr=1e-3), RunSpec("b", "ln-espa", "seed", lr_from="ln-espa")))
    with pytest.raises(ValueError, match="exactly one"):
        RunSpec("a", "preln", "sweep")


def test_suites_read_their_preset_record_and_unknown_presets_are_errors():
    import skipless_models

    for suite in SUITES.values():
        record = skipless_models.get_preset(suite.preset)
        spec = suite.runs[0]
        config = train_config(suite, spec, 1e-3, DataPaths("embedded", None, "d"), "r")
        assert config.steps == record.run.steps and config.batch_size == record.run.batch_size
        assert (config.model.depth, config.model.width, config.model.seq_len) == (
            record.model.depth, record.model.width, record.model.seq_len)
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        Suite("x", "", "nope", (RunSpec("a", "preln", "sweep", lr=1e-3),))


def test_every_attention_kind_is_a_method_of_every_skipless_block():
    import sigprop

    for block in ("skipless_ln", "vanilla"):
        kinds = {m["attention"] for m in METHODS.values() if m["block"] == block}
        assert kinds == set(sigprop.ATTENTION_KINDS)


def test_cli_dry_run_and_errors(capsys, tmp_path):
    assert main(["--suite", "wt103-36l", "--data", "/data/wt103", "--out", str(tmp_path), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("python -m train.main") == len(get_suite("wt103-36l").runs)
    assert "<best of vanilla-espa sweep>" in printed
    assert main(["--suite", "c4-72l", "--data", "/data/c4", "--out", str(tmp_path)]) == 2
    assert "accelerator" in capsys.readouterr().err
    assert main(["--suite", "smoke", "--data", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["--suite", "nope", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice 'nope'" in err and err.count("\n") == 1
