"""The one error type users see for bad input.

An :class:`HGraphInputError` names the file, the line (1-based, when there is
one) and the cause, and where possible how to fix it.  The CLI prints
``str(err)`` as a single line and exits with status 2.
"""
from __future__ import annotations

from typing import Optional


class HGraphInputError(ValueError):
    """Bad user input: a file, a config value or a command-line option."""

    def __init__(self, cause: str, file: Optional[str] = None,
                 line: Optional[int] = None, fix: Optional[str] = None):
        self.cause = cause
        self.file = None if file is None else str(file)
        self.line = line
        self.fix = fix
        super().__init__(self._render())

    def _render(self) -> str:
        where = ""
        if self.file is not None:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
            where += ": "
        msg = f"{where}{self.cause}"
        if self.fix:
            msg += f" ({self.fix})"
        return msg.replace("\n", " ")


def require(module: str, pip_name: str):
    """Import ``module``, or raise a one-line :class:`HGraphInputError` saying how
    to install it (``pip install pip_name``)."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError:
        raise HGraphInputError(f"the Python package {module} is not installed",
                               fix=f"pip install {pip_name}") from None
