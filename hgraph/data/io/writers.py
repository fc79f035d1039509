"""Writers of taxonomy files: CurvLearn's README format and ``child,parent`` edges.

Both write to a temporary file and rename it, so a failure leaves nothing behind.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from hgraph.data.io.columns import _DELIMS, PathLike
from hgraph.data.io.curvlearn import curvlearn_paths
from hgraph.data.io.text import _is_int
from hgraph.data.taxonomy import VIRTUAL_ROOT, Taxonomy
from hgraph.errors import HGraphInputError
from hgraph.files import atomic_open


def _int_ids(tax: Taxonomy) -> np.ndarray:
    """Integer ids for writing: the keys when they are distinct integers
    (a virtual root ``<root>`` gets max+1), else the internal ids."""
    keys = tax.keys if tax.keys is not None else [str(i) for i in range(tax.num_nodes)]
    others = [k for i, k in enumerate(keys) if i != tax.root]
    if all(_is_int(k) for k in others):
        vals = np.asarray([int(k) for k in keys if _is_int(k)] or [0], dtype=np.int64)
        out = np.zeros(tax.num_nodes, dtype=np.int64)
        for i, k in enumerate(keys):
            out[i] = int(k) if _is_int(k) else vals.max() + 1
        if len(np.unique(out)) == len(out):
            return out
    return np.arange(tax.num_nodes, dtype=np.int64)


def _valid_paths(tax: Taxonomy) -> bool:
    names = pd.Series(tax.names, dtype=object)
    if names[tax.root] != "0" or names.duplicated().any():
        return False
    c, p = tax.edges[:, 0], tax.edges[:, 1]
    cn = names.to_numpy()[c]
    pn = names.to_numpy()[p]
    ok = pd.Series(cn, dtype=object).str.match(r"^0(-\d+)+$").all()
    return bool(ok) and bool(np.all(pd.Series(cn, dtype=object).str.rsplit("-", n=1).str[0]
                                    .to_numpy() == pn))


def write_curvlearn(tax: Taxonomy, path: PathLike) -> None:
    """Write ``tax`` (a tree) in CurvLearn's README format (header included).

    Names are used as ``cate`` paths when they already are consistent
    CurvLearn paths; otherwise paths are built as :func:`curvlearn_paths`
    does.  ``cate_id`` is the integer key when keys are distinct integers,
    else the internal id.  The root is written only as ``parent_cate_id``.
    """
    if not tax.is_tree:
        raise HGraphInputError("write_curvlearn needs a tree (one parent per node)",
                               file=str(path), fix="use write_edges for a DAG")
    names = list(tax.names) if _valid_paths(tax) else curvlearn_paths(tax)
    ids = _int_ids(tax)
    lv = tax.level
    c, p = tax.edges[:, 0], tax.edges[:, 1]
    order = np.lexsort((c, lv[c]))
    df = pd.DataFrame({
        "cate": np.asarray(names, dtype=object)[c[order]],
        "cate_id": ids[c[order]],
        "parent_cate": np.asarray(names, dtype=object)[p[order]],
        "parent_cate_id": ids[p[order]],
        "level": lv[c[order]],
    })
    with atomic_open(path, "w", newline="") as f:
        df.to_csv(f, index=False, lineterminator="\n")


def write_edges(tax: Taxonomy, path: PathLike, sep: str = ",") -> None:
    """Write ``child,parent`` rows with a header.

    Nodes are written by name when names are distinct, else by key.  Edges to
    a virtual root that hgraph added (``<root>``) are left out: reading the
    file adds it back.
    """
    if sep not in _DELIMS:
        raise HGraphInputError(f"unsupported separator {sep!r}", fix="use ',' or '\\t'")
    labels = tax.names if len(set(tax.names)) == len(tax.names) else tax.keys
    labels = np.asarray(labels, dtype=object)
    e = tax.edges
    if tax.keys is not None and tax.keys[tax.root] == VIRTUAL_ROOT:
        e = e[e[:, 1] != tax.root]
    df = pd.DataFrame({"child": labels[e[:, 0]], "parent": labels[e[:, 1]]})
    with atomic_open(path, "w", newline="") as f:
        df.to_csv(f, index=False, sep=sep, lineterminator="\n")
