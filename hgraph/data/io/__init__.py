"""Readers and writers for taxonomy files and node features.

Formats (``read_taxonomy(path, format=...)``; ``"auto"`` detects by content):

``curvlearn``
    The CSV that CurvLearn's README describes, header
    ``cate,cate_id,parent_cate,parent_cate_id,level``.  ``cate`` is a path of
    child indices from the virtual root ``0`` (``0-12-34``); the virtual
    root's id appears only as a ``parent_cate_id`` whose ``parent_cate`` is
    ``0``.  Node key = ``cate_id``, name = ``cate``.  Always a tree; the
    ``level`` column must equal the depth (virtual root = level 0).
``curvlearn-shipped``
    The file CurvLearn actually ships (``cate_tree.csv``): no header, three
    integer columns ``parent_id,child_id,child_level``.  The root is the one
    parent id that is never a child.  Names are CurvLearn paths built from the
    tree: the root is ``0``; the children of a node, sorted by their integer
    id, get indices ``0, 1, 2, ...`` and the name ``<parent path>-<index>``
    (so the child of the root with the smallest id is ``0-0``).
``edges``
    A generic ``child,parent`` list, comma- or tab-separated, optional header,
    string keys allowed.  A DAG unless ``tree=True``.
``closure``
    Transitive-closure pairs ``id1,id2[,weight]`` (id1 the hyponym, id2 the
    hypernym), as poincare-embeddings and gensim write them.  The hypernym DAG
    is recovered by transitive reduction; the given pairs are kept as
    ``tax.closure`` (``tax.meta["closure_given"] = True``).  Reflexive pairs
    ``(u, u)`` are dropped; a third column must be numeric and is ignored.

Auto-detection (``detect_format``) looks at the first non-blank line:

* not comma- or tab-separated (e.g. ``;``) -> error naming the delimiter;
* 5 columns -> ``curvlearn``;
* 3 columns -> ``closure`` when the header starts ``id1,id2`` (or
  ``hyponym,hypernym``, either order) or names a child, a parent and a
  weight column (``child,parent,weight``), or the first row's third field
  is a non-integer number (``1.0``), or both ids are non-integers and the
  third is a number;
  otherwise ``curvlearn-shipped`` (so a headerless all-integer file, or one
  with a typo in one id, is read as the shipped tree and errors there);
* 2 columns -> ``closure`` when the header is ``id1,id2``/``hyponym,hypernym``/
  ``descendant,ancestor`` (either order);
  ``edges`` when it is ``child,parent`` (or similar); without a header the
  whole file is read and it is ``closure`` iff the relation is transitively
  closed and has at least one 2-step path or a reflexive pair (an edge list
  of depth 1 is its own closure, and both readings give the same DAG).

Headers are optional everywhere; a first row is a header when its id fields
are not integers (integer formats), when its words are known column names,
or (string keys) when its key fields are non-integer while the rows after it
are integers, or when a key field is a column name like ``child`` or
``parent`` that no later row uses as a key.  A header is honoured in any
column order and any case (``parent,child``, ``Child,Parent``,
``id,parent_id``, ``parent_id,id``, ``ancestor,descendant``,
``hypernym,hyponym,weight``, ``child_id,parent_id,child_level``, ...; see
``_CHILD_NAMES``/``_PARENT_NAMES``).  A header whose names cannot be mapped
to the format's columns is an error naming the accepted names, never a
guess.  Without a header the columns are read in the order given above.

Any path ending in ``.gz`` (taxonomy and feature files) is gzip-decompressed
before it is decoded; a corrupt archive is an error like any other input.

Every malformed input raises :class:`~hgraph.errors.HGraphInputError` with
the file, the 1-based line and the cause.  Parsing is vectorised (pandas);
the per-line Python scan runs only when the fast path fails, to find the
offending line.  Nothing here writes files except the two writers, which
write to a temporary file and rename it, so a failure leaves nothing behind.

The code is split by concept: ``columns`` (format names, column and header
vocabulary), ``text`` (decoding a file, splitting lines, the delimiter),
``table`` (typed columns, the header rules), ``sniff`` (:func:`detect_format`),
``checks`` (one parent per node, no self-loops), ``curvlearn`` and ``edges``
(the per-format readers), ``readers`` (:func:`read_taxonomy`), ``writers``
and ``features`` (:func:`read_features`).  This module re-exports their
public names.
"""
from __future__ import annotations

from hgraph.data.io.columns import CURVLEARN_HEADER, FORMATS, SHIPPED_COLUMNS, PathLike
from hgraph.data.io.curvlearn import curvlearn_paths
from hgraph.data.io.features import read_features
from hgraph.data.io.readers import read_taxonomy
from hgraph.data.io.sniff import detect_format
from hgraph.data.io.writers import write_curvlearn, write_edges
# helpers that hgraph.data.items reads through this module
from hgraph.data.io.features import _node_ids  # noqa: F401
from hgraph.data.io.text import _first_line, _read_text  # noqa: F401

__all__ = ["FORMATS", "CURVLEARN_HEADER", "SHIPPED_COLUMNS", "PathLike", "detect_format",
           "read_taxonomy", "curvlearn_paths", "write_curvlearn", "write_edges",
           "read_features"]
