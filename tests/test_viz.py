"""Plots write non-empty PNGs; the disk projection keeps distances to the origin."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from hgraph import manifolds as M
from hgraph import viz
from hgraph.data.taxonomy import Taxonomy

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _tree():
    """3 levels under the root: 4 x 3 x 3 -> 1 + 4 + 12 + 36 nodes."""
    child, parent = [], []
    for a in range(4):
        child.append(f"0-{a}"); parent.append("0")
        for b in range(3):
            child.append(f"0-{a}-{b}"); parent.append(f"0-{a}")
            for c in range(3):
                child.append(f"0-{a}-{b}-{c}"); parent.append(f"0-{a}-{b}")
    return Taxonomy.from_edges(child, parent, tree=True)


def _embed(tax, kind, dim, c=1.0, seed=0):
    """Hand-placed toy embedding: a child sits further out, near its parent's direction."""
    rng = np.random.default_rng(seed)
    v = np.zeros((tax.num_nodes, dim))
    for u in np.argsort(tax.level):
        if u == tax.root:
            continue
        p = tax.parents(u)[0]
        d = rng.normal(size=dim) if tax.level[u] == 1 else v[p] / np.linalg.norm(v[p]) + 0.3 * rng.normal(size=dim)
        v[u] = d / np.linalg.norm(d) * (1.2 * tax.level[u])
    m = M.make_manifold(kind, c)
    u = torch.tensor(v)
    x = m.expmap0(torch.nn.functional.pad(u, (1, 0))) if kind == "lorentz" else m.expmap0(u)
    return m, x


def _is_png(path):
    data = open(path, "rb").read()
    return len(data) > 1000 and data.startswith(PNG_MAGIC)


@pytest.mark.parametrize("kind", ["poincare", "lorentz"])
@pytest.mark.parametrize("dim", [2, 10])
def test_every_disk_plot_writes_a_png(tmp_path, kind, dim):
    tax = _tree()
    m, x = _embed(tax, kind, dim)
    p = viz.plot_disk(x, tax.level, tmp_path / "disk.png", manifold_kind=kind, curvature=1.0,
                      names=tax.names, label_top=5)
    assert p == tmp_path / "disk.png" and _is_png(p)
    p = viz.plot_subtree(x.numpy(), tax, "0-1", tmp_path / "sub" / "subtree.png", manifold_kind=m,
                         radial="equidistant")
    assert _is_png(p)
    p = viz.plot_norm_by_level(x, tax.level, tmp_path / "norm.png", manifold_kind=kind)
    assert _is_png(p)


def test_plots_of_converted_and_euclidean_points(tmp_path):
    tax = _tree()
    m, x = _embed(tax, "lorentz", 10)
    ball = M.to_poincare(m, x)
    assert _is_png(viz.plot_disk(ball, tax.level, tmp_path / "a.png", manifold_kind="poincare",
                                 max_points=20, title="converted"))
    assert _is_png(viz.plot_subtree(ball, tax, tax.index("0-2-1"), tmp_path / "b.png"))
    e = np.random.default_rng(0).normal(size=(tax.num_nodes, 5))
    assert _is_png(viz.plot_disk(e, tax.level, tmp_path / "c.png", manifold_kind="euclidean"))
    assert _is_png(viz.plot_norm_by_level(np.linalg.norm(e, axis=1), tax.level, tmp_path / "d.png",
                                          manifold_kind="euclidean"))


@pytest.mark.parametrize("kind", ["poincare", "lorentz"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_projection_preserves_distance_to_origin(kind, dtype):
    c = 0.5
    tax = _tree()
    m, x = _embed(tax, kind, 10, c=c)
    x = x.to(dtype)
    r = M.dist0(m, x.double()).numpy()
    xy = viz.project_to_disk(x, kind, c)
    assert xy.shape == (tax.num_nodes, 2)
    np.testing.assert_allclose(np.linalg.norm(xy, axis=1), np.tanh(math.sqrt(c) * r / 2), atol=1e-6)
    assert np.linalg.norm(xy[tax.root]) < 1e-6
    eq = viz.project_to_disk(x, kind, c, radial="equidistant")
    np.testing.assert_allclose(np.linalg.norm(eq, axis=1), r / r.max(), rtol=1e-5, atol=1e-7)
    rr, v = viz.radius_and_tangent(x, kind, c)
    np.testing.assert_allclose(rr, r, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), rr, rtol=1e-12)


def test_projection_of_2d_points_is_the_disk_itself():
    m = M.make_manifold("poincare", 1.0)
    x = torch.tensor([[0.1, 0.2], [-0.5, 0.3], [0.0, -0.9]], dtype=torch.float64)
    np.testing.assert_allclose(viz.project_to_disk(x, m), x.numpy(), atol=1e-12)
    with pytest.raises(ValueError):
        viz.project_to_disk(torch.zeros(3, 10), "poincare", projection="none")
    with pytest.raises(ValueError):
        viz.project_to_disk(x, "poincare", projection="tsne")
    with pytest.raises(ValueError):
        viz.project_to_disk(x, "hyperbolic")


def test_subsample_keeps_shallow_levels_and_is_deterministic():
    lv = np.array([0] + [1] * 10 + [2] * 100 + [3] * 1000)
    a = viz.subsample(lv, 200, seed=3)
    b = viz.subsample(lv, 200, seed=3)
    assert np.array_equal(a, b) and len(a) == 200
    assert set(range(111)) <= set(a.tolist())
    keep = np.zeros(len(lv), dtype=bool)
    keep[-5:] = True
    c = viz.subsample(lv, 50, seed=0, keep=keep)
    assert set(range(len(lv) - 5, len(lv))) <= set(c.tolist()) and len(c) == 50
    assert np.array_equal(viz.subsample(lv, 10_000), np.arange(len(lv)))


def test_plot_curves_dict_and_records(tmp_path):
    hist = {"loss": [3.0, 1.0, 0.5, 0.1, 0.05], "val_map": [None, 0.4, None, 0.6, 0.7]}
    assert _is_png(viz.plot_curves(hist, tmp_path / "a.png"))
    recs = [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.2 / e,
             **({"MAP": 0.1 * e} if e % 2 == 0 else {})} for e in range(1, 9)]
    assert _is_png(viz.plot_curves(recs, tmp_path / "b.png", title="run"))
    with pytest.raises(ValueError):
        viz.plot_curves({"epoch": [1, 2]}, tmp_path / "d.png")


def test_plot_bars(tmp_path):
    df = pd.DataFrame({"method": ["shallow", "hgcn", "ramen"], "MAP": [0.82, 0.78, 0.85],
                       "MAP_std": [0.01, 0.02, 0.015], "MRR": [0.6, 0.55, 0.63]})
    assert _is_png(viz.plot_bars(df, tmp_path / "a.png"))
    df2 = df.assign(MR=[4.9, 6.1, 4.2], MR_std=[0.3, 0.5, 0.2]).set_index("method")
    assert _is_png(viz.plot_bars(df2, tmp_path / "b.png", metrics=["MAP", "MR"]))   # auto -> panels
    with pytest.raises(ValueError):
        viz.plot_bars(df2, tmp_path / "d.png", metrics=["nope"])
