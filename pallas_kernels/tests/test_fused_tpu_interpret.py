"""The Mosaic (TPU) kernels in TPU interpret mode against the XLA reference: forward and all gradients."""

from __future__ import annotations

import pytest

F32_TOL = 2e-5


@pytest.mark.parametrize("source", ["none", "array", "espa", "uspa"])
def test_tpu_kernels_match_reference(check, problem, source):
    # T = 200 is ragged (padded to 256, two tiles of 128); B1TT exercises a bias broadcast over heads.
    args, cot = problem(21, 2, 200, 2, 32, source, bias_shape="B1TT")
    check(source, args, cot, atol=F32_TOL, backend="tpu", interpret=True)
