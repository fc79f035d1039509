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
"""
from __future__ import annotations

import codecs
import csv
import gzip
import io
import os
import re
import zlib
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse import csgraph

from hgraph.data.taxonomy import VIRTUAL_ROOT, Taxonomy
from hgraph.errors import HGraphInputError
from hgraph.files import atomic_open

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


# --------------------------------------------------------------------------- text
def _read_text(path: PathLike) -> Tuple[str, str]:
    """Read ``path`` as UTF-8 text.  Returns (text, display name).

    A path ending in ``.gz`` is decompressed first (whole file, in memory).
    A UTF-8 BOM is stripped and line ends become ``\\n``, so line numbers in
    errors count the lines of the (decompressed) text.
    """
    src = str(path)
    p = Path(path)
    if not p.exists():
        raise HGraphInputError("file not found", file=src, fix="check the path")
    if p.is_dir():
        raise HGraphInputError("is a directory, expected a file", file=src)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise HGraphInputError(f"cannot read the file: {e.strerror}", file=src) from None
    if src.lower().endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
            raise HGraphInputError(f"not a valid gzip file: {e}", file=src,
                                   fix="recompress it with gzip, or drop the .gz suffix "
                                       "for a plain text file") from None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise HGraphInputError("file is UTF-16 encoded, expected UTF-8", file=src, line=1,
                               fix="save it as UTF-8")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        fix = "save the file as UTF-8"
        if data.startswith(_GZIP_MAGIC):
            fix = "the file looks gzip-compressed: give it a .gz suffix, or decompress it"
        raise HGraphInputError(
            f"bytes are not valid UTF-8 (byte 0x{data[e.start]:02x} at column {col})",
            file=src, line=line, fix=fix) from None
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise HGraphInputError("file is empty, expected data rows", file=src, line=1)
    return text, src


def _first_line(text: str) -> Tuple[int, str]:
    """(0-based index, content) of the first non-blank line."""
    for i, line in enumerate(text.split("\n", 200)):
        if line.strip():
            return i, line
    # only reached when the first 200 lines are blank
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.strip():
            return i, line
    raise AssertionError("text is not blank")  # _read_text rejects blank files


def _split(line: str, delim: str) -> List[str]:
    return [f.strip() for f in next(csv.reader([line], delimiter=delim, skipinitialspace=True))]


def _looks_separated_by(line: str) -> Optional[str]:
    for d in _OTHER_DELIMS:
        if len(line.strip().split(d)) > 1:
            return d
    return None


def _sniff(line: str, src: str, lineno: int, ncols: Optional[int] = None,
           fmt: Optional[str] = None) -> str:
    """Pick ',' or '\\t' from the first line; error naming the delimiter otherwise."""
    has = [d for d in (",", "\t") if d in line]
    if len(has) == 1:
        return has[0]
    if len(has) == 2:
        if ncols is not None:
            for d in ("\t", ","):
                if len(_split(line, d)) == ncols:
                    return d
        return "\t"
    other = _looks_separated_by(line)
    if ncols is not None:
        cause = f"expected {ncols} comma-separated columns, found 1"
    else:
        cause = "expected comma- or tab-separated columns (2, 3 or 5), found 1 column"
    if other is not None:
        cause += f"; the file looks {other!r}-separated"
    fix = "separate columns with ',' (or tabs)"
    if fmt is not None:
        fix += f"; format {fmt!r} has columns " + _columns_doc(fmt)
    raise HGraphInputError(cause, file=src, line=lineno, fix=fix)


def _columns_doc(fmt: str) -> str:
    return {
        "curvlearn": ",".join(CURVLEARN_HEADER),
        "curvlearn-shipped": ",".join(SHIPPED_COLUMNS),
        "edges": "child,parent",
        "closure": "id1,id2[,weight]",
        "features": "id,f1,...,fk",
    }.get(fmt, "?")


def _is_int(s: str) -> bool:
    return bool(_INT_RE.match(s.strip()))


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


# -------------------------------------------------------------------- table parse
class _Table:
    """Parsed columns plus the 1-based line of every data row."""

    def __init__(self, cols: Dict[str, np.ndarray], lines: np.ndarray,
                 header: Optional[List[str]], delim: str):
        self.cols = cols
        self.lines = lines
        self.header = header
        self.delim = delim

    def __len__(self) -> int:
        return len(self.lines)


def _parse_table(text: str, src: str, columns: Sequence[Tuple[str, str]], *,
                 delim: str, header: bool, fmt: str,
                 count_fix: Optional[str] = None, count_cause=None) -> _Table:
    """Parse ``text`` into typed columns.

    ``columns``: (name, kind) with kind in ``int`` (int64), ``float`` (float64)
    and ``str``.  ``header``: whether the first non-blank line is a header.
    The fast path is one ``pandas.read_csv``; if it fails or its shape looks
    off, :func:`_scan` walks the lines, raises on the first bad one, and (if
    none is bad) returns its own parse.
    """
    first_idx, first = _first_line(text)
    hdr = _split(first, delim) if header else None
    start = 0
    if header:
        line_start = 0
        for _ in range(first_idx):
            line_start = text.index("\n", line_start) + 1
        nl = text.find("\n", line_start)
        start = len(text) if nl < 0 else nl + 1
    body = text[start:]
    skipped = text.count("\n", 0, start)  # physical lines before the body
    if not body.strip():
        raise HGraphInputError("header only, no data rows", file=src,
                               line=skipped if header else 1,
                               fix=f"add rows ({_columns_doc(fmt)})")

    ncols = len(columns)
    dtypes = {i: {"int": np.int64, "float": np.float64, "str": str}[k]
              for i, (_, k) in enumerate(columns)}
    core = body[:-1] if body.endswith("\n") else body
    phys = core.split("\n")
    if _BLANK_LINE.search(core):
        data_idx = np.flatnonzero(np.fromiter((bool(l.strip()) for l in phys), dtype=bool,
                                              count=len(phys)))
    else:
        data_idx = np.arange(len(phys))
    lines = data_idx.astype(np.int64) + skipped + 1
    try:
        df = pd.read_csv(io.StringIO(body), sep=delim, header=None, dtype=dtypes,
                         na_filter=False, skipinitialspace=True, engine="c",
                         skip_blank_lines=True)
        ok = df.shape == (len(data_idx), ncols)
        if ok:
            cols = {}
            for i, (name, kind) in enumerate(columns):
                v = df.iloc[:, i].to_numpy()
                if kind == "str":
                    s = pd.Series(v.astype(object), dtype=object).str.strip()
                    if (s == "").any() or s.isna().any():
                        ok = False
                    v = s.to_numpy(dtype=object)
                cols[name] = v
    except (ValueError, pd.errors.ParserError, OverflowError):
        ok = False
    if ok:
        return _Table(cols, lines, hdr, delim)
    return _scan(phys, data_idx, lines, src, columns, delim, hdr, fmt, count_fix, count_cause)


def _scan(phys: List[str], data_idx: np.ndarray, lines: np.ndarray, src: str,
          columns: Sequence[Tuple[str, str]], delim: str, hdr: Optional[List[str]],
          fmt: str, count_fix: Optional[str], count_cause=None) -> _Table:
    """Line-by-line parse: raises on the first malformed line."""
    ncols = len(columns)
    dname = _DELIMS[delim]
    out: List[List] = [[] for _ in columns]
    reader = csv.reader((phys[i] for i in data_idx), delimiter=delim, skipinitialspace=True)
    for ln, fields in zip(lines.tolist(), reader):
        if len(fields) != ncols:
            cause = f"expected {ncols} {dname}-separated columns, found {len(fields)}"
            if count_cause is not None:
                cause = count_cause(len(fields))
            other = _looks_separated_by(phys[data_idx[0]]) if len(fields) == 1 else None
            if other is not None:
                cause += f"; the file looks {other!r}-separated"
            raise HGraphInputError(cause, file=src, line=ln,
                                   fix=count_fix or f"columns are {_columns_doc(fmt)}")
        for j, ((name, kind), f) in enumerate(zip(columns, fields)):
            f = f.strip()
            if f == "":
                raise HGraphInputError(f"empty value in column {j + 1} ({name})",
                                       file=src, line=ln)
            if kind == "int":
                if not _INT_RE.match(f):
                    raise HGraphInputError(
                        f"column {j + 1} ({name}) must be an integer, found {f!r}",
                        file=src, line=ln, fix="ids and levels are whole numbers")
                out[j].append(int(f))
            elif kind == "float":
                try:
                    out[j].append(float(f))
                except ValueError:
                    raise HGraphInputError(
                        f"column {j + 1} ({name}) must be a number, found {f!r}",
                        file=src, line=ln) from None
            else:
                out[j].append(f)
    cols = {}
    for (name, kind), vals in zip(columns, out):
        if kind == "int":
            cols[name] = np.asarray(vals, dtype=np.int64)
        elif kind == "float":
            cols[name] = np.asarray(vals, dtype=np.float64)
        else:
            cols[name] = np.asarray(vals, dtype=object)
    return _Table(cols, lines, hdr, delim)


def _second_rows(text: str, delim: str, k: int = 50) -> List[List[str]]:
    """Up to ``k`` non-blank rows after the first non-blank line."""
    rows = []
    first_seen = False
    for line in text.split("\n", 4 * k)[: 4 * k]:
        if not line.strip():
            continue
        if not first_seen:
            first_seen = True
            continue
        rows.append(_split(line, delim))
        if len(rows) >= k:
            break
    return rows


def _pair_header(fields: List[str], text: str, delim: str) -> bool:
    """Header rule for the string-key formats (edges, closure).

    The first line is a header when all its words are known column names,
    when its key fields are non-integers while the rows after it are
    integers, or when a key field is a column name such as ``child`` or
    ``parent`` that no later row uses as a key (``child,mum`` followed by
    string rows): then :func:`_header_columns` reports what it cannot map.
    """
    low = [_norm(f) for f in fields]
    if all(f in _HEADER_WORDS for f in low):
        return True
    keys = fields[:2]
    if any(_is_int(f) for f in keys):
        return False
    rest = _second_rows(text, delim)
    if bool(rest) and all(len(r) >= 2 and _is_int(r[0]) and _is_int(r[1]) for r in rest):
        return True
    strong = [f for f in keys if _norm(f) in _STRONG_WORDS]
    return bool(strong) and not any(_used_as_key(text, delim, f) for f in strong)


def _used_as_key(text: str, delim: str, word: str) -> bool:
    """Whether ``word`` is a whole field on some line after the first non-blank one."""
    idx, _ = _first_line(text)
    start = 0
    for _ in range(idx + 1):
        nl = text.find("\n", start)
        if nl < 0:
            return False
        start = nl + 1
    d = re.escape(delim)
    pad = "[ ]*" if delim == "\t" else "[ \t]*"
    pat = re.compile(rf"(?:^|{d}){pad}{re.escape(word)}{pad}(?:{d}|$)", re.MULTILINE)
    return pat.search(text, start) is not None


def _header_columns(fields: List[str], roles: Dict[str, Sequence[str]], kinds: Dict[str, str],
                    src: str, lineno: int, what: str) -> List[Tuple[str, str]]:
    """(role, kind) of each header field, in file order.

    ``roles`` maps each role (a column of the format) to its accepted names;
    every role must be named exactly once, in any order and any case.
    Anything else raises a one-line error that lists the accepted names.
    """
    lookup = {_norm(n): role for role, names in roles.items() for n in names}
    got = [lookup.get(_norm(f)) for f in fields]
    if None not in got and sorted(got) == sorted(roles):
        return [(r, kinds[r]) for r in got]
    unknown = [f for f, r in zip(fields, got) if r is None]
    if unknown:
        why = "unknown column name" + ("s " if len(unknown) > 1 else " ") + \
            ", ".join(repr(f) for f in unknown)
    else:
        twice = sorted({r for r in got if got.count(r) > 1})
        missing = [r for r in roles if r not in got]
        why = "; ".join(
            ([f"two columns name the {', '.join(twice)}"] if twice else [])
            + ([f"no column names the {', '.join(missing)}"] if missing else []))
    accepted = "; ".join(f"{role}: {', '.join(names)}" for role, names in roles.items())
    default = ",".join(roles)
    raise HGraphInputError(
        f"unrecognised header {','.join(fields)!r}: {why}, so {what}", file=src, line=lineno,
        fix=f"accepted names, in any order and case: {accepted}; or drop the header line "
            f"to read the columns as {default}")


# ----------------------------------------------------------------- detection
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


# ------------------------------------------------------------------ readers
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


# ------------------------------------------------------------------ writers
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


# ----------------------------------------------------------------- features
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
