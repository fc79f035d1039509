"""Readers of the two CurvLearn formats, and CurvLearn path names.

``curvlearn`` (the README's 5-column CSV) and ``curvlearn-shipped`` (the
3-column ``cate_tree.csv`` CurvLearn ships); both build a tree with a virtual
root.  :func:`curvlearn_paths` names the nodes of a tree ``0-12-34``-style.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np
import pandas as pd

from hgraph.data.io.checks import _check_one_parent, _check_self_loops
from hgraph.data.io.columns import (_CURVLEARN_ROLES, _PATH_RE, _SHIPPED_ROLES, CURVLEARN_HEADER,
                                    SHIPPED_COLUMNS)
from hgraph.data.io.table import _header_columns, _parse_table
from hgraph.data.io.text import _first_line, _is_int, _sniff, _split
from hgraph.data.taxonomy import Taxonomy
from hgraph.errors import HGraphInputError


def _node_lines(tax: Taxonomy, keys: np.ndarray, values: np.ndarray,
                lines: np.ndarray, fill: int) -> Tuple[np.ndarray, np.ndarray]:
    """Scatter per-row ``values``/``lines`` (rows keyed by ``keys``) to node ids."""
    index = pd.Index(tax.keys)
    ids = index.get_indexer(pd.Index(keys, dtype=object))
    assert np.all(ids >= 0)
    given = np.full(tax.num_nodes, fill, dtype=np.int64)
    where = np.zeros(tax.num_nodes, dtype=np.int64)
    given[ids] = values
    where[ids] = lines
    return given, where


def _read_shipped(text: str, src: str) -> Taxonomy:
    fmt = "curvlearn-shipped"
    idx, first = _first_line(text)
    delim = _sniff(first, src, idx + 1, ncols=3, fmt=fmt)
    fields = _split(first, delim)
    header = not any(_is_int(f) for f in fields)
    columns = [(c, "int") for c in SHIPPED_COLUMNS]
    if header:
        columns = _header_columns(fields, _SHIPPED_ROLES, dict(columns), src, idx + 1,
                                  "the parent, child and level columns are unknown")
    t = _parse_table(text, src, columns, delim=delim, header=header, fmt=fmt)
    par, chi, lev = t.cols["parent_id"], t.cols["child_id"], t.cols["child_level"]
    _check_self_loops(chi, par, t.lines, src)
    _check_one_parent(chi, par, t.lines, src, lev)
    root = _find_root(par, chi, t.lines, src, lev, fmt)
    return _build_curvlearn_tree(chi, par, lev, t.lines, src, root, names=None)


def _find_root(par: np.ndarray, chi: np.ndarray, lines: np.ndarray, src: str,
               lev: np.ndarray, fmt: str, root: Optional[int] = None) -> int:
    """The virtual root id; raise for a parent id that is never declared."""
    undeclared = ~np.isin(par, chi)
    cand = np.unique(par[undeclared])
    if root is None:
        if len(cand) == 0:
            return -1  # every parent is a child: a cycle; from_edges names it
        if len(cand) == 1:
            return int(cand[0])
        # several: the root is the parent of the level-1 rows (else the most used)
        top = np.unique(par[(lev == 1) & undeclared])
        if len(top) == 1:
            root = int(top[0])
        else:
            vals, counts = np.unique(par[undeclared], return_counts=True)
            root = int(vals[np.argmax(counts)])
    bad = np.flatnonzero(undeclared & (par != root))
    if len(bad):
        i = int(bad[0])
        raise HGraphInputError(
            f"missing parent: parent id {par[i]} of id {chi[i]} is never declared as a node "
            f"(no row has it as a child) and it is not the root {root}",
            file=src, line=int(lines[i]),
            fix="add a row for the parent or fix the parent id")
    return root


def _build_curvlearn_tree(chi: np.ndarray, par: np.ndarray, lev: np.ndarray,
                          lines: np.ndarray, src: str, root: int,
                          names: Optional[Dict[str, str]]) -> Taxonomy:
    child_keys = list(map(str, chi.tolist()))
    parent_keys = list(map(str, par.tolist()))
    tax = Taxonomy.from_edges(child_keys, parent_keys, tree=True, source=src, lines=lines)
    given, where = _node_lines(tax, child_keys, lev, lines, fill=-1)
    tax.check_levels(given, lines=where, offset=0)
    if str(root) != tax.keys[tax.root]:  # pragma: no cover - _find_root guarantees it
        raise AssertionError("root mismatch")
    tax.virtual_root = True  # CurvLearn's root "0" is a virtual node, not a category
    tax.meta["root_key"] = tax.keys[tax.root]
    if names is None:
        tax.names = curvlearn_paths(tax)
        tax.meta["names"] = "curvlearn paths built from the tree (children ordered by id)"
    else:
        tax.names = [names.get(k, k) for k in tax.keys]
    return tax


def curvlearn_paths(tax: Taxonomy) -> List[str]:
    """CurvLearn path names for a tree: root ``0``; children ordered by key.

    Keys that are all integers sort numerically, otherwise as strings.  The
    ``k``-th child (0-based) of a node named ``p`` is named ``p-k``.
    """
    if not tax.is_tree:
        raise HGraphInputError("CurvLearn paths need a tree (one parent per node)",
                               file=tax.source)
    n = tax.num_nodes
    c, p = tax.edges[:, 0], tax.edges[:, 1]
    keys = tax.keys if tax.keys is not None else [str(i) for i in range(n)]
    try:
        sort_key = np.asarray([int(k) for k in keys], dtype=np.int64)
    except ValueError:
        sort_key = pd.factorize(np.asarray(keys, dtype=object), sort=True)[0]
    order = np.lexsort((sort_key[c], p))
    ps = p[order]
    starts = np.r_[0, np.flatnonzero(ps[1:] != ps[:-1]) + 1]
    group_start = np.repeat(starts, np.diff(np.r_[starts, len(ps)]))
    rank = np.empty(len(c), dtype=np.int64)
    rank[order] = np.arange(len(c)) - group_start
    parent_of = np.full(n, -1, dtype=np.int64)
    rank_of = np.zeros(n, dtype=np.int64)
    parent_of[c] = p
    rank_of[c] = rank
    names = [""] * n
    names[tax.root] = "0"
    parent_l, rank_l = parent_of.tolist(), rank_of.tolist()
    for u in np.argsort(tax.level, kind="stable").tolist():
        if u != tax.root:
            names[u] = f"{names[parent_l[u]]}-{rank_l[u]}"
    return names


def _read_curvlearn(text: str, src: str) -> Taxonomy:
    fmt = "curvlearn"
    idx, first = _first_line(text)
    delim = _sniff(first, src, idx + 1, ncols=5, fmt=fmt)
    fields = _split(first, delim)
    header = len(fields) < 2 or not _is_int(fields[1])
    columns = list(zip(CURVLEARN_HEADER, ["str", "int", "str", "int", "int"]))
    if header:
        columns = _header_columns(fields, _CURVLEARN_ROLES, dict(columns), src, idx + 1,
                                  "the CurvLearn columns are unknown")
    t = _parse_table(text, src, columns, delim=delim, header=header, fmt=fmt)
    cate = pd.Series(t.cols["cate"], dtype=object)
    pcate = pd.Series(t.cols["parent_cate"], dtype=object)
    cid, pid, lev = t.cols["cate_id"], t.cols["parent_cate_id"], t.cols["level"]
    lines = t.lines

    def fail(mask: np.ndarray, msg) -> None:
        bad = np.flatnonzero(mask)
        if len(bad):
            i = int(bad[0])
            raise HGraphInputError(msg(i), file=src, line=int(lines[i]))

    fail(~cate.str.match(_PATH_RE).to_numpy() | (cate == "0").to_numpy(),
         lambda i: f"cate {cate[i]!r} is not a path like 0-12-34")
    fail(~pcate.str.match(_PATH_RE).to_numpy(),
         lambda i: f"parent_cate {pcate[i]!r} is not a path like 0-12")
    _check_self_loops(cid, pid, lines, src)
    _check_one_parent(cid, pid, lines, src, lev)
    # one path per id and one id per path
    first_id = cate.map(pd.Series(cid).groupby(cate.to_numpy()).first()).to_numpy()
    fail(first_id != cid,
         lambda i: f"path {cate[i]!r} is used for two ids, {first_id[i]} and {cid[i]}")
    top = (pcate == "0").to_numpy()
    roots = np.unique(pid[top])
    if len(roots) == 0:
        raise HGraphInputError("no row has parent_cate 0 (the virtual root)", file=src,
                               line=int(lines[0]),
                               fix="the level-1 categories have parent_cate 0")
    if len(roots) > 1:
        j = int(np.flatnonzero(top & (pid != roots[0]))[0])
        i0 = int(np.flatnonzero(top & (pid == roots[0]))[0])
        raise HGraphInputError(
            f"the virtual root 0 has two ids: {roots[0]} (line {lines[i0]}) and {pid[j]}",
            file=src, line=int(lines[j]))
    root = int(roots[0])
    fail(top & (pid == root) & np.isin(pid, cid),
         lambda i: f"root id {root} also appears as a cate_id")
    fail(~top & (pid == root), lambda i: f"parent id {root} is the virtual root, "
                                         f"but parent_cate is {pcate[i]!r}, not '0'")
    _find_root(pid, cid, lines, src, lev, fmt, root=root)
    names = dict(zip(cid.astype(str).tolist(), cate.tolist()))
    names[str(root)] = "0"
    tax = _build_curvlearn_tree(cid, pid, lev, lines, src, root, names=names)
    # paths must agree with the ids: parent_cate is the parent's cate, cate extends it
    fail(cate.str.rsplit("-", n=1).str[0].to_numpy() != pcate.to_numpy(),
         lambda i: f"cate {cate[i]!r} is not a child of parent_cate {pcate[i]!r}")
    parent_name = pd.Series(pid.astype(str)).map(names).to_numpy()
    fail(parent_name != pcate.to_numpy(),
         lambda i: f"parent_cate {pcate[i]!r} does not match the cate of id {pid[i]} "
                   f"({parent_name[i]!r})")
    tax.meta["names"] = "cate paths as given"
    return tax
