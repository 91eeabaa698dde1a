"""`python -m evals.compare_runs`: its command line (positional run folders, `--out`, `--title`), one-line refusals,
and the figure it writes for two run folders."""

import json
import pathlib
import subprocess
import sys

import pytest

from evals.compare_runs import main, parse_options


def _fake_run(root: pathlib.Path, name: str, block: str, attention: str) -> pathlib.Path:
    run = root / name
    run.mkdir(parents=True)
    run.joinpath("config.json").write_text(json.dumps({"model": {"block": block, "attention": attention}, "lr": 1e-3}))
    lines = [{"step": s, "loss": 5.0 - 0.1 * s} for s in range(1, 11)] + [{"step": 10, "eval_loss": 4.2}]
    run.joinpath("metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return run


def test_command_line_positionals_and_flags():
    options = parse_options(["runs/a", "runs/b", "--out", "c.png"])
    assert (options.runs, options.out, options.title) == ((pathlib.Path("runs/a"), pathlib.Path("runs/b")),
                                                           pathlib.Path("c.png"), "runs")
    options = parse_options(["--title", "cpu-tiny, embedded corpus", "--out", "c.png", "runs/a"])
    assert (options.runs, options.title) == ((pathlib.Path("runs/a"),), "cpu-tiny, embedded corpus")


@pytest.mark.parametrize("args,words", [
    (["--out", "c.png"], "pass at least one run folder"),
    (["runs/a"], "--out"),
    (["runs/a", "--out"], "--out"),
    (["runs/a", "--out", "c.png", "--tilte", "x"], "--tilte"),
])
def test_bad_command_lines_are_one_line_exit_2(capsys, args, words):
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: ") and err.count("\n") == 1 and words in err, err


def test_writes_the_figure_and_refuses_a_non_run(tmp_path):
    preln = _fake_run(tmp_path, "preln", "preln", "standard")
    espa = _fake_run(tmp_path, "espa", "vanilla", "espa")
    out = tmp_path / "figs" / "compare.png"
    done = subprocess.run([sys.executable, "-m", "evals.compare_runs", str(preln), str(espa), "--out", str(out),
                           "--title", "two runs"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"wrote {out}" and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = subprocess.run([sys.executable, "-m", "evals.compare_runs", str(tmp_path / "figs"), "--out",
                          str(tmp_path / "x.png")], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "not a train.main run folder" in bad.stderr
    assert "Traceback" not in bad.stderr and not (tmp_path / "x.png").exists()
