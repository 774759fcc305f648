"""Bench for configs / check-cfg: cfg parse+render+lint speed, and `check-cfg --data` over
a large image list (the dataset rules stat every image and read every label)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from pipeline.configs import check_cfg
from pipeline.darknet.cfg import parse_cfg, render_cfg
from pipeline.darknet.fork import DEBIAN_CFG_DIR
from pipeline.darknet.lint import lint_cfg
from pipeline.dataset.datafiles import write_data, write_list, write_names

IMAGES = 50_000
PER_FOLDER = 1_000


def _tree(root: Path, n: int) -> Path:
    """n placeholder images with one-line labels beside them, a list, names and a .data."""
    paths = []
    for i in range(n):
        folder = root / "pics" / f"f{i // PER_FOLDER:03d}"
        if i % PER_FOLDER == 0:
            folder.mkdir(parents=True, exist_ok=True)
        img = folder / f"{i:06d}.jpg"
        if not img.exists():
            img.write_bytes(b"jpeg")
            img.with_suffix(".txt").write_text(f"{i % 2} 0.5 0.5 0.2 0.2\n")
        paths.append(str(img))
    write_list(root / "train.txt", paths)
    write_names(root / "x.names", ["a", "b"])
    write_data(root / "x.data", 2, str(root / "train.txt"), str(root / "train.txt"),
               str(root / "x.names"), str(root / "backup"))
    return root / "x.data"


def run(workdir: Path) -> str:
    """Markdown section with the measured numbers."""
    cfgs = sorted(DEBIAN_CFG_DIR.glob("*.cfg"))
    texts = [p.read_text(errors="surrogateescape") for p in cfgs]
    t = time.perf_counter()
    lines = 0
    for text, path in zip(texts, cfgs, strict=True):
        cfg = parse_cfg(text)
        assert render_cfg(cfg) == text
        lint_cfg(cfg, str(path), "pjreddie")
        lines += text.count("\n")
    cfg_s = time.perf_counter() - t
    data = _tree(workdir, IMAGES)
    os.sync()
    t = time.perf_counter()
    report = check_cfg(DEBIAN_CFG_DIR / "yolov3-tiny.cfg", data, "pjreddie")
    data_s = time.perf_counter() - t
    assert report.counts.get("missing_label:error", 0) == 0
    return (
        "## configs / check-cfg\n\n"
        "| what | size | time | rate |\n|---|---|---|---|\n"
        f"| parse + render + lint, every Debian cfg | {len(cfgs)} files, {lines:,} lines | "
        f"{cfg_s * 1000:.0f} ms | {lines / cfg_s:,.0f} lines/s |\n"
        f"| check-cfg --data (stat image, find label, read label) | {IMAGES:,} images | "
        f"{data_s:.2f} s | {IMAGES / data_s:,.0f} images/s |\n\n"
        "Warm page cache; one process. At this rate the 1,281,167 ImageNet train images take "
        f"about {1_281_167 / (IMAGES / data_s) / 60:.1f} min.\n"
    )
