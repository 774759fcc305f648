"""One error base for the whole tool.

Library code raises these; the CLI turns any `PipelineError` into one line on stderr
and exit code 2, never a traceback.
"""

from __future__ import annotations

from pathlib import Path


class PipelineError(Exception):
    """A problem the user can fix; `hint` says how."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UserError(PipelineError):
    """Bad option, missing folder, unknown class: the command cannot start."""


class FormatError(PipelineError):
    """A malformed input file; names the file and, where known, the line."""

    def __init__(self, path: str | Path, reason: str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {reason}")
        self.path = str(path)
        self.line = line
        self.reason = reason


class CfgError(PipelineError):
    """A darknet cfg or .data file that cannot be used."""
