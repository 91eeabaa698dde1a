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
