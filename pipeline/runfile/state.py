"""WORK/run-state.json: what each stage last did successfully, and the digests it rested on.

A stage is up to date when its options, the digest of its inputs and the tool version are
those recorded at its last success, and the outputs it recorded are still there and
unchanged. The file is replaced atomically after every stage, so a killed run leaves the
state of the last stage that finished.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable
from pathlib import Path

import msgspec

from pipeline.errors import UserError
from pipeline.io import atomic_write, file_sha256

STATE_FILE = "run-state.json"


class StageRecord(msgspec.Struct, kw_only=True):
    """One stage's last success: options, input digests, tool, output digests, when, how long."""

    options: dict[str, object]
    inputs: dict[str, str]
    tool: str
    outputs: dict[str, str] = {}
    detail: dict[str, object] = {}
    finished_at: str = ""
    seconds: float = 0.0


class RunState(msgspec.Struct, kw_only=True):
    """The whole file: records by stage, plus the training started but not yet finished."""

    version: int = 1
    stages: dict[str, StageRecord] = {}
    started: dict[str, dict[str, str]] = {}


def read_state(work: Path) -> RunState:
    """The run-state of a work folder (empty when there is none yet)."""
    path = work / STATE_FILE
    try:
        return msgspec.json.decode(path.read_bytes(), type=RunState)
    except FileNotFoundError:
        return RunState()
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise UserError(f"{path}: unreadable run-state ({exc})",
                        "delete it to redo every stage") from None


def write_state(work: Path, state: RunState) -> None:
    """Replace WORK/run-state.json atomically."""
    atomic_write(work / STATE_FILE, msgspec.json.format(msgspec.json.encode(state), indent=2) + b"\n")


def now() -> str:
    """Local time for the records, e.g. 2025-01-31 14:02:11."""
    return time.strftime("%Y-%m-%d %H:%M:%S")


def digest_value(value: object) -> str:
    """A short, stable digest of JSON-able data (keys sorted)."""
    return hashlib.sha256(msgspec.json.encode(value, order="sorted")).hexdigest()[:16]


def file_digest(path: str | Path) -> str:
    """A short digest of a file's bytes; `missing` when it cannot be read."""
    digest = file_sha256(path)
    return digest[:16] if digest else "missing"


def stat_fingerprint(paths: Iterable[str | Path]) -> str:
    """Digest of the size and mtime of each path (`missing` for one that is not there).

    A folder's mtime changes when an entry is added, removed or renamed, so a 1.28M-image
    tree is fingerprinted by its class folders with a few thousand `stat` calls. A file
    edited in place inside a folder is not seen: `--force convert` redoes the stage.
    """
    lines = []
    for p in sorted({str(p) for p in paths}):
        try:
            st = os.stat(p)
            lines.append(f"{p} {st.st_size} {st.st_mtime_ns}")
        except OSError:
            lines.append(f"{p} missing")
    return digest_value(lines)


def subfolders(path: str | Path) -> list[str]:
    """The folders directly inside `path` (none when it is not a folder)."""
    try:
        with os.scandir(path) as it:
            return [e.path for e in it if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []
