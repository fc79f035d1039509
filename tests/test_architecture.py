"""The package's shape, checked from its source: the module graph has no
cycle (function-level imports included), capabilities are declared rather
than probed, and the pipeline stays a short chain of steps."""
import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "hgraph"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules():
    return {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _type_checking_lines(tree: ast.AST) -> set:
    """Lines inside ``if TYPE_CHECKING:`` blocks (imports for annotations only)."""
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for sub in node.body:
                for n in ast.walk(sub):
                    if hasattr(n, "lineno"):
                        lines.add(n.lineno)
    return lines


def import_graph():
    """module -> set of hgraph modules it imports, at module level or in a function."""
    mods = _modules()
    graph = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        skip = _type_checking_lines(tree)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps = set()
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skip:
                continue
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                # "from hgraph import manifolds" names a module; "from hgraph.nn import X" a name
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base
                           for a in node.names]
            deps |= {t for t in targets if t in mods and t != name}
        graph[name] = deps
    return graph


def find_cycle(graph):
    state, stack = {}, []

    def visit(u):
        state[u] = 1
        stack.append(u)
        for v in sorted(graph[u]):
            if state.get(v) == 1:
                return stack[stack.index(v):] + [v]
            if v not in state:
                cyc = visit(v)
                if cyc:
                    return cyc
        state[u] = 2
        stack.pop()
        return None

    for u in sorted(graph):
        if u not in state:
            cyc = visit(u)
            if cyc:
                return cyc
    return None


def test_import_graph_has_no_cycle():
    graph = import_graph()
    assert "hgraph.nn.base" in graph and "hgraph.pipeline" in graph
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_cycle_finder_finds_a_planted_cycle():
    graph = import_graph()
    graph["hgraph.nn.base"] = graph["hgraph.nn.base"] | {"hgraph.nn"}
    cyc = find_cycle(graph)
    assert cyc is not None and cyc[0] == cyc[-1]


def test_config_imports_nothing_above_it():
    """hgraph.config and its submodules import only hgraph.errors and each other:
    registry choices are resolved where the CLI is built (hgraph.registries)."""
    graph = import_graph()
    config = {m for m in graph if m == "hgraph.config" or m.startswith("hgraph.config.")}
    assert {"hgraph.config", "hgraph.config.schema", "hgraph.config.load"} <= config
    for m in sorted(config):
        outside = {d for d in graph[m] if d not in config and d != "hgraph.errors"}
        assert not outside, (m, outside)


def test_encoder_modules_do_not_import_each_other_or_the_registry():
    graph = import_graph()
    encoders = {"hgraph.nn.shallow", "hgraph.nn.features", "hgraph.nn.hgcn", "hgraph.nn.ramen"}
    for m in encoders:
        assert not graph[m] & (encoders | {"hgraph.nn"}), (m, graph[m])
    assert encoders <= graph["hgraph.nn"]


SOURCES = sorted([*PKG.rglob("*.py"), *(ROOT / "pipelines").glob("*.py")])


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_duck_typed_capability_checks(path):
    """Encoders and embedders declare what they can do; nobody probes them."""
    text = path.read_text()
    probes = re.findall(r"\b(?:get|has)attr\(\s*(?:model|m|enc|encoder|self\.model|embedder|"
                        r"data\.embedder)\s*,", text)
    assert not probes, probes


def test_pipeline_is_short_and_names_no_encoder():
    text = (PKG / "pipeline.py").read_text()
    assert len(text.splitlines()) <= 250
    from hgraph.nn import ENCODERS
    names = "|".join(map(re.escape, ENCODERS))
    compared = re.findall(rf"""(?:[!=]=|\bin)\s*[(\[{{]?\s*["']({names})["']""", text)
    assert not compared, compared


def test_every_encoder_declares_its_capabilities():
    from hgraph.nn import ENCODERS, Encoder
    for name, cls in ENCODERS.items():
        assert issubclass(cls, Encoder), name
        for cap in ("uses_graph", "trainable", "inductive", "requires_features"):
            assert isinstance(getattr(cls, cap), bool), (name, cap)
    assert ENCODERS["hgcn"].uses_graph and not ENCODERS["ramen"].uses_graph
    assert not ENCODERS["features"].trainable and not ENCODERS["shallow"].inductive
