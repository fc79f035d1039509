"""Leak-free splits of a taxonomy.

Two kinds:

* :func:`edge_split` (transductive link prediction / reconstruction of held-out
  edges): a random subset of the ``child -> parent`` edges is held out as
  validation and test edges.  Every node stays, but a held-out edge is absent
  from the training edges *and* from the closure used for training, which is
  recomputed from the training edges alone.
* :func:`inductive_split` (placing unseen categories): a set of nodes is held
  out entirely: no training edge touches them and no training closure pair
  contains them.  Their true ancestors are kept for evaluation.

Whatever trains on a split must use only ``train`` / ``train_edges`` and
``train_closure``; ``all_edges`` / ``all_closure`` exist so that negative
samplers can *exclude* every true pair (a held-out positive must never be
drawn as a training negative) and so that evaluation can filter known pairs.

:func:`make_splits` combines both, as the configuration asks, into the
:class:`Splits` every run uses.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from hgraph.data.pairs import pair_matrix, symmetric
from hgraph.data.taxonomy import Taxonomy, transitive_closure

if TYPE_CHECKING:  # pragma: no cover
    from hgraph.config import DataConfig

__all__ = ["EdgeSplit", "NodeSplit", "edge_split", "inductive_split"]


def _check_frac(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must lie in [0, 1), got {value}")
    return value


@dataclass(eq=False)
class EdgeSplit:
    """A random split of the ``child -> parent`` edges.

    Attributes:
        train: (E_tr, 2) int64 rows ``(child, parent)``.
        val: (E_v, 2) int64 rows ``(child, parent)``.
        test: (E_te, 2) int64 rows ``(child, parent)``.
        num_nodes: N.
        train_closure: (N, N) bool CSR, the transitive closure of ``train``
            only: ``[u, v]`` iff v is reachable from u by training edges.
        all_edges: (N, N) bool CSR of every true edge (train, val and test).
        all_closure: (N, N) bool CSR of the full closure (the taxonomy's).
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    num_nodes: int
    train_closure: sp.csr_matrix
    all_edges: sp.csr_matrix
    all_closure: sp.csr_matrix

    def summary(self) -> dict:
        return {"num_nodes": self.num_nodes, "train": len(self.train), "val": len(self.val),
                "test": len(self.test), "train_closure_pairs": int(self.train_closure.nnz),
                "all_closure_pairs": int(self.all_closure.nnz)}


def edge_split(tax: Taxonomy, val_frac: float = 0.05, test_frac: float = 0.10,
               seed: int = 0) -> EdgeSplit:
    """Hold out ``round(val_frac * E)`` validation and ``round(test_frac * E)``
    test edges, chosen uniformly at random (``numpy.random.default_rng(seed)``).

    ``E`` is the total number of edges.  Edges into a *virtual* root
    (``tax.virtual_root`` and parent ``== tax.root``) are never held out: the
    virtual root is not a real category, so "is X a top-level category" is not
    a prediction target.  Edges of a real root can be held out.

    A held-out node keeps its other edges, so in a tree holding out ``(u, p)``
    cuts u's subtree off from p's side of the training graph; the training
    closure then has no pair ``(d, a)`` with d in that subtree and a = p or an
    ancestor of p.  In a DAG such a pair stays if another training path
    derives it.  Row order: ``train``, ``val`` and ``test`` keep the order of
    ``tax.edges``.

    Raises ``ValueError`` for fractions outside [0, 1), summing to 1 or more,
    or asking for more edges than can be held out.
    """
    val_frac = _check_frac("val_frac", val_frac)
    test_frac = _check_frac("test_frac", test_frac)
    if val_frac + test_frac >= 1.0:
        raise ValueError(f"val_frac + test_frac must be < 1, got {val_frac + test_frac}")
    edges = np.asarray(tax.edges, dtype=np.int64).reshape(-1, 2)
    n, e = tax.num_nodes, len(edges)
    n_val = int(round(val_frac * e))
    n_test = int(round(test_frac * e))
    protected = (edges[:, 1] == tax.root) if tax.virtual_root else np.zeros(e, dtype=bool)
    eligible = np.flatnonzero(~protected)
    if n_val + n_test > len(eligible):
        raise ValueError(f"cannot hold out {n_val + n_test} of {e} edges: only "
                         f"{len(eligible)} are not edges into the virtual root")
    rng = np.random.default_rng(seed)
    picked = rng.permutation(eligible)[:n_test + n_val]
    role = np.zeros(e, dtype=np.int8)          # 0 train, 1 val, 2 test
    role[picked[:n_test]] = 2
    role[picked[n_test:]] = 1
    train = edges[role == 0]
    return EdgeSplit(
        train=train, val=edges[role == 1], test=edges[role == 2], num_nodes=n,
        train_closure=transitive_closure(train, n),
        all_edges=pair_matrix(edges[:, 0], edges[:, 1], n, dtype=bool),
        all_closure=tax.closure)


@dataclass(eq=False)
class NodeSplit:
    """Nodes held out entirely, for inductive evaluation.

    Attributes:
        heldout: (H,) int64 held-out node ids, sorted.
        train_mask: (N,) bool, False exactly at held-out nodes.
        train_edges: (E_tr, 2) int64 rows ``(child, parent)`` with both ends
            training nodes.
        heldout_edges: (E_h, 2) int64 rows ``(child, parent)``: every edge
            with at least one held-out end.
        train_closure: (N, N) bool CSR, closure of ``train_edges``; rows and
            columns of held-out nodes are empty.
        heldout_ancestors: (N, N) bool CSR; row ``u`` of a held-out node holds
            all of u's true ancestors (which, in "subtrees" mode, include
            held-out ones); other rows are empty.
        num_nodes: N.
        mode: "leaves" or "subtrees".
    """

    heldout: np.ndarray
    train_mask: np.ndarray
    train_edges: np.ndarray
    heldout_edges: np.ndarray
    train_closure: sp.csr_matrix
    heldout_ancestors: sp.csr_matrix
    num_nodes: int
    mode: str

    def summary(self) -> dict:
        return {"mode": self.mode, "num_nodes": self.num_nodes, "heldout": len(self.heldout),
                "train_edges": len(self.train_edges), "heldout_edges": len(self.heldout_edges),
                "train_closure_pairs": int(self.train_closure.nnz)}


INDUCTIVE_MODES = ("leaves", "subtrees")


def inductive_split(tax: Taxonomy, frac: float = 0.1, seed: int = 0,
                    mode: str = "leaves") -> NodeSplit:
    """Hold out nodes entirely (``numpy.random.default_rng(seed)``).

    * ``mode="leaves"``: ``round(frac * L)`` of the ``L`` leaves, uniformly at
      random.  No other node loses an edge to a node it still has.
    * ``mode="subtrees"``: whole subtrees (a node and all its descendants)
      rooted at internal nodes of level >= 2, visited in random order; a
      subtree is taken when it fits, i.e. when the held-out count stays at
      most ``round(frac * N)``, and the scan stops once that target is met.
      So the held-out share is at most ``frac`` and, on trees whose level->=2
      subtrees are small next to ``frac * N``, very close to it.  In a DAG a
      descendant is held out even if it has another parent outside the
      subtree.

    The root is never held out.  Raises ``ValueError`` for an unknown mode, a
    fraction outside [0, 1), or (subtrees) a taxonomy without internal nodes
    of level >= 2.
    """
    frac = _check_frac("frac", frac)
    if mode not in INDUCTIVE_MODES:
        raise ValueError(f"mode must be one of {INDUCTIVE_MODES}, got {mode!r}")
    n = tax.num_nodes
    edges = np.asarray(tax.edges, dtype=np.int64).reshape(-1, 2)
    rng = np.random.default_rng(seed)
    held = np.zeros(n, dtype=bool)
    if mode == "leaves":
        leaves = np.flatnonzero(tax.is_leaf)
        leaves = leaves[leaves != tax.root]
        k = int(round(frac * len(leaves)))
        held[rng.choice(leaves, size=k, replace=False)] = True
    else:
        cand = np.flatnonzero(~tax.is_leaf & (tax.level >= 2))
        if len(cand) == 0 and frac > 0:
            raise ValueError("subtrees mode needs internal nodes at level >= 2; "
                             "this taxonomy has none (use mode='leaves')")
        target = int(round(frac * n))
        desc = tax.closure.T.tocsr()          # row a: the descendants of a
        count = 0
        for a in rng.permutation(cand).tolist():
            if count >= target:
                break
            if held[a]:
                continue
            sub = desc.indices[desc.indptr[a]:desc.indptr[a + 1]]
            new = int((~held[sub]).sum()) + 1
            if count + new > target:
                continue
            held[a] = True
            held[sub] = True
            count += new
    heldout = np.flatnonzero(held).astype(np.int64)
    touch = held[edges[:, 0]] | held[edges[:, 1]]
    train_edges = edges[~touch]
    anc = tax.closure                         # keep only the held-out rows
    row_len = np.diff(anc.indptr)
    indptr = np.concatenate([[0], np.cumsum(row_len * held)])
    indices = anc.indices[np.repeat(held, row_len)]
    heldout_anc = sp.csr_matrix((np.ones(len(indices), dtype=bool), indices, indptr),
                                shape=(n, n))
    heldout_anc.sort_indices()
    return NodeSplit(heldout=heldout, train_mask=~held, train_edges=train_edges,
                     heldout_edges=edges[touch],
                     train_closure=transitive_closure(train_edges, n),
                     heldout_ancestors=heldout_anc, num_nodes=n, mode=mode)


@dataclass
class Splits:
    """Leak-free views of one taxonomy (global node ids throughout).

    ``train``: (E_tr, 2) message-passing / training edges (child, parent);
    ``val``/``test``: held-out edges; ``train_closure``: closure of ``train``
    only; ``forbidden``: symmetric full closure, the filter for negatives;
    ``heldout``: inductive nodes (absent from every training structure);
    ``train_mask``: (N,) nodes seen in training.
    """
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    train_closure: Any
    all_closure: Any
    all_edges: Any
    forbidden: Any
    heldout: np.ndarray
    train_mask: np.ndarray
    heldout_ancestors: Any = None

    def known_edges(self) -> sp.csr_matrix:
        """(N, N) bool: the training and validation edges, child row -> parent
        column: the true parents validation may leave out of a ranking (test
        edges are not known at training time)."""
        n = len(self.train_mask)
        e = np.concatenate([self.train, self.val]).reshape(-1, 2)
        return sp.csr_matrix((np.ones(len(e), dtype=bool), (e[:, 0], e[:, 1])), shape=(n, n))


def make_splits(tax: Taxonomy, cfg: "DataConfig") -> Splits:
    """The edge split (``val_frac``, ``test_frac``) and, with ``inductive_frac``
    > 0, the inductive node split on top of it (edges touching a held-out node
    leave every edge set), seeded by ``split_seed``."""
    n = tax.num_nodes
    es = edge_split(tax, val_frac=cfg.val_frac, test_frac=cfg.test_frac, seed=cfg.split_seed)
    train, val, test = es.train, es.val, es.test
    heldout = np.zeros(0, dtype=np.int64)
    train_mask = np.ones(n, dtype=bool)
    anc = None
    if cfg.inductive_frac > 0:
        ns = inductive_split(tax, frac=cfg.inductive_frac, seed=cfg.split_seed)
        heldout, train_mask, anc = ns.heldout, ns.train_mask, ns.heldout_ancestors

        def keep(e):
            return e[train_mask[e[:, 0]] & train_mask[e[:, 1]]]
        train, val, test = keep(train), keep(val), keep(test)
    train_closure = es.train_closure if cfg.inductive_frac == 0 else transitive_closure(train, n)
    return Splits(train=train, val=val, test=test, train_closure=train_closure,
                  all_closure=es.all_closure, all_edges=es.all_edges,
                  forbidden=symmetric(es.all_closure), heldout=heldout,
                  train_mask=train_mask, heldout_ancestors=anc)
