"""io helpers: atomic writes, write_if_changed, header-only image size, safe relative paths."""

import os

import cv2
import numpy as np
import pytest

from pipeline.errors import FormatError, UserError
from pipeline.io import (
    atomic_write,
    atomic_writer,
    decode_text,
    image_size,
    read_file,
    read_text,
    safe_relative,
    update_file,
    write_if_changed,
)


def test_atomic_write_leaves_no_temp_and_keeps_old_file_on_error(tmp_path):
    target = tmp_path / "a" / "list.txt"
    atomic_write(target, "one\n")
    with pytest.raises(RuntimeError), atomic_writer(target) as f:
        f.write("half")
        raise RuntimeError("killed")
    assert target.read_text() == "one\n"
    assert os.listdir(target.parent) == ["list.txt"]


def test_write_if_changed(tmp_path):
    path = str(tmp_path / "l.txt")
    assert write_if_changed(path, b"0 0.5 0.5 0.1 0.1\n", exists=False)
    mtime = os.stat(path).st_mtime_ns
    assert not write_if_changed(path, b"0 0.5 0.5 0.1 0.1\n")
    assert os.stat(path).st_mtime_ns == mtime
    with open(path, "wb") as f:
        f.write(b"0 0.5")  # left short
    assert write_if_changed(path, b"0 0.5 0.5 0.1 0.1\n")
    assert write_if_changed(path, b"0 0.5 0.5 0.1 0.1\nextra")
    with open(path, "rb") as f:
        assert f.read() == b"0 0.5 0.5 0.1 0.1\nextra"



def same_file_state(st: os.stat_result, path) -> bool:
    now = os.stat(path)
    return (st.st_size, st.st_mtime_ns, st.st_ino) == (now.st_size, now.st_mtime_ns, now.st_ino)


@pytest.mark.parametrize("size", [0, 600, 200_000])
def test_read_file_gives_all_bytes_and_the_stat_of_what_it_read(tmp_path, size):
    path = tmp_path / "a.xml"
    path.write_bytes(os.urandom(size))
    data, st = read_file(str(path))
    assert data == path.read_bytes() and same_file_state(st, path)
    with pytest.raises(IsADirectoryError):
        read_file(str(tmp_path))


def test_update_file_gives_the_stat_after_writing_or_checking(tmp_path):
    path = str(tmp_path / "l.txt")
    written, st = update_file(path, b"0 0.5 0.5 0.1 0.1\n", exists=False)
    assert written and same_file_state(st, path)
    os.utime(path, ns=(1, 1))  # an old file with the right bytes: left as it is
    written, st = update_file(path, b"0 0.5 0.5 0.1 0.1\n")
    assert not written and st.st_mtime_ns == 1 and same_file_state(st, path)
    written, st = update_file(path, b"1 0.5 0.5 0.1 0.1\n")
    assert written and st.st_mtime_ns != 1 and same_file_state(st, path)

@pytest.mark.parametrize("ext", [".jpg", ".png", ".bmp"])
def test_image_size_from_header(tmp_path, ext):
    path = tmp_path / f"x{ext}"
    cv2.imwrite(str(path), np.zeros((37, 53, 3), np.uint8))
    assert image_size(path) == (53, 37)


@pytest.mark.parametrize("content", [b"", b"not an image", None])
def test_image_size_broken(tmp_path, content):
    path = tmp_path / "x.jpg"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(FormatError, match="cannot read image header"):
        image_size(path)


@pytest.mark.parametrize("name", ["a.jpg", "train/a.jpg", "x\\\\y.jpg"])
def test_safe_relative_accepts(name):
    assert not safe_relative(name).is_absolute()


@pytest.mark.parametrize(
    "name", ["", "/etc/passwd", "../a.jpg", "a/../../b.jpg", "C:\\\\x.jpg", "c:x.jpg", "\\\\srv\\\\x"]
)
def test_safe_relative_rejects(name):
    with pytest.raises(UserError):
        safe_relative(name)


def test_atomic_writer_keeps_non_utf8_file_names(tmp_path):
    name = os.fsdecode(b"caf\xe9.jpg")  # a Latin-1 name as Linux hands it over
    with atomic_writer(tmp_path / "list.txt") as f:
        f.write(f"/data/{name}\n")
    assert (tmp_path / "list.txt").read_bytes() == b"/data/caf\xe9.jpg\n"


@pytest.mark.parametrize(("data", "text"), [
    (b"a\nb\n", "a\nb\n"),
    (b"\xef\xbb\xbfa\n", "a\n"),  # UTF-8 BOM dropped
    ("a\u00e9\n".encode("utf-16"), "a\u00e9\n"),  # UTF-16 with its BOM (Excel's "Unicode text")
    ("a\n".encode("utf-16-be"), "\x00a\x00\n"),  # no BOM: read as UTF-8, NULs and all
])
def test_decode_text(data, text):
    assert decode_text(data, "f.txt", "names") == text


def test_decode_text_names_file_line_and_offset():
    with pytest.raises(FormatError) as err:
        decode_text(b"\xef\xbb\xbfok\nn0 caf\xe9\n", "/d/x.txt", "synset mapping")
    assert str(err.value) == "/d/x.txt:2: not UTF-8 text: bad byte at offset 12 of this synset mapping file"
    assert decode_text(b"caf\xe9\n", "x", "list", keep_bad_bytes=True) == "caf\udce9\n"
    assert decode_text(b"\xff\xfe\n", "x", "list", keep_bad_bytes=True) == "\udcff\udcfe\n"
    with pytest.raises(FormatError, match="not UTF-16 text after its byte order mark"):
        decode_text(b"\xff\xfe\n", "x", "list")


def test_read_text_unreadable_is_one_user_error(tmp_path):
    with pytest.raises(UserError, match=f"cannot read names file {tmp_path}: Is a directory"):
        read_text(tmp_path, "names")


def test_atomic_writer_keeps_the_umask_mode(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o640
    os.umask(0o002)
    try:
        atomic_write(tmp_path / "b.txt", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "b.txt").stat().st_mode & 0o777 == 0o664
