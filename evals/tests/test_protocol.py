"""The claims protocol: its run matrix, the step-multiplier interpolation and the paired verdicts."""

import math

import pytest

from evals.protocol import main
from evals.protocol_report import crossing_multiplier, paired
from evals.protocol_suite import MULTIPLIERS, N_STEPS, SEEDS, depth36_suite, depth72_suite, protocol_suite, wikitext_suite
from evals.suite_runs import model_config


def test_multiplier_interpolates_in_log_k():
    # reaches 5.0 between k = 2 (5.2) and k = 4 (4.8): halfway in log2 k → 2^1.5
    assert crossing_multiplier({1: 5.6, 2: 5.2, 4: 4.8, 8: 4.5}, 5.0) == pytest.approx(2 ** 1.5)
    assert crossing_multiplier({1: 4.9, 2: 4.7}, 5.0) == 1.0
    assert crossing_multiplier({1: 6.0, 2: 5.5, 4: 5.2, 8: 5.1}, 5.0) is None
    assert crossing_multiplier({1: 6.0, 2: None, 4: 4.0}, 5.0) == pytest.approx(2 ** (0 + 0.5 * 2))


def test_paired_differences_call_ties_inside_the_spread():
    tie = paired([0.01, -0.02, 0.015])
    mean = (0.01 - 0.02 + 0.015) / 3
    sd = math.sqrt(sum((x - mean) ** 2 for x in (0.01, -0.02, 0.015)) / 2)
    assert tie["mean"] == pytest.approx(mean) and tie["sd"] == pytest.approx(sd)
    assert tie["low"] == pytest.approx(mean - 2 * sd / math.sqrt(3)) and tie["verdict"] == "tie"
    assert paired([0.30, 0.32, 0.31])["verdict"] == "higher"
    assert paired([-0.30, -0.32, -0.31])["verdict"] == "lower"
    assert paired([0.3])["verdict"] == "one seed: no spread"
    assert paired([None])["verdict"] == "no data"


def test_protocol_matrix_is_budget_matched_with_own_schedules():
    suite = protocol_suite()
    for method in ("vanilla-espa", "vanilla-uspa", "vanilla-vsi"):
        for k in MULTIPLIERS[1:]:
            for seed in SEEDS:
                spec = suite.run(f"{method}-k{k}-s{seed}")
                assert spec.lr_from == method and spec.train["steps"] == k * N_STEPS
                assert spec.train["warmup"] == k * suite.record.run.warmup
        assert len({r.lr for r in suite.runs if r.method == method and r.role == "sweep"}) == 2
    assert {model_config(suite, suite.run(f"vanilla-{a}-k1-s1")).attention for a in ("uspa", "vsi")} == {
        "uspa", "value_skipinit"}
    for setting in ("jb-espa-eta0.1", "jb-espa-eta0.5", "jb-uspa", "jb-vsi"):
        assert [suite.run(n).seed for n in (setting, f"{setting}-s1", f"{setting}-s2")] == list(SEEDS)
        assert model_config(suite, suite.run(f"{setting}-s2")) == model_config(suite, suite.run(setting))
    assert len({r.name for r in suite.runs}) == len(suite.runs)
    for deep, depth, seeds in ((depth36_suite(), 36, set(SEEDS)), (depth72_suite(), 72, set(SEEDS))):
        assert {model_config(deep, r).depth for r in deep.runs} == {depth} and {r.seed for r in deep.runs} == seeds
        assert {model_config(deep, r).attention for r in deep.runs} == {"standard", "espa", "uspa", "value_skipinit"}
    assert {r.seed for r in suite.runs if r.method == "preln"} == set(SEEDS)
    assert {r.seed for r in suite.runs if r.method == "nf-espa"} == set(SEEDS)
    assert model_config(suite, suite.run("nf-espa-k1-s1")).block == "nf_residual"
    joint = [model_config(suite, r) for r in suite.runs if r.name.startswith("jb-")]
    assert {m.attention for m in joint} == {"espa", "uspa", "value_skipinit"} and all(m.depth == 16 for m in joint)
    assert {r.method for r in wikitext_suite().runs} == {"preln", "vanilla-espa", "nf-espa"}


def test_bad_input_is_one_line(tmp_path, capsys):
    assert main(["--text", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and len(err.strip().splitlines()) == 1


def _fake_run(out, name, *, lr, steps, seed, dev, test, data="generated"):
    import json

    run = out / "runs" / name
    run.mkdir(parents=True)
    run.joinpath("config.json").write_text(json.dumps(dict(
        lr=lr, steps=steps, seed=seed, data=data, batch_size=16, model=dict(vocab_size=128, seq_len=16))))
    run.joinpath("metrics.jsonl").write_text(
        json.dumps(dict(step=steps, loss=dev + 0.1, tokens_per_s=256.0)) + "\n" + json.dumps(dict(step=steps, eval_loss=dev)) + "\n")
    run.joinpath("suite_status.json").write_text(json.dumps(dict(state="complete", final_step=steps, eval_loss=dev)))
    run.joinpath("test_score.json").write_text(json.dumps(dict(
        step=steps, test_loss=test, test_se=0.01, sequences=2, per_sequence=[test - 0.1, test + 0.1])))


def test_record_reads_the_multiplier_and_paired_verdicts_from_run_folders(tmp_path, monkeypatch):
    import evals.protocol_report as report

    monkeypatch.setattr(report, "_source_numbers", lambda out: {})
    suite = protocol_suite()
    n = N_STEPS
    # dev picks Pre-LN 3e-3 and E-SPA 1e-3; test: Pre-LN 4.0, E-SPA 4.4 / 4.2 / 3.9 at k = 1 / 2 / 4
    _fake_run(tmp_path, "preln-lr1e-3", lr=1e-3, steps=n, seed=0, dev=4.3, test=4.3)
    _fake_run(tmp_path, "preln-lr3e-3", lr=3e-3, steps=n, seed=0, dev=4.0, test=4.0)
    _fake_run(tmp_path, "vanilla-espa-lr3e-4", lr=3e-4, steps=n, seed=0, dev=4.6, test=4.6)
    _fake_run(tmp_path, "vanilla-espa-lr1e-3", lr=1e-3, steps=n, seed=0, dev=4.45, test=4.4)
    _fake_run(tmp_path, "vanilla-espa-k2-s0", lr=1e-3, steps=2 * n, seed=0, dev=4.2, test=4.2)
    _fake_run(tmp_path, "vanilla-espa-k4-s0", lr=1e-3, steps=4 * n, seed=0, dev=3.9, test=3.9)
    _fake_run(tmp_path, "nf-espa-lr1e-3", lr=1e-3, steps=n, seed=0, dev=4.1, test=4.05)
    _fake_run(tmp_path, "nf-espa-lr3e-3", lr=3e-3, steps=n, seed=0, dev=4.2, test=4.2)
    for s, (p, f) in {1: (4.02, 4.03), 2: (3.98, 4.01)}.items():
        _fake_run(tmp_path, f"preln-lr3e-3-s{s}", lr=3e-3, steps=n, seed=s, dev=p, test=p)
        _fake_run(tmp_path, f"nf-espa-k1-s{s}", lr=1e-3, steps=n, seed=s, dev=f, test=f)
    # U-SPA: dev picks 3e-3 (its other LR's test would reach Pre-LN at once); 4.1 at k = 1, 3.9 at k = 2
    _fake_run(tmp_path, "vanilla-uspa-lr1e-3", lr=1e-3, steps=n, seed=0, dev=4.5, test=3.0)
    _fake_run(tmp_path, "vanilla-uspa-lr3e-3", lr=3e-3, steps=n, seed=0, dev=4.3, test=4.1)
    _fake_run(tmp_path, "vanilla-uspa-k2-s0", lr=3e-3, steps=2 * n, seed=0, dev=3.9, test=3.9)
    # joint budget: E-SPA η=0.1 and U-SPA at seeds 0 and 1; U-SPA lower by 0.10 and 0.20
    for name, tests in {"jb-espa-eta0.1": (4.3, 4.4), "jb-uspa": (4.2, 4.2)}.items():
        _fake_run(tmp_path, name, lr=1e-3, steps=n, seed=0, dev=tests[0], test=tests[0])
        _fake_run(tmp_path, f"{name}-s1", lr=1e-3, steps=n, seed=1, dev=tests[1], test=tests[1])
    _fake_run(tmp_path, "knob-espa-eta0.7", lr=1e-3, steps=n, seed=0, dev=4.3, test=4.35)
    # E-SPA at the dev-chosen knob γ_L = 0.8: its knob-check run is seed 0 at N, then its own k-curve
    _fake_run(tmp_path, "knob-espa-gamma0.8", lr=1e-3, steps=n, seed=0, dev=4.35, test=4.2)
    _fake_run(tmp_path, "espa-g0.8-k2-s0", lr=1e-3, steps=2 * n, seed=0, dev=3.8, test=3.8)
    record = report.protocol_record(suite, tmp_path)
    assert set(record["knobs"]) == {"vanilla-espa-lr1e-3", "knob-espa-eta0.7", "knob-espa-gamma0.8"}
    assert record["knobs"]["vanilla-espa-lr1e-3"]["default"] and record["knobs"]["knob-espa-eta0.7"]["model"] == {
        "tat_eta": 0.7}
    assert record["best_lr"] == {"preln": 3e-3, "vanilla-espa": 1e-3, "nf-espa": 1e-3, "vanilla-uspa": 3e-3,
                                 "vanilla-vsi": None}
    seed0 = record["claim2"]["vanilla-espa"][0]
    assert seed0["curve"] == {1: 4.4, 2: 4.2, 4: 3.9, 8: None} and seed0["preln_other_lr"] == 4.3
    assert seed0["multiplier"] == pytest.approx(2 ** (1 + 2 / 3))
    tuned0 = record["claim2"]["espa-g0.8"][0]
    assert tuned0["curve"] == {1: 4.2, 2: 3.8, 4: None, 8: None} and tuned0["multiplier"] == pytest.approx(2 ** 0.5)
    assert record["skipless_at_n"]["espa-g0.8"]["mean"] == pytest.approx(0.2)
    uspa0 = record["claim2"]["vanilla-uspa"][0]
    assert uspa0["curve"] == {1: 4.1, 2: 3.9, 4: None, 8: None}
    assert uspa0["multiplier"] == pytest.approx(2 ** 0.5) and uspa0["multiplier_other_lr"] == pytest.approx(1.0)
    assert record["claim2_multiplier"]["vanilla-uspa"]["values"][0] == pytest.approx(2 ** 0.5)
    jb = record["joint"]["jb-uspa"]
    assert jb["seeds"] == [0, 1] and jb["test_mean"] == pytest.approx(4.2)
    assert jb["vs_reference"]["n"] == 2 and jb["vs_reference"]["mean"] == pytest.approx(-0.15)
    assert jb["seed0_vs_reference_sequences"]["mean"] == pytest.approx(-0.1)
    assert record["skipless_at_n"]["vanilla-espa"]["mean"] == pytest.approx(0.4)
    diffs = [0.05, 0.01, 0.03]
    assert record["claim1_diffs"] == pytest.approx(diffs)
    assert record["claim1"]["mean"] == pytest.approx(0.03) and record["claim1"]["verdict"] == paired(diffs)["verdict"]
    assert record["runs"]["preln-lr3e-3"]["train_s"] == pytest.approx(n * 16 * 16 / 256.0)
    page = report.protocol_markdown(record)
    assert "vanilla U-SPA to reach Pre-LN" in page and "| jb-uspa | 0.001 | 2 |" in page
    assert "| knob-espa-eta0.7 | tat_eta 0.7 | 4.300 (best on dev) | 4.350 |" in page
    (tmp_path / "runs" / "preln-lr3e-3" / "checkpoints").mkdir()
    from evals.protocol import export_records

    assert export_records(tmp_path, tmp_path / "copy") == 22
    copied = tmp_path / "copy" / "runs" / "preln-lr3e-3"
    assert sorted(p.name for p in copied.iterdir()) == ["config.json", "metrics.jsonl", "suite_status.json",
                                                        "test_score.json"]


def test_command_line_defaults():
    """The flags' defaults are those of the hand-written parser this replaced."""
    from evals.protocol import parse_options

    options = parse_options(["--out", "o"])
    assert (options.out, options.text, options.suite, options.only, options.report_only, options.export) == (
        "o", "../shared/data/wikitext-2/valid.txt", "claims-cpu", None, False, None)
    options = parse_options(["--suite", "claims-wt2", "--out", "o", "--report-only", "--only", "a,b", "--export", "e",
                             "--text", "t.txt"])
    assert (options.suite, options.report_only, options.only, options.export, options.text) == (
        "claims-wt2", True, "a,b", "e", "t.txt")


@pytest.mark.parametrize("args,words", [
    ([], "--out"),
    (["--out", "o", "--report-only", "yes"], "yes"),
    (["--out", "o", "--sweet", "claims-cpu"], "--sweet"),
    (["--out"], "--out"),
])
def test_bad_command_lines_are_one_line_exit_2(tmp_path, capsys, args, words):
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: ") and err.count("\n") == 1 and words in err, err


def test_every_suite_name_builds_the_suite_of_that_name(tmp_path):
    import typing

    from evals.protocol import SuiteName, _suite_and_data

    text = tmp_path / "valid.txt"
    text.write_text("the cat sat\n")
    (tmp_path / "test.txt").write_text("the dog sat\n")
    names = typing.get_args(SuiteName)
    assert [_suite_and_data(name, str(text), tmp_path)[0].name for name in names] == list(names)


def test_a_report_from_copied_records_without_the_source_text_says_so(tmp_path):
    import evals.protocol_report as report

    _fake_run(tmp_path, "preln-lr3e-3", lr=3e-3, steps=N_STEPS, seed=0, dev=4.0, test=4.0,
              data=f"generated:{tmp_path / 'absent' / 'valid.txt'}")
    source = report._source_numbers(tmp_path)
    assert "unavailable" in source and "optimal_loss" not in source
    assert "not computed here" in report._source_line(source)
    assert main(["--out", str(tmp_path), "--report-only", "--text", str(tmp_path / "absent.txt")]) == 0
    assert "not computed here" in (tmp_path / "results.md").read_text()


def test_the_source_numbers_of_an_earlier_report_are_reused_for_the_same_source(tmp_path):
    import json

    import evals.protocol_report as report

    data = f"generated:{tmp_path / 'absent' / 'valid.txt'}"
    _fake_run(tmp_path, "preln-lr3e-3", lr=3e-3, steps=N_STEPS, seed=0, dev=4.0, test=4.0, data=data)
    known = dict(data=data, vocab_size=128, seq_len=16, optimal_loss=3.5, optimal_se=0.01, bigram_loss=3.7)
    (tmp_path / "results.json").write_text(json.dumps(dict(source=known)))
    assert report._source_numbers(tmp_path) == known
    (tmp_path / "results.json").write_text(json.dumps(dict(source={**known, "seq_len": 32})))
    assert "unavailable" in report._source_numbers(tmp_path)  # another T: computed again (here: no text)
