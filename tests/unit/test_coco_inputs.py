"""COCO on hostile inputs: repeated and case-folded names, backslashes in reports, deep nesting,
thin RLE parts, zero-size boxes, and parts too big to pair naively."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_coco import ONE, tree

from pipeline.convert.sources import polygons
from pipeline.convert.sources.coco import convert_coco
from pipeline.convert.sources.coco_schema import Category, class_table
from pipeline.errors import FormatError


def _data(images: list[dict], annotations: list[dict], categories=({"id": 1, "name": "x"},)) -> dict:
    return {"images": images, "categories": list(categories), "annotations": annotations}


def test_repeated_names_are_written_alike_to_classes_txt_and_coco_names(tmp_path):
    cats = [{"id": 1, "name": "cone"}, {"id": 2, "name": "cone"}, {"id": 3, "name": "Cell"},
            {"id": 4, "name": "cell"}]
    data = _data([{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}],
                 [{"id": 1, "image_id": 1, "category_id": 2, "bbox": [1, 1, 2, 2]}], cats)
    js, images = tree(tmp_path, "", data=data)
    manifest = convert_coco(js, images, options=ONE)
    dataset = images.parent / "yolo"
    assert (dataset / "classes.txt").read_text() == "cone#1\ncone#2\nCell\ncell\n"
    assert (dataset / "coco.names").read_text() == (dataset / "classes.txt").read_text()
    problems = {k: v.count for k, v in manifest.splits["test"].problems.items()}
    assert problems["duplicate_category_name"] == 2 and problems["class_case_duplicate"] == 1
    table = class_table([Category(1, "Dog"), Category(2, "dog"), Category(3, "DOG")], where="f.json")
    assert [p.detail for p in table.problems] == ["'dog' and 'Dog' differ only in case",
                                                  "'DOG' and 'Dog' differ only in case"]


def test_backslashes_in_file_names_are_escaped_once_in_the_report(tmp_path):
    data = _data([{"id": 1, "file_name": "a\\b.jpg", "width": 10, "height": 10},
                  {"id": 2, "file_name": "C:\\x.jpg", "width": 10, "height": 10},
                  {"id": 3, "file_name": "ok.jpg", "width": 10, "height": 10}], [])
    js, images = tree(tmp_path, "", data=data, drop=("a\\b.jpg", "C:\\x.jpg"))
    info = convert_coco(js, images, options=ONE).splits["test"]
    rows = Path(info.problems_file).read_text().splitlines()[1:]
    assert f"missing_image\t{images}/a/b.jpg\tlisted as 'a\\\\b.jpg'" in rows
    assert "unsafe_file_name\tC:\\\\x.jpg\tmust be relative without '..' or a drive letter" in rows


@pytest.mark.parametrize("where", ["info", "categories"])
def test_deep_nesting_anywhere_is_a_format_error(tmp_path, where):
    deep = "[" * 2000 + "]" * 2000
    text = json.dumps(_data([], []))
    text = (text[:-1] + f', "info": {deep}}}' if where == "info"
            else text.replace('"name": "x"}', f'"name": "x", "extra": {deep}}}'))
    js = tmp_path / "instances_x.json"
    js.write_text(text)
    (tmp_path / "images").mkdir()
    for task in ("detect", "segment"):
        with pytest.raises(FormatError, match="nested too deeply"):
            convert_coco(js, tmp_path / "images", task=task, options=ONE)
    outline, found = polygons.outline(deep.encode(), [0, 0, 2, 2], 10, 10)  # typed: stops at level 3
    assert found[0][0] == "bad_segmentation" and len(outline) == 4


def test_one_pixel_wide_rle_parts_are_counted():
    # a 6x4 mask (column-major runs): a 2x2 block at columns 0-1 and a 1-pixel-wide line at column 4
    counts = [0, 2, 2, 2, 10, 4, 4]
    raw = json.dumps({"counts": counts, "size": [4, 6]}).encode()
    outline, found = polygons.outline(raw, None, 6, 4)
    assert ("rle_part_dropped", "1 parts one pixel wide") in found
    assert ("rle_traced", "1 contours") in found and len(outline) == 4


def test_a_zero_width_box_fallback_is_counted_once(tmp_path):
    anns = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [3, 3, 0, 4], "segmentation": []},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [30, 30, 4, 4], "segmentation": []},
            {"id": 3, "image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 4], "segmentation": []}]
    js, images = tree(tmp_path, "", data=_data([{"id": 1, "file_name": "a.jpg", "width": 10,
                                                 "height": 10}], anns))
    info = convert_coco(js, images, task="segment", options=ONE).splits["test"]
    # 1: no width; 2: wholly outside the image (clipped to nothing); 3: a real box
    assert info.fixes == {"zero_area_dropped": 2, "segment_from_bbox": 1, "polygon_clipped": 1}
    assert len((images / "a.txt").read_text().splitlines()) == 1


def test_joining_two_huge_parts_pairs_vertices_in_bounded_memory():
    angles = np.linspace(0, 2 * np.pi, 100_000, endpoint=False)
    ring = np.stack([np.cos(angles), np.sin(angles)], axis=1) * 1000
    a, b = ring + [0, 0], ring + [2500, 0]  # two circles of radius 1000, 500 apart
    i, j = polygons.closest_pair(a, b)  # naive: a 100,000 x 100,000 matrix (149 GiB)
    assert np.linalg.norm(a[i] - b[j]) == pytest.approx(500, abs=0.01)
    joined = polygons.join_parts([a, b])
    assert len(joined) == 200_000 + 3
    small_a, small_b = a[::1000], b[::1000] + [0, 7]
    naive = ((small_a[:, None] - small_b[None]) ** 2).sum(-1)
    assert polygons.closest_pair(small_a, small_b) == np.unravel_index(naive.argmin(), naive.shape)


def test_a_utf8_bom_before_the_json_is_accepted(tmp_path):
    js, images = tree(tmp_path, "datumaro_instances_val.json")
    plain = convert_coco(js, images, out=tmp_path / "a", options=ONE).splits["datumaro_instances_val"]
    js.write_bytes(b"\xef\xbb\xbf" + js.read_bytes())
    with_bom = convert_coco(js, images, out=tmp_path / "b", options=ONE).splits["datumaro_instances_val"]
    assert (with_bom.images, with_bom.boxes) == (plain.images, plain.boxes) and plain.boxes > 0
