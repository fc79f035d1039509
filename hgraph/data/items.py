"""Text items that belong to categories of a taxonomy.

File format: CSV, or TSV when the name ends in ``.tsv``/``.tab`` (before an
optional ``.gz``) or the header is tab-separated; ``.gz`` files are
decompressed.  A header is required::

    text,category[,split]

one row per (item, category) pair, so an item with two categories has two
rows with the same text.  ``category`` is a node's external key
(``tax.keys[i]``, as read) or, when no key matches, its name
(``tax.names[i]``).  ``split`` (optional) is ``train``, ``val`` or ``test``
(any case).  Header names are matched case-insensitively, in any order.
Fields follow the CSV quoting rules (``"a, b"``; a quoted field may span
lines); surrounding whitespace of text, category and split is removed.

Every malformed input raises :class:`~hgraph.errors.HGraphInputError` naming
the file and the 1-based line where the offending row starts.
"""
from __future__ import annotations

import csv
import gzip
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Tuple, Union

import numpy as np
import pandas as pd

from hgraph.data.io import _first_line, _node_ids, _read_text
from hgraph.data.taxonomy import Taxonomy
from hgraph.errors import HGraphInputError
from hgraph.files import atomic_open

PathLike = Union[str, os.PathLike]

SPLITS: Tuple[str, ...] = ("train", "val", "test")
ITEM_COLUMNS: Tuple[str, ...] = ("text", "category", "split")
_REQUIRED = ("text", "category")


@dataclass
class Items:
    """Text items and their categories: one row per (item, category) pair."""

    texts: List[str]              # (M,) item text per row
    category: np.ndarray          # (M,) int64 node id per row
    split: Optional[np.ndarray]   # (M,) object array of 'train'/'val'/'test', or None
    source: str = "<memory>"

    def __post_init__(self) -> None:
        self.texts = list(self.texts)
        self.category = np.asarray(self.category, dtype=np.int64).reshape(-1)
        if self.split is not None:
            self.split = np.asarray(self.split, dtype=object).reshape(-1)
        m = len(self.texts)
        if len(self.category) != m or (self.split is not None and len(self.split) != m):
            raise ValueError(
                f"texts ({m},), category {self.category.shape} and split "
                f"{None if self.split is None else self.split.shape} must have one entry per row")

    def __len__(self) -> int:
        return len(self.texts)

    def item_ids(self) -> np.ndarray:
        """(M,) int64 item id per row: rows with the same text share an id,
        numbered ``0..U-1`` in order of first appearance."""
        if not self.texts:
            return np.zeros(0, dtype=np.int64)
        codes, _ = pd.factorize(pd.Series(self.texts, dtype=object), sort=False)
        return codes.astype(np.int64)


# -------------------------------------------------------------------- reading
def _delimiter(src: str, header_line: str) -> str:
    """',' or '\\t': by extension (``.tsv``/``.tab``/``.csv``, ``.gz`` ignored),
    else the one under which the header names ``text`` and ``category``."""
    name = src.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    if name.endswith((".tsv", ".tab")):
        return "\t"
    if name.endswith(".csv"):
        return ","
    for d in ("\t", ","):
        fields = {f.strip().lower() for f in header_line.split(d)}
        if set(_REQUIRED) <= fields:
            return d
    return "\t" if "\t" in header_line and "," not in header_line else ","


def _rows(text: str, delim: str, src: str):
    """Yield (1-based start line, fields) for every non-blank CSV record.

    A record may span several physical lines (a quoted newline); its start
    line is the line after the previous record's last line.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim, strict=True)
    end = 0
    while True:
        start = end + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise HGraphInputError(f"malformed CSV record: {e}", file=src, line=start,
                                   fix="check the quotes from this line on: a quote "
                                       "left open runs to the end of the file; write a "
                                       "quote inside a quoted field as \"\"") from None
        end = reader.line_num
        if any(f.strip() for f in fields):
            yield start, fields


def _header(fields: List[str], src: str, line: int) -> List[str]:
    """Normalised header names; errors for a missing header or column."""
    names = [f.strip().lower() for f in fields]
    expected = "the first line must be the header text,category[,split]"
    if not any(n in ITEM_COLUMNS for n in names):
        raise HGraphInputError(f"missing header: found {','.join(fields)!r}", file=src,
                               line=line, fix=expected)
    for n in _REQUIRED:
        if n not in names:
            raise HGraphInputError(f"header has no {n!r} column: found {','.join(fields)!r}",
                                   file=src, line=line, fix=expected)
    unknown = [f for f, n in zip(fields, names) if n not in ITEM_COLUMNS]
    if unknown:
        raise HGraphInputError(
            f"unknown column {unknown[0].strip()!r} in the header {','.join(fields)!r}",
            file=src, line=line, fix="columns are text, category and optionally split")
    twice = [n for n in ITEM_COLUMNS if names.count(n) > 1]
    if twice:
        raise HGraphInputError(f"column {twice[0]!r} appears twice in the header",
                               file=src, line=line)
    return names


def read_items(path: PathLike, tax: Taxonomy) -> Items:
    """Read and validate an items file against ``tax``.

    Returns :class:`Items` with M rows in file order: ``texts`` (M,),
    ``category`` (M,) int64 node ids, ``split`` (M,) or None when the file
    has no ``split`` column.  Raises :class:`HGraphInputError` (file and
    line) for: an empty file, a missing header or column, a row with the
    wrong number of fields, an empty text or category, an unknown category,
    a duplicate (text, category) row, a split other than train/val/test.
    """
    text, src = _read_text(path)  # empty files, BOM, CRLF, .gz
    delim = _delimiter(src, _first_line(text)[1])
    rows = _rows(text, delim, src)
    header_line, header_fields = next(rows)  # _read_text rejects blank files
    names = _header(header_fields, src, header_line)
    col = {n: i for i, n in enumerate(names)}
    ncols = len(names)

    lines: List[int] = []
    cells: List[List[str]] = [[] for _ in names]
    for ln, fields in rows:
        if len(fields) != ncols:
            raise HGraphInputError(
                f"expected {ncols} fields ({','.join(names)}), found {len(fields)}",
                file=src, line=ln,
                fix="quote a text that holds the delimiter (\"a, b\")")
        lines.append(ln)
        for j, f in enumerate(fields):
            cells[j].append(f)
    if not lines:
        raise HGraphInputError("header only, no items", file=src, line=header_line,
                               fix="add rows text,category[,split]")
    line_arr = np.asarray(lines, dtype=np.int64)
    column = {n: pd.Series(cells[col[n]], dtype=object).str.strip() for n in names}

    def fail_at(mask: np.ndarray, cause) -> None:
        bad = np.flatnonzero(mask)
        if len(bad):
            i = int(bad[0])
            raise HGraphInputError(cause(i), file=src, line=int(line_arr[i]))

    texts, cats = column["text"], column["category"]
    fail_at((texts == "").to_numpy(), lambda i: "empty text")
    fail_at((cats == "").to_numpy(), lambda i: "empty category")
    ids = _node_ids(cats.to_numpy(), tax)
    if (ids < 0).any():
        i = int(np.flatnonzero(ids < 0)[0])
        raise HGraphInputError(f"unknown category {cats[i]!r}: not a key or name of a node",
                               file=src, line=int(line_arr[i]),
                               fix=f"categories must be node keys or names of {tax.source}")
    split = None
    if "split" in column:
        given = column["split"]
        split_low = given.str.lower()
        fail_at(~split_low.isin(SPLITS).to_numpy(),
                lambda i: f"bad split {given[i]!r}: expected one of {', '.join(SPLITS)}")
        split = split_low.to_numpy(dtype=object)
        # an item's rows (one per category) share one split, or its text would
        # be trained on and tested at once
        first = pd.Series(split).groupby(texts.to_numpy()).transform("first").to_numpy()
        fail_at(first != split, lambda i: f"item {_short(texts[i])!r} is in split "
                f"{split[i]!r} here but {first[i]!r} on an earlier line: every row of an "
                f"item needs the same split")
    _check_duplicates(texts, ids, line_arr, tax, src)
    return Items(texts=texts.tolist(), category=ids, split=split, source=src)


def _check_duplicates(texts: pd.Series, ids: np.ndarray, lines: np.ndarray,
                      tax: Taxonomy, src: str) -> None:
    """Reject a (text, node) pair given twice (also via a key and a name)."""
    pairs = pd.DataFrame({"t": texts.to_numpy(), "c": ids})
    dup = pairs.duplicated(keep="first").to_numpy()
    if not dup.any():
        return
    j = int(np.flatnonzero(dup)[0])
    same = np.flatnonzero((pairs["t"].to_numpy() == texts[j]) & (ids == ids[j]))
    i = int(same[0])
    label = tax.keys[ids[j]] if tax.keys is not None else tax.names[ids[j]]
    raise HGraphInputError(
        f"duplicate row: text {_short(texts[j])!r} with category {label!r} is already "
        f"on line {lines[i]}", file=src, line=int(lines[j]), fix="give each pair once")


def _short(s: str, n: int = 60) -> str:
    return s if len(s) <= n else s[: n - 3] + "..."


def collect_items(per_node: Iterable[Tuple[int, Iterable[str]]]) -> Tuple[List[str], np.ndarray]:
    """``(node id, its texts)`` pairs -> ``(texts, category ids (M,) int64)``, one
    row per (text, node): texts stripped, empty ones skipped, a text repeated
    under one node kept once.  What the package datasets' item builders share."""
    out_text: List[str] = []
    out_cat: List[int] = []
    for i, texts in per_node:
        seen = set()
        for t in texts:
            t = t.strip()
            if t and t not in seen:
                seen.add(t)
                out_text.append(t)
                out_cat.append(int(i))
    return out_text, np.asarray(out_cat, dtype=np.int64)


# -------------------------------------------------------------------- writing
def write_items(path: PathLike, items: Items, tax: Taxonomy) -> None:
    """Write ``items`` as ``text,category[,split]`` with a header.

    ``category`` is written as the node key (``tax.keys[i]``; the name when
    the taxonomy has no keys), so :func:`read_items` resolves it to the same
    node.  Tab-separated for ``.tsv``/``.tab``, gzip-compressed for ``.gz``.
    The file appears only when complete (:func:`hgraph.files.atomic_open`).
    Raises :class:`HGraphInputError` before writing anything for a category
    id outside ``0..N-1``, an empty text or a split other than
    train/val/test.
    """
    src = str(path)
    n = tax.num_nodes
    cat = np.asarray(items.category, dtype=np.int64)
    bad = np.flatnonzero((cat < 0) | (cat >= n))
    if len(bad):
        raise HGraphInputError(f"row {int(bad[0])}: category id {int(cat[bad[0]])} is not a "
                               f"node of the taxonomy (0..{n - 1})", file=src)
    texts = pd.Series(items.texts, dtype=object)
    blank = np.flatnonzero((texts.str.strip() == "").to_numpy())
    if len(blank):
        raise HGraphInputError(f"row {int(blank[0])}: empty text", file=src)
    labels = tax.keys if tax.keys is not None else tax.names
    df = pd.DataFrame({"text": texts, "category": np.asarray(labels, dtype=object)[cat]})
    if items.split is not None:
        split = pd.Series(items.split, dtype=object)
        wrong = np.flatnonzero(~split.isin(SPLITS).to_numpy())
        if len(wrong):
            raise HGraphInputError(f"row {int(wrong[0])}: bad split {split[wrong[0]]!r}",
                                   file=src, fix=f"use one of {', '.join(SPLITS)}")
        df["split"] = split.to_numpy()
    name = src.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    sep = "\t" if name.endswith((".tsv", ".tab")) else ","
    body = df.to_csv(index=False, sep=sep, lineterminator="\n")
    if src.lower().endswith(".gz"):
        with atomic_open(Path(path), "wb") as f:
            f.write(gzip.compress(body.encode("utf-8"), mtime=0))
    else:
        with atomic_open(Path(path), "w", newline="") as f:
            f.write(body)


def read_node_texts(path: PathLike, tax: Taxonomy,
                    needed: Optional[Iterable[int]] = None,
                    names: Optional[List[str]] = None) -> List[str]:
    """The text of every node from a CSV ``id,text`` (``id``: a node's key or
    name, a key match first; e.g. ``data/samples/*_text.csv``), checked as
    strictly as :func:`read_items`.

    Returns (N,) texts in node-id order.  A third column ``name`` (header
    ``id,text,name``) gives display names: written into ``names`` (a list of N
    names to update in place) when it is given.  ``needed``: the node ids that must
    have a text (default: every node but a virtual root, which keeps its
    name); a node outside it that the file does not name keeps its name.
    Raises :class:`HGraphInputError` naming the file and the 1-based line for:
    an empty file, a header other than ``id,text``, a row with other than two
    fields (an unquoted comma in the text), an empty id or text, an id that is
    no node of ``tax``, a node given twice (also via its key and its name);
    naming the file, how many and the first few, for needed nodes without a
    text.
    """
    text, src = _read_text(path)  # empty files, BOM, CRLF, .gz
    rows = _rows(text, _delimiter(src, _first_line(text)[1]), src)
    header_line, header = next(rows)  # _read_text rejects blank files
    cols = [f.strip().lower() for f in header]
    if cols not in (["id", "text"], ["id", "text", "name"]):
        raise HGraphInputError(f"header must be 'id,text' or 'id,text,name', found "
                               f"{','.join(header)!r}", file=src, line=header_line,
                               fix="the first line must be the header id,text[,name]")
    width = len(cols)
    lines: List[int] = []
    ids_raw: List[str] = []
    texts: List[str] = []
    given_names: List[str] = []
    for ln, f in rows:
        if len(f) != width:
            raise HGraphInputError(f"expected {width} fields ({','.join(cols)}), found "
                                   f"{len(f)}", file=src, line=ln,
                                   fix="quote a text that holds the delimiter (\"a, b\")")
        if width == 3:
            if not f[2].strip():
                raise HGraphInputError(f"empty name for node {f[0].strip()!r}", file=src,
                                       line=ln, fix="write the node's name, or drop the column")
            given_names.append(f[2].strip())
        k, t = f[0].strip(), f[1].strip()
        if not k:
            raise HGraphInputError("empty id", file=src, line=ln)
        if not t:
            raise HGraphInputError(f"empty text for node {k!r}", file=src, line=ln,
                                   fix="write the node's text, e.g. its name")
        lines.append(ln)
        ids_raw.append(k)
        texts.append(t)
    if not lines:
        raise HGraphInputError("header only, no node texts", file=src, line=header_line,
                               fix="add rows id,text")
    ids = _node_ids(np.asarray(ids_raw, dtype=object), tax)
    if (ids < 0).any():
        i = int(np.flatnonzero(ids < 0)[0])
        raise HGraphInputError(f"node {ids_raw[i]!r} is not in the taxonomy", file=src,
                               line=lines[i],
                               fix=f"ids must be node keys or names of {tax.source}")
    dup = pd.Series(ids).duplicated(keep="first").to_numpy()
    if dup.any():
        j = int(np.flatnonzero(dup)[0])
        i = int(np.flatnonzero(ids == ids[j])[0])
        raise HGraphInputError(f"duplicate id {ids_raw[j]!r}: node {_label(tax, ids[j])!r} "
                               f"already has a text on line {lines[i]}", file=src,
                               line=lines[j], fix="give each node one row")
    if names is not None and given_names:
        for i, n in zip(ids, given_names):
            names[i] = n
    out = [str(n) for n in tax.names]
    given = np.zeros(tax.num_nodes, dtype=bool)
    for i, t in zip(ids, texts):
        out[i] = t
        given[i] = True
    if needed is None:
        need = np.ones(tax.num_nodes, dtype=bool)
        if tax.virtual_root:
            need[tax.root] = False
    else:
        need = np.zeros(tax.num_nodes, dtype=bool)
        need[np.asarray(list(needed), dtype=np.int64)] = True
    missing = np.flatnonzero(need & ~given)
    if len(missing):
        first = ", ".join(repr(_label(tax, u)) for u in missing[:5])
        more = ", ..." if len(missing) > 5 else ""
        raise HGraphInputError(
            f"{len(missing)} of {int(need.sum())} nodes have no text: {first}{more}",
            file=src, fix="add a row id,text for each of them")
    return out


def _label(tax: Taxonomy, u: int) -> str:
    """Node ``u``'s key (its name when the taxonomy has no keys)."""
    return str(tax.keys[u] if tax.keys is not None else tax.names[u])
