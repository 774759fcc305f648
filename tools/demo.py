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
    print(f"\nDemo finished: everything is under {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "demo").absolute())
