"""Calibrated stacking for the item task: the inner split holds out what it says,
the exact γ search agrees with brute force, and the handicap the search reasons
about is the one the ranking applies."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from hgraph import manifolds as M
from hgraph.data.item_splits import make_item_splits
from hgraph.data.items import Items
from hgraph.eval.items import rank_categories
from hgraph.tasks.calibration import (choose_gamma, group_minima, hold_out_categories, p1_at,
                                      p1_curve)
from hgraph.tasks.item_models import SiameseModel


def _items(n_cats=40, per=(1, 2, 3, 5, 8)):
    texts, cats = [], []
    for c in range(n_cats):
        for j in range(per[c % len(per)]):
            texts.append(f"item {c} {j}")
            cats.append(c)
    texts += ["shared", "shared"]          # one item with two categories
    cats += [3, 7]
    return Items(texts, np.asarray(cats), None)


@pytest.mark.parametrize("seed", [0, 1])
def test_hold_out_categories_removes_their_training_items_only(seed):
    items = _items()
    sp = make_item_splits(items, 40, zero_shot_frac=0.1, val_frac=0.2, test_frac=0.2, seed=seed)
    inner, held = hold_out_categories(sp, 0.25, seed)
    had = np.flatnonzero(sp.train_count > 0)
    held_cats = np.setdiff1d(inner.zero_shot, sp.zero_shot)
    assert len(held_cats) == round(0.25 * len(had)) and np.isin(held_cats, had).all()
    # their training items are gone from training, nothing else moved
    assert not inner.train_count[held_cats].any()
    assert (inner.part[held] == "heldout").all() and (sp.part[held] == "train").all()
    moved = np.flatnonzero(inner.part != sp.part)
    assert set(moved) == set(held)
    for i in held:
        assert np.isin(sp.category[sp.item == i], held_cats).any()
    # an item of a held category (the two-category one included) is never trained on
    for r in range(len(sp.item)):
        if sp.category[r] in set(held_cats):
            assert inner.part[sp.item[r]] != "train"
    counts = np.bincount(inner.category[inner.rows("train")], minlength=40)
    assert (counts == inner.train_count).all()
    # deterministic; val and test untouched
    inner2, held2 = hold_out_categories(sp, 0.25, seed)
    assert np.array_equal(held, held2) and np.array_equal(inner.zero_shot, inner2.zero_shot)
    assert np.array_equal(inner.items_of("val"), sp.items_of("val"))
    assert np.array_equal(inner.items_of("test"), sp.items_of("test"))


def test_p1_and_gamma_search_hand_computed():
    # three items; the true category is the nearest seen one (hit_seen) or unseen one
    g = {"d_seen": np.array([1.0, 1.0, 2.0]), "d_unseen": np.array([1.5, 3.0, 2.2]),
         "hit_seen": np.array([False, True, False]), "hit_unseen": np.array([True, False, True])}
    assert p1_at(g, 0.0).tolist() == [0, 1, 0]
    assert p1_at(g, 0.3).tolist() == [0, 1, 1]       # 2.3 > 2.2: item 2 flips to its unseen truth
    assert p1_at(g, 0.6).tolist() == [1, 1, 1]
    assert p1_at(g, 2.5).tolist() == [1, 0, 1]
    assert p1_at(g, [0.0, 0.6]).shape == (2, 3)
    c = p1_curve(g)
    assert c[0] == 0.0 and np.all(np.diff(c) > 0) and len(c) == 4
    # seen items: only item 1 (correct at small γ); unseen: items 0 and 2
    seen = {k: v[[1]] for k, v in g.items()}
    unseen = {k: v[[0, 2]] for k, v in g.items()}
    ch = choose_gamma(seen, unseen)
    assert ch["val_p1_seen_0"] == 1.0 and ch["val_p1_unseen_0"] == 0.0 and ch["val_h_0"] == 0.0
    # the best: both unseen items right, the seen one still right: 0.5 < γ < 2.0
    assert 0.5 < ch["gamma"] < 0.51 and ch["val_h"] == 1.0


def test_gamma_search_matches_a_brute_force_grid():
    rng = np.random.default_rng(0)
    n = 300

    def g():
        return {"d_seen": rng.uniform(0, 3, n), "d_unseen": rng.uniform(0, 3, n),
                "hit_seen": rng.random(n) < 0.5, "hit_unseen": rng.random(n) < 0.5}
    gs, gu = g(), g()
    ch = choose_gamma(gs, gu)
    grid = np.linspace(0, 4, 40001)
    s, u = p1_at(gs, grid).mean(1), p1_at(gu, grid).mean(1)
    h = 2 * s * u / (s + u)
    assert ch["val_h"] >= h.max() - 1e-12
    assert ch["val_h"] == pytest.approx(2 * ch["val_p1_seen"] * ch["val_p1_unseen"]
                                        / (ch["val_p1_seen"] + ch["val_p1_unseen"]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_group_minima_predict_the_offset_ranking(dtype):
    """P@1 from the group minima at γ equals P@1 of the ranking with γ added to
    the seen candidates' distances, for every γ tried."""
    gen = torch.Generator().manual_seed(0)
    N, F, U = 30, 8, 50
    x = torch.nn.functional.normalize(torch.randn(N, F, generator=gen), dim=-1).to(dtype)
    xi = torch.nn.functional.normalize(torch.randn(U, F, generator=gen), dim=-1).to(dtype)
    truth = [np.array([int(c)]) for c in np.random.default_rng(0).integers(0, N, U)]
    cand = np.arange(N)
    data = SimpleNamespace(cand=cand, x_nodes=x, truth=truth,
                           item_input=lambda ids: xi[torch.as_tensor(ids)])
    ball = M.make_manifold("poincare", 1.0, False)
    torch.manual_seed(0)
    model = SiameseModel(ball, x, torch.zeros(2, 0, dtype=torch.long), hidden=16).to(dtype)
    seen = np.zeros(N, dtype=bool)
    seen[::3] = True
    items = np.arange(U)
    g = group_minima(model, data, items, seen, chunk=16)
    # brute force minima
    with torch.no_grad():
        model.eval()
        d = M.pairwise_dist(ball, model.items(xi), model.categories(None)).double().numpy()
    assert np.allclose(g["d_seen"], d[:, seen].min(1)) and np.allclose(g["d_unseen"],
                                                                         d[:, ~seen].min(1))
    with torch.no_grad():
        zi, zc = model.items(xi), model.categories(None)
    for gam in [0.0, 0.05, 0.2, 0.5, 1.0, 5.0]:
        off = torch.as_tensor(np.where(seen, gam, 0.0), dtype=dtype)
        top, _ = rank_categories(ball, zi, zc, cand, truth, k=1, offset=off)
        p1 = np.array([t[0] in tr for t, tr in zip(top, truth)], dtype=float)
        assert np.array_equal(p1, p1_at(g, gam)), gam


@pytest.mark.xdist_group("minilm")
def test_calibrated_run_scores_test_both_ways(tmp_path):
    """A run with calibrate: the cal_* metrics are the test ranking with the
    chosen handicap, and the stored test minima reproduce both P@1s."""
    from hgraph.pipeline import run as run_items
    from hgraph.tasks.items import item_config
    cfg = item_config(dataset="csv:data/samples/hpo_slice_edges.csv",
                         items="data/samples/hpo_slice_items.csv",
                         node_text="data/samples/hpo_slice_text.csv", out=str(tmp_path),
                         progress=False, epochs=3, negatives=64, cost_items=20, threads=1,
                         encoder="ramen", calibrate=True)
    r = run_items(cfg)
    m = r.per_seed[0]
    assert m["cal_gamma"] >= 0 and m["cal_val_h"] >= m["cal_val_h_0"]
    assert m["cal_twin_train_s"] > 0 and m["cal_val_n_unseen"] > 0 and m["cal_val_n_seen"] > 0
    a = np.load(next(tmp_path.glob("*/per_item_seed0.npz")))
    g = {k: a[f"test_{k}"] for k in ("d_seen", "d_unseen", "hit_seen", "hit_unseen")}
    assert p1_at(g, 0.0).mean() == pytest.approx(m["p1"])
    assert p1_at(g, m["cal_gamma"]).mean() == pytest.approx(m["cal_p1"])
    assert np.array_equal(a["cal_p1"], p1_at(g, m["cal_gamma"]))
    if m["cal_gamma"] == 0:
        assert np.array_equal(a["cal_rank"], a["rank"])
    # the report's calibrated view: the cal_* numbers under the plain keys, paired per item
    from hgraph.tasks.items_report import CAL, load_run, paired, table
    d = str(next(tmp_path.glob("*/metrics.json")).parent)
    v = load_run(d + CAL)["mean_std"]
    assert v["p1"]["mean"] == pytest.approx(m["cal_p1"]) and v["gamma"]["mean"] == m["cal_gamma"]
    diff = {(r["metric"], r["slice"]): r["diff"] for r in paired(d + CAL, d)}
    assert diff[("p1", "all")] == pytest.approx(m["cal_p1"] - m["p1"])
    assert "| cal | 1 |" in table({"cal": d + CAL})


def test_scoring_runs_in_eval_mode_and_leaves_the_mode_as_it_was():
    """score_items ranks with dropout off (the same ranking twice, equal to the
    eval-mode distances) and embed_categories restores the caller's mode: the
    category points once switched the model back to training before the items
    were embedded, so a text head's dropout blurred every evaluation."""
    from hgraph.tasks.item_eval import score_items
    from hgraph.tasks.item_models import embed_categories
    gen = torch.Generator().manual_seed(1)
    N, F, U = 20, 8, 40
    x = torch.nn.functional.normalize(torch.randn(N, F, generator=gen), dim=-1)
    xi = torch.nn.functional.normalize(torch.randn(U, F, generator=gen), dim=-1)
    truth = [np.array([i % N]) for i in range(U)]
    data = SimpleNamespace(cand=np.arange(N), x_nodes=x, x_items=xi, truth=truth,
                           item_input=lambda ids: xi[torch.as_tensor(ids)])
    ball = M.make_manifold("poincare", 1.0, False)
    torch.manual_seed(0)
    model = SiameseModel(ball, x, torch.zeros(2, 0, dtype=torch.long), hidden=32, dropout=0.5)
    with torch.no_grad():   # a tower that is not the identity, so dropout changes points
        for p in model.tower.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen))
    items = np.arange(U)
    _, r1 = score_items(model, data, items)
    _, r2 = score_items(model, data, items)
    assert model.training and np.array_equal(r1, r2)
    model.eval()
    with torch.no_grad():
        d = M.pairwise_dist(ball, model.items(xi), model.categories(None))
    ref = np.array([int((d[i] <= d[i, truth[i][0]]).sum()) for i in range(U)])
    assert np.array_equal(r1, ref)
    embed_categories(model, data.cand)
    assert not model.training
