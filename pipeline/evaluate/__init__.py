"""`evaluate`: a per-class evaluation of a trained run, one table for both engines.

    table.py        the table (ClassRow, Overall, Evaluation), the degenerate verdict, renderings
    output.py       evaluation-<split>.json/.csv/.md and ap-<split>.png
    ultralytics.py  Ultralytics `val` in our worker (ultralytics_worker.py), torch never imported here
    darknet.py      `darknet detector map` with the run's binary, cfg and .data copies
    darknet_map.py  the parser of darknet's mAP output (AlexeyAB lines, hank-ai table)

A package rather than `report/evaluate.py`: two engines, a worker process and a parser.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.errors import UserError
from pipeline.evaluate.output import write_outputs
from pipeline.evaluate.table import Evaluation, render_text
from pipeline.train.runs import RunFolder

SPLITS = ("val", "test")

__all__ = ["SPLITS", "Evaluation", "evaluate_run", "render_text"]


def evaluate_run(run_dir: str | Path, *, split: str = "val", weights: str = "best",
                 out: str | Path | None = None, device: str | None = None,
                 darknet: str | None = None) -> Evaluation:
    """Evaluate a `train` run folder's weights on its split and write the files to `out`
    (default RUN/evaluation). Example: `evaluate_run("runs/in10").overall.map50`.
    """
    if split not in SPLITS:
        raise UserError(f"--split {split}: expected one of {', '.join(SPLITS)}")
    run = RunFolder(Path(run_dir).absolute())
    info = run.read_run()
    folder = Path(out) if out else run.root / "evaluation"
    if info.get("backend") == "ultralytics":
        from pipeline.evaluate.ultralytics import evaluate_ultralytics

        ev = evaluate_ultralytics(run, info, split, weights, folder, device=device)
    elif info.get("backend") == "darknet":
        from pipeline.evaluate.darknet import evaluate_darknet

        ev = evaluate_darknet(run, info, split, weights, folder, darknet=darknet)
    else:
        raise UserError(f"{run.root}: unknown backend {info.get('backend')!r} in run.json")
    write_outputs(ev, folder)
    return ev
