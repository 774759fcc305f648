"""`yolo-pipeline summarize`: training logs and runs -> summary, metrics table, chart, report."""

from __future__ import annotations

import os

import click

from pipeline.cli import CONTEXT_SETTINGS, emit, json_option, progress_enabled, verbosity


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--out", "-o", type=click.Path(file_okay=False),
              help="Folder for the outputs (default: RUN/summary for a run folder, "
                   "LOG-summary beside a log, ./summary for several runs).")
@click.option("--max-batches", type=click.IntRange(min=1),
              help="darknet: the run's max_batches, for the projected finish.")
@click.option("--cfg", type=click.Path(dir_okay=False),
              help="darknet: the run's .cfg, read for max_batches (default: the one *.cfg "
                   "beside the log, if any).")
@json_option
def summarize(runs, out, max_batches, cfg, as_json):
    """Summarize training runs: loss, mAP, NaNs, restarts, time, projected finish.

    Each RUN is a darknet console log (pjreddie or AlexeyAB, any size, read streaming), an
    Ultralytics results.csv, or an Ultralytics run folder (results.csv + args.yaml). Writes
    summary.json, metrics.csv, report.md and chart.png; several RUNs give one side-by-side
    table and one comparison chart. -q prints only what was trained, the loss and mAP;
    -v adds per-class AP, every restart, skipped lines and error lines.

    \b
    Example:
      yolo-pipeline summarize darknet/train.log --cfg cfg/in10.cfg --out report
      yolo-pipeline summarize runs/detect/train
      yolo-pipeline summarize runs/detect/train runs/detect/train2 --out compare
    """
    from pipeline.report import summarize_paths
    from pipeline.report.markdown import render_text

    bar = None
    if progress_enabled():
        from tqdm import tqdm

        total = sum(os.path.getsize(p) for p in runs if os.path.isfile(p)) or None
        bar = tqdm(total=total, unit="B", unit_scale=True, desc="summarize", leave=False)
    try:
        result = summarize_paths(list(runs), out, max_batches=max_batches, cfg=cfg,
                                 progress=bar.update if bar else None)
    finally:
        if bar:
            bar.close()
    text = render_text(result.summaries, verbosity()) + "\nwrote " + ", ".join(result.files)
    emit(result.as_dict(), as_json, text)
