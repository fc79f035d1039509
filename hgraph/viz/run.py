"""A run folder's pictures (:func:`plot_run`), as the pipeline writes them."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from hgraph.viz.curves import plot_curves
from hgraph.viz.disk import plot_disk, plot_subtree
from hgraph.viz.levels import plot_norm_by_level


def plot_run(run_dir: Path, points, tax, manifold, history, subtrees: Sequence[int] = ()) -> None:
    """A run folder's pictures: training curves; on a hyperbolic manifold the
    disk by level (Lorentz mapped to the ball; also with radius = distance to
    the origin), norm by level, and the subtree under each node of ``subtrees``."""
    from hgraph import manifolds as M
    from hgraph.results import slug
    run_dir = Path(run_dir)
    if history:      # a fixed baseline (features) has no training curve
        plot_curves(history, run_dir / "curves.png", title=f"{run_dir.name}: training")
    if M.kind(manifold) == "euclidean":
        return
    pts = M.to_poincare(manifold, points).numpy()
    c = M.curvature_of(manifold)
    plot_disk(pts, tax.level, run_dir / "disk.png", curvature=c,
              title=f"{run_dir.name}: embeddings by level")
    # radius proportional to hyperbolic distance from the origin: deep levels no
    # longer merge into the boundary
    plot_disk(pts, tax.level, run_dir / "disk_equidistant.png", curvature=c,
              title=f"{run_dir.name}: by level (radius = distance to origin)",
              radial="equidistant")
    plot_norm_by_level(pts, tax.level, run_dir / "norm_by_level.png", curvature=c)
    for node in subtrees:
        plot_subtree(pts, tax, node, run_dir / f"subtree_{slug(tax.names[node])}.png",
                     curvature=c)
