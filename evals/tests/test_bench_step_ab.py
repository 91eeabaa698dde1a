"""The A/B bench of two checkouts: the baseline worker really imports the baseline's packages, rows are complete."""

import json

import pytest

from evals import bench_step_ab


@pytest.mark.slow  # about 20 s: two processes compile and run
def test_baseline_worker_imports_the_baseline_folder(tmp_path):
    baseline = tmp_path / "other"
    for folder in bench_step_ab.SRC_FOLDERS:  # another checkout: here this one's sources under another path
        (baseline / folder).parent.mkdir(parents=True, exist_ok=True)
        (baseline / folder).symlink_to(bench_step_ab.REPO / folder)
    out = tmp_path / "ab.json"
    result = bench_step_ab.main(["--baseline", str(baseline), "--cases", "tiny-espa", "--steps", "2", "--rounds", "2",
                                 "--malloc", "default", "--out", str(out)])
    assert result["b_models"].startswith(str(baseline)) and not result["a_models"].startswith(str(baseline))
    (row,) = result["rows"]
    assert row["case"] == "tiny-espa" and row["samples"] == 2
    assert row["speedup"] == pytest.approx(row["b_step_ms"] / row["a_step_ms"])
    assert json.loads(out.read_text())["rows"][0]["case"] == "tiny-espa"


def test_bad_baseline_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        bench_step_ab.main(["--baseline", "no-such-revision-xyz", "--cases", "tiny-espa"])
    assert "neither a folder nor a git revision" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench_step_ab.main(["--baseline", str(tmp_path), "--cases", "tiny-espa"])
    assert "no packages/sigprop/src folder" in capsys.readouterr().err


def test_baseline_worker_runs_with_a_train_package_older_than_its_command_line_parser(tmp_path):
    """The baseline's `train` comes first on PYTHONPATH in worker B; one from before `train.cli_parse` must do."""
    import os
    import shutil
    import subprocess
    import sys

    baseline = tmp_path / "old"
    for folder in bench_step_ab.SRC_FOLDERS:
        (baseline / folder).parent.mkdir(parents=True, exist_ok=True)
        if folder == "train/src":
            shutil.copytree(bench_step_ab.REPO / folder, baseline / folder,
                            ignore=shutil.ignore_patterns("cli_parse.py", "__pycache__"))
        else:
            (baseline / folder).symlink_to(bench_step_ab.REPO / folder)
    pythonpath = os.pathsep.join(str(baseline / f) for f in bench_step_ab.SRC_FOLDERS)
    env = dict(os.environ, PYTHONPATH=pythonpath)
    probe = subprocess.run([sys.executable, "-c", "import train.cli_parse"], env=env, capture_output=True, timeout=120)
    assert probe.returncode != 0  # the copy really lacks it
    done = subprocess.run([sys.executable, "-c", bench_step_ab.WORKER_CODE, "", "float32"], input="quit\n", env=env,
                          capture_output=True, text=True, timeout=300, cwd=bench_step_ab.REPO)
    assert done.returncode == 0, done.stderr
    ready = json.loads(done.stdout.splitlines()[0])
    assert ready["ready"] and ready["models"].startswith(str(baseline))
