"""Pictures of embeddings and results (matplotlib, Agg backend, headless).

Every function takes arrays (numpy or torch), writes one PNG and returns its
path.  Nothing here trains or evaluates; callers pass what they have.

* :mod:`.disk` — points in the Poincaré disk by level (:func:`plot_disk`) and one
  node's subtree in place (:func:`plot_subtree`); the projection to two dimensions
  (norm-preserving tangent PCA: :func:`project_to_disk`, :func:`radius_and_tangent`)
  is manifold maths, in :mod:`hgraph.manifolds.projection`;
* :mod:`.levels` — distance to the origin per level (:func:`plot_norm_by_level`);
* :mod:`.curves` — training curves (:func:`plot_curves`);
* :mod:`.bars` — comparison tables (:func:`plot_bars`);
* :mod:`.run` — a run folder's pictures (:func:`plot_run`);
* :mod:`.draw` — what the plots share (Agg, :data:`DPI`, saving, :func:`subsample`,
  colours, labels).
"""
from hgraph.manifolds.projection import (PROJECTIONS, RADIAL, project_to_disk,  # noqa: F401
                                         radius_and_tangent)
from hgraph.viz.bars import plot_bars  # noqa: F401
from hgraph.viz.curves import plot_curves  # noqa: F401
from hgraph.viz.disk import plot_disk, plot_subtree  # noqa: F401
from hgraph.viz.draw import DPI, PathLike, subsample  # noqa: F401
from hgraph.viz.levels import plot_norm_by_level  # noqa: F401
from hgraph.viz.run import plot_run  # noqa: F401

__all__ = ["plot_disk", "plot_subtree", "plot_norm_by_level", "plot_curves", "plot_bars",
           "project_to_disk", "radius_and_tangent", "subsample", "PROJECTIONS", "RADIAL"]
