"""subset limits: the per-class cap holds for images with several classes, and a rebuild
removes only files of its own folder, whatever the old manifest names."""

from __future__ import annotations

import json
import random
from collections import Counter

from test_subset import source  # noqa: F401  (the module-scoped converted tree)

from pipeline.dataset.class_choice import ClassRule
from pipeline.dataset.subset import Entry, SubsetOptions, build_subset, cap_per_class


def test_cap_per_class_is_never_exceeded_by_multi_class_images():
    entries = [Entry(f"{i}.jpg", ids=ids) for i, ids in enumerate(
        [(0,), (0, 1), (0, 1), (1,), (1, 2), (2,), (0, 1, 2), (), (1,), (0,)])]
    for seed in range(40):
        kept = cap_per_class(entries, 2, random.Random(seed))
        per_class = Counter(c for e in kept for c in set(e.ids))
        assert max(per_class.values()) <= 2, (seed, per_class)
        assert Entry("7.jpg") in kept  # an image without boxes is not capped
        assert [e.src for e in kept] == sorted((e.src for e in kept), key=lambda s: int(s[:-4]))


def test_a_rebuild_never_deletes_a_list_file_outside_the_subset(source, tmp_path):  # noqa: F811
    out = tmp_path / "sub"
    build_subset(source, out, ClassRule(top=2), SubsetOptions(workers=1, val_fraction=0.5))
    victim = tmp_path / "precious.txt"
    victim.write_text("not yours\n")
    doc = json.loads((out / "manifest.json").read_text())
    doc["splits"]["test"]["list_file"] = str(victim)  # a hand-edited or hostile manifest
    (out / "manifest.json").write_text(json.dumps(doc))
    build_subset(source, out, ClassRule(top=2), SubsetOptions(workers=1))  # no test split now
    assert victim.read_text() == "not yours\n"
    assert not (out / "problems-test.tsv").exists()
