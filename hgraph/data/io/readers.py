"""The taxonomy reader: :func:`read_taxonomy` dispatches to the per-format readers.

The readers live in :mod:`hgraph.data.io.curvlearn` (both CurvLearn formats)
and :mod:`hgraph.data.io.edges` (edge lists and closures); ``"auto"`` asks
:mod:`hgraph.data.io.sniff`.
"""
from __future__ import annotations

from typing import Optional

from hgraph.data.io.columns import FORMATS, PathLike
from hgraph.data.io.curvlearn import _read_curvlearn, _read_shipped
from hgraph.data.io.edges import _read_closure, _read_edges
from hgraph.data.io.sniff import _detect
from hgraph.data.io.text import _read_text
from hgraph.data.taxonomy import Taxonomy
from hgraph.errors import HGraphInputError


def read_taxonomy(path: PathLike, format: str = "auto", tree: Optional[bool] = None) -> Taxonomy:
    """Read a taxonomy file.

    Args:
        path: the file.
        format: one of :data:`FORMATS`; ``"auto"`` detects it by content.
        tree: for ``edges`` and ``closure``: ``True`` rejects a node with two
            parents; ``None``/``False`` read a DAG.  The CurvLearn formats are
            always trees.
    Returns:
        a :class:`Taxonomy`; ``tax.meta["format"]`` names the format read.
    """
    if format not in FORMATS:
        raise HGraphInputError(f"unknown taxonomy format {format!r}",
                               fix="use one of " + ", ".join(FORMATS))
    text, src = _read_text(path)
    table = None
    if format == "auto":
        format, table = _detect(text, src)
    if format == "curvlearn":
        tax = _read_curvlearn(text, src)
    elif format == "curvlearn-shipped":
        tax = _read_shipped(text, src)
    elif format == "edges":
        tax = _read_edges(text, src, bool(tree), table)
    else:
        tax = _read_closure(text, src, bool(tree), table)
    tax.meta["format"] = format
    return tax
