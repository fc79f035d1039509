"""Samplers of the graph regularisers' triplets and pairs (RAMEN / HUSE style).

The sampling half of the graph regulariser; the loss terms and
:class:`hgraph.losses.GraphRegularizer` (a sampler with its loss) live in
:mod:`hgraph.losses`.

The taxonomy is used only while training: each step samples triplets / pairs
from the *training* graph and adds a loss on the encoder's points.  The
encoder itself never sees the graph, so inference cost is unchanged
(Mittal et al. 2024, "Graph Regularized Encoder Training for Extreme
Classification").  Use::

    reg = hgraph.losses.GraphRegularizer(train_edges, num_nodes, kinds=("ancestor", "sibling"),
                           allowed=train_node_mask, level=taxonomy.level)
    samples = reg.sample(anchor_ids, rng)              # numpy, per step
    ids = reg.nodes(samples)                           # encode each node once
    z = encoder(x[ids], None, torch.as_tensor(ids))
    parts = reg.loss(manifold, z, index_map(ids, num_nodes), samples)
    loss = task_loss + lambda_at(epoch, reg_lambda, reg_warmup) * sum(parts.values())

Notation: ``N`` nodes; ``anc(u)`` the proper ancestors of ``u`` and
``desc(u)`` its proper descendants in the training graph; ``P(u)`` its
parents; ``d`` the manifold's geodesic distance.

Kinds
-----
``ancestor`` — triplets ``(u, a, w)``: ``a`` uniform over ``anc(u)``; ``w``
uniform over allowed nodes with ``w != u``, ``w ∉ anc(u)`` and
``w ∉ desc(u)``.  Descendants are excluded as well as ancestors because a
hierarchy embedding puts a child *closer* to ``u`` than ``u``'s far
ancestors (the child is 1 hop away, the root up to depth hops); pushing
descendants away would fight the task loss.  This is the negative set of
Nickel & Kiela's closure reconstruction (pairs unrelated in either
direction).

``sibling`` — triplets ``(u, s, w)``: ``p`` uniform over the parents of ``u``
that have another child, ``s`` uniform over ``children(p) \\ {u}``; ``w``
uniform over allowed nodes outside the subtrees of all of ``u``'s parents
and not an ancestor of ``u``: ``w ∉ anc(u) ∪ ⋃_{q∈P(u)} ({q} ∪ desc(q))``.
So ``w`` is never a sibling (through any parent, in a DAG), a nephew, the
parent or an ancestor (an ancestor is as close to ``u`` in hops as a
sibling, so it would be a contradictory negative).

Both triplet kinds use the hinge::

    L = mean_t relu(margin + d(z_u, z_pos) - d(z_u, z_w))

Hard negatives (``hard_negatives=True``): ``w`` is drawn, with the same
exclusions, from the allowed nodes at the level of the positive (``a`` for
``ancestor``, ``s`` for ``sibling``) that share no parent with the positive.
For ``ancestor`` this makes ``w`` a "cousin" of ``a``: in a tree its hop
distance to ``u`` is at least ``d_tree(u, a) + 4``, so the constraint agrees
with the tree metric.  When no such node exists (the positive is a root, or
every node at that level is a child of the positive's parents) the triplet
falls back to an ordinary negative.

``huse`` — distance consistency (HUSE, Narayana et al. 2019).  For each
anchor ``u`` two pairs: a *near* pair ``(u, v)`` with ``v`` reached by a
random walk of ``i`` steps up then ``j`` steps down, ``i ~ U{0..thr}``,
``j ~ U{0..thr-i}`` (so ``d_tree(u, v) <= thr = huse_threshold``:
ancestors, descendants, siblings, cousins...), and a *random* pair
``(u, v)`` with ``v`` uniform over allowed nodes.  The target is the
hierarchy distance, computed exactly::

    d_tree(u, v) = min_{c ∈ anc*(u) ∩ anc*(v)} h(u, c) + h(v, c)

(``anc*`` includes the node itself, ``h`` = fewest upward hops).  In a tree
this is the path length through the lowest common ancestor; in a DAG it is
the shortest up-then-down path.  Pairs with ``u == v`` or without a common
ancestor (different components of an edge-split training graph) are
dropped.  The loss, with ``T`` pairs, embedding distances ``δ_t`` and
targets ``t_t``::

    huse_scale = s (fixed):  L = mean_t (δ_t / s - t_t)^2
    huse_scale = None:       a* = Σ δ t / Σ δ^2    (least-squares 1/scale, detached)
                             L = mean_t (a* δ_t - t_t)^2 / mean_t t_t^2
                               = 1 - cos^2(δ, t)   ∈ [0, 1]

The default (``None``) fits the scale per batch: the regulariser then
constrains only the *shape* of the distances (relative distortion) and the
task loss alone decides the overall scale, so there is no scale
hyper-parameter to tune and no conflict with the ranking loss about how far
apart things are.  Detaching ``a*`` does not change the gradient (``a*``
minimises the loss, so ∂L/∂a = 0 there).  Being scale-invariant, its gradient
grows as 1/|δ| when all points collapse together; give a fixed ``huse_scale``
if that matters (e.g. with plain SGD from a near-origin init).  The squared
distortion was preferred to a margin-free rank consistency because its
targets are the hop counts themselves (HUSE's formulation) and it needs no
temperature.

Leak-freedom: ``allowed`` (N,) bool marks the training nodes.  Every edge with
an endpoint outside ``allowed`` is dropped before anything is built, and all
draws are over allowed nodes, so a held-out node never appears as anchor,
positive or negative, and adding or removing held-out nodes (with their
edges) changes neither the exclusion sets nor the samples.  (Holding out an
*internal* node disconnects its subtree from its ancestors in the training
graph — it is absent from training entirely.)

All samplers are vectorised numpy: a bounded number of rejection rounds,
then an exact pass (a dense item × candidate validity mask, chunked) for the
few items still without a negative, so every triplet whose anchor has a valid
negative gets one, drawn uniformly from the valid set.

One concept per file: ``sampler`` (:class:`TripletSampler`: the training
graph's tables, the per-kind samplers), ``negatives`` (validity of a
negative; rejection rounds and the exact pass), ``distance`` (the hierarchy
distance of ``huse`` pairs) and ``helpers`` (CSR row helpers, padded tables,
the hop-count closure, :func:`index_map`).  This module re-exports their
public names.
"""
from __future__ import annotations

from hgraph.data.triplets.helpers import distance_closure, index_map
from hgraph.data.triplets.sampler import KINDS, TRIPLET_KINDS, TripletSampler

__all__ = ["KINDS", "TRIPLET_KINDS", "TripletSampler", "distance_closure", "index_map"]
