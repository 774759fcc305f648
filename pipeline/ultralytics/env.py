"""Run Ultralytics offline: no hub, no weight or font downloads, a private settings folder.

Call `offline_ultralytics()` before the first `import ultralytics` anywhere; a training
worker gets `worker_env()` as its environment and calls `seed_offline_settings()` once
Ultralytics is importable (see shared/research/training-supervision.md §4 for each switch).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

#: Variables that would make a worker think it is a rank of someone else's DDP job.
_DDP_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def offline_ultralytics(config_dir: str | Path | None = None) -> None:
    """Set Ultralytics' offline switches and a private config dir (idempotent)."""
    os.environ["YOLO_OFFLINE"] = "True"  # "True" is read as true by old and new parsers
    os.environ["YOLO_AUTOINSTALL"] = "False"
    if "YOLO_CONFIG_DIR" not in os.environ or config_dir is not None:
        folder = Path(config_dir or Path(tempfile.gettempdir()) / "yolo-pipeline-ultralytics")
        folder.mkdir(parents=True, exist_ok=True)
        os.environ["YOLO_CONFIG_DIR"] = str(folder)
    os.environ.setdefault("MPLBACKEND", "Agg")


def worker_env(run_id: str) -> dict[str, str]:
    """The environment of a training worker: offline, unbuffered, marked with `run_id`."""
    offline_ultralytics()
    env = {k: v for k, v in os.environ.items() if k not in _DDP_VARIABLES}
    env.update(PYTHONUNBUFFERED="1", YOLO_PIPELINE_RUN_ID=run_id, WANDB_MODE="disabled",
               COMET_MODE="disabled")
    return env


def seed_offline_settings(home: Path) -> None:
    """Settings that keep Ultralytics off the network, and fonts it would download.

    `home` holds absolute weights/runs/datasets folders (Ultralytics' defaults are relative
    to the working directory). The fonts are matplotlib's own DejaVu Sans, copied under the
    names Ultralytics looks for, so plotting never asks the network for Arial.
    """
    from matplotlib import font_manager
    from ultralytics.utils import SETTINGS, USER_CONFIG_DIR

    wanted = {"sync": False, "weights_dir": str(home / "weights"), "runs_dir": str(home / "runs"),
              "datasets_dir": str(home / "datasets")}
    wanted.update({k: False for k in ("clearml", "comet", "dvc", "hub", "mlflow", "neptune",
                                      "raytune", "tensorboard", "wandb") if k in SETTINGS})
    if any(SETTINGS.get(k) != v for k, v in wanted.items()):
        SETTINGS.update(wanted)
    font = font_manager.findfont("DejaVu Sans", fallback_to_default=True)
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):
        target = Path(USER_CONFIG_DIR) / name
        if not target.exists() and font:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(font, target)
