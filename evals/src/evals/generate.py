"""`python -m evals.generate --checkpoint RUN --prompt TEXT`: continue prompts with a trained model.

`RUN` is a run folder of `python -m train.main` (or its `checkpoints/` folder): the model is restored from its
newest verified checkpoint (read-only, as `evals.perplexity` does) and prompts are tokenised with the run's own
tokenizer. Decoding is incremental (`skipless_models.decode`): the prompts once, then one new position per step
against a key/value cache. Prompts of different lengths are decoded together, each row at its own positions.
Greedy (`--temperature 0`), temperature, top-k and top-p sampling; `--seed` fixes the draws. A prompt plus
`--length` new tokens must fit the model's context (its training `seq_len`); longer generations are refused.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import sys
from typing import Annotated

from train.cli_parse import UsageError, parse
from train.xla_env import avoid_cpu_eigen_pool_hang
from tyro.constructors import PrimitiveConstructorSpec

import numpy as np

from evals.generate_sampling import Sampling
from evals.one_line import parse_command_line



def _verbatim(metavar: str):
    """An optional text flag taken as written: "none" is a prompt (or a file name) here, not the absence of one."""
    return Annotated[str | None, PrimitiveConstructorSpec(
        nargs=1, metavar=metavar, instance_from_str=lambda args: args[0],
        is_instance=lambda x: x is None or isinstance(x, str), str_from_instance=lambda x: [x])]


def read_prompts(prompt: str | None, prompts_file: str | None) -> list[str]:
    """The prompts of `--prompt` or `--prompts FILE` (one per line). Raises a one-line `ValueError` for none or an
    empty one."""
    if (prompt is None) == (prompts_file is None):
        raise ValueError("pass exactly one of --prompt TEXT or --prompts FILE")
    if prompt is not None:
        if not prompt:
            raise ValueError("--prompt is empty; give the text to continue")
        return [prompt]
    path = pathlib.Path(prompts_file)
    if not path.is_file():
        raise ValueError(f"--prompts {prompts_file}: no such file; pass a text file with one prompt per line")
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines:
        raise ValueError(f"--prompts {prompts_file} holds no prompt; write one prompt per line")
    for number, line in enumerate(lines, 1):
        if not line:
            raise ValueError(f"--prompts {prompts_file}: line {number} is an empty prompt; remove it or give text")
    return lines


def check_fits(prompt_lengths: list[int], length: int, context: int) -> None:
    """Refuses (one-line `ValueError`) an empty tokenised prompt, a prompt longer than the context, or a prompt
    plus `length` new tokens past it."""
    for index, n in enumerate(prompt_lengths):
        which = f"prompt {index + 1}" if len(prompt_lengths) > 1 else "the prompt"
        if n == 0:
            raise ValueError(f"{which} has no tokens; give text to continue")
        if n > context:
            raise ValueError(f"{which} is {n} tokens, longer than the model's context of {context} tokens; "
                             "shorten it")
        if n + length > context:
            raise ValueError(f"{which} ({n} tokens) plus --length {length} is {n + length} tokens, past the model's "
                             f"context of {context}; pass --length {context - n} or less")


def generate_tokens(model, prompts: list[np.ndarray], length: int, sampling, seed: int) -> np.ndarray:
    """`length` new tokens for each prompt (int arrays), decoded together with a key/value cache.

    **Returns:** int32 `[len(prompts), length]`.
    """
    import jax
    import jax.numpy as jnp

    batch, longest = len(prompts), max(len(p) for p in prompts)
    lengths = jnp.asarray([len(p) for p in prompts], jnp.int32)
    padded = np.zeros((batch, longest), np.int32)  # left-aligned: row b's token t at position t
    for row, tokens in enumerate(prompts):
        padded[row, :len(tokens)] = tokens
    key = jax.random.key(seed)
    token, cache = _prefill(model, jnp.asarray(padded), lengths, longest + length - 1, key, sampling)
    out = [token]
    for s in range(1, length):
        token, cache = _step(model, cache, token, lengths, jnp.int32(s), key, sampling)
        out.append(token)
    return np.asarray(jnp.stack(out, axis=1))


def _jit(fn):
    import equinox as eqx

    return eqx.filter_jit(fn)  # non-array arguments (cache length, sampling) are static


def _prefill_fn(model, tokens_BxP, lengths_B, cache_length, key, sampling):
    """The prompts at positions 0 … P−1 into a fresh cache; the first new token from each row's last position."""
    import jax
    import jax.numpy as jnp
    from skipless_models.decode import decode_step, init_cache

    from evals.generate_sampling import next_token

    cache = init_cache(model, tokens_BxP.shape[0], cache_length)
    positions = jnp.broadcast_to(jnp.arange(tokens_BxP.shape[1]), tokens_BxP.shape)
    logits, cache = decode_step(model, cache, tokens_BxP, positions)
    last = jnp.take_along_axis(logits, (lengths_B - 1)[:, None, None], axis=1)[:, 0]
    return next_token(last, jax.random.fold_in(key, 0), sampling), cache


def _step_fn(model, cache, token_B, lengths_B, s, key, sampling):
    """New token s − 1 of each row at its position (prompt length + s − 1); new token s from its logits."""
    import jax
    from skipless_models.decode import decode_step

    from evals.generate_sampling import next_token

    logits, cache = decode_step(model, cache, token_B[:, None], (lengths_B + s - 1)[:, None])
    return next_token(logits[:, 0], jax.random.fold_in(key, s), sampling), cache


_prefill, _step = _jit(_prefill_fn), _jit(_step_fn)


@dataclasses.dataclass(frozen=True)
class GenerateOptions:
    """Options of `python -m evals.generate` (each field is a flag; `--temperature`, `--top-k` and `--top-p` are
    the fields of `Sampling`)."""

    checkpoint: str
    """run folder of train.main (or its checkpoints/)"""
    prompt: _verbatim("TEXT") = None  # type: ignore[valid-type]
    """the text to continue"""
    prompts: _verbatim("FILE") = None  # type: ignore[valid-type]
    """a text file with one prompt per line (decoded as one batch)"""
    length: int = 32
    """new tokens per prompt"""
    sampling: Sampling = Sampling()
    seed: int = 0
    """seed of the draws"""
    step: int | None = None
    """checkpoint step (none: the newest verified)"""
    json: bool = False
    """print one JSON record per prompt"""


def parse_options(argv: list[str]) -> GenerateOptions:
    """**Returns:** the options of a command line; raises `UsageError` (one line) for a bad one, including
    neither or both of `--prompt` and `--prompts`."""
    options = parse(GenerateOptions, argv, prog="python -m evals.generate", description=__doc__.split("\n")[0])
    if (options.prompt is None) == (options.prompts is None):
        raise UsageError("pass exactly one of --prompt TEXT or --prompts FILE")
    return options


def main(argv: list[str] | None = None) -> int:
    avoid_cpu_eigen_pool_hang()  # before JAX starts (see train.xla_env)
    args = parse_command_line(parse_options, argv)
    if args is None:
        return 2
    from skipless_checkpoint import CheckpointIntegrityError

    from evals.one_line import announce_checkpoint_fallbacks, refuse
    from evals.perplexity import restore_model, run_folder, run_tokenizer

    try:
        if args.length < 1:
            raise ValueError(f"--length={args.length} must be a positive integer")
        texts = read_prompts(args.prompt, args.prompts)
        run = run_folder(args.checkpoint)
        with announce_checkpoint_fallbacks():
            config, model, step = restore_model(run, args.step)
        tokenizer = run_tokenizer(config)
        prompts = [np.asarray(t, np.int32) for t in tokenizer.encode_batch(texts)]
        check_fits([len(p) for p in prompts], args.length, config.model.seq_len)
        new = generate_tokens(model, prompts, args.length, args.sampling, args.seed)
    except (CheckpointIntegrityError, ValueError, FileNotFoundError) as error:
        return refuse(error)
    for text, prompt, tokens in zip(texts, prompts, new):
        continuation = tokenizer.decode(tokens)
        if args.json:
            print(json.dumps({"prompt": text, "continuation": continuation, "prompt_tokens": prompt.tolist(),
                              "tokens": tokens.tolist(), "step": step}))
        else:
            print(f"{text}{continuation}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
