"""Bench: parsing a 1 GB AlexeyAB-style darknet log, and `summarize` end to end on 500 MB.

The log is what `subdivisions=64` with three `[yolo]` heads prints: per mini-batch and
head a `v3 (iou loss, ...) Region N Avg (IOU: ...)` line plus `total_bbox`, i.e. 256
per-layer lines (~43 kB) per iteration, some with `-nan`; every 10 iterations a
`Resizing`, every 100 `Saving weights`, every 1000 a `-map` block with bare-CR progress.
It is generated fast by cycling a few pre-rendered per-layer blocks. Each measurement
runs in its own process, which reports its peak RSS.

Run alone: `python tools/bench.py --only logs`.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

GB = 1 << 30
HEADS = (139, 150, 161)

_PARSE = """
import json, resource, sys, time
from pipeline.logs.darknet import parse_darknet
from pipeline.logs.rows import LogStats, MetricRow
t = time.perf_counter(); st = LogStats(); rows = 0
for item in parse_darknet(sys.argv[1], st):
    rows += isinstance(item, MetricRow)
dt = time.perf_counter() - t
print(json.dumps({"s": dt, "rows": rows, "lines": st.lines, "bytes": st.bytes,
                  "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

_FLOOR = """
import json, re, resource, sys, time
rx = re.compile(rb"\\n *(\\d+): *([^,\\n]*), *([^,\\n]*) avg loss, *([^,\\n]*) rate")
t = time.perf_counter(); rows = 0; carry = b""
with open(sys.argv[1], "rb") as f:
    while block := f.read(8 << 20):
        data = carry + block; cut = data.rfind(b"\\n")
        rows += sum(1 for _ in rx.finditer(data, 0, cut)); carry = data[cut:]
dt = time.perf_counter() - t
print(json.dumps({"s": dt, "rows": rows, "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

_NAIVE = """
import json, re, resource, sys, time
it = re.compile(r"\\s*(\\d+): *([^,]*), *([^,]*) avg(?: loss)?, *([^,]*) rate, *([^,]*) seconds")
mp = re.compile(r"\\s*mean average precision \\(mAP@([^)]*)\\) = ([^,\\s]*)")
t = time.perf_counter(); rows = maps = lines = n = 0; limit = int(sys.argv[2])
with open(sys.argv[1], encoding="utf-8", errors="replace", newline="") as f:
    for line in f:
        n += len(line); lines += 1
        if " avg" in line and (m := it.match(line)):
            rows += 1; float(m[2]); float(m[3]); float(m[4]); float(m[5])
        elif "mean average" in line and (m := mp.match(line)):
            maps += 1
        if n >= limit:
            break
dt = time.perf_counter() - t
print(json.dumps({"s": dt, "rows": rows, "bytes": n, "lines": lines,
                  "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def _layer_block(rng: random.Random) -> str:
    lines = []
    for _ in range(64):
        for head in HEADS:
            count = rng.randint(0, 9)
            iou = "-nan" if count == 0 else f"{rng.random():.6f}"
            lines.append(
                f"v3 (iou loss, Normalizer: (iou: 0.07, obj: 1.00, cls: 1.00) Region {head} Avg "
                f"(IOU: {iou}), count: {count}, class_loss = {rng.random() * 4:.6f}, iou_loss = "
                f"{rng.random() * 4:.6f}, total_loss = {rng.random() * 8:.6f} \n")
        lines.append(f" total_bbox = {rng.randint(10**5, 10**7)}, rewritten_bbox = 0.000000 % \n")
    return "".join(lines)


def _map_block(it: int, rng: random.Random) -> str:
    ranks = "".join(f" rank = {r} of ranks = 4307 \r" for r in range(0, 4307, 100))
    ap = rng.uniform(20, 60)
    return (f"\n calculation mAP (mean average precision)...\n\n detections_count = 4307, "
            f"unique_truth_count = 406  \n{ranks}class_id = 0, name = salmon, ap = {ap:.2f}%   "
            f"\t (TP = 149, FP = 108) \n\n for conf_thresh = 0.25, precision = 0.58, recall = "
            f"0.37, F1-score = 0.45 \n for conf_thresh = 0.25, TP = 149, FP = 108, FN = 257, "
            f"average IoU = 37.51 % \n\n IoU threshold = 50 %, used Area-Under-Curve for each "
            f"unique Recall \n mean average precision (mAP@0.50) = {ap / 100:.6f}, or {ap:.2f} % "
            f"\n\n mean_average_precision (mAP@0.5) = {ap / 100:.6f} \nNew best mAP!\n")


def generate_log(path: Path, size: int, seed: int = 0) -> tuple[int, int]:
    """Write an AlexeyAB-style log of about `size` bytes; return (bytes, iterations)."""
    rng = random.Random(seed)
    blocks = [_layer_block(rng).encode() for _ in range(8)]
    written, it = 0, 0
    with open(path, "wb", buffering=8 << 20) as f:
        head = b" CUDA-version: 12020, cuDNN: 8.9.6\nmini_batch = 1, batch = 64\n" \
               b"Learning Rate: 0.00261, Momentum: 0.9, Decay: 0.0005\n"
        written += f.write(head)
        while written < size:
            it += 1
            parts = [blocks[it % 8]]
            loss = 400.0 / (1 + it / 50) + rng.random() * 0.5
            parts.append(
                f"\n {it}: {loss:.6f}, {loss * 0.98:.6f} avg loss, 0.002610 rate, "
                f"{rng.uniform(2, 4):.6f} seconds, {it * 64} images, {rng.uniform(5, 50):.6f} "
                f"hours left\nLoaded: 0.000041 seconds\n".encode())
            if it % 10 == 0:
                parts.append(b"Resizing, random_coef = 1.40 \n\n 608 x 608 \n")
            if it % 100 == 0:
                parts.append(f"Saving weights to backup/yolov4_{it}.weights\n".encode())
            if it % 1000 == 0:
                parts.append(_map_block(it, rng).encode())
            for p in parts:
                written += f.write(p)
    return written, it


def _child(code: str, *args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _summarize(log: Path, out: Path) -> tuple[float, int]:
    """Wall seconds and peak RSS (kB) of the `summarize` command, start-up and chart included."""
    env = {**os.environ, "MPLBACKEND": "Agg",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "-q", "summarize", str(log),
                             "--out", str(out), "--max-batches", "40000"], env=env,
                            stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    dt = time.perf_counter() - t
    if status:
        raise RuntimeError(f"summarize failed with status {status}")
    return dt, usage.ru_maxrss


def run(workdir: Path) -> str:
    """Generate the logs under `workdir`, measure, delete them; return the markdown section."""
    big, half = workdir / "alexeyab_1gb.log", workdir / "alexeyab_500mb.log"
    t = time.perf_counter()
    size, iters = generate_log(big, GB)
    gen_s = time.perf_counter() - t
    size_half, iters_half = generate_log(half, GB // 2, seed=1)
    os.sync()  # no write-back of the new files while measuring
    try:
        parse = _child(_PARSE, str(big))
        floor = _child(_FLOOR, str(big))
        naive = _child(_NAIVE, str(big), str(256 << 20))
        sum_s, sum_rss = _summarize(half, workdir / "summary")
    finally:
        big.unlink(missing_ok=True)
        half.unlink(missing_ok=True)
    mb = size / 1e6

    def line(what, nbytes, s, rss, lines=None, note=""):
        lps = f"{lines / s / 1e6:.1f} M" if lines else "—"
        return (f"| {what} | {nbytes / 1e6:,.0f} MB | {s:.2f} s | {nbytes / 1e6 / s:,.0f} | "
                f"{lps} | {rss / 1024:.0f} MB | {note} |")

    rows = [
        line("`parse_darknet` (all items: rows, mAP blocks, events)", size, parse["s"],
             parse["rss"], parse["lines"], f"{parse['rows']:,} iterations"),
        line("floor: one regex for iteration lines only, 8 MB blocks", size, floor["s"],
             floor["rss"], parse["lines"], f"{floor['rows']:,} iterations"),
        line("naive: text line loop, `re.match` on iteration/mAP lines (first 256 MiB)",
             naive["bytes"], naive["s"], naive["rss"], naive["lines"],
             f"{naive['rows']:,} iterations"),
        line("`yolo-pipeline summarize` end to end (start-up, 4 files, chart)", size_half, sum_s,
             sum_rss, None, f"{iters_half:,} iterations"),
    ]
    ok_parse = size / 1e6 / parse["s"] >= 200 and parse["rss"] / 1024 < 150
    return "\n".join([
        "## logs: darknet log parsing and `summarize`", "",
        f"Generated AlexeyAB-style log: {mb:,.0f} MB, {parse['lines']:,} lines, {iters:,} "
        f"iterations, 256 per-layer lines per iteration (generated in {gen_s:.1f} s).", "",
        "| what | input | time | MB/s | lines/s | peak RSS | notes |",
        "|---|---|---|---|---|---|---|", *rows, "",
        f"Targets: parse >= 200 MB/s with peak RSS < 150 MB ({'met' if ok_parse else 'NOT met'}); "
        f"summarize on 500 MB < 5 s ({'met' if sum_s < 5 else 'NOT met'}). One process, one core.",
        "",
    ])


if __name__ == "__main__":
    work = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/work/logs")
    work.mkdir(parents=True, exist_ok=True)
    print(run(work))
