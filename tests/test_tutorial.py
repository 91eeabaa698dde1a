"""docs/tutorial.md cannot rot: every command of its ```bash blocks runs here (shortened) and produces the
figures the page shows.

How the page's commands are shortened (applied to each command, in this order):
- `uv run python` → this interpreter (the workspace environment the tests run in);
- `python -m train.main ...` gets `TRAIN_SHORT` appended (a tiny model for 3 steps; later flags win);
- `python -m evals.signal_prop ...` gets `SIGNAL_PROP_SHORT` appended (4 layers, width 32, T 16);
- `--length 64` → `--length 8` (the tiny model's context is 32 tokens).
`uv sync --all-packages` is not run here: CI (`.ci/run`) runs exactly that command. Everything runs in a fresh
folder holding the page's `docs/figures/` (empty) and the repository's `evals/` (read-only use), so nothing
committed is touched.
"""

import json
import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "tutorial.md"
RUN_BY_CI = ("uv sync --all-packages",)
TRAIN_SHORT = ("--steps 3 --warmup 0 --depth 2 --width 16 --heads 2 --mlp-width 32 --seq-len 32 --batch-size 4 "
               "--eval-every 0 --eval-batches 1 --log-every 1 --checkpoint-every 0 --progress false")
SIGNAL_PROP_SHORT = "--depth 4 --width 32 --seq-len 16"


def page_commands(text: str) -> list[str]:
    """The commands of the page's ```bash blocks, one per line (comments and blank lines dropped)."""
    blocks = re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M)
    lines = [line.split(" #")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def shorten(command: str) -> str:
    command = re.sub(r"^uv run python ", shlex.quote(sys.executable) + " ", command)
    if " -m train.main" in command:
        command += " " + TRAIN_SHORT
    if " -m evals.signal_prop" in command:
        command += " " + SIGNAL_PROP_SHORT
    return command.replace("--length 64", "--length 8")


def test_page_shape():
    """The page has the five parts, and each figure it shows is committed next to it."""
    commands = page_commands(PAGE.read_text())
    for tool in ("train.main", "evals.generate", "evals.signal_prop", "evals.compare_runs", "evals.reproduce",
                 "evals.protocol"):
        assert any(f"-m {tool}" in c for c in commands), tool
    for figure in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", PAGE.read_text()):
        assert (PAGE.parent / figure).is_file(), figure
    assert all(c in (REPO / ".ci" / "run").read_text() for c in commands if c in RUN_BY_CI)


@pytest.mark.slow
def test_every_command_runs_and_draws_the_figures(tmp_path):
    text = PAGE.read_text()
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert figures
    (tmp_path / "docs" / "figures").mkdir(parents=True)
    (tmp_path / "evals").symlink_to(REPO / "evals", target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB")}
    for command in page_commands(text):
        if command in RUN_BY_CI:
            continue
        done = subprocess.run(shorten(command), shell=True, cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, f"{command}\n{done.stderr[-3000:]}"
        if "-m evals.generate" in command:
            assert done.stdout.startswith("the ") and len(done.stdout.strip()) > len("the ")
    for figure in figures:  # drawn by the commands, in this fresh folder
        png = (tmp_path / "docs" / figure).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000, figure
    # --report-only rebuilt the committed results from the raw records alone
    rebuilt = json.loads((tmp_path / "runs" / "tutorial-cpu-small" / "results.json").read_text())
    committed = json.loads((REPO / "evals" / "results" / "cpu-small" / "results.json").read_text())
    drop = lambda d: {k: v for k, v in d.items() if k not in ("command", "date")}  # noqa: E731
    assert drop(rebuilt) == drop(committed)
    # and a claims table of evals/RESULTS.md (the source line needs the text the source was fitted to; not compared)
    rebuilt = json.loads((tmp_path / "runs" / "tutorial-claims-d36" / "results.json").read_text())
    committed = json.loads((REPO / "evals" / "results" / "claims-d36" / "results.json").read_text())
    drop = lambda d: {k: v for k, v in d.items() if k not in ("command", "date", "source")}  # noqa: E731
    assert drop(rebuilt) == drop(committed) and rebuilt["joint"]["d36-vsi"]["test_mean"] > 0
