"""Parsing a delimited text into typed columns, and the header rules.

:func:`_parse_table` parses with one ``pandas.read_csv`` and falls back to a
line-by-line :func:`_scan` that names the first malformed line;
:func:`_pair_header` decides whether a string-key file has a header, and
:func:`_header_columns` maps a header's names to the format's columns.
"""
from __future__ import annotations

import csv
import io
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from hgraph.data.io.columns import (_BLANK_LINE, _DELIMS, _HEADER_WORDS, _INT_RE, _STRONG_WORDS,
                                    _columns_doc, _norm)
from hgraph.data.io.text import _first_line, _is_int, _looks_separated_by, _split
from hgraph.errors import HGraphInputError


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
