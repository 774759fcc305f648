"""CLI: subset / check / stats exit codes, Error lines, --dry-run, --json, exit 1 on problems."""

import json
from pathlib import Path

import pytest
from conftest import invoke

from pipeline.convert.engine import ConvertOptions
from pipeline.convert.sources.imagenet import convert_imagenet


@pytest.fixture
def real(real_kaggle_tree) -> Path:
    """The real ImageNet fixtures converted (10 classes with 1-3 annotated train images)."""
    convert_imagenet(real_kaggle_tree, options=ConvertOptions(workers=1))
    return real_kaggle_tree / "yolo"


def test_dry_run_prints_the_choice_and_writes_nothing(real, tmp_path):
    out = tmp_path / "out"
    before = sorted(p for p in real.parent.rglob("*"))
    result = invoke("subset", real, "--top", "2", "--out", out, "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    chosen = json.loads(result.output)["classes"]
    # goldfish has 3 XML; tench is the lowest id of those with 2; new ids follow source ids
    assert [(c["key"], c["images"], c["new_id"]) for c in chosen] == [
        ("n01440764", 2, 0), ("n01443537", 3, 1)]
    text = invoke("subset", real, "--classes", "tench,goldfish", "--out", out, "--dry-run")
    assert "n01440764" in text.output and "explicit" in text.output
    assert not out.exists() and sorted(p for p in real.parent.rglob("*")) == before
    assert invoke("subset", real, "--top", "2", "--out", out).exit_code == 0  # the same, not dry
    assert (out / "manifest.json").is_file()


def test_build_then_check_then_stats(real, tmp_path):
    out = tmp_path / "fish"
    result = invoke("subset", real, "--classes", "tench", "--classes", "n01443537",
                    "--out", out, "--link", "hardlink")
    assert result.exit_code == 0, result.output
    assert (out / "fish.names").read_text() == "tench\ngoldfish\n"
    checked = invoke("check", out, "--decode")
    assert checked.exit_code == 0 and "no problems" in checked.output
    # the fixture's images are black JPEGs: those of equal size have equal bytes
    dups = invoke("check", out, "--duplicates", "--json")
    assert dups.exit_code == 1 and json.loads(dups.output)["problems"] == {"duplicate_image": 4}
    stats = invoke("stats", out, "--json", "--chart", tmp_path / "c.png")
    assert stats.exit_code == 0
    assert json.loads(stats.output)["splits"]["train"]["per_class"]["n01443537"]["boxes"] == 27
    assert (tmp_path / "c.png").stat().st_size > 0


def test_check_exits_1_and_names_the_report(real):
    label = Path(real.parent / "ILSVRC/Data/CLS-LOC/train/n01440764/n01440764_107.txt")
    label.write_text("0 0.5 0.5 0.2\n")
    result = invoke("check", real)
    assert result.exit_code == 1
    assert "bad_field_count 1" in result.output and "check-report.tsv" in result.output
    assert f"{label}:1" in (real / "check-report.tsv").read_text()


@pytest.mark.parametrize(("args", "message"), [
    (["--classes", "crane", "--dry-run"],
     "Error: class 'crane' is ambiguous: n02012849 (crane (n02012849)), "
     "n03126707 (crane (n03126707)); give the key"),
    (["--classes", "tenchh", "--dry-run"], "Error: unknown class 'tenchh'; closest: tench"),
    (["--top", "2"], "Error: --out DIR is required"),
    (["--dry-run"], "Error: no classes chosen"),
])
def test_user_errors(real, args, message):
    result = invoke("subset", real, *args)
    assert result.exit_code == 2
    assert message in result.output


def test_missing_dataset_is_a_one_line_error(tmp_path):
    result = invoke("stats", tmp_path)
    assert result.exit_code == 2
    assert result.output == (f"Error: no dataset in {tmp_path} (looked for manifest.json, "
                             "data.yaml, *.data; run 'yolo-pipeline convert' first)\n")


def test_unwritable_out_and_unreadable_labels_are_not_tracebacks(real, tmp_path):
    (tmp_path / "file").write_text("")
    result = invoke("subset", real, "--top", "2", "--out", tmp_path / "file" / "sub")
    assert result.exit_code == 2
    assert result.output.startswith(f"Error: cannot write the subset in {tmp_path / 'file' / 'sub'}")
    label = Path(real.parent / "ILSVRC/Data/CLS-LOC/train/n01440764/n01440764_107.txt")
    label.unlink()
    label.mkdir()  # a folder where a label should be: a missing label, for every command
    result = invoke("subset", real, "--classes", "tench", "--out", tmp_path / "sub", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["splits"]["train"]["problems"]["missing_label"]["count"] == 1
    assert invoke("check", real).exit_code == 1
    assert invoke("stats", real).exit_code == 0
