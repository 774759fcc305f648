"""One label-line rule set: `check` and `check-cfg --data` find the same problems, by one name."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from pipeline.darknet.data import lint_data
from pipeline.dataset.checks import check_dataset
from pipeline.dataset.datafiles import read_data, write_data, write_list, write_names
from pipeline.dataset.label_lines import (
    LINE_PROBLEMS,
    MISSING_IMAGE,
    MISSING_LABEL,
    RELATIVE_PATH,
    LineError,
    check_lines,
)

SHARED = (*LINE_PROBLEMS, MISSING_IMAGE, MISSING_LABEL, RELATIVE_PATH)
#: One bad label file per line; each line breaks one rule (the clean first line does not).
BAD_LABELS = {
    "extra_field": (b"0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2 9\n", "bad_field_count"),
    "short": (b"1 0.5\n", "bad_field_count"),
    "word": (b"cat 0.5 0.5 0.2 0.2\n", "bad_number"),
    "nan": (b"0 nan 0.5 0.2 0.2\n", "bad_number"),
    "class": (b"0 0.5 0.5 0.2 0.2\r\n2 0.5 0.5 0.2 0.2\r\n", "class_out_of_range"),
    "coords": (b"1 0.5 0.5 1.5 0.2\n", "coord_out_of_range"),
    "flat": (b"\n1 0.5 0.5 0 0.1\n", "non_positive_size"),
}


def _tree(root: Path) -> Path:
    """A darknet .data over images in `shots/` (no folder either fork rewrites), labels
    beside them: the bad files above, one image with no label, one listed but absent."""
    shots = root / "shots"
    shots.mkdir(parents=True)
    listed = []
    for stem, (data, _) in BAD_LABELS.items():
        (shots / f"{stem}.jpg").write_bytes(b"jpeg")
        (shots / f"{stem}.txt").write_bytes(data)
        listed.append(str(shots / f"{stem}.jpg"))
    (shots / "unlabelled.jpg").write_bytes(b"jpeg")
    listed += [str(shots / "unlabelled.jpg"), str(shots / "gone.jpg")]
    write_list(root / "train.txt", listed)
    write_names(root / "x.names", ["a", "b"])
    write_data(root / "x.data", 2, str(root / "train.txt"), str(root / "train.txt"),
               str(root / "x.names"), str(root / "backup"))
    return root / "x.data"


@pytest.mark.parametrize("fork", ["pjreddie", "alexeyab"])
def test_check_and_check_cfg_data_name_the_same_problems(tmp_path, fork):
    data = _tree(tmp_path / "ds")
    report = check_dataset(data)
    with open(report.report_file, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    from_check = Counter(r["kind"] for r in rows if r["kind"] in SHARED)
    findings = lint_data(read_data(data), fork).findings
    from_lint = Counter({rule: n for (rule, _), n in findings.counts.items() if rule in SHARED})

    expected = Counter(kind for _, kind in BAD_LABELS.values())
    expected.update({MISSING_LABEL: 1, MISSING_IMAGE: 1})  # an absent image: that alone
    assert from_check == from_lint == expected
    # ...and at the same lines of the same label files.
    check_lines_found = {(r["kind"], r["file"]) for r in rows if r["kind"] in LINE_PROBLEMS}
    lint_lines_found = {(f.rule, f"{f.file}:{f.line}") for f in findings.items
                        if f.rule in LINE_PROBLEMS}
    assert check_lines_found == lint_lines_found
    assert (("class_out_of_range", f"{tmp_path}/ds/shots/class.txt:2") in check_lines_found)


def test_check_lines_counts_valid_boxes_and_names_each_bad_line():
    boxes, bad = check_lines(b"0 0.5 0.5 0.2 0.2\n\n1 0.5 0.5 0.2\n0 2 0.5 0.1 0.1\n", 2)
    assert boxes == 1
    assert [(n, e.kind) for n, e in bad] == [(3, "bad_field_count"), (4, "coord_out_of_range")]
    assert all(isinstance(e, LineError) and e.kind in LINE_PROBLEMS for _, e in bad)
