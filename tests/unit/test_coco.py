"""COCO source on the real fixtures: exact label lines, id modes, crowd, hostile names, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import msgspec
import numpy as np
import pytest
from conftest import black_jpeg

from pipeline.convert.engine import ConvertOptions
from pipeline.convert.sources import polygons
from pipeline.convert.sources.coco import convert_coco, default_split
from pipeline.convert.sources.coco_schema import COCO80, Category, class_table, read_coco
from pipeline.errors import FormatError, UserError

DATA = Path(__file__).parents[1] / "data" / "coco"
ONE = ConvertOptions(workers=1)


def tree(
    tmp_path: Path, name: str, *, drop: tuple[str, ...] = (), data: dict | None = None
) -> tuple[Path, Path]:
    """The JSON (a fixture, or `data`) and an images folder with an empty file per image."""
    js = tmp_path / "annotations" / (name if data is None else "instances_test.json")
    js.parent.mkdir(parents=True, exist_ok=True)
    if data is None:
        shutil.copy(DATA / name, js)
    else:
        js.write_text(json.dumps(data))
    images = tmp_path / "images"
    images.mkdir(exist_ok=True)
    for img in json.loads(js.read_text())["images"]:
        if img["file_name"] not in drop:
            path = images / img["file_name"]
            if path.resolve().is_relative_to(images.resolve()):
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
    return js, images


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


# --- real COCO val2017 excerpt: ids 1..90 with gaps, crowd RLE --------------------------------


def test_val2017_gap_ids_and_hand_computed_boxes(tmp_path):
    js, images = tree(tmp_path, "instances_val2017_first4.json")
    manifest = convert_coco(js, images, options=ONE)
    got = lines(images / "000000252219.txt")
    # person 481918: bbox [326.28, 174.56, 71.24, 197.25] in 640x428
    assert "0 0.565469 0.638283 0.111313 0.460864" in got
    # umbrella (COCO id 28, after gaps at 12 and 26) -> class 25; its box ends exactly at x=640
    assert "25 0.938070 0.289509 0.123859 0.157290" in got
    info = manifest.splits["val2017_first4"]
    assert (info.images, info.boxes) == (4, 56)  # 57 annotations, the crowd one skipped
    assert info.fixes["crowd_skipped"] == 1
    assert info.problems["unused_category"].count == 59  # 80 categories, 21 used
    assert [c.source_id for c in manifest.classes][:13] == [*range(1, 12), 13, 14]
    assert (tmp_path / "yolo" / "coco.names").read_text().splitlines()[25] == "umbrella"
    listed = (tmp_path / "yolo" / "val2017_first4.txt").read_text().splitlines()
    assert listed == [str(images / f"{i:012d}.jpg") for i in (397133, 37777, 252219, 87038)]


def test_crowd_keep_adds_the_crowd_box(tmp_path):
    js, images = tree(tmp_path, "instances_val2017_first4.json")
    convert_coco(js, images, options=ONE)
    skipped = lines(images / "000000087038.txt")
    convert_coco(js, images, crowd="keep", options=ONE)
    kept = lines(images / "000000087038.txt")
    # crowd 900100087038: bbox [1, 190, 638, 101] in 640x480
    crowd_line = "0 0.500000 0.501042 0.996875 0.210417"
    assert crowd_line in kept and crowd_line not in skipped
    assert len(kept) == len(skipped) + 1


def test_coco80_equals_contiguous_on_real_coco_and_original_is_refused(tmp_path):
    js, images = tree(tmp_path, "instances_val2017_first4.json")
    convert_coco(js, images, options=ONE)
    contiguous = {p.name: p.read_bytes() for p in images.glob("*.txt")}
    manifest = convert_coco(js, images, ids="coco80", options=ONE)
    assert {p.name: p.read_bytes() for p in images.glob("*.txt")} == contiguous
    assert [c.name for c in manifest.classes] == [n for _, n in COCO80]
    with pytest.raises(UserError, match=r"--ids original needs category ids 0\.\.79, got 1, 2, 3"):
        convert_coco(js, images, ids="original", options=ONE)


def test_coco80_keeps_cocos_ids_for_a_subset_of_categories():
    table = class_table([Category(3, "car"), Category(1, "person"), Category(28, "umbrella")], "coco80")
    assert len(table.classes) == 80
    assert table.class_ids["car"] == 2 and table.class_ids["umbrella"] == 25
    contiguous = class_table([Category(3, "car"), Category(1, "person"), Category(28, "umbrella")])
    assert contiguous.class_ids == {"person": 0, "car": 1, "umbrella": 2}


def test_coco80_refuses_categories_that_are_not_cocos():
    with pytest.raises(UserError, match=r"category 1 is 'a' \(COCO's 1 is 'person'\)"):
        class_table([Category(1, "a"), Category(2, "b")], "coco80")
    with pytest.raises(UserError, match=r"category 12 is 'street sign' \(not a COCO id\)"):
        class_table([Category(12, "street sign")], "coco80")


def test_coco80_table_is_the_standard_one():
    ids = [cid for cid, _ in COCO80]
    assert len(ids) == 80 and ids[0] == 1 and ids[-1] == 90
    assert sorted(set(range(1, 91)) - set(ids)) == [12, 26, 29, 30, 45, 66, 68, 69, 71, 83]


# --- Roboflow export: placeholder category 0, half-pixel boxes, empty segmentation -------------


def test_roboflow_placeholder_is_kept_and_reported(tmp_path):
    js, images = tree(tmp_path, "Cones-and-Cells_test__annotations.coco.json")
    manifest = convert_coco(js, images, options=ONE)
    assert [(c.id, c.name, c.source_id) for c in manifest.classes] == [
        (0, "PowerCells-trafficcones", 0), (1, "Power_Cell", 1), (2, "trafficcone", 2)]
    info = manifest.splits["Cones-and-Cells_test__annotations"]
    assert info.problems["unused_category"].count == 1
    assert manifest.source["unused_categories"] == ["'PowerCells-trafficcones' (id 0) -> class 0"]
    assert (info.images, info.boxes) == (35, 98)
    # trafficcone, bbox [76, 202, 69.5, 143.5] in 416x416
    assert lines(images / "176_jpg.rf.3f7635874c8086a16dc88c2b70e2b0c4.txt") == [
        "2 0.266226 0.658053 0.167067 0.344952"]
    # ids are already 0..N-1: `original` gives the same labels
    before = {p.name: p.read_bytes() for p in images.glob("*.txt")}
    convert_coco(js, images, ids="original", options=ONE)
    assert {p.name: p.read_bytes() for p in images.glob("*.txt")} == before


def test_roboflow_labels_match_roboflows_own_export(tmp_path):
    js, images = tree(tmp_path, "Cones-and-Cells_test__annotations.coco.json")
    convert_coco(js, images, options=ONE)
    for theirs in sorted((DATA / "Cones-and-Cells_obj_labels").glob("*.txt")):
        ours = np.array([line.split() for line in lines(images / theirs.name)], float)
        expected = np.array([line.split() for line in lines(theirs)], float)
        assert ours.shape == expected.shape and len(ours) > 0
        expected[:, 0] += 1  # Roboflow drops its placeholder: its class = COCO id - 1
        # pair each of their lines with our nearest line: all pairs distinct and within 1.5e-3
        gaps = np.abs(expected[:, None, :] - ours[None, :, :]).max(axis=2)
        nearest = gaps.argmin(axis=1)
        assert sorted(nearest) == list(range(len(ours)))
        assert gaps.min(axis=1).max() < 1.5e-3


# --- small assets: gaps, no iscrowd/segmentation, unannotated images ---------------------------


def test_datumaro_gap_ids_and_crowd_rle(tmp_path):
    js, images = tree(tmp_path, "datumaro_instances_val.json")
    manifest = convert_coco(js, images, crowd="keep", options=ONE)
    # 5x10 image: bbox [0,0,1,2] class a -> 0; crowd bbox [0,0,1,9] class b -> 1; c (id 4) unused
    assert lines(images / "b.txt") == ["0 0.100000 0.100000 0.200000 0.200000",
                                       "1 0.100000 0.450000 0.200000 0.900000"]
    assert manifest.splits["datumaro_instances_val"].problems["unused_category"].count == 1
    with pytest.raises(UserError, match="--ids original"):
        convert_coco(js, images, ids="original", options=ONE)


def test_mmdetection_sample_unannotated_policies(tmp_path):
    js, images = tree(tmp_path, "mmdetection_coco_sample.json")
    info = convert_coco(js, images, options=ONE).splits["mmdetection_coco_sample"]
    assert lines(images / "fake1.txt") == ["0 0.012500 0.012500 0.025000 0.025000",
                                           "1 0.012500 0.012500 0.025000 0.025000"]
    assert (info.images, info.unannotated, info.unannotated_listed) == (2, 1, 0)
    assert not (images / "fake3.txt").exists()
    info = convert_coco(js, images, options=ConvertOptions(unannotated="empty", workers=1)).splits[
        "mmdetection_coco_sample"]
    assert (info.images, info.unannotated_listed) == (3, 1)
    assert (images / "fake3.txt").read_bytes() == b""


# --- segment task -------------------------------------------------------------------------------


def test_segment_polygons_rle_and_box_fallback(tmp_path):
    js, images = tree(tmp_path, "datumaro_instances_val.json")
    manifest = convert_coco(js, images, task="segment", crowd="keep", options=ONE)
    info = manifest.splits["datumaro_instances_val"]
    assert lines(images / "b.txt") == [
        "0 0.000000 0.000000 0.200000 0.000000 0.200000 0.200000 0.000000 0.200000",
        # RLE counts [0, 20, 30] over 10x5: the two left columns; contour through pixel indices
        "1 0.000000 0.000000 0.000000 0.900000 0.200000 0.900000 0.200000 0.000000",
    ]
    assert info.fixes["rle_traced"] == 1
    js, images = tree(tmp_path / "mm", "mmdetection_coco_sample.json")
    info = convert_coco(js, images, task="segment", options=ONE).splits["mmdetection_coco_sample"]
    assert lines(images / "fake2.txt") == [
        "0 0.000000 0.000000 0.025000 0.000000 0.025000 0.025000 0.000000 0.025000"]
    assert info.fixes["segment_from_bbox"] == 3


def test_segment_real_val2017_multipart_and_crowd(tmp_path):
    js, images = tree(tmp_path, "instances_val2017_first4.json")
    info = convert_coco(js, images, task="segment", crowd="keep", options=ONE).splits["val2017_first4"]
    assert info.fixes["multipart_joined"] == 3 and info.fixes["rle_traced"] == 1
    raw = json.loads(js.read_text())
    bicycle = next(a for a in raw["annotations"] if a["id"] == 125737)  # 2 parts, image 640x480
    line = next(x for x in lines(images / "000000087038.txt") if x.startswith("1 "))
    points = np.array(line.split()[1:], float).reshape(-1, 2) * [640, 480]
    parts = [np.array(p).reshape(-1, 2) for p in bicycle["segmentation"]]
    assert len(points) == sum(len(p) for p in parts) + 3
    assert {tuple(p) for p in np.round(points, 2)} == {tuple(p) for part in parts for p in part}


def test_segment_lines_are_clipped_and_counted(tmp_path):
    data = {"images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}],
            "categories": [{"id": 1, "name": "x"}],
            "annotations": [{"id": 5, "image_id": 1, "category_id": 1, "bbox": [5, 5, 10, 10],
                             "segmentation": [[5, 5, 15, 5, 15, 15], [1, 2, 3]], "iscrowd": 0}]}
    js, images = tree(tmp_path, "", data=data)
    info = convert_coco(js, images, task="segment", options=ONE).splits["test"]
    assert lines(images / "a.txt") == ["0 0.500000 0.500000 1.000000 0.500000 1.000000 1.000000"]
    assert info.fixes["polygon_clipped"] == 1 and info.fixes["polygon_part_dropped"] == 1


# --- bad input: hostile names, missing files, broken JSON ----------------------------------------


def test_hostile_file_names_are_reported_and_never_written_outside(tmp_path):
    names = ["../evil.jpg", "/tmp/abs.jpg", "C:\\win.jpg", "C:rel.jpg", "sub/../../up.jpg", "ok/fine.jpg",
             "\\\\server\\share\\x.jpg", "notes.txt"]
    data = {"images": [{"id": i, "file_name": n, "width": 10, "height": 10} for i, n in enumerate(names)],
            "categories": [{"id": 1, "name": "x"}],
            "annotations": [{"id": i, "image_id": i, "category_id": 1, "bbox": [1, 1, 2, 2]}
                            for i in range(len(names))]}
    (tmp_path / "box").mkdir()
    js, images = tree(tmp_path / "box", "", data=data)
    (images / "notes.txt").write_text("keep me")
    before = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    info = convert_coco(js, images, options=ONE).splits["test"]
    after = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    new = [p for p in after if p not in before and "yolo" not in p.parts]
    assert new == [images / "ok" / "fine.txt"]
    assert info.problems["unsafe_file_name"].count == 7
    assert (images / "notes.txt").read_text() == "keep me"


def test_missing_images_orphans_unknown_categories_and_bad_boxes(tmp_path):
    data = {"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 50},
                       {"id": 2, "file_name": "gone.jpg", "width": 100, "height": 50},
                       {"id": 3, "file_name": "a.png", "width": 100, "height": 50},
                       {"id": 1, "file_name": "again.jpg", "width": 100, "height": 50}],
            "categories": [{"id": 7, "name": "x"}],
            "annotations": [
                {"id": 1, "image_id": 1, "category_id": 7, "bbox": [-10, 10, 30, 20]},  # clipped
                {"id": 2, "image_id": 1, "category_id": 7, "bbox": [10, 10, 0, 20]},  # zero width
                {"id": 3, "image_id": 1, "category_id": 7, "bbox": [10, 10, -5, 20]},  # negative
                {"id": 4, "image_id": 1, "category_id": 99, "bbox": [1, 1, 2, 2]},  # unknown category
                {"id": 5, "image_id": 1, "category_id": 7, "bbox": [1, 1, 2]},  # 3 numbers
                {"id": 6, "image_id": 42, "category_id": 7, "bbox": [1, 1, 2, 2]},  # no such image
                {"id": 7, "image_id": 2, "category_id": 7, "bbox": [1, 1, 2, 2]}]}
    js, images = tree(tmp_path, "", data=data, drop=("gone.jpg",))
    info = convert_coco(js, images, options=ONE).splits["test"]
    # [-10, 10, 30, 20] clipped to x 0..20 -> cx 0.1, w 0.2; y 10..30 -> cy 0.4, h 0.4
    assert lines(images / "a.txt") == ["0 0.100000 0.400000 0.200000 0.400000"]
    assert info.fixes["clipped"] == 1 and info.fixes["zero_area_dropped"] == 1
    counts = {k: v.count for k, v in info.problems.items()}
    assert counts == {"inverted_box": 1, "unknown_category": 1, "bad_bbox": 1, "orphan_annotation": 1,
                      "missing_image": 1, "duplicate_label_path": 1, "duplicate_image_id": 1}
    assert info.images == 1 and not (images / "gone.txt").exists()
    tsv = (tmp_path / "yolo" / "problems-test.tsv").read_text()
    assert f"missing_image\t{images / 'gone.jpg'}" in tsv


def test_size_missing_in_json_is_read_from_the_image(tmp_path):
    data = {"images": [{"id": 1, "file_name": "a.jpg"}], "categories": [{"id": 1, "name": "x"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 20, 10]}]}
    js, images = tree(tmp_path, "", data=data)
    black_jpeg(images / "a.jpg", 40, 20)
    info = convert_coco(js, images, options=ONE).splits["test"]
    assert lines(images / "a.txt") == ["0 0.250000 0.250000 0.500000 0.500000"]
    assert info.fixes["size_from_image"] == 1


def test_truncated_wrong_typed_empty_and_oversized_json(tmp_path):
    full = (DATA / "instances_val2017_first4.json").read_bytes()
    cut = tmp_path / "cut.json"
    cut.write_bytes(full[: len(full) // 2])
    with pytest.raises(FormatError, match="truncated JSON"):
        read_coco(cut)
    typed = tmp_path / "typed.json"
    typed.write_text('{"images": [{"id": 1, "file_name": 7}], "categories": []}')
    with pytest.raises(FormatError, match=r"Expected `str`, got `int` - at `\$.images\[0\].file_name`"):
        read_coco(typed)
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"")
    with pytest.raises(FormatError, match="empty file"):
        read_coco(empty)
    with pytest.raises(UserError, match="over the .* limit \\(raise it with --max-json-mb"):
        read_coco(DATA / "instances_val2017_first4.json", max_bytes=1000)


def test_detect_decoding_leaves_segmentation_out_and_segment_keeps_it():
    detect = read_coco(DATA / "coco_example.json")
    segment = read_coco(DATA / "coco_example.json", task="segment")
    assert not hasattr(detect.annotations[0], "segmentation")
    crowd = msgspec.json.decode(bytes(segment.annotations[2].segmentation), type=polygons.Rle)
    assert crowd.size == [256, 256] and sum(crowd.counts) == 256 * 256


def test_default_split_names():
    assert default_split(Path("/c/annotations/instances_val2017.json")) == "val2017"
    assert default_split(Path("/export/test/_annotations.coco.json")) == "test"
    assert default_split(Path("/x/coco_sample.json")) == "coco_sample"


# --- polygon and RLE helpers ------------------------------------------------------------------


def _signed_area(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def test_join_parts_keeps_every_part_and_its_area():
    square = np.array([[0, 0], [2, 0], [2, 2], [0, 2]], float)
    parts = [square, square + [5, 0], square * 0.5 + [0, 6]]
    joined = polygons.join_parts(parts)
    assert len(joined) == 4 * 3 + 2 * 2 + 1  # each part walked once; 2 points per bridge, 1 to close
    assert _signed_area(joined) == pytest.approx(sum(_signed_area(p) for p in parts))
    assert polygons.join_parts([square]) is square


def test_compressed_rle_strings():
    # [5, 2, 2, 1]: the 4th number is stored as 1 - 2 = -1 (5-bit group 31 with the sign bit)
    assert polygons.decode_rle_string("522O") == [5, 2, 2, 1]
    assert polygons.decode_rle_string("T3") == [100]  # 100 = 4 + 3 * 32, 'T' has the more-bit
    with pytest.raises(ValueError, match="ends inside a number"):
        polygons.decode_rle_string("T")


def test_rle_mask_is_column_major_and_bad_rles_fall_back_to_the_box():
    mask = polygons.rle_to_mask([1, 2, 3], 2, 3)  # column-major: pixels 1 and 2 set
    assert mask.tolist() == [[0, 1, 0], [1, 0, 0]]
    outline, found = polygons.outline(b'{"counts": [0, 99], "size": [2, 3]}', [0, 0, 1, 1], 3, 2)
    assert [k for k, _ in found] == ["bad_rle", "segment_from_bbox"] and len(outline) == 4
    _, found = polygons.outline(b'{"counts": [0, 6], "size": [3, 2]}', [0, 0, 1, 1], 3, 2)
    assert found[0][0] == "rle_size_mismatch"
    outline, found = polygons.outline(b'"not a polygon"', None, 3, 2)
    assert outline is None and [k for k, _ in found] == ["bad_segmentation", "bad_bbox"]


def test_repeated_category_names_and_ids():
    table = class_table([Category(1, "cone"), Category(2, "cone"), Category(3, "cell")], where="f.json")
    assert table.class_ids == {"cone#1": 0, "cone#2": 1, "cell": 2}
    assert [p.kind for p in table.problems] == ["duplicate_category_name"] * 2
    with pytest.raises(FormatError, match="category id 2 is listed twice"):
        class_table([Category(2, "a"), Category(2, "b")], where="f.json")


def test_integers_past_64_bits_are_a_format_error_not_a_crash(tmp_path):
    # a width of 10**30 used to pass the decode and crash re-encoding the job (msgpack)
    for field, where in (("width", r"\$.images\[0\].width"), ("id", r"\$.images\[0\].id")):
        data = {"images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10, field: 10**30}],
                "categories": [{"id": 1, "name": "x"}], "annotations": []}
        js, images = tree(tmp_path / field, "", data=data)
        with pytest.raises(FormatError, match=rf"<= 9223372036854775807 - at `{where}`"):
            convert_coco(js, images, options=ONE)


def test_folders_nul_bytes_and_respelled_paths_are_counted_not_listed(tmp_path):
    names = ["sub", "d\0x/a.jpg", "b\0.jpg", "a.jpg", "./a.png", "s//c.jpg", "s/c.png"]
    data = {"images": [{"id": i, "file_name": n, "width": 10, "height": 10} for i, n in enumerate(names)],
            "categories": [{"id": 1, "name": "x"}],
            "annotations": [{"id": i, "image_id": i, "category_id": 1, "bbox": [1, 1, 2, 2]}
                            for i in range(len(names))]}
    js, images = tree(tmp_path, "", data=data, drop=("sub", "d\0x/a.jpg", "b\0.jpg"))
    (images / "sub").mkdir()  # a folder named like an image: not an image
    info = convert_coco(js, images, options=ONE).splits["test"]
    counts = {k: v.count for k, v in info.problems.items()}
    assert counts == {"missing_image": 1, "unsafe_file_name": 2, "duplicate_label_path": 2}
    assert (images / "a.txt").is_file() and (images / "s" / "c.txt").is_file() and info.images == 2
    assert not (images / "sub.txt").exists()


def test_thousands_of_parts_and_huge_rle_masks_do_not_crash():
    # join_parts was recursive: 2000 parts hit RecursionError
    parts = [np.array([[i, 0], [i + 1, 0], [i, 1]], float) for i in range(2000)]
    assert len(polygons.join_parts(parts)) == 3 * 2000 + 2 * 1999 + 1
    # a 100000 x 100000 RLE would need a 10 GB mask: the box is used instead
    raw = b'{"counts": [0, 10], "size": [100000, 100000]}'
    outline, found = polygons.outline(raw, [0, 0, 5, 5], 100000, 100000)
    assert [k for k, _ in found] == ["rle_too_large", "segment_from_bbox"] and len(outline) == 4


def test_category_names_that_would_break_the_names_file_are_refused():
    for name in ("a\nb", "", "  ", "x\r"):
        with pytest.raises(FormatError, match=r"category 1 has name .*: a class name must be one non-empty"):
            class_table([Category(1, name)], where="f.json")


def test_split_names_cannot_write_outside_the_dataset_folder(tmp_path):
    js, images = tree(tmp_path, "datumaro_instances_val.json")
    for split in ("../evil", "a/b", "..", "x\0"):
        with pytest.raises(UserError, match="is not a plain file name"):
            convert_coco(js, images, split=split, options=ONE)
    assert not (tmp_path / "evil.txt").exists()
    dot = tmp_path / "annotations" / ".json"  # default split "" from the file name
    shutil.copy(js, dot)
    with pytest.raises(UserError, match=r"split name '' is not a plain file name \(give --split"):
        convert_coco(dot, images, options=ONE)


def test_synth_coco_json_is_written_atomically(tmp_path, monkeypatch):
    from pipeline.synth import coco as synth_coco

    js = synth_coco.make_coco_json(tmp_path / "instances_x.json", images=5, annotations=20)
    before = js.read_bytes()

    def broken(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(synth_coco, "_annotation", broken)
    with pytest.raises(KeyboardInterrupt):
        synth_coco.make_coco_json(js, images=5, annotations=20, seed=1)
    assert js.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["instances_x.json"]
