"""`stats --chart`: every panel labelled, whole-number counts, every split drawn, class
names readable at 10 classes and summarised past the top 25, aspect shown as w/h."""

from __future__ import annotations

import pytest
from conftest import invoke

from pipeline.dataset.stats import dataset_stats
from pipeline.dataset.stats_chart import TOP_CLASSES, class_rows, stats_figure
from pipeline.report.chart import pyplot


@pytest.fixture(scope="module")
def stats80(tmp_path_factory):
    root = tmp_path_factory.mktemp("st80") / "in"
    assert invoke("synth", "imagenet", root, "--classes", 80, "--annotated", 2,
                  "--unannotated", 0, "--val", 40, "--placeholder").exit_code == 0
    assert invoke("-q", "convert", "imagenet", root, "--workers", 1).exit_code == 0
    return dataset_stats(root / "yolo")


def _ten(stats80: dict) -> dict:
    keys = list(stats80["splits"]["train"]["per_class"])[:10]
    return {**stats80, "splits": {
        split: {**s, "per_class": {k: s["per_class"][k] for k in keys}}
        for split, s in stats80["splits"].items()}}


def test_class_rows_name_ten_classes_and_summarise_eighty(stats80):
    labels, values = class_rows(_ten(stats80))
    assert sorted(labels) == sorted(stats80["names"][k] for k in list(
        stats80["splits"]["train"]["per_class"])[:10])
    assert set(values) == {"train", "val"} and all(len(v) == 10 for v in values.values())
    labels, values = class_rows(stats80)
    assert len(labels) == TOP_CLASSES + 1 and labels[-1] == f"{80 - TOP_CLASSES} others (median)"
    totals = [t + v for t, v in zip(values["train"], values["val"], strict=True)][:TOP_CLASSES]
    assert totals == sorted(totals, reverse=True)  # most images (all splits) first


@pytest.mark.parametrize("ten", [True, False])
def test_every_panel_is_labelled_and_draws_every_split(stats80, ten):
    stats = _ten(stats80) if ten else stats80
    fig = stats_figure(stats)
    assert len(fig.axes) == 4
    for ax in fig.axes:
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "val"]
    classes, per_image, sizes, aspects = fig.axes
    ticks = [t.get_text() for t in classes.get_yticklabels()]
    assert len(ticks) == (10 if ten else TOP_CLASSES + 1)
    for ax, axis in ((classes, "x"), (per_image, "y"), (sizes, "y"), (aspects, "y")):
        values = ax.get_xticks() if axis == "x" else ax.get_yticks()
        assert all(float(v).is_integer() for v in values), (ax.get_title(), values)
    assert aspects.get_xscale() == "log" and "w/h" in aspects.get_xlabel()
    shown = {t.get_text() for t in aspects.get_xticklabels()}
    assert {"0.5", "1", "2"} <= shown  # ratios as the text prints them, not log2
    pyplot().close(fig)
