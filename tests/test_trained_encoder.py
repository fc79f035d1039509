"""The text encoder trained on both sides (issue 31): HGCN on the shared text head with
historical embeddings, the regulariser through the head, the categories' anisotropy in
every epoch's record."""
import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from hgraph import manifolds as M
from hgraph.errors import HGraphInputError
from hgraph.tasks.item_batches import mean_cosine
from hgraph.tasks.item_models import GraphModel, SiameseModel


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_mean_cosine_is_the_mean_over_distinct_pairs(dtype):
    x = torch.randn(30, 7, dtype=dtype, generator=torch.Generator().manual_seed(1)) + 0.5
    u = nn.functional.normalize(x, dim=-1)
    c = u @ u.T
    brute = (c.sum() - c.diagonal().sum()) / (30 * 29)
    assert mean_cosine(x) == pytest.approx(float(brute), abs=1e-6)
    assert mean_cosine(torch.ones(5, 3, dtype=dtype)) == pytest.approx(1.0)
    assert np.isnan(mean_cosine(x[:1]))


class _Head(nn.Module):
    """A text head's interface, small: (states (n, T, F), lengths) -> unit vectors."""

    def __init__(self, F):
        super().__init__()
        self.lin = nn.Linear(F, F)
        nn.init.eye_(self.lin.weight)
        nn.init.zeros_(self.lin.bias)

    def forward(self, st, ln):
        keep = (torch.arange(st.shape[1])[None] < ln[:, None]).to(st.dtype)[..., None]
        return nn.functional.normalize(self.lin((st * keep).sum(1) / keep.sum(1)), dim=-1)


def _shared_hgcn(dtype):
    F, N = 8, 6
    g = torch.Generator().manual_seed(0)
    st = torch.randn(N, 4, F, dtype=dtype, generator=g)
    ln = torch.tensor([4, 2, 3, 1, 4, 2])
    e = np.array([[1, 0], [2, 1], [3, 0], [4, 3], [5, 3]])
    ei = torch.from_numpy(np.concatenate([e.T, e[:, ::-1].T], axis=1).copy()).long()
    ball = M.make_manifold("poincare", 1.0, False)
    torch.manual_seed(0)
    model = GraphModel(ball, torch.zeros(N, F, dtype=dtype), ei, hidden=16, gcn_hidden=8,
                       text_head=_Head(F)).to(dtype)
    model.share_text_head((st, ln))
    with torch.no_grad():
        model.gate.fill_(0.5)             # the graph's share open
    return model


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_hgcn_on_the_shared_head_reads_neighbours_from_the_refresh(dtype):
    """fresh_categories: the batch's categories re-encoded through the head now (gradients
    into it), every other node's vector from the last refresh (historical embeddings)."""
    model = _shared_hgcn(dtype)
    ids = torch.tensor([1, 4])
    # right after a refresh, fresh and cached agree
    torch.testing.assert_close(model.fresh_categories(ids), model.categories(ids))
    # the head moves: the batch's rows follow it, its neighbours stay the cached ones
    with torch.no_grad():
        model.text_head.lin.weight.mul_(-1.0).add_(0.3)
    got = model.fresh_categories(ids)
    x = model.x_nodes.clone()
    x[ids] = model.node_vectors(ids)
    u = model._tangent(x, model.edge_index, torch.arange(6))
    torch.testing.assert_close(got, M.expmap0(model.manifold, u[ids]))
    assert not torch.allclose(got, model.categories(ids))
    got.sum().backward()
    assert model.text_head.lin.weight.grad.abs().sum() > 0
    # categories() reads the cache only: no gradient reaches the head through it
    model.zero_grad()
    model.categories(ids).sum().backward()
    assert model.text_head.lin.weight.grad is None or \
        model.text_head.lin.weight.grad.abs().sum() == 0
    # a refresh makes every node's vector the head's again
    model.refresh_categories()
    torch.testing.assert_close(model.fresh_categories(ids), model.categories(ids))


def test_reg_through_text_needs_the_shared_head():
    from hgraph.tasks.items import config_from_dict
    with pytest.raises(HGraphInputError, match="reg_through_text"):
        config_from_dict({"encoder": "ramen", "reg_through_text": True})
    with pytest.raises(HGraphInputError, match="reg_through_text"):
        config_from_dict({"encoder": "ramen", "item_text_layers": 1, "reg_through_text": True})
    cfg = config_from_dict({"encoder": "hgcn", "item_text_layers": 1, "shared_text_head": True})
    assert cfg.items.shared_text_head and cfg.model.encoder == "hgcn"


@pytest.mark.xdist_group("minilm")
@pytest.mark.parametrize("through", [False, True])
def test_the_regulariser_acts_through_the_head_and_epochs_record_anisotropy(through, tmp_path):
    """reg_through_text: each step encodes the regulariser's categories through the shared
    head too (its gradient reaches the head); the history has cat_cos (and text_cos with a
    shared head) from the untrained epoch 0 on."""
    from hgraph.data.item_splits import make_item_splits
    from hgraph.tasks.item_batches import ItemBatches
    from hgraph.tasks.items import build, item_config, load_item_data, train_items
    cfg = item_config(encoder="ramen", dataset="csv:data/samples/hpo_slice_edges.csv",
                      items="data/samples/hpo_slice_items.csv",
                      node_text="data/samples/hpo_slice_text.csv", out=str(tmp_path),
                      progress=False, epochs=1, negatives=32, threads=1, reg_lambda=0.5,
                      item_text_layers=1, shared_text_head=True, reg_through_text=through)
    data = load_item_data(cfg, torch.device("cpu"))
    sp = make_item_splits(data.items, data.tax.num_nodes, seed=0)
    model = build(cfg, data, sp, 0)
    calls = []
    fresh = model.fresh_categories
    model.fresh_categories = lambda ids: (calls.append(len(ids)), fresh(ids))[1]
    b = ItemBatches(model, data, sp, cfg, 0)
    rows = np.arange(min(64, b.num_examples()))
    b.loss(model, model, rows, np.random.default_rng(0), 0, cfg.train, None, "cpu")
    assert len(calls) == (2 if through else 1)
    info = train_items(model, data, sp, dataclasses.replace(
        cfg, train=dataclasses.replace(cfg.train, epochs=2, patience=5)), 0)
    h = info["history"]
    assert [r["epoch"] for r in h] == [0, 1, 2]
    for r in h:
        assert -1 <= r["cat_cos"] <= 1 and -1 <= r["text_cos"] <= 1
    # untrained, the head's vectors are the frozen encoder's: their anisotropy too
    assert h[0]["text_cos"] == pytest.approx(mean_cosine(data.x_nodes[data.cand]), abs=2e-3)


@pytest.mark.xdist_group("minilm")
def test_the_trained_layers_run_in_mixed_precision_with_float32_out():
    """text_precision bfloat16: the trained head's layers under bfloat16 autocast (what a
    GPU run uses; tested here on the CPU's autocast), float32 vectors out, within bfloat16's
    rounding of the float32 head's, gradients finite."""
    from hgraph.data.text import token_states
    from hgraph.tasks.item_models import TextHead
    texts = ["Small nose", "bleeding from the nose", "Abnormal nasal septum of the nose"]
    st, ln = token_states(texts, skip_last=1, progress=False, cache=False)
    st, ln = torch.as_tensor(st).float(), torch.as_tensor(ln)
    head = TextHead.from_encoder("minilm", 1).eval()
    ref = head(st, ln)
    head.precision = "bfloat16"
    got = head(st, ln)
    assert got.dtype == torch.float32
    assert (got * ref).sum(-1).min() > 0.995                 # cosine to float32's
    head.train()
    head(st, ln).sum().backward()
    grads = [p.grad for p in head.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
