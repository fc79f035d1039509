"""Subsumption-prediction splits in the protocol of Hierarchy Transformers (HiT).

He et al., "Language Models as Hierarchy Encoders" (NeurIPS 2024) score a
pair ``(child, parent)`` as a subsumption or not, with F1 on the positive
class, the threshold chosen on validation.  This module rebuilds their
*mixed-hop prediction* split (reimplemented from the description of their
construction code: ``HierarchyDatasetConstructor`` in their repository and
``TaxonomyNegativeSampler`` in DeepOnto; no code is copied):

* The hierarchy is a DAG of direct (asserted) ``child -> parent`` edges; its
  entities are the nodes that occur in an edge.  For WordNet nouns HiT keeps
  the hypernym pointers only, not instance hypernyms
  (:func:`wordnet_hypernym_edges`).
* *Transitive* subsumptions: every ``(child, ancestor)`` of the full
  hierarchy that is not a direct edge.
* Split (random, seeded): 10% of the direct edges are held out (half
  validation, half test); 10% of the transitive pairs likewise.  Training:
  the remaining 90% of the direct edges only (no transitive pair is trained).
  Validation = held-out direct + held-out transitive of one half; test = the
  other half.  Sizes follow scikit-learn's ``train_test_split``: held out
  ``ceil(0.1 n)``, of which ``ceil(0.5 m)`` go to test.
* Negatives, 10 per positive, for the child of each positive:

  - *random*: entities drawn uniformly with replacement, never an ancestor
    of the child in the full hierarchy (so never a positive, transitive
    included) and never the child itself (DeepOnto does not exclude the
    child; the chance is 1/74k per draw);
  - *hard*: the child's siblings (other children of its direct parents, full
    hierarchy) that are not its ancestors, in one seeded order per child,
    then the example's random negatives, the first 10 kept.

"Unseen entities" in HiT's wording are a consequence of the edge split, not
a separate hold-out: an entity whose every direct edge was held out occurs
in no training edge (:meth:`HitSplit.unseen`, mostly leaves with one parent).
Anything that trains on a split must read ``train`` (and, for its own
negatives, :meth:`HitSplit.train_closure` or the full closure as an
exclusion filter) only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import scipy.sparse as sp

from hgraph.data.pairs import NegativeSampler, pair_keys, pair_matrix
from hgraph.data.taxonomy import csr_pairs, transitive_closure

__all__ = ["HitExamples", "HitSplit", "build_hit_split", "wordnet_hypernym_edges",
           "hit_entity_names", "siblings_matrix"]


@dataclass
class HitExamples:
    """Positives with their negatives.

    ``pos``: (n, 2) rows ``(child, parent)``; ``direct``: (n,) bool, True for
    a direct edge, False for a transitive pair; ``random`` / ``hard``: (n, K)
    negative parents for the row's child.
    """
    pos: np.ndarray
    direct: np.ndarray
    random: np.ndarray
    hard: np.ndarray

    def __len__(self) -> int:
        return int(self.pos.shape[0])

    def pairs(self, kind: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Labelled pairs for ``kind`` ``"random"`` or ``"hard"``:
        ``(pairs (n(1+K), 2), labels (n(1+K),) 0/1, row (n(1+K),) index of the
        positive each pair belongs to)``; each positive is followed by its K
        negatives."""
        neg = {"random": self.random, "hard": self.hard}[kind]
        n, k = neg.shape
        child = np.repeat(self.pos[:, 0], 1 + k)
        other = np.concatenate([self.pos[:, 1:2], neg], axis=1).reshape(-1)
        labels = np.tile(np.r_[1, np.zeros(k, dtype=np.int64)], n)
        row = np.repeat(np.arange(n), 1 + k)
        return np.stack([child, other], axis=1), labels, row


@dataclass
class HitSplit:
    """The mixed-hop split (see the module docstring).

    ``entities``: (M,) node ids in the hierarchy; ``base_edges``: (E, 2)
    direct edges; ``trans_edges``: (T, 2) transitive pairs; ``closure``:
    (N, N) bool CSR, ``closure[u, v]`` iff v is a proper ancestor of u in the
    full hierarchy (evaluation and negative filtering only).
    """
    num_nodes: int
    entities: np.ndarray
    base_edges: np.ndarray
    trans_edges: np.ndarray
    closure: sp.csr_matrix
    train: HitExamples
    val: HitExamples
    test: HitExamples
    seed: int
    meta: Dict[str, object] = field(default_factory=dict)

    def unseen(self) -> np.ndarray:
        """(N,) bool: entities of the hierarchy that occur in no training edge."""
        seen = np.zeros(self.num_nodes, dtype=bool)
        seen[self.train.pos.reshape(-1)] = True
        out = np.zeros(self.num_nodes, dtype=bool)
        out[self.entities] = True
        return out & ~seen

    def train_closure(self) -> sp.csr_matrix:
        """Ancestor relation of the training edges alone."""
        return transitive_closure(self.train.pos, self.num_nodes)

    def summary(self) -> Dict[str, int]:
        u = self.unseen()
        return {"entities": int(len(self.entities)), "direct": int(len(self.base_edges)),
                "transitive": int(len(self.trans_edges)), "train": len(self.train),
                "val": len(self.val), "val_direct": int(self.val.direct.sum()),
                "test": len(self.test), "test_direct": int(self.test.direct.sum()),
                "unseen_entities": int(u.sum()),
                "test_unseen_child": int(u[self.test.pos[:, 0]].sum()),
                "negatives": int(self.test.random.shape[1]), "seed": self.seed}


def siblings_matrix(edges: np.ndarray, num_nodes: int, closure: sp.csr_matrix) -> sp.csr_matrix:
    """(N, N) bool CSR: ``S[u, w]`` iff w shares a direct parent with u,
    ``w != u`` and w is not an ancestor of u (HiT's hard negatives)."""
    c2p = pair_matrix(edges[:, 0], edges[:, 1], num_nodes).astype(np.int32)
    s = (c2p @ c2p.T).tocsr()
    s.data[:] = 1
    s.setdiag(0)
    s = s - s.multiply(closure.astype(np.int32))
    s.eliminate_zeros()
    s = s.astype(bool).tocsr()
    s.sort_indices()
    return s


def _split_sizes(n: int, frac: float) -> Tuple[int, int, int]:
    """(train, val, test) sizes as ``train_test_split(test_size=frac)`` then
    ``train_test_split(test_size=0.5)`` make them."""
    held = int(math.ceil(frac * n)) if n else 0
    test = int(math.ceil(0.5 * held)) if held else 0
    return n - held, held - test, test


def _hard(children: np.ndarray, random_neg: np.ndarray, sib: sp.csr_matrix,
          order: Dict[int, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Siblings of each child in one fixed order per child (drawn once, kept in
    ``order``), padded with the row's random negatives."""
    k = random_neg.shape[1]
    out = np.empty_like(random_neg)
    for i, u in enumerate(children.tolist()):
        s = order.get(u)
        if s is None:
            lo, hi = sib.indptr[u], sib.indptr[u + 1]
            s = order[u] = sib.indices[lo:hi][rng.permutation(hi - lo)]
        if len(s) >= k:
            out[i] = s[:k]
        else:
            out[i, :len(s)] = s
            out[i, len(s):] = random_neg[i, :k - len(s)]
    return out


def build_hit_split(edges: np.ndarray, num_nodes: int, num_negative: int = 10,
                    eval_frac: float = 0.1, seed: int = 0) -> HitSplit:
    """HiT's mixed-hop split of the DAG ``edges`` (E, 2) rows ``(child, parent)``.

    Node ids are ``0..num_nodes-1``; only nodes in an edge are entities.
    Deterministic for a seed.
    """
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    edges = np.unique(edges, axis=0)                  # sorted rows: order-free input
    if len(edges) == 0:
        raise ValueError("build_hit_split: no edges")
    if (edges[:, 0] == edges[:, 1]).any():
        raise ValueError("build_hit_split: self-loop in edges")
    if not 0 < eval_frac < 1:
        raise ValueError(f"eval_frac must be in (0, 1), got {eval_frac}")
    entities = np.unique(edges)
    closure = transitive_closure(edges, num_nodes)
    if closure.diagonal().any():
        raise ValueError("build_hit_split: the edges have a cycle")
    allp = csr_pairs(closure)
    base_keys = np.sort(pair_keys(edges[:, 0], edges[:, 1], num_nodes))
    k_all = pair_keys(allp[:, 0], allp[:, 1], num_nodes)
    pos = np.searchsorted(base_keys, k_all).clip(max=len(base_keys) - 1)
    trans = allp[base_keys[pos] != k_all]
    trans = trans[np.lexsort((trans[:, 1], trans[:, 0]))]

    rng = np.random.default_rng(seed)
    rng_order = np.random.default_rng([seed, 1])
    sampler = NegativeSampler(closure, num_nodes, candidates=entities)
    sib = siblings_matrix(edges, num_nodes, closure)
    order: Dict[int, np.ndarray] = {}

    def examples(p: np.ndarray, direct: bool) -> HitExamples:
        rnd, ok = sampler.sample(p[:, 0], num_negative, rng)
        if not ok.all():
            raise ValueError("build_hit_split: could not draw random negatives for some "
                             "children (the hierarchy is too small for "
                             f"{num_negative} negatives per positive)")
        return HitExamples(pos=p, direct=np.full(len(p), direct), random=rnd,
                           hard=_hard(p[:, 0], rnd, sib, order, rng_order))

    def cut(rows: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        tr, va, te = _split_sizes(len(rows), eval_frac)
        perm = rng.permutation(len(rows))
        return rows[perm[:tr]], rows[perm[tr:tr + va]], rows[perm[tr + va:]]

    b_tr, b_va, b_te = cut(edges)
    _, t_va, t_te = cut(trans)

    def join(a: HitExamples, b: HitExamples) -> HitExamples:
        return HitExamples(*(np.concatenate([x, y]) for x, y in
                             zip((a.pos, a.direct, a.random, a.hard),
                                 (b.pos, b.direct, b.random, b.hard))))

    train = examples(b_tr, True)
    val = join(examples(b_va, True), examples(t_va, False))
    test = join(examples(b_te, True), examples(t_te, False))
    return HitSplit(num_nodes=int(num_nodes), entities=entities, base_edges=edges,
                    trans_edges=trans, closure=closure, train=train, val=val, test=test,
                    seed=int(seed))


# ------------------------------------------------------------------ WordNet
def wordnet_hypernym_edges(tax, root: Optional[str] = None) -> np.ndarray:
    """(E, 2) ``(child, parent)`` ids of ``tax`` (a :func:`hgraph.data.wordnet.load_wordnet`
    taxonomy) for the hypernym pointers ``@`` between noun synsets only, as
    HiT builds WordNet (DeepOnto's ``WordnetTaxonomy`` without
    ``include_membership``): the instance-hypernym pointers ``@i`` that the
    hgraph loader also reads are left out."""
    from hgraph.data.wordnet import WORDNET_DIR
    path = Path(root or WORDNET_DIR) / "data.noun"
    offs = tax.meta.get("offsets")
    if offs is None:
        raise ValueError("wordnet_hypernym_edges needs a WordNet taxonomy (meta['offsets'])")
    id_of = {o: i for i, o in enumerate(offs) if o is not None}
    child: List[int] = []
    parent: List[int] = []
    for line in path.read_text(encoding="utf-8").split("\n"):
        if not line or line[0] == " ":
            continue
        head = line.split(" | ", 1)[0].split()
        off = head[0]
        if off not in id_of:
            continue
        p = 4 + 2 * int(head[3], 16)
        for j in range(p + 1, p + 1 + 4 * int(head[p]), 4):
            if head[j] == "@" and head[j + 2] == "n" and head[j + 1] in id_of:
                child.append(id_of[off])
                parent.append(id_of[head[j + 1]])
    return np.unique(np.stack([np.asarray(child, dtype=np.int64),
                               np.asarray(parent, dtype=np.int64)], axis=1), axis=0)


def hit_entity_names(tax) -> List[str]:
    """(N,) the text HiT feeds its encoder for each WordNet synset: the lemma
    part of the NLTK synset name with underscores as spaces
    (``"personal_computer.n.01"`` -> ``"personal computer"``)."""
    return [k.rsplit(".", 2)[0].replace("_", " ") for k in tax.keys]
