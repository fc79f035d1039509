"""Reading a file as text, and splitting its lines into fields.

:func:`_read_text` decodes a file (gzip, BOM, line ends) with one-line
errors; :func:`_first_line` finds the first non-blank line; :func:`_sniff`
picks the delimiter from it; :func:`_is_int` / :func:`_is_number` test fields.
"""
from __future__ import annotations

import codecs
import csv
import gzip
import zlib
from pathlib import Path
from typing import List, Optional, Tuple

from hgraph.data.io.columns import _GZIP_MAGIC, _INT_RE, _OTHER_DELIMS, PathLike, _columns_doc
from hgraph.errors import HGraphInputError


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


def _is_int(s: str) -> bool:
    return bool(_INT_RE.match(s.strip()))


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True
