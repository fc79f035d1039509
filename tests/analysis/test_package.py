"""hgraph.analysis's shape: one short, documented file per analysis; no hgraph module
outside it imports it (only pipelines/ and tests/ do)."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "hgraph"


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            yield from (f"{node.module}.{a.name}" for a in node.names)


def test_nothing_in_hgraph_imports_the_analyses():
    for path in PKG.rglob("*.py"):
        if (PKG / "analysis") in path.parents:
            continue
        bad = [m for m in _imports(path) if m == "hgraph.analysis" or
               m.startswith("hgraph.analysis.")]
        assert not bad, (path, bad)


def test_files_are_short_and_say_what_they_compute():
    files = sorted((PKG / "analysis").glob("*.py"))
    assert {"seen_bias.py", "zero_shot_misses.py", "calibration.py",
            "context_features.py"} <= {f.name for f in files}
    for f in files:
        assert len(f.read_text().splitlines()) < 400, f
        assert ast.get_docstring(ast.parse(f.read_text())), f


def test_no_code_in_the_results_folder():
    assert not list((ROOT / "results").rglob("*.py"))
