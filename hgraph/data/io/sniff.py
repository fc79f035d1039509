"""Format detection: which taxonomy format a file holds, by its content.

:func:`detect_format` applies the rules listed in :mod:`hgraph.data.io`;
:func:`_detect` also returns the pairs table it parsed, so an auto-read
parses a 2-column file once.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from hgraph.data.io.columns import (_CLOSURE_ID_WORDS, _CLOSURE_ROLES, _DELIMS, _HEADER_WORDS,
                                    PathLike, _norm)
from hgraph.data.io.edges import _parse_pairs
from hgraph.data.io.table import _Table
from hgraph.data.io.text import _first_line, _is_int, _is_number, _read_text, _sniff, _split
from hgraph.errors import HGraphInputError


def detect_format(path: PathLike) -> str:
    """Name of the taxonomy format of ``path`` (see the module docstring)."""
    text, src = _read_text(path)
    return _detect(text, src)[0]


def _detect(text: str, src: str):
    """Returns (format, parsed pairs table or None) so auto-read parses once."""
    idx, first = _first_line(text)
    delim = _sniff(first, src, idx + 1)
    fields = _split(first, delim)
    low = [_norm(f) for f in fields]
    n = len(fields)
    if n == 5:
        return "curvlearn", None
    if n == 3:
        if all(f in _CLOSURE_ID_WORDS for f in low[:2]):
            return "closure", None
        lookup = {_norm(w): r for r, names in _CLOSURE_ROLES.items() for w in names}
        if sorted(lookup.get(f, "") for f in low) == sorted(_CLOSURE_ROLES):
            return "closure", None  # e.g. child,parent,weight
        if all(f in _HEADER_WORDS for f in low):
            return "curvlearn-shipped", None
        ints = [_is_int(f) for f in fields]
        if _is_number(fields[2]) and (not ints[2] or not (ints[0] or ints[1])):
            return "closure", None  # a float weight, or string ids with a weight
        return "curvlearn-shipped", None
    if n == 2:
        if all(f in _CLOSURE_ID_WORDS for f in low):
            return "closure", None  # id1,id2 / hypernym,hyponym / descendant,ancestor
        if all(f in _HEADER_WORDS for f in low):
            return "edges", None
        table = _parse_pairs(text, src, "edges", delim=delim)
        return ("closure" if _looks_closed(table) else "edges"), table
    raise HGraphInputError(
        f"cannot detect the format: {n} {_DELIMS[delim]}-separated columns",
        file=src, line=idx + 1,
        fix="expected 2 (child,parent or id1,id2), 3 (parent_id,child_id,child_level) "
            "or 5 (cate,cate_id,parent_cate,parent_cate_id,level) columns; "
            "or pass the format explicitly")


def _looks_closed(table: _Table) -> bool:
    codes, uniq = pd.factorize(np.concatenate([table.cols["child"], table.cols["parent"]]))
    m = len(table)
    n = len(uniq)
    u, v = codes[:m], codes[m:]
    if np.any(u == v):
        return True
    c = sp.csr_matrix((np.ones(m, dtype=np.float32), (u, v)), shape=(n, n))
    c.data[:] = 1
    p = c @ c
    if p.nnz == 0:
        return False
    p.data[:] = 1
    inside = p.multiply(c)
    return inside.nnz == p.nnz
