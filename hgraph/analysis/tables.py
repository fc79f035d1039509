"""Markdown tables of the analyses, and the page an analysis writes with ``--out``:
the command that made it, a note, the table."""
from __future__ import annotations

from typing import Iterable, Optional, Sequence


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """``| a | b |`` / ``|---|---|`` / one line per row (cells already formatted)."""
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def page(table: str, command: str, threads: int = 1, note: Optional[str] = None) -> str:
    """``Command: `<command>` (one thread). <note>``, a blank line, ``table``."""
    t = "one thread" if threads == 1 else f"{threads} threads"
    head = f"Command: `{command}` ({t})." + (f" {note}" if note else "")
    return f"{head}\n\n{table}"


__all__ = ["markdown_table", "page"]
