"""The attention benchmark: XLA-only rows keep the requested size on CPU; unknown methods are refused."""

import json

import pytest

from evals import bench_attention


def test_xla_rows_run_at_the_requested_size_and_write_json(tmp_path):
    out = tmp_path / "b.json"
    rows = bench_attention.main(["--methods", "xla_reference_bias,xla_custom_vjp_bias", "--seq-lens", "24",
                                 "--head-dims", "8", "--heads", "2", "--tokens", "48", "--dtype", "float32",
                                 "--repeats", "2", "--out", str(out)])
    assert [(r["method"], r["seq_len"], r["head_dim"]) for r in rows] == [
        ("xla_reference_bias", 24, 8), ("xla_custom_vjp_bias", 24, 8)]
    assert all(r["fwd_bwd_ms"] > 0 for r in rows)
    assert len(json.loads(out.read_text())["results"]) == 2


def test_unknown_method_is_refused(capsys):
    with pytest.raises(SystemExit):
        bench_attention.main(["--methods", "nope"])
    assert "unknown method(s) ['nope']" in capsys.readouterr().err
