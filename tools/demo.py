"""`make demo`: every stage of the pipeline on a small generated dataset, commands shown.

Usage: python tools/demo.py OUTDIR   (OUTDIR is wiped and rebuilt)
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def step(title: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Print and run one `yolo-pipeline` command."""
    print(f"\n=== {title}\n$ yolo-pipeline {shlex.join(args)}", flush=True)
    done = subprocess.run([sys.executable, "-m", "pipeline", *args], text=True)
    if check and done.returncode != 0:
        raise SystemExit(f"demo step failed ({done.returncode}): {title}")
    return done


def show(title: str, text: str) -> None:
    print(f"\n=== {title}\n{text.rstrip()}", flush=True)


def main(out: Path) -> None:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    raw = out / "imagenet"
    step("1. generate a Kaggle-layout ImageNet tree (8 classes, real JPEGs)",
         "synth", "imagenet", str(raw), "--classes", "8", "--annotated", "24", "--unannotated", "6",
         "--val", "40")
    step("2. convert it: YOLO labels beside the images, lists, manifest",
         "convert", "imagenet", str(raw), "--workers", "2")
    step("   the same command again: nothing is rewritten", "convert", "imagenet", str(raw))
    train = raw / "yolo" / "train.txt"
    first = Path(train.read_text().splitlines()[0])
    show(f"   a label beside its image: {first.with_suffix('.txt')}", first.with_suffix(".txt").read_text())
    manifest = json.loads((raw / "yolo" / "manifest.json").read_text())
    info = manifest["splits"]["train"]
    show("   manifest.json (train split, abridged)", json.dumps(
        {k: info[k] for k in ("list_file", "images", "boxes", "unannotated", "labels_written")}, indent=2))
    sub = out / "sub4"
    step("3. choose 4 distinct classes (dry run), then build the subset: symlinks + remapped labels",
         "subset", str(raw / "yolo"), "--spread", "4", "--dry-run")
    step("   build it", "subset", str(raw / "yolo"), "--spread", "4", "--out", str(sub))
    step("   check it: every label line, every listed image (decoded)", "check", str(sub), "--decode")
    step("   stats, with a chart of class balance and box sizes",
         "stats", str(sub), "--chart", str(sub / "stats.png"))
    dataset = sub
    cfg = out / "cfg"
    step("4. darknet + Ultralytics files, each value with its reason",
         "configs", str(dataset), "--template", "yolov3-tiny", "--out", str(cfg), "--name", "demo")
    step("   check them for the darknet on this machine (0 = clean)",
         "check-cfg", str(cfg / "demo.cfg"), "--data", str(cfg / "demo.data"), check=False)
    step("   a real-world broken cfg is caught, with line numbers (exit 1)",
         "check-cfg", str(REPO / "tests/data/cfg/maskDetectionYolov3_yolo_mask-test.cfg"),
         "--darknet", "alexeyab", check=False)
    runs = [str(REPO / "tests/data/logs/fire-detection_log.txt")]
    if shutil.which("darknet"):
        smoke = out / "darknet-smoke"
        step("5. a 10-iteration darknet training on the demo data (real binary, CPU)",
             "configs", str(dataset), "-t", "yolov3-tiny", "-o", str(smoke), "--name", "smoke",
             "--width", "160", "--height", "160", "--batch", "2", "--subdivisions", "1",
             "--max-batches", "10")
        log = smoke / "train.log"
        with open(log, "w") as f:
            subprocess.run(["stdbuf", "-oL", "-eL", "darknet", "detector", "train", str(smoke / "smoke.data"),
                            str(smoke / "smoke.cfg")], stdout=f, stderr=subprocess.STDOUT, cwd=smoke,
                           timeout=300, check=False)
        show("   its last log lines", "".join(log.read_text(errors="replace").splitlines(True)[-3:]))
        runs.insert(0, str(log))
    else:
        print("\n(darknet not installed: the darknet smoke run is skipped; `make demo` installs it via apt)")
    for run in runs:
        name = Path(run).parent.name if Path(run).name == "train.log" else Path(run).stem
        step(f"6. summarize {name}: loss/mAP tables, chart.png, report.md, projected finish",
             "summarize", run, "--out", str(out / "summary" / name))
    coco = out / "coco"
    step("7. COCO: a generated COCO-like set (80 categories with id gaps, polygons, crowd RLE, JPEGs)",
         "synth", "coco", str(coco), "--images", "60", "--annotations", "400")
    step("   convert it with COCO's 80-class ids: labels beside the images, list, manifest",
         "convert", "coco", str(coco / "annotations/instances_train.json"), "--images", str(coco / "train"),
         "--ids", "coco80", "--workers", "2")
    broken = coco / "annotations/instances_broken.json"
    broken.write_bytes((coco / "annotations/instances_train.json").read_bytes()[:4000])
    step("   a truncated JSON: one line, exit code 2", "convert", "coco", str(broken),
         "--images", str(coco / "train"), check=False)
    voc = out / "VOCdevkit" / "VOC2007"
    step("8. VOC: a generated devkit tree (real JPEGs)", "synth", "voc", str(voc), "--images", "40")
    step("   convert trainval + test; labels also where darknet looks",
         "convert", "voc", str(voc), "--darknet-labels", "--workers", "2")
    print(f"\nDemo finished: everything is under {out}  (charts: {out / 'summary'}/*/chart.png)")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "demo").absolute())
