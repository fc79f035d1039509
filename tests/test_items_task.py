"""The item -> category task: leak-free splits and slices, each metric on a
hand-computed case, the shared item tower, and an end-to-end run that learns."""
import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from hgraph import manifolds as M
from hgraph.data.item_splits import make_item_splits
from hgraph.data.items import Items
from hgraph.data.taxonomy import Taxonomy
from hgraph.eval.items import (hierarchical_precision, mrr, paired_bootstrap, precision_at,
                               rank_categories, rank_scores, tree_distance, undirected)
from hgraph.tasks.item_models import GraphModel, KnnScorer, SiameseModel, TableModel


def _items(n_cats=40, per=(1, 2, 3, 5, 8), seed=0):
    rng = np.random.default_rng(seed)
    texts, cats = [], []
    for c in range(n_cats):
        for j in range(per[c % len(per)]):
            texts.append(f"item {c} {j}")
            cats.append(c)
    # one item with two categories
    texts += ["shared", "shared"]
    cats += [3, 7]
    return Items(texts, np.asarray(cats), None)


# ------------------------------------------------------------------ splits
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_splits_are_leak_free_and_slices_mean_what_they_say(seed):
    items = _items()
    sp_ = make_item_splits(items, 40, zero_shot_frac=0.2, val_frac=0.1, test_frac=0.3, seed=seed)
    assert len(sp_.zero_shot) == 8
    train = set(sp_.items_of("train"))
    # no item of a zero-shot category is trained on (including the two-category item)
    for r in range(len(items)):
        if sp_.category[r] in set(sp_.zero_shot):
            assert sp_.item[r] not in train
            assert sp_.part[sp_.item[r]] == "test"
    # an item is in exactly one part; train counts are recounted from the rows
    counts = np.bincount(sp_.category[sp_.rows("train")], minlength=40)
    assert (counts == sp_.train_count).all()
    assert not sp_.train_count[sp_.zero_shot].any()
    # slices follow the training counts of the item's categories
    test = sp_.items_of("test")
    sl = sp_.slice_of(test)
    for i, s in zip(test, sl):
        n = max(sp_.train_count[c] for c in sp_.category[sp_.item == i])
        assert s == ("zero" if n == 0 else "tail" if n <= 2 else "head")
    assert {"zero", "tail", "head"} <= set(sl)
    # categories with >= 2 items keep a training item unless zero-shot
    for c in range(40):
        n = int((items.category == c).sum())
        if n >= 2 and c not in set(sp_.zero_shot):
            assert sp_.train_count[c] >= 1


def test_splits_are_deterministic_and_respect_candidates():
    items = _items()
    a = make_item_splits(items, 40, seed=5)
    b = make_item_splits(items, 40, seed=5)
    assert (a.part == b.part).all() and (a.zero_shot == b.zero_shot).all()
    cand = np.zeros(40, dtype=bool)
    cand[:10] = True
    c = make_item_splits(items, 40, zero_shot_frac=0.5, seed=5, candidates=cand)
    assert set(c.zero_shot) <= set(range(10)) and len(c.zero_shot) == 5


def test_splits_keep_a_given_split_column():
    items = _items()
    given = np.array(["train", "val", "test"] * (len(items) // 3 + 1), dtype=object)[:len(items)]
    given[-2:] = "val"          # the two rows of the shared item agree
    items.split = given
    sp_ = make_item_splits(items, 40, zero_shot_frac=0.0, seed=0)
    assert (sp_.part[sp_.item] == given).all()


# ------------------------------------------------------------------ metrics
def _chain():
    # 0 <- 1 <- 2, 0 <- 3 <- 4, 3 <- 5 (child, parent)
    edges = np.array([[1, 0], [2, 1], [3, 0], [4, 3], [5, 3]])
    return undirected(edges, 6)


def test_precision_mrr_and_ranks_hand_computed():
    cand = np.arange(6)
    scores = torch.tensor([[0.9, 0.1, 0.5, 0.3, 0.2, 0.0],     # truth 2: rank 2
                           [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],     # truth 5: rank 1
                           [0.5, 0.5, 0.5, 0.0, 0.0, 0.0]])    # truth 1: tie of 3 -> rank 3
    top, rank = rank_scores(scores, cand, [[2], [5], [1]], k=3)
    assert rank.tolist() == [2, 1, 3]
    assert top[0].tolist() == [0, 2, 3] and top[1].tolist() == [5, 4, 3]
    assert precision_at(top, [[2], [5], [1]], 1).tolist() == [0.0, 1.0, float(top[2, 0] == 1)]
    assert precision_at(top, [[2], [5], [1]], 3).tolist() == [1.0, 1.0, 1.0]
    np.testing.assert_allclose(mrr(rank), [0.5, 1.0, 1 / 3])
    # several true categories: the best one counts
    _, r2 = rank_scores(scores[:1], cand, [[5, 2]], k=3)
    assert r2.tolist() == [2]


def test_hierarchical_precision_hand_computed():
    adj = _chain()
    # truth 4, k=2: list {4} -> + 1 hop {3} = {4, 3}: top [3, 5] -> 1/2
    assert hierarchical_precision(np.array([[3, 5]]), [[4]], 2, adj).tolist() == [0.5]
    # k=3: {4,3} has 2 < 3 -> 2 hops {0, 5} added: {4,3,0,5}; top [5,0,1] -> 2/3
    np.testing.assert_allclose(hierarchical_precision(np.array([[5, 0, 1]]), [[4]], 3, adj),
                               [2 / 3])
    # candidates only: with 3 not a candidate, {4} grows to 2 hops {4, 0, 5}
    allowed = np.array([1, 1, 1, 0, 1, 1], dtype=bool)
    np.testing.assert_allclose(hierarchical_precision(np.array([[0, 5]]), [[4]], 2, adj,
                                                      allowed), [1.0])


def test_tree_distance_hand_computed():
    from hgraph.data.taxonomy import transitive_closure
    up = transitive_closure(np.array([[1, 0], [2, 1], [3, 0], [4, 3], [5, 3]]), 6, hops=True)
    d = tree_distance(np.array([4, 2, 5, 0]), [[4], [4], [4], [2, 5]], up)
    assert d.tolist() == [0, 4, 2, 2]     # 0-1-2 and 0-3-5: two hops each
    # a DAG: 3 has parents 1 and 2; 1 and 2 meet at 0; 4 has no common ancestor with 0
    up2 = transitive_closure(np.array([[1, 0], [2, 0], [3, 1], [3, 2]]), 5, hops=True)
    d2 = tree_distance(np.array([3, 1, 4]), [[2], [2], [0]], up2)
    assert d2[0] == 1 and d2[1] == 2 and np.isinf(d2[2])


def test_paired_bootstrap_interval_covers_the_difference():
    rng = np.random.default_rng(0)
    a = rng.random(500)
    b = a - 0.1 + rng.normal(0, 0.01, 500)
    out = paired_bootstrap(a, b, seed=1)
    assert out["lo"] < out["diff"] < out["hi"]
    assert 0.09 < out["lo"] and out["hi"] < 0.11 and out["p_le0"] == 0.0
    same = paired_bootstrap(a, a)
    assert same["diff"] == 0.0 and same["lo"] == 0.0 == same["hi"]
    with pytest.raises(ValueError):
        paired_bootstrap(a, b[:10])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rank_categories_orders_by_geodesic_distance(dtype):
    ball = M.make_manifold("poincare", 1.0, False)
    g = torch.Generator().manual_seed(0)
    x = M.expmap0(ball, torch.randn(7, 4, generator=g, dtype=dtype))
    y = M.expmap0(ball, torch.randn(30, 4, generator=g, dtype=dtype))
    cand = np.arange(100, 130)
    truth = [[100 + i] for i in range(7)]
    top, rank = rank_categories(ball, x, y, cand, truth, k=5, chunk=3)
    d = M.dist(ball, x[:, None], y[None]).numpy()
    assert (top[:, 0] == cand[d.argmin(1)]).all()
    assert rank.tolist() == [int((d[i] <= d[i, i]).sum()) for i in range(7)]


# ------------------------------------------------------------------ models
def _tiny_graph(F=8, N=6, dtype=torch.float32):
    x = torch.nn.functional.normalize(torch.randn(N, F, generator=torch.Generator().manual_seed(3),
                                                  dtype=dtype), dim=-1)
    e = np.array([[1, 0], [2, 1], [3, 0], [4, 3], [5, 3]])
    ei = torch.from_numpy(np.concatenate([e.T, e[:, ::-1].T], axis=1).copy()).long()
    return x, ei


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shared_item_tower_gives_equal_item_points(dtype):
    """ramen and hgcn share the item tower's code path: equal weights give
    equal item points; at initialisation hgcn's categories equal ramen's."""
    ball = M.make_manifold("poincare", 1.0, False)
    x, ei = _tiny_graph(dtype=dtype)
    torch.manual_seed(0)
    a = SiameseModel(ball, x, ei, hidden=16).to(dtype)
    torch.manual_seed(0)
    b = GraphModel(ball, x, ei, hidden=16, gcn_hidden=8).to(dtype)
    b.tower.load_state_dict(a.tower.state_dict())
    items = torch.nn.functional.normalize(torch.randn(5, 8, dtype=dtype), dim=-1)
    assert torch.equal(a.items(items), b.items(items))
    assert type(a).items is type(b).items
    torch.testing.assert_close(a.categories(), b.categories())
    # the residual start ranks as cosine of the text vectors
    d = M.pairwise_dist(ball, a.items(items), a.categories())
    cos = items @ x.T
    assert (d.argmin(1) == cos.argmax(1)).all()
    # gradients are finite and reach the GCN once the gate is open
    with torch.no_grad():
        b.gate.fill_(0.5)
    loss = M.pairwise_dist(ball, b.items(items), b.categories()).sum()
    loss.backward()
    grads = [p.grad for p in b.gcn.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_item_adapter_starts_as_identity_moves_items_only_and_exports(dtype, tmp_path):
    """item_adapter: at the start the items' points equal the model's without it; once
    its weights move, items move and categories do not; the export places items as
    the model does."""
    from types import SimpleNamespace
    from hgraph.tasks.item_export import export_model, load_exported
    from hgraph.tasks.items import item_config
    ball = M.make_manifold("poincare", 1.0, False)
    x, ei = _tiny_graph(dtype=dtype)
    items = torch.nn.functional.normalize(torch.randn(5, 8, dtype=dtype), dim=-1)
    for cls in (SiameseModel, GraphModel):
        torch.manual_seed(0)
        plain = cls(ball, x, ei, hidden=16, gcn_hidden=8).to(dtype)
        torch.manual_seed(0)
        m = cls(ball, x, ei, hidden=16, gcn_hidden=8, item_adapter=12).to(dtype)
        m.load_state_dict(plain.state_dict(), strict=False)
        assert torch.equal(m.items(items), plain.items(items))
        cats = m.categories().detach().clone()
        with torch.no_grad():
            m.adapter.mlp[-1].weight.normal_()
        assert not torch.allclose(m.items(items), plain.items(items))
        assert torch.equal(m.categories(), cats)
    tax = Taxonomy.from_edges([1, 2, 3, 4, 5], [0, 1, 0, 3, 3])
    data = SimpleNamespace(tax=tax, x_nodes=x, cand=np.arange(1, 6), names=None)
    cfg = item_config(encoder="hgcn", hidden=16, item_adapter=12)
    export_model(m, data, cfg, tmp_path / "m.pt")
    tower, d = load_exported(tmp_path / "m.pt")
    assert torch.allclose(tower(items), m.items(items).detach())
    assert torch.allclose(d["cat_points"], m.categories()[1:].detach())


def test_hgcn_places_new_categories_like_the_full_graph():
    ball = M.make_manifold("poincare", 1.0, False)
    x, ei = _tiny_graph(dtype=torch.float64)
    torch.manual_seed(0)
    m = GraphModel(ball, x, ei, hidden=16, gcn_hidden=8).double()
    with torch.no_grad():
        m.gate.fill_(0.7)
    m.eval()
    full = m.categories()
    new = m.new_categories(x, ei, torch.tensor([4, 2]))
    torch.testing.assert_close(new, full[[4, 2]])


def test_shallow_cannot_place_new_categories_and_knn_ranks_by_nearest_item():
    ball = M.make_manifold("poincare", 1.0, False)
    x, ei = _tiny_graph()
    t = TableModel(ball, x, ei, hidden=8)
    assert not t.places_new
    with pytest.raises(ValueError):
        t.new_categories(x, ei, torch.tensor([0]))
    xt = torch.eye(3, 8)
    knn = KnnScorer(x, xt, torch.tensor([2, 2, 4]))
    s = knn.scores(torch.eye(3, 8)[[1]])
    assert s[0, 2] == 1.0 and s[0, 4] == 0.0 and torch.isinf(s[0, [0, 1, 3, 5]]).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_mined_negatives_are_the_nearest_wrong_categories(dtype):
    """mine_negatives: for each item the k candidates nearest its point under
    the model, its true categories skipped, nearest first."""
    from types import SimpleNamespace
    from hgraph.tasks.item_batches import mine_negatives
    ball = M.make_manifold("poincare", 1.0, False)
    x, ei = _tiny_graph(dtype=dtype)
    torch.manual_seed(0)
    m = SiameseModel(ball, x, ei, hidden=16).to(dtype)
    cand = np.array([1, 2, 3, 4, 5])                 # node 0 is not a candidate
    xi = torch.nn.functional.normalize(torch.randn(4, 8, dtype=dtype), dim=-1)
    truth = [np.array([2]), np.array([3, 5]), np.array([1]), np.array([4])]
    data = SimpleNamespace(cand=cand, truth=truth, item_input=lambda ids: xi[ids])
    got = mine_negatives(m, data, np.array([0, 1, 3]), k=2)
    d = M.pairwise_dist(ball, m.items(xi), m.categories()[torch.as_tensor(cand)]).detach()
    for r, i in enumerate([0, 1, 3]):
        order = [int(cand[j]) for j in d[i].argsort().tolist() if cand[j] not in truth[i]]
        assert got[r].tolist() == order[:2]
    assert m.training


@pytest.mark.parametrize("pool", ["all", "trained"])
def test_negative_pool_trained_draws_only_categories_with_training_items(pool):
    """negative_pool="trained": every category a training step scores (uniform, sibling
    and mined negatives) has a training item; "all" also draws the others."""
    from types import SimpleNamespace
    from hgraph.tasks.items import item_config, train_items
    # a 3-level tree: root 0, 4 inner nodes, 5 leaves under each
    child, parent = [], []
    for a in range(1, 5):
        child.append(a)
        parent.append(0)
        for j in range(5):
            child.append(5 * a + j)
            parent.append(a)
    tax = Taxonomy.from_edges(child, parent)
    N = tax.num_nodes
    leaf = np.array([tax.index(5 * a + j) for a in range(1, 5) for j in range(5)])
    x = torch.nn.functional.normalize(torch.randn(N, 8, generator=torch.Generator().manual_seed(0)),
                                      dim=-1)
    # items on half of the leaves only
    cats = np.repeat(leaf[::2], 4)
    items = Items([f"i{k}" for k in range(len(cats))], cats, None)
    sp_ = make_item_splits(items, N, zero_shot_frac=0.0, val_frac=0.25, test_frac=0.0, seed=0)
    trained = np.zeros(N, dtype=bool)
    trained[sp_.category[sp_.rows("train")]] = True
    xi = x[torch.as_tensor(cats)] + 0.1 * torch.randn(len(cats), 8)
    data = SimpleNamespace(tax=tax, cand=np.arange(1, N), x_items=xi,
                           item_input=lambda ids: xi[torch.as_tensor(ids)],
                           truth=[np.array([c]) for c in cats])
    ball = M.make_manifold("poincare", 1.0, False)
    torch.manual_seed(0)
    m = SiameseModel(ball, x, torch.zeros(2, 0, dtype=torch.long), hidden=16)
    seen = []
    orig = m.categories

    def spy(ids=None):
        if ids is not None and m.training:
            seen.append(ids.detach().numpy().copy())
        return orig(ids)
    m.categories = spy
    # the negatives only: the graph regulariser (the item ramen preset's λ) draws its own
    # triplets among every category
    cfg = item_config(negative_pool=pool, epochs=2, batch_size=8, negatives=16, reg_lambda=0.0,
                      hard_negatives=2, mined_negatives=2, mine_k=4, progress=False)
    train_items(m, data, sp_, cfg, seed=0)
    scored = np.unique(np.concatenate(seen))
    assert scored.size and np.isin(sp_.category[sp_.rows("train")], scored).all()
    assert trained[scored].all() == (pool == "trained")


# ------------------------------------------------------------------ end to end
@pytest.mark.xdist_group("minilm")
def test_end_to_end_on_the_committed_slice_learns(tmp_path, capsys):
    """640 HPO synonyms on 155 terms: the trained model beats the untrained
    cosine baseline by >= 0.1 validation P@1."""
    from hgraph.pipeline import run as run_items
    from hgraph.tasks.items import item_config
    base = dict(dataset="csv:data/samples/hpo_slice_edges.csv",
                items="data/samples/hpo_slice_items.csv",
                node_text="data/samples/hpo_slice_text.csv", out=str(tmp_path), progress=False,
                epochs=5, negatives=64, cost_items=20, threads=1)
    feats = run_items(item_config(encoder="features", **base)).metrics
    ramen = run_items(item_config(encoder="ramen", **base)).metrics
    assert ramen["best_val_p1"]["mean"] >= feats["best_val_p1"]["mean"] + 0.1
    assert ramen["p1"]["mean"] > feats["p1"]["mean"]
    runs = list(tmp_path.glob("*ramen*/metrics.json"))
    assert len(runs) == 1
    # placing text is one command: the exported tower and category points, no data needed
    import importlib.util
    from pathlib import Path
    spec = importlib.util.spec_from_file_location(
        "query_cli", Path(__file__).resolve().parent.parent / "pipelines" / "query.py")
    q = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(q)
    capsys.readouterr()
    assert q.main(["--run", str(runs[0].parent), "--text", "Small nose", "-k", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "# Small nose" and len(out) == 4
    assert all(" > " in line or "Abnormality of the nose" in line for line in out[1:])
    assert q.main(["--run", str(tmp_path), "--text", "x"]) == 2


@pytest.mark.xdist_group("minilm")
def test_text_head_untrained_gives_the_frozen_encoders_vectors_and_trains(tmp_path):
    """token_states + TextHead (the encoder's last layer, copied) reproduce encode_texts
    (up to the float16 storage of the states); a run with item_text_layers 1 trains that
    layer, and its export places text as the trained model does."""
    from hgraph.data.text import encode_texts, token_states
    from hgraph.tasks.item_models import TextHead
    from hgraph.pipeline import run as run_items
    from hgraph.tasks.item_data import item_input_from_texts
    from hgraph.tasks.item_export import load_exported
    from hgraph.tasks.items import item_config
    texts = ["Small nose", "Abnormality of the nose", "a much longer text about the shape of "
             "the bridge of the nose", "x"]
    st, ln = token_states(texts, skip_last=1, cache=False, progress=False)
    assert st.dtype == np.float16 and ln[3] == 3 and ln[2] > ln[1] > ln[0]   # [CLS] x [SEP]
    assert (st[np.arange(st.shape[1])[None, :] >= ln[:, None]] == 0).all()   # padding
    head = TextHead.from_encoder("minilm", 1).eval()
    with torch.no_grad():
        v = head(torch.as_tensor(st).float(), torch.as_tensor(ln))
    ref = torch.as_tensor(encode_texts(texts, cache=False, progress=False))
    assert torch.allclose(v, ref, atol=3e-3)
    head.CHUNK = 2                      # chunks of similar length: the same vectors, in order
    with torch.no_grad():
        assert torch.allclose(head(torch.as_tensor(st).float(), torch.as_tensor(ln)), v,
                              atol=1e-6)
    base = dict(dataset="csv:data/samples/hpo_slice_edges.csv",
                items="data/samples/hpo_slice_items.csv",
                node_text="data/samples/hpo_slice_text.csv", out=str(tmp_path), progress=False,
                epochs=2, patience=5, negatives=32, cost_items=10, threads=1, text_lr=1e-4)
    res = run_items(item_config(encoder="ramen", item_text_layers=1, **base))
    assert res.per_seed[0]["epochs_run"] == 2 and np.isfinite(res.per_seed[0]["p1"])
    run_dir = next(tmp_path.glob("*ramen*"))
    tower, d = load_exported(run_dir / "model_seed0.pt")
    fresh = TextHead.from_encoder("minilm", 1).state_dict()
    assert any(not torch.equal(d["text_head"][k], fresh[k]) for k in fresh)   # it was trained
    x = item_input_from_texts(texts, "minilm", 1)
    with torch.no_grad():
        z = tower(x)
        assert not torch.allclose(z, tower.tower(ref))    # the head is on the item path
        assert torch.allclose(z, tower.tower(tower.text_head(*x)))


@pytest.mark.xdist_group("minilm")
def test_shared_text_head_encodes_the_categories_with_the_kept_weights(tmp_path):
    """shared_text_head: untrained, the head's category vectors are the frozen encoder's;
    after a run the exported category points are the tower over the *kept* (best-epoch)
    head's vectors of the category texts, not the frozen ones; the head is trained through
    the categories as well as the items; bad combinations are refused."""
    from hgraph.data.text import node_texts, token_states
    from hgraph.errors import HGraphInputError
    from hgraph.data.item_splits import make_item_splits
    from hgraph.pipeline import run as run_items
    from hgraph.tasks.item_export import load_exported
    from hgraph.tasks.items import build, config_from_dict, item_config, load_item_data
    base = dict(dataset="csv:data/samples/hpo_slice_edges.csv",
                items="data/samples/hpo_slice_items.csv",
                node_text="data/samples/hpo_slice_text.csv", out=str(tmp_path), progress=False,
                epochs=3, patience=5, negatives=32, cost_items=10, threads=1, text_lr=1e-4,
                item_text_layers=1, shared_text_head=True)
    cfg = item_config(encoder="ramen", **base)
    data = load_item_data(cfg, torch.device("cpu"))
    assert data.node_states is not None and data.node_states[1].shape[0] == data.tax.num_nodes
    sp = make_item_splits(data.items, data.tax.num_nodes, seed=0)
    model = build(cfg, data, sp, 0)
    assert torch.allclose(model.x_nodes, data.x_nodes, atol=3e-3)
    # one step's loss on the true categories alone reaches the head
    ids = torch.as_tensor(data.cand[:8])
    model.fresh_categories(ids).sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in model.text_head.parameters())
    # training: every step encodes its batch's true categories through the head (the
    # second softmax), and every epoch re-encodes all categories
    from hgraph.tasks.items import train_items
    seen_ids, refreshed = [], []
    fresh, refresh = model.fresh_categories, model.refresh_categories
    model.fresh_categories = lambda ids: (seen_ids.append(set(ids.tolist())), fresh(ids))[1]
    model.refresh_categories = lambda: (refreshed.append(1), refresh())[1]
    train_items(model, data, sp, dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=2, patience=5)), 0)
    tr = sp.rows("train")
    steps = 2 * int(np.ceil(len(tr) / cfg.train.batch_size))
    assert len(seen_ids) == steps and len(refreshed) == 2
    assert set(sp.category[tr].tolist()) <= set().union(*seen_ids)
    res = run_items(cfg)
    assert np.isfinite(res.per_seed[0]["p1"]) and res.per_seed[0]["best_epoch"] >= 1
    tower, d = load_exported(next(tmp_path.glob("*ramen*")) / "model_seed0.pt")
    st, ln = token_states(node_texts(data.tax), skip_last=1, progress=False)
    cand = d["cand"]
    with torch.no_grad():
        mine = tower.tower(tower.text_head(torch.as_tensor(st[cand]).float(),
                                           torch.as_tensor(ln[cand])))
        frozen = tower.tower(data.x_nodes[cand])
    assert torch.allclose(d["cat_points"], mine, atol=1e-5)
    assert not torch.allclose(d["cat_points"], frozen, atol=1e-4)
    for bad in (dict(encoder="ramen"), dict(encoder="shallow", item_text_layers=1)):
        with pytest.raises(HGraphInputError, match="shared_text_head"):
            config_from_dict({"shared_text_head": True, **bad})


def test_items_cli_help_and_bad_config(tmp_path, capsys):
    import importlib.util
    from pathlib import Path
    spec = importlib.util.spec_from_file_location(
        "items_cli", Path(__file__).resolve().parent.parent / "pipelines" / "items.py")
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    assert "--reg-lambda" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("common: {dataset: hpo, colour: red}\nruns: {a: {encoder: ramen}}\n")
    assert cli.main(["--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "colour" in err and str(bad) in err
    bad.write_text("runs: {a: {encoder: nope}}\n")
    assert cli.main(["--config", str(bad)]) == 2
    assert "nope" in capsys.readouterr().err
    assert cli.main(["--config", str(tmp_path / "missing.yaml")]) == 2


@pytest.mark.xdist_group("minilm")
def test_tune_grid_picks_the_best_validation_trial_and_resumes(tmp_path, capsys):
    """--tune --only R: R's trials on one seed, the best validation P@1 chosen,
    tuned.json merged across invocations, finished trials read back."""
    import importlib.util
    import json
    from pathlib import Path
    spec = importlib.util.spec_from_file_location(
        "items_cli2", Path(__file__).resolve().parent.parent / "pipelines" / "items.py")
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"""common: {{dataset: "csv:data/samples/hpo_slice_edges.csv",
  items: data/samples/hpo_slice_items.csv, node_text: data/samples/hpo_slice_text.csv,
  out: "{tmp_path}", epochs: 2, negatives: 32, hard_negatives: 2, mined_negatives: 2,
  cost_items: 5, threads: 1, progress: false, seeds: [0, 1]}}
runs: {{features: {{encoder: features}}, ramen: {{encoder: ramen}},
  twin: {{encoder: ramen, reg_lambda: 0.0, seeds: [0], tuned_as: ramen}}}}
tune:
  ramen: [{{lr: 1.0e-9}}, {{lr: 3.0e-3}}]
  hgcn: [{{}}]
""")
    assert cli.main(["--config", str(cfg), "--tune", "--only", "ramen"]) == 0
    assert "[tune] ramen trial 1" in capsys.readouterr().err
    v = [json.loads((tmp_path / "tune" / f"ramen_{j}" / "metrics.json").read_text())
         ["mean_std"]["best_val_p1"]["mean"] for j in (0, 1)]
    assert v[1] > v[0]                                # a rate of 1e-9 learns nothing
    assert json.loads((tmp_path / "tuned.json").read_text()) == {"ramen": {"lr": 3.0e-3}}
    assert not (tmp_path / "tune" / "hgcn_0").exists()  # not asked for
    run = json.loads((tmp_path / "ramen" / "metrics.json").read_text())
    conf = json.loads((tmp_path / "ramen" / "config.json").read_text())
    assert conf["train"]["lr"] == 3.0e-3 and len(run["per_seed"]) == 2
    # seed 0 under the chosen trial's settings computes the trial's result again
    trial = json.loads((tmp_path / "tune" / "ramen_1" / "metrics.json").read_text())
    assert run["per_seed"][0]["p1"] == trial["per_seed"][0]["p1"]
    assert (tmp_path / "ramen" / "per_item_seed0.npz").exists()
    # another invocation keeps the earlier choice; finished trials are read back, not rerun
    assert cli.main(["--config", str(cfg), "--tune", "--only", "features"]) == 0
    assert json.loads((tmp_path / "tuned.json").read_text()) == {"ramen": {"lr": 3.0e-3}}
    stamp = [(tmp_path / "tune" / f"ramen_{j}" / "metrics.json").stat().st_mtime_ns
             for j in (0, 1)]
    assert cli.main(["--config", str(cfg), "--tune", "--only", "ramen"]) == 0
    assert stamp == [(tmp_path / "tune" / f"ramen_{j}" / "metrics.json").stat().st_mtime_ns
                     for j in (0, 1)]
    assert "[tune] ramen trial 1" in capsys.readouterr().err
    # `tuned_as: ramen`: the twin runs with ramen's chosen rate, its trials read back
    assert cli.main(["--config", str(cfg), "--tune", "--only", "twin"]) == 0
    twin = json.loads((tmp_path / "twin" / "config.json").read_text())
    assert twin["train"]["lr"] == 3.0e-3 and twin["reg"]["reg_lambda"] == 0.0
    assert stamp == [(tmp_path / "tune" / f"ramen_{j}" / "metrics.json").stat().st_mtime_ns
                     for j in (0, 1)]
    assert not (tmp_path / "tune" / "twin_0").exists()


@pytest.mark.xdist_group("minilm")
def test_resume_reads_back_a_finished_folder_with_the_same_settings(tmp_path, capsys):
    """--resume: a run folder <out>/<name> that finished with the same settings is read
    back, not rerun; other settings (or no --resume) get a new folder, the old one kept."""
    import importlib.util
    from pathlib import Path
    spec = importlib.util.spec_from_file_location(
        "items_cli3", Path(__file__).resolve().parent.parent / "pipelines" / "items.py")
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    base = ["--dataset", "csv:data/samples/hpo_slice_edges.csv",
            "--items", "data/samples/hpo_slice_items.csv",
            "--node-text", "data/samples/hpo_slice_text.csv", "--encoder", "ramen",
            "--epochs", "1", "--negatives", "16", "--cost-items", "5", "--threads", "1",
            "--out", str(tmp_path), "--name", "r", "--quiet"]
    assert cli.main(base + ["--seeds", "0"]) == 0
    run = tmp_path / "r"
    stamp = (run / "metrics.json").stat().st_mtime_ns
    assert cli.main(base + ["--seeds", "0", "--resume"]) == 0
    assert (run / "metrics.json").stat().st_mtime_ns == stamp and not (tmp_path / "r-2").exists()
    assert cli.main(base + ["--seeds", "0", "--resume", "--lr", "3e-3"]) == 0
    assert (run / "metrics.json").stat().st_mtime_ns == stamp
    assert (tmp_path / "r-2" / "metrics.json").exists()
    assert not (tmp_path / "r-2" / "INCOMPLETE").exists()


def test_category_context_appends_first_parent_ancestors():
    from hgraph.data.taxonomy import Taxonomy
    from hgraph.errors import HGraphInputError
    from hgraph.tasks.item_data import context_texts
    from hgraph.tasks.items import config_from_dict
    tax = Taxonomy.from_edges(["a", "b", "c", "c"], ["r", "r", "a", "b"])
    i = {k: tax.index(k) for k in "rabc"}
    tax.texts = [""] * tax.num_nodes
    for k, u in i.items():
        tax.texts[u] = k.upper()
    par = tax.child_to_parent
    first = tax.texts[int(par.indices[par.indptr[i["c"]]])]        # A or B: c's first parent
    assert first in ("A", "B")
    got = context_texts(tax, 1)
    assert got[i["r"]] == "R" and got[i["a"]] == "A ; R" and got[i["c"]] == "C ; " + first
    assert context_texts(tax, 0) == tax.texts
    assert context_texts(tax, 5)[i["c"]] == f"C ; {first} ; R"    # the root ends the path
    with pytest.raises(HGraphInputError, match="category_context"):
        config_from_dict({"category_context": -1})
