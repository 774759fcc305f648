"""io helpers: atomic writes, write_if_changed, header-only image size, safe relative paths."""

import os

import cv2
import numpy as np
import pytest

from pipeline.errors import FormatError, UserError
from pipeline.io import atomic_write, atomic_writer, image_size, safe_relative, write_if_changed


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
