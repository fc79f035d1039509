"""Evaluation metrics, one implementation each, chunked for 80k+ nodes.

* :func:`reconstruction` — mean rank and MAP of the positives (Nickel & Kiela 2017);
* :func:`link_prediction` — ROC-AUC / AP of held-out pairs against negatives;
  :func:`sample_lp_negatives` draws the negatives;
* :func:`parent_ranking` — filtered MRR / mean rank / Hits@k of the true parent;
* :func:`norm_level_spearman` — Spearman correlation of distance-to-origin and level;
* :func:`ancestor_map` — MAP of a set of query nodes' ancestors among candidates.
"""
from hgraph.eval.hierarchy import ancestor_map, norm_level_spearman
from hgraph.eval.link import link_prediction, parent_ranking, sample_lp_negatives
from hgraph.eval.ranking import RankKeys, count_below, rank_keys, reconstruction

__all__ = [
    "reconstruction", "rank_keys", "RankKeys", "count_below",
    "link_prediction", "sample_lp_negatives", "parent_ranking",
    "norm_level_spearman", "ancestor_map",
]
