"""CLI of convert imagenet / synth imagenet: exit codes, one-line errors, --json, summaries."""

import json

from conftest import invoke


def test_synth_then_convert_then_rerun(tmp_path):
    root = tmp_path / "in"
    result = invoke(
        "synth",
        "imagenet",
        root,
        "--classes",
        2,
        "--annotated",
        3,
        "--unannotated",
        1,
        "--val",
        2,
        "--placeholder",
    )
    assert result.exit_code == 0 and "8 train images (6 with XML)" in result.output
    result = invoke("convert", "imagenet", root, "--workers", 1)
    assert result.exit_code == 0, result.output
    assert "train: 6 images listed" in result.output and "labels 6 written, 0 unchanged" in result.output
    again = invoke("convert", "imagenet", root, "--json")
    data = json.loads(again.output)
    assert data["train"]["labels_written"] == 0 and data["train"]["labels_unchanged"] == 6
    assert data["val"]["images"] == 2


def test_missing_root_is_one_line_exit_2(tmp_path):
    result = invoke("convert", "imagenet", tmp_path / "nowhere")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"Error: dataset root {tmp_path / 'nowhere'} is not a folder (give the unpacked Kaggle download)"
    ]


def test_missing_synset_mapping_is_exit_2(tmp_path):
    root = tmp_path / "in"
    invoke("synth", "imagenet", root, "--classes", 1, "--placeholder")
    (root / "LOC_synset_mapping.txt").unlink()
    result = invoke("convert", "imagenet", root)
    assert result.exit_code == 2
    assert result.output.startswith("Error: LOC_synset_mapping.txt not found")


def test_bad_choice_is_a_usage_error(tmp_path):
    result = invoke("convert", "imagenet", tmp_path, "--unannotated", "maybe")
    assert result.exit_code == 2 and "Invalid value for '--unannotated'" in result.output


def test_an_os_error_is_one_line_exit_2(tmp_path):
    root = tmp_path / "in"
    invoke("synth", "imagenet", root, "--classes", 1, "--placeholder")
    (tmp_path / "blocker").write_text("a file where a folder must go")
    result = invoke("convert", "imagenet", root, "--out-manifest", tmp_path / "blocker" / "m.json")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"Error: File exists: {tmp_path / 'blocker'}"]


def test_quiet_and_verbose_may_follow_the_sub_command():
    from pipeline.cli import hoist_global_flags

    assert hoist_global_flags(["convert", "imagenet", "R", "-q"]) == ["-q", "convert", "imagenet", "R"]
    assert hoist_global_flags(["-v", "summarize", "x", "-vv"]) == ["-v", "-vv", "summarize", "x"]
    assert hoist_global_flags(["check", "--", "-q"]) == ["check", "--", "-q"]


def test_quiet_after_the_sub_command_runs(tmp_path):
    import subprocess
    import sys

    root = tmp_path / "in"
    invoke("synth", "imagenet", root, "--classes", 1, "--placeholder")
    done = subprocess.run([sys.executable, "-m", "pipeline", "convert", "imagenet", str(root), "-q"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "train: 5 images listed" in done.stdout
