"""Behaviour pinned bit for bit: four small node runs and three item runs against ``tests/golden/*.json``.

The resume test compares two runs of the same code, so it cannot see a change
of behaviour; these files can.  They were written by
``python tests/golden/make_golden.py`` (float64, one torch thread, seeds 0 and
1) and every deterministic metric must come out identical — not close.  A
deliberate change of behaviour regenerates them in its own commit.
"""
import importlib.util
import json
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent / "golden"
_spec = importlib.util.spec_from_file_location("make_golden", HERE / "make_golden.py")
make_golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_golden)


def _same(a, b) -> bool:
    """Equal, or both NaN (a metric that does not apply)."""
    return a == b or (isinstance(a, float) and isinstance(b, float) and a != a and b != b)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted([*make_golden.RUNS, *make_golden.ITEM_RUNS]))
def test_metrics_bit_equal_to_golden(name, tmp_path):
    want = json.loads((HERE / f"{name}.json").read_text())
    got = json.loads(json.dumps(make_golden.run_one(name, tmp_path), sort_keys=True))
    assert len(got) == len(want) == 2
    for g, w in zip(got, want):
        assert sorted(g) == sorted(w), (name, sorted(set(g) ^ set(w)))
        diff = {k: (g[k], w[k]) for k in w if not _same(g[k], w[k])}
        assert not diff, (name, diff)
