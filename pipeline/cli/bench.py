"""`yolo-pipeline bench train`: batch size against epoch time, images/s, memory, CPU/GPU use."""

from __future__ import annotations

import click

from pipeline.cli import CONTEXT_SETTINGS, emit, json_option


@click.group(context_settings=CONTEXT_SETTINGS)
def bench() -> None:
    """Measure the stages on this machine (tables like the seed reports)."""


@bench.command("train", context_settings=CONTEXT_SETTINGS)
@click.argument("cfgdir", type=click.Path(exists=True, file_okay=False))
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False),
              help="Folder for one run folder per batch size and the table/chart (new or empty).")
@click.option("--batches", default="8,16,32,64", show_default=True, help="Comma-separated batch sizes.")
@click.option("--imgsz", type=click.IntRange(min=32), default=640, show_default=True, help="Input size.")
@click.option("--epochs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Epochs per batch size (with more than one, the first is left out of the timing).")
@click.option("--device", default="cpu", show_default=True, help="cpu, or a GPU index (0).")
@click.option("--workers", type=click.IntRange(min=0), default=2, show_default=True,
              help="Data loader processes.")
@click.option("--model", default="yolov8n.yaml", show_default=True, help="Model YAML or local .pt.")
@json_option
def train(cfgdir, out, batches, imgsz, epochs, device, workers, model, as_json):
    """One short Ultralytics training per batch size through the `train` stage.

    CFGDIR is what `configs` wrote. Each row: epoch time, training images/s, peak memory
    (GPU memory on a GPU, RSS of the process tree on the CPU), CPU and GPU utilisation; a
    batch that runs out of memory is a row with its error. Writes OUT/bench.md (table),
    OUT/bench.json (rows) and OUT/bench.png (images/s and memory against batch size).

    \b
    Examples:
      yolo-pipeline bench train data/in10/cfg --out bench-cpu --batches 8,16 --imgsz 320
      yolo-pipeline bench train data/in10/cfg --out bench-gpu --batches 16,32,64,128 --imgsz 416 --device 0
    """
    from pipeline.train.bench import bench_train, parse_batches, render_table, write_outputs

    sizes = parse_batches(batches)
    rows = bench_train(cfgdir, out, sizes, imgsz=imgsz, epochs=epochs, device=device, workers=workers,
                       model=model)
    title = f"bench train: {model}, {imgsz} px, {epochs} epoch(s), device {device}"
    files = write_outputs(rows, out, title, device)
    emit({"rows": [r.__dict__ for r in rows], "files": files}, as_json,
         f"{render_table(rows, device)}\nwrote {', '.join(files.values())}")
