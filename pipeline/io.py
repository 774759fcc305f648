"""All file reading and writing helpers: atomic writes, safe XML, image headers, safe paths.

Single outputs (manifests, lists, cfgs, reports) go through `atomic_write`: a temp file in
the same folder, then `os.replace`, so a reader never sees half a file. Bulk label files
use `write_if_changed`: a direct write (a rename per file costs ~20% at ImageNet scale),
made safe because every run compares content and redoes any file left short.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import IO

import imagesize
from lxml import etree

from pipeline.errors import FormatError, UserError

_DRIVE = re.compile(r"^[A-Za-z]:")


@contextlib.contextmanager
def atomic_writer(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """Open a temp file beside `path`; on success it replaces `path` in one step.

    Example: `with atomic_writer("train.txt") as f: f.write(lines)`
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        text = {} if "b" in mode else {"encoding": "utf-8", "errors": "surrogateescape"}
        with os.fdopen(fd, mode, **text) as f:  # surrogateescape: non-UTF-8 file names survive
            yield f
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600: give the mode open() would
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    """The process umask: from /proc (Linux; no change to process state, so safe beside other
    threads), else by setting it and putting it back at once."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, data: str | bytes) -> None:
    """Write a whole file atomically. Example: `atomic_write("a.names", "cat\\ndog\\n")`."""
    with atomic_writer(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)


def write_if_changed(path: str, data: bytes, exists: bool | None = None) -> bool:
    """Write `data` to `path` unless the file already holds exactly these bytes.

    Returns True when the file was (re)written. A file left short by a killed run
    differs from `data` and is therefore redone. `exists=False` (the caller listed the
    folder and saw no such file) skips the read.
    """
    return update_file(path, data, exists)[0]


def update_file(path: str, data: bytes, exists: bool | None = None) -> tuple[bool, os.stat_result]:
    """`write_if_changed` that also returns the file's stat afterwards, taken on the open
    descriptor (cheaper than an `os.stat` of the path later; the rerun cache keeps it)."""
    if exists is not False:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            pass
        else:
            try:
                if os.read(fd, len(data) + 1) == data:
                    return False, os.fstat(fd)
            finally:
                os.close(fd)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        done = os.write(fd, data)
        if done < len(data):  # a short write: the rest, piece by piece
            view = memoryview(data)[done:]
            while view:
                view = view[os.write(fd, view) :]
        return True, os.fstat(fd)
    finally:
        os.close(fd)


def read_bytes(path: str) -> bytes:
    """A whole small file, with the fewest system calls (hot path: one call per label read)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_file(path: str) -> tuple[bytes, os.stat_result]:
    """A whole small file and its stat, taken on the open descriptor (hot path: one call per
    XML, whose size and mtime the rerun cache keeps): open, fstat, one read, close."""
    fd = os.open(path, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        data = os.read(fd, st.st_size + 1)
        if len(data) != st.st_size:  # it grew or shrank meanwhile, or a short read: read to the end
            chunks = [data]
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
            data = b"".join(chunks)
        return data, st
    finally:
        os.close(fd)


def decode_text(data: bytes, path: str | Path, what: str, *, keep_bad_bytes: bool = False) -> str:
    """Text from a file's bytes: UTF-8 (a BOM is dropped), or UTF-16 when it starts with its BOM.

    Bytes that do not decode are a `FormatError` naming the file, line and byte offset;
    with `keep_bad_bytes` (paths in list files, cfg values echoed back) they are kept as
    surrogate escapes instead (and bytes that only look like a UTF-16 BOM are read as UTF-8).
    Example: `decode_text(b"\\xef\\xbb\\xbfa\\n", "x", "names") == "a\\n"`.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")  # the codec reads the BOM itself
        except UnicodeDecodeError as exc:
            if not keep_bad_bytes:
                raise FormatError(path, f"not UTF-16 text after its byte order mark: bad bytes at offset "
                                        f"{exc.start} of this {what} file") from None
    skip = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[skip:].decode("utf-8", "surrogateescape" if keep_bad_bytes else "strict")
    except UnicodeDecodeError as exc:
        offset = skip + exc.start
        raise FormatError(path, f"not UTF-8 text: bad byte at offset {offset} of this {what} file",
                          line=data.count(b"\n", 0, offset) + 1) from None


def read_text(path: str | Path, what: str, *, keep_bad_bytes: bool = False) -> str:
    """Read a whole text file with `decode_text`; an unreadable file is a one-line UserError.

    `what` names the file kind in messages. Example: `read_text("LOC_synset_mapping.txt", "synset")`.
    """
    try:
        data = read_bytes(str(path))
    except OSError as exc:
        raise UserError(f"cannot read {what} file {path}: {exc.strerror or exc}") from None
    return decode_text(data, path, what, keep_bad_bytes=keep_bad_bytes)


def xml_parser() -> etree.XMLParser:
    """An lxml parser that never expands entities, never loads DTDs, never goes online.

    Whitespace between elements is not kept (no reader looks at it; fewer nodes to build).
    """
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True, remove_pis=True, remove_blank_text=True,
    )


def parse_xml(data: bytes, path: str, parser: etree.XMLParser) -> etree._Element:
    """Parse XML bytes; any syntax problem becomes a `FormatError` naming file and line.

    A well-formed document goes through the parser's feed interface (the same parser, so
    the same options; ~2 us less per ImageNet XML than `etree.fromstring`); a broken one
    is parsed again with `fromstring`, whose error names the right line.
    """
    try:
        parser.feed(data)
        root = parser.close()
    except etree.XMLSyntaxError:
        with contextlib.suppress(etree.XMLSyntaxError):
            parser.close()  # an error inside feed() leaves the document open: end it
    else:
        if root is not None:
            return root
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        line = exc.position[0] if exc.position else None
        raise FormatError(path, f"malformed XML: {exc.msg}", line=line) from None
    if root is None:
        raise FormatError(path, "empty XML document")
    return root


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from the image header only; the pixels are not decoded.

    Uses `imagesize` (JPEG, PNG, BMP, GIF, TIFF, WebP...), which reads a few hundred bytes;
    an unknown or broken header is a `FormatError`.
    """
    try:
        width, height = imagesize.get(path)
    except (OSError, ValueError) as exc:
        raise FormatError(path, f"cannot read image header: {exc}") from None
    if width <= 0 or height <= 0:
        raise FormatError(path, "cannot read image header: unknown format or broken file")
    return int(width), int(height)


def safe_relative(name: str) -> PurePosixPath:
    """Check a path taken from an annotation file: relative, no `..`, no drive letter.

    Example: `safe_relative("train/a.jpg")` -> PurePosixPath("train/a.jpg");
    `safe_relative("../etc/passwd")` raises UserError.
    """
    posix = PurePosixPath(name.replace("\\", "/"))
    if (
        not name
        or posix.is_absolute()
        or PureWindowsPath(name).is_absolute()
        or _DRIVE.match(name)
        or ".." in posix.parts
    ):
        raise UserError(f"unsafe path {name!r}: must be relative without '..'")
    return posix


def file_sha256(path: str | Path) -> str | None:
    """The SHA-256 of a file's bytes (hex), or None when it cannot be read."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    except OSError:
        return None
    return h.hexdigest()


class LineTail:
    """Reads the complete lines appended to a file since the last call (partial lines wait)."""

    def __init__(self, path: Path, start_at_end: bool = False) -> None:
        self.path = path
        self.offset = path.stat().st_size if start_at_end and path.exists() else 0
        self.rest = b""

    def lines(self, final: bool = False) -> list[str]:
        """New lines; `final=True` also returns a last line without a newline."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        data = self.rest + data
        # darknet and tqdm also end lines with a bare CR
        parts = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        self.rest = b"" if final else parts.pop()
        return [p.decode("utf-8", "replace") for p in parts if p or not final]


def copy_atomic(src: str | Path, dest: Path) -> int:
    """Copy `src` to `dest` through a temp file, fsync and rename; returns the size.

    On any error (a full disk) the temp file is removed and `dest` is left as it was.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    size = 0
    try:
        with open(src, "rb") as fin, open(tmp, "wb") as fout:
            while chunk := fin.read(1 << 20):
                fout.write(chunk)
                size += len(chunk)
            fout.flush()
            os.fsync(fout.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return size
