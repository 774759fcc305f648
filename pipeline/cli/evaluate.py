"""`yolo-pipeline evaluate`: a per-class evaluation of a trained run (either engine)."""

from __future__ import annotations

import click

from pipeline.cli import CONTEXT_SETTINGS, emit, json_option


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("run", type=click.Path(exists=True, file_okay=False))
@click.option("--split", type=click.Choice(("val", "test")), default="val", show_default=True,
              help="The list evaluated: data.yaml's val/test (Ultralytics), the .data's "
                   "valid=/test= (darknet).")
@click.option("--weights", default="best", show_default=True, metavar="best|last|FILE",
              help="best: Ultralytics best.pt, darknet checkpoints/best.weights (else _final); "
                   "last: last.pt / _final.weights; or a weights file.")
@click.option("--out", "-o", type=click.Path(file_okay=False),
              help="Folder for the files (default: RUN/evaluation).")
@click.option("--device", help="Ultralytics: the device (default: the run's first device).")
@click.option("--darknet", "darknet_bin", metavar="PATH",
              help="darknet: the binary that runs `detector map` (default: the run's own).")
@json_option
def evaluate(run, split, weights, out, device, darknet_bin, as_json):
    """Per-class evaluation of a training run: AP@0.5 (and AP@0.5:0.95), P, R, TP/FP/FN.

    RUN is a folder `train` made. Ultralytics runs get Ultralytics' own `val` on the run's
    weights and data.yaml (offline, in a worker process); AlexeyAB and hank-ai darknet runs get
    `darknet detector map` on the run's .data, cfg and weights; pjreddie's darknet has no
    `map` (its log's last -map block is used, if any). A model that predicts nothing, or every
    class in every image, is called degenerate on the first line. Writes
    evaluation-SPLIT.json/.csv/.md and ap-SPLIT.png (AP per class).

    \b
    Example:
      yolo-pipeline evaluate runs/in10
      yolo-pipeline evaluate runs/dk --split test --weights last --json
    """
    from pipeline.evaluate import evaluate_run, render_text

    ev = evaluate_run(run, split=split, weights=weights, out=out, device=device, darknet=darknet_bin)
    emit(ev.as_dict(), as_json, render_text(ev) + "\nwrote " + ", ".join(ev.files.values()))
