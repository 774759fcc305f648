"""`make gpu-check`: what `train` costs on a GPU, in one command of at most 8 minutes.

On the demo's generated data (cfg/demo.yaml up to its configs), one step after another,
each with its own time limit inside an overall budget (a step that fails or runs out of
time is a row with its error, and the next step runs):

  data         cfg/demo.yaml up to configs (the same generated tree `make demo` trains)
  plain        YOLO("yolov8n.yaml").train(...) in a subprocess, offline (Ultralytics' defaults)
  train        `yolo-pipeline train` on the same data (its own defaults), supervised
  compare      wall-time ratio, both final mAP@0.5, median GPU utilisation of each
               (TreeSampler, NVML); the goal: >= 90 % median GPU utilisation through `train`
  eta          the ETA error at 5 % and 25 % of the `train` run (`summarize RUN --json`)
  bench        `yolo-pipeline bench train` at batches 16, 32, 64, 128 (`--json`)
  kill-resume  SIGKILL of the supervisor after epoch 2's checkpoint, `resume`, then every
               epoch exactly once in results.csv
  ddp          with two GPUs or more: `--device 0,1`, `stop` after epoch 1, `resume`

Writes gpu-check.json and gpu-check.md (plus logs/ and the runs) to --out (default
work/gpu-check, git-ignored). Without a GPU it says so in one line and exits 0.
`--cpu-tiny` runs the same steps on the CPU at toy sizes (64 px, 3 epochs, batches 4 and 8,
a smaller generated tree, no GPU goal): tests/e2e/test_gpu_check.py runs it in `make test`.

Usage: python tools/gpu_check.py [--cpu-tiny] [--out DIR] [--budget SECONDS]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

from demo import DEMO  # noqa: E402  (tools/demo.py: the demo's pipeline file)

from pipeline.io import atomic_write  # noqa: E402
from pipeline.train.bench import BenchRow, render_table  # noqa: E402
from pipeline.train.runs import RunFolder, alive  # noqa: E402
from pipeline.train.sampler import TreeSampler  # noqa: E402

GOAL_GPU_PERCENT = 90.0
#: A closed local port: a download attempt (Ultralytics' AMP check on a GPU fetches a model)
#: fails at once instead of waiting out a connect timeout on a machine without a network.
DEAD_PROXY = "http://127.0.0.1:9"
REPORT = "gpu-check"


@dataclass(frozen=True)
class Profile:
    """Sizes and time limits (seconds) of one kind of check."""

    name: str
    device: str
    imgsz: int
    epochs: int
    batches: tuple[int, ...]
    bench_epochs: int
    kill_epochs: int
    budget: float
    limits: dict[str, float]
    data_sets: tuple[str, ...] = ()
    train_args: tuple[str, ...] = ()
    plain_args: dict = field(default_factory=dict)


GPU = Profile("gpu", "0", 416, 10, (16, 32, 64, 128), 2, 4, 470,
              {"data": 120, "plain": 150, "train": 150, "compare": 10, "eta": 60, "bench": 180,
               "kill-resume": 150, "ddp": 180})
CPU_TINY = Profile("cpu-tiny", "cpu", 64, 3, (4, 8), 1, 4, 480,  # ~50 s on 2 idle cores
                   {"data": 60, "plain": 120, "train": 120, "compare": 10, "eta": 60, "bench": 180,
                    "kill-resume": 180, "ddp": 10},
                   data_sets=("source.synth.annotated=6", "source.synth.val=24"),
                   train_args=("--batch", "8", "--workers", "0", "--", "plots=False"),
                   plain_args={"batch": 8, "workers": 0, "plots": False})


class StepTimeout(Exception):
    """A step ran past its time limit."""


class StepSkipped(Exception):
    """A step that does not apply here (the reason is its message)."""


@dataclass
class Check:
    """What the steps share: the profile, the folders, the GPU count and each step's result."""

    profile: Profile
    out: Path
    gpus: int
    results: dict[str, dict] = field(default_factory=dict)

    @property
    def cfg(self) -> Path:
        """The configs folder the data step writes."""
        return self.out / "work" / "configs"

    def run(self, name: str) -> Path:
        """The folder of one run (`train`'s run folder, or the plain run's project folder)."""
        return self.out / "runs" / name

    def need(self, step: str) -> dict:
        """The result of an earlier step that passed, or a failure naming it."""
        if step not in self.results:
            raise RuntimeError(f"needs the {step} step, which did not pass")
        return self.results[step]


class Deadline:
    """The end of one step's time, as seconds left."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        """Seconds left; StepTimeout once none are."""
        left = self.end - time.monotonic()
        if left <= 0:
            raise StepTimeout(f"timed out after {self.seconds:.0f} s")
        return left


class MedianSampler(TreeSampler):
    """A TreeSampler that also gives the median of its GPU utilisation samples."""

    def median_gpu_percent(self) -> float | None:
        """Median NVML utilisation (%), None without samples."""
        samples = self._gpu_samples
        return round(statistics.median(samples), 1) if samples else None


def call(cmd: list[str], deadline: Deadline, log: Path, capture: bool = False) -> subprocess.CompletedProcess:
    """Run `cmd` in its own session, stderr (and stdout unless captured) to `log`; killed at the deadline."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as err:
        err.write(f"$ {' '.join(cmd)}\n")
        err.flush()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE if capture else err, stderr=err, text=True,
                                start_new_session=True, cwd=REPO)
        try:
            out, _ = proc.communicate(timeout=deadline.left())
        except (subprocess.TimeoutExpired, StepTimeout):
            end_group(proc)
            raise StepTimeout(f"timed out after {deadline.seconds:.0f} s: {' '.join(cmd[2:5])}") from None
    return subprocess.CompletedProcess(cmd, proc.returncode, out, None)


def end_group(proc: subprocess.Popen) -> None:
    """SIGKILL a child's process group (its engine ends itself once its parent is gone)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def sweep(out: Path) -> int:
    """SIGKILL what is left of every run under `out` (engines, DDP ranks); the count."""
    from pipeline.train.processes import kill_marked

    killed = 0
    for info in out.glob("**/run.json"):
        killed += kill_marked(RunFolder(info.parent).read_state().get("marker"))  # this session's
    return killed


def pipeline_cmd(*args: object) -> list[str]:
    """`yolo-pipeline ARGS` as a command line."""
    return [sys.executable, "-m", "pipeline", *map(str, args)]


def tail(log: Path, lines: int = 3) -> str:
    """The last lines of a log, for an error message."""
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])


def checked(done: subprocess.CompletedProcess, log: Path, what: str) -> subprocess.CompletedProcess:
    """`done`, or a RuntimeError with its exit code and the log's last lines."""
    if done.returncode != 0:
        raise RuntimeError(f"{what} exited {done.returncode}: {tail(log)}")
    return done


def final_map50(results_csv: Path) -> float | None:
    """mAP@0.5 of the last epoch of an Ultralytics results.csv."""
    rows = epoch_rows(results_csv)
    return rows[-1].map50 if rows else None


def epoch_rows(results_csv: Path) -> list:
    """The epoch rows of a results.csv, read by our own parser."""
    from pipeline.logs.rows import MetricRow
    from pipeline.logs.ultralytics import parse_results_csv

    return [r for r in parse_results_csv(str(results_csv)) if isinstance(r, MetricRow)]


def gpu_count() -> int:
    """CUDA devices torch sees, asked in a subprocess (0 when torch cannot say)."""
    try:
        done = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.device_count())"],
                              capture_output=True, text=True, timeout=60)
        return int(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else 0
    except (subprocess.TimeoutExpired, ValueError, IndexError):
        return 0


# ---- the steps: each takes the shared Check and its Deadline, and returns its figures


def step_data(c: Check, d: Deadline) -> dict:
    """cfg/demo.yaml (the demo's generated tree) up to its configs."""
    sets = [f"work={c.out / 'work'}", f"source.path={c.out / 'imagenet'}", *c.profile.data_sets]
    args = [a for s in sets for a in ("--set", s)]
    log = c.out / "logs" / "data.log"
    checked(call(pipeline_cmd("-q", "run", DEMO, *args, "--until", "configs"), d, log), log, "run")
    import yaml

    data = yaml.safe_load((c.cfg / "data.yaml").read_text())
    return {"configs": str(c.cfg), "train_images": len(Path(data["train"]).read_text().split()),
            "val_images": len(Path(data["val"]).read_text().split()), "classes": data["nc"]}


def step_plain(c: Check, d: Deadline) -> dict:
    """Plain Ultralytics on the same data, sampled."""
    p = c.profile
    kwargs = {"data": str(c.cfg / "data.yaml"), "epochs": p.epochs, "imgsz": p.imgsz, "device": p.device,
              "project": str(c.out / "runs"), "name": "plain", "exist_ok": True, **p.plain_args}
    c.need("data")
    log = c.out / "logs" / "plain.log"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--plain", json.dumps(kwargs)]
    return sampled(c, lambda: checked(call(cmd, d, log), log, "plain Ultralytics"),
                   c.run("plain") / "results.csv")


def step_train(c: Check, d: Deadline) -> dict:
    """`yolo-pipeline train` with its defaults (size, epochs and device given), sampled."""
    p = c.profile
    c.need("data")
    log = c.out / "logs" / "train.log"
    cmd = pipeline_cmd("train", c.cfg, "--out", c.run("train"), "--epochs", p.epochs, "--imgsz", p.imgsz,
                       "--device", p.device, *p.train_args)
    return sampled(c, lambda: checked(call(cmd, d, log), log, "train"),
                   c.run("train") / "ultralytics" / "results.csv")


def sampled(c: Check, work: Callable[[], object], results_csv: Path) -> dict:
    """Wall time, median GPU utilisation and final mAP@0.5 of one training."""
    gpu = c.profile.device != "cpu"
    with MedianSampler(gpu_index=int(c.profile.device.split(",")[0]) if gpu else None) as sampler:
        work()
    usage = sampler.usage
    assert usage is not None
    return {"seconds": usage.seconds, "map50": final_map50(results_csv),
            "median_gpu_percent": sampler.median_gpu_percent(), "mean_gpu_percent": usage.gpu_percent,
            "peak_gpu_mb": usage.peak_gpu_mb, "cpu_percent": usage.cpu_percent}


def step_compare(c: Check, d: Deadline) -> dict:
    """The time ratio (train / plain), both mAP@0.5 and the GPU utilisation goal."""
    plain, ours = c.need("plain"), c.need("train")
    util = ours["median_gpu_percent"]
    goal = None if c.profile.device == "cpu" or util is None else util >= GOAL_GPU_PERCENT
    return {"time_ratio": round(ours["seconds"] / plain["seconds"], 3),
            "map50": {"plain": plain["map50"], "train": ours["map50"]},
            "median_gpu_percent": {"plain": plain["median_gpu_percent"], "train": util},
            "goal": f"median GPU utilisation through train >= {GOAL_GPU_PERCENT:.0f} %", "goal_met": goal}


def step_eta(c: Check, d: Deadline) -> dict:
    """The ETA error at 5 % and 25 % of the `train` run, from `summarize RUN --json`."""
    c.need("train")
    log = c.out / "logs" / "eta.log"
    done = checked(call(pipeline_cmd("summarize", c.run("train"), "--out", c.out / "summary-train", "--json"),
                        d, log, capture=True), log, "summarize")
    checks = json.loads(done.stdout)["runs"][0]["eta_checks"]
    found = {f"{row['percent']}%": {k: row[k] for k in ("error_seconds", "error_percent")}
             for row in checks if row.get("percent") in (5, 25)}
    if not found:
        raise RuntimeError(f"no ETA prediction at 5 % or 25 % in the run's events ({len(checks)} in all)")
    return {"eta_error": found, "all": checks}


def step_bench(c: Check, d: Deadline) -> dict:
    """`yolo-pipeline bench train` at the profile's batch sizes, its --json rows."""
    p = c.profile
    c.need("data")
    log = c.out / "logs" / "bench.log"
    done = checked(call(pipeline_cmd("bench", "train", c.cfg, "--out", c.out / "bench", "--batches",
                                     ",".join(map(str, p.batches)), "--imgsz", p.imgsz, "--epochs",
                                     p.bench_epochs, "--device", p.device, "--json"), d, log, capture=True),
                   log, "bench train")
    rows = json.loads(done.stdout)["rows"]
    failed = [f"batch {r['batch']}: {r['error']}" for r in rows if r["error"]]
    return {"rows": rows, "failed_batches": failed}


def step_kill_resume(c: Check, d: Deadline) -> dict:
    """SIGKILL the supervisor after epoch 2's checkpoint, resume, every epoch once."""
    c.need("data")
    return interrupt_and_resume(c, d, "kill-resume", c.profile.device, after=2)


def step_ddp(c: Check, d: Deadline) -> dict:
    """Two GPUs: a `--device 0,1` run stopped after epoch 1, then resumed."""
    if c.profile.device == "cpu":
        raise StepSkipped("no DDP on the CPU")
    if c.gpus < 2:
        raise StepSkipped(f"{c.gpus} GPU visible: DDP needs two")
    c.need("data")
    return interrupt_and_resume(c, d, "ddp", "0,1", after=1)


def interrupt_and_resume(c: Check, d: Deadline, name: str, device: str, after: int) -> dict:
    """Start a run, SIGKILL its supervisor (or `stop` it, for DDP) after epoch `after`, resume it."""
    run, log = c.run(name), c.out / "logs" / f"{name}.log"
    total = c.profile.kill_epochs
    cmd = pipeline_cmd("train", c.cfg, "--out", run, "--epochs", total, "--imgsz", c.profile.imgsz,
                       "--device", device, *c.profile.train_args)
    with open(log, "a") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=out, start_new_session=True, cwd=REPO)
    try:
        wait_until(lambda: checkpointed(run, after) or proc.poll() is not None, d)
        if proc.poll() is not None:
            raise RuntimeError(f"the run ended (exit {proc.returncode}) before it could be interrupted "
                               f"after epoch {after}: {tail(log)}")
        how = interrupt(d, proc, run, log, kill=name == "kill-resume")
    finally:
        if proc.poll() is None:
            end_group(proc)
    resumed = checked(call(pipeline_cmd("resume", run, "--json"), d, log, capture=True), log, "resume")
    return verdict(run, json.loads(resumed.stdout), total, how)


def interrupt(d: Deadline, proc: subprocess.Popen, run: Path, log: Path, kill: bool) -> str:
    """SIGKILL the supervisor and wait for its engine to end, or `stop` the run; what was done."""
    if not kill:
        checked(call(pipeline_cmd("stop", run), d, log), log, "stop")
        proc.wait(timeout=d.left())
        return f"stopped after epoch {checkpointed(run, 1)}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=d.left())
    state = RunFolder(run).read_state()
    wait_until(lambda: not alive(state.get("worker_pid"), None), d)
    time.sleep(1.5)  # the engine's own watch on its parent runs every second
    if left := sweep(run):
        raise RuntimeError(f"{left} process(es) of the run outlived its SIGKILLed supervisor")
    status = json.loads(checked(call(pipeline_cmd("status", run, "--json"), d, log, capture=True),
                                log, "status").stdout)["status"]
    if status != "killed":
        raise RuntimeError(f"after SIGKILL of the supervisor, status says {status!r}, not 'killed'")
    return f"killed after epoch {checkpointed(run, 1)}"


def verdict(run: Path, status: dict, total: int, how: str) -> dict:
    """Passed when the resumed run finished with every epoch exactly once in results.csv."""
    epochs = [r.step for r in epoch_rows(run / "ultralytics" / "results.csv")]
    if status["status"] != "finished" or status["done"] != total:
        raise RuntimeError(f"resume ended {status['status']} at {status['done']}/{total}: {status['reason']}")
    if epochs != list(range(1, total + 1)):
        raise RuntimeError(f"results.csv epochs {epochs}, expected each of 1..{total} exactly once")
    return {"interrupted": how, "epochs_in_results_csv": epochs, "restarts": status["restarts"]}


def checkpointed(run: Path, epoch: int) -> int:
    """The newest epoch whose checkpoint the worker reported, if at least `epoch` (else 0)."""
    try:
        lines = RunFolder(run).progress.read_text(errors="replace").splitlines()
    except OSError:
        return 0
    found = 0
    for line in lines:
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and item.get("kind") == "checkpoint":
            found = max(found, int(item.get("epoch") or 0))
    return found if found >= epoch else 0


def wait_until(predicate: Callable[[], object], d: Deadline, every: float = 0.2) -> None:
    """Poll until `predicate()` holds; StepTimeout at the deadline."""
    while not predicate():
        time.sleep(min(every, d.left()))


STEPS: list[tuple[str, Callable[[Check, Deadline], dict]]] = [
    ("data", step_data), ("plain", step_plain), ("train", step_train), ("compare", step_compare),
    ("eta", step_eta), ("bench", step_bench), ("kill-resume", step_kill_resume), ("ddp", step_ddp)]


# ---- running the steps and writing the report


def run_steps(c: Check, end: float) -> list[dict]:
    """Every step in order, each within its own limit and the budget ending at `end`; one row each."""
    rows = []
    for i, (name, fn) in enumerate(STEPS, 1):
        limit = min(c.profile.limits[name], end - time.monotonic())
        row = run_one(c, name, fn, limit)
        rows.append(row)
        print(f"[{i}/{len(STEPS)}] {name:<11} {row['status']:<7} {row['seconds']:7.1f} s  "
              f"{row['error'] or one_line(name, row['result'])}", flush=True)
    return rows


def run_one(c: Check, name: str, fn: Callable[[Check, Deadline], dict], limit: float) -> dict:
    """One step as a row: passed with its result, skipped, or failed with its error."""
    start = time.monotonic()
    row: dict = {"step": name, "status": "passed", "seconds": 0.0, "limit_s": round(limit), "result": None,
                 "error": None}
    try:
        if limit < 5:
            raise StepTimeout("not started: the overall budget is spent")
        row["result"] = c.results[name] = fn(c, Deadline(limit))
    except StepSkipped as why:
        row.update(status="skipped", error=str(why))
    except Exception as exc:  # any failure is the step's row; the next step still runs
        row.update(status="failed", error=f"{type(exc).__name__}: {exc}"[:600])
        sweep(c.out)
    row["seconds"] = round(time.monotonic() - start, 1)
    return row


def one_line(name: str, result: dict | None) -> str:
    """The headline figures of a step's result."""
    if not result:
        return ""
    if name in ("plain", "train"):
        return (f"{result['seconds']} s, mAP@0.5 {fig(result['map50'])}, "
                f"median GPU {fig(result['median_gpu_percent'], ' %')}")
    if name == "compare":
        m, g = result["map50"], result["median_gpu_percent"]
        return (f"time train/plain {result['time_ratio']}, mAP@0.5 {fig(m['plain'])} / {fig(m['train'])}, "
                f"median GPU {fig(g['plain'], ' %')} / {fig(g['train'], ' %')}, goal met: "
                f"{fig(result['goal_met'])}")
    if name == "eta":
        return "ETA error " + ", ".join(f"at {k}: {fig(v['error_seconds'], ' s')} "
                                        f"({fig(v['error_percent'], ' %')} of the time left)"
                                        for k, v in result["eta_error"].items())
    if name == "bench":
        return (f"batches {', '.join(str(r['batch']) for r in result['rows'])}; failed: "
                f"{'; '.join(result['failed_batches']) or 'none'}")
    if name in ("kill-resume", "ddp"):
        return f"{result['interrupted']}; results.csv epochs {result['epochs_in_results_csv']}"
    return f"{result['train_images']} train / {result['val_images']} val images, {result['classes']} classes"


def fig(value: object, unit: str = "") -> str:
    """A figure for a table: a dash where there is none."""
    if value is None:
        return "—"
    return f"{value:.3f}{unit}" if isinstance(value, float) and not unit else f"{value}{unit}"


def render(c: Check, rows: list[dict]) -> str:
    """The report as markdown: one row per step, then the comparison, ETA and bench tables."""
    p = c.profile
    lines = [f"# GPU check ({p.name}): {time.strftime('%Y-%m-%d %H:%M')}, device {p.device}, "
             f"{c.gpus} GPU(s), {p.imgsz} px, {p.epochs} epochs\n",
             "| step | status | seconds | limit (s) | result or error |", "|---|---|---:|---:|---|"]
    for r in rows:
        text = r["error"] or one_line(r["step"], r["result"])
        lines.append(f"| {r['step']} | {r['status']} | {r['seconds']} | {r['limit_s']} | "
                     f"{' '.join(text.replace('|', '/').split())} |")
    if "compare" in c.results:
        lines += compare_table(c)
    if "bench" in c.results:
        bench = [BenchRow(**row) for row in c.results["bench"]["rows"]]
        lines += ["", "## bench train", "", render_table(bench, p.device)]
    return "\n".join(lines) + "\n"


def compare_table(c: Check) -> list[str]:
    """Plain Ultralytics against `train` side by side, and the ETA errors of the `train` run."""
    plain, ours, cmp = c.results["plain"], c.results["train"], c.results["compare"]
    out = ["", "## plain Ultralytics against `yolo-pipeline train`", "", "| | plain | train |",
           "|---|---:|---:|"]
    for key, label in (("seconds", "wall time (s)"), ("map50", "final mAP@0.5"),
                       ("median_gpu_percent", "median GPU %"), ("mean_gpu_percent", "mean GPU %"),
                       ("peak_gpu_mb", "peak GPU memory (MB)"), ("cpu_percent", "CPU % (all cores)")):
        out.append(f"| {label} | {fig(plain[key])} | {fig(ours[key])} |")
    out.append(f"\ntime ratio (train / plain): {cmp['time_ratio']}; goal ({cmp['goal']}): "
               f"{fig(cmp['goal_met'])}")
    if "eta" in c.results:
        out += ["", "| ETA made at | error (s, > 0: finished later) | error (% of the time left) |",
                "|---|---:|---:|"]
        out += [f"| {k} | {fig(v['error_seconds'])} | {fig(v['error_percent'])} |"
                for k, v in c.results["eta"]["eta_error"].items()]
    return out


def prepare(out: Path) -> None:
    """An empty report folder, marked as ours; an earlier check there is replaced, anything else refused."""
    mark = out / ".gpu-check"
    if out.exists() and any(out.iterdir()):
        if not mark.exists():
            raise SystemExit(f"{out} holds files that are not an earlier gpu check: "
                             "give a new or empty --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    mark.write_text("written by tools/gpu_check.py: replaced by the next check\n")


def plain_train(kwargs_json: str) -> None:
    """The plain Ultralytics training (this script in a subprocess): offline, its own defaults."""
    from pipeline.ultralytics.env import offline_ultralytics, seed_offline_settings

    offline_ultralytics()
    seed_offline_settings(Path(os.environ["YOLO_CONFIG_DIR"]))
    from ultralytics import YOLO

    YOLO("yolov8n.yaml").train(**json.loads(kwargs_json))


def parse_args() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu-tiny", action="store_true", help="the same steps on the CPU at toy sizes")
    parser.add_argument("--out", type=Path, help="report folder (default work/gpu-check[-cpu-tiny])")
    parser.add_argument("--budget", type=float, help="overall seconds (default 470; cpu-tiny 480)")
    parser.add_argument("--plain", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> int:
    """Run every step, write the JSON and the markdown; 1 when a step failed."""
    started = time.monotonic()
    args = parse_args()
    if args.plain:
        plain_train(args.plain)
        return 0
    profile = CPU_TINY if args.cpu_tiny else GPU
    profile = Profile(**{**asdict(profile), "budget": args.budget or profile.budget})
    gpus = 0 if args.cpu_tiny else gpu_count()
    if not args.cpu_tiny and gpus == 0:
        print("gpu-check: no CUDA GPU visible (torch.cuda.device_count() is 0): nothing to check")
        return 0
    out = (args.out or REPO / "work" / f"gpu-check{'-cpu-tiny' if args.cpu_tiny else ''}").absolute()
    prepare(out)
    offline()
    c = Check(profile, out, gpus)
    print(f"gpu-check ({profile.name}, {gpus} GPU): {len(STEPS)} steps, at most {profile.budget:.0f} s "
          f"in all, into {out}", flush=True)
    rows = run_steps(c, started + profile.budget)
    return write_report(c, rows)


def offline() -> None:
    """Ultralytics' offline switches, and a dead proxy so that no download can wait on a timeout."""
    from pipeline.ultralytics.env import offline_ultralytics

    offline_ultralytics()
    for key in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        os.environ.setdefault(key, DEAD_PROXY)


def write_report(c: Check, rows: list[dict]) -> int:
    """gpu-check.json and gpu-check.md, a closing line naming them; 1 when a step failed."""
    report = {"profile": asdict(c.profile), "gpus": c.gpus, "steps": rows, "created": time.time()}
    atomic_write(c.out / f"{REPORT}.json", json.dumps(report, indent=2) + "\n")
    atomic_write(c.out / f"{REPORT}.md", render(c, rows))
    failed = [r["step"] for r in rows if r["status"] == "failed"]
    print(f"gpu-check: {len(rows) - len(failed)}/{len(rows)} steps passed or skipped"
          f"{' (failed: ' + ', '.join(failed) + ')' if failed else ''}; wrote {c.out}/{REPORT}.json and "
          f"{c.out}/{REPORT}.md")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
