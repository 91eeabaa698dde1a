"""`python -m evals.generate_bench`: its command line and one-line refusals (the benchmark itself is not run here)."""

import subprocess
import sys

import pytest

from evals.generate_bench import main, parse_options


def test_command_line_defaults():
    """The flags' defaults are those of the hand-written parser this replaced."""
    options = parse_options([])
    assert (options.preset, options.batch, options.prompt, options.rounds, options.out) == (
        "cpu-tiny", 1, 16, 3, "generate_bench.json")
    options = parse_options(["--preset", "cpu-small", "--batch", "8", "--prompt", "4", "--rounds", "2", "--out", "g"])
    assert (options.preset, options.batch, options.prompt, options.rounds, options.out) == ("cpu-small", 8, 4, 2, "g")


@pytest.mark.parametrize("args,words", [
    (["--preset", "cpu-huge"], "cpu-huge"),
    (["--batch", "0"], "--batch=0 must be a positive integer"),
    (["--rounds", "-1"], "--rounds=-1 must be a positive integer"),
    (["--prompt", "x"], "--prompt"),
    (["--prompt", "128"], "pass --prompt 127 or less"),  # cpu-tiny's context is 128 tokens
    (["--bacth", "2"], "--bacth"),
])
def test_bad_command_lines_are_one_line_exit_2(tmp_path, capsys, args, words):
    out = tmp_path / "g.json"
    assert main([*args, "--out", str(out)]) == 2
    stdout, err = capsys.readouterr()
    assert stdout == "" and err.startswith("error: ") and err.count("\n") == 1 and words in err, err
    assert not out.exists()


def test_bad_command_line_as_a_process(tmp_path):
    done = subprocess.run([sys.executable, "-m", "evals.generate_bench", "--batch", "two", "--out",
                           str(tmp_path / "g.json")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == "" and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: ") and "--batch" in done.stderr and "Traceback" not in done.stderr
