"""pipelines/compare.py: tables and bar chart from finished runs; INCOMPLETE runs refused."""
import importlib.util
from pathlib import Path

import pandas as pd

from hgraph.cli import parse_config
from hgraph.pipeline import run

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("compare", ROOT / "pipelines" / "compare.py")
compare = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare)

TREE = ["--gen-root-children", "3", "--gen-min-children", "2", "--gen-max-children", "3",
        "--feature-dim", "8", "--no-progress", "--no-plots", "--no-save-embeddings",
        "--epochs", "3", "--batch-size", "32"]


def test_compare_writes_table_and_chart(tmp_path):
    out = tmp_path / "r"
    a = run(parse_config([*TREE, "--out", str(out), "--encoder", "shallow", "--seed", "0",
                          "--seed", "1"])[0])
    b = run(parse_config([*TREE, "--out", str(out), "--encoder", "ramen"])[0])
    dest = tmp_path / "tables" / "cmp"
    assert compare.main([str(a.run_dir), str(b.run_dir), "--out", str(dest)]) == 0
    df = pd.read_csv(dest.with_suffix(".csv"))
    assert list(df["method"]) == ["shallow/lorentz/d10", "ramen/poincare/d10/λ=1"]
    assert df.loc[0, "recon_map"] == a.mean("recon_map")
    assert df.loc[0, "seeds"] == 2
    md = dest.with_suffix(".md").read_text()
    assert "±" in md and a.run_dir.name in md and b.run_dir.name in md
    assert dest.with_suffix(".png").stat().st_size > 1000
    (b.run_dir / "INCOMPLETE").write_text("x")
    assert compare.main([str(a.run_dir), str(b.run_dir), "--out", str(dest)]) == 2
