"""stats: hand-computed counts and distributions, agreement with the converter, the chart."""

from pathlib import Path

import pytest

from pipeline.convert.engine import ConvertOptions
from pipeline.convert.sources.imagenet import convert_imagenet
from pipeline.dataset.manifest import ClassInfo, Manifest, SplitInfo, read_manifest, write_manifest
from pipeline.dataset.stats import dataset_stats, public, render_text
from pipeline.dataset.stats_chart import draw_chart
from pipeline.synth.imagenet import make_imagenet_tree

LABELS = {
    "a": "0 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.4 0.1\n",
    "b": "0 0.5 0.5 0.5 0.5\n",
    "c": "",  # unannotated negative
    "d": None,  # listed, label missing
    "e": "0 0.5 0.5 0.1 0.1\n7 0.5 0.5 0.1 0.1\n",  # second line: id out of range
}


@pytest.fixture
def small(tmp_path) -> Path:
    images = []
    for stem, text in LABELS.items():
        image = tmp_path / "img" / f"{stem}.jpg"
        image.parent.mkdir(exist_ok=True)
        image.write_bytes(b"")
        if text is not None:
            image.with_suffix(".txt").write_text(text)
        images.append(str(image))
    (tmp_path / "train.txt").write_text("\n".join(images) + "\n")
    classes = [ClassInfo(0, "cat", "house cat"), ClassInfo(1, "dog", "dog")]
    write_manifest(Manifest(source={}, classes=classes,
                            splits={"train": SplitInfo(str(tmp_path / "train.txt"))}),
                   tmp_path / "manifest.json")
    return tmp_path


def test_hand_computed_stats(small):
    s = dataset_stats(small)["splits"]["train"]
    assert (s["images"], s["labelled"], s["missing_labels"], s["unannotated"]) == (5, 4, 1, 1)
    assert (s["boxes"], s["bad_lines"]) == (4, 1)
    assert s["per_class"] == {"cat": {"images": 3, "boxes": 3}, "dog": {"images": 1, "boxes": 1}}
    assert {k: v for k, v in s["boxes_per_image"]["histogram"].items() if v} == {
        "0": 1, "1": 2, "2": 1}
    assert s["boxes_per_image"]["mean"] == 1.0
    assert s["box_size"]["p50"] == pytest.approx(0.2, abs=1e-3)  # sizes 0.2, 0.2, 0.5, 0.1
    assert s["box_size"]["histogram"]["0.1-0.2"] == 1 and s["box_size"]["histogram"]["0.4-0.7"] == 1
    assert s["aspect"]["wide_over_2"] == 1 and s["aspect"]["tall_over_2"] == 0  # 0.4 / 0.1


def test_text_json_and_chart(small, tmp_path):
    stats = dataset_stats(small)
    text = render_text(stats)
    assert "house cat" in text and "unannotated 1" in text and "missing labels 1" in text
    assert "_sizes" not in public(stats)["splits"]["train"]
    draw_chart(stats, tmp_path / "chart.png")
    data = (tmp_path / "chart.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_agrees_with_converter_counts_on_a_generated_tree(tmp_path):
    root = make_imagenet_tree(tmp_path / "in", classes=5, annotated=4, unannotated=2, val=6)
    convert_imagenet(root, options=ConvertOptions(workers=1, unannotated="empty"))
    manifest = read_manifest(root / "yolo")
    stats = dataset_stats(root / "yolo")
    for split, info in manifest.splits.items():
        s = stats["splits"][split]
        assert s["per_class"] == {k: {"images": c.images, "boxes": c.boxes}
                                  for k, c in info.per_class.items()}
        assert (s["images"], s["boxes"], s["unannotated"]) == (
            info.images, info.boxes, info.unannotated_listed)
    many = {**stats, "splits": {"train": {**stats["splits"]["train"], "per_class": {
        f"k{i}": {"images": i, "boxes": i} for i in range(1000)}}}}
    draw_chart(many, tmp_path / "many.png")  # 1000 classes: no tick labels, still drawn
    assert (tmp_path / "many.png").stat().st_size > 10_000


def test_unreadable_label_empty_dataset_and_unwritable_chart(small, tmp_path):
    from pipeline.errors import UserError

    (small / "img" / "a.txt").unlink()
    (small / "img" / "a.txt").mkdir()  # a folder where a label should be: counted missing
    stats = dataset_stats(small)
    assert stats["splits"]["train"]["missing_labels"] == 2
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UserError, match="cannot write the chart"):
        draw_chart(stats, blocker / "chart.png")
    with pytest.raises(UserError, match="no split to chart"):
        draw_chart({**stats, "splits": {}}, tmp_path / "none.png")
