"""`make demo`: the whole job from one pipeline file (cfg/demo.yaml), then the rest of the tool.

1. `yolo-pipeline run cfg/demo.yaml`: a generated Kaggle-layout tree (12 classes of drawn
   objects) -> convert -> 10-class subset -> configs for both engines -> check-cfg -> a real
   Ultralytics training on the CPU -> summary. Its final mAP@0.5 must be above 0.8.
2. The same command again: every stage is skipped, in seconds.
3. With the darknet binary: the same file with `--set train.backend=darknet` (a 100-iteration
   yolov3-tiny run); only check-cfg, train and summarize run.
4. What the chain does not show: check/stats of the subset, a broken real-world cfg caught by
   check-cfg, a pipeline file with a wrong key, COCO and VOC through cfg/coco.yaml and
   cfg/voc.yaml on generated trees.

Usage: python tools/demo.py [OUTDIR]   (default: demo/, where cfg/demo.yaml writes)
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "cfg" / "demo.yaml"
TARGET = 0.8


def step(title: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Print and run one `yolo-pipeline` command."""
    print(f"\n=== {title}\n$ yolo-pipeline {shlex.join(args)}", flush=True)
    done = subprocess.run([sys.executable, "-m", "pipeline", *args], text=True)
    if check and done.returncode != 0:
        raise SystemExit(f"demo step failed ({done.returncode}): {title}")
    return done


def main(out: Path) -> None:
    sets = [] if out == REPO / "demo" else ["--set", f"work={out / 'work'}",
                                             "--set", f"source.path={out / 'imagenet'}"]
    start = time.monotonic()
    step("1. the whole job from cfg/demo.yaml: generate, convert, subset, configs, check-cfg, "
         "train (Ultralytics, CPU), summarize", "run", str(DEMO), *sets)
    minutes = (time.monotonic() - start) / 60
    state = json.loads((out / "work" / "run-state.json").read_text())
    summary = state["stages"]["summarize"]["detail"]
    run_dir = state["stages"]["train"]["detail"]["run_dir"]
    again = time.monotonic()
    step("2. the same command again: every stage is up to date and skipped", "run", str(DEMO), *sets)
    print(f"   (took {time.monotonic() - again:.1f} s)")
    step("   a changed subset rule: the plan says what would be redone (convert is not)",
         "run", str(DEMO), *sets, "--set", "subset.spread=8", "--dry-run")
    ab = REPO / ".darknet-ab" / "darknet"
    if ab.is_file():
        step("3. the same file with AlexeyAB's darknet (make darknet-ab): yolov3-tiny, 60 iterations on "
             "the CPU with -map, then `detector map` per class", "run", str(DEMO), *sets,
             "--set", "train.backend=darknet", "--set", f"train.darknet={ab}")
    elif shutil.which("darknet"):
        step("3. the same file with darknet: yolov3-tiny, 60 iterations on the CPU (configs.max_batches)",
             "run", str(DEMO), *sets, "--set", "train.backend=darknet")
    else:
        print("\n(darknet not installed: the darknet run is skipped; `make demo` installs it via apt)")
    more(out)
    step("7. the trained model, class by class (evaluate: Ultralytics val on best.pt)", "evaluate", run_dir)
    final = summary["final_map50"]
    print(f"\nDemo finished in {minutes:.1f} min (first run).\n"
          f"  Ultralytics run folder: {run_dir}\n"
          f"    yolo-pipeline status {run_dir}\n"
          f"    yolo-pipeline summarize {run_dir} --json\n"
          f"  summary (chart.png, report.md): {summary['out']}\n"
          f"  everything else: {out}\n"
          f"  a live page of every run: yolo-pipeline serve {Path(run_dir).parent} "
          f"(http://127.0.0.1:8765/)\n"
          f"demo final mAP@0.5: {final:.1%} (must be above {TARGET:.0%})")
    if not final > TARGET:
        raise SystemExit(f"the demo training did not learn enough: mAP@0.5 {final:.1%} <= {TARGET:.0%}")


def more(out: Path) -> None:
    """The parts of the tool the chain does not show."""
    subset = out / "work" / "subset"
    step("4. check the subset: every label line, every listed image decoded",
         "check", str(subset), "--decode")
    step("   stats, with a chart of class balance and box sizes",
         "stats", str(subset), "--chart", str(out / "subset-stats.png"))
    step("   a real-world broken cfg is caught, with line numbers (exit 1)",
         "check-cfg", str(REPO / "tests/data/cfg/maskDetectionYolov3_yolo_mask-test.cfg"),
         "--fork", "alexeyab", check=False)
    bad = out / "broken.yaml"
    bad.write_text(DEMO.read_text().replace("  epochs:", "  epoch:"))
    step("   a pipeline file with a wrong key: one line, exit 2, nothing written",
         "run", str(bad), check=False)
    coco = out / "coco"
    if not coco.exists():
        step("5. COCO: a generated COCO-like set (80 categories with id gaps, polygons, crowd RLE)",
             "synth", "coco", str(coco), "--images", "60", "--annotations", "400")
    files = json.dumps([{"json": str(coco / "annotations/instances_train.json"),
                         "images": str(coco / "train"), "split": "train"}])
    step("   cfg/coco.yaml up to the configs, pointed at it", "run", str(REPO / "cfg/coco.yaml"),
         "--set", f"source.files={files}", "--set", f"work={out / 'coco-work'}", "--until", "check-cfg")
    voc = out / "VOCdevkit" / "VOC2007"
    if not voc.exists():
        step("6. VOC: a generated devkit tree (real JPEGs)", "synth", "voc", str(voc), "--images", "40")
    step("   cfg/voc.yaml up to the configs, pointed at it", "run", str(REPO / "cfg/voc.yaml"),
         "--set", f"source.path={voc}", "--set", f"work={out / 'voc-work'}", "--until", "check-cfg")


if __name__ == "__main__":
    main(Path(sys.argv[1]).absolute() if len(sys.argv) > 1 else REPO / "demo")
