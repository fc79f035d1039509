"""The fused hyperboloid trainer (hgraph.train.fused): closed-form gradients against
autograd, the row update against geoopt's exponential map, training a small
hierarchy, determinism, Hogwild workers, the pipeline's --trainer fused with
early stopping and bit-exact resume."""
import math
from dataclasses import replace

import geoopt
import numpy as np
import pytest
import torch

from hgraph.cli import parse_config
from hgraph.errors import HGraphInputError
from hgraph.eval.ranking import reconstruction
from hgraph.manifolds.lorentz import cosh_dist_minus_one
from hgraph.train.fused import fit
from hgraph.train.fused_config import FitConfig
from hgraph.train.fused_step import Stepper, init_table, ranking_grads
from hgraph.train.schedule import Plateau

LORENTZ = geoopt.Lorentz()
TREE = ["--gen-root-children", "4", "--gen-min-children", "2", "--gen-max-children", "4",
        "--gen-leaf-prob", "0.1", "0.3", "--feature-dim", "8"]


def _points(n, d, gen, dtype, scale=1.5):
    u = torch.randn(n, d, generator=gen, dtype=torch.float64) * scale
    nrm = u.norm(dim=-1, keepdim=True)
    return torch.cat([torch.cosh(nrm), torch.sinh(nrm) * u / nrm], -1).to(dtype)


def _mink(a, b):
    return (a[..., 1:] * b[..., 1:]).sum(-1) - a[..., 0] * b[..., 0]


@pytest.mark.parametrize("temperature,exact", [(1.0, True), (0.5, True), (1.0, False)])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-9), (torch.float32, 2e-3)])
def test_ranking_grads_equal_autograd_riemannian_gradients(dtype, tol, temperature, exact):
    gen = torch.Generator().manual_seed(0)
    b, K, d = 5, 6, 4
    xu = _points(b, d, gen, dtype)
    xc = _points(b * (K + 1), d, gen, dtype).view(b, K + 1, d + 1)
    dropped = torch.zeros(b, K, dtype=torch.bool)
    dropped[1, 2] = dropped[3, 0] = True
    loss, hu, hc = ranking_grads(xu.clone(), xc.clone(), dropped, temperature=temperature,
                                 exact=exact)

    pu = xu.clone().requires_grad_(True)
    pc = xc.clone().requires_grad_(True)
    dist = torch.acosh(-_mink(pu.unsqueeze(1), pc))
    logits = (-dist / temperature).masked_fill(torch.cat([torch.zeros(b, 1, dtype=torch.bool), dropped], 1),
                                 -math.inf)
    ref = -torch.log_softmax(logits, 1)[:, 0].sum()
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=tol)
    # geoopt's Riemannian gradient on the hyperboloid: metric inverse, then projection
    assert torch.allclose(hu, LORENTZ.egrad2rgrad(pu.detach(), pu.grad), rtol=tol, atol=tol)
    assert torch.allclose(hc, LORENTZ.egrad2rgrad(pc.detach(), pc.grad), rtol=tol, atol=tol)
    # tangent vectors; a dropped negative gets no gradient
    assert _mink(hu, xu).abs().max() < tol * 10
    assert hc[1, 3].abs().max() == 0 and hc[3, 1].abs().max() == 0


@pytest.mark.parametrize("radius", [0.5, 10.0, 19.5])
def test_distance_has_no_cancellation_far_from_the_origin(radius):
    """cosh d - 1 between rows at ``radius`` from the origin and rows up to ~3 away,
    against 60-digit arithmetic on the same float64 space coordinates (a row's time
    coordinate is sqrt(1 + |x_s|^2), as the trainer's ``project`` sets it).  Up to 10
    from the origin the error is ~1e-12 relative; at 19.5 the directions' rounding
    (1e-16 of a unit vector, against angles of ~1e-12 for d = 1e-3) allows ~1e-5 relative
    in cosh d - 1, i.e. ~1e-8 absolute in d, where the Minkowski product is off by more
    than the value itself."""
    import mpmath
    mpmath.mp.dps = 60
    gen = torch.Generator().manual_seed(7)
    d, n = 6, 8
    e = torch.nn.functional.normalize(torch.randn(n, d, generator=gen, dtype=torch.float64), dim=1)
    xs = math.sinh(radius) * e
    # neighbours: a radial and an angular offset of 1e-3 .. 3 in hyperbolic distance
    t = torch.tensor([1e-3, 1e-2, 0.1, 0.5, 1.0, 2.0, 3.0, 0.05], dtype=torch.float64)
    turn = torch.nn.functional.normalize(torch.randn(n, d, generator=gen, dtype=torch.float64), dim=1)
    ys = torch.sinh(radius + t / 2).unsqueeze(1) * torch.nn.functional.normalize(
        e + (t / 2 / math.sinh(radius)).unsqueeze(1) * turn, dim=1)
    x = torch.cat([torch.sqrt(1 + (xs * xs).sum(1, keepdim=True)), xs], 1)
    y = torch.cat([torch.sqrt(1 + (ys * ys).sum(1, keepdim=True)), ys], 1)
    got = cosh_dist_minus_one(x, y)
    naive = -_mink(x, y) - 1.0
    worst = 0.0
    for i in range(n):
        px = [mpmath.mpf(float(v)) for v in xs[i]]
        py = [mpmath.mpf(float(v)) for v in ys[i]]
        a = mpmath.sqrt(1 + sum(v * v for v in px)) * mpmath.sqrt(1 + sum(v * v for v in py)) \
            - sum(p * q for p, q in zip(px, py))
        ref = float(a - 1)
        assert abs(float(got[i]) - ref) <= (1e-9 if radius <= 10 else 1e-4) * ref, \
            (i, float(got[i]), ref)
        worst = max(worst, abs(float(naive[i]) - ref) / ref)
    if radius > 19:
        assert worst > 1.0         # what the trainer computed before


def test_row_update_is_the_exponential_map_capped_at_max_step():
    gen = torch.Generator().manual_seed(1)
    x = _points(6, 3, gen, torch.float64)
    before = x.clone()
    cfg = FitConfig(dim=3, max_step=0.1)
    st = Stepper(x, torch.zeros(0, 2, dtype=torch.long), None, cfg)
    rows = torch.tensor([1, 4, 1])
    raw = torch.randn(3, 4, generator=gen, dtype=torch.float64) * 0.01
    h = raw + _mink(before[rows], raw).unsqueeze(1) * before[rows]       # tangent at each row
    st._move(rows, h, lr=1.0)
    for r, hs in ((1, h[0] + h[2]), (4, h[1])):
        v = -hs
        n = float(torch.sqrt(_mink(v, v)))
        if n > cfg.max_step:
            v = v * (cfg.max_step / n)
        ref = LORENTZ.expmap(before[r], v)
        assert torch.allclose(x[r], ref, atol=1e-10)
        moved = float(torch.acosh((-_mink(x[r], before[r])).clamp_min(1.0)))
        assert moved == pytest.approx(min(n, cfg.max_step), rel=1e-6)
    untouched = torch.tensor([0, 2, 3, 5])
    assert torch.equal(x[untouched], before[untouched])
    assert torch.allclose(_mink(x, x), torch.full((6,), -1.0, dtype=torch.float64), atol=1e-9)


def _small_tree():
    from hgraph.data.generate import generate_tree
    return generate_tree(root_children=4, min_children=2, max_children=4, seed=0)


def test_fit_reconstructs_a_small_tree_and_is_deterministic():
    tax = _small_tree()
    cfg = FitConfig(dim=5, lr=0.1, batch_size=64, epochs=60, init="uniform", burnin=5,
                    burnin_lr_divisor=10)
    a = fit(tax.closure, cfg, edges=tax.edges)
    b = fit(tax.closure, cfg, edges=tax.edges)
    assert torch.equal(a.x, b.x)
    r = reconstruction(LORENTZ, a.x, tax.closure)
    assert r["map"] >= 0.95, r
    assert a.history[-1]["loss"] < a.history[0]["loss"]


def test_two_hogwild_workers_train_one_shared_table():
    tax = _small_tree()
    cfg = FitConfig(dim=5, lr=0.1, batch_size=64, epochs=60, init="uniform", burnin=5,
                    workers=2)
    res = fit(tax.closure, cfg, edges=tax.edges)
    assert reconstruction(LORENTZ, res.x, tax.closure)["map"] >= 0.9


def test_negatives_skip_the_anchor_and_its_ancestors():
    """Every draw is masked when all nodes are u or u's ancestors: the loss is then
    d(u, v) - d(u, v) = 0 for each pair and no negative moves."""
    import scipy.sparse as sp
    n = 4
    closure = sp.csr_matrix((np.ones(3), ([3, 3, 3], [0, 1, 2])), shape=(n, n))
    keys = torch.tensor(sorted([3 * n + 0, 3 * n + 1, 3 * n + 2]))
    x = _points(n, 2, torch.Generator().manual_seed(2), torch.float64)
    st = Stepper(x, torch.tensor([[3, 0]]), keys, FitConfig(dim=2, negatives=20))
    loss = st.step(torch.tensor([3]), torch.tensor([0]), 0.1, torch.Generator().manual_seed(0))
    assert loss == pytest.approx(0.0, abs=1e-12)
    del closure


def _sampling_case():
    """The small tree's closure pairs and keys, random points, its deepest node u with its
    parent, u's distances to every node, and the uniform draw's expected term per
    negative: (1 / n) sum of exp(-d(u, j)) over the j that are not u or u's ancestors."""
    tax = _small_tree()
    n = tax.num_nodes
    c = tax.closure.tocoo()
    pairs = torch.from_numpy(np.stack([c.row, c.col], 1).astype(np.int64))
    keys = torch.from_numpy(np.sort(c.row.astype(np.int64) * n + c.col))
    x = _points(n, 3, torch.Generator().manual_seed(4), torch.float64, scale=0.8)
    ancestors = {int(u): set(tax.closure[int(u)].indices.tolist()) for u in range(n)}
    deep = max(range(n), key=lambda u: len(ancestors[u]))
    parent = int(tax.edges[tax.edges[:, 0] == deep][0, 1])
    d = torch.acosh((-_mink(x[deep].unsqueeze(0), x)).clamp_min(1.0))
    allowed = torch.ones(n, dtype=torch.bool)
    allowed[deep] = False
    allowed[sorted(ancestors[deep])] = False
    expected = float(torch.exp(-d[allowed]).sum()) / n
    return n, c, pairs, keys, x, ancestors, deep, parent, d, expected


def test_local_negatives_are_drawn_below_v_and_weighted_to_estimate_the_uniform_sum():
    """With ``local_negatives`` half the draws come from v's descendants; with their
    importance weights the sampled normaliser sum_j w_j exp(-d(u, j)) has the
    expectation of K uniform draws' (K / n) sum over the nodes that are not u or u's
    ancestors, for a deep pair (v = u's parent) and for v = the root."""
    n, c, pairs, keys, x, ancestors, deep, parent, d, expected = _sampling_case()
    K, draws = 8, 40000
    st = Stepper(x, pairs, keys, FitConfig(dim=3, negatives=K, local_negatives=0.5))
    root = next(a for a in ancestors[deep] if not ancestors[a])
    for v in (parent, root):
        u_t = torch.full((draws,), deep)
        cand, dropped, offset = st.negatives(u_t, torch.full((draws,), v),
                                             torch.Generator().manual_seed(5))
        neg = cand[:, 1:]
        below = {int(w) for w in c.row[c.col == v]}
        assert all(int(w) in below for w in neg[:, K // 2:].unique())   # the local half
        assert bool(dropped[neg == deep].all())
        assert bool(dropped[torch.isin(neg, torch.tensor(sorted(ancestors[deep])))].all())
        terms = torch.where(dropped, torch.zeros_like(offset), torch.exp(offset - d[neg]))
        assert float(terms.sum(1).mean()) == pytest.approx(K * expected, rel=0.03), v
    with pytest.raises(HGraphInputError, match="local_negatives"):
        FitConfig(local_negatives=1.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_nearest_non_ancestors_are_the_nearest_rows_that_are_not_self_or_ancestors(dtype):
    from hgraph.train.fused_negatives import nearest_non_ancestors
    tax = _small_tree()
    n = tax.num_nodes
    c = tax.closure.tocoo()
    keys = torch.from_numpy(np.sort(c.row.astype(np.int64) * n + c.col))
    x = _points(n, 3, torch.Generator().manual_seed(6), dtype, scale=0.8)
    k = 5
    near = nearest_non_ancestors(x, keys, k, chunk=7)             # several chunks
    d = torch.acosh((-_mink(x.unsqueeze(1).double(), x.unsqueeze(0).double())).clamp_min(1.0))
    for u in range(n):
        allowed = torch.ones(n, dtype=torch.bool)
        allowed[u] = False
        allowed[tax.closure[u].indices] = False
        best = torch.sort(d[u][allowed])[0][:k]
        assert bool(allowed[near[u]].all()) and near[u].unique().numel() == k
        assert torch.allclose(torch.sort(d[u][near[u]])[0], best, atol=1e-4 if dtype == torch.float32 else 1e-9)


def test_nearest_by_angle_lists_valid_near_rows_deterministically():
    """The HNSW path (WordNet-sized tables): every listed row is neither u nor an ancestor,
    no repeats, and most of the exact list is found."""
    from hgraph.train.fused_negatives import nearest_non_ancestors
    tax = _small_tree()
    n = tax.num_nodes
    c = tax.closure.tocoo()
    keys = torch.from_numpy(np.sort(c.row.astype(np.int64) * n + c.col))
    # a tree-shaped table (nested cones, radius 4): far out, the nearest rows lie in u's
    # direction (on WordNet nouns' trained table the lists share 35% with the exact ones)
    x = init_table(FitConfig(dim=4, init="cone", init_radius=4.0), n, tax.edges)
    near = nearest_non_ancestors(x, keys, 5, method="angle")
    assert torch.equal(near, nearest_non_ancestors(x, keys, 5, method="angle"))
    exact = nearest_non_ancestors(x, keys, 5, method="exact")
    hits = 0
    for u in range(n):
        bad = {u, *tax.closure[u].indices.tolist()}
        assert not bad & set(near[u].tolist()) and near[u].unique().numel() == 5
        hits += len(set(near[u].tolist()) & set(exact[u].tolist()))
    assert hits >= 0.8 * 5 * n
    with pytest.raises(ValueError, match="method"):
        nearest_non_ancestors(x, keys, 5, method="nope")


def test_near_negatives_are_weighted_to_estimate_the_uniform_sum():
    """With ``near_negatives`` half the draws come from u's neighbour list; with their
    importance weights the sampled normaliser has the expectation of uniform draws'."""
    from hgraph.train.fused_negatives import nearest_non_ancestors
    n, c, pairs, keys, x, ancestors, deep, parent, d, expected = _sampling_case()
    K, draws = 8, 40000
    st = Stepper(x, pairs, keys, FitConfig(dim=3, negatives=K, near_negatives=0.5, near_k=6))
    st.set_near(nearest_non_ancestors(x, keys, 6))
    cand, dropped, offset = st.negatives(torch.full((draws,), deep), torch.full((draws,), parent),
                                         torch.Generator().manual_seed(5))
    neg = cand[:, 1:]
    assert set(neg[:, K // 2:].unique().tolist()) == set(st.near[deep].tolist())
    terms = torch.where(dropped, torch.zeros_like(offset), torch.exp(offset - d[neg]))
    assert float(terms.sum(1).mean()) == pytest.approx(K * expected, rel=0.03)
    # unweighted, the estimate is biased toward the near nodes
    raw = torch.where(dropped, torch.zeros_like(offset), torch.exp(-d[neg]))
    assert float(raw.sum(1).mean()) > 1.1 * K * expected
    # near_weighted=False: the same draws, no weights (the loss leans on the near nodes)
    st2 = Stepper(x, pairs, keys, FitConfig(dim=3, negatives=K, near_negatives=0.5, near_k=6,
                                            near_weighted=False))
    st2.set_near(st.near)
    cand2, _, offset2 = st2.negatives(torch.full((draws,), deep), torch.full((draws,), parent),
                                      torch.Generator().manual_seed(5))
    assert offset2 is None and torch.equal(cand2, cand)
    with pytest.raises(HGraphInputError, match="near_negatives"):
        FitConfig(near_negatives=0.5, workers=2)


def test_fit_with_near_negatives_reconstructs_a_small_tree():
    tax = _small_tree()
    cfg = FitConfig(dim=5, lr=0.1, batch_size=64, epochs=40, init="cone", init_radius=4,
                    near_negatives=0.5, near_k=8, near_every=5)
    a = fit(tax.closure, cfg, edges=tax.edges)
    assert torch.equal(a.x, fit(tax.closure, cfg, edges=tax.edges).x)
    assert reconstruction(LORENTZ, a.x, tax.closure)["map"] >= 0.95


def test_config_rejects_what_the_fused_trainer_cannot_take():
    # the plateau schedule serves the loop too (tests/test_train.py checks its drops)
    assert parse_config(["--encoder", "ramen", "--lr-schedule", "plateau"])[0] \
        .train.lr_schedule == "plateau"
    with pytest.raises(HGraphInputError, match="workers must be >= 1"):
        parse_config(["--workers", "0"])
    with pytest.raises(HGraphInputError, match="init_radius must be >= 0"):
        parse_config(["--init-radius", "-1"])
    with pytest.raises(HGraphInputError, match="temperature is the fused trainer's"):
        parse_config(["--encoder", "ramen", "--temperature", "0.5"])
    with pytest.raises(HGraphInputError, match="temperature must be > 0"):
        parse_config(["--encoder", "shallow", "--temperature", "0"])
    with pytest.raises(HGraphInputError, match="local_negatives is the fused trainer's"):
        parse_config(["--encoder", "ramen", "--local-negatives", "0.5"])
    with pytest.raises(HGraphInputError, match=r"local_negatives is a share in \[0, 1\)"):
        parse_config(["--encoder", "shallow", "--local-negatives", "1"])
    with pytest.raises(HGraphInputError, match="near_negatives is the fused trainer's"):
        parse_config(["--encoder", "shallow", "--near-negatives", "0.2", "--workers", "2"])
    with pytest.raises(HGraphInputError, match=r"near_negatives is a share in \[0, 1\)"):
        parse_config(["--encoder", "shallow", "--near-negatives", "1"])


def test_plateau_drops_the_rate_then_stops():
    p = Plateau(patience=2, drops=1)
    assert p.update(0.5) == (True, False)
    assert p.update(0.4) == (False, False) and p.scale == 1.0
    assert p.update(0.4) == (False, False) and p.scale == pytest.approx(Plateau.FACTOR)
    assert p.update(0.6) == (True, False)
    assert p.update(0.6) == (False, False)
    assert p.update(0.1) == (False, True)
    assert Plateau(patience=0).update(0.0) == (True, False)
    # a new best by less than MIN_DELTA is kept but does not reset the patience
    q = Plateau(patience=2, drops=0)
    assert q.update(0.5) == (True, False)
    assert q.update(0.5 + Plateau.MIN_DELTA / 2) == (True, False)
    assert q.update(0.5 + Plateau.MIN_DELTA * 0.9) == (True, True)


@pytest.mark.parametrize("drops", [0, 2])
def test_fit_takes_drops_rate_drops_before_a_stall_stops_it(drops):
    """schedule 'plateau', patience 1, a score that never improves: the first epoch sets
    the reference, each later one drops the rate (``drops`` times), the next one stops."""
    tax = _small_tree()
    res = fit(tax.closure, FitConfig(dim=3, lr=0.1, epochs=20, schedule="plateau", patience=1,
                                     drops=drops, init="uniform", seed=0),
              edges=tax.edges, on_epoch=lambda e, x, rec: 0.5)
    assert [h["lr"] for h in res.history] == pytest.approx(
        [0.1, 0.1] + [0.1 * Plateau.FACTOR ** k for k in range(1, drops + 1)])
    with pytest.raises(HGraphInputError, match="drops must be >= 0"):
        FitConfig(drops=-1)


def test_linear_schedule_falls_to_lr_over_n_after_burnin_and_fit_follows_it():
    from hgraph.train.fused import lr_at
    cfg = FitConfig(lr=2.0, epochs=6, burnin=2, burnin_lr_divisor=10, schedule="linear")
    assert [lr_at(cfg, e) for e in range(6)] == pytest.approx([0.2, 0.2, 2.0, 1.5, 1.0, 0.5])
    assert lr_at(replace(cfg, schedule="constant"), 5) == 2.0
    with pytest.raises(HGraphInputError, match="schedule"):
        FitConfig(schedule="cosine")
    tax = _small_tree()
    res = fit(tax.closure, FitConfig(dim=5, lr=0.1, batch_size=64, epochs=4, init="uniform",
                                     schedule="linear"), edges=tax.edges)
    assert [h["lr"] for h in res.history] == pytest.approx([0.1, 0.075, 0.05, 0.025])


def test_shallow_preset_is_fused_on_the_hyperboloid_unless_ruled_out():
    cfg, _ = parse_config(["--encoder", "shallow"])
    assert (cfg.train.trainer, cfg.model.manifold, cfg.train.lr_schedule,
            cfg.train.temperature) == ("fused", "lorentz", "plateau", 0.25)
    cfg, _ = parse_config(["--encoder", "shallow", "--manifold", "poincare"])
    assert (cfg.train.trainer, cfg.train.lr_schedule, cfg.train.temperature) == \
        ("loop", "constant", 1.0)
    cfg, _ = parse_config(["--encoder", "shallow", "--reg-lambda", "0.5"])
    assert cfg.train.trainer == "loop"


def test_fused_trainer_refuses_what_it_cannot_train(tmp_path):
    from hgraph.pipeline import run
    cfg, _ = parse_config([*TREE, "--encoder", "shallow", "--manifold", "poincare",
                           "--trainer", "fused", "--out", str(tmp_path), "--no-progress",
                           "--no-plots"])
    with pytest.raises(HGraphInputError, match="--manifold lorentz"):
        run(cfg)


def _prepared(*extra):
    from hgraph import manifolds as M
    from hgraph.data.datasets import load_dataset
    from hgraph.nn import EncoderSpec, build_encoder
    from hgraph.pipeline import make_embedders, prepare
    from hgraph.train import TrainData
    cfg, _ = parse_config([*TREE, "--encoder", "shallow", "--val-frac", "0", "--test-frac", "0",
                           *extra])
    tax = load_dataset(cfg.data)
    prep = prepare(cfg, tax, torch.device("cpu"), torch.float64)

    def build():
        torch.manual_seed(0)
        spec = EncoderSpec(cfg.model, M.make_manifold(cfg.model.manifold), tax.num_nodes,
                           None, edges=prep.splits.train)
        m = build_encoder(spec).to(dtype=torch.float64)
        emb, ea = make_embedders(m, prep, cfg, torch.device("cpu"))
        return m, TrainData(tax.num_nodes, prep.positives, prep.sampler, emb, ea,
                            val_metric="recon", train_closure=prep.splits.train_closure)
    return cfg, build


@pytest.mark.parametrize("extra", [(), ("--near-negatives", "0.2", "--near-k", "4",
                                        "--near-every", "3")])
def test_fused_resume_from_checkpoint_equals_uninterrupted(checkpoint_at, extra):
    """Resumed at epoch 5 (with near lists: between two recomputations, at 3 and 6, so the
    checkpoint's lists are the ones used) the run ends as the uninterrupted one."""
    from hgraph.train.fused import fit_model
    cfg, build = _prepared(*extra)
    tc = replace(cfg.train, epochs=8, checkpoint_every=1, eval_every=2, patience=0)
    checkpoint, load = checkpoint_at(5)
    m1, d1 = build()
    r1 = fit_model(m1, d1, tc, seed=0, progress=False, checkpoint=checkpoint)
    m2, d2 = build()
    r2 = fit_model(m2, d2, tc, seed=0, progress=False, resume=load())
    assert [h["loss"] for h in r1.history] == [h["loss"] for h in r2.history]
    assert r1.epochs_run == r2.epochs_run == 8 and r1.best_epoch == r2.best_epoch
    assert torch.equal(m1.weight, m2.weight)


def test_fused_pipeline_keeps_the_best_validated_table_and_stops_on_plateau(tmp_path):
    from hgraph.pipeline import run
    cfg, _ = parse_config([*TREE, "--encoder", "shallow", "--dim", "5", "--val-frac", "0",
                           "--test-frac", "0", "--epochs", "400", "--eval-every", "2",
                           "--patience", "2", "--out", str(tmp_path), "--no-progress",
                           "--no-plots"])
    res = run(cfg)
    hist = res.histories[0]
    vals = [h["val"] for h in hist if "val" in h]
    assert res.per_seed[0]["epochs_run"] < 400 and hist[-1].get("stopped_early")
    lrs = sorted({h["lr"] for h in hist}, reverse=True)
    assert lrs[0] == pytest.approx(cfg.train.lr) and len(lrs) == Plateau.DROPS + 1
    best = max(vals)
    assert res.per_seed[0]["best_epoch"] == next(h["epoch"] for h in hist if h.get("val") == best)
    assert res.mean("recon_map") >= 0.95
