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
    assert list(steps)[:6] == ["convert", "subset", "configs", "check-cfg", "train", "summarize"]
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
    data = ("convert", "subset", "configs", "check-cfg")
    assert first == {**{s: "run" for s in data}, **{s: "outside" for s in first if s not in data}}
    assert first["train"] == first["summarize"] == "outside"
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


# -- the run's identity: what makes the learned model; the rest is applied to the resumed run --

def fake_start(monkeypatch, status: str = "finished", versions: dict | None = None, pid: int | None = None):
    """`start_training` that writes a run folder as a real start would (run.json, state.json)
    and leaves it `finished`, `killed` (status running, no supervisor) or running (`pid`)."""
    import pipeline.train
    from pipeline.runfile.training import cfg_without_length
    from pipeline.train.provenance import provenance
    from pipeline.train.runs import RunFolder

    started = []

    def start(opts, *, detach=False, argv=None, on_progress=None):
        run = RunFolder(opts.out)
        run.root.mkdir(parents=True)
        total, unit = opts.epochs, "epoch"
        if opts.backend == "darknet":
            (cfg,) = opts.cfgdir.glob("*.cfg")
            total, unit = cfg_without_length(cfg)[1], "iteration"
        info = {"run_id": "fake", "backend": opts.backend, "options": opts.as_dict(),
                "total": total, **provenance([])}
        info["versions"].update(versions or {})
        run.run_json.write_text(json.dumps(info))
        done = total if status == "finished" else 1
        run.write_state({"status": "finished" if status == "finished" else "running", "unit": unit,
                         "done": done, "total": total, **({"pid": pid} if pid else {})})
        started.append(opts)
        return 0 if status in ("finished", "running") else 130

    monkeypatch.setattr(pipeline.train, "start_training", start)
    return started


def fake_resume(monkeypatch):
    """`resume_training` that records its changes and finishes the run."""
    import pipeline.train
    from pipeline.train.runs import RunFolder

    calls = []

    def resume(run_dir, *, detach=False, on_progress=None, changes=None):
        calls.append((Path(run_dir), changes))
        run = RunFolder(Path(run_dir))
        state = run.read_state()
        total = (changes or {}).get("epochs") or (changes or {}).get("max_batches") or state["total"]
        run.write_state({**state, "status": "finished", "done": total, "total": total})
        return 0

    monkeypatch.setattr(pipeline.train, "resume_training", resume)
    return calls


def run_dir_of(result) -> Path:
    assert result.exit_code in (0, 1, 130), result.output
    return Path(next(line.split()[-1] for line in result.output.splitlines() if line.startswith("  run ")))


needs_template = pytest.mark.skipif(not TEMPLATE.exists(),
                                    reason="needs the Debian darknet package's templates")


@needs_template
def test_supervision_options_workers_and_device_resume_the_same_run(demo_file, monkeypatch):
    fake_start(monkeypatch, status="killed")
    first = invoke("run", demo_file, "--until", "train")
    run_dir = run_dir_of(first)
    assert first.exit_code == 130 and run_dir.parent.name == "runs"
    calls = fake_resume(monkeypatch)
    sets = ("--set", "train.workers=0", "--set", "train.max_restarts=5", "--set", "train.stall_minutes=60",
            "--until", "train")
    plan = invoke("run", demo_file, *sets, "--dry-run")
    assert (f"train: resumes {run_dir} (killed at 1/1 epochs) with workers 2 -> 0, max_restarts 2 -> 5, "
            "stall_minutes 30.0 -> 60.0") in plan.output, plan.output
    again = invoke("run", demo_file, *sets)
    assert again.exit_code == 0, again.output
    assert calls == [(run_dir, {"workers": 0, "max_restarts": 5, "stall_minutes": 60.0})]
    assert sorted(p.name for p in run_dir.parent.iterdir()) == [run_dir.name]
    assert run_dir_of(again) == run_dir


@needs_template
def test_a_new_engine_version_resumes_with_a_warning(demo_file, monkeypatch):
    import importlib.metadata

    fake_start(monkeypatch, status="killed")
    run_dir = run_dir_of(invoke("run", demo_file, "--until", "train"))
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version",
                        lambda name: "99.0.0" if name == "ultralytics" else real(name))
    calls = fake_resume(monkeypatch)
    again = invoke("run", demo_file, "--until", "train")
    assert again.exit_code == 0, again.output
    assert f"train: resumes {run_dir} (killed at 1/1 epochs); warning: ultralytics " in again.output
    assert ("-> 99.0.0 since it started: it goes on with the new one (--force train starts afresh)"
            in again.output)
    assert calls == [(run_dir, None)]


@needs_template
def test_what_changes_the_learned_model_starts_a_new_run_and_says_why(demo_file, monkeypatch):
    fake_start(monkeypatch)
    run_dir = run_dir_of(invoke("run", demo_file, "--until", "train"))
    plan = invoke("run", demo_file, "--until", "train", "--set", "train.imgsz=96", "--dry-run")
    line = next(x for x in plan.output.splitlines() if x.startswith("train:"))
    assert line.startswith(f"train: new run in {run_dir.parent}/ultralytics-"), line
    assert line.endswith(f"(train.imgsz 640 -> 96; the previous run: {run_dir})"), line


@needs_template
def test_a_finished_run_is_one_message_and_supervision_changes_do_not_retrain_it(demo_file, monkeypatch):
    fake_start(monkeypatch)
    run_dir = run_dir_of(invoke("run", demo_file, "--until", "train"))
    again = invoke("run", demo_file, "--until", "train", "--force", "configs", "--set", "train.workers=0")
    assert again.exit_code == 0, again.output
    train_lines = [x for x in again.output.splitlines() if "train" in x and not x.startswith("  ")]
    assert train_lines == [f"train: skipped ({run_dir} has finished (1/1 epochs): not retrained; "
                           "workers 2 -> 0: nothing to apply it to)"], again.output


@needs_template
def test_more_epochs_continue_a_finished_run_fewer_leave_it(demo_file, monkeypatch):
    fake_start(monkeypatch)
    run_dir = run_dir_of(invoke("run", demo_file, "--until", "train"))
    calls = fake_resume(monkeypatch)
    more = invoke("run", demo_file, "--until", "train", "--set", "train.epochs=3")
    assert more.exit_code == 0, more.output
    assert f"train: continues {run_dir} (finished at 1/1 epochs) with epochs 1 -> 3" in more.output
    assert calls == [(run_dir, {"epochs": 3})]
    fewer = invoke("run", demo_file, "--until", "train", "--set", "train.epochs=2", "--dry-run")
    assert (f"train: skipped ({run_dir} has finished (3/3 epochs): not retrained; it has done 3 epochs, "
            "not fewer than the 2 asked for: --force train trains a fresh 2-epoch run)") in fewer.output


@needs_template
def test_a_larger_max_batches_continues_a_finished_darknet_run(demo_file, monkeypatch):
    darknet = ("--set", "train.backend=darknet", "--set", "configs.max_batches=60", "--until", "train")
    fake_start(monkeypatch)
    run_dir = run_dir_of(invoke("run", demo_file, *darknet))
    assert run_dir.name.startswith("darknet-")
    calls = fake_resume(monkeypatch)
    more = invoke("run", demo_file, *darknet, "--set", "configs.max_batches=100")
    assert more.exit_code == 0, more.output
    assert "configs: runs (options changed: configs.max_batches)" in more.output
    assert (f"train: continues {run_dir} (finished at 60/60 iterations) with max_batches 60 -> 100"
            in more.output), more.output
    assert calls == [(run_dir, {"max_batches": 100})]
    other = invoke("run", demo_file, *darknet, "--set", "configs.max_batches=100",
                   "--set", "configs.burn_in=10", "--dry-run")
    assert "train: run (after check-cfg, which will run)" in other.output  # configs not written yet


@needs_template
def test_after_detach_where_everything_is_names_the_new_run(demo_file, monkeypatch):
    import os

    fake_start(monkeypatch)
    old = run_dir_of(invoke("run", demo_file, "--until", "train"))
    fake_start(monkeypatch, status="running", pid=os.getpid())
    left = invoke("run", demo_file, "--set", "train.imgsz=96", "--detach", "--json")
    assert left.exit_code == 0, left.output
    report = json.loads(left.output)
    new = Path(report["locations"]["run"])
    assert new != old and new.is_dir() and "summary" not in report["locations"]


def test_dry_run_checks_engine_arguments_as_train_does(demo_file, tmp_path):
    result = invoke("run", demo_file, "--set", "train.extra.lr=0.1", "--dry-run")
    assert result.exit_code == 2
    assert ("--set train.extra.lr=0.1: train.extra.lr: engine argument 'lr' is not an Ultralytics train "
            "argument") in result.output and len(result.output.strip().splitlines()) == 1
    real = invoke("run", demo_file, "--set", "train.extra.lr=0.1")  # refused before convert runs
    assert real.exit_code == 2 and not (tmp_path / "work").exists()
    assert not (tmp_path / "raw" / "yolo").exists()


@needs_template
def test_the_change_report_names_the_users_own_keys(demo_file):
    assert invoke("run", demo_file, "--until", "check-cfg").exit_code == 0
    plan = invoke("run", demo_file, "--until", "check-cfg", "--set", "train.backend=darknet", "--dry-run")
    assert "check-cfg: run (options changed: train.backend)" in plan.output, plan.output


def test_a_typo_in_source_path_is_refused_with_the_closest_folder_not_generated(tmp_path):
    (tmp_path / "raw").mkdir()
    text = PIPE.format(template=TEMPLATE).replace("path: raw", "path: raww\n  synth: {classes: 3}")
    (tmp_path / "p.yaml").write_text(text)
    result = invoke("run", tmp_path / "p.yaml")
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert (f"source.path: {tmp_path / 'raww'} does not exist (closest existing: {tmp_path / 'raw'})"
            in result.output)
    assert not (tmp_path / "raww").exists()


def test_synth_generates_only_when_asked_and_says_so_loudly(tmp_path):
    text = PIPE.format(template=TEMPLATE).replace(
        "path: raw", "path: gen\n  synth: {generate: true, classes: 3, annotated: 2, val: 3}")
    (tmp_path / "p.yaml").write_text(text)
    plan = invoke("run", tmp_path / "p.yaml", "--until", "convert", "--dry-run")
    assert f"GENERATES a synthetic tree of drawn shapes at {tmp_path / 'gen'}" in plan.output
    done = invoke("run", tmp_path / "p.yaml", "--until", "convert")
    assert done.exit_code == 0 and "  WARNING: GENERATES a synthetic tree" in done.output
    assert (tmp_path / "gen" / "ILSVRC").is_dir()


# -- the README's key table and the cfg/ files say what the schema says ------------------------

def schema_keys() -> dict[str, object]:
    """Every leaf key of a pipeline file -> its type (sub-keys of source.synth and of each
    source.files entry included)."""
    import typing

    import msgspec

    from pipeline.runfile.load import _unwrap
    from pipeline.runfile.schema import RunFile

    found: dict[str, object] = {}

    def walk(tp: object, prefix: str) -> None:
        for f in msgspec.structs.fields(tp):
            key, inner = f"{prefix}{f.encode_name}", _unwrap(f.type)[0]
            if typing.get_origin(inner) is list:
                inner = typing.get_args(inner)[0]
            if isinstance(inner, type) and issubclass(inner, msgspec.Struct):
                walk(inner, key + ".")
            else:
                found[key] = f
    walk(RunFile, "")
    return found


def readme_rows() -> dict[str, tuple[str, str]]:
    """The README `run` section's key table: key -> (type cell, meaning cell), one entry per
    key of a `a.b` / `.c` row and per sub-key of a `{x, y}` type."""
    import re

    readme = (REPO / "README.md").read_text()
    section = readme.split("### `yolo-pipeline run`")[1].split("\n### ")[0]
    rows: dict[str, tuple[str, str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if not line.startswith("| `") or len(cells) != 3:
            continue
        names = re.findall(r"`([^`]+)`", cells[0])
        keys = [names[0]] + [names[0].rsplit(".", 1)[0] + n for n in names[1:]]
        for subs in re.findall(r"`\{([^}]+)\}`", cells[1]):
            keys += [f"{names[0]}.{sub.strip()}" for sub in subs.split(",")]
        for key in keys:
            rows[key] = (cells[1], cells[2])
    return rows


def literal_choices(field) -> set[str] | None:
    import typing

    from pipeline.runfile.load import _unwrap

    inner = _unwrap(field.type)[0]
    return set(typing.get_args(inner)) if typing.get_origin(inner) is typing.Literal else None


def test_the_readme_key_table_documents_every_key_of_the_schema_with_its_choices():
    keys, rows = schema_keys(), readme_rows()
    assert sorted(set(keys) - set(rows)) == [], "keys of schema.py missing from the README's run table"
    sections = {k.rsplit(".", 1)[0] for k in keys} | {k.split(".")[0] for k in keys}
    assert sorted(set(rows) - set(keys) - sections) == [], "README keys that schema.py does not have"
    for key, field in keys.items():
        choices = literal_choices(field)
        if choices is None:
            continue
        kind = rows[key][0].split(" (")[0]
        assert set(kind.replace("`", "").split("\\|")) == choices, f"README {key}: {kind} vs {choices}"
        default = rows[key][0][len(kind):].strip()
        if default.startswith("(`") and field.default is not None:
            assert default == f"(`{field.default}`)", f"README {key}: default {default} vs {field.default}"


@pytest.mark.parametrize("path", CFG_FILES, ids=lambda p: p.name)
def test_cfg_comments_give_the_schemas_choices(path):
    import re

    from pipeline.runfile.load import parse_yaml

    keys = schema_keys()
    text = path.read_text()
    _, lines = parse_yaml(text, path)
    source = text.splitlines()
    for key, n in lines.items():
        bare = re.sub(r"\[\d+\]", "", key)
        choices = literal_choices(keys[bare]) if bare in keys else None
        comment = source[n - 1].partition("#")[2].strip()
        if choices and comment.startswith("(") and "|" in comment.split(")")[0]:
            assert set(comment[1:].split(")")[0].split("|")) == choices, f"{path.name}:{n}: {comment}"
