"""The hgcn encoder: registry, shapes, manifold, equivariance, mini-batch and
layer-wise inference equal to full batch, learned curvature, numerics."""
import copy
import importlib.util

import geoopt
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_geometric.nn import GCNConv

from hgraph import manifolds as M
from hgraph.config import ModelConfig
from hgraph.nn import ENCODERS, EncoderSpec, build_encoder
from hgraph.nn.hgcn import HGCNEncoder, graph_degree

KINDS = ["poincare", "lorentz", "euclidean"]
MODES = [(False, False), (True, False), (False, True), (True, True)]   # (attention, local_agg)


def on_manifold(man, x, tol=None):
    if not torch.isfinite(x).all():
        return False
    k = M.kind(man)
    tol = tol or (1e-5 if x.dtype == torch.float32 else 1e-10)
    if k == "poincare":
        return bool(((x * x).sum(-1) * man.c.to(x) < 1).all()) and \
            man.check_point_on_manifold(x, atol=tol)
    if k == "lorentz":
        kk = man.k.to(x)
        x0 = x[..., 0]
        quad = -x0 * x0 + (x[..., 1:] ** 2).sum(-1)
        return bool((x0 > 0).all()) and bool(((quad + kk).abs() <= tol * (x0 * x0 + kk)).all())
    return True


def random_tree(n, seed=0):
    """(2, 2(n-1)) edge_index of a random recursive tree, both directions."""
    g = torch.Generator().manual_seed(seed)
    child = torch.arange(1, n)
    parent = (torch.rand(n - 1, generator=g) * child).long()
    return torch.cat([torch.stack([child, parent]), torch.stack([parent, child])], dim=1)


def make(name="poincare", n=60, in_dim=6, dtype=torch.float32, learn=False, **kw):
    kw.setdefault("dim", 3)
    kw.setdefault("hidden", 8)
    cfg = ModelConfig(encoder="hgcn", manifold=name, learn_curvature=learn, **kw)
    man = M.make_manifold(name, cfg.curvature, learnable=learn)
    enc = build_encoder(EncoderSpec(cfg, man, n, in_dim))
    return enc.to(dtype)


def test_registered_and_built_from_spec():
    assert ENCODERS["hgcn"] is HGCNEncoder
    enc = make("lorentz", in_dim=5, layers=3)
    assert isinstance(enc, HGCNEncoder) and enc.uses_graph and enc.inductive
    assert len(enc.blocks) == 3 and enc.blocks[-1].act is None
    assert enc.out_dim == 4
    # fixed curvature: one manifold object shared by every layer
    assert all(m is enc.manifold for m in enc.manifolds)
    assert "HGCNEncoder(" in repr(enc)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("attention,local", MODES)
@pytest.mark.parametrize("name", KINDS)
def test_output_on_manifold_shape_and_equivariance(name, attention, local, dtype):
    torch.manual_seed(0)
    n = 50
    enc = make(name, n=n, dtype=dtype, attention=attention, local_agg=local)
    x = 0.5 * torch.randn(n, 6, dtype=dtype)
    ei = random_tree(n, 1)
    ids = torch.arange(n)
    z = enc(x, ei, ids)
    assert z.shape == (n, enc.out_dim) and z.dtype == dtype
    assert on_manifold(enc.manifold, z)
    # permute nodes (rows, edge_index, node ids): outputs permute the same way
    perm = torch.randperm(n)
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(n)
    z_perm = enc(x[perm], inv[ei], ids[perm])
    tol = 1e-4 if dtype == torch.float32 else 1e-9
    torch.testing.assert_close(z_perm, z[perm], atol=tol, rtol=tol)


def test_id_embeddings_without_features_and_equivariance():
    n = 40
    cfg = ModelConfig(encoder="hgcn", manifold="poincare", dim=3, hidden=8)
    enc = build_encoder(EncoderSpec(cfg, M.make_manifold("poincare"), n, None))
    assert enc.use_ids and enc.emb.weight.shape == (n, 8)
    ei, ids = random_tree(n, 2), torch.arange(n)
    z = enc(None, ei, ids)
    assert on_manifold(enc.manifold, z)
    perm = torch.randperm(n)
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(n)
    torch.testing.assert_close(enc(None, inv[ei], ids[perm]), z[perm])
    # id_embeddings=True ignores given features
    enc2 = make(n=n, id_embeddings=True)
    assert enc2.use_ids and enc2.in_dim == 8


def test_input_errors():
    enc = make(n=10, in_dim=4)
    ei, ids = random_tree(10), torch.arange(10)
    with pytest.raises(ValueError, match="x=None"):
        enc(None, ei, ids)
    with pytest.raises(ValueError, match=r"\(n, 4\)"):
        enc(torch.randn(10, 5), ei, ids)
    with pytest.raises(ValueError, match="edge_index"):
        enc(torch.randn(10, 4), None, ids)
    with pytest.raises(ValueError, match="layers"):
        make(layers=0)


def test_euclidean_hgcn_is_pyg_gcn():
    """manifold=euclidean, no bias: relu(GCNConv) -> GCNConv with the same weights."""
    torch.manual_seed(0)
    n = 30
    enc = make("euclidean", n=n, in_dim=5, dtype=torch.float64, bias=False, agg_norm="sym")
    c1, c2 = GCNConv(5, 8, bias=False).double(), GCNConv(8, 3, bias=False).double()
    with torch.no_grad():
        c1.lin.weight.copy_(enc.blocks[0].lin.weight)
        c2.lin.weight.copy_(enc.blocks[1].lin.weight)
    x, ei = torch.randn(n, 5, dtype=torch.float64), random_tree(n, 3)
    torch.testing.assert_close(enc(x, ei, torch.arange(n)), c2(torch.relu(c1(x, ei)), ei))


@pytest.mark.parametrize("attention,local", MODES)
@pytest.mark.parametrize("name", KINDS)
def test_inference_equals_full_forward(name, attention, local):
    torch.manual_seed(0)
    n = 70
    ei = random_tree(n, 4)
    ids = torch.arange(n)
    for dtype in (torch.float64, torch.float32):
        enc = make(name, n=n, dtype=dtype, attention=attention, local_agg=local, dropout=0.3)
        enc.eval()
        x = 0.5 * torch.randn(n, 6, dtype=dtype)
        full = enc(x, ei, ids)
        enc.train()
        out = enc.inference(x, ei, n, batch_size=16)
        assert enc.training                               # mode restored
        assert out.shape == full.shape
        tol = 1e-4 if dtype == torch.float32 else 1e-9
        torch.testing.assert_close(out, full, atol=tol, rtol=tol)


def test_inference_with_id_embeddings_and_isolated_nodes():
    n = 30
    cfg = ModelConfig(encoder="hgcn", manifold="lorentz", dim=3, hidden=8, layers=3)
    enc = build_encoder(EncoderSpec(cfg, M.make_manifold("lorentz"), n, None)).double()
    ei = random_tree(20, 5)                  # nodes 20..29 have no edges
    full = enc(None, ei, torch.arange(n))
    torch.testing.assert_close(enc.inference(None, ei, n, batch_size=7), full)


def _two_hop_subgraph(ei, seeds, layers):
    """All in-edges of every node within layers-1 hops of the seeds, relabelled with
    the seeds first (what NeighborLoader gives with num_neighbors=[-1] * layers)."""
    nodes = list(seeds.tolist())
    frontier = seeds
    edges = []
    for _ in range(layers):
        mask = torch.isin(ei[1], frontier)
        edges.append(ei[:, mask])
        new = [j for j in ei[0, mask].unique().tolist() if j not in set(nodes)]
        nodes += new
        frontier = torch.tensor(new, dtype=torch.long)
    n_id = torch.tensor(nodes)
    sub = torch.unique(torch.cat(edges, dim=1), dim=1)
    relabel = torch.full((int(ei.max()) + 1,), -1, dtype=torch.long)
    relabel[n_id] = torch.arange(len(n_id))
    return n_id, relabel[sub]


@pytest.mark.parametrize("norm", ["mean", "sym"])
@pytest.mark.parametrize("attention,local", MODES)
@pytest.mark.parametrize("name", KINDS)
def test_subgraph_forward_equals_full_for_seeds(name, attention, local, norm):
    torch.manual_seed(0)
    n = 80
    enc = make(name, n=n, dtype=torch.float64, attention=attention, local_agg=local,
               agg_norm=norm)
    x, ei = 0.5 * torch.randn(n, 6, dtype=torch.float64), random_tree(n, 6)
    full = enc(x, ei, torch.arange(n))
    seeds = torch.tensor([0, 5, 17, 42, 79])
    n_id, sub_ei = _two_hop_subgraph(ei, seeds, layers=2)
    enc.set_graph(ei)
    torch.testing.assert_close(enc(x[n_id], sub_ei, n_id)[:len(seeds)], full[seeds])
    if not attention and norm == "sym":   # without the full graph's degrees GCN weights differ
        enc.set_graph(None)
        assert not torch.allclose(enc(x[n_id], sub_ei, n_id)[:len(seeds)], full[seeds])


@pytest.mark.parametrize("backend", [
    "torch", pytest.param("compiled", marks=pytest.mark.skipif(
        not importlib.util.find_spec("torch_sparse") and not importlib.util.find_spec("pyg_lib"),
        reason="the compiled sampler needs pyg-lib or torch-sparse"))])
@pytest.mark.parametrize("name", ["poincare", "lorentz"])
def test_neighbor_loader_batches_equal_full_batch(name, backend):
    from torch_geometric.data import Data
    from torch_geometric.loader import NeighborLoader
    from hgraph.data.sampling import make_neighbor_sampler

    torch.manual_seed(0)
    n = 120
    enc = make(name, n=n, dtype=torch.float64)
    x, ei = 0.5 * torch.randn(n, 6, dtype=torch.float64), random_tree(n, 7)
    full = enc(x, ei, torch.arange(n))
    enc.set_graph(ei)
    data = Data(x=x, edge_index=ei, num_nodes=n)
    loader = NeighborLoader(data, num_neighbors=[-1, -1], batch_size=16, shuffle=True,
                            neighbor_sampler=make_neighbor_sampler(data, [-1, -1], backend))
    seen = 0
    for batch in loader:
        z = enc(batch.x, batch.edge_index, batch.n_id)[:batch.batch_size]
        torch.testing.assert_close(z, full[batch.n_id[:batch.batch_size]])
        seen += batch.batch_size
    assert seen == n


def test_set_graph_degrees():
    enc = make(n=10)
    ei = torch.cat([random_tree(10, 8), torch.tensor([[3], [3]])], dim=1)   # self-loop ignored
    enc.set_graph(ei)
    torch.testing.assert_close(enc.degree, graph_degree(random_tree(10, 8), 10))
    assert "degree" in enc.state_dict()
    enc.set_graph(None)
    assert (enc.degree == 0).all()


@pytest.mark.parametrize("name,steps,target", [("poincare", 30, 0.01), ("lorentz", 4, 0.3)])
def test_learned_curvature_stays_positive(name, steps, target):
    """RiemannianAdam (lr 0.5) on a loss that rewards driving each layer's curvature
    parameter to 0 (c on the ball, k = 1/c on the hyperboloid): it stays > 0 and
    the encoder stays finite.  (On the hyperboloid k < ~0.1, i.e. c > ~9, is left
    out: manifolds.expmap0's float32 cap overflows cosh there.)"""
    torch.manual_seed(0)
    n = 30
    enc = make(name, n=n, learn=True, layers=3)
    mans = enc.manifolds
    assert len({id(m) for m in mans}) == 3 and mans[-1] is enc.manifold

    def params():
        return [m.c if name == "poincare" else m.k for m in mans]

    x, ei = torch.randn(n, 6), random_tree(n, 9)
    opt = geoopt.optim.RiemannianAdam(enc.parameters(), lr=0.5)
    for _ in range(steps):
        opt.zero_grad()
        z = enc(x, ei, torch.arange(n))
        loss = 100 * sum(params()) + 1e-3 * M.dist0(enc.manifold, z).sum()
        loss.backward()
        opt.step()
    with torch.no_grad():
        vals = torch.stack(params())
        assert torch.isfinite(vals).all() and (vals > 0).all() and (vals < target).all()
        z = enc(x, ei, torch.arange(n))
        assert on_manifold(enc.manifold, z, tol=1e-4)
    assert all(torch.isfinite(p).all() for p in enc.parameters())


@settings(max_examples=10, deadline=None)
@given(log_scale=st.floats(-8, 6), name=st.sampled_from(["poincare", "lorentz"]),
       mode=st.sampled_from(MODES), seed=st.integers(0, 50))
def test_finite_outputs_and_grads_for_any_feature_scale_float32(log_scale, name, mode, seed):
    torch.manual_seed(seed)
    n = 25
    enc = make(name, n=n, attention=mode[0], local_agg=mode[1])
    x = (10.0 ** log_scale * torch.randn(n, 6)).requires_grad_(True)
    z = enc(x, random_tree(n, seed), torch.arange(n))
    assert on_manifold(enc.manifold, z)
    M.dist0(enc.manifold, z).sum().backward()
    grads = [p.grad for p in enc.parameters() if p.grad is not None] + [x.grad]
    assert all(torch.isfinite(g).all() for g in grads)


def test_dropout_train_vs_eval():
    n = 20
    enc = make(n=n, dropout=0.5)
    x, ei, ids = torch.randn(n, 6), random_tree(n, 10), torch.arange(n)
    enc.eval()
    torch.testing.assert_close(enc(x, ei, ids), enc(x, ei, ids))
    enc.train()
    assert not torch.allclose(enc(x, ei, ids), enc(x, ei, ids))


def test_state_dict_round_trip():
    enc = make("lorentz", n=15, learn=True)
    enc.set_graph(random_tree(15, 11))
    other = make("lorentz", n=15, learn=True)
    other.load_state_dict(copy.deepcopy(enc.state_dict()))
    x, ei, ids = torch.randn(15, 6), random_tree(15, 11), torch.arange(15)
    torch.testing.assert_close(other(x, ei, ids), enc(x, ei, ids))
