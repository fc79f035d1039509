"""Format names and the column vocabulary of taxonomy files.

The formats :func:`~hgraph.data.io.read_taxonomy` reads, their columns and
delimiters, and the header words accepted for each column role (compared after
:func:`_norm`).  The formats themselves are described in :mod:`hgraph.data.io`.
"""
from __future__ import annotations

import os
import re
from typing import Tuple, Union

PathLike = Union[str, os.PathLike]

FORMATS: Tuple[str, ...] = ("auto", "curvlearn", "curvlearn-shipped", "edges", "closure")

CURVLEARN_HEADER = ("cate", "cate_id", "parent_cate", "parent_cate_id", "level")
SHIPPED_COLUMNS = ("parent_id", "child_id", "child_level")

_DELIMS = {",": "comma", "\t": "tab"}
_OTHER_DELIMS = (";", "|", ":", " ")
_INT_RE = re.compile(r"^[+-]?\d+$")
_PATH_RE = r"^0(-\d+)*$"
_BLANK_LINE = re.compile(r"^[ \t]*$", re.MULTILINE)
# Accepted header names per column role, compared after _norm (case, spaces,
# '_' and '-' ignored: "Parent ID", "parent_id" and "parentId" are one name).
# A header may give the columns in any order; a header that names something
# else is an error, never a guess.  The direction-neutral pairs (source/target,
# from/to, u/v) read as child -> parent, the direction of an is-a edge.
_CHILD_NAMES = ("child", "child_id", "child_key", "child_name", "id", "node", "node_id",
                "key", "name", "kid", "cate_id", "descendant", "hyponym", "id1",
                "source", "src", "from", "u")
_PARENT_NAMES = ("parent", "parent_id", "parent_key", "parent_name", "parent_cate_id",
                 "mum", "mom", "mother", "ancestor", "hypernym", "id2",
                 "target", "dst", "to", "v")
_WEIGHT_NAMES = ("weight", "w", "score")
_LEVEL_NAMES = ("child_level", "level", "depth")
_PAIR_ROLES = {"child": _CHILD_NAMES, "parent": _PARENT_NAMES}
_CLOSURE_ROLES = {"child": _CHILD_NAMES, "parent": _PARENT_NAMES, "weight": _WEIGHT_NAMES}
_SHIPPED_ROLES = {"parent_id": _PARENT_NAMES, "child_id": _CHILD_NAMES,
                  "child_level": _LEVEL_NAMES}
_CURVLEARN_ROLES = {c: (c,) for c in CURVLEARN_HEADER}


def _norm(word: str) -> str:
    """A header word as compared: lower case, without spaces, '_' and '-'."""
    return re.sub(r"[\s_\-]+", "", word.strip().lower())


# header words that make a 2-column file a closure (hyponym -> hypernym pairs)
_CLOSURE_ID_WORDS = {_norm(w) for w in ("id1", "id2", "hyponym", "hypernym",
                                        "descendant", "ancestor")}
# column names that are unlikely node keys: a first line holding one of them
# next to an unknown word is an unrecognised header, not a data row
_STRONG_WORDS = {_norm(w) for w in ("child", "parent", "child_id", "parent_id", "child_key",
                                    "parent_key", "child_name", "parent_name",
                                    "parent_cate_id", "descendant", "ancestor",
                                    "hyponym", "hypernym", "id1", "id2")}
_HEADER_WORDS = {_norm(w) for w in (_CHILD_NAMES + _PARENT_NAMES + _WEIGHT_NAMES
                                    + _LEVEL_NAMES + CURVLEARN_HEADER + SHIPPED_COLUMNS)}
_GZIP_MAGIC = b"\x1f\x8b"


def _columns_doc(fmt: str) -> str:
    return {
        "curvlearn": ",".join(CURVLEARN_HEADER),
        "curvlearn-shipped": ",".join(SHIPPED_COLUMNS),
        "edges": "child,parent",
        "closure": "id1,id2[,weight]",
        "features": "id,f1,...,fk",
    }.get(fmt, "?")
