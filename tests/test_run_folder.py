"""A run folder nothing can corrupt: `python -m train.main` against hostile-but-fair use.

Oracles: content checksums of the whole folder before and after (refusals change nothing), the
losses of a straight run (a fallback or fresh start continues it bit for bit: same mesh, programs
and data order), the PID of the process holding the folder, and each failure's documented exit code
with exactly one line on stderr.
"""

import json
import pathlib
import shlex
import shutil
import signal
import subprocess
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))  # pytest runs with --import-mode=importlib
from train_harness import (  # noqa: E402
    REPO, checkpoint_steps, command, env, fingerprint, losses, only_line, records, run, wait_for, zero_bytes_inside,
)


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    root = tmp_path_factory.mktemp("run_folder")
    return {"root": root, "data": root / "data", "cache": root / "jax-cache"}


@pytest.fixture(scope="module")
def straight(shared):
    """The oracle: 6 steps, checkpoints at 2, 4 and 6."""
    out = shared["root"] / "straight"
    run(command(shared["data"], out, "--steps", "6", "--checkpoint-every", "2"), shared["cache"])
    assert checkpoint_steps(out) == [2, 4, 6]
    return out


def _copy(straight, tmp_path) -> pathlib.Path:
    out = tmp_path / "run"
    shutil.copytree(straight, out)
    return out


def _resume(shared, out, *flags, expect=0):
    return run(command(shared["data"], out, "--resume", *flags, tiny=False), shared["cache"], expect=expect)


def _refused(argv, capsys) -> str:
    """Runs `train.main` in this process (a refusal needs no subprocess); returns its one error line."""
    import jax

    from train.main import main

    jax.devices()  # the backend starts before main() may set XLA_FLAGS: this process's devices stay
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2, captured.err[-3000:]
    return only_line(captured.err)


@pytest.mark.parametrize("flags, named", [
    (["--width", "64", "--attention", "uspa"], ["--width 32 (not 64)", "--attention espa (not uspa)"]),
    (["--batch-size", "4"], ["--batch-size 8 (not 4)"]),
    (["--grad-clip", "0"], ["--grad-clip 1.0 (not 0.0)", "not turn on or off"]),
])
def test_refused_resume_leaves_every_file_byte_identical(straight, tmp_path, flags, named, capsys):
    out = _copy(straight, tmp_path)
    before = fingerprint(out)
    line = _refused(["--resume", "--out", str(out), *flags], capsys)
    assert all(words in line for words in named), line
    assert fingerprint(out) == before


def test_after_a_refused_resume_a_plain_resume_continues_exactly(shared, straight, tmp_path, capsys):
    out = _copy(straight, tmp_path)
    shutil.rmtree(out / "checkpoints" / "6")  # the run as it stood at step 4
    _refused(["--resume", "--out", str(out), "--width", "64"], capsys)
    result = _resume(shared, out)
    assert "resumed from step 4" in result.stdout and result.stderr == ""
    assert losses(out) == losses(straight)


@pytest.mark.parametrize("damage", ["zeroed bytes", "no data-iterator state"])
def test_damaged_newest_checkpoint_falls_back_in_one_line(shared, straight, tmp_path, damage):
    out = _copy(straight, tmp_path)
    if damage == "zeroed bytes":
        size = {p: p.stat().st_size for p in (out / "checkpoints" / "6").rglob("*") if p.is_file()}
        changed = zero_bytes_inside(out / "checkpoints" / "6")
        assert changed.stat().st_size == size[changed]
        named = changed.name
    else:
        (out / "checkpoints" / "6" / "data" / "process_0-of-1.json").unlink()
        named = "data/process_0-of-1.json is missing"
    result = _resume(shared, out)
    line = only_line(result.stderr, prefix="warning: checkpoint step 6 fails verification")
    assert named in line and "resumed from step 4" in line
    assert "resumed from step 4" in result.stdout
    assert losses(out) == losses(straight)  # steps 5 and 6 again, bit for bit
    assert checkpoint_steps(out) == [2, 4, 6] and len(list((out / "checkpoints" / "corrupt").iterdir())) == 1


def test_no_verifying_checkpoint_is_exit_4_and_moves_nothing(shared, straight, tmp_path):
    out = _copy(straight, tmp_path)
    for step in (2, 4, 6):
        zero_bytes_inside(out / "checkpoints" / str(step))
    before = fingerprint(out)
    line = only_line(_resume(shared, out, expect=4).stderr)
    assert "no checkpoint in" in line and "verifies" in line and "step 2 fails" in line
    kept = lambda files: {k: v for k, v in files.items() if k not in (".lock", "train.log")}  # noqa: E731
    assert kept(fingerprint(out)) == kept(before)


@pytest.mark.slow  # two or three runs: 25-30 s on a shared 2-core machine
def test_one_process_per_folder_and_a_killed_holder_frees_it(shared, straight, tmp_path):
    out = _copy(straight, tmp_path)
    holder = subprocess.Popen(command(shared["data"], out, "--resume", "--steps", "100000", "--checkpoint-every", "3",
                                      tiny=False),
                              env=env(shared["cache"]), cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: max(losses(out), default=0) >= 8, holder)
        events = sorted(p.name for p in (out / "tensorboard").iterdir())
        second = _resume(shared, out, expect=6)
        line = only_line(second.stderr)
        assert f"is in use by process {holder.pid} " in line, line
        assert sorted(p.name for p in (out / "tensorboard").iterdir()) == events  # the refused one wrote nothing
        holder.kill()  # kill -9: the lock goes with the process
        holder.communicate(timeout=60)
    finally:
        if holder.poll() is None:
            holder.kill()
    newest, by_holder = checkpoint_steps(out)[-1], losses(out)
    result = _resume(shared, out, "--steps", str(newest + 1))
    assert f"resumed from step {newest}" in result.stdout
    assert not list((out / "checkpoints").glob("*.orbax-checkpoint-tmp*"))  # what the kill left is cleaned up
    last = [r for r in records(out) if "loss" in r][-1]
    assert last["step"] == newest + 1
    if newest + 1 in by_holder:  # the holder got there first: the resumed step is the same step, bit for bit
        assert last["loss"] == by_holder[newest + 1]


def test_a_start_that_ended_before_its_first_checkpoint_is_no_dead_end(shared, straight, tmp_path, capsys):
    # What a kill during start-up or before the first checkpoint leaves: the config, maybe metrics,
    # maybe the temporary folder of an interrupted first save.
    out = tmp_path / "run"
    out.mkdir()
    saved = json.loads((straight / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**saved, "out": str(out)}, indent=2))
    (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records(straight)[:2]))
    (out / "checkpoints" / "2.orbax-checkpoint-tmp" / "arrays").mkdir(parents=True)
    before = fingerprint(out)
    new_run = _refused(["--out", str(out), "--steps", "6"], capsys)
    assert f"--resume --out {out}` starts it again from step 0" in new_run
    changed = _refused(["--resume", "--out", str(out), "--width", "64"], capsys)
    assert f"remove {out} first or pass another --out" in changed
    assert fingerprint(out) == before
    result = _resume(shared, out)
    assert "yet: starting the run from step 0 with its saved config" in result.stdout and result.stderr == ""
    assert losses(out) == losses(straight)
    assert checkpoint_steps(out) == [2, 4, 6] and not list((out / "checkpoints").glob("*.orbax-checkpoint-tmp*"))


@pytest.mark.slow  # two or three runs: 25-30 s on a shared 2-core machine
def test_interrupted_start_up_is_one_line_and_the_named_command_works(shared, straight, tmp_path):
    out = tmp_path / "run"
    cmd = command(shared["data"], out, "--steps", "3")
    process = subprocess.Popen(cmd, env=env(shared["cache"]), cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().startswith("{")  # the config is printed once the folder is held
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + signal.SIGINT
    line = only_line(stderr)
    assert line.startswith("error: interrupted by SIGINT")
    if "run the same command again" in line:
        run(cmd, shared["cache"])
    else:
        assert f"--resume --out {out}" in line
        run(command(shared["data"], out, "--resume", tiny=False), shared["cache"])
    assert checkpoint_steps(out) == [3]


def _sandbox_available() -> bool:
    """A private mount namespace (`unshare -rm`) in which a small or read-only tmpfs can be mounted."""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                           capture_output=True, timeout=30)
    return probe.returncode == 0


needs_sandbox = pytest.mark.skipif(not _sandbox_available(), reason="needs `unshare -rm` with tmpfs mounts")


def _in_sandbox(shared, script: str) -> subprocess.CompletedProcess:
    return subprocess.run(["unshare", "-rm", "sh", "-ec", script], env=env(shared["cache"]), cwd=REPO,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow  # two runs in a mount namespace: about 45 s on a shared 2-core machine
@needs_sandbox
def test_disk_full_while_checkpointing_is_exit_5_then_resumes(shared, straight, tmp_path):
    """The run folder on a 200 KiB filesystem: config and metrics fit, the first checkpoint does not.
    After the filesystem grows (space freed), the command the error names continues the run."""
    mount, logs = tmp_path / "disk", tmp_path / "logs"
    mount.mkdir()
    logs.mkdir()
    out = mount / "run"
    first = shlex.join(command(shared["data"], out, "--steps", "6", "--checkpoint-every", "2"))
    again = shlex.join(command(shared["data"], out, "--resume", tiny=False))
    script = (f"mount -t tmpfs -o size=200k tmpfs {mount}\n"
              f"set +e; {first} >{logs}/1.out 2>{logs}/1.err; echo $? >{logs}/1.rc\n"
              f"mount -o remount,size=16m {mount}\n"
              f"{again} >{logs}/2.out 2>{logs}/2.err; echo $? >{logs}/2.rc\n"
              f"cp -r {out} {tmp_path}/after\n")
    done = _in_sandbox(shared, script)
    assert done.returncode == 0, done.stderr
    first_err = (logs / "1.err").read_text()
    assert (logs / "1.rc").read_text().strip() == "5", first_err
    line = only_line(first_err)
    assert "out of disk space" in line and "No space left on device" in line and f"--resume --out {out}" in line
    assert (logs / "2.rc").read_text().strip() == "0", (logs / "2.err").read_text()
    assert "starting the run from step 0" in (logs / "2.out").read_text()
    assert losses(tmp_path / "after") == losses(straight)


@needs_sandbox
def test_read_only_output_folder_is_exit_5(shared, straight, tmp_path):
    mount = tmp_path / "ro"
    mount.mkdir()
    cmd = shlex.join(command(shared["data"], mount / "run", "--steps", "2"))
    done = _in_sandbox(shared, f"mount -t tmpfs tmpfs {mount}; mount -o remount,ro {mount}\n"
                               f"set +e; {cmd}; echo exit=$?")
    assert "exit=5" in done.stdout, done.stderr
    assert "no permission to write" in only_line(done.stderr) and "Read-only file system" in done.stderr
