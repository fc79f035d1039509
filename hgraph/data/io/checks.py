"""Row checks shared by the readers: no self-loops, one parent (and level) per id.

Vectorised; the error names the line of the first offending row.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from hgraph.errors import HGraphInputError


def _check_self_loops(child: np.ndarray, parent: np.ndarray, lines: np.ndarray,
                      src: str) -> None:
    bad = np.flatnonzero(child == parent)
    if len(bad):
        i = int(bad[0])
        raise HGraphInputError(f"self-loop: id {child[i]} is its own parent", file=src,
                               line=int(lines[i]), fix="fix the parent id")


def _check_one_parent(child: np.ndarray, parent: np.ndarray, lines: np.ndarray, src: str,
                      level: Optional[np.ndarray] = None,
                      labels: Optional[np.ndarray] = None) -> None:
    """Tree mode: every child id has one parent (and one level).  Vectorised.

    ``child``/``parent`` are integer codes; ``labels[code]`` (if given) is the
    external key printed in the message (string-key formats)."""
    order = np.argsort(child, kind="stable")
    sc = child[order]
    same = sc[1:] == sc[:-1]
    differs = parent[order][1:] != parent[order][:-1]
    if level is not None:
        differs_l = level[order][1:] != level[order][:-1]
    else:
        differs_l = np.zeros_like(differs)
    bad = np.flatnonzero(same & (differs | differs_l))
    if not len(bad):
        return
    # report the conflict whose second line comes first in the file
    pos_a, pos_b = order[bad], order[bad + 1]
    k = int(np.argmin(np.maximum(lines[pos_a], lines[pos_b])))
    a, b = int(pos_a[k]), int(pos_b[k])
    if lines[a] > lines[b]:
        a, b = b, a
    lab = (lambda x: x) if labels is None else (lambda x: labels[x])
    if parent[a] != parent[b]:
        cause = (f"id {lab(child[a])} appears with parents {lab(parent[a])} (line {lines[a]}) "
                 f"and {lab(parent[b])} (line {lines[b]}): one id is used for two nodes")
        if labels is not None:
            cause += ", or the input is a DAG"
    else:
        cause = (f"id {child[a]} appears with levels {level[a]} (line {lines[a]}) and "
                 f"{level[b]} (line {lines[b]}): one id is used for two nodes")
    raise HGraphInputError(cause, file=src, line=int(lines[b]),
                           fix="give every node its own id and one parent"
                               + ("" if labels is None else ", or read it as a DAG"))
