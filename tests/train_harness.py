"""Helpers for end-to-end tests that run `python -m train.main` as a subprocess on a tiny model."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
TINY = ["--depth", "2", "--width", "32", "--heads", "8", "--mlp-width", "64", "--seq-len", "32",
        "--batch-size", "8", "--log-every", "1", "--eval-batches", "1", "--eval-every", "0",
        "--diagnostics-every", "0", "--progress", "false",
        # A constant learning rate makes a run's first k steps independent of --steps.
        "--schedule", "constant", "--warmup", "0", "--lr", "2e-3"]


def env(cache: pathlib.Path) -> dict:
    values = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    values.update(JAX_PLATFORMS="cpu", JAX_COMPILATION_CACHE_DIR=str(cache),
                  JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    return values


def command(data: pathlib.Path, out: pathlib.Path, *flags: str, tiny: bool = True) -> list[str]:
    """`python -m train.main` on the tiny model (unless `tiny=False`: only `flags`, for resumes)."""
    base = [*TINY, "--data-dir", str(data)] if tiny else []
    return [sys.executable, "-m", "train.main", *base, "--out", str(out), *flags]


def run(cmd: list[str], cache: pathlib.Path, *, expect: int | None = 0, timeout: float = 480) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, env=env(cache), cwd=REPO, capture_output=True, text=True, timeout=timeout)
    if expect is not None:
        assert result.returncode == expect, f"exit {result.returncode}\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result


def only_line(stderr: str, prefix: str = "error: ") -> str:
    """Asserts stderr is exactly one line starting with `prefix` and returns it."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix), stderr[-4000:]
    assert "Traceback" not in stderr
    return lines[0]


def fingerprint(folder: pathlib.Path) -> dict[str, str]:
    """Every path under `folder` with its content's SHA-256 (folders: "dir")."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def records(out: pathlib.Path) -> list[dict]:
    path = out / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def losses(out: pathlib.Path) -> dict[int, float]:
    """The last logged loss of each step (a resumed run re-logs the steps after its checkpoint)."""
    return {r["step"]: r["loss"] for r in records(out) if "loss" in r}


def checkpoint_steps(out: pathlib.Path) -> list[int]:
    folder = out / "checkpoints"
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) if folder.exists() else []


def zero_bytes_inside(step_dir: pathlib.Path, count: int = 400) -> pathlib.Path:
    """Zeroes `count` bytes in the middle of the step's largest array data file (its size is unchanged)."""
    path = max((p for p in (step_dir / "arrays").rglob("*") if p.is_file() and p.parent.name == "d"),
               key=lambda p: p.stat().st_size)
    data = bytearray(path.read_bytes())
    start = len(data) // 2 - count // 2
    data[start:start + count] = bytes(count)
    path.write_bytes(bytes(data))
    return path


def wait_for(predicate, process: subprocess.Popen, timeout: float = 480.0) -> None:
    deadline = time.time() + timeout
    while not predicate():
        if process.poll() is not None:
            raise AssertionError(f"run exited early ({process.returncode}): {process.stderr.read()[-3000:]}")
        if time.time() > deadline:
            process.kill()
            raise AssertionError("timed out waiting for the run")
        time.sleep(0.05)
