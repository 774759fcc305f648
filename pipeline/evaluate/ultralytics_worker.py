"""The Ultralytics evaluation worker: runs `val` in a child process (torch stays out of the CLI).

    python -m pipeline.evaluate.ultralytics_worker REQUEST.json RESULT.json

REQUEST holds weights, data, split, imgsz, batch, device, conf and project (a scratch folder
for Ultralytics' save_dir). RESULT gets Ultralytics' per-class arrays (AP@0.5, AP@0.5:0.95,
P, R over `ap_class_index`), instances and images per class, the mean results, and what we
count ourselves from the validator's per-image stats at `conf`: TP/FP per class (IoU 0.5,
Ultralytics' own matching) and the distinct classes predicted in each image.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from pipeline.ultralytics.env import seed_offline_settings


class StatsTap:
    """`on_val_batch_end`: reads the per-image stats the validator appended in this batch."""

    def __init__(self, conf: float, nc: int) -> None:
        import numpy as np

        self.conf, self.nc, self.np = conf, nc, np
        self.seen = 0
        self.tp = np.zeros(nc, dtype=np.int64)
        self.det = np.zeros(nc, dtype=np.int64)
        self.classes_per_image: list[int] = []
        self.validator = None

    def __call__(self, validator) -> None:
        self.validator = validator
        stats = getattr(validator.metrics, "stats", None) or validator.stats  # 8.4 / 8.3
        for i in range(self.seen, len(stats["conf"])):
            self._image(stats["tp"][i], stats["conf"][i], stats["pred_cls"][i])
        self.seen = len(stats["conf"])

    def _image(self, tp, conf, pred_cls) -> None:
        np = self.np
        keep = np.asarray(conf) >= self.conf
        cls = np.asarray(pred_cls)[keep].astype(int)
        hits = np.asarray(tp)[keep]
        hit = hits[:, 0].astype(bool) if hits.ndim == 2 and len(hits) else np.zeros(len(cls), bool)
        self.det += np.bincount(cls, minlength=self.nc)[: self.nc]
        self.tp += np.bincount(cls[hit], minlength=self.nc)[: self.nc]
        self.classes_per_image.append(len(set(cls.tolist())))


def _listed(values) -> list:
    """A numpy array or list as plain floats/ints."""
    return [v.item() if hasattr(v, "item") else v for v in (values.tolist() if hasattr(values, "tolist")
                                                             else list(values))]


def main(argv: list[str]) -> int:
    req = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    seed_offline_settings(Path(os.environ["YOLO_CONFIG_DIR"]))
    from ultralytics import YOLO

    model = YOLO(req["weights"])
    nc = len(model.names)
    tap = StatsTap(float(req["conf"]), nc)
    model.add_callback("on_val_batch_end", tap)
    metrics = model.val(data=req["data"], split=req["split"], imgsz=req["imgsz"], batch=req["batch"],
                        device=req["device"], workers=0, plots=False, save_json=False, verbose=False,
                        project=req["project"], name="val", exist_ok=True)
    box = metrics.box
    nt_class, nt_image = (getattr(metrics, k, None) if getattr(metrics, k, None) is not None
                          else getattr(tap.validator, k, None) for k in ("nt_per_class", "nt_per_image"))
    result = {
        "names": {int(k): v for k, v in model.names.items()},
        "ap_class_index": _listed(box.ap_class_index),
        "ap50": _listed(box.ap50), "ap50_95": _listed(box.ap), "p": _listed(box.p), "r": _listed(box.r),
        "mean": _listed(metrics.mean_results()),
        "instances": _listed(nt_class) if nt_class is not None else None,
        "images_per_class": _listed(nt_image) if nt_image is not None else None,
        "tp": _listed(tap.tp), "detections": _listed(tap.det), "classes_per_image": tap.classes_per_image,
        "images": tap.seen,
    }
    Path(argv[1]).write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
