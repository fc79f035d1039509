"""The :class:`Taxonomy`: a category hierarchy with contiguous integer ids.

A taxonomy is a DAG of ``child -> parent`` (is-a) edges with a single root.
WordNet is a DAG (some synsets have two hypernyms); CurvLearn trees have one
parent per node, which is checked when ``tree=True``.  Inputs with several
roots get a virtual root ``<root>`` so that every node has a level.

Storage is numpy arrays (``edges``, ``level``) plus lazily built CSR
adjacency; the networkx view (:attr:`Taxonomy.graph`) is built on demand.
Keeping arrays primary is deliberate: a networkx DiGraph of a 1M-node tree
costs several GB and minutes to build, while every algorithm we need
(levels, topological order, transitive closure) is a few sparse-matrix
operations.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Dict, Hashable, Iterable, List, Optional, Sequence

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

from hgraph.data.pairs import pair_keys, pair_matrix
from hgraph.errors import HGraphInputError

VIRTUAL_ROOT = "<root>"


def transitive_closure(edges: np.ndarray, num_nodes: int, hops: bool = False) -> sp.csr_matrix:
    """Ancestor relation of a DAG as a CSR matrix.

    ``edges``: (E, 2) rows ``(child, parent)``.  Returns ``C`` (N, N) with
    ``C[u, v]`` true iff ``v`` is a proper ancestor of ``u``: bool, or with
    ``hops=True`` int32 holding the shortest number of edges from u up to v
    (pairs first reached at step h are exactly those at distance h).
    Computed as ``A + A^2 + ...`` with sparse products, keeping only pairs not
    seen before, so the cost is proportional to the number of closure pairs
    times the depth, never to N^2.
    """
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    a = pair_matrix(edges[:, 0], edges[:, 1], num_nodes).astype(np.int32)
    closure = a.copy()
    dist = a.copy()
    frontier = a
    for h in range(2, num_nodes + 2):
        frontier = frontier @ a
        frontier.data[:] = 1
        frontier = frontier - frontier.multiply(closure)
        frontier.eliminate_zeros()
        if frontier.nnz == 0:
            break
        closure = closure + frontier
        if hops:
            dist = dist + frontier * h
    if hops:
        dist = dist.tocsr()
        dist.sort_indices()
        return dist
    closure.data[:] = 1
    closure = closure.astype(bool).tocsr()
    closure.sort_indices()
    return closure


def topological_generations(edges: np.ndarray, n: int):
    """Kahn's algorithm by frontier: ``(generations, parents_left)``.

    Generation 0 holds the nodes without parents; generation g the nodes whose
    parents all lie in earlier generations (for a tree: the level).
    ``parents_left`` (N,) is non-zero exactly for nodes on or below a cycle.
    O(N + E) work plus one numpy call per generation.
    """
    indeg = np.bincount(edges[:, 0], minlength=n).astype(np.int64)   # number of parents
    p2c = pair_matrix(edges[:, 1], edges[:, 0], n)
    frontier = np.flatnonzero(indeg == 0)
    gens = []
    while len(frontier):
        gens.append(frontier)
        kids = p2c[frontier].indices
        if len(kids) == 0:
            break
        before = indeg > 0
        indeg -= np.bincount(kids, minlength=n)
        frontier = np.flatnonzero(before & (indeg == 0))
    return gens, indeg


def csr_pairs(m: sp.spmatrix) -> np.ndarray:
    """(M, 2) int64 rows ``(row, col)`` of the non-zeros of a sparse relation."""
    c = sp.coo_matrix(m)
    return np.stack([c.row, c.col], axis=1).astype(np.int64)


@dataclass(eq=False)
class Taxonomy:
    """A rooted DAG of categories with ids ``0..N-1``.

    Attributes:
        names: (N,) display names; ``names[i]`` is node ``i``'s name.
        edges: (E, 2) int64 rows ``(child, parent)``.
        root: id of the single root (virtual when the input had several).
        source: where the taxonomy came from (a path or a generator spec).
        keys: (N,) the external ids as read (strings), for mapping back.
        texts: (N,) the text a text encoder reads for each node (name plus
            description where the dataset has one), or None (names are used).
    """

    names: List[str]
    edges: np.ndarray
    root: int
    source: str = "<memory>"
    keys: Optional[List[str]] = None
    virtual_root: bool = False
    features: Optional[np.ndarray] = None
    meta: Dict[str, object] = field(default_factory=dict)
    texts: Optional[List[str]] = None

    # ------------------------------------------------------------------ build
    @classmethod
    def from_edges(cls, child: Sequence[Hashable], parent: Sequence[Hashable], *,
                   names: Optional[Dict[Hashable, str]] = None,
                   nodes: Optional[Iterable[Hashable]] = None,
                   tree: bool = False, source: str = "<memory>",
                   lines: Optional[Sequence[int]] = None) -> "Taxonomy":
        """Build from parallel sequences of external child/parent keys.

        ``nodes`` may list extra keys (isolated nodes become children of the
        root).  ``lines`` gives the 1-based input line of each edge, used in
        error messages.  ``tree=True`` rejects a node with two parents.
        Raises :class:`HGraphInputError` for self-loops, conflicting parents
        (tree mode) and cycles, naming the line.
        """
        child = list(child)
        parent = list(parent)
        if len(child) != len(parent):
            raise ValueError("child and parent must have the same length")
        if not child and not nodes:
            raise HGraphInputError("no edges and no nodes", file=source)
        line_of = (lambda i: None) if lines is None else (lambda i: int(lines[i]))

        index: Dict[Hashable, int] = {}
        keys: List[Hashable] = []

        def intern(k: Hashable) -> int:
            i = index.get(k)
            if i is None:
                i = index[k] = len(keys)
                keys.append(k)
            return i

        c_ids = np.fromiter((intern(k) for k in child), dtype=np.int64, count=len(child))
        p_ids = np.fromiter((intern(k) for k in parent), dtype=np.int64, count=len(parent))
        if nodes is not None:
            for k in nodes:
                intern(k)
        n = len(keys)

        loops = np.flatnonzero(c_ids == p_ids)
        if len(loops):
            i = int(loops[0])
            raise HGraphInputError(f"self-loop: node {child[i]!r} is its own parent",
                                   file=source, line=line_of(i),
                                   fix="remove the row or fix the parent id")

        # de-duplicate identical edges; detect conflicting parents in tree mode
        edges = np.stack([c_ids, p_ids], axis=1)
        _, first = np.unique(pair_keys(c_ids, p_ids, n), return_index=True)
        first.sort()
        edges = edges[first]
        if tree:
            order = np.argsort(edges[:, 0], kind="stable")
            sc = edges[order, 0]
            dup = np.flatnonzero(sc[1:] == sc[:-1])
            if len(dup):
                a, b = first[order[dup[0]]], first[order[dup[0] + 1]]
                a, b = min(a, b), max(a, b)
                raise HGraphInputError(
                    f"node {child[b]!r} has two parents ({parent[a]!r} on line "
                    f"{line_of(a)} and {parent[b]!r}); a tree allows one",
                    file=source, line=line_of(b),
                    fix="give each id one parent, or load as a DAG (--format edges)")

        names_list = [str(k) if names is None else str(names.get(k, k)) for k in keys]
        keys_str = [str(k) for k in keys]

        # roots: nodes without a parent
        has_parent = np.zeros(n, dtype=bool)
        has_parent[edges[:, 0]] = True
        roots = np.flatnonzero(~has_parent)
        virtual = False
        if len(roots) == 0:
            # every node has a parent -> there is a cycle; find it below
            root = -1
        elif len(roots) == 1:
            root = int(roots[0])
        else:
            root = n
            n += 1
            names_list.append(VIRTUAL_ROOT)
            keys_str.append(VIRTUAL_ROOT)
            extra = np.stack([roots, np.full(len(roots), root)], axis=1)
            edges = np.concatenate([edges, extra]).astype(np.int64)
            virtual = True

        cyc = _find_cycle(edges, n)
        if cyc is not None:
            e_lookup = {(int(c), int(p)): i for i, (c, p) in enumerate(zip(c_ids, p_ids))}
            path = " -> ".join(keys_str[v] for v in cyc + [cyc[0]])
            ln = None
            if lines is not None and (cyc[0], cyc[1 % len(cyc)]) in e_lookup:
                ln = line_of(e_lookup[(cyc[0], cyc[1 % len(cyc)])])
            raise HGraphInputError(f"cycle in the parent relation: {path}",
                                   file=source, line=ln,
                                   fix="a taxonomy must be acyclic; fix one of these parent ids")
        tax = cls(names=names_list, edges=edges.astype(np.int64), root=root,
                  source=source, keys=keys_str, virtual_root=virtual)
        return tax

    # ----------------------------------------------------------- properties
    @property
    def num_nodes(self) -> int:
        return len(self.names)

    @property
    def num_edges(self) -> int:
        return int(self.edges.shape[0])

    @cached_property
    def child_to_parent(self) -> sp.csr_matrix:
        """(N, N) CSR, row ``u`` holds u's parents."""
        return pair_matrix(self.edges[:, 0], self.edges[:, 1], self.num_nodes)

    @cached_property
    def parent_to_child(self) -> sp.csr_matrix:
        """(N, N) CSR, row ``u`` holds u's children."""
        return self.child_to_parent.T.tocsr()

    def parents(self, u: int) -> np.ndarray:
        m = self.child_to_parent
        return m.indices[m.indptr[u]:m.indptr[u + 1]]

    def children(self, u: int) -> np.ndarray:
        m = self.parent_to_child
        return m.indices[m.indptr[u]:m.indptr[u + 1]]

    @cached_property
    def out_degree(self) -> np.ndarray:
        """(N,) number of children per node."""
        return np.diff(self.parent_to_child.indptr)

    @cached_property
    def is_leaf(self) -> np.ndarray:
        return self.out_degree == 0

    @cached_property
    def is_tree(self) -> bool:
        return bool(np.all(np.diff(self.child_to_parent.indptr)[np.arange(self.num_nodes) != self.root] == 1))

    @cached_property
    def level(self) -> np.ndarray:
        """(N,) int64 depth: shortest number of edges from the root."""
        d = csgraph.shortest_path(self.parent_to_child, directed=True, unweighted=True,
                                  indices=self.root)
        if not np.all(np.isfinite(d)):
            raise AssertionError("every node must be reachable from the root")
        return d.astype(np.int64)

    @property
    def depth(self) -> int:
        return int(self.level.max())

    @cached_property
    def closure(self) -> sp.csr_matrix:
        """(N, N) bool CSR; ``closure[u, v]`` iff v is a proper ancestor of u."""
        return transitive_closure(self.edges, self.num_nodes)

    def closure_pairs(self) -> np.ndarray:
        """(M, 2) int64 rows ``(descendant, ancestor)``."""
        return csr_pairs(self.closure)

    @cached_property
    def _index(self) -> Dict[str, int]:
        idx = {name: i for i, name in enumerate(self.names)}
        if self.keys is not None:
            for i, k in enumerate(self.keys):
                idx.setdefault(k, i)
        return idx

    def index(self, name_or_key: str) -> int:
        """Id of a node given its name or external key."""
        try:
            return self._index[str(name_or_key)]
        except KeyError:
            raise HGraphInputError(f"unknown node {name_or_key!r}", file=self.source) from None

    @cached_property
    def graph(self):
        """networkx DiGraph with edges parent -> child and node attrs name, level."""
        import networkx as nx
        g = nx.DiGraph()
        lv = self.level
        g.add_nodes_from((i, {"name": self.names[i], "level": int(lv[i])})
                         for i in range(self.num_nodes))
        g.add_edges_from(zip(self.edges[:, 1].tolist(), self.edges[:, 0].tolist()))
        return g

    def check_levels(self, given: np.ndarray, lines: Optional[Sequence[int]] = None,
                     offset: int = 0) -> None:
        """Raise if ``given`` levels (per node id, -1 = unknown) disagree with depth.

        ``offset`` is added to the computed level first (a file whose virtual
        root is level 0 has offset 0).
        """
        lv = self.level + offset
        bad = np.flatnonzero((given >= 0) & (given != lv))
        if len(bad):
            i = int(bad[0])
            raise HGraphInputError(
                f"node {self.keys[i] if self.keys else i!r} has level {int(given[i])} "
                f"but depth {int(lv[i])} below the root",
                file=self.source, line=None if lines is None else int(lines[i]),
                fix="the level column must equal the number of edges to the root")

    def summary(self) -> Dict[str, object]:
        lv = self.level
        counts = np.bincount(lv)
        return {
            "source": self.source,
            "num_nodes": self.num_nodes,
            "num_edges": self.num_edges,
            "root": self.names[self.root],
            "virtual_root": self.virtual_root,
            "depth": int(lv.max()),
            "is_tree": self.is_tree,
            "nodes_per_level": counts.tolist(),
            "num_leaves": int(self.is_leaf.sum()),
            "closure_pairs": int(self.closure.nnz),
        }

    def __repr__(self) -> str:
        return (f"Taxonomy(num_nodes={self.num_nodes}, num_edges={self.num_edges}, "
                f"depth={self.depth}, tree={self.is_tree}, source={self.source!r})")


def _find_cycle(edges: np.ndarray, n: int) -> Optional[List[int]]:
    """Return one cycle (list of node ids, child -> parent order) or None.

    Nodes left over by :func:`topological_generations` lie on or below a
    cycle; networkx names one cycle among those (few) nodes.
    """
    if n == 0:
        return None
    _, indeg = topological_generations(edges, n)
    left = np.flatnonzero(indeg > 0)
    if len(left) == 0:
        return None
    import networkx as nx
    mask = np.zeros(n, dtype=bool)
    mask[left] = True
    sel = mask[edges[:, 0]] & mask[edges[:, 1]]
    g = nx.DiGraph()
    g.add_edges_from(zip(edges[sel, 0].tolist(), edges[sel, 1].tolist()))
    cyc = nx.find_cycle(g)
    return [int(u) for u, _ in cyc]
