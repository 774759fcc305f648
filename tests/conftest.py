"""Shared fixtures: offline Ultralytics, CLI runner that forbids tracebacks, real-data tree."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner, Result

from pipeline.ultralytics.env import offline_ultralytics

offline_ultralytics()

DATA = Path(__file__).parent / "data"


def invoke(*args: str, input: str | None = None) -> Result:
    """Run the CLI in-process; a traceback in the output fails the test."""
    from pipeline.cli import cli

    result = CliRunner().invoke(cli, [str(a) for a in args], input=input, catch_exceptions=True)
    assert "Traceback" not in result.output, result.output
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.fixture
def cli_run():
    """The `invoke` helper as a fixture."""
    return invoke


def black_jpeg(path: Path, width: int, height: int) -> None:
    """A real JPEG of the given size (for header reads and Ultralytics scans)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.zeros((height, width, 3), np.uint8))


def xml_size(path: Path) -> tuple[int, int]:
    text = path.read_text()
    return (int(text.split("<width>")[1].split("<")[0]), int(text.split("<height>")[1].split("<")[0]))


@pytest.fixture
def real_kaggle_tree(tmp_path: Path) -> Path:
    """The real ImageNet XML fixtures arranged in the Kaggle layout, with black JPEGs of their sizes."""
    root = tmp_path / "kaggle"
    src = DATA / "imagenet"
    for xml in sorted((src / "xml").rglob("*.xml")):
        rel = xml.relative_to(src / "xml")
        dest = root / "ILSVRC" / "Annotations" / "CLS-LOC" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(xml, dest)
        w, h = xml_size(xml)
        black_jpeg(root / "ILSVRC" / "Data" / "CLS-LOC" / rel.with_suffix(".JPEG"), w, h)
    shutil.copy(src / "LOC_synset_mapping.txt", root / "LOC_synset_mapping.txt")
    stems = {p.stem for p in (src / "xml" / "val").glob("*.xml")}
    rows = (src / "LOC_val_solution.csv").read_text().splitlines(keepends=True)
    (root / "LOC_val_solution.csv").write_text(
        rows[0] + "".join(r for r in rows[1:] if r.split(",")[0] in stems)
    )
    return root


def alexeyab_darknet() -> str | None:
    """The AlexeyAB build `make darknet-ab` made (or `DARKNET_AB`), if there is one."""
    import os

    path = os.environ.get("DARKNET_AB") or str(Path(__file__).parents[1] / ".darknet-ab" / "darknet")
    return path if os.access(path, os.X_OK) else None


@pytest.fixture(scope="session")
def ab_darknet() -> str:
    """The AlexeyAB binary; CI fails without it, elsewhere the test skips with the reason."""
    import os

    path = alexeyab_darknet()
    if path is None:
        reason = ("no AlexeyAB darknet build (make darknet-ab needs ../shared/darknet-alexeyab, "
                  "or set DARKNET_AB)")
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return path
