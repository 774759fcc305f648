"""Benchmark: `convert coco` vs Ultralytics' `convert_coco` vs the orjson floor, on one file.

The file is generated (`pipeline.synth_coco`): ~110 MB, 29,600 images, 215,000 annotations
with polygons and ~1% crowd RLE, i.e. 25% of train2017. Each contender runs as its own
process, alternately, REPEATS times; the table gives medians. Memory: the peak RSS of the
largest process of the run (from `wait4`, as the kernel counts it), and the peak of the
summed PSS over the process tree (sampled every 0.25 s; PSS splits pages that forked workers
share, so it is what the whole run really holds). Labels are deleted between runs, so
every run writes all its files.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
IMAGES, ANNOTATIONS = 29_600, 215_000
PSS_EVERY = 0.25  # s; reading smaps costs CPU, sampling faster slows the runs on a small machine

FLOOR = """
import orjson, os, sys
data = orjson.loads(open(sys.argv[1], "rb").read())
out = sys.argv[2]
for image in data["images"]:
    with open(os.path.join(out, os.path.splitext(image["file_name"])[0] + ".txt"), "wb") as f:
        f.write(b"0 0.500000 0.500000 0.250000 0.250000\\n")
"""

ULTRALYTICS = """
import sys
from pipeline.ultralytics_env import offline_ultralytics
offline_ultralytics()
from ultralytics.data.converter import convert_coco
convert_coco(labels_dir=sys.argv[1], save_dir=sys.argv[2], use_segments=False, cls91to80=True)
"""

IMPORT_ONLY = """
from pipeline.ultralytics_env import offline_ultralytics
offline_ultralytics()
import ultralytics.data.converter
"""


#: Runs argv[2:] as its child and writes the child's peak RSS (KiB, from wait4) to argv[1]. The
#: measured command so starts from this small process: a fork (or vfork) of the big bench
#: process would count the bench's own pages in the command's peak.
LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
open(sys.argv[1], "w").write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def measure(cmd: list[str], scratch: Path) -> tuple[float, float, float]:
    """Wall seconds, peak RSS of the largest process (MiB), peak summed PSS of the tree (MiB)."""
    rss_file = scratch / "maxrss.txt"
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(rss_file), *cmd],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    launcher = psutil.Process(proc.pid)
    peak_pss = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak_pss
        while not done.is_set():
            total = 0
            try:
                for p in launcher.children(recursive=True):
                    total += p.memory_full_info().pss
            except psutil.Error:
                pass
            peak_pss = max(peak_pss, total)
            time.sleep(PSS_EVERY)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    _, err = proc.communicate()
    elapsed = time.perf_counter() - start
    done.set()
    thread.join()
    if proc.returncode:
        raise SystemExit(f"{cmd[:4]} failed ({proc.returncode}): {err.decode()[-2000:]}")
    return elapsed, int(rss_file.read_text()) / 1024, peak_pss / 2**20


def _prepare(work: Path) -> tuple[Path, Path]:
    """Generate the file and placeholder images once (in a child process: the bench stays small)."""
    stamp = work / "params.json"
    js = work / "annotations" / "instances_synth.json"
    images = work / "images"
    params = {"images": IMAGES, "annotations": ANNOTATIONS, "seed": 0}
    if not (stamp.is_file() and json.loads(stamp.read_text()) == params and js.is_file()):
        shutil.rmtree(work, ignore_errors=True)
        code = ("import sys; from pipeline.synth_coco import make_coco_json, make_coco_images; "
                f"p = make_coco_json(sys.argv[1], images={IMAGES}, annotations={ANNOTATIONS}); "
                "make_coco_images(p, sys.argv[2])")
        subprocess.run([sys.executable, "-c", code, str(js), str(images)], check=True)
        work.mkdir(parents=True, exist_ok=True)
        stamp.write_text(json.dumps(params))
    return js, images


def _clean(images: Path, *folders: Path) -> None:
    for entry in os.scandir(images):
        if entry.name.endswith(".txt"):
            os.unlink(entry.path)
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def _count_lines(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*.txt")]
    return len(files), sum(p.read_bytes().count(b"\n") for p in files)


def run(workdir: Path) -> str:
    """Generate the file once, run every contender REPEATS times alternately, return markdown."""
    js, images = _prepare(workdir)
    size_mb = js.stat().st_size / 2**20
    out, ultra, floor = workdir / "yolo", workdir / "ultralytics", workdir / "floor"
    py = sys.executable
    cores = os.cpu_count() or 1
    contenders = {
        f"yolo-pipeline convert coco (-j {cores})":
            [py, "-m", "pipeline", "-q", "convert", "coco", str(js), "--images", str(images),
             "--out", str(out), "-j", str(cores)],
        "yolo-pipeline convert coco (-j 1)":
            [py, "-m", "pipeline", "-q", "convert", "coco", str(js), "--images", str(images),
             "--out", str(out), "-j", "1"],
        "orjson floor (loads + one fixed file per image)": [py, "-c", FLOOR, str(js), str(floor)],
        "Ultralytics 8.4 convert_coco": [py, "-c", ULTRALYTICS, str(js.parent), str(ultra)],
        "(Ultralytics import alone)": [py, "-c", IMPORT_ONLY],
    }
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in contenders}
    counts: dict[str, tuple[int, int]] = {}
    names = list(contenders)
    for round_ in range(REPEATS):
        for name in names[round_ % len(names):] + names[: round_ % len(names)]:
            _clean(images, out, ultra, floor)
            floor.mkdir(parents=True)
            results[name].append(measure(contenders[name], workdir))
            print(f"  {name}: {results[name][-1][0]:.2f} s", flush=True)
            if name.startswith("yolo-pipeline") and name not in counts:
                counts["ours"] = _count_lines(images)
            elif name.startswith("Ultralytics"):
                counts["ultralytics"] = _count_lines(ultra)
    _clean(images, out, ultra, floor)
    med = {name: tuple(statistics.median(r[i] for r in runs) for i in range(3))
           for name, runs in results.items()}
    ours, floor_t, ultra_t = med[names[0]][0], med[names[2]][0], med[names[3]][0]
    rows = [
        f"| {name} | {t:.2f} | {' / '.join(f'{r[0]:.1f}' for r in results[name])} | {rss:,.0f} | "
        f"{rss / size_mb:.2f}x | {pss:,.0f} |"
        for name, (t, rss, pss) in med.items()
    ]
    return "\n".join([
        "## convert coco",
        "",
        f"Generated COCO-like file: {size_mb:,.1f} MiB, {IMAGES:,} images, {ANNOTATIONS:,} annotations "
        f"(polygons, ~1% crowd RLE). Medians of {REPEATS} alternating runs; {cores} cores. "
        "Times are whole processes (interpreter start and imports included); on a machine "
        "shared with other jobs, the 29,600 file creations that every contender pays swing most.",
        "",
        "| contender | median time (s) | each run (s) | peak RSS, largest process (MiB) | "
        "RSS / JSON size | peak PSS, whole tree (MiB) |",
        "|---|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"- vs the orjson floor: {floor_t / ours:.2f}x faster (target: faster); vs Ultralytics "
        f"convert_coco: {ultra_t / ours:.1f}x faster (target: at least 4x); peak RSS "
        f"{med[names[0]][1] / size_mb:.2f}x the JSON size (target: at most 2.5x).",
        f"- Label files / lines written: this converter {counts['ours'][0]:,} / {counts['ours'][1]:,}; "
        f"Ultralytics {counts['ultralytics'][0]:,} / {counts['ultralytics'][1]:,} (both skip crowd; "
        "this converter also clips boxes to the image and lists only images found on disk).",
        "",
    ])
