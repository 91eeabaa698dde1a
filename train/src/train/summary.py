"""The last lines of a run: what happened, how good it is, where everything is, what to run next."""

from __future__ import annotations

import math
import pathlib
import shlex
from typing import Mapping

LN2 = math.log(2.0)


def bytes_per_token(num_bytes: Mapping[str, int], num_tokens: Mapping[str, int], split: str = "eval") -> float | None:
    """**Returns:** UTF-8 bytes per token of a split (for bits per byte), or None when unknown."""
    nbytes, ntokens = num_bytes.get(split), num_tokens.get(split)
    return nbytes / ntokens if nbytes and ntokens else None


def bits_per_byte(nats_per_token: float, per_token_bytes: float | None) -> float | None:
    """**Returns:** a loss in nats per token as bits per byte, or None when the byte count is unknown."""
    return None if per_token_bytes is None else nats_per_token / LN2 / per_token_bytes


def summary_lines(*, out: str | pathlib.Path, headline: str, train_loss: float | None, train_step: int | None,
                  eval_loss: float | None, entropy_rate: float | None, per_token_bytes: float | None,
                  checkpoint_steps: list[int], data: str, steps: int, finished: bool) -> list[str]:
    """The end-of-run report.

    **Arguments:** `out` (run folder), `headline` (first line: how the run ended), `train_loss`
    and `train_step` (this invocation's last step, if it trained any), `eval_loss` (last, nats per
    token, or None), `entropy_rate` (best possible loss in nats per token, when known),
    `per_token_bytes` (eval split), `checkpoint_steps` (on disk), `data` (the run's `--data`),
    `steps` (the run's `--steps`), `finished` (reached `steps`).

    **Returns:** the lines, ready to print.
    """
    folder = shlex.quote(str(out))
    lines = [headline]
    train = f"train {train_loss:.4f} (step {train_step})" if train_loss is not None else "train: no step this time"
    if eval_loss is None:
        evaluation = "eval: none (no eval split longer than one window)"
    else:
        bpb = bits_per_byte(eval_loss, per_token_bytes)
        evaluation = f"eval {eval_loss:.4f} nats/token" + (f" = {bpb:.4f} bits/byte" if bpb is not None else "")
    lines.append(f"  loss         {train}, {evaluation}")
    if entropy_rate is not None:
        source = ("optimal loss of the generated source at this T" if str(data).startswith("generated")
                  else "entropy rate of the embedded corpus")
        best = f"  best possible {entropy_rate:.4f} nats/token ({source})"
        if eval_loss is not None:
            gap = eval_loss - entropy_rate
            gap_bpb = bits_per_byte(gap, per_token_bytes)
            best += f"; eval gap {gap:.4f} nats/token" + (f" = {gap_bpb:.4f} bits/byte" if gap_bpb is not None else "")
        lines.append(best)
    else:
        lines.append("  best possible: unknown for this data (known only for the embedded corpus and the generated source)")
    listed = ", ".join(map(str, checkpoint_steps)) if checkpoint_steps else "none"
    lines += [
        f"  checkpoints  {folder}/checkpoints (steps {listed})",
        f"  metrics      {folder}/metrics.jsonl",
        f"  tensorboard  {folder}/tensorboard   view: tensorboard --logdir {folder}/tensorboard",
        f"  log          {folder}/train.log",
    ]
    more = f" --steps {2 * steps}" if finished else ""
    lines.append(f"  continue     python -m train.main --resume --out {folder}{more}")
    data_arg = "embedded" if data == "embedded" else "TEXT_FILE" if data.startswith("hf:") else shlex.quote(data)
    lines.append(f"  evaluate     python -m evals.perplexity --checkpoint {folder} --data {data_arg}")
    return lines
