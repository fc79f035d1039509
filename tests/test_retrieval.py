"""HyperbolicIndex: faiss and torch search equal brute force; nearest() / CLI."""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from hgraph import manifolds as M
from hgraph.data.taxonomy import Taxonomy
from hgraph.errors import HGraphInputError
from hgraph.export import load_embeddings, save_embeddings
from hgraph.retrieval import HyperbolicIndex, faiss_available, nearest, nearest_to_vector

ROOT = Path(__file__).resolve().parents[1]
needs_faiss = pytest.mark.skipif(not faiss_available(), reason="faiss-cpu not installed")


def _points(kind: str, n: int, d: int, dtype, seed: int = 0, c: float = 0.7, rmax: float = 6.0):
    """Random points at distances up to ~rmax from the origin, cast to ``dtype``."""
    g = torch.Generator().manual_seed(seed)
    m = M.make_manifold(kind, c if kind != "euclidean" else 0.0)
    u = torch.randn(n, d, generator=g, dtype=torch.float64)
    u = u / u.norm(dim=1, keepdim=True) * torch.rand(n, 1, generator=g, dtype=torch.float64) * rmax
    if kind == "poincare":
        x = m.expmap0(u)                                  # geoopt: dist0 = |u| / ... (any spread is fine)
    elif kind == "lorentz":
        x = m.projx(m.expmap0(torch.nn.functional.pad(u, (1, 0))))
    else:
        x = u
    return m, x.to(dtype)


def _reference(m, x, q, k, exclude=None):
    """Brute force: pairwise_dist in float64 on the same (re-projected) points + topk."""
    xx, qq = x.double(), q.double()
    if M.kind(m) == "lorentz":
        xx, qq = m.projx(xx), m.projx(qq)
    D = M.pairwise_dist(m, qq, xx)
    if exclude is not None:
        D[torch.arange(len(qq)), torch.as_tensor(exclude)] = math.inf
    d, i = torch.topk(D, k, largest=False)
    return D, d, i


def _check_equal_up_to_ties(D, ref_d, ref_i, d, i, rtol=1e-7, atol=1e-9):
    """``atol`` is the accuracy of the reference ``D`` itself."""
    # the returned ids really are at the returned distances ...
    assert torch.allclose(D.gather(1, i), d, rtol=rtol, atol=atol)
    # ... and those distances are the k smallest
    assert torch.allclose(d, ref_d, rtol=rtol, atol=atol)
    # ids agree wherever the reference distance at that rank is not (nearly) tied
    srt = torch.sort(D, dim=1).values
    k = ref_i.shape[1]
    gap_prev = torch.cat([torch.full_like(srt[:, :1], math.inf), srt[:, 1:k] - srt[:, :k - 1]], 1)
    gap_next = srt[:, 1:k + 1] - srt[:, :k]
    untied = (gap_prev > 2 * atol) & (gap_next > 2 * atol)
    assert untied.float().mean() > 0.9
    assert torch.equal(i[untied], ref_i[untied])


@pytest.mark.parametrize("kind", ["poincare", "lorentz", "euclidean"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("use_faiss", [pytest.param(True, marks=needs_faiss), False])
def test_search_equals_brute_force(kind, dtype, use_faiss):
    m, x = _points(kind, 1500, 6, dtype, seed=1)
    q = x[:40]
    index = HyperbolicIndex(x, m, use_faiss=use_faiss)
    d, i = index.search(q, 10, exclude_self_ids=torch.arange(40))
    assert d.shape == (40, 10) and i.shape == (40, 10)
    assert d.dtype == torch.float64 and i.dtype == torch.int64
    assert torch.all(d[:, 1:] >= d[:, :-1])
    assert not (i == torch.arange(40)[:, None]).any()
    D, ref_d, ref_i = _reference(m, x, q, 10, exclude=torch.arange(40))
    _check_equal_up_to_ties(D, ref_d, ref_i, d, i)


@needs_faiss
@pytest.mark.parametrize("kind", ["poincare", "lorentz"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_fallback_equals_faiss(kind, dtype):
    m, x = _points(kind, 1200, 5, dtype, seed=2)
    _, q = _points(kind, 30, 5, dtype, seed=3)
    d1, i1 = HyperbolicIndex(x, m, use_faiss=True).search(q, 7)
    d2, i2 = HyperbolicIndex(x, m, use_faiss=False).search(q, 7)
    assert torch.equal(i1, i2)
    assert torch.equal(d1, d2)          # same exact re-ranking code -> bit-identical


@needs_faiss
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_far_from_origin_is_exact_where_float32_inner_product_is_not(dtype):
    """Clusters of radius 0.3 around centres at distance 8 from the origin: the
    float32 Lorentz inner product cannot rank neighbours there (rounding error
    ~ 2^-24 cosh(8)^2 ~ 0.5 >> cosh(0.1) - 1), so plain faiss returns wrong ids;
    the certified re-ranking must still return the exact ones."""
    import faiss
    m = M.make_manifold("lorentz", 1.0)
    g = torch.Generator().manual_seed(4)
    nc, per, d = 40, 50, 6
    # Test data is built without autograd: geoopt's TorchScript functions keep a
    # process-wide specialisation, and after another test has run them with
    # gradients they can return tensors that require grad for plain inputs.
    with torch.no_grad():
        dirs = torch.randn(nc, d, generator=g, dtype=torch.float64)
        cen = m.projx(m.expmap0(torch.nn.functional.pad(dirs / dirs.norm(dim=1, keepdim=True) * 8.0,
                                                        (1, 0))))
        cen = cen.repeat_interleave(per, 0)
        v = torch.nn.functional.pad(torch.randn(nc * per, d, generator=g, dtype=torch.float64), (1, 0))
        v = m.transp0(cen, v)
        v = v / m.norm(v, keepdim=True) * 0.3 * torch.rand(nc * per, 1, generator=g, dtype=torch.float64)
        x = m.projx(m.expmap(cen, v)).to(dtype)
    q = x[::25]
    excl = torch.arange(0, len(x), 25)
    index = HyperbolicIndex(x, m, use_faiss=True)
    dd, ii = index.search(q, 10, exclude_self_ids=excl)
    D, ref_d, ref_i = _reference(m, x, q, 10, exclude=excl)
    # the float64 reference (inner-product formula) itself is off by up to
    # ~1e-16 cosh(8)^2 / sinh(d) ~ 1e-7 here (see test_distances_are_accurate_far_out)
    _check_equal_up_to_ties(D, ref_d, ref_i, dd, ii, rtol=0, atol=1e-6)
    assert index.stats["widened"] > 0          # the certificate did reject the first candidates
    # plain float32 inner-product ranking (no re-ranking) is measurably wrong here
    with torch.no_grad():
        xt = m.projx(x.double())
    xt[:, 0] = -xt[:, 0]
    flat = faiss.IndexFlatIP(d + 1)
    flat.add(xt.float().numpy())
    _, fi = flat.search(m.projx(q.double()).float().numpy(), 11)
    plain = [[j for j in row if j != e][:10] for row, e in zip(fi.tolist(), excl.tolist())]
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(plain, ref_i.tolist())])
    assert overlap < 0.9


@pytest.mark.parametrize("kind", ["poincare", "lorentz"])
def test_distances_are_accurate_far_out(kind):
    """Close pairs 9 units from the origin: the returned distance matches a
    50-digit evaluation of arcosh(-<x, y>_L) to 1e-11 relative, although the
    float64 inner product loses ~cosh(9)^2 * 1e-16 ~ 1e-8 there."""
    mp = pytest.importorskip("mpmath")          # a torch dependency (via sympy)
    mp.mp.dps = 50
    m = M.make_manifold("lorentz", 1.0)
    g = torch.Generator().manual_seed(7)
    dirs = torch.randn(5, 4, generator=g, dtype=torch.float64)
    cen = m.projx(m.expmap0(torch.nn.functional.pad(dirs / dirs.norm(dim=1, keepdim=True) * 9.0, (1, 0))))
    v = m.transp0(cen, torch.nn.functional.pad(torch.randn(5, 4, generator=g, dtype=torch.float64), (1, 0)))
    y = m.projx(m.expmap(cen, v / m.norm(v, keepdim=True) * 1e-3))
    pts = torch.cat([cen, y])                                   # pairs (i, i + 5) at distance 1e-3
    if kind == "poincare":
        pts = M.lorentz_to_poincare(pts, 1.0)
        man = M.make_manifold("poincare", 1.0)
    else:
        man = m
    d, i = HyperbolicIndex(pts, man, use_faiss=False).search(pts[:5], 1, exclude_self_ids=torch.arange(5))
    assert torch.equal(i[:, 0], torch.arange(5, 10))
    for r in range(5):
        if kind == "poincare":
            a = [mp.mpf(t) for t in pts[r].tolist()]
            b = [mp.mpf(t) for t in pts[r + 5].tolist()]
            sq = sum((s - t) ** 2 for s, t in zip(a, b))
            na, nb = sum(s * s for s in a), sum(t * t for t in b)
            true = mp.acosh(1 + 2 * sq / ((1 - na) * (1 - nb)))
        else:
            a = [mp.mpf(t) for t in pts[r, 1:].tolist()]
            b = [mp.mpf(t) for t in pts[r + 5, 1:].tolist()]
            a0, b0 = mp.sqrt(1 + sum(s * s for s in a)), mp.sqrt(1 + sum(t * t for t in b))
            true = mp.acosh(a0 * b0 - sum(s * t for s, t in zip(a, b)))
        assert float(d[r, 0]) == pytest.approx(float(true), rel=1e-11)


@pytest.mark.parametrize("use_faiss", [pytest.param(True, marks=needs_faiss), False])
def test_self_is_nearest_and_k_equals_all(use_faiss):
    m, x = _points("poincare", 60, 3, torch.float64, seed=5)
    index = HyperbolicIndex(x, m, use_faiss=use_faiss)
    d, i = index.search(x, 1)
    assert torch.equal(i[:, 0], torch.arange(60))
    assert d.abs().max() < 1e-6
    d, i = index.search(x[:3], 59, exclude_self_ids=[0, 1, 2])
    assert all(set(row) == set(range(60)) - {r} for r, row in enumerate(i.tolist()))
    D, ref_d, _ = _reference(m, x, x[:3], 59, exclude=[0, 1, 2])
    assert torch.allclose(d, ref_d, rtol=1e-9, atol=1e-12)


def test_bad_arguments():
    m, x = _points("lorentz", 20, 3, torch.float32)
    index = HyperbolicIndex(x, m, use_faiss=False)
    with pytest.raises(ValueError):
        index.search(x, 21)
    with pytest.raises(ValueError):
        index.search(x, 20, exclude_self_ids=torch.arange(20))
    with pytest.raises(ValueError):
        index.search(x[:, :3], 2)
    with pytest.raises(ValueError):
        index.search(x, 2, exclude_self_ids=[0, 1])
    with pytest.raises(ValueError):
        HyperbolicIndex(torch.full((3, 4), math.nan), m)


def test_boundary_points_do_not_break_the_search():
    m = M.make_manifold("poincare", 1.0)
    x = torch.tensor([[0.0, 0.0], [0.5, 0.0], [1.0, 0.0], [0.0, 1.0 + 1e-6], [0.99999994, 0.0]],
                     dtype=torch.float32)
    d, i = HyperbolicIndex(x, m, use_faiss=None).search(x[:2], 3)
    assert torch.isfinite(d).all()
    assert i[0, 0] == 0 and i[1, 0] == 1


# ------------------------------------------------------------------ nearest / CLI
def _toy_run(tmp_path, kind="lorentz"):
    child = ["a", "b", "a x", "a y", "b z", "b w"]
    parent = ["root", "root", "a", "a", "b", "b"]
    tax = Taxonomy.from_edges(child, parent, tree=True)
    m = M.make_manifold(kind, 1.0)
    # hand-placed: children further out in their parent's direction
    pos = {"root": (0.0, 0.0), "a": (0.5, 0.0), "b": (-0.5, 0.0), "a x": (0.7, 0.1),
           "a y": (0.7, -0.1), "b z": (-0.7, 0.1), "b w": (-0.7, -0.1)}
    ball = torch.tensor([pos[n] for n in tax.names], dtype=torch.float64)
    x = M.poincare_to_lorentz(ball, 1.0) if kind == "lorentz" else ball
    save_embeddings(tmp_path, x, tax, m)
    return tax, x, m


@pytest.mark.parametrize("kind", ["lorentz", "poincare"])
def test_nearest_by_name_and_id(tmp_path, kind):
    tax, x, m = _toy_run(tmp_path, kind)
    rows = nearest(tmp_path, "a", k=3)
    assert [r[0] for r in rows][:2] in (["a x", "a y"], ["a y", "a x"])
    assert all(isinstance(r[1], float) and isinstance(r[2], int) for r in rows)
    assert rows[0][2] == 2
    emb = load_embeddings(tmp_path)
    assert nearest(emb, tax.index("a"), k=3) == rows
    assert nearest(emb, str(tax.index("a")), k=3) == rows        # integer string -> id
    d_ax = float(M.pairwise_dist(m, x[[tax.index("a")]], x[[tax.index("a x")]]))
    assert rows[0][1] == pytest.approx(d_ax, rel=1e-9)
    assert len(nearest(emb, "root", k=100)) == tax.num_nodes - 1
    with pytest.raises(HGraphInputError):
        nearest(emb, "no such node", k=3)
    with pytest.raises(HGraphInputError):
        nearest(emb, 99, k=3)


def test_nearest_to_vector(tmp_path):
    tax, x, m = _toy_run(tmp_path, "lorentz")
    emb = load_embeddings(tmp_path)
    res = nearest_to_vector(x[tax.index("b z")], emb, k=2)
    assert len(res) == 1 and res[0][0][0] == "b z" and res[0][0][1] == pytest.approx(0.0, abs=1e-6)
    # a new point given in ball coordinates next to "a y"
    ball = torch.tensor([[0.71, -0.12]], dtype=torch.float64)
    res = nearest_to_vector(ball, tmp_path, k=3, query_kind="poincare")
    assert res[0][0][0] == "a y"


def _load_cli():
    spec = importlib.util.spec_from_file_location("hgraph_query_cli", ROOT / "pipelines" / "query.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_query_cli(tmp_path, capsys):
    _toy_run(tmp_path)
    cli = _load_cli()
    assert cli.main(["--run", str(tmp_path), "--node", "a", "-k", "3"]) == 0
    out = capsys.readouterr().out
    assert "a x" in out and "distance" in out and "level" in out
    assert cli.main(["--run", str(tmp_path), "--node", "b", "-k", "2", "--tsv", "--no-faiss"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "rank\tname\tdistance\tlevel" and len(lines) == 3
    assert cli.main(["--run", str(tmp_path), "--node", "zebra"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "zebra" in err[0]
    assert cli.main(["--run", str(tmp_path / "missing"), "--node", "a"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing" in err[0]
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    assert "--node" in capsys.readouterr().out


def test_query_new_features_through_trained_ramen(tmp_path, capsys):
    """A node's own features, embedded by the reloaded encoder, land on its stored point."""
    import importlib.util
    from pathlib import Path
    from hgraph.cli import parse_config
    from hgraph.data.datasets import load_dataset
    from hgraph.pipeline import run
    from hgraph.results import load_encoder
    from hgraph.export import load_embeddings
    root = Path(__file__).resolve().parent.parent
    args = ["--gen-root-children", "4", "--gen-min-children", "2", "--gen-max-children", "3",
            "--feature-dim", "8", "--encoder", "ramen", "--epochs", "3", "--batch-size", "32",
            "--no-progress", "--no-plots", "--out", str(tmp_path / "r")]
    cfg, _ = parse_config(args)
    res = run(cfg)
    emb = load_embeddings(res.run_dir)
    enc, _ = load_encoder(res.run_dir)
    x = load_dataset(cfg.data).features
    with torch.no_grad():
        z = enc(torch.as_tensor(x[:5], dtype=torch.float32), None, torch.arange(5))
    torch.testing.assert_close(z, emb.points[:5].to(z.dtype), atol=1e-5, rtol=1e-5)
    np.save(tmp_path / "q.npy", x[3])
    spec = importlib.util.spec_from_file_location("query", root / "pipelines" / "query.py")
    q = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(q)
    assert q.main(["--run", str(res.run_dir), "--features", str(tmp_path / "q.npy"), "-k", "3"]) == 0
    out = capsys.readouterr().out
    assert emb.names[3] in out.splitlines()[1]           # nearest to node 3's features is node 3
    bad = tmp_path / "bad.csv"
    bad.write_text("a,1,2\nb,x,3\n")
    assert q.main(["--run", str(res.run_dir), "--features", str(bad)]) == 2
    assert "bad.csv:2" in capsys.readouterr().err
