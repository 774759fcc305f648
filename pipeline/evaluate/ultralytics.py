"""Evaluating an Ultralytics run: `val` on its weights in our worker process (offline, no
torch here), the worker's arrays turned into the shared table.

Per class: AP@0.5, AP@0.5:0.95, P and R are Ultralytics' own (P and R at the confidence of the
best mean F1, as its console prints them); TP/FP/FN are counted at conf 0.25 and IoU 0.5
from the validator's own matches, so the two engines' counts read alike.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from pipeline.dataset.datafiles import read_ultralytics_yaml
from pipeline.errors import NothingDone, UserError
from pipeline.evaluate.table import CONF_THRESH, ClassRow, Evaluation, Overall, degenerate_verdict, f1_of
from pipeline.train.runs import RunFolder
from pipeline.ultralytics.env import worker_env

#: --weights best|last -> the files tried, in order (the engine's, then our last good copy).
WEIGHTS = {"best": ("ultralytics/weights/best.pt", "ultralytics/weights/last.pt", "checkpoints/last_good.pt"),
           "last": ("ultralytics/weights/last.pt", "checkpoints/last_good.pt")}


def pick_weights(run: RunFolder, choice: str) -> tuple[Path, str | None]:
    """The weights file for best|last|FILE, and a note when a fallback was taken."""
    if choice not in WEIGHTS:
        path = Path(choice).expanduser()
        if not path.is_file():
            raise UserError(f"--weights {choice}: no such file", "give best, last or a .pt file")
        return path.resolve(), None
    tried = [run.root / rel for rel in WEIGHTS[choice]]
    for path in tried:
        if path.is_file():
            note = None if path == tried[0] else f"{tried[0].name} missing: evaluated {path}"
            return path, note
    raise UserError(f"{run.root}: no weights to evaluate ({', '.join(str(p) for p in tried)} missing)",
                    f"has the training saved an epoch? see `yolo-pipeline status {run.root}`")


def data_yaml(run: RunFolder, info: dict, split: str) -> Path:
    """The run's data.yaml (from its configs folder, else args.yaml), checked for `split`."""
    path = Path(info["options"]["cfgdir"]) / "data.yaml"
    args = run.engine_dir("ultralytics") / "args.yaml"
    if not path.is_file() and args.is_file():
        path = Path(str(read_ultralytics_yaml(args).get("data") or path))
    if not path.is_file():
        raise UserError(f"{path}: no such file: the run's dataset is gone",
                        "run `yolo-pipeline configs` again into the same folder")
    if not read_ultralytics_yaml(path).get(split):
        raise UserError(f"{path} has no {split} list", "give --split val, or add a test: list to it")
    return path


def request(run: RunFolder, info: dict, weights: Path, data: Path, split: str, device: str | None,
            scratch: Path) -> dict:
    """What the worker is asked to do."""
    opts = info["options"]
    dev = device or str(opts.get("device") or "cpu").split(",")[0]
    return {"weights": str(weights), "data": str(data), "split": split, "device": dev,
            "imgsz": int(opts.get("imgsz") or 640), "batch": int(opts.get("batch") or 16),
            "conf": CONF_THRESH, "project": str(scratch)}


def run_worker(req: dict, log: Path, scratch: Path) -> dict:
    """Run the worker, its console into `log`; its result, or NothingDone naming the error."""
    req_file, result_file = scratch / "request.json", scratch / "result.json"
    req_file.write_text(json.dumps(req), encoding="utf-8")
    env = worker_env("evaluate")
    env.pop("YOLO_PIPELINE_RUN_ID", None)  # not a training: `stop` has nothing to find here
    argv = [sys.executable, "-m", "pipeline.evaluate.ultralytics_worker", str(req_file), str(result_file)]
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w", encoding="utf-8") as f:
        code = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, env=env,
                              stdin=subprocess.DEVNULL).returncode
    if code != 0 or not result_file.is_file():
        raise NothingDone(f"Ultralytics val failed (exit code {code}): {last_error(log)}", f"see {log}")
    return json.loads(result_file.read_text(encoding="utf-8"))


def last_error(log: Path) -> str:
    """The last line of the log that names an error, else its last line."""
    text = log.read_text(encoding="utf-8", errors="replace")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for line in reversed(lines):
        if "Error" in line or "error" in line:
            return line[:300]
    return lines[-1][:300] if lines else "no output"


def class_rows(res: dict) -> list[ClassRow]:
    """One row per class of the model, Ultralytics' arrays placed by `ap_class_index`."""
    names = {int(k): v for k, v in res["names"].items()}
    at = {c: i for i, c in enumerate(res["ap_class_index"])}
    return [_class_row(res, c, names[c], at.get(c)) for c in sorted(names)]


def _class_row(res: dict, c: int, name: str, i: int | None) -> ClassRow:
    def pick(key: str) -> float | None:
        return res[key][i] if i is not None and i < len(res[key]) else None

    instances = res["instances"][c] if res.get("instances") else None
    images = res["images_per_class"][c] if res.get("images_per_class") else None
    tp, detections = res["tp"][c], res["detections"][c]
    return ClassRow(id=c, name=name, images=images, instances=instances, ap50=pick("ap50"),
                    ap50_95=pick("ap50_95"), precision=pick("p"), recall=pick("r"), tp=tp,
                    fp=detections - tp, fn=None if instances is None else instances - tp)


def to_evaluation(res: dict, run: Path, split: str, weights: Path) -> Evaluation:
    """The worker's result as the shared table, with the degenerate verdict."""
    rows = class_rows(res)
    mp, mr, map50, map50_95 = (res["mean"] + [None] * 4)[:4]
    tp = sum(r.tp or 0 for r in rows)
    fp = sum(r.fp or 0 for r in rows)
    fn = sum(r.fn or 0 for r in rows) if all(r.fn is not None for r in rows) else None
    overall = Overall(precision=mp, recall=mr, f1=f1_of(mp, mr), map50=map50, map50_95=map50_95,
                      tp=tp, fp=fp, fn=fn)
    ev = Evaluation(run=str(run), engine="ultralytics", split=split, weights=str(weights),
                    source="Ultralytics val", images=res["images"], classes=rows, overall=overall)
    ev.degenerate = degenerate_verdict(rows, res["images"], res["classes_per_image"])
    per_image = res["classes_per_image"]
    ev.notes.append(f"P and R per class: Ultralytics' own, at the confidence of the best mean F1; "
                    f"{sum(1 for n in per_image if n == 0)} of {len(per_image)} images without a "
                    f"detection at conf {CONF_THRESH:g}")
    return ev


def evaluate_ultralytics(run: RunFolder, info: dict, split: str, choice: str, out: Path,
                         device: str | None = None) -> Evaluation:
    """Ultralytics `val` of the run's weights on its data.yaml split, as the shared table."""
    weights, note = pick_weights(run, choice)
    data = data_yaml(run, info, split)
    with tempfile.TemporaryDirectory(prefix="yolo-pipeline-evaluate-") as tmp:
        req = request(run, info, weights, data, split, device, Path(tmp))
        res = run_worker(req, out / f"ultralytics-val-{split}.log", Path(tmp))
    ev = to_evaluation(res, run.root, split, weights)
    ev.command = ["ultralytics val", f"model={weights}", f"data={data}", f"split={split}",
                  f"imgsz={req['imgsz']}", f"batch={req['batch']}", f"device={req['device']}"]
    if note:
        ev.notes.insert(0, note)
    return ev
