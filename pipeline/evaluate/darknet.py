"""Evaluating a darknet run: `darknet detector map DATA CFG WEIGHTS -dont_show` with the run's
own binary, cfg and .data copies (AlexeyAB, hank-ai); pjreddie has no `map`, so its run is
read from the last `-map` block of its log, if any.

Per class darknet gives AP@0.5 and TP/FP at conf 0.25; images and instances per class are
counted from the labels of the evaluated list (where the fork reads them), so FN, P and R
per class follow. No AP@0.5:0.95.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from pipeline.darknet.fork import choose_fork, resolve_binary
from pipeline.darknet.paths import LABEL_PATH
from pipeline.dataset.datafiles import read_data, read_list, read_names, read_ultralytics_yaml, render_data
from pipeline.dataset.label_lines import label_bytes
from pipeline.errors import NothingDone, UserError
from pipeline.evaluate.darknet_map import MapResult, last_block
from pipeline.evaluate.table import ClassRow, Evaluation, Overall, degenerate_verdict, finite, ratio
from pipeline.io import atomic_write
from pipeline.train.runs import RunFolder


def _in_run(run: RunFolder, path: str) -> Path:
    return Path(path) if os.path.isabs(path) else run.root / path


def pick_weights(run: RunFolder, cfg: Path, choice: str) -> tuple[Path, str | None]:
    """best -> checkpoints/best.weights, else backup/<cfg>_final.weights, else last_good;
    last -> _final, else last_good; else a file. Returns (path, a note on a fallback)."""
    final = run.engine_dir("darknet") / "backup" / f"{cfg.stem}_final.weights"
    order = {"best": [run.checkpoints / "best.weights", final, run.checkpoints / "last_good.weights"],
             "last": [final, run.checkpoints / "last_good.weights"]}
    if choice not in order:
        path = Path(choice).expanduser()
        if not path.is_file():
            raise UserError(f"--weights {choice}: no such file", "give best, last or a .weights file")
        return path.resolve(), None
    for path in order[choice]:
        if path.is_file():
            why = "no -map best" if choice == "best" else "no final weights"
            return path, None if path == order[choice][0] else f"{why}: evaluated {path.name}"
    missing = ", ".join(p.name for p in order[choice])
    raise UserError(f"{run.root}: no weights to evaluate ({missing} missing)",
                    f"has darknet saved any? see `yolo-pipeline status {run.root}`")


def test_list(data_path: Path, source: str | None) -> str | None:
    """The test list: `test=` of the run's or the source .data, else `test:` of a data.yaml
    beside the source .data."""
    for path in (data_path, Path(source) if source else None):
        if path and path.is_file() and (value := read_data(path).get("test")):
            return value
    yaml = Path(source).parent / "data.yaml" if source else None
    if yaml and yaml.is_file():
        value = read_ultralytics_yaml(yaml).get("test")
        return str(value) if isinstance(value, str) else None
    return None


def split_data(run: RunFolder, info: dict, split: str, scratch: Path) -> tuple[Path, str, list[str]]:
    """(the .data darknet reads, the evaluated list, notes); test: a temp .data with valid=test."""
    files = info.get("darknet_files") or {}
    if not files:
        raise UserError(f"{run.root}: run.json has no darknet files")
    data_path = _in_run(run, files["data"])
    data = read_data(data_path)
    notes = []
    if split == "val":
        valid = data.get("valid")
        if not valid or os.path.abspath(valid) == os.path.abspath(data.get("train") or ""):
            notes.append("no separate valid= list: these are the training images")
        return data_path, valid or str(data.get("train")), notes
    test = test_list(data_path, files.get("source_data"))
    if not test:
        raise UserError(f"{data_path}: no test list (no test= here or in the source .data, no test: in "
                        "its data.yaml)", "give --split val, or add test=LIST to the .data")
    temp = scratch / f"{data_path.stem}-test.data"
    atomic_write(temp, render_data(int(data.get("classes") or 0), str(data.get("train")), test,
                                   str(data.get("names")), str(run.engine_dir("darknet") / "backup")))
    return temp, test, notes


def count_labels(images: list[str], fork: str, nc: int) -> tuple[list[int], list[int]]:
    """(images holding each class, boxes of each class) from the labels `fork` reads."""
    rule = LABEL_PATH.get(fork, LABEL_PATH["alexeyab"])
    per_image, boxes = [0] * nc, [0] * nc
    for image in images:
        data = label_bytes(rule(image))
        seen = set()
        for line in (data or b"").splitlines():
            parts = line.split()
            if parts and parts[0].isdigit() and int(parts[0]) < nc:
                boxes[int(parts[0])] += 1
                seen.add(int(parts[0]))
        for c in seen:
            per_image[c] += 1
    return per_image, boxes


def map_command(binary: str, fork: str, data: Path, cfg: Path, weights: Path) -> list[str]:
    """`darknet detector map DATA CFG WEIGHTS -dont_show` (+ `-nocolour` for hank-ai)."""
    cmd = [binary, "detector", "map", str(data), str(cfg), str(weights), "-dont_show"]
    return cmd + (["-nocolour"] if fork == "hank" else [])


def run_map(cmd: list[str], fork: str, log: Path, cwd: Path) -> MapResult:
    """Run `detector map` (hank-ai's CPU build asks `Type "yes"`: it gets "yes"); its block."""
    log.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, input=b"yes\n" if fork == "hank" else b"")
    text = (done.stdout + b"\n--- stderr ---\n" + done.stderr).decode("utf-8", "replace")
    atomic_write(log, text)
    block = last_block(done.stdout.decode("utf-8", "replace"))
    if block is None or not block.classes:
        lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("---")]
        last = lines[-1][:200] if lines else "no output"
        raise NothingDone(f"darknet detector map printed no mAP (exit code {done.returncode}): {last}",
                          f"see {log}")
    return block


def log_block(run: RunFolder) -> MapResult | None:
    """The last `-map` block of the run's attempt logs (newest log first)."""
    for log in reversed(run.attempt_logs()):
        block = last_block(log.read_text(encoding="utf-8", errors="replace"))
        if block is not None and block.classes:
            return block
    return None


def class_rows(block: MapResult, names: list[str], images: list[int], boxes: list[int]) -> list[ClassRow]:
    """darknet's per-class figures with the label counts; P and R at conf 0.25 follow."""
    return [_class_row(row, names, images, boxes) for row in block.classes]


def _class_row(row: ClassRow, names: list[str], images: list[int], boxes: list[int]) -> ClassRow:
    c = row.id
    known = c < len(boxes)
    instances = row.instances if row.instances is not None else (boxes[c] if known else None)
    fn = row.fn
    if fn is None and instances is not None and row.tp is not None:
        fn = instances - row.tp
    detections = None if row.tp is None or row.fp is None else row.tp + row.fp
    precision = row.precision if row.precision is not None else ratio(row.tp, detections)
    recall = row.recall if row.recall is not None else ratio(row.tp, instances)
    return ClassRow(id=c, name=names[c] if c < len(names) else row.name, images=images[c] if known else None,
                    instances=instances, ap50=finite(row.ap50), precision=precision, recall=recall,
                    tp=row.tp, fp=row.fp, fn=fn)


def _binary(info: dict, override: str | None) -> tuple[str, str]:
    """(binary, fork): --darknet PATH and its fork, else the run's own."""
    if override:
        binary = resolve_binary(override)
        return binary, choose_fork(None, binary)[0]
    binary, fork = info["options"].get("darknet"), info["engine"]["fork"]
    if not binary or not os.access(binary, os.X_OK):
        raise UserError(f"the run's darknet binary {binary} is gone", "pass --darknet PATH")
    return binary, fork


def evaluate_darknet(run: RunFolder, info: dict, split: str, choice: str, out: Path,
                     darknet: str | None = None) -> Evaluation:
    """`detector map` of the run's weights on its split (pjreddie: the log's last -map block)."""
    cfg = _in_run(run, info["darknet_files"]["cfg"])
    binary, fork = _binary(info, darknet)
    weights, note = pick_weights(run, cfg, choice)
    with tempfile.TemporaryDirectory(prefix="yolo-pipeline-evaluate-") as tmp:
        data, listed, notes = split_data(run, info, split, Path(tmp))
        names = read_names(read_data(data).get("names") or "")
        images = read_list(listed)
        per_image, boxes = count_labels(images, fork, len(names))
        cmd = map_command(binary, fork, data, cfg, weights)
        if fork == "pjreddie":
            block, cmd = _pjreddie(run, binary, split), None
            source = "the last -map block of the training log: the weights of that iteration"
        else:
            block = run_map(cmd, fork, out / f"darknet-map-{split}.log", Path(tmp))
            source = "darknet detector map"
    rows = class_rows(block, names, per_image, boxes)
    overall = Overall(precision=finite(block.precision), recall=finite(block.recall), f1=finite(block.f1),
                      map50=finite(block.map50), tp=block.tp, fp=block.fp, fn=block.fn,
                      avg_iou=finite(block.avg_iou))
    ev = Evaluation(run=str(run.root), engine="darknet", fork=fork, split=split, weights=str(weights),
                    source=source, images=len(images), classes=rows, overall=overall, command=cmd,
                    conf_thresh=block.conf_thresh or 0.25, notes=[n for n in (note, *notes) if n])
    ev.degenerate = degenerate_verdict(rows, len(images))
    return ev


def _pjreddie(run: RunFolder, binary: str, split: str) -> MapResult:
    """pjreddie's darknet has no `map`: the log's last -map block, else a UserError (exit 2)."""
    block = log_block(run) if split == "val" else None
    if block is None:
        raise UserError(f"pjreddie's darknet ({binary}) has no `detector map` and {run.root}'s log holds no "
                        "-map block: cannot evaluate it",
                        f"evaluate with AlexeyAB's build: yolo-pipeline evaluate {run.root} --darknet PATH")
    return block
