"""The mutations of tools/fuzz.py: seeded changes to one file's bytes, or to the file itself.

Each byte mutation is `f(rng, data) -> data`, deterministic for a seeded `random.Random`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path


def _pos(rng: random.Random, data: bytes) -> int:
    return rng.randrange(len(data) + 1)


def _lines(rng: random.Random, data: bytes) -> tuple[list[bytes], int]:
    lines = data.splitlines(keepends=True) or [b""]
    return lines, rng.randrange(len(lines))


def truncate(rng, data):
    return data[: _pos(rng, data)]


def flip_bytes(rng, data):
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if out:
            out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def bad_utf8(rng, data):
    at = _pos(rng, data)
    return data[:at] + rng.choice([b"\xff", b"\xe9", b"\xc3(", b"\xed\xa0\x80", b"\x80\x80"]) + data[at:]


def utf8_bom(rng, data):
    return b"\xef\xbb\xbf" + data


def utf16(rng, data):
    return data.decode("utf-8", "replace").encode(rng.choice(["utf-16", "utf-16-le"]))


def huge_field(rng, data):
    at = _pos(rng, data)
    return data[:at] + rng.choice([b"9", b"a", b"n01440764 ", b"\"", b" "]) * 200_000 + data[at:]


def deep_nesting(rng, data):
    depth = rng.choice([1_100, 5_000, 50_000])
    kind = rng.choice([(b"[", b"]"), (b'{"a":', b"}"), (b"<a>", b"</a>")])
    nest = kind[0] * depth + b"1" + kind[1] * depth
    if data.lstrip().startswith(b"{") and rng.random() < 0.7:  # a key the schema ignores: still parsed
        at = data.index(b"{") + 1
        return data[:at] + b'"deep": ' + nest + b"," + data[at:]
    at = _pos(rng, data)
    return data[:at] + nest + data[at:]


def long_polygon(rng, data):
    starts = [i for i in range(len(data) - 1) if data[i : i + 2] == b"[["]
    if not starts:
        return huge_field(rng, data)
    at = rng.choice(starts) + 1
    n = rng.choice([10_000, 100_000])
    part = b"[" + b",".join(b"%d,%d" % (i % 640, i // 640) for i in range(n)) + b"],"
    return data[:at] + part + part.replace(b"[", b"[3,") + data[at:]


def duplicate_lines(rng, data):
    lines, i = _lines(rng, data)
    return b"".join(lines[:i] + [lines[i]] * rng.choice([2, 50, 5_000]) + lines[i:])


def many_lines(rng, data):
    lines = [b"x%d\n" % i for i in range(rng.choice([1_000, 100_000]))]
    return data + b"".join(lines)


def drop_line(rng, data):
    lines, i = _lines(rng, data)
    return b"".join(lines[:i] + lines[i + 1 :])


def swap_lines(rng, data):
    lines, i = _lines(rng, data)
    j = rng.randrange(len(lines))
    lines[i], lines[j] = lines[j], lines[i]
    return b"".join(lines)


def odd_number(rng, data):
    digits = [i for i, b in enumerate(data) if 48 <= b <= 57]
    if not digits:
        return data
    at = rng.choice(digits)
    return data[:at] + rng.choice([b"-1", b"1e999", b"nan", b"-0", b"99999999999999999999999", b"0x10",
                                   b"", b"1.5.5", b"inf"]) + data[at + 1 :]


def nul_byte(rng, data):
    at = _pos(rng, data)
    return data[:at] + b"\0" + data[at:]


def crlf(rng, data):
    return data.replace(b"\n", rng.choice([b"\r\n", b"\r"]))


def empty(rng, data):
    return b""


def comment_lines(rng, data):
    lines, i = _lines(rng, data)
    return b"".join(lines[:i] + [b"# a comment\n", b"\n", b"   \n"] + lines[i:])


BYTE_MUTATIONS: dict[str, Callable[[random.Random, bytes], bytes]] = {
    f.__name__: f for f in (truncate, flip_bytes, bad_utf8, utf8_bom, utf16, huge_field, deep_nesting,
                            long_polygon, duplicate_lines, many_lines, drop_line, swap_lines, odd_number,
                            nul_byte, crlf, empty, comment_lines)
}
#: Mutations of the file itself rather than its bytes.
FILE_MUTATIONS = ("folder", "dangling_link", "link_loop")


def mutate(path: Path, name: str, rng: random.Random) -> None:
    """Apply mutation `name` to `path` (a file of the workspace)."""
    if name in FILE_MUTATIONS:
        path.unlink()
        if name == "folder":
            path.mkdir()
        else:
            path.symlink_to(path if name == "link_loop" else path.with_name("gone." + path.name))
        return
    path.write_bytes(BYTE_MUTATIONS[name](rng, path.read_bytes()))
