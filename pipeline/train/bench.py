"""`bench train`: one short training per batch size through the `train` stage, measured.

Each batch size gets its own run folder `OUT/batch-<N>`; the figures come from the run's
own per-epoch records (`progress.jsonl`: epoch seconds, train seconds, images, peak CUDA
memory on a GPU) and from a `TreeSampler` around the training (peak RSS of the process
tree, CPU share, GPU utilisation). A batch that fails (out of memory, a crash) is a row
with its reason in `error`, not a crash of the sweep.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.errors import UserError
from pipeline.io import atomic_write
from pipeline.train.sampler import TreeSampler, Usage

FIELDS = ("batch", "epoch_seconds", "images_per_second", "peak_memory_mb", "cpu_percent",
          "gpu_percent", "error")


@dataclass(frozen=True)
class BenchRow:
    """One batch size; None where a figure does not apply (GPU figures on the CPU...)."""

    batch: int
    epoch_seconds: float | None
    images_per_second: float | None
    peak_memory_mb: float | None
    cpu_percent: float | None
    gpu_percent: float | None
    error: str | None = None


def parse_batches(text: str) -> list[int]:
    """`"8,16,32"` -> [8, 16, 32]; anything else is a UserError."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"--batches {text!r}: give batch sizes like 8,16,32") from None
    if not values or min(values) < 1:
        raise UserError(f"--batches {text!r}: give positive batch sizes like 8,16,32")
    return values


def epoch_records(run_dir: Path) -> list[dict]:
    """The `epoch` records of a run's progress.jsonl (unreadable lines are skipped)."""
    found = []
    try:
        lines = (run_dir / "progress.jsonl").read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and item.get("kind") == "epoch":
            found.append(item)
    return found


def make_row(batch: int, records: list[dict], usage: Usage, gpu: bool, error: str | None) -> BenchRow:
    """A row from the run's epoch records and the sampler's figures.

    With several epochs the first (warm-up, caches) is left out of the timing.
    """
    timed = records[1:] if len(records) > 1 else records
    epoch_s = sum(r["seconds"] for r in timed) / len(timed) if timed else None
    train_s = sum(r.get("train_seconds") or 0 for r in timed)
    images = sum(r.get("images") or 0 for r in timed)
    speed = images / train_s if train_s > 0 and images else None
    gpu_mb = max((r.get("peak_memory", {}).get("gpu_mb") or 0 for r in records), default=0)
    memory = (gpu_mb or usage.peak_gpu_mb) if gpu else usage.peak_rss_mb
    return BenchRow(batch, _round(epoch_s, 2), _round(speed, 1), _round(memory, 1),
                    usage.cpu_percent, usage.gpu_percent if gpu else None, error)


def _round(x: float | None, digits: int) -> float | None:
    return None if x is None else round(x, digits)


def bench_train(cfgdir: str | Path, out: str | Path, batches: list[int], *, imgsz: int = 640,
                epochs: int = 1, device: str = "cpu", workers: int = 2,
                model: str = "yolov8n.yaml") -> list[BenchRow]:
    """One Ultralytics training per batch size; returns a row each.

    Example: `bench_train("in10/cfg", "bench-out", [8, 16], imgsz=320)`.
    """
    from pipeline.runfile.training import failure_reason
    from pipeline.train import TrainOptions, run_status, start_training

    out = Path(out)
    gpu = device != "cpu"
    rows = []
    for batch in batches:
        run_dir = out / f"batch-{batch}"
        if run_dir.exists():
            raise UserError(f"{run_dir} exists", "give a new or empty --out folder")
        opts = TrainOptions(cfgdir=Path(cfgdir), out=run_dir, model=model, epochs=epochs, imgsz=imgsz,
                            batch=batch, device=device, workers=workers, max_restarts=0,
                            extra={"plots": "False"})
        with TreeSampler(gpu_index=int(device.split(",")[0]) if gpu else None) as sampler:
            code = start_training(opts)
        status = run_status(run_dir)
        error = None if code == 0 else f"{status['status']}: {failure_reason(status)}"
        rows.append(make_row(batch, epoch_records(run_dir), sampler.usage, gpu, error))  # type: ignore[arg-type]
    return rows


def render_table(rows: list[BenchRow], device: str) -> str:
    """The rows as a markdown table."""
    memory = "peak GPU memory (MB)" if device != "cpu" else "peak RSS, process tree (MB)"
    head = ["batch", "epoch (s)", "images/s (train)", memory, "CPU % (all cores)", "GPU %", "error"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * 6 + "---|"]
    for r in rows:
        cells = [r.batch, r.epoch_seconds, r.images_per_second, r.peak_memory_mb, r.cpu_percent,
                 r.gpu_percent, r.error]
        lines.append("| " + " | ".join("—" if c is None else str(c) for c in cells) + " |")
    return "\n".join(lines)


def draw_chart(rows: list[BenchRow], path: str | Path, title: str) -> None:
    """images/s (left axis) and peak memory (right axis) against batch size, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if r.error is None and r.images_per_second is not None]
    fig, left = plt.subplots(figsize=(7, 4.2), dpi=110)
    right = left.twinx()
    xs = [r.batch for r in ok]
    left.plot(xs, [r.images_per_second for r in ok], "o-", color="tab:blue", label="images/s")
    right.plot(xs, [r.peak_memory_mb for r in ok], "s--", color="tab:orange", label="peak memory (MB)")
    for r in rows:
        if r.error is not None:
            left.axvline(r.batch, color="tab:red", linestyle=":", label=f"batch {r.batch}: failed")
    left.set_xscale("log", base=2)
    left.set_xticks([r.batch for r in rows], [str(r.batch) for r in rows])
    left.set_xlabel("batch size")
    left.set_ylabel("images/s (training)", color="tab:blue")
    right.set_ylabel("peak memory (MB)", color="tab:orange")
    left.set_ylim(0, max([r.images_per_second or 0 for r in ok], default=1) * 1.15 or 1)
    right.set_ylim(0, max([r.peak_memory_mb or 0 for r in ok], default=1) * 1.15 or 1)
    handles = left.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    left.legend(handles=handles, loc="upper left", fontsize=8)
    left.set_title(title, fontsize=10)
    left.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write(path, buf.getvalue())


def write_outputs(rows: list[BenchRow], out: str | Path, title: str, device: str) -> dict[str, str]:
    """bench.md, bench.json and bench.png in `out`; returns their paths."""
    out = Path(out)
    files = {"table": str(out / "bench.md"), "json": str(out / "bench.json"), "chart": str(out / "bench.png")}
    atomic_write(files["table"], f"# {title}\n\n{render_table(rows, device)}\n")
    atomic_write(files["json"], json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    draw_chart(rows, files["chart"], title)
    return files
