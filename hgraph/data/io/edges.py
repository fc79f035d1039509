"""Readers of the string-key formats: ``edges`` (child,parent) and ``closure``.

:func:`_parse_pairs` parses either (header or not, 2 or 3 columns);
:func:`_read_closure` recovers the hypernym DAG by transitive reduction and
keeps the given pairs as the closure.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse import csgraph

from hgraph.data.io.checks import _check_one_parent
from hgraph.data.io.columns import _CLOSURE_ROLES, _DELIMS, _PAIR_ROLES, _columns_doc
from hgraph.data.io.table import _header_columns, _pair_header, _parse_table, _Table
from hgraph.data.io.text import _first_line, _sniff, _split
from hgraph.data.taxonomy import Taxonomy
from hgraph.errors import HGraphInputError


def _parse_pairs(text: str, src: str, fmt: str, delim: Optional[str] = None) -> _Table:
    idx, first = _first_line(text)
    if delim is None:
        delim = _sniff(first, src, idx + 1, fmt=fmt)
    fields = _split(first, delim)
    n = len(fields)
    if fmt == "closure" and n == 3:
        columns = [("child", "str"), ("parent", "str"), ("weight", "float")]
    else:
        columns = [("child", "str"), ("parent", "str")]
    if n not in (2, 3) or (n == 3 and fmt != "closure"):
        raise HGraphInputError(
            f"expected {len(columns)} {_DELIMS[delim]}-separated columns, found {n}",
            file=src, line=idx + 1, fix=f"columns are {_columns_doc(fmt)}")
    header = _pair_header(fields, text, delim)
    if header:
        roles = _CLOSURE_ROLES if n == 3 else _PAIR_ROLES
        what = ("the hyponym (child) and hypernym (parent) columns are unknown"
                if fmt == "closure" else
                "the child and parent columns are unknown")
        columns = _header_columns(fields, roles, dict(columns), src, idx + 1, what)
    return _parse_table(text, src, columns, delim=delim, header=header, fmt=fmt)


def _read_edges(text: str, src: str, tree: bool, table: Optional[_Table]) -> Taxonomy:
    t = table if table is not None else _parse_pairs(text, src, "edges")
    c, p = t.cols["child"], t.cols["parent"]
    if tree:
        codes, uniq = pd.factorize(np.concatenate([c, p]))
        cc, pc = codes.reshape(2, -1)
        _check_one_parent(cc, pc, t.lines, src, labels=np.asarray(uniq, dtype=object))
    return Taxonomy.from_edges(c.tolist(), p.tolist(), tree=tree, source=src, lines=t.lines)


def _read_closure(text: str, src: str, tree: bool, table: Optional[_Table]) -> Taxonomy:
    t = table if table is not None else _parse_pairs(text, src, "closure")
    keys_c, keys_p = t.cols["child"], t.cols["parent"]
    codes, uniq = pd.factorize(np.concatenate([keys_c, keys_p]))
    m, n = len(t), len(uniq)
    u, v = codes[:m].astype(np.int64), codes[m:].astype(np.int64)
    uniq = np.asarray(uniq, dtype=object)
    lines = t.lines
    keep = u != v  # reflexive pairs (u, u) carry no information
    u, v, lines = u[keep], v[keep], lines[keep]
    key = u * n + v
    _, first = np.unique(key, return_index=True)
    first.sort()
    u, v, lines = u[first], v[first], lines[first]
    if len(u) == 0:
        raise HGraphInputError("no pairs besides reflexive ones (u, u)", file=src,
                               line=int(t.lines[0]))
    c = sp.csr_matrix((np.ones(len(u), dtype=np.float32), (u, v)), shape=(n, n))
    c.sort_indices()
    _closure_cycle_check(c, u, v, lines, uniq, src)
    # Transitive reduction of a closed relation C: a pair (u, v) is implied
    # iff some w has (u, w) and (w, v) in C, i.e. iff (C @ C)[u, v] > 0.  One
    # sparse product does it (scipy's C code); its cost is the number of
    # 2-step paths, ~ pairs x depth (a few million for WordNet nouns), so
    # 750k pairs take well under a second.  networkx's transitive_reduction
    # walks every node in Python and is ~100x slower here.
    c2 = c @ c
    c2.data[:] = 1
    implied = np.asarray(c2[u, v]).ravel() > 0
    closed = c2.multiply(c).nnz == c2.nnz
    ru, rv, rl = u[~implied], v[~implied], lines[~implied]
    if tree:
        _check_one_parent(ru, rv, rl, src, labels=uniq)
    tax = Taxonomy.from_edges(uniq[ru].tolist(), uniq[rv].tolist(), nodes=uniq.tolist(),
                              tree=tree, source=src, lines=rl)
    ids = pd.Index(tax.keys).get_indexer(pd.Index(uniq))
    assert np.all(ids >= 0)
    nn = tax.num_nodes
    given = sp.csr_matrix((np.ones(len(u), dtype=bool), (ids[u], ids[v])), shape=(nn, nn))
    given.sort_indices()
    tax.__dict__["closure"] = given
    tax.meta["closure_given"] = True
    tax.meta["closure_is_transitive"] = bool(closed)
    return tax


def _closure_cycle_check(c: sp.csr_matrix, u, v, lines, uniq, src) -> None:
    ncomp, label = csgraph.connected_components(c, directed=True, connection="strong")
    if ncomp == c.shape[0]:
        return
    import networkx as nx
    sizes = np.bincount(label)
    comp = int(np.flatnonzero(sizes > 1)[0])
    inside = (label[u] == comp) & (label[v] == comp)
    g = nx.DiGraph()
    g.add_edges_from(zip(u[inside].tolist(), v[inside].tolist()))
    cyc = [a for a, _ in nx.find_cycle(g)]
    path = " -> ".join(str(uniq[x]) for x in cyc + [cyc[0]])
    sel = np.flatnonzero((u == cyc[0]) & (v == cyc[1 % len(cyc)]))
    raise HGraphInputError(f"cycle in the hypernym relation: {path}", file=src,
                           line=int(lines[sel[0]]) if len(sel) else None,
                           fix="a closure must be acyclic; remove one of these pairs")
