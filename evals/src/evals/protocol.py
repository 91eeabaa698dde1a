"""`python -m evals.protocol --text PATH --out DIR`: run (or continue) the claims protocol suite and report it.

Runs every run of `evals.protocol_suite` in order with the suite machinery (`evals.suite_runs`: finished runs are
skipped, interrupted ones resume from their newest checkpoint), scores each finished run's final model once on
the generated source's test stream (`test_score.json` in its folder), then writes `DIR/results.json` (the raw
records) and `DIR/results.md` (`evals.protocol_report`). `--report-only` rewrites the report from what is there.

Exit codes: 0 done, 1 interrupted (run it again to continue), 2 bad input.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import pathlib
import shlex
import sys
import typing
from typing import Literal

from train.cli_parse import parse
from train.xla_env import avoid_cpu_eigen_pool_hang, reexec_with_hugepage_malloc
from evals.one_line import parse_command_line, refuse

SuiteName = Literal["claims-cpu", "claims-d36", "claims-d72", "claims-wt2"]
"""claims-cpu (the generated source: both claims, every model at k·N, the joint budget), claims-d36 / claims-d72 (the
joint-budget runs at depth 36 / 72) or claims-wt2 (WikiText-2, the real-text check)"""

TEST_FILE = "test_score.json"
TEST_SEQUENCES = 256


def score_test(run_dir: pathlib.Path) -> dict:
    """Scores a finished run's final model on the test stream once (cached in `test_score.json`)."""
    path = run_dir / TEST_FILE
    if path.is_file():
        return json.loads(path.read_text())
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np
    import skipless_data

    from .perplexity import restore_model

    config, model, step = restore_model(run_dir)
    seq_len = config.model.seq_len
    info = skipless_data.prepare_dataset(config.data, config.tokenizer, None, seq_len=seq_len,
                                         max_eval_tokens=TEST_SEQUENCES * seq_len, show_progress=False)

    @eqx.filter_jit
    def row_losses(model, tokens):  # mean next-token loss of every row (all targets are real on this stream)
        logits = model(tokens[:, :-1])
        logp = jax.nn.log_softmax(logits, axis=-1)
        return -jnp.take_along_axis(logp, tokens[:, 1:, None], axis=-1)[..., 0].mean(-1)

    per_sequence = []
    for batch in skipless_data.eval_batches(info, split="test", seq_len=seq_len, batch_size=16):
        per_sequence += np.asarray(row_losses(model, jnp.asarray(batch.tokens)))[batch.mask.all(1)].tolist()
    losses = np.asarray(per_sequence)
    record = dict(step=int(step), test_loss=float(losses.mean()), test_se=float(losses.std(ddof=1) / np.sqrt(losses.size)),
                  sequences=int(losses.size), per_sequence=[round(x, 6) for x in losses.tolist()])
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(record) + "\n")
    partial.replace(path)
    return record


def score_test_text(run_dir: pathlib.Path, test_text: pathlib.Path) -> dict:
    """Scores a finished real-text run's final model on `test_text` once (cached in `test_score.json`)."""
    path = run_dir / TEST_FILE
    if path.is_file():
        return json.loads(path.read_text())
    from .perplexity import evaluate_checkpoint

    report = evaluate_checkpoint(run_dir, str(test_text))
    record = dict(step=int(report.step), test_loss=float(report.loss), test_se=None, sequences=None,
                  num_targets=int(report.num_targets), text=str(test_text))
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(record) + "\n")
    partial.replace(path)
    return record


def _suite_and_data(name: SuiteName, text: str, out: pathlib.Path, *, need_text: bool = True):
    """**Returns:** `(suite, data paths, test text or None)`; `need_text` False (reports from records alone) skips
    the checks that the training text and test.txt exist."""
    from .protocol_suite import depth36_suite, depth72_suite, protocol_suite, wikitext_suite
    from .suite_runs import DataPaths

    path = pathlib.Path(text)
    if need_text and not path.is_file():
        raise ValueError(f"--text {text}: no such file; pass WikiText-2's valid.txt (the protocol's training text).")
    deep = {"claims-cpu": protocol_suite, "claims-d36": depth36_suite, "claims-d72": depth72_suite}
    if name in deep:
        suite = deep[name]()
        return suite, DataPaths(f"generated:{path.resolve()}", None, str(out / "data")), None
    if name == "claims-wt2":
        test = path.resolve().with_name("test.txt")
        if need_text and not test.is_file():
            raise ValueError(f"--suite claims-wt2 needs test.txt next to {path}; pass the WikiText-2 valid.txt.")
        # eval None: the data package holds out the training text's last 5% — the dev split
        return wikitext_suite(), DataPaths(str(path.resolve()), None, str(out / "data")), test
    raise ValueError(f"--suite {name}: choose one of {', '.join(typing.get_args(SuiteName))}.")


def run_protocol(text: str, out: pathlib.Path, *, suite_name: SuiteName = "claims-cpu", only: list[str] | None = None,
                 command: str = "") -> dict:
    """Runs (or continues) the suite; returns `{"outcomes": {run: outcome}}` and writes the report."""
    from .suite_runs import read_status, run_specs

    suite, data, test_text = _suite_and_data(suite_name, text, out)
    (out / "runs").mkdir(parents=True, exist_ok=True)

    def score_and_report(spec, run_dir):
        if (read_status(run_dir) or {}).get("state") == "complete":
            score_test(run_dir) if test_text is None else score_test_text(run_dir, test_text)
        try:  # after every run: the page is current whenever the suite stops; a report bug never stops the runs
            write_report(out, command=command, suite=suite)
        except Exception as error:  # noqa: BLE001
            print(f"warning: report not written ({type(error).__name__}: {error}); runs go on", flush=True)

    outcomes = run_specs(suite, out, data, only=only, after_each=score_and_report)
    write_report(out, command=command, suite=suite)
    return {"outcomes": outcomes}


def write_report(out: pathlib.Path, *, command: str, suite=None) -> dict:
    """Collects the raw records and writes results.json and results.md into `out`."""
    from .protocol_report import protocol_markdown, protocol_record
    from .protocol_suite import protocol_suite

    record = protocol_record(suite or protocol_suite(), out)
    record.update(command=command, date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                  machine=f"{os.cpu_count()} CPU cores (shared)")
    for name, text in (("results.json", json.dumps(record, indent=1, sort_keys=True, default=float) + "\n"),
                       ("results.md", protocol_markdown(record))):
        partial = out / f".{name}.{os.getpid()}.tmp"  # two runners (disjoint --only lists) may write at once
        partial.write_text(text)
        partial.replace(out / name)
    return record


RECORD_FILES = ("config.json", "metrics.jsonl", "suite_status.json", TEST_FILE)


def export_records(out: pathlib.Path, target: pathlib.Path) -> int:
    """Copies every started run's raw records (`RECORD_FILES`) from `out/runs` to `target/runs` (checkpoints and
    logs stay behind). **Returns:** the number of runs copied."""
    import shutil

    copied = 0
    for run in sorted((out / "runs").iterdir()):
        if ".abandoned-" in run.name or not (run / "config.json").is_file():
            continue
        (target / "runs" / run.name).mkdir(parents=True, exist_ok=True)
        for name in RECORD_FILES:
            if (run / name).is_file():
                shutil.copy2(run / name, target / "runs" / run.name / name)
        copied += 1
    return copied



@dataclasses.dataclass(frozen=True)
class ProtocolOptions:
    """Options of `python -m evals.protocol` (each field is a flag)."""

    out: str
    """suite folder (runs/, results.json, results.md)"""
    text: str = "../shared/data/wikitext-2/valid.txt"
    """text the source is fitted to"""
    suite: SuiteName = "claims-cpu"
    """the suite: claims-cpu (generated source), claims-d36 / claims-d72 (its joint-budget runs at depth 36 / 72)
    or claims-wt2 (WikiText-2)"""
    only: str | None = None
    """comma-separated run names (none: all)"""
    report_only: bool = False
    """rewrite the report from the runs present"""
    export: str | None = None
    """copy the runs' raw records to this folder and report there"""


def parse_options(argv: list[str]) -> ProtocolOptions:
    """**Returns:** the options of a command line; raises `UsageError` (one line) for a bad one."""
    return parse(ProtocolOptions, argv, prog="python -m evals.protocol", description=__doc__.split("\n")[0])


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    avoid_cpu_eigen_pool_hang()
    args = parse_command_line(parse_options, argv)
    if args is None:
        return 2
    out = pathlib.Path(args.out)
    command = "python -m evals.protocol " + " ".join(shlex.quote(a) for a in argv)
    try:
        if args.export:
            if not (out / "runs").is_dir():
                raise ValueError(f"--export: {out} holds no runs; pass the --out of a protocol suite.")
            count = export_records(out, pathlib.Path(args.export))
            out = pathlib.Path(args.export)
            print(f"copied the records of {count} runs to {out}", flush=True)
        if args.report_only or args.export:
            if not (out / "runs").is_dir():
                raise ValueError(f"--report-only: {out} holds no runs; pass the --out of a protocol suite.")
            suite, _, _ = _suite_and_data(args.suite, args.text, out, need_text=False)
            write_report(out, command=command, suite=suite)
            print(f"wrote {out / 'results.md'}", flush=True)
            return 0
        only = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
        done = run_protocol(args.text, out, suite_name=args.suite, only=only, command=command)
    except (ValueError, FileNotFoundError) as error:
        return refuse(error)
    print(f"wrote {out / 'results.json'}, {out / 'results.md'}", flush=True)
    return 1 if "stopped" in done["outcomes"].values() else 0


if __name__ == "__main__":
    reexec_with_hugepage_malloc("evals.protocol", sys.argv[1:])
    sys.exit(main())
