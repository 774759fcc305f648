"""`yolo-pipeline run`: every cfg/ file dry-runs; bad files are one line, exit 2, nothing
written; a second run skips every stage; a changed subset rule redoes subset and what
follows, not convert."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import invoke

from pipeline.synth.imagenet import make_imagenet_tree

REPO = Path(__file__).resolve().parents[2]
CFG_FILES = sorted((REPO / "cfg").glob("*.yaml"))
TEMPLATE = Path("/usr/share/darknet/cfg/yolov3-tiny.cfg")


def source_sets(kind: str, tmp_path: Path) -> list[str]:
    """--set values pointing a cfg/ file's source at folders that exist."""
    if kind == "coco":
        for name in ("train.json", "val.json"):
            (tmp_path / name).write_text("{}")
        (tmp_path / "images").mkdir()
        files = [{"json": str(tmp_path / f"{s}.json"), "images": str(tmp_path / "images"), "split": s}
                 for s in ("train", "val")]
        return ["--set", f"source.files={json.dumps(files)}"]
    (tmp_path / "raw").mkdir()
    return ["--set", f"source.path={tmp_path / 'raw'}"]


def test_cfg_holds_the_five_pipeline_files():
    assert {p.name for p in CFG_FILES} >= {"demo.yaml", "imagenet-10class.yaml", "coco.yaml",
                                             "imagenet-10class-darknet.yaml", "voc.yaml"}


@pytest.mark.parametrize("path", CFG_FILES, ids=lambda p: p.name)
def test_every_cfg_file_loads_and_dry_runs(path, tmp_path):
    kind = yaml.safe_load(path.read_text())["source"]["kind"]
    sets = [] if path.name == "demo.yaml" else source_sets(kind, tmp_path)
    work = tmp_path / "work"
    result = invoke("run", path, *sets, "--set", f"work={work}", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    steps = {s["stage"]: s["action"] for s in json.loads(result.output)["steps"]}
    assert list(steps) == ["convert", "subset", "configs", "check-cfg", "train", "summarize"]
    assert steps["convert"] == "run" and steps["summarize"] == "run"
    assert not work.exists()  # a dry run writes nothing


def test_every_key_of_every_cfg_file_has_a_comment():
    for path in CFG_FILES:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            body = line.split("#")[0]
            if ":" in body and not body.lstrip().startswith("- ") and body.strip():
                assert "#" in line or line.startswith("      "), f"{path.name}:{n}: {line}"


PIPE = """\
work: work
source:
  kind: imagenet
  path: raw
subset:
  spread: 2
configs:
  template: {template}
  width: 64
  height: 64
train:
  epochs: 1
"""


@pytest.mark.parametrize(("edit", "expected"), [
    (("spread: 2", "sprad: 2"), "p.yaml:6: subset.sprad: unknown key (did you mean spread?)"),
    (("epochs: 1", "epochs: one"), "p.yaml:12: train.epochs: expected int, got str"),
    (("path: raw", "path: nowhere"), "p.yaml:4: source.path: "),
])
def test_a_bad_file_exits_2_with_one_line_and_writes_nothing(tmp_path, edit, expected):
    (tmp_path / "raw").mkdir()
    (tmp_path / "p.yaml").write_text(PIPE.format(template=TEMPLATE).replace(*edit))
    result = invoke("run", tmp_path / "p.yaml")
    assert result.exit_code == 2
    assert expected in result.output and len(result.output.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.yaml", "raw"]


@pytest.fixture
def demo_file(tmp_path: Path) -> Path:
    make_imagenet_tree(tmp_path / "raw", classes=4, annotated=4, unannotated=1, val=8, jpeg=True)
    path = tmp_path / "p.yaml"
    path.write_text(PIPE.format(template=TEMPLATE))
    return path


def actions(result) -> dict[str, str]:
    assert result.exit_code == 0, result.output
    return {s["stage"]: s["action"] for s in json.loads(result.output)["steps"]}


@pytest.mark.slow
@pytest.mark.skipif(not TEMPLATE.exists(), reason="needs the Debian darknet package's templates")
def test_second_run_skips_and_a_changed_rule_redoes_subset_onwards(demo_file, tmp_path):
    first = actions(invoke("run", demo_file, "--until", "check-cfg", "--json"))
    assert first == {"convert": "run", "subset": "run", "configs": "run", "check-cfg": "run",
                     "train": "outside", "summarize": "outside"}
    state = json.loads((tmp_path / "work" / "run-state.json").read_text())
    assert set(state["stages"]) == {"convert", "subset", "configs", "check-cfg"}
    again = actions(invoke("run", demo_file, "--until", "check-cfg", "--json"))
    assert [again[s] for s in ("convert", "subset", "configs", "check-cfg")] == ["skip"] * 4
    plan = invoke("run", demo_file, "--until", "check-cfg", "--set", "subset.spread=3", "--dry-run")
    assert "subset: run (options changed: subset.spread)" in plan.output
    changed = actions(invoke("run", demo_file, "--until", "check-cfg", "--set", "subset.spread=3", "--json"))
    redone = [changed[s] for s in ("convert", "subset", "configs", "check-cfg")]
    assert redone == ["skip", "run", "run", "run"]
    names = (tmp_path / "work" / "configs" / "subset.names").read_text().splitlines()
    assert len(names) == 3
    forced = actions(invoke("run", demo_file, "--until", "configs", "--set", "subset.spread=3",
                            "--force", "convert", "--json"))
    assert [forced[s] for s in ("convert", "subset", "configs")] == ["run"] * 3


@pytest.mark.slow
@pytest.mark.skipif(not TEMPLATE.exists(), reason="needs the Debian darknet package's templates")
def test_a_deleted_output_or_a_changed_download_redoes_the_stage(demo_file, tmp_path):
    actions(invoke("run", demo_file, "--until", "configs", "--json"))
    (tmp_path / "work" / "configs" / "train.txt").unlink()
    plan = invoke("run", demo_file, "--until", "configs", "--dry-run")
    assert "configs: run (output missing or changed: " in plan.output
    assert "subset: skipped" in plan.output
    extra = tmp_path / "raw" / "ILSVRC" / "Annotations" / "CLS-LOC" / "train" / "n99999999"
    extra.mkdir()
    plan = invoke("run", demo_file, "--until", "configs", "--dry-run")
    assert "convert: run (inputs changed: source)" in plan.output
