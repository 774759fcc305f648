"""subset: class choice rules and the subset builder, on a generated Kaggle-layout tree."""

import os
import re
from pathlib import Path

import pytest

from pipeline.convert.engine import ConvertOptions
from pipeline.convert.sources.imagenet import convert_imagenet
from pipeline.convert.sources.kaggle_files import parse_synsets
from pipeline.dataset.class_choice import (
    ClassRule,
    choose_classes,
    load_synonyms,
    resolve_classes,
    spread_pick,
)
from pipeline.dataset.folder import open_dataset, read_list
from pipeline.dataset.labels import label_path_beside
from pipeline.dataset.manifest import ClassCount, ClassInfo, read_manifest
from pipeline.dataset.subset import SubsetOptions, build_subset, remap_label
from pipeline.errors import UserError
from pipeline.synth.imagenet import class_name, make_imagenet_tree, wnid

DATA = Path(__file__).parents[1] / "data" / "imagenet"
KEEP = [3, 6, 2, 5, 1, 4, 6, 2]  # annotated train images kept per class (of 6 generated)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A converted 8-class tree with uneven class sizes and one image holding two classes."""
    root = make_imagenet_tree(tmp_path_factory.mktemp("tree") / "in", classes=8, annotated=6,
                              unannotated=1, val=8)
    ann = root / "ILSVRC/Annotations/CLS-LOC/train"
    for cls, keep in enumerate(KEEP):
        for n in range(keep + 1, 7):
            (ann / wnid(cls) / f"{wnid(cls)}_{n}.xml").unlink()
    xml = ann / wnid(0) / f"{wnid(0)}_1.xml"  # add a class-7 object to a class-0 image
    text = xml.read_text()
    obj = re.search(r"\t<object>.*?</object>\n", text, re.S).group(0)
    xml.write_text(text.replace("</annotation>", obj.replace(wnid(0), wnid(7)) + "</annotation>"))
    convert_imagenet(root, options=ConvertOptions(workers=1))
    return root / "yolo"


def expected_counts() -> dict[str, int]:
    counts = {wnid(c): k for c, k in enumerate(KEEP)}
    counts[wnid(7)] += 1  # the mixed image
    return counts


def labels(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.txt"))
            if p.parent != folder}


def test_top_n_takes_the_best_covered_classes(source):
    manifest = read_manifest(source)
    counts = expected_counts()
    assert {k: v.images for k, v in manifest.splits["train"].per_class.items()} == counts
    choice = choose_classes(manifest, ClassRule(top=3))
    best = sorted(counts, key=lambda k: (-counts[k], k))[:3]
    assert [c.key for c in choice.classes] == sorted(best)  # new ids follow source id order
    assert set(choice.reasons.values()) == {"top"}


def test_explicit_classes_by_key_name_and_synonym(source):
    manifest = read_manifest(source)
    picked = resolve_classes(manifest.classes, (wnid(4), class_name(1).upper(), "synthetic class 2"),
                             load_synonyms(manifest))
    assert [c.key for c in picked] == [wnid(4), wnid(1), wnid(2)]


def test_ambiguous_and_unknown_names_list_the_closest_matches():
    classes = parse_synsets((DATA / "LOC_synset_mapping.txt").read_text())
    with pytest.raises(UserError, match=r"'crane' is ambiguous: n02012849 .*n03126707"):
        resolve_classes(classes, ("crane",))
    with pytest.raises(UserError, match=r"unknown class 'goldfsh'; closest: goldfish \(n01443537\)"):
        resolve_classes(classes, ("goldfsh",))


def test_real_synonyms_resolve(real_kaggle_tree):
    manifest = convert_imagenet(real_kaggle_tree, splits=("val",), options=ConvertOptions(workers=1))
    assert [c.key for c in resolve_classes(manifest.classes, ("Tinca tinca",),
                                           load_synonyms(manifest))] == ["n01440764"]


def test_spread_takes_one_class_per_slice_where_top_takes_a_cluster():
    classes = [ClassInfo(id=i, key=f"k{i:02d}", name=f"c{i}") for i in range(20)]
    dogs = set(range(5, 13))  # a run of related, well-covered classes
    counts = {c.key: ClassCount(images=(500 + c.id if c.id in dogs else 10 + c.id))
              for c in classes}
    spread = spread_pick(classes, counts, 4)
    assert [c.id for c in spread] == [4, 9, 12, 19]  # best of 0-4, 5-9, 10-14, 15-19
    assert sum(c.id in dogs for c in spread) == 2
    top = sorted(classes, key=lambda c: -counts[c.key].images)[:4]
    assert all(c.id in dogs for c in top)
    with pytest.raises(UserError, match="--spread 21 needs 21"):
        spread_pick(classes, counts, 21)


def test_spread_on_the_tree_and_combined_rules(source):
    manifest = read_manifest(source)
    counts = expected_counts()
    choice = choose_classes(manifest, ClassRule(spread=2))
    halves = [[wnid(i) for i in range(4)], [wnid(i) for i in range(4, 8)]]
    assert [c.key for c in choice.classes] == [
        max(h, key=lambda k: (counts[k], -int(k[1:]))) for h in halves]
    combined = choose_classes(manifest, ClassRule(classes=(wnid(4),), top=1, spread=1))
    assert combined.reasons[wnid(4)] == "explicit"
    assert sorted(combined.reasons.values()) == ["explicit", "spread", "top"]


def test_exclude_and_min_images(source):
    manifest = read_manifest(source)
    counts = expected_counts()
    choice = choose_classes(manifest, ClassRule(top=2, exclude=(wnid(1),)))
    assert wnid(1) not in choice.reasons and len(choice.classes) == 2
    floor = choose_classes(manifest, ClassRule(min_images=4))
    assert {c.key for c in floor.classes} == {k for k, n in counts.items() if n >= 4}
    with pytest.raises(UserError, match="both chosen and excluded"):
        choose_classes(manifest, ClassRule(classes=(wnid(1),), exclude=(wnid(1),)))
    with pytest.raises(UserError, match=r"below --min-images 5"):
        choose_classes(manifest, ClassRule(classes=(wnid(4),), min_images=5))
    with pytest.raises(UserError, match="no classes chosen"):
        choose_classes(manifest, ClassRule())


def test_remap_label_pure():
    text, ids, dropped, problems = remap_label(
        b"3 0.5 0.5 0.2 0.2\n7 0.1 0.1 0.1 0.1\n3 0.25 0.3 x 0.1\n", {3: 0}, 8, "a.txt")
    assert (text, ids, dropped) == (b"0 0.5 0.5 0.2 0.2\n", (0,), 1)
    assert [(p.kind, p.file) for p in problems] == [("bad_number", "a.txt:3")]


def test_remapped_labels_match_the_source_line_by_line(source, tmp_path):
    rule = ClassRule(classes=(wnid(7), wnid(0)), top=1)
    report = build_subset(source, tmp_path / "sub", rule, SubsetOptions(workers=1))
    chosen = [c.source_id for c in report.manifest.classes]
    assert chosen == sorted(chosen) and [c.id for c in report.manifest.classes] == [0, 1, 2]
    remap = {old: new for new, old in enumerate(chosen)}
    src = open_dataset(source)
    for split in ("train", "val"):
        expected = {}
        for image in src.images(split):
            lines = Path(label_path_beside(image)).read_text().splitlines()
            kept = [f"{remap[int(li.split()[0])]} {li.split(None, 1)[1]}" for li in lines
                    if int(li.split()[0]) in remap]
            if kept:
                expected[os.path.basename(image)] = "".join(k + "\n" for k in kept)
        listed = read_list(tmp_path / "sub" / f"{split}.txt")
        assert all(p.startswith(str(tmp_path / "sub" / split) + os.sep) for p in listed)
        got = {os.path.basename(p): Path(label_path_beside(p)).read_text() for p in listed}
        assert got == expected
    mixed = Path(tmp_path / "sub/train" / wnid(0) / f"{wnid(0)}_1.txt").read_text()
    assert sorted(int(li.split()[0]) for li in mixed.splitlines())[-1] == remap[7]
    info = report.manifest.splits["train"]
    assert info.fixes["boxes_dropped_other_classes"] > 0
    assert (tmp_path / "sub" / "sub.names").read_text().splitlines() == [
        c.name for c in report.manifest.classes]


@pytest.mark.parametrize("mode", ["symlink", "hardlink", "copy"])
def test_link_modes(source, tmp_path, mode):
    build_subset(source, tmp_path / "sub", ClassRule(top=1), SubsetOptions(link=mode, workers=1))
    listed = read_list(tmp_path / "sub/train.txt")
    assert listed
    for image in listed:
        original = os.path.realpath(image)
        if mode == "symlink":
            assert os.path.islink(image) and os.readlink(image) == original
            assert str(source.parent) in original
        else:
            assert not os.path.islink(image)
            real = next(p for p in open_dataset(source).images("train")
                        if os.path.basename(p) == os.path.basename(image))
            assert os.path.samefile(image, real) == (mode == "hardlink")
            assert Path(image).read_bytes() == Path(real).read_bytes()
        assert not os.path.islink(label_path_beside(image))


def test_rerun_is_idempotent_and_a_new_rule_removes_stale_files(source, tmp_path):
    out = tmp_path / "sub"
    build_subset(source, out, ClassRule(top=3), SubsetOptions(workers=1))
    before = {p: (p.lstat().st_mtime_ns, p.read_bytes() if not p.is_symlink() else os.readlink(p))
              for p in out.rglob("*") if p.is_file() or p.is_symlink()}
    again = build_subset(source, out, ClassRule(top=3), SubsetOptions(workers=1))
    for name, info in again.manifest.splits.items():
        assert info.labels_written == 0 and info.labels_unchanged == info.images, name
    after = {p: (p.lstat().st_mtime_ns, p.read_bytes() if not p.is_symlink() else os.readlink(p))
             for p in out.rglob("*") if p.is_file() or p.is_symlink()}
    assert set(after) == set(before)
    manifest = out / "manifest.json"
    assert all(after[p][1] == before[p][1] for p in before if p != manifest)  # same bytes
    assert all(after[p][0] == before[p][0] for p in before if p.parent != out)  # not rewritten
    counters = re.compile(rb'"labels_(written|unchanged)": \d+')
    assert counters.sub(b"", after[manifest][1]) == counters.sub(b"", before[manifest][1])
    smaller = build_subset(source, out, ClassRule(top=1), SubsetOptions(workers=1))
    kept = smaller.manifest.classes[0].key
    assert [p.name for p in (out / "train").iterdir()] == [kept]  # emptied folders removed
    assert smaller.manifest.source["stale_files_removed"] > 0


def test_subset_of_a_subset(source, tmp_path):
    first = build_subset(source, tmp_path / "a", ClassRule(top=3), SubsetOptions(workers=1))
    middle = first.manifest.classes[1].key
    second = build_subset(tmp_path / "a", tmp_path / "b", ClassRule(classes=(middle,)),
                          SubsetOptions(workers=1))
    direct = build_subset(source, tmp_path / "c", ClassRule(classes=(middle,)),
                          SubsetOptions(workers=1))
    assert second.manifest.classes[0].source_id == 1
    assert labels(tmp_path / "b") == labels(tmp_path / "c")
    for image in read_list(tmp_path / "b/train.txt"):
        assert os.readlink(image).startswith(str(source.parent))  # the real file, not a chain
    assert second.manifest.splits["train"].per_class == direct.manifest.splits["train"].per_class


def test_max_per_class_and_val_fraction_are_seeded(source, tmp_path):
    def build(out, seed):
        return build_subset(source, tmp_path / out, ClassRule(top=3),
                            SubsetOptions(max_per_class=3, val_fraction=0.34, seed=seed,
                                          workers=1))
    a, b = build("a", 1), build("b", 1)
    train = read_list(tmp_path / "a/train.txt")
    val = read_list(tmp_path / "a/val.txt")
    assert set(a.manifest.splits) == {"train", "val", "test"}
    assert [os.path.basename(p) for p in train] == [
        os.path.basename(p) for p in read_list(tmp_path / "b/train.txt")]
    names = {os.path.basename(p) for p in train} | {os.path.basename(p) for p in val}
    assert not {os.path.basename(p) for p in train} & {os.path.basename(p) for p in val}
    per_class = {}
    for p in train + val:
        for line in Path(label_path_beside(p)).read_text().splitlines():
            per_class.setdefault(int(line.split()[0]), set()).add(os.path.basename(p))
    assert all(len(v) <= 3 for v in per_class.values()) and len(names) == 9
    assert len(val) == 3  # round(0.34 * 3) from each class
    assert b.manifest.splits["test"].images == a.manifest.splits["test"].images


def test_unannotated_empty_lists_images_left_without_box(source, tmp_path):
    report = build_subset(source, tmp_path / "s", ClassRule(classes=(wnid(3),)),
                          SubsetOptions(unannotated="empty", workers=1))
    info = report.manifest.splits["train"]
    listed = read_list(info.list_file)
    empty = [p for p in listed if not Path(label_path_beside(p)).read_bytes()]
    assert len(listed) == sum(KEEP) and len(empty) == sum(KEEP) - KEEP[3]
    assert info.unannotated_listed == len(empty) == info.unannotated


def test_missing_source_label_is_reported_not_fatal(source, tmp_path):
    copy = tmp_path / "src"
    src = open_dataset(source)
    victim = next(p for p in src.images("train") if f"{wnid(1)}_1." in p)
    label = Path(label_path_beside(victim))
    saved = label.read_bytes()
    label.unlink()
    try:
        report = build_subset(source, copy, ClassRule(classes=(wnid(1),)), SubsetOptions(workers=1))
    finally:
        label.write_bytes(saved)
    info = report.manifest.splits["train"]
    assert info.problems["missing_label"].count == 1
    assert info.images == KEEP[1] - 1
    assert str(label) in Path(info.problems_file).read_text()


def test_refuses_a_foreign_folder_and_warns_about_pjreddie_paths(source, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty and holds no subset"):
        build_subset(source, tmp_path / "busy", ClassRule(top=1))
    with pytest.raises(UserError, match="is the source dataset"):
        build_subset(source, source, ClassRule(top=1))
    report = build_subset(source, tmp_path / "images" / "s", ClassRule(top=1),
                          SubsetOptions(workers=1))
    assert report.warnings and "pjreddie" in report.warnings[0]


def test_spread_on_real_imagenet_ids_avoids_the_dog_run():
    classes = parse_synsets((DATA / "LOC_synset_mapping.txt").read_text())
    dogs = range(151, 269)  # Chihuahua .. Mexican hairless: one run of sorted wnids
    assert (classes[151].name, classes[268].name) == ("Chihuahua", "Mexican hairless")
    counts = {c.key: ClassCount(images=1300 - c.id % 7 if c.id in dogs else 700 + c.id % 13)
              for c in classes}
    top = sorted(classes, key=lambda c: (-counts[c.key].images, c.id))[:10]
    spread = spread_pick(classes, counts, 10)
    assert all(c.id in dogs for c in top)
    assert sum(c.id in dogs for c in spread) <= 2 and len({c.id // 100 for c in spread}) == 10


def test_undecodable_synonym_file_is_read_not_raised(source):
    manifest = read_manifest(source)
    path = Path(str(manifest.source["root"])) / "LOC_synset_mapping.txt"
    original = path.read_bytes()  # the fixture is shared: put the file back
    try:
        path.write_bytes(original + b"n09999999 caf\xe9, \xff\n")
        synonyms = load_synonyms(manifest)
    finally:
        path.write_bytes(original)
    assert synonyms["n09999999"] == ["caf\udce9", "\udcff"]  # as argv holds such bytes
