"""Reading item run folders: what is read, and bad folders refused in one line."""
from pathlib import Path

import numpy as np
import pytest

from hgraph.analysis.runs import find_runs, item_settings, read_run, with_context
from hgraph.errors import HGraphInputError


def test_read_run(tmp_path, write_run):
    arrays = {"slice": np.array(["zero", "head"]), "top1": np.array([3, 4])}
    run = read_run(write_run(tmp_path / "r", {"zero_shot_frac": 0.2}, {0: arrays, 2: None},
                             {0: {"p1": 0.5}}))
    assert run.name == "r" and run.config.task == "items"
    assert run.config.data.dataset == "toy" and run.config.items.zero_shot_frac == 0.2
    assert [ps["seed"] for ps in run.per_seed] == [0, 2] and run.per_seed[0]["p1"] == 0.5
    assert run.has_per_item(0) and not run.has_per_item(2)
    got = run.per_item(0, ("top1",))
    assert list(got) == ["top1"] and got["top1"].tolist() == [3, 4]
    assert set(run.per_item(0)) == {"slice", "top1"}
    with pytest.raises(HGraphInputError, match="no per-item file for seed 2"):
        run.per_item(2)
    with pytest.raises(HGraphInputError, match="no array.*p1"):
        run.per_item(0, ("top1", "p1"))
    (run.path / "per_item_seed0.npz").write_text("not a zip")
    with pytest.raises(HGraphInputError, match="not a readable .npz"):
        run.per_item(0)


def test_bad_folders(tmp_path, write_run):
    with pytest.raises(HGraphInputError, match="no metrics.json"):
        read_run(tmp_path)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "metrics.json").write_text("{")
    with pytest.raises(HGraphInputError, match="not valid JSON"):
        read_run(bad)
    (bad / "metrics.json").write_text('{"mean_std": {}}')
    with pytest.raises(HGraphInputError, match="per_seed"):
        read_run(bad)
    (bad / "metrics.json").write_text('{"per_seed": [], "run": {}}')
    with pytest.raises(HGraphInputError, match="no config.json and no run.config"):
        read_run(bad)
    (bad / "metrics.json").write_text('{"per_seed": [], "run": {"config": {"lr": "fast"}}}')
    with pytest.raises(HGraphInputError, match="lr"):
        read_run(bad)
    msg = str(pytest.raises(HGraphInputError, read_run, tmp_path / "nowhere").value)
    assert "\n" not in msg and "nowhere" in msg


def test_find_runs(tmp_path, write_run):
    write_run(tmp_path / "ds" / "b")
    write_run(tmp_path / "ds" / "a")
    (tmp_path / "ds" / "notes").mkdir()
    assert [r.name for r in find_runs(tmp_path / "ds")] == ["a", "b"]
    assert [r.name for r in find_runs(tmp_path / "ds" / "b")] == ["b"]
    with pytest.raises(HGraphInputError, match="no run folder here"):
        find_runs(tmp_path / "ds" / "notes")
    with pytest.raises(HGraphInputError, match="no such folder"):
        find_runs(tmp_path / "missing")


def test_load_run_data_on_the_committed_hpo_slice(tmp_path, monkeypatch):
    """The real loader, with a stand-in for the sentence encoder (4-d vectors of the
    text lengths) and an empty text cache: what the run's settings ask for."""
    import hgraph.data.text as text
    from hgraph.analysis.runs import load_run_data

    seen = []

    class FakeEncoder:
        def encode(self, texts, **kw):
            seen.append(list(texts))
            v = np.array([[len(t), 1.0, t.count(";"), 0.5] for t in texts], dtype=np.float32)
            return v / np.linalg.norm(v, axis=1, keepdims=True)

    monkeypatch.setenv("HGRAPH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(text, "_model", lambda name: FakeEncoder())
    s = "data/samples/hpo_slice_"
    cfg = item_settings({"dataset": f"csv:{s}edges.csv", "items": f"{s}items.csv",
                         "node_text": f"{s}text.csv", "zero_shot_frac": 0.2, "val_frac": 0.1,
                         "test_frac": 0.3, "encoder": "ramen", "item_text_layers": 1,
                         "shared_text_head": True, "lr": 0.5})    # model settings: unused
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    d = load_run_data(cfg)
    assert d.tax.num_nodes == 155 and len(d.cand) == 155           # every node a candidate
    assert d.x_nodes.shape == (155, 4) and d.x_items.shape == (len(d.truth), 4)
    assert d.split_settings == {"zero_shot_frac": 0.2, "val_frac": 0.1, "test_frac": 0.3}
    ids = d.items.item_ids()
    assert all(c in d.truth[i] for i, c in zip(ids, d.items.category))
    sp = d.splits(0)
    assert len(sp.zero_shot) > 0 and not d.trained(0)[sp.zero_shot].any()
    own = [t for t in seen if len(t) == 155]                       # the node texts encoded
    assert len(own) == 1
    d1 = load_run_data(with_context(cfg, 1))                       # + the parent's text
    ctx = [t for t in seen if len(t) == 155][1]
    assert d1.x_nodes.shape == (155, 4) and ctx != own[0]
    assert all(c.startswith(o) for c, o in zip(ctx, own[0]))


def test_both_config_layouts_and_refusals(tmp_path, write_run):
    """config.json (the one harness) and metrics.json's run.config (older folders) give
    the same config; unfinished runs and node runs are refused."""
    settings = {"zero_shot_frac": 0.3, "val_frac": 0.05, "category_context": 1}
    old = read_run(write_run(tmp_path / "old", settings, {0: None}))
    new = read_run(write_run(tmp_path / "new", settings, {0: None}, config_json=True))
    assert old.config == new.config and new.config.items.category_context == 1
    (tmp_path / "new" / "INCOMPLETE").write_text("")
    with pytest.raises(HGraphInputError, match="INCOMPLETE"):
        read_run(tmp_path / "new")
    nodes = write_run(tmp_path / "nodes", {}, {0: None}, config_json=True)
    text = (nodes / "config.json").read_text().replace('"task": "items"', '"task": "nodes"')
    (nodes / "config.json").write_text(text)
    with pytest.raises(HGraphInputError, match="not an item run"):
        read_run(nodes)
