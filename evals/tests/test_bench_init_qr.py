"""`evals.bench_init_qr`: a tiny run reports both thread counts; bad shapes get one line and exit 2."""

import json

from evals import bench_init_qr


def test_tiny_run_writes_both_thread_counts(tmp_path, capsys):
    out = tmp_path / "qr.json"
    assert bench_init_qr.main(["--shapes", "2x16x8", "--repeats", "2", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    (row,) = report["rows"]
    assert row["shape"] == [2, 16, 8] and row["one_thread_ms"] > 0 and row["default_threads_ms"] > 0
    assert report["cores"] >= 1 and "2x16x8" in capsys.readouterr().out


def test_bad_shape_is_one_line(tmp_path, capsys):
    assert bench_init_qr.main(["--shapes", "8x512", "--out", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "LxNxK" in err[0]
    assert not (tmp_path / "x.json").exists()
