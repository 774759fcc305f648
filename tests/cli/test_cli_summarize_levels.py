"""`summarize -q` prints only the results; `-v` adds per-class AP, restarts, skipped lines."""

from __future__ import annotations

from pathlib import Path

from conftest import invoke

LOG = Path(__file__).parents[1] / "data" / "logs" / "fire-detection_log.txt"


def test_quiet_and_verbose_change_what_summarize_prints(tmp_path):
    normal = invoke("summarize", LOG, "--out", tmp_path / "a").output.splitlines()
    quiet = invoke("-q", "summarize", LOG, "--out", tmp_path / "b").output.splitlines()
    verbose = invoke("-v", "summarize", LOG, "--out", tmp_path / "c").output.splitlines()
    labels = [ln.split()[0] for ln in quiet[1:-1]]
    assert labels == ["trained", "loss", "mAP@0.5"] and quiet[-1].startswith("wrote ")
    assert any(ln.strip().startswith("speed") for ln in normal)
    assert not any("per-class AP" in ln for ln in normal)
    assert "  per-class AP at the best mAP (iteration 6400):" in verbose
    assert any(ln.split()[:2] == ["0", "fire"] and "AP  50.11 %" in ln for ln in verbose)
    assert len(quiet) < len(normal) < len(verbose)
