"""The features-only baseline, text features for WordNet, and inference cost."""
import math

import numpy as np
import pytest
import torch

from hgraph import manifolds as M
from hgraph.cli import parse_config
from hgraph.config import ModelConfig
from hgraph.nn import ENCODERS, EncoderSpec, FeatureBaseline, build_encoder
from hgraph.data.datasets import load_dataset
from hgraph.eval.suite import inference_cost
from hgraph.pipeline import prepare, run

TREE = ["--gen-root-children", "8", "--gen-min-children", "3", "--gen-max-children", "5",
        "--feature-dim", "8"]


def _cfg(tmp_path, *extra):
    cfg, _ = parse_config([*TREE, "--out", str(tmp_path / "r"), "--no-progress", "--no-plots",
                           "--no-save-embeddings", *extra])
    return cfg


def test_feature_baseline_ranks_by_cosine():
    torch.manual_seed(0)
    x = torch.randn(50, 6) * torch.rand(50, 1) * 100      # arbitrary row scales
    enc = FeatureBaseline(M.make_manifold("euclidean"), 6)
    z = enc(x, None, torch.arange(50))
    torch.testing.assert_close(z.norm(dim=1), torch.ones(50))
    d = enc.manifold.dist(z[:1], z)
    cos = torch.nn.functional.cosine_similarity(x[:1], x)
    assert torch.equal(torch.argsort(d, stable=True)[:10], torch.argsort(-cos, stable=True)[:10])
    assert not list(enc.parameters()) and enc.trainable is False
    with pytest.raises(ValueError, match="euclidean"):
        FeatureBaseline(M.make_manifold("poincare"), 6)
    spec = EncoderSpec(cfg=ModelConfig(encoder="features", manifold="euclidean"),
                       manifold=M.make_manifold("euclidean"), num_nodes=5, in_dim=None)
    with pytest.raises(ValueError, match="features"):
        build_encoder(spec)
    assert "features" in ENCODERS


def test_features_run_trains_nothing_and_scores(tmp_path):
    cfg = _cfg(tmp_path, "--encoder", "features", "--inductive-frac", "0.1")
    res = run(cfg.__class__(**{**cfg.__dict__, "plots": True}))
    assert not (res.run_dir / "curves.png").exists()     # no training, no curve
    assert not (res.run_dir / "INCOMPLETE").exists()
    s = res.per_seed[0]
    assert s["epochs_run"] == 0 and s["train_time_s"] == 0.0
    # the generated features carry the hierarchy: cosine beats chance clearly
    assert s["lp_roc_auc"] > 0.8 and s["inductive_mrr"] > 0.05
    assert res.config.model.manifold == "euclidean"      # preset
    assert s["infer_10k_s"] > 0


@pytest.mark.parametrize("encoder,manifold", [("hgcn", "poincare"), ("hgcn", "lorentz"),
                                              ("ramen", "poincare")])
def test_embed_nodes_equals_full_graph_points(tmp_path, encoder, manifold):
    """New-item placement (k-hop subgraph for HGCN) gives the full-graph outputs."""
    cfg = _cfg(tmp_path, "--encoder", encoder, "--manifold", manifold)
    tax = load_dataset(cfg.data)
    prep = prepare(cfg, tax, torch.device("cpu"), torch.float64)
    man = M.make_manifold(manifold, 1.0)
    torch.manual_seed(0)
    model = build_encoder(EncoderSpec(cfg=cfg.model, manifold=man, num_nodes=tax.num_nodes,
                                      in_dim=prep.x.shape[1])).double().eval()
    ei = prep.pyg.edge_index
    with torch.no_grad():
        full = model(prep.x, ei, torch.arange(tax.num_nodes)) if model.uses_graph else \
            model(prep.x, None, torch.arange(tax.num_nodes))
        nodes = torch.tensor([0, 3, 17, tax.num_nodes - 1])
        torch.testing.assert_close(model.embed_new(prep.x, ei, nodes), full[nodes])
        cost = inference_cost(model, prep.x, ei, torch.device("cpu"))
    assert math.isfinite(cost["infer_10k_s"]) and cost["infer_10k_s"] > 0


def test_inference_cost_nan_without_features_path(tmp_path):
    cfg = _cfg(tmp_path, "--encoder", "shallow")
    tax = load_dataset(cfg.data)
    prep = prepare(cfg, tax, torch.device("cpu"), torch.float32)
    model = build_encoder(EncoderSpec(cfg=cfg.model, manifold=M.make_manifold("poincare"),
                                      num_nodes=tax.num_nodes, in_dim=prep.x.shape[1]))
    assert math.isnan(inference_cost(model, prep.x, prep.pyg.edge_index,
                                     torch.device("cpu"))["infer_10k_s"])


def test_gloss_features_on_handmade_wordnet(tmp_path):
    from tests.data.test_wordnet import DATA, INDEX
    from hgraph.data.wordnet import gloss_features, load_wordnet
    (tmp_path / "data.noun").write_text(DATA)
    (tmp_path / "index.noun").write_text(INDEX)
    tax = load_wordnet("nouns", root=str(tmp_path))
    f = gloss_features(tax, dim=4, root=str(tmp_path))
    assert f.shape == (tax.num_nodes, 4) and f.dtype == np.float32
    assert np.allclose(np.linalg.norm(f, axis=1)[np.linalg.norm(f, axis=1) > 0], 1, atol=1e-5)
    assert np.array_equal(f, gloss_features(tax, dim=4, root=str(tmp_path)))


def test_gloss_features_need_wordnet_offsets(tmp_path):
    from hgraph.data.generate import generate_tree
    from hgraph.data.wordnet import gloss_features
    from hgraph.errors import HGraphInputError
    with pytest.raises(HGraphInputError, match="WordNet"):
        gloss_features(generate_tree(root_children=3, seed=0), root=str(tmp_path))
