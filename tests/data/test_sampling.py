"""hgraph.data.sampling: the pure-PyTorch neighbour sampler against the graph it samples
and, where torch-sparse or pyg-lib is installed, against PyG's compiled sampler."""
import itertools

import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.loader import NeighborLoader
from torch_geometric.utils import to_undirected

from hgraph.data import sampling
from hgraph.data.sampling import (TorchNeighborSampler, compiled_sampler_available,
                                  make_neighbor_sampler, sampler_backend)

needs_compiled = pytest.mark.skipif(not compiled_sampler_available(),
                                    reason="needs pyg-lib or torch-sparse "
                                           "(HGRAPH_TORCH_SPARSE=1 scripts/setup_env.sh)")
BACKENDS = ["torch", pytest.param("compiled", marks=needs_compiled)]


def graph(n=300, extra=150, isolated=5, seed=0):
    """A random tree on n - isolated nodes in both directions, plus ``extra`` random
    directed edges (nodes with several parents, skewed in-degrees), and isolated
    nodes at the end."""
    g = torch.Generator().manual_seed(seed)
    m = n - isolated
    parent = torch.cat([torch.zeros(1, dtype=torch.long)] +
                       [torch.randint(0, i, (1,), generator=g) for i in range(1, m)])[1:]
    ei = to_undirected(torch.stack([parent, torch.arange(1, m)]))
    more = torch.randint(0, m, (2, extra), generator=g)
    more = more[:, more[0] != more[1]]
    ei = torch.unique(torch.cat([ei, more], dim=1), dim=1)
    ei = ei[:, torch.randperm(ei.size(1), generator=g)]      # unsorted: perm is not None
    return Data(edge_index=ei, num_nodes=n)


def loader(data, fanouts, backend="torch", **kw):
    return NeighborLoader(data, num_neighbors=fanouts, batch_size=1,
                          neighbor_sampler=make_neighbor_sampler(data, fanouts, backend=backend,
                                                                 **kw))


def in_neighbours(data):
    out = [set() for _ in range(data.num_nodes)]
    for s, t in data.edge_index.t().tolist():
        out[t].add(s)
    return out


SEEDS = torch.tensor([0, 3, 17, 42, 150, 296, 299])      # 296..299 are isolated


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fanouts", [[3, 2], [1, 1, 1], [5], [-1, 2], [2, -1]])
def test_sample_invariants(backend, fanouts):
    data = graph()
    nbrs = in_neighbours(data)
    torch.manual_seed(0)
    ld = loader(data, fanouts, backend)
    for _ in range(10):
        seeds = torch.unique(torch.cat([SEEDS, torch.randint(0, data.num_nodes, (20,))]))
        b = ld(seeds)
        n_id, sub = b.n_id, b.edge_index
        assert torch.equal(n_id[:len(seeds)], seeds)                 # seeds first
        assert n_id.unique().numel() == n_id.numel()                 # no duplicates
        g = n_id[sub]                                                # global (source, target)
        # every sampled edge is in the graph, and e_id names it
        assert torch.equal(data.edge_index[:, b.e_id], g)
        assert b.e_id.unique().numel() == b.e_id.numel()             # no edge twice
        if backend == "compiled" and getattr(b, "num_sampled_nodes", None) is None:
            continue                                                 # torch-sparse gives no counts
        assert sum(b.num_sampled_nodes) == n_id.numel()
        assert sum(b.num_sampled_edges) == sub.size(1)
        assert len(b.num_sampled_nodes) == len(fanouts) + 1
        # hop by hop: each node first reached at hop i draws min(in-degree, k) in-edges
        nb = [0] + list(itertools.accumulate(b.num_sampled_nodes))
        eb = [0] + list(itertools.accumulate(b.num_sampled_edges))
        for hop, k in enumerate(fanouts):
            col = sub[1, eb[hop]:eb[hop + 1]]
            assert ((col >= nb[hop]) & (col < nb[hop + 1])).all()
            counts = torch.bincount(col - nb[hop], minlength=nb[hop + 1] - nb[hop])
            for j, c in enumerate(counts.tolist()):
                deg = len(nbrs[int(n_id[nb[hop] + j])])
                assert c == (deg if k < 0 else min(deg, k))
            new = n_id[nb[hop + 1]:nb[hop + 2]]                      # new nodes were sampled
            assert set(new.tolist()) <= set(g[0, eb[hop]:eb[hop + 1]].tolist())


@pytest.mark.parametrize("backend", BACKENDS)
def test_all_neighbours_with_minus_one(backend):
    data = graph()
    nbrs = in_neighbours(data)
    b = loader(data, [-1, -1], backend)(SEEDS)
    hop1 = set().union(*(nbrs[s] for s in SEEDS.tolist()))
    expanded = set(SEEDS.tolist()) | hop1
    assert set(b.n_id.tolist()) == expanded | set().union(*(nbrs[v] for v in hop1))
    g = b.n_id[b.edge_index]
    want = {(s, t) for t in expanded for s in nbrs[t]}
    assert set(map(tuple, g.t().tolist())) == want and g.size(1) == len(want)


def test_same_seed_same_sample_and_own_generator():
    data = graph()
    seeds = torch.arange(0, 200, 7)

    def draw(**kw):
        b = loader(data, [3, 2], **kw)(seeds)
        return b.n_id, b.edge_index, b.e_id

    torch.manual_seed(5)
    a = draw()
    torch.manual_seed(5)
    assert all(torch.equal(x, y) for x, y in zip(a, draw()))
    assert not all(torch.equal(x, y) for x, y in zip(a, draw()))   # the generator moved on
    # a generator of its own: reproducible, and torch's global generator untouched
    state = torch.get_rng_state()
    c = draw(generator=torch.Generator().manual_seed(1))
    d = draw(generator=torch.Generator().manual_seed(1))
    assert all(torch.equal(x, y) for x, y in zip(c, d))
    assert torch.equal(torch.get_rng_state(), state)


def test_uniform_without_replacement():
    """3 of 6 in-neighbours: each is kept with probability 1/2, and all 20 subsets occur.
    (A seed given 2000 times is sampled 2000 times, independently.)"""
    ei = torch.stack([torch.arange(1, 7), torch.zeros(6, dtype=torch.long)])
    s = TorchNeighborSampler(Data(edge_index=ei, num_nodes=7), [3])
    trials = 2000
    node, row, col, edge, _, n_edges = sampling.sample_csc(
        s.colptr, s.row, torch.zeros(trials, dtype=torch.long), [3],
        generator=torch.Generator().manual_seed(0))
    assert n_edges == [3 * trials] and torch.equal(col, torch.arange(trials).repeat_interleave(3))
    picked = s.row[edge].view(trials, 3)
    assert (picked.sort(dim=1).values.diff(dim=1) > 0).all()     # without replacement
    hits = torch.bincount(picked.flatten(), minlength=7)[1:] / trials
    assert (hits - 0.5).abs().max() < 0.05                        # sd 0.011
    assert len(set(map(tuple, picked.sort(dim=1).values.tolist()))) == 20


def test_with_replacement():
    data = graph()
    nbrs = in_neighbours(data)
    torch.manual_seed(0)
    b = loader(data, [4], replace=True)(SEEDS)
    g = b.n_id[b.edge_index]
    for j, s in enumerate(SEEDS.tolist()):
        srcs = g[0, g[1] == s].tolist()
        assert len(srcs) == (4 if nbrs[s] else 0) and set(srcs) <= nbrs[s]


def test_isolated_and_empty_seeds():
    data = graph()
    b = loader(data, [2, 2])(torch.tensor([297, 298]))
    assert b.n_id.tolist() == [297, 298] and b.edge_index.size(1) == 0
    s = TorchNeighborSampler(data, [2, 2])
    node, row, col, edge, n_nodes, n_edges = sampling.sample_csc(
        s.colptr, s.row, torch.empty(0, dtype=torch.long), [2, 2])
    assert node.numel() == row.numel() == edge.numel() == 0 and n_nodes == [0, 0, 0]


def test_unsupported_options_raise():
    data = graph()
    for kw in ({"subgraph_type": "induced"}, {"disjoint": True}):
        with pytest.raises(NotImplementedError):
            TorchNeighborSampler(data, [2], **kw)
    with pytest.raises(ValueError):
        make_neighbor_sampler(data, [2], backend="nope")


def test_factory_picks_compiled_when_importable(monkeypatch):
    monkeypatch.delenv("HGRAPH_NEIGHBOR_SAMPLER", raising=False)
    data = graph()
    s = make_neighbor_sampler(data, [2])
    assert isinstance(s, TorchNeighborSampler) != compiled_sampler_available()
    assert (sampler_backend() == "torch") != compiled_sampler_available()
    monkeypatch.setattr(sampling, "compiled_sampler_available", lambda: False)
    assert isinstance(make_neighbor_sampler(data, [2]), TorchNeighborSampler)
    with pytest.raises(ImportError):
        make_neighbor_sampler(data, [2], backend="compiled")


@needs_compiled
@pytest.mark.parametrize("fanouts", [[-1], [-1, -1], [-1, -1, -1]])
def test_same_subgraph_as_compiled_with_all_neighbours(fanouts):
    data = graph()
    a = loader(data, fanouts, "torch")(SEEDS)
    c = loader(data, fanouts, "compiled")(SEEDS)
    assert torch.equal(a.n_id[:len(SEEDS)], c.n_id[:len(SEEDS)])
    assert sorted(a.n_id.tolist()) == sorted(c.n_id.tolist())
    ga, gc = a.n_id[a.edge_index], c.n_id[c.edge_index]
    assert sorted(map(tuple, ga.t().tolist())) == sorted(map(tuple, gc.t().tolist()))
    assert sorted(a.e_id.tolist()) == sorted(c.e_id.tolist())


@needs_compiled
@pytest.mark.parametrize("fanouts", [[3, 2], [1, 4], [2, 2, 2]])
def test_same_sizes_as_compiled_on_average(fanouts):
    """The subgraphs' node and edge counts agree with the compiled sampler's in
    distribution: hop-1 edge counts exactly, the rest on average over 300 draws."""
    data = graph()
    torch.manual_seed(0)
    la, lc = loader(data, fanouts, "torch"), loader(data, fanouts, "compiled")
    stats = {"torch": [], "compiled": []}
    for _ in range(300):
        seeds = torch.randperm(data.num_nodes)[:12]
        for name, ld in (("torch", la), ("compiled", lc)):
            b = ld(seeds)
            hop1 = int((b.edge_index[1] < len(seeds)).sum())
            stats[name].append((b.n_id.numel(), b.edge_index.size(1), hop1))
    ta, tc = torch.tensor(stats["torch"], dtype=torch.float), torch.tensor(stats["compiled"],
                                                                             dtype=torch.float)
    assert torch.equal(ta[:, 2], tc[:, 2])                     # min(deg, k) per seed
    mean_a, mean_c, sd = ta.mean(0), tc.mean(0), tc.std(0) / 300 ** 0.5
    assert ((mean_a - mean_c).abs()[:2] < 4 * 2 ** 0.5 * sd[:2] + 1e-6).all(), (mean_a, mean_c)


def test_environment_variable_forces_a_backend(monkeypatch):
    data = graph()
    monkeypatch.setenv("HGRAPH_NEIGHBOR_SAMPLER", "torch")
    assert isinstance(make_neighbor_sampler(data, [2]), TorchNeighborSampler)
    assert sampler_backend() == "torch"
    monkeypatch.setenv("HGRAPH_NEIGHBOR_SAMPLER", "fast")
    with pytest.raises(ValueError, match="HGRAPH_NEIGHBOR_SAMPLER"):
        make_neighbor_sampler(data, [2])
