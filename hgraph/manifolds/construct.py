"""A tree embedded by construction (Sala, De Sa, Gu & Ré 2018, "Representation
Tradeoffs for Hyperbolic Embeddings", Sec. 3, the combinatorial construction),
written from the paper's description.

* The root sits at the origin of the Poincaré ball.
* The children of a node ``u`` lie at hyperbolic distance ``tau`` from ``u``:
  the isometry ``x -> (-u) ⊕ x`` (Möbius translation) moves ``u`` to the
  origin and its parent to some point ``p'``; the children go to
  ``tanh(tau / 2) * w_j`` for unit directions ``w_j`` spread over the sphere,
  the direction of ``p'`` being one of the ``deg(u) + 1`` slots (so no child
  points back at the parent); ``y -> u ⊕ y`` brings them back.  Every tree
  edge then has length exactly ``tau``.
* Directions: in 2-d the slots are evenly spaced angles (``2π / (deg + 1)``
  apart, starting at the parent's direction).  In d >= 3 one fixed sequence of
  unit vectors serves every node: a farthest-point (greedy max-min) ordering
  of a deterministic pool (the ``2d`` vectors ``±e_i`` first, then seeded
  Gaussian directions); a node with ``k`` children uses its first ``k + 1``
  entries, rotated by the Householder reflection that sends entry 0 onto the
  parent's direction (a reflection keeps every angle).  Why this one: every
  prefix of a farthest-point ordering is within a factor 2 of the best
  possible minimum separation for that many points (Gonzalez 1985), so one
  ordering is good for every degree; Sala et al.'s codes (vertices of a
  hypercube picked by an error-correcting code) give a guaranteed separation
  too, but only for particular counts (up to 2^d), and a Fibonacci lattice
  exists in 3-d only.
* A DAG goes through a spanning tree: breadth-first search from the roots over
  ``parent -> child`` edges, each node keeping the parent that reached it
  first, i.e. among its parents of least depth the one of smallest id.
  Several roots (components, e.g. the children of held-out edges): the root
  of the largest component stays at the origin, the others hang from it as
  extra children.

Precision.  The construction runs in float64 in the unit ball (curvature -1;
a curvature -c is a rescaling).  A node at distance ``R`` from the origin has
``1 - |x| ≈ 2 exp(-R)``: float64 resolves ``R`` up to about 36, the
boundary clamp of the ball in float64 (:data:`~hgraph.manifolds.guards.BOUNDARY_EPS`,
``|x| <= 1 - 1e-5``) stops at ``R = 12.2`` (float32: 6.2).  By default
``tau`` is the largest (within 0.1%) that keeps every node inside the clamp:
``R_clamp / depth`` always does (a path of ``depth`` edges of length ``tau``
is at most ``depth * tau`` long), and a few more placements stretch it until
the farthest node reaches the clamp (paths turn, so on WordNet nouns it
nearly doubles, see :func:`fit_tau`).
:func:`min_tau` gives the ``tau`` at which no sibling or grandparent comes
nearer to a node than its own tree neighbours (in 2-d with hundreds of
children it is ~10, so a deep tree needs hundreds of bits: see
:func:`construct`'s ``stats``).
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Tuple

import numpy as np
import torch
from geoopt.manifolds.stereographic.math import mobius_add

from hgraph.manifolds.ball import to_lorentz
from hgraph.manifolds.guards import boundary_eps

Tensor = torch.Tensor


# ---------------------------------------------------------------- the tree
def _csr(rows: np.ndarray, cols: np.ndarray, n: int) -> Tuple[np.ndarray, np.ndarray]:
    """(indptr, indices): ``cols`` grouped by ``rows``, ascending within a row."""
    order = np.lexsort((cols, rows))
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return indptr, cols[order]


def _expand(indptr: np.ndarray, indices: np.ndarray, frontier: np.ndarray):
    """(owner, item, slot) of every entry in the rows ``frontier``, in frontier order."""
    counts = indptr[frontier + 1] - indptr[frontier]
    total = int(counts.sum())
    owner = np.repeat(frontier, counts)
    slot = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return owner, indices[np.repeat(indptr[frontier], counts) + slot], slot


def spanning_tree(edges: np.ndarray, num_nodes: int) -> np.ndarray:
    """Parent of every node in a BFS spanning tree of a DAG, -1 at the root.

    ``edges``: (E, 2) rows ``(child, parent)``.  Each node keeps the parent
    that reached it first in a breadth-first search from all roots at once
    (among its parents of least depth, the one of smallest id).  Roots other
    than the one of the largest component (ties: smallest id) get that root
    as parent, so the result is one tree.  -> (N,) int64.
    """
    n = int(num_nodes)
    e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    if len(e) and (e.min() < 0 or e.max() >= n):
        raise ValueError(f"edge ids must lie in [0, {n})")
    indptr, kids = _csr(e[:, 1], e[:, 0], n)
    has_parent = np.zeros(n, dtype=bool)
    has_parent[e[:, 0]] = True
    roots = np.flatnonzero(~has_parent)
    if n and not len(roots):
        raise ValueError("the edges have no root (a cycle)")
    parent = np.full(n, -1, dtype=np.int64)
    label = np.full(n, -1, dtype=np.int64)
    label[roots] = roots
    seen = ~has_parent
    frontier = roots
    while len(frontier):
        p, c, _ = _expand(indptr, kids, frontier)
        fresh = ~seen[c]
        c, p = c[fresh], p[fresh]
        c, first = np.unique(c, return_index=True)   # first reach = frontier order
        parent[c] = p[first]
        label[c] = label[p[first]]
        seen[c] = True
        frontier = c
    if not seen.all():
        raise ValueError("the edges contain a cycle")
    if len(roots) > 1:
        sizes = np.bincount(label, minlength=n)[roots]
        main = roots[int(np.argmax(sizes))]
        parent[roots[roots != main]] = main
    return parent


# ------------------------------------------------------------- directions
def _mobius_add(x: Tensor, y: Tensor) -> Tensor:
    """Möbius addition in the unit ball (curvature -1), rowwise: (n, d), (n, d) -> (n, d)."""
    return mobius_add(x, y, k=torch.tensor(-1.0, dtype=x.dtype, device=x.device))


def spread_directions(count: int, dim: int, pool: int = 0, seed: int = 0) -> Tensor:
    """(count, dim) float64 unit vectors in farthest-point order (d >= 3).

    Entry 0 is ``e_0``; each next one maximises its smallest angle to those
    before, over a pool of the ``2 dim`` vectors ``±e_i`` and ``pool`` (default
    ``max(4096, 16 count)``) Gaussian directions drawn with ``seed``; ties go to
    the first in the pool.  Deterministic.
    """
    if count <= 0:
        return torch.zeros(0, dim, dtype=torch.float64)
    eye = torch.eye(dim, dtype=torch.float64)
    g = torch.Generator().manual_seed(seed)
    rnd = torch.randn(pool or max(4096, 16 * count), dim, generator=g, dtype=torch.float64)
    cand = torch.cat([eye, -eye, torch.nn.functional.normalize(rnd, dim=-1)])
    if count > len(cand):
        raise ValueError(f"pool of {len(cand)} directions for {count} slots")
    picked = [0]
    near = cand @ cand[0]                         # largest cosine to any picked
    for _ in range(1, count):
        near[picked[-1]] = math.inf
        i = int(torch.argmin(near))
        picked.append(i)
        near = torch.maximum(near, cand @ cand[i])
    return cand[picked].clone()


def min_angle(count: int, dim: int, seq: Optional[Tensor] = None) -> float:
    """Smallest angle between two of the ``count`` slots of one node."""
    if count < 2:
        return math.pi
    if dim == 2:
        return 2 * math.pi / count
    s = spread_directions(count, dim) if seq is None else seq[:count]
    cos = (s @ s.T).fill_diagonal_(-1.0)
    return float(torch.arccos(cos.max().clamp(-1, 1)))


def min_tau(angle: float) -> float:
    """Smallest edge length at which two slots ``angle`` apart are farther from
    each other than from their centre: a sibling (or the grandparent) never
    comes nearer than the node's tree neighbours.  With every edge of length
    ``tau``, two points at ``tau`` from ``u`` at angle θ are at distance
    ``arcosh(cosh²τ - sinh²τ cos θ)``, above τ iff ``cosh τ > cos θ / (1 - cos θ)``."""
    c = math.cos(angle)
    return math.acosh(max(1.0, c / (1.0 - c))) if c < 1 else math.inf


# ---------------------------------------------------------------- placement
#: largest norm kept while placing: 1 - 2**-48, a few float64 steps inside the sphere
_LAST = 1.0 - 2.0 ** -48


def clamp_radius(dtype: torch.dtype = torch.float64) -> float:
    """Distance from the origin of the unit ball's boundary clamp in ``dtype``."""
    return 2.0 * math.atanh(1.0 - boundary_eps(dtype))


def place(parent: np.ndarray, dim: int, tau: float) -> Tuple[Tensor, np.ndarray]:
    """Points of the tree ``parent`` (N,) (-1 at the root) in the unit ball.

    Edges of hyperbolic length ``tau`` (curvature -1), float64.
    -> ``(x (N, dim), level (N,))``.
    """
    if dim < 2:
        raise ValueError("the construction needs dim >= 2 (on a line a node has "
                         "one direction away from its parent)")
    n = len(parent)
    x = torch.zeros(n, dim, dtype=torch.float64)
    level = np.zeros(n, dtype=np.int64)
    if n == 0:
        return x, level
    has = parent >= 0
    indptr, kids = _csr(parent[has], np.flatnonzero(has), n)
    deg = np.diff(indptr)
    seq = spread_directions(int(deg.max()) + 1, dim) if dim > 2 else None
    r = math.tanh(tau / 2.0)
    frontier = np.flatnonzero(~has)
    assert len(frontier) == 1, "place() needs one tree (see spanning_tree)"
    depth = 0
    while True:
        p, c, j = _expand(indptr, kids, frontier)
        if not len(c):
            break
        depth += 1
        level[c] = depth
        u = x[torch.from_numpy(p)]
        gp = parent[p]
        rooted = torch.from_numpy(gp < 0)           # children of the root: no parent slot
        k = torch.from_numpy(deg[p]).to(torch.float64)
        slot = torch.from_numpy(j) + (~rooted).long()
        back = _mobius_add(-u, x[torch.from_numpy(np.where(gp < 0, p, gp))])
        a = torch.nn.functional.normalize(back, dim=-1)    # parent's direction seen from u
        # u and its parent both at float64's last digits (tau far too large): toward the origin
        lost = ~torch.isfinite(a).all(-1, keepdim=True)
        a = torch.where(lost, -torch.nn.functional.normalize(u, dim=-1), a)
        if dim == 2:
            phi = torch.where(rooted, torch.zeros_like(k), torch.atan2(a[:, 1], a[:, 0]))
            ang = phi + 2 * math.pi * slot / (k + (~rooted).double())
            w = torch.stack([torch.cos(ang), torch.sin(ang)], -1)
        else:
            s = seq[slot]
            v = seq[0] - a                                 # Householder: seq[0] -> a
            vv = (v * v).sum(-1, keepdim=True)
            f = torch.where((vv > 1e-30) & ~rooted[:, None],
                            2 * (v * s).sum(-1, keepdim=True) / vv.clamp_min(1e-30),
                            torch.zeros_like(vv))
            w = s - f * v
        y = _mobius_add(u, r * w)
        # beyond float64's last digits (a tau far too large): keep the Möbius maths finite
        ny = y.norm(dim=-1, keepdim=True)
        x[torch.from_numpy(c)] = torch.where(ny > _LAST, y * (_LAST / ny), y)
        frontier = c
    return x, level


def construct(edges: np.ndarray, num_nodes: int, dim: int, tau: float = 0.0,
              curvature: float = 1.0, lorentz: bool = False,
              dtype: torch.dtype = torch.float64,
              radius: Optional[float] = None) -> Tuple[Tensor, Dict[str, float]]:
    """The combinatorial embedding of the graph ``edges`` (E, 2) ``(child, parent)``.

    ``tau``: edge length in the space of curvature ``-curvature``; 0 picks the
    largest that keeps the farthest node inside the ball's boundary clamp of
    ``dtype`` (the dtype the points will be used in; float64: 12.2 / sqrt(c)
    from the origin, float32: 6.2 / sqrt(c)).  Points beyond that clamp (a
    ``tau`` given too large) are pulled back onto it and counted in
    ``stats['at_clamp']``.  The computation is float64 whatever ``dtype``.
    ``radius``: with ``tau`` 0, the farthest node's distance from the origin
    aimed at instead of the clamp's (capped by it), e.g. to leave training room.

    -> ``(points, stats)``: float64 (N, dim) in the ball of radius
    ``1/sqrt(c)``, or (N, dim + 1) on the hyperboloid ``<x, x> = -1/c`` with
    ``lorentz``; ``stats``: ``tau``, ``depth``, ``max_children``, ``min_angle``
    (smallest angle between two slots of the busiest node), ``min_tau`` (see
    :func:`min_tau`), ``radius`` (largest distance from the origin),
    ``at_clamp``, ``bits`` (mantissa bits to resolve ``1 - |x|`` of the
    farthest point at ``min_tau`` to float64's relative precision:
    ``log2(e) * depth * min_tau + 53``).
    """
    sc = math.sqrt(curvature)
    parent = spanning_tree(edges, num_nodes)
    has = parent >= 0
    deg = np.bincount(parent[has], minlength=num_nodes) if num_nodes else np.zeros(1, int)
    # depth first, to choose tau: BFS levels of the tree
    depth = _depth(parent)
    limit = clamp_radius(dtype) * (1 - 1e-9)
    if radius is not None:
        limit = min(limit, radius * sc)
    if tau > 0:
        tau1 = tau * sc
        x, _ = place(parent, dim, tau1)
    else:
        tau1, x = fit_tau(parent, dim, limit, depth)
    norm = x.norm(dim=-1)
    max_norm = 1.0 - boundary_eps(dtype)
    over = norm > max_norm
    x = torch.where(over[:, None], x * (max_norm / norm.clamp_min(1e-300))[:, None], x)
    slots = int(deg.max()) + 1 if len(deg) else 1
    ang = min_angle(slots, dim)
    t_min = min_tau(ang)
    stats = {"tau": tau1 / sc, "depth": int(depth), "max_children": int(deg.max()),
             "min_angle": ang, "min_tau": t_min / sc,
             "radius": float(2 * torch.atanh(x.norm(dim=-1).max().clamp_max(max_norm))) / sc,
             "at_clamp": int(over.sum()),
             "bits": math.log2(math.e) * depth * t_min + 53}
    x = x / sc
    if lorentz:
        x = to_lorentz(x, 1.0 / curvature)
    return x, stats


def _radius(x: Tensor) -> float:
    """Largest distance from the origin of unit-ball points (N, d)."""
    return float(2 * torch.atanh(x.norm(dim=-1).max().clamp_max(_LAST))) if len(x) else 0.0


def fit_tau(parent: np.ndarray, dim: int, limit: float, depth: int,
             steps: int = 12) -> Tuple[float, Tensor]:
    """The largest ``tau`` (within 0.1%) whose farthest point lies within ``limit``.

    ``limit / depth`` always fits (a root path of ``depth`` edges is at most
    ``depth * tau`` long) but wastes room when paths turn: WordNet nouns'
    deepest node then sits at 6.5 of the 12.2 available.  The farthest
    distance grows about linearly in ``tau``, so ``tau <- tau * limit / R``
    is repeated, keeping the largest ``tau`` that fits.  -> ``(tau, points)``.
    """
    if not depth:
        return 1.0, place(parent, dim, 1.0)[0]
    tau = limit / depth
    x, _ = place(parent, dim, tau)
    best = (tau, x)                        # limit / depth always fits
    lo, hi = tau, math.inf                 # largest tau known to fit, smallest known not to
    for _ in range(steps):
        r = _radius(x)
        if r <= limit:
            lo = tau
            if tau > best[0]:
                best = (tau, x)
            if r >= limit * (1 - 1e-3):
                break
        else:
            hi = tau
        guess = tau * limit / r
        tau = guess if lo < guess < hi else (lo + hi) / 2
        x, _ = place(parent, dim, tau)
    else:
        if _radius(x) <= limit and tau > best[0]:
            best = (tau, x)
    return best


def _depth(parent: np.ndarray) -> int:
    """Number of edges on the longest root path of the tree ``parent``."""
    n = len(parent)
    level = np.full(n, -1, dtype=np.int64)
    level[parent < 0] = 0
    todo = np.flatnonzero(parent >= 0)
    while len(todo):
        known = level[parent[todo]] >= 0
        level[todo[known]] = level[parent[todo[known]]] + 1
        todo = todo[~known]
    return int(level.max()) if n else 0


# ------------------------------------------------------------- nested cones
#: :func:`cone`'s default offset of a level-2 node's direction from its parent's (halved at
#: every level below).  Untrained closure MAP (2,000 sampled sources) of the default
#: generated tree (dim 10, farthest node at 9.8): spread 0.25 / 0.5 / 1: 0.989 / 0.993 /
#: 0.929; WordNet mammals (dim 5, exact): 0.5 / 1 / 2: 0.42 / 0.50 / 0.54 (training
#: does the rest there; results/shallow_defaults/README.md).
CONE_SPREAD = 0.5


def cone(edges: np.ndarray, num_nodes: int, dim: int, radius: Optional[float] = None,
         spread: float = CONE_SPREAD, curvature: float = 1.0, lorentz: bool = False,
         dtype: torch.dtype = torch.float64, seed: int = 0,
         parents: str = "all") -> Tuple[Tensor, Dict[str, float]]:
    """Nested cones: a start for the *closure* ranking (ancestors before everything else).

    :func:`construct` keeps graph distances, so a node's siblings and children
    lie nearer than its grandparent and its closure MAP stays at 0.03–0.38.
    Here the root sits at the origin; a level-1 node points in a seeded
    Gaussian direction; a node below points along its parent's direction plus
    a seeded Gaussian offset of norm about ``spread * 2^(1 - level)``
    (then normalised), so every subtree fills a narrowing cone around its root's
    direction; a node of level ``l`` lies at distance ``radius * sqrt(l / depth)``
    from the origin.  An ancestor is then nearly on the segment from the origin
    to its descendants, and what lies in other cones is farther than the
    origin.  ``radius`` defaults to the boundary clamp of ``dtype`` (in the
    space of curvature ``-curvature``).

    A DAG (roots other than the largest component's hang below it, as in
    :func:`spanning_tree`): with ``parents="all"`` a node of several parents
    points along the normalised sum of their directions and its level is its
    longest path from the root, so it lies deeper than every ancestor and
    between its lineages (WordNet nouns: 2,213 such nodes, and 21,524 nodes
    with one among themselves and their ancestors); ``"spanning"`` places it
    in the cone of its :func:`spanning_tree` parent only, far from the other
    lineage.  A tree gets the same points either way.

    -> ``(points, stats)`` as :func:`construct` (float64; ``stats``: ``depth``,
    ``radius``, ``spread``).
    """
    if dim < 2:
        raise ValueError("nested cones need dim >= 2")
    sc = math.sqrt(curvature)
    if parents not in ("all", "spanning"):
        raise ValueError(f"parents must be 'all' or 'spanning', got {parents!r}")
    parent = spanning_tree(edges, num_nodes)
    n = len(parent)
    limit = clamp_radius(dtype) * (1 - 1e-9)
    r_max = limit if radius is None else min(limit, radius * sc)
    gen = torch.Generator().manual_seed(int(seed))
    noise = torch.randn(n, dim, generator=gen, dtype=torch.float64)
    dirs = torch.zeros(n, dim, dtype=torch.float64)
    level = np.zeros(n, dtype=np.int64)
    if parents == "spanning":
        has = parent >= 0
        e = np.stack([np.flatnonzero(has), parent[has]], 1)
    else:
        e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
        extra = np.flatnonzero(parent >= 0)
        extra = extra[np.bincount(e[:, 0], minlength=n)[extra] == 0]   # hung-up roots
        e = np.vstack([e, np.stack([extra, parent[extra]], 1)])
    # levels by longest path: a node is placed once all its parents are (Kahn's order)
    kptr, kids = _csr(e[:, 1], e[:, 0], n)
    pptr, pars = _csr(e[:, 0], e[:, 1], n)
    left = np.diff(pptr)
    several = torch.from_numpy(left > 1)
    frontier = np.flatnonzero(left == 0)
    step = 0
    while len(frontier):
        _, c, _ = _expand(kptr, kids, frontier)
        np.subtract.at(left, c, 1)
        c = np.unique(c[left[c] == 0])
        if not len(c):
            break
        step += 1
        level[c] = step
        ct = torch.from_numpy(c)
        g = noise[ct]
        if step == 1:
            d = g
        else:
            owner, p, _ = _expand(pptr, pars, c)
            up = torch.zeros(len(c), dim, dtype=torch.float64).index_add_(   # c is sorted
                0, torch.from_numpy(np.searchsorted(c, owner)), dirs[torch.from_numpy(p)])
            multi = several[ct]
            up[multi] = torch.nn.functional.normalize(up[multi], dim=-1)
            d = up + (spread * 0.5 ** (step - 1) / math.sqrt(dim)) * g
        dirs[ct] = torch.nn.functional.normalize(d, dim=-1)
        frontier = c
    depth = int(level.max()) if n else 0
    dist = r_max * np.sqrt(level / max(depth, 1))
    x = dirs * torch.from_numpy(np.tanh(dist / 2.0))[:, None]
    stats = {"depth": int(depth), "radius": float(dist.max()) / sc if n else 0.0,
             "spread": float(spread)}
    x = x / sc
    if lorentz:
        x = to_lorentz(x, 1.0 / curvature)
    return x, stats
