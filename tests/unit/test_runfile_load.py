"""Pipeline files: schema errors name FILE:LINE and the key; --set is typed by the schema."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.errors import PipelineError
from pipeline.runfile.load import load_runfile

BASE = """\
work: w
source:
  kind: imagenet
  path: raw
subset:
  spread: 2
train:
  epochs: 3
  device: "0"
"""


@pytest.fixture
def pfile(tmp_path: Path):
    (tmp_path / "raw").mkdir()

    def write(text: str = BASE) -> Path:
        path = tmp_path / "p.yaml"
        path.write_text(text)
        return path
    return write


def error_of(path: Path, sets: tuple[str, ...] = ()) -> str:
    with pytest.raises(PipelineError) as info:
        load_runfile(path, sets)
    return str(info.value)


def test_paths_are_relative_to_the_file_and_set_paths_to_the_current_folder(pfile, tmp_path, monkeypatch):
    spec = load_runfile(pfile()).spec
    assert (spec.work, spec.source.path) == (str(tmp_path / "w"), str(tmp_path / "raw"))
    elsewhere = tmp_path / "cwd"
    (elsewhere / "raw2").mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    spec = load_runfile(pfile(), ("source.path=raw2", "work=out")).spec
    assert (spec.source.path, spec.work) == (str(elsewhere / "raw2"), str(elsewhere / "out"))


@pytest.mark.parametrize(("text", "expected"), [
    (BASE.replace("epochs: 3", "epoch: 3"), "p.yaml:8: train.epoch: unknown key (did you mean epochs?)"),
    (BASE.replace("spread: 2", "sprad: 2"), "p.yaml:6: subset.sprad: unknown key (did you mean spread?)"),
    (BASE.replace("epochs: 3", "epochs: three"), "p.yaml:8: train.epochs: expected int, got str"),
    (BASE.replace("kind: imagenet", "kind: imagenett"),
     "p.yaml:3: source.kind: Invalid enum value 'imagenett'"),
    (BASE.replace("path: raw", "path: missing"), "p.yaml:4: source.path: "),
    (BASE + "  epochs: 4\n", "p.yaml:10: train.epochs: duplicate key (first at line 8)"),
    (BASE.replace("spread: 2", "seed: 2"), "p.yaml:5: subset: no class rule"),
    (BASE.replace("  path: raw\n", "  path: raw\n  ids: coco80\n"),
     "p.yaml:5: source.ids: not used by kind imagenet"),
    (BASE.replace("subset:\n", "subset: [\n"), "p.yaml:"),
])
def test_a_bad_file_is_one_line_naming_file_line_and_key(pfile, text, expected):
    message = error_of(pfile(text))
    assert expected in message and "\n" not in message


@pytest.mark.parametrize(("item", "expected"), [
    ("train.epochs=ten", "--set train.epochs=ten: train.epochs: expected int, got str"),
    ("train.epoch=1", "--set train.epoch=1: train.epoch: unknown key (did you mean epochs?)"),
    ("subset.spread.x=1", "--set subset.spread.x=1: subset.spread has no sub-keys"),
    ("train.epochs", "--set train.epochs: expected KEY=VALUE"),
    ("source.path=nowhere", "--set source.path=nowhere: source.path: "),
])
def test_a_bad_set_names_itself(pfile, item, expected):
    assert expected in error_of(pfile(), (item,))


def test_set_values_take_the_schema_type(pfile):
    spec = load_runfile(pfile(), ("train.epochs=7", "train.device=1", "subset.classes=a, b",
                                  "train.extra.lr0=0.02", "train.extra.mosaic=0", "configs.name=007",
                                  "subset.max_per_class=null")).spec
    assert spec.train.epochs == 7 and spec.train.device == 1
    assert spec.subset.classes == ["a", "b"] and spec.configs.name == "007"
    assert spec.train.extra == {"lr0": 0.02, "mosaic": 0} and spec.subset.max_per_class is None


def test_a_set_section_that_the_file_lacks_is_created(pfile):
    spec = load_runfile(pfile(BASE.replace("subset:\n  spread: 2\n", "")), ("subset.top=3",)).spec
    assert spec.subset is not None and spec.subset.top == 3


def test_synth_allows_a_missing_source_path_only_when_it_says_generate(pfile, tmp_path):
    text = BASE.replace("path: raw", "path: gen\n  synth: {generate: true, classes: 3}")
    spec = load_runfile(pfile(text)).spec
    assert spec.source.synth.classes == 3 and not os.path.exists(spec.source.path)
    message = error_of(pfile(text.replace("generate: true, ", "")))
    assert f"p.yaml:4: source.path: {tmp_path / 'gen'} does not exist" in message
    assert "source.synth.generate: true" in message and "\n" not in message


@pytest.mark.parametrize(("path", "closest"), [
    ("raww", "raw"), ("Raw", "raw"), ("raw2/ILSVRC", "raw"), ("elsewhere", None),
])
def test_a_missing_path_names_the_closest_existing_folder(pfile, tmp_path, path, closest):
    (tmp_path / "raw.txt").write_text("a file is not a download")
    message = error_of(pfile(BASE.replace("path: raw", f"path: {path}")))
    assert f"source.path: {tmp_path / path} does not exist" in message
    assert (f"(closest existing: {tmp_path / closest})" in message) if closest else "closest" not in message


@pytest.mark.parametrize("content, words", [
    (b"work: " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested too deeply"),
    (b"work: x\nsource:\n  kind: imagenet\n  path: \xff\xfe\xfa\n", "not UTF-8 text"),
    (b"\xef\xbb\xbfwork: [1\n", "not valid YAML"),
])
def test_hostile_pipeline_files_are_one_line_errors(tmp_path, content, words):
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(content)
    with pytest.raises(PipelineError, match=words):
        load_runfile(bad)
