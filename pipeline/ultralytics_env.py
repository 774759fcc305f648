"""Run Ultralytics offline: no hub, no weight or font downloads, a private settings folder.

Call `offline_ultralytics()` before the first `import ultralytics` anywhere.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def offline_ultralytics(config_dir: str | Path | None = None) -> None:
    """Set Ultralytics' offline switches and a private config dir (idempotent)."""
    os.environ["YOLO_OFFLINE"] = "1"
    if "YOLO_CONFIG_DIR" not in os.environ or config_dir is not None:
        folder = Path(config_dir or Path(tempfile.gettempdir()) / "yolo-pipeline-ultralytics")
        folder.mkdir(parents=True, exist_ok=True)
        os.environ["YOLO_CONFIG_DIR"] = str(folder)
    os.environ.setdefault("MPLBACKEND", "Agg")
