"""Benchmark: `convert coco` vs Ultralytics' `convert_coco` vs the orjson floor, on one file.

The file is generated (`pipeline.synth.coco`): ~110 MB, 29,600 images, 215,000 annotations
with polygons and ~1% crowd RLE, i.e. 25% of train2017. Each contender runs as its own
process, alternately, REPEATS times; the table gives medians. Memory: the peak RSS of the
largest process of the run (from `wait4`, as the kernel counts it), and the peak of the
summed PSS over the process tree (sampled every 0.25 s; PSS splits pages that forked workers
share, so it is what the whole run really holds). Labels are deleted between runs, so
every run writes all its files (and the file system is synced before each run); one more
row times this converter's rerun, which reads its labels instead of creating them. The main
table runs on tmpfs where there is room (see `_scratch`); one round on the disk follows.
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

IO_ONLY = """
import os, sys
out = sys.argv[2]
for n in range(int(sys.argv[1])):
    with open(os.path.join(out, f"{n:012d}.txt"), "wb") as f:
        f.write(b"0 0.500000 0.500000 0.250000 0.250000\\n")
"""

ULTRALYTICS = """
import sys
from pipeline.ultralytics.env import offline_ultralytics
offline_ultralytics()
from ultralytics.data.converter import convert_coco
convert_coco(labels_dir=sys.argv[1], save_dir=sys.argv[2], use_segments=False, cls91to80=True)
"""

IMPORT_ONLY = """
from pipeline.ultralytics.env import offline_ultralytics
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


def _prepare(work: Path, copy_from: Path | None = None) -> tuple[Path, Path]:
    """The file and placeholder images under `work`: generated once (in a child process, so the
    bench stays small), or copied from an earlier `_prepare` folder."""
    stamp = work / "params.json"
    js = work / "annotations" / "instances_synth.json"
    images = work / "images"
    params = {"images": IMAGES, "annotations": ANNOTATIONS, "seed": 0}
    if stamp.is_file() and json.loads(stamp.read_text()) == params and js.is_file():
        return js, images
    shutil.rmtree(work, ignore_errors=True)
    if copy_from is None:
        code = ("import sys; from pipeline.synth.coco import make_coco_json, make_coco_images; "
                f"p = make_coco_json(sys.argv[1], images={IMAGES}, annotations={ANNOTATIONS}); "
                "make_coco_images(p, sys.argv[2])")
        subprocess.run([sys.executable, "-c", code, str(js), str(images)], check=True)
    else:
        js.parent.mkdir(parents=True)
        shutil.copy(copy_from / "annotations" / js.name, js)
        images.mkdir()
        for entry in os.scandir(copy_from / "images"):
            if not entry.name.endswith(".txt"):
                open(os.path.join(images, entry.name), "wb").close()
    stamp.write_text(json.dumps(params))
    return js, images


def _clean(images: Path, *folders: Path) -> None:
    for entry in os.scandir(images):
        if entry.name.endswith(".txt"):
            os.unlink(entry.path)
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def _count_lines(folder: Path) -> tuple[int, int]:
    files = list(folder.rglob("*.txt"))
    return len(files), sum(p.read_bytes().count(b"\n") for p in files)


def _contenders(base: Path, cores: int) -> dict[str, list[str]]:
    js, images = base / "annotations" / "instances_synth.json", base / "images"
    py = sys.executable
    ours = [py, "-m", "pipeline", "-q", "convert", "coco", str(js), "--images", str(images),
            "--out", str(base / "yolo")]
    return {
        f"yolo-pipeline convert coco (-j {cores})": [*ours, "-j", str(cores)],
        "yolo-pipeline convert coco (-j 1)": [*ours, "-j", "1"],
        "orjson floor (loads + one fixed file per image)": [py, "-c", FLOOR, str(js), str(base / "floor")],
        "Ultralytics 8.4 convert_coco": [py, "-c", ULTRALYTICS, str(js.parent), str(base / "ultralytics")],
        "(Ultralytics import alone)": [py, "-c", IMPORT_ONLY],
        "(file creation alone: one fixed file per image, no parsing)":
            [py, "-c", IO_ONLY, str(IMAGES), str(base / "floor")],
    }


Runs = dict[str, list[tuple[float, float, float]]]


def _rounds(base: Path, contenders: dict[str, list[str]], rounds: int) -> tuple[Runs, dict]:
    """Run the contenders `rounds` times, rotating their order; labels removed before each run."""
    images, out, ultra, floor = base / "images", base / "yolo", base / "ultralytics", base / "floor"
    names = list(contenders)
    results: Runs = {name: [] for name in names}
    rerun = f"{names[0]}, run again: labels up to date"
    results[rerun] = []
    counts: dict[str, tuple[int, int]] = {}
    for round_ in range(rounds):
        for name in names[round_ % len(names):] + names[: round_ % len(names)]:
            _clean(images, out, ultra, floor)
            floor.mkdir(parents=True)
            os.sync()  # the deletions' write-back must not land in the next timed run
            results[name].append(measure(contenders[name], base))
            print(f"  {name}: {results[name][-1][0]:.2f} s", flush=True)
            if name == names[0]:
                results[rerun].append(measure(contenders[name], base))
                counts["ours"] = _count_lines(images)
            elif name.startswith("Ultralytics"):
                counts["ultralytics"] = _count_lines(ultra)
    _clean(images, out, ultra, floor)
    return {k: v for k, v in results.items() if v}, counts


def _table(results: Runs, size_mb: float) -> list[str]:
    lines = ["| contender | median time (s) | each run (s) | peak RSS, largest process (MiB) | "
             "RSS / JSON size | peak PSS, whole tree (MiB) |", "|---|---:|---:|---:|---:|---:|"]
    for name, runs in results.items():
        t, rss, pss = (statistics.median(r[i] for r in runs) for i in range(3))
        each = " / ".join(f"{r[0]:.1f}" for r in runs)
        lines.append(f"| {name} | {t:.2f} | {each} | {rss:,.0f} | {rss / size_mb:.2f}x | {pss:,.0f} |")
    return lines


def _scratch(workdir: Path) -> Path:
    """A tmpfs folder when there is room (the shared VM disk swings 0.6-6 s for the same 29,600
    file creations, which would drown the differences between converters); else `workdir`."""
    shm = Path("/dev/shm")
    if shm.is_dir() and shutil.disk_usage(shm).free > 2 * 2**30:
        return shm / "yolo-pipeline-bench-coco"
    return workdir


def run(workdir: Path) -> str:
    """Main table on tmpfs (REPEATS rounds), one round on the disk, return markdown."""
    cores = os.cpu_count() or 1
    base = _scratch(workdir)
    try:
        js, _ = _prepare(base)
        size_mb = js.stat().st_size / 2**20
        contenders = _contenders(base, cores)
        results, counts = _rounds(base, contenders, REPEATS)
        disk: Runs = {}
        if base != workdir:
            _prepare(workdir, copy_from=base)
            keep = [n for n in _contenders(workdir, cores) if "Ultralytics" not in n and "-j 1" not in n]
            disk, _ = _rounds(workdir, {n: _contenders(workdir, cores)[n] for n in keep}, 1)
    finally:
        if base != workdir:
            shutil.rmtree(base, ignore_errors=True)
    med = {name: statistics.median(r[0] for r in runs) for name, runs in results.items()}
    names = list(contenders)
    ours, floor_t, ultra_t = med[names[0]], med[names[2]], med[names[3]]
    rss = statistics.median(r[1] for r in results[names[0]])
    where = "tmpfs (/dev/shm)" if base != workdir else str(workdir)
    text = [
        "## convert coco",
        "",
        f"Generated COCO-like file: {size_mb:,.1f} MiB, {IMAGES:,} images, {ANNOTATIONS:,} annotations "
        f"(polygons, ~1% crowd RLE), on {where}. Medians of {REPEATS} runs in rotating order; "
        f"{cores} cores. Times are whole processes (interpreter start and imports included).",
        "",
        *_table(results, size_mb),
        "",
        f"- vs the orjson floor: {floor_t / ours:.2f}x faster (target: faster); vs Ultralytics "
        f"convert_coco: {ultra_t / ours:.1f}x faster (target: at least 4x); peak RSS "
        f"{rss / size_mb:.2f}x the JSON size (target: at most 2.5x).",
        f"- Label files / lines: this converter {counts['ours'][0]:,} / {counts['ours'][1]:,}; "
        f"Ultralytics {counts['ultralytics'][0]:,} / {counts['ultralytics'][1]:,} (both skip crowd; "
        "this converter also clips boxes to the image and lists only images found on disk).",
    ]
    if disk:
        text += ["", f"The same on the disk ({workdir}), one round:", "", *_table(disk, size_mb)]
    return "\n".join([*text, ""])
