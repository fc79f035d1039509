"""The node-feature reader: ``.npy``, ``.npz`` or CSV/TSV rows matched to the taxonomy.

:func:`read_features` returns ``(N, F)`` float32 rows in node-id order;
:func:`_node_ids` maps labels to node ids (keys first, then names).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

from hgraph.data.io.columns import _DELIMS, PathLike
from hgraph.data.io.table import _parse_table
from hgraph.data.io.text import _first_line, _is_number, _read_text, _sniff, _split
from hgraph.data.taxonomy import Taxonomy
from hgraph.errors import HGraphInputError


def read_features(path: PathLike, tax: Taxonomy) -> np.ndarray:
    """Node features ``(N, F)`` float32, row ``i`` for node id ``i``.

    ``.npy``: rows already in node-id order.  ``.npz``: arrays ``ids`` and
    ``x``.  Anything else (``.gz`` decompressed first): CSV/TSV
    ``id,f1,...,fk`` with an optional header;
    ids match the taxonomy's keys (first) or names.  A virtual root may be
    left out (its row is zeros); every other node needs a row.
    """
    src = str(path)
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".npy", ".npz"):
        if not p.exists():
            raise HGraphInputError("file not found", file=src, fix="check the path")
        try:
            obj = np.load(p, allow_pickle=False)
        except Exception as e:  # numpy raises several types for corrupt files
            raise HGraphInputError(f"cannot read as {suffix}: {e}", file=src) from None
        if suffix == ".npy":
            x = np.asarray(obj)
            if x.ndim != 2:
                raise HGraphInputError(f"expected a 2-d array (N, F), found shape {x.shape}",
                                       file=src)
            n = tax.num_nodes
            if x.shape[0] == n - 1 and tax.virtual_root and tax.root == n - 1:
                x = np.concatenate([x, np.zeros((1, x.shape[1]), x.dtype)])
            if x.shape[0] != n:
                raise HGraphInputError(
                    f"{x.shape[0]} rows, but the taxonomy has {n} nodes", file=src,
                    fix="one row per node id, in id order")
            ids = np.arange(n)
            where = [f"row {i}" for i in range(n)]
            return _finish_features(x, ids, tax, src, lambda i: None, where)
        with obj:
            if "ids" not in obj.files or "x" not in obj.files:
                raise HGraphInputError(f"expected arrays 'ids' and 'x', found {obj.files}",
                                       file=src)
            raw_ids, x = obj["ids"], obj["x"]
        if x.ndim != 2 or raw_ids.ndim != 1 or len(raw_ids) != len(x):
            raise HGraphInputError(
                f"'ids' {raw_ids.shape} and 'x' {x.shape} do not match", file=src,
                fix="ids: (N,), x: (N, F)")
        ids = _match_ids(np.asarray([str(k) for k in raw_ids.tolist()], dtype=object), tax, src,
                         lambda i: None, lambda i: f"entry {i}")
        return _finish_features(x, ids, tax, src, lambda i: None,
                                [f"entry {i}" for i in range(len(ids))])
    text, src = _read_text(path)
    idx, first = _first_line(text)
    delim = _sniff(first, src, idx + 1, fmt="features")
    fields = _split(first, delim)
    if len(fields) < 2:
        raise HGraphInputError("expected an id and at least one feature value per row",
                               file=src, line=idx + 1)
    header = not all(_is_number(f) for f in fields[1:])
    k = len(fields) - 1
    columns = [("id", "str")] + [(f"f{j + 1}", "float") for j in range(k)]
    t = _parse_table(text, src, columns, delim=delim, header=header, fmt="features",
                     count_fix="every row needs an id and the same number of features",
                     count_cause=lambda m: (
                         f"feature dimension mismatch: {m - 1} values, but line {idx + 1} "
                         f"has {k} ({k + 1} {_DELIMS[delim]}-separated columns expected, "
                         f"found {m})"))
    x = np.stack([t.cols[f"f{j + 1}"] for j in range(k)], axis=1)
    line_of = lambda i: int(t.lines[i])  # noqa: E731
    ids = _match_ids(t.cols["id"], tax, src, line_of, None)
    return _finish_features(x, ids, tax, src, line_of, None)


def _node_ids(raw: np.ndarray, tax: Taxonomy) -> np.ndarray:
    """(M,) int64 node id per label in ``raw`` (M,): a key match first, else a
    name match (the first node with that name), else -1."""
    raw_index = pd.Index(np.asarray(raw, dtype=object))

    def lookup(labels: Sequence[str]) -> np.ndarray:
        index = pd.Index(labels)
        if index.is_unique:
            return index.get_indexer(raw_index).astype(np.int64)
        d: Dict[str, int] = {}
        for i, lab in enumerate(labels):
            d.setdefault(lab, i)
        return np.asarray([d.get(r, -1) for r in raw_index], dtype=np.int64)

    ids = lookup(tax.names)
    if tax.keys is not None:
        by_key = lookup(tax.keys)
        ids = np.where(by_key >= 0, by_key, ids)
    return ids


def _match_ids(raw: np.ndarray, tax: Taxonomy, src: str, line_of, where_of) -> np.ndarray:
    """Node id per raw id: a key match first, else a name match, else -1 -> error."""
    ids = _node_ids(raw, tax)
    bad = np.flatnonzero(ids < 0)
    if len(bad):
        i = int(bad[0])
        where = "" if where_of is None else f" ({where_of(i)})"
        raise HGraphInputError(f"unknown id {raw[i]!r}{where}: not a node of the taxonomy",
                               file=src, line=line_of(i),
                               fix=f"ids must be keys or names of {tax.source}")
    return ids


def _finish_features(x: np.ndarray, ids: np.ndarray, tax: Taxonomy, src: str, line_of,
                     where: Optional[List[str]]) -> np.ndarray:
    if not np.issubdtype(x.dtype, np.number):
        raise HGraphInputError(f"features must be numbers, found dtype {x.dtype}", file=src)
    finite = np.isfinite(x)
    if not finite.all():
        i, j = (int(a) for a in np.argwhere(~finite)[0])
        w = "" if where is None else f"{where[i]}: "
        raise HGraphInputError(f"{w}feature {j + 1} is {x[i, j]} (NaN/Inf not allowed)",
                               file=src, line=line_of(i),
                               fix="replace missing values before loading")
    order = np.argsort(ids, kind="stable")
    dup = np.flatnonzero(ids[order][1:] == ids[order][:-1])
    if len(dup):
        a, b = sorted((int(order[dup[0]]), int(order[dup[0] + 1])))
        la = line_of(a)
        raise HGraphInputError(
            f"node {tax.keys[ids[b]] if tax.keys else ids[b]!r} has two feature rows"
            + (f" (first on line {la})" if la is not None else ""),
            file=src, line=line_of(b), fix="give one row per node")
    n = tax.num_nodes
    present = np.zeros(n, dtype=bool)
    present[ids] = True
    if tax.virtual_root:
        present[tax.root] = True
    missing = np.flatnonzero(~present)
    if len(missing):
        labels = tax.keys if tax.keys is not None else tax.names
        shown = ", ".join(repr(labels[i]) for i in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise HGraphInputError(f"missing feature rows for {len(missing)} nodes: {shown}{more}",
                               file=src, fix="give every node a row")
    out = np.zeros((n, x.shape[1]), dtype=np.float32)
    out[ids] = x
    return out
