"""Graph embedders of the training loop: supervision edges hidden per step."""
import numpy as np
import pytest
import torch

from hgraph.data import sampling
from hgraph.train import FullGraphEmbedder, hide_pairs


def tree_edges(n):
    child = torch.arange(1, n)
    parent = (child - 1) // 3
    return torch.cat([torch.stack([child, parent]), torch.stack([parent, child])], dim=1)


def test_hide_pairs_removes_both_directions_and_nothing_else():
    n = 40
    ei = tree_edges(n)
    u, v = torch.tensor([4, 10, 39]), torch.tensor([1, 3, 12])
    out = hide_pairs(ei, None, u, v, n)
    keep = {tuple(e) for e in out.t().tolist()}
    gone = {(4, 1), (1, 4), (10, 3), (3, 10), (39, 12), (12, 39)}
    assert not keep & gone
    assert keep | gone == {tuple(e) for e in ei.t().tolist()}
    assert out.size(1) == ei.size(1) - 6
    # a pair that is not an edge (an ancestor) removes nothing
    assert hide_pairs(ei, None, torch.tensor([4]), torch.tensor([0]), n).size(1) == ei.size(1)


def test_hide_pairs_on_local_ids_of_a_subgraph():
    n = 40
    ei = tree_edges(n)
    n_id = torch.tensor([12, 39, 3, 0, 38])         # a subgraph's global ids
    local = torch.tensor([[1, 0, 0, 2, 4], [0, 1, 2, 0, 0]])  # 39-12, 12-39, 12-3, 3-12, 38-12
    out = hide_pairs(local, n_id, torch.tensor([39]), torch.tensor([12]), n)
    assert out.t().tolist() == [[0, 2], [2, 0], [4, 0]]


class Probe(torch.nn.Module):
    """Records the edges it was given; output = node degree in that graph."""
    uses_graph = True

    def forward(self, x, edge_index, node_ids):
        self.seen = edge_index
        return torch.bincount(edge_index[1], minlength=len(node_ids)).float()[:, None]


@pytest.mark.parametrize("hide", [False, True])
def test_full_graph_embedder_hides_only_when_asked(hide):
    n = 13
    ei = tree_edges(n)
    emb = FullGraphEmbedder(None, ei, n, hide_supervision=hide)
    model = Probe()
    pairs = (torch.tensor([5, 6]), torch.tensor([1, 1]))
    z = emb(model, torch.tensor([1, 5]), pairs=pairs)
    expected_deg_1 = 4 - (2 if hide else 0)        # node 1: parent 0, children 4, 5, 6
    assert z[:, 0].tolist() == [expected_deg_1, 0 if hide else 1]
    assert model.seen.size(1) == ei.size(1) - (4 if hide else 0)
    # no pairs (evaluation): the whole graph
    emb(model, torch.tensor([1]))
    assert model.seen.size(1) == ei.size(1)


class Recorder(torch.nn.Module):
    """Records the global edges of every subgraph it is given."""
    uses_graph = True

    def __init__(self):
        super().__init__()
        self.edges = []

    def forward(self, x, edge_index, node_ids):
        self.edges.append(node_ids[edge_index])
        return torch.zeros(len(node_ids), 2)


@pytest.mark.parametrize("compiled", [
    False, pytest.param(True, marks=pytest.mark.skipif(
        not sampling.compiled_sampler_available(),
        reason="the compiled sampler needs pyg-lib or torch-sparse"))])
@pytest.mark.parametrize("hide", [False, True])
def test_no_held_out_edge_in_any_sampled_subgraph(hide, compiled, monkeypatch):
    """SampledEmbedder with PyG's compiled sampler, and with hgraph's PyTorch one
    (what a set-up without torch-sparse uses)."""
    if not compiled:
        monkeypatch.setattr(sampling, "compiled_sampler_available", lambda: False)
    from hgraph.cli import parse_config
    from hgraph.data.datasets import load_dataset
    from hgraph.pipeline import prepare
    from hgraph.train import SampledEmbedder
    cfg, _ = parse_config(["--gen-root-children", "6", "--gen-min-children", "2",
                           "--gen-max-children", "5", "--feature-dim", "4", "--encoder", "hgcn",
                           "--inductive-frac", "0.2", "--val-frac", "0.1", "--test-frac", "0.2"])
    tax = load_dataset(cfg.data)
    prep = prepare(cfg, tax, torch.device("cpu"), torch.float32)
    sp = prep.splits
    n = tax.num_nodes
    emb = SampledEmbedder(prep.pyg, [-1, -1], torch.device("cpu"), hide_supervision=hide)
    assert isinstance(emb.loader.node_sampler, sampling.TorchNeighborSampler) != compiled
    model = Recorder()
    rng = np.random.default_rng(0)
    held_edges = np.concatenate([sp.val, sp.test])
    # seeds that touch held-out edges and inductive nodes on purpose
    for _ in range(20):
        b = prep.positives[rng.choice(len(prep.positives), 16, replace=False)]
        seeds = np.unique(np.concatenate([rng.choice(held_edges.ravel(), 30), b.ravel(),
                                          rng.choice(sp.heldout, 5), rng.integers(0, n, 30)]))
        emb(model, torch.as_tensor(seeds), pairs=(torch.as_tensor(b[:, 0]),
                                                  torch.as_tensor(b[:, 1])))
        g = model.edges[-1].numpy()
        keys = set((g[0] * n + g[1]).tolist())
        for u, v in held_edges:
            assert u * n + v not in keys and v * n + u not in keys
        assert not np.isin(g, sp.heldout).any()
        for u, v in b:
            assert (u * n + v in keys) != hide      # supervision pairs hidden iff asked
