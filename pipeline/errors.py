"""One error base for the whole tool.

Library code raises these; the CLI turns any `PipelineError` into one line on stderr
and exit code 2, never a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path


class PipelineError(Exception):
    """A problem the user can fix; `hint` says how. The CLI exits with `exit_code`."""

    exit_code = 2

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


class NothingDone(PipelineError):
    """The command ran but produced nothing usable (e.g. every image missing): exit code 1."""

    exit_code = 1


def closest(word: str, candidates: Iterable[str], n: int = 5) -> list[str]:
    """The candidates most like `word` (case-insensitive), best first, for "did you mean" hints.

    Example: `closest("yolov3-tinny", ["yolov3-tiny", "yolov2", "resnet50"])` -> ["yolov3-tiny", ...].
    """
    by_folded: dict[str, str] = {}
    for c in candidates:
        by_folded.setdefault(c.casefold(), c)
    return [by_folded[m] for m in difflib.get_close_matches(word.casefold(), by_folded, n=n, cutoff=0.6)]
