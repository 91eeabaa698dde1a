"""`python -m evals.compare_runs RUN [RUN ...] --out PNG`: the loss curves of a few train.main runs in one figure.

Each run folder's `metrics.jsonl` (train and eval loss) and `config.json` (method and learning rate) are drawn with
the suites' own figure (`evals.plots.plot_loss_curves`, without its ablation panel): smoothed train loss and eval
loss. A run is labelled by its method: "preln", or "<block>-<attention>" (e.g. vanilla-espa).
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import sys
from typing import Annotated

import tyro
from train.cli_parse import UsageError, parse

from .measures import curves
from .plots import plot_loss_curves
from .results import _records
from evals.one_line import parse_command_line


def method_of(config: dict) -> str:
    """"preln" for the Pre-LN baseline, else "<block>-<attention>" (the suites' method names)."""
    model = config["model"]
    return "preln" if model["block"] == "preln" else f"{model['block']}-{model['attention']}"


def compare(run_dirs: list[pathlib.Path], out: pathlib.Path, title: str) -> pathlib.Path:
    """Writes the figure of `run_dirs` to `out`. **Returns:** `out`."""
    runs, headline = [], {}
    for run_dir in run_dirs:
        config_path = run_dir / "config.json"
        if not config_path.is_file() or not (run_dir / "metrics.jsonl").is_file():
            raise ValueError(f"{run_dir} is not a train.main run folder (needs config.json and metrics.jsonl)")
        config = json.loads(config_path.read_text())
        method = method_of(config)
        if method in headline:
            method = f"{method} ({run_dir.name})"
        split = curves(_records(run_dir))
        runs.append(dict(name=str(run_dir), method=method, role="comparison", label=run_dir.name, lr=config["lr"],
                         train_curve=split["train"], eval_curve=split["eval"]))
        headline[method] = [str(run_dir)]
    out.parent.mkdir(parents=True, exist_ok=True)
    return plot_loss_curves({"suite": title, "runs": runs, "headline": headline, "baselines": None}, out,
                            ablations=False)


@dataclasses.dataclass(frozen=True)
class CompareOptions:
    """Options of `python -m evals.compare_runs` (each field is a flag; `runs` are the positional arguments)."""

    runs: tyro.conf.Positional[Annotated[tuple[pathlib.Path, ...], tyro.conf.arg(
        metavar="RUN [RUN ...]", help_behavior_hint="(one or more)")]]
    """run folders of train.main"""
    out: pathlib.Path
    """the PNG to write"""
    title: str = "runs"
    """title prefix of the panels"""


def parse_options(argv: list[str]) -> CompareOptions:
    """**Returns:** the options of a command line; raises `UsageError` (one line) for a bad one (no run folder
    included)."""
    options = parse(CompareOptions, argv, prog="python -m evals.compare_runs", description=__doc__.split("\n")[0])
    if not options.runs:
        raise UsageError("pass at least one run folder of train.main (RUN [RUN ...])")
    return options


def main(argv: list[str] | None = None) -> int:
    args = parse_command_line(parse_options, argv)
    if args is None:
        return 2
    try:
        path = compare(list(args.runs), args.out, args.title)
    except ValueError as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
