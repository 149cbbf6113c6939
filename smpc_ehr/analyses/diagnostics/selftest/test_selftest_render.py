"""The self-test's output (the generic `key: value` lines): a real finalised result,
from the plaintext battery's values, rendered without the fallback."""

from __future__ import annotations

import numpy as np

from smpc_ehr.analyses.diagnostics.selftest.analysis import layout
from tests._render import bind, render_finalised


def test_a_real_finalised_selftest_renders() -> None:
    params = bind("backend_selftest", seed="7", size="4")
    shapes = layout(4)
    opened = {name: np.arange(int(np.prod(shape)), dtype=float) for name, shape in shapes}
    lines = render_finalised("selftest", opened, params).splitlines()
    assert [line.split(":")[0] for line in lines] == [name for name, _ in shapes]
    assert "matmul: [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]]" in lines
    assert "sum: [0.0]" in lines
