"""`python -m evals.generate`: cached decoding of a trained run against greedy decoding with the full forward pass,
sampling cuts against numpy, and the one-line refusals."""

import json
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

from evals.generate import main, parse_options
from evals.generate_sampling import Sampling, filtered_logits, next_token

SEQ_LEN = 24


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from skipless_models import ModelConfig
    from train.config import TrainConfig
    from train.loop import run

    root = tmp_path_factory.mktemp("gen")
    config = TrainConfig(
        model=ModelConfig(depth=2, width=16, heads=2, mlp_width=32, seq_len=SEQ_LEN, position="rope"), data="embedded",
        tokenizer="byte", data_dir=str(root / "data"), batch_size=8, steps=4, warmup=1, lr=3e-3, eval_every=0,
        eval_batches=1, checkpoint_every=0, log_every=1, diagnostics_every=0, out=str(root / "run"))
    run(config, progress_bar=False)
    return root / "run"


def _generate(capsys, *args):
    code = main(["--json", *map(str, args)])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines() if line.strip()], err


def _greedy_full_forward(model, prompt, length):
    """The oracle: every step runs the whole sequence through the model (no cache) and takes the argmax."""
    import jax.numpy as jnp

    import equinox as eqx

    forward = eqx.filter_jit(lambda m, x: m(x))
    tokens = list(prompt)
    for _ in range(length):  # padded to the full context (one compiled shape); causal, so the padding is unseen
        window = np.zeros((1, SEQ_LEN), np.int32)
        window[0, :len(tokens)] = tokens
        logits = np.asarray(forward(model, jnp.asarray(window)))[0, len(tokens) - 1]
        tokens.append(int(np.argmax(logits)))
    return tokens[len(prompt):]


def test_greedy_batch_matches_full_forward_per_prompt(run_dir, tmp_path, capsys):
    from evals.perplexity import restore_model

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("the \nand then a long\nx\n", encoding="utf-8")
    length = 9
    code, records, err = _generate(capsys, "--checkpoint", run_dir, "--prompts", prompts, "--temperature", 0,
                                   "--length", length)
    assert code == 0, err
    _, model, _ = restore_model(run_dir)
    for record, text in zip(records, ["the ", "and then a long", "x"]):
        assert record["prompt"] == text and record["prompt_tokens"] == list(text.encode())
        assert record["tokens"] == _greedy_full_forward(model, record["prompt_tokens"], length), text
        assert record["continuation"] == bytes(record["tokens"]).decode("utf-8", errors="replace")


def test_sampling_is_seeded_and_fills_the_context(run_dir, capsys):
    runs = [_generate(capsys, "--checkpoint", run_dir, "--prompt", "ab", "--length", SEQ_LEN - 2, "--seed", seed,
                      "--top-k", 20, "--top-p", 0.9, "--temperature", 1.5)[1][0]["tokens"] for seed in (3, 3, 4)]
    assert runs[0] == runs[1] != runs[2] and len(runs[0]) == SEQ_LEN - 2


def _numpy_filter(logits, temperature, top_k, top_p):
    z = np.asarray(logits, np.float64) / temperature
    out = np.full_like(z, -np.inf)
    for row in range(z.shape[0]):
        order = sorted(range(z.shape[1]), key=lambda i: (-z[row, i], i))
        keep = order[:top_k] if top_k else order
        p = np.exp(z[row, keep] - z[row, keep].max())
        p /= p.sum()
        mass, kept = 0.0, []
        for index, prob in zip(keep, p):
            if mass >= top_p:
                break
            kept.append(index)
            mass += prob
        out[row, kept] = z[row, kept]
    return out


@pytest.mark.parametrize("temperature,top_k,top_p", [(1.0, 0, 1.0), (0.7, 3, 1.0), (1.3, 0, 0.6), (1.0, 5, 0.8),
                                                     (2.0, 1, 1.0), (1.0, 0, 0.01)])
def test_filters_match_numpy(temperature, top_k, top_p):
    import jax.numpy as jnp

    logits = np.random.default_rng(0).normal(size=(4, 12)).astype(np.float32) * 2
    got = np.asarray(filtered_logits(jnp.asarray(logits), Sampling(temperature, top_k, top_p)))
    want = _numpy_filter(logits, temperature, top_k, top_p)
    assert (np.isinf(got) == np.isinf(want)).all()
    np.testing.assert_allclose(got[np.isfinite(want)], want[np.isfinite(want)], rtol=1e-6)


def test_draws_follow_the_filtered_distribution():
    import jax
    import jax.numpy as jnp

    logits = jnp.log(jnp.asarray([[0.5, 0.3, 0.15, 0.05]]))
    keys = jax.random.split(jax.random.key(0), 20000)
    draws = np.asarray(jax.vmap(lambda k: next_token(logits, k, Sampling(1.0, 0, 0.7)))(keys))[:, 0]
    freq = np.bincount(draws, minlength=4) / len(draws)
    np.testing.assert_allclose(freq, [0.625, 0.375, 0, 0], atol=0.015)  # top-p 0.7 keeps {0.5, 0.3}, renormalised
    assert int(next_token(logits, keys[0], Sampling(0.0))[0]) == 0


@pytest.mark.parametrize("args,code,words", [
    (["--prompt", "x" * (SEQ_LEN + 1)], 2, f"longer than the model's context of {SEQ_LEN} tokens"),
    (["--prompt", "x" * 10, "--length", SEQ_LEN], 2, f"pass --length {SEQ_LEN - 10} or less"),
    (["--prompt", ""], 2, "--prompt is empty"),
    (["--prompt", "a", "--top-p", "0"], 2, "--top-p=0.0 must lie in (0, 1]"),
])
def test_bad_prompts_are_refused_in_one_line(run_dir, capsys, args, code, words):
    got, records, err = _generate(capsys, "--checkpoint", run_dir, *args)
    assert (got, records) == (code, []) and words in err and err.count("\n") == 1 and err.startswith("error: ")


def test_empty_line_in_prompts_file(run_dir, tmp_path, capsys):
    prompts = tmp_path / "p.txt"
    prompts.write_text("a\n\nb\n")
    code, _, err = _generate(capsys, "--checkpoint", run_dir, "--prompts", prompts)
    assert code == 2 and "line 2 is an empty prompt" in err


def test_not_a_run_and_no_checkpoint(run_dir, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    bare = tmp_path / "bare"
    shutil.copytree(run_dir, bare, ignore=shutil.ignore_patterns("checkpoints"))
    (bare / "checkpoints").mkdir()
    code, _, err = _generate(capsys, "--checkpoint", bare, "--prompt", "a")
    assert code == 2 and err.count("\n") == 1 and "no finished checkpoint" in err
    # as a process: exit 2, one line on stderr, no traceback
    done = subprocess.run([sys.executable, "-m", "evals.generate", "--checkpoint", str(empty), "--prompt", "a"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == "", done.stderr
    assert done.stderr.count("\n") == 1 and "no run found" in done.stderr and "Traceback" not in done.stderr


def test_command_line_defaults_and_verbatim_prompt():
    """The flags' defaults are those of the hand-written parser this replaced; "none" is a prompt, not no prompt."""
    options = parse_options(["--checkpoint", "r", "--prompt", "none"])
    assert (options.checkpoint, options.prompt, options.prompts, options.length, options.sampling, options.seed,
            options.step, options.json) == ("r", "none", None, 32, Sampling(1.0, 0, 1.0), 0, None, False)
    options = parse_options(["--checkpoint", "r", "--prompts", "p.txt", "--temperature", "0.8", "--top-k", "40",
                             "--top-p", "0.9", "--seed", "1", "--step", "7", "--length", "5", "--json"])
    assert (options.prompts, options.sampling, options.seed, options.step, options.length, options.json) == (
        "p.txt", Sampling(0.8, 40, 0.9), 1, 7, 5, True)


@pytest.mark.parametrize("args,words", [
    (["--checkpoint", "r"], "pass exactly one of --prompt TEXT or --prompts FILE"),
    (["--checkpoint", "r", "--prompt", "a", "--prompts", "p.txt"],
     "pass exactly one of --prompt TEXT or --prompts FILE"),
    (["--checkpoint", "r", "--prompt", "a", "--top-k", "abc"], "--top-k"),
    (["--checkpoint", "r", "--prompt", "a", "--length", "1.5"], "--length"),
    (["--checkpoint", "r", "--prompt", "a", "--temperature", "-1"], "--temperature=-1.0 must be >= 0"),
    (["--prompt", "a"], "--checkpoint"),
    (["--checkpoint", "r", "--prompt", "a", "--lenght", "3"], "--lenght"),
])
def test_bad_command_lines_are_one_line_exit_2(capsys, args, words):
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: ") and err.count("\n") == 1 and words in err, err


def test_bad_command_line_as_a_process():
    done = subprocess.run([sys.executable, "-m", "evals.generate", "--checkpoint", "r", "--prompt", "a", "--top-p",
                           "x"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == "" and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: ") and "--top-p" in done.stderr and "Traceback" not in done.stderr
