"""Ranking metrics: graph reconstruction (mean rank, MAP) and the shared engine.

One concept per file: ``metrics`` (the definitions and conventions;
:func:`reconstruction`), ``keys`` (:class:`RankKeys`: a per-row increasing
function of the distance as one matmul), ``counting`` (:func:`count_below`
and its strategies), ``engine`` (``_Engine``: tiles, worker threads, devices)
and ``checks`` (argument checks shared with :mod:`hgraph.eval.link` and
:mod:`hgraph.eval.hierarchy`).  This module re-exports their names.
"""
from __future__ import annotations

from hgraph.eval.ranking.counting import count_below
from hgraph.eval.ranking.keys import RankKeys, rank_keys
from hgraph.eval.ranking.metrics import reconstruction
# helpers that hgraph.eval.link, hgraph.eval.hierarchy and the tests read through this module
from hgraph.eval.ranking.checks import (ArrayLike, _as_bool_csr, _as_index,  # noqa: F401
                                        _as_mask, _check_points)
from hgraph.eval.ranking.counting import _nvalid, _plan  # noqa: F401
from hgraph.eval.ranking.engine import _Engine  # noqa: F401
from hgraph.eval.ranking.metrics import _rank_eval  # noqa: F401

__all__ = ["reconstruction", "rank_keys", "RankKeys", "count_below"]
