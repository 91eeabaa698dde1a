"""The end-of-run report against numbers computed here by hand."""

import math

from train.summary import bits_per_byte, bytes_per_token, summary_lines


def test_gap_in_nats_and_bits_per_byte():
    # A BPE-like split: 3,000 bytes in 1,000 tokens. Eval loss 2.5 nats/token, entropy rate 2.0.
    per_token = bytes_per_token({"eval": 3000}, {"eval": 1000})
    assert per_token == 3.0
    lines = summary_lines(out="runs/a b", headline="finished at step 40", train_loss=2.25, train_step=40,
                          eval_loss=2.5, entropy_rate=2.0, per_token_bytes=per_token, checkpoint_steps=[20, 40],
                          data="embedded", steps=40, finished=True)
    text = "\n".join(lines)
    assert lines[0] == "finished at step 40"
    assert f"eval 2.5000 nats/token = {2.5 / math.log(2) / 3:.4f} bits/byte" in text
    assert f"eval gap 0.5000 nats/token = {0.5 / math.log(2) / 3:.4f} bits/byte" in text
    assert "train 2.2500 (step 40)" in text and "steps 20, 40" in text
    assert "python -m train.main --resume --out 'runs/a b' --steps 80" in text  # quoted for the shell
    assert "tensorboard --logdir 'runs/a b'/tensorboard" in text
    assert "python -m evals.perplexity --checkpoint 'runs/a b' --data embedded" in text


def test_unknown_best_and_missing_eval_are_said_plainly():
    lines = summary_lines(out="r", headline="stopped by SIGTERM at step 3", train_loss=None, train_step=None,
                          eval_loss=None, entropy_rate=None, per_token_bytes=None, checkpoint_steps=[],
                          data="text.txt", steps=10, finished=False)
    text = "\n".join(lines)
    assert "eval: none" in text and "best possible: unknown" in text and "(steps none)" in text
    assert "--resume --out r\n" in text + "\n" and "--steps" not in text
    assert bits_per_byte(1.0, None) is None


def test_generated_source_names_its_optimum():
    lines = summary_lines(out="r", headline="finished at step 4", train_loss=4.0, train_step=4, eval_loss=3.5,
                          entropy_rate=3.1, per_token_bytes=None, checkpoint_steps=[4],
                          data="generated:valid.txt", steps=4, finished=True)
    text = "\n".join(lines)
    assert "best possible 3.1000 nats/token (optimal loss of the generated source at this T)" in text
    assert "eval gap 0.4000 nats/token" in text and "embedded corpus" not in text
