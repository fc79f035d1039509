"""RamenEncoder: features -> MLP -> expmap0; safe for any input scale."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from hgraph import manifolds as M
from hgraph.config import ModelConfig
from hgraph.nn import ENCODERS, EncoderSpec, build_encoder
from hgraph.nn.ramen import RamenEncoder
from hgraph.losses import GraphRegularizer

KINDS = ("poincare", "lorentz", "euclidean")
DTYPES = (torch.float32, torch.float64)


def _enc(kind="poincare", in_dim=8, dim=3, dtype=torch.float32, **kw):
    torch.manual_seed(0)
    m = M.make_manifold(kind, 1.0)
    kw.setdefault("hidden", 16)
    kw.setdefault("layers", 2)
    return RamenEncoder(m, dim, in_dim, **kw).to(dtype)


def _on_manifold(kind, manifold, z):
    assert torch.isfinite(z).all()
    if kind == "poincare":
        c = float(manifold.c)
        assert bool(((z * z).sum(-1) * c < 1.0).all())
    elif kind == "lorentz":
        k = manifold.k.to(z)
        inner = -z[:, 0] ** 2 + (z[:, 1:] ** 2).sum(-1)           # should be -k
        rel = (inner + k).abs() / (z[:, 0] ** 2)
        tol = 1e-4 if z.dtype == torch.float32 else 1e-10
        assert bool((rel < tol).all()), float(rel.max())
        assert bool((z[:, 0] > 0).all())


def test_registered_and_built_from_config():
    assert ENCODERS["ramen"] is RamenEncoder
    m = M.make_manifold("lorentz", 1.0)
    cfg = ModelConfig(encoder="ramen", manifold="lorentz", dim=5, hidden=7, layers=3, act="tanh")
    enc = build_encoder(EncoderSpec(cfg, m, num_nodes=20, in_dim=4))
    assert isinstance(enc, RamenEncoder)
    assert enc.uses_graph is False and enc.requires_features and enc.inductive
    lin = [l for l in enc.mlp if isinstance(l, torch.nn.Linear)]
    assert [(l.in_features, l.out_features) for l in lin] == [(4, 7), (7, 7), (7, 5)]
    z = enc(torch.randn(6, 4), None, torch.arange(6))
    assert z.shape == (6, 6) and enc.out_dim == 6
    assert "RamenEncoder" in repr(enc)


def test_one_layer_and_no_norm_for_single_feature():
    enc = _enc(in_dim=1, layers=1)
    lin = [l for l in enc.mlp if isinstance(l, torch.nn.Linear)]
    assert [(l.in_features, l.out_features) for l in lin] == [(1, 3)]
    assert enc.norm is None
    assert torch.isfinite(enc(torch.randn(5, 1))).all()


@pytest.mark.parametrize("kind", KINDS)
def test_graph_is_never_used(kind):
    enc = _enc(kind).eval()
    x = torch.randn(10, 8)
    ei = torch.randint(0, 10, (2, 30))
    a = enc(x, None, torch.arange(10))
    b = enc(x, ei, torch.arange(10))
    assert torch.equal(a, b)
    # a node's point depends on its own features only (rows are independent)
    c = enc(x[3:4], None, torch.tensor([3]))
    assert torch.allclose(a[3:4], c, atol=1e-6)


def test_id_embedding_mode_not_inductive():
    m = M.make_manifold("poincare", 1.0)
    cfg = ModelConfig(encoder="ramen", dim=4, hidden=8)
    enc = RamenEncoder.from_spec(EncoderSpec(cfg, m, num_nodes=12, in_dim=None))
    assert enc.id_mode and not enc.inductive and not enc.requires_features
    z = enc(None, None, torch.tensor([0, 5, 11]))
    assert z.shape == (3, 4)
    with pytest.raises(ValueError):
        enc(None, None, None)
    cfg2 = ModelConfig(encoder="ramen", dim=4, hidden=8, id_embeddings=True)
    enc2 = RamenEncoder.from_spec(EncoderSpec(cfg2, m, num_nodes=12, in_dim=6))
    assert enc2.id_mode and enc2.embedding.weight.shape == (12, 8)
    # features are ignored in id mode
    ids = torch.arange(4)
    assert torch.equal(enc2(torch.randn(4, 6), None, ids), enc2(None, None, ids))


def test_bad_inputs():
    enc = _enc()
    with pytest.raises(ValueError):
        enc(None, None, torch.arange(3))
    with pytest.raises(ValueError):
        enc(torch.randn(3, 5), None, torch.arange(3))
    m = M.make_manifold("poincare", 1.0)
    with pytest.raises(ValueError):
        RamenEncoder(m, 3, 4, act="gelu-ish")
    with pytest.raises(ValueError):
        RamenEncoder(m, 3, 4, layers=0)
    with pytest.raises(ValueError):
        RamenEncoder(m, 3, None)                      # id mode without num_nodes


def test_dropout_only_in_training():
    enc = _enc(dropout=0.5)
    x = torch.randn(64, 8)
    enc.eval()
    assert torch.equal(enc(x), enc(x))
    enc.train()
    torch.manual_seed(1)
    a = enc(x)
    torch.manual_seed(2)
    assert not torch.equal(a, enc(x))


def _tiny_reg():
    # 0 <- 1,2 ; 1 <- 3,4 ; 2 <- 5,6
    e = np.array([[1, 0], [2, 0], [3, 1], [4, 1], [5, 2], [6, 2]])
    return GraphRegularizer(e, 7, kinds=("ancestor", "sibling", "huse"))


def _check_extreme(kind, dtype, scale, input_norm, seed):
    enc = _enc(kind, dtype=dtype, input_norm=input_norm)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(7, 8, generator=g, dtype=dtype) * scale
    x[6] = x[5]                                       # two identical points
    x[4] = 0.0                                        # a zero feature row
    z = enc(x, None, torch.arange(7))
    _on_manifold(kind, enc.manifold, z)
    d = M.pairwise_dist(enc.manifold, z)
    assert torch.isfinite(d).all()
    assert torch.isfinite(M.dist(enc.manifold, z, z.flip(0))).all()
    reg = _tiny_reg()
    samples = reg.sample(np.arange(7), np.random.default_rng(seed))
    parts = reg.loss(enc.manifold, z, None, samples)
    loss = sum(parts.values()) + M.dist(enc.manifold, z[5], z[6]) + M.dist(enc.manifold, z[0], z[4])
    assert torch.isfinite(loss)
    loss.backward()
    for name, p in enc.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name


@settings(max_examples=40, deadline=None)
@given(kind=st.sampled_from(KINDS), dtype=st.sampled_from(DTYPES),
       log_scale=st.floats(-6.0, 6.0), input_norm=st.booleans(), seed=st.integers(0, 1000))
def test_any_input_scale_stays_on_manifold_with_finite_grads(kind, dtype, log_scale, input_norm, seed):
    _check_extreme(kind, dtype, 10.0 ** log_scale, input_norm, seed)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale", [1e-6, 1.0, 1e6])
def test_extreme_scales_grid(kind, dtype, scale):
    for input_norm in (True, False):
        _check_extreme(kind, dtype, scale, input_norm, seed=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_layernorm_makes_output_scale_invariant(dtype):
    enc = _enc("poincare", dtype=dtype, act="relu").eval()
    x = torch.randn(5, 8, dtype=dtype)
    a = enc(x)
    b = enc(x * 1e4)
    assert torch.allclose(a, b, atol=1e-4)   # up to LayerNorm eps (1e-5 vs unit variance)


# --- residual start: the tower begins at the feature geometry -------------------------

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_residual_at_init_ranks_as_the_cosine_of_the_features(kind, dtype):
    """dim == F: the skip is the identity, the MLP adds zero, so every point has the
    same norm and the manifold distance orders neighbours exactly as the cosine."""
    enc = _enc(kind, in_dim=12, dim=12, dtype=dtype, residual=True)
    assert enc.skip is None
    g = torch.Generator().manual_seed(3)
    x = torch.randn(40, 12, generator=g, dtype=dtype) * 5.0
    with torch.no_grad():
        z = enc(x)
    _on_manifold(kind, enc.manifold, z)
    unit = torch.nn.functional.normalize(x, dim=-1)
    cos = unit @ unit.T
    for i in range(5):
        d = M.dist(enc.manifold, z[i:i + 1], z)
        # same order (ties impossible with continuous random features)
        assert torch.equal(torch.argsort(d), torch.argsort(-cos[i]))


@pytest.mark.parametrize("dtype", DTYPES)
def test_residual_projection_is_orthonormal_and_trainable(dtype):
    enc = _enc("poincare", in_dim=16, dim=5, dtype=dtype, residual=True)
    w = enc.skip.weight
    eye = torch.eye(5, dtype=dtype)
    # initialised in float32 (the module's default dtype), then cast
    assert torch.allclose(w @ w.T, eye, atol=1e-5)
    last = enc.mlp[-1]
    assert torch.count_nonzero(last.weight) == 0 and torch.count_nonzero(last.bias) == 0
    x = torch.randn(8, 16, dtype=dtype)
    loss = enc(x).sum()
    loss.backward()
    # every part learns: skip, scale and the MLP's last layer get a gradient
    assert enc.skip.weight.grad.abs().sum() > 0
    assert enc.log_scale.grad is not None and enc.log_scale.grad.abs() > 0
    assert last.weight.grad.abs().sum() > 0


def test_residual_from_config_and_ignored_in_id_mode():
    m = M.make_manifold("poincare", 1.0)
    cfg = ModelConfig(encoder="ramen", dim=4, hidden=8, residual=True)
    enc = build_encoder(EncoderSpec(cfg, m, num_nodes=10, in_dim=6))
    assert enc.residual and "residual=True" in repr(enc)
    ids = RamenEncoder(m, 4, None, hidden=8, num_nodes=10, residual=True)
    assert not ids.residual and ids.skip is None and ids.log_scale is None
    assert torch.isfinite(ids(None, None, torch.arange(10))).all()
