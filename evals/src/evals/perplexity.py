"""`python -m evals.perplexity --checkpoint DIR --data PATH`: loss, perplexity and bits of a checkpoint.

`DIR` is a run folder of `python -m train.main` (or its `checkpoints/` folder). `PATH` is a text
file, a folder of text files, or "embedded": the eval split of the generated corpus, whose exact
entropy rate gives the gap to the best achievable loss. Text is tokenised with the run's own
tokenizer. Windows are those of the trainer's evaluation: window w holds tokens
[w·T, w·T + T + 1), so every token after the first is predicted exactly once. T is the run's `seq_len`, or
`--seq-len`: SPA attention is generated at any length, so a model can be scored at a longer context than it
was trained at (learned position embeddings exist only up to the training length).
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
import sys
from typing import Any

from evals.one_line import parse_command_line
from train.cli_parse import parse
from train.xla_env import avoid_cpu_eigen_pool_hang

import numpy as np
from jaxtyping import Bool, Int

LN2 = math.log(2.0)


@dataclasses.dataclass(frozen=True)
class PerplexityReport:
    """**Fields:** `loss` (nats per token), `perplexity` (e^loss), `bits_per_token`, `bits_per_byte`
    (`None` when the byte count is unknown), `num_targets`, `step` (of the checkpoint),
    `entropy_rate` and `gap_to_entropy_rate` (nats per token; embedded corpus only)."""

    loss: float
    perplexity: float
    bits_per_token: float
    bits_per_byte: float | None
    num_targets: int
    step: int
    entropy_rate: float | None = None
    gap_to_entropy_rate: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def eval_windows(tokens_N: Int[np.ndarray, " N"], seq_len: int) -> tuple[Int[np.ndarray, "W Tp1"], Bool[np.ndarray, "W T"]]:
    """Cuts a token stream into windows of `seq_len + 1` that share one boundary token.

    **Arguments:** `tokens_N` int `[N]` (N ≥ 2); `seq_len` T.

    **Returns:** `(windows [W, T+1] int32, mask [W, T] bool)`; the last window is zero-padded and
    its mask is False past the stream's end.
    """
    tokens = np.asarray(tokens_N, np.int32).ravel()
    if tokens.size < 2:
        raise ValueError(f"the evaluation text has {tokens.size} tokens; it needs at least 2.")
    count = -(-(tokens.size - 1) // seq_len)
    padded = np.zeros(count * seq_len + 1, np.int32)
    padded[: tokens.size] = tokens
    starts = np.arange(count) * seq_len
    windows = padded[starts[:, None] + np.arange(seq_len + 1)[None, :]]
    mask = (starts[:, None] + np.arange(1, seq_len + 1)[None, :]) < tokens.size
    return windows, mask


def run_folder(checkpoint: str | pathlib.Path) -> pathlib.Path:
    """**Returns:** the run folder of `--checkpoint` (the folder itself or the parent of `checkpoints/`)."""
    path = pathlib.Path(checkpoint)
    for candidate in (path, path.parent):
        if (candidate / "config.json").is_file() and (candidate / "checkpoints").is_dir():
            return candidate
    raise ValueError(f"--checkpoint {checkpoint}: no run found (needs config.json and checkpoints/); "
                     "pass the --out folder of a train.main run.")


def restore_model(run_dir: pathlib.Path, step: int | None = None):
    """Rebuilds a run's model from its config and newest verified (or given) checkpoint on one device.

    Nothing in the run folder is created, moved or changed: a newest step that fails its checksums
    is skipped with a `CheckpointFallbackWarning` and left where it is.

    **Returns:** `(config, model, step)`.
    """
    import equinox as eqx
    from skipless_checkpoint import Checkpointer
    from train.config import TrainConfig
    from train.mesh import make_mesh
    from train.optim import make_optimizer
    from train.state import abstract_state, describe_model, state_shardings

    import jax

    config = TrainConfig.load_json(run_dir / "config.json")
    mesh = make_mesh(1, 1)
    setup = describe_model(config.model, mesh, jax.random.key(config.seed))
    optimizer = make_optimizer(config, setup.labels)
    target = abstract_state(setup, optimizer, state_shardings(setup, optimizer, mesh))
    checkpointer = Checkpointer(run_dir / "checkpoints", read_only=True)  # reads; never moves a file
    try:
        restored = checkpointer.restore(target, step=step)
    finally:
        checkpointer.close()
    return config, eqx.combine(restored.arrays.params, setup.static), restored.step


def _run_dataset(config):
    import skipless_data

    data = None if config.data == "embedded" else config.data
    return skipless_data.prepare_dataset(data, config.tokenizer, config.data_dir, eval_data=config.eval_data,
                                         text_field=config.text_field, show_progress=False)


def run_tokenizer(config):
    """The run's own tokenizer: bytes need nothing; BPE is read from the run's prepared data folder."""
    import skipless_data

    if skipless_data.parse_tokenizer_spec(config.tokenizer).kind == "byte":
        return skipless_data.load_tokenizer(config.tokenizer)
    return skipless_data.load_tokenizer(config.tokenizer, _run_dataset(config).path)


def eval_tokens(config, data: str) -> tuple[np.ndarray, int | None, float | None]:
    """The tokens to score, their UTF-8 byte count and (embedded corpus only) the entropy rate.

    **Arguments:** `config` (the run's `TrainConfig`), `data` ("embedded", a file or a folder).

    **Returns:** `(tokens [N] int32, num_bytes or None, entropy_rate per token or None)`.
    """
    import skipless_data

    if data == "embedded":
        if config.data != "embedded":
            raise ValueError("--data embedded: this run was trained on other text, so its tokenizer does not "
                             "match the embedded corpus; pass a text file instead.")
        info = _run_dataset(config)
        return skipless_data.split_tokens(info, "eval"), int(info.num_bytes["eval"]), info.entropy_rate
    path = pathlib.Path(data)
    files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise ValueError(f"--data {data}: no such text file or folder; pass a file, a folder, or 'embedded'.")
    tokenizer = run_tokenizer(config)
    lines = [line for f in files for line in f.read_text(encoding="utf-8").splitlines(keepends=True)]
    pieces = tokenizer.encode_batch(lines) if lines else []
    tokens = np.concatenate(pieces).astype(np.int32) if pieces else np.zeros(0, np.int32)
    return tokens, sum(len(line.encode("utf-8")) for line in lines), None


def mean_loss(model, tokens_N: np.ndarray, seq_len: int, batch_size: int) -> tuple[float, int]:
    """Token-weighted mean next-token loss over `eval_windows(tokens_N, seq_len)`.

    **Returns:** `(loss in nats per token, number of targets)`.
    """
    import equinox as eqx
    import jax.numpy as jnp
    import skipless_models

    @eqx.filter_jit
    def summed(model, tokens, mask):
        loss, aux = skipless_models.loss_fn(model, tokens, mask)
        return loss * aux["n_tokens"], aux["n_tokens"]

    windows, mask = eval_windows(tokens_N, seq_len)
    total, count = 0.0, 0.0
    for start in range(0, len(windows), batch_size):
        rows, rows_mask = windows[start:start + batch_size], mask[start:start + batch_size]
        pad = batch_size - len(rows)  # one compiled shape for every batch
        rows = np.concatenate([rows, np.zeros((pad, rows.shape[1]), np.int32)])
        rows_mask = np.concatenate([rows_mask, np.zeros((pad, rows_mask.shape[1]), bool)])
        s, n = summed(model, jnp.asarray(rows), jnp.asarray(rows_mask, jnp.float32))
        total, count = total + float(s), count + float(n)
    return total / count, int(count)


def evaluate_checkpoint(checkpoint: str | pathlib.Path, data: str, *, batch_size: int | None = None,
                        step: int | None = None, seq_len: int | None = None) -> PerplexityReport:
    """Scores a checkpoint on a text (see the module docstring).

    **Arguments:** `checkpoint` (run folder), `data` ("embedded", a file or a folder), `batch_size`
    (default the run's), `step` (default the newest readable checkpoint), `seq_len` (window length T,
    default the run's).

    **Returns:** a `PerplexityReport`.
    """
    config, model, restored_step = restore_model(run_folder(checkpoint), step)
    tokens, num_bytes, entropy_rate = eval_tokens(config, data)
    loss, count = mean_loss(model, tokens, seq_len or config.model.seq_len, batch_size or config.batch_size)
    bits_per_byte = None
    if num_bytes:  # the targets cover all tokens but the first: scale the bytes alike
        bits_per_byte = loss * count / LN2 / (num_bytes * count / max(len(tokens), 1))
    return PerplexityReport(
        loss=loss, perplexity=math.exp(loss), bits_per_token=loss / LN2, bits_per_byte=bits_per_byte,
        num_targets=count, step=restored_step, entropy_rate=entropy_rate,
        gap_to_entropy_rate=None if entropy_rate is None else loss - entropy_rate,
    )


@dataclasses.dataclass(frozen=True)
class PerplexityOptions:
    """Options of `python -m evals.perplexity` (each field is a flag)."""

    checkpoint: str
    """run folder of train.main (or its checkpoints/)"""
    data: str
    """text file, folder of text files, or 'embedded'"""
    batch_size: int | None = None
    """windows per batch (none: the run's)"""
    step: int | None = None
    """checkpoint step (none: the newest)"""
    seq_len: int | None = None
    """context length of the scored windows (none: the run's; longer works for SPA)"""
    json: bool = False
    """print the report as JSON"""


def main(argv: list[str] | None = None) -> int:
    avoid_cpu_eigen_pool_hang()  # before JAX starts (see train.xla_env)
    args = parse_command_line(lambda args: parse(PerplexityOptions, args, prog="python -m evals.perplexity",
                                                 description=__doc__.split("\n")[0]), argv)
    if args is None:
        return 2
    from skipless_checkpoint import CheckpointIntegrityError

    from evals.one_line import announce_checkpoint_fallbacks, refuse

    try:
        if args.batch_size is not None and args.batch_size < 1:
            raise ValueError(f"--batch-size={args.batch_size} must be a positive integer.")
        if args.seq_len is not None and args.seq_len < 1:
            raise ValueError(f"--seq-len={args.seq_len} must be a positive integer.")
        with announce_checkpoint_fallbacks():
            report = evaluate_checkpoint(args.checkpoint, args.data, batch_size=args.batch_size, step=args.step,
                                         seq_len=args.seq_len)
    except (CheckpointIntegrityError, ValueError, FileNotFoundError) as error:
        return refuse(error)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    print(f"checkpoint step {report.step}, {report.num_targets} target tokens")
    print(f"loss            {report.loss:.4f} nats/token")
    print(f"perplexity      {report.perplexity:.3f}")
    print(f"bits per token  {report.bits_per_token:.4f}")
    if report.bits_per_byte is not None:
        print(f"bits per byte   {report.bits_per_byte:.4f}")
    if report.entropy_rate is not None:
        print(f"entropy rate    {report.entropy_rate:.4f} nats/token (gap {report.gap_to_entropy_rate:+.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
