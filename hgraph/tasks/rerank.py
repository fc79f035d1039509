"""A second stage over each item's top-k categories: a learned reranker.

The first stage (any item encoder: a tower's distances, or a baseline's
scores) is good at the neighbourhood and weak at the last step: a third of
ICD-10-CM's zero-shot misses are the true code's parent, child or sibling
(``results/items/zero_shot_misses.md``), and "X NOS" items land on "X" rather
than on its "X, unspecified" child.  The reranker scores every (item,
candidate) pair of the first stage's top ``k`` with gradient-boosted trees
(scikit-learn's ``HistGradientBoostingClassifier``) over features that no
single distance carries: the first-stage score and its gap to the top-1, the
raw text-vector cosine, a character n-gram TF-IDF cosine, the candidate's
place in the hierarchy relative to the other candidates (parent, child or
sibling of the top-1; how many of its children and ancestors are in the
list; depth; leaf), whether it has training items (the seen-category bias
that calibrated stacking corrects, :mod:`hgraph.tasks.calibration`), and the
cue words of classification schemes ("NOS" in the item, "unspecified" /
"other" in the candidate).  Features are per pair and never name a category,
so the reranker applies to categories it never saw.

It is fitted, like calibrated stacking's handicap, without test items and on
data that contains unseen categories: a twin of the first stage is trained on
the inner split of :func:`hgraph.tasks.calibration.hold_out_categories`; its
lists for the held-out categories' items ("unseen") and the validation items
of the other categories ("seen") are the reranker's training data, each group
weighted to half the total (the harmonic-mean spirit of the calibration).
Hyper-parameters are fixed (below), not tuned on test.
"""
from __future__ import annotations

import re
from typing import Dict, List, Sequence, Tuple

import numpy as np
import scipy.sparse as sp
import torch

from hgraph.data.text import node_texts

#: gradient-boosting settings (fixed; scikit-learn's defaults except the stopping)
GBT = dict(max_iter=300, learning_rate=0.1, max_leaf_nodes=31, min_samples_leaf=20,
           l2_regularization=1.0, early_stopping=True, validation_fraction=0.1,
           n_iter_no_change=20)

FEATURES = ("score", "gap_top1", "position", "gap_next", "cosine", "tfidf", "seen", "log_items",
            "depth", "log_children", "leaf", "parent_of_top1", "child_of_top1", "sibling_of_top1",
            "children_in_list", "ancestors_in_list", "descendants_in_list",
            "item_nos", "cand_unspecified", "cand_other", "nos_unspecified", "nos_leaf",
            "item_other", "other_other")

_NOS = re.compile(r"\b(NOS|not otherwise specified|unspecified)\b", re.I)
_UNSPEC = re.compile(r"\bunspecified\b|\bNOS\b", re.I)
_OTHER = re.compile(r"\bother\b|\bNEC\b|\bnot elsewhere classified\b", re.I)


@torch.no_grad()
def candidate_lists(model, data, items: np.ndarray, k: int,
                    chunk: int = 512) -> Tuple[np.ndarray, np.ndarray]:
    """The first stage's top ``k`` per item: ``(ids (n, k) global, score (n, k))``,
    best first; the score is larger-better (a trained model's ``-distance``)."""
    k = min(k, len(data.cand))
    ids, scores = [], []
    for v, j in model.top_scores(data, items, k, chunk):
        ids.append(data.cand[j.cpu().numpy()])
        scores.append(v.double().cpu().numpy())
    if not ids:
        return np.zeros((0, k), dtype=np.int64), np.zeros((0, k))
    return np.concatenate(ids), np.concatenate(scores)


class ListFeatures:
    """What the features need from the data, computed once per run."""

    def __init__(self, data):
        from sklearn.feature_extraction.text import TfidfVectorizer
        tax = data.tax
        n = tax.num_nodes
        self.data = data
        texts = node_texts(tax)
        self.tfidf = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True,
                                     min_df=2, dtype=np.float32)
        # fitted on the category texts only: no item text shapes the vocabulary
        self.tfidf.fit([texts[i] for i in data.cand])
        self.node_tfidf = self.tfidf.transform(texts)
        self.unspec = np.array([bool(_UNSPEC.search(t)) for t in texts])
        self.other = np.array([bool(_OTHER.search(t)) for t in texts])
        e = np.asarray(tax.edges)
        self.children = np.bincount(e[:, 1], minlength=n) if len(e) else np.zeros(n, np.int64)
        self.parents = sp.csr_matrix(tax.child_to_parent, dtype=bool)
        up = sp.csr_matrix(data.up_hops)
        self.ancestors = sp.csr_matrix((np.ones(up.nnz, dtype=bool), up.indices, up.indptr),
                                       shape=up.shape)
        self.descendants = self.ancestors.T.tocsr()
        self.children_of = self.parents.T.tocsr()
        self.depth = np.diff(self.ancestors.indptr)
        xn = torch.nn.functional.normalize(data.x_nodes.double(), dim=-1)
        self.xn = xn.cpu()

    def __call__(self, items: np.ndarray, ids: np.ndarray, score: np.ndarray,
                 train_count: np.ndarray) -> np.ndarray:
        """(n * k, len(FEATURES)) float32, rows item-major; ``train_count``: (N,)
        training items per category in the split the lists' model was trained on."""
        data = self.data
        n, k = ids.shape
        flat = ids.reshape(-1)
        rows = np.repeat(np.arange(n), k)
        f: Dict[str, np.ndarray] = {}
        f["score"] = score.reshape(-1)
        f["gap_top1"] = (score[:, :1] - score).reshape(-1)
        f["position"] = np.tile(np.arange(k), n).astype(float)
        nxt = np.concatenate([score[:, 1:], score[:, -1:]], axis=1)
        f["gap_next"] = (score - nxt).reshape(-1)
        xi = torch.nn.functional.normalize(
            data.x_items[torch.as_tensor(items, device=data.x_items.device)].double(), dim=-1).cpu()
        f["cosine"] = (xi[torch.as_tensor(rows)] * self.xn[torch.as_tensor(flat)]).sum(-1).numpy()
        texts = [data.item_texts[i] for i in items]
        ti = self.tfidf.transform(texts)
        f["tfidf"] = np.asarray(ti[rows].multiply(self.node_tfidf[flat]).sum(1)).ravel()
        train_count = np.asarray(train_count)
        f["seen"] = (train_count[flat] > 0).astype(float)
        f["log_items"] = np.log1p(train_count[flat])
        f["depth"] = self.depth[flat].astype(float)
        f["log_children"] = np.log1p(self.children[flat])
        f["leaf"] = (self.children[flat] == 0).astype(float)
        top1 = np.repeat(ids[:, 0], k)
        par = self.parents
        f["parent_of_top1"] = _pair_in(par, top1, flat)
        f["child_of_top1"] = _pair_in(par, flat, top1)
        # siblings: a shared parent (the top-1 itself excluded)
        shared = np.asarray(par[flat].multiply(par[top1]).sum(1)).ravel() > 0
        f["sibling_of_top1"] = (shared & (flat != top1)).astype(float)
        # the list's own structure: per candidate, how many list members are its
        # children / ancestors / descendants
        anc = self.ancestors
        in_list = sp.csr_matrix((np.ones(n * k, dtype=bool), (rows, flat)),
                                shape=(n, anc.shape[0]))
        f["children_in_list"] = np.asarray(
            self.children_of[flat].multiply(in_list[rows]).sum(1)).ravel().astype(float)
        f["ancestors_in_list"] = np.asarray(anc[flat].multiply(in_list[rows]).sum(1)).ravel().astype(float)
        f["descendants_in_list"] = np.asarray(
            self.descendants[flat].multiply(in_list[rows]).sum(1)).ravel().astype(float)
        nos = np.array([bool(_NOS.search(t)) for t in texts])[rows]
        oth = np.array([bool(_OTHER.search(t)) for t in texts])[rows]
        f["item_nos"] = nos.astype(float)
        f["cand_unspecified"] = self.unspec[flat].astype(float)
        f["cand_other"] = self.other[flat].astype(float)
        f["nos_unspecified"] = (nos & self.unspec[flat]).astype(float)
        f["nos_leaf"] = (nos & (self.children[flat] == 0)).astype(float)
        f["item_other"] = oth.astype(float)
        f["other_other"] = (oth & self.other[flat]).astype(float)
        return np.stack([f[name] for name in FEATURES], axis=1).astype(np.float32)


def _pair_in(m: sp.csr_matrix, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1.0 where ``m[a[i], b[i]]`` is set."""
    if len(a) == 0:
        return np.zeros(0)
    return np.asarray(m[a, b]).ravel().astype(float)


def labels(ids: np.ndarray, truth: Sequence[np.ndarray]) -> np.ndarray:
    """(n, k) bool: the candidate is one of the item's true categories."""
    return np.stack([np.isin(row, t) for row, t in zip(ids, truth)]) if len(ids) else \
        np.zeros(ids.shape, dtype=bool)


class Reranker:
    """Gradient-boosted trees over :class:`ListFeatures` rows."""

    def __init__(self, seed: int = 0):
        from sklearn.ensemble import HistGradientBoostingClassifier
        self.model = HistGradientBoostingClassifier(random_state=seed, **GBT)
        self.fitted = False

    def fit(self, groups: List[Tuple[np.ndarray, np.ndarray]]) -> Dict[str, float]:
        """``groups``: (features (n*k, F), labels (n, k)) per item group; every
        group gets the same total weight, spread evenly over its items whose
        list holds a true category (the others carry no ranking signal)."""
        X, y, w = [], [], []
        used = {}
        for gi, (feats, lab) in enumerate(groups):
            n, k = lab.shape
            keep = lab.any(1)
            used[f"items_{gi}"] = int(keep.sum())
            if not keep.any():
                continue
            mask = np.repeat(keep, k)
            X.append(feats[mask])
            y.append(lab[keep].reshape(-1))
            w.append(np.full(int(keep.sum()) * k, 1.0 / (int(keep.sum()) * k)))
        if not X:
            raise ValueError("no item's list holds a true category: nothing to rerank from")
        Xa, ya, wa = np.concatenate(X), np.concatenate(y), np.concatenate(w)
        self.model.fit(Xa, ya, sample_weight=wa * len(wa))
        self.fitted = True
        used["rows"] = int(len(ya))
        used["iterations"] = int(self.model.n_iter_)
        return used

    def order(self, feats: np.ndarray, k: int) -> np.ndarray:
        """(n, k) new order (positions into each list), best first; ties keep the
        first stage's order."""
        p = self.model.predict_proba(feats)[:, 1].reshape(-1, k)
        return np.argsort(-p, axis=1, kind="stable")


def reranked(ids: np.ndarray, order: np.ndarray, rank: np.ndarray, truth: Sequence[np.ndarray],
             top: int = 10) -> Tuple[np.ndarray, np.ndarray]:
    """The reranked ``(topk (n, top), rank (n,))``: the list reordered; the rank of a
    truth inside the list is its new position, a truth outside keeps the first
    stage's ``rank`` (which is then > k)."""
    new = np.take_along_axis(ids, order, axis=1)
    k = ids.shape[1]
    out = rank.copy()
    for i, (row, t) in enumerate(zip(new, truth)):
        hit = np.flatnonzero(np.isin(row, t))
        if len(hit):
            out[i] = int(hit[0]) + 1
        elif rank[i] <= k:
            raise AssertionError("a truth in the first stage's list must stay in it")
    return new[:, :top], out


__all__ = ["FEATURES", "GBT", "candidate_lists", "ListFeatures", "Reranker", "labels", "reranked"]
