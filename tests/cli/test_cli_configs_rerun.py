"""configs and check-cfg agree on a short run; a hand-edited file survives a rerun; -q/-v."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import invoke

TEMPLATE = Path(__file__).parents[1] / "data" / "cfg" / "tiny_yolo.cfg"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """A converted synthetic dataset: 2 classes, 6 train + 4 val images."""
    root = tmp_path_factory.mktemp("rerun") / "in"
    assert invoke("synth", "imagenet", root, "--classes", 2, "--annotated", 3,
                  "--unannotated", 0, "--val", 4).exit_code == 0
    assert invoke("-q", "convert", "imagenet", root, "--workers", 1).exit_code == 0
    return root / "yolo"


def _configs(dataset: Path, out: Path, *args) -> object:
    return invoke(*args, "configs", dataset, "-t", TEMPLATE, "-o", out, "--name", "toy",
                  "--fork", "pjreddie", "--max-batches", 20)


def test_a_short_run_from_configs_passes_check_cfg_with_a_warning(dataset, tmp_path):
    assert _configs(dataset, tmp_path).exit_code == 0
    check = invoke("check-cfg", tmp_path / "toy.cfg", "--data", tmp_path / "toy.data",
                   "--fork", "pjreddie")
    assert check.exit_code == 0, check.output
    assert "warning: max_batches=20 is below the rule" in check.output
    cfg = tmp_path / "toy.cfg"
    cfg.write_text(cfg.read_text().replace("max_batches=20\n", "max_batches=30\n"))
    check = invoke("check-cfg", cfg, "--fork", "pjreddie")
    assert check.exit_code == 1 and "error: max_batches=30 is below the rule" in check.output


def test_a_rerun_keeps_a_hand_edited_cfg_unless_force(dataset, tmp_path):
    assert _configs(dataset, tmp_path).exit_code == 0
    assert _configs(dataset, tmp_path).exit_code == 0  # unchanged files: rewritten quietly
    cfg = tmp_path / "toy.cfg"
    edited = cfg.read_text() + "# my note\n"
    cfg.write_text(edited)
    result = _configs(dataset, tmp_path)
    assert result.exit_code == 2 and len(result.output.splitlines()) == 1
    assert "toy.cfg changed since configs wrote it" in result.output and "--force" in result.output
    assert cfg.read_text() == edited
    result = invoke("configs", dataset, "-t", TEMPLATE, "-o", tmp_path, "--name", "toy",
                    "--fork", "pjreddie", "--force")
    assert result.exit_code == 0 and "# my note" not in cfg.read_text()
    (tmp_path / "train.txt").write_text("/elsewhere/a.jpg\n")  # any file it writes
    assert "train.txt changed" in _configs(dataset, tmp_path).output


def test_quiet_and_verbose_change_what_configs_prints(dataset, tmp_path):
    normal = _configs(dataset, tmp_path / "a").output.splitlines()
    quiet = _configs(dataset, tmp_path / "b", "-q").output.splitlines()
    verbose = _configs(dataset, tmp_path / "c", "-v").output.splitlines()
    assert [ln.split()[0] for ln in quiet] == ["wrote"]
    assert any("max_batches=20" in ln and "given (--max-batches)" in ln for ln in normal)
    assert not any(ln.startswith("darknet fork:") for ln in normal)
    assert any(ln.startswith("darknet fork: pjreddie (given (--fork))") for ln in verbose)
    assert any("warning: max_batches=20" in ln for ln in verbose)
    assert len(quiet) < len(normal) < len(verbose)
