"""`yolo-pipeline convert coco|voc` and `yolo-pipeline synth coco|voc`."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.cli import CONTEXT_SETTINGS, json_option, progress_enabled, workers_option
from pipeline.cli.convert import convert, difficult_option, finish, summary_text, unannotated_option
from pipeline.cli.synth import synth
from pipeline.convert import ConvertOptions
from pipeline.sources.coco import convert_coco, default_split
from pipeline.sources.coco_schema import MAX_JSON_BYTES


@convert.command("coco", context_settings=CONTEXT_SETTINGS)
@click.argument("instances", type=click.Path(dir_okay=False, path_type=str))
@click.option("--images", "images_dir", required=True, type=click.Path(file_okay=False),
              help="Folder the JSON's file_name values are relative to (labels are written there).")
@click.option("--ids", type=click.Choice(["contiguous", "coco80", "original"]), default="contiguous",
              show_default=True,
              help="Class ids: categories sorted by id -> 0..N-1; COCO's 80-class table; "
                   "or the category ids as they are (only if 0..N-1).")
@click.option("--crowd", type=click.Choice(["skip", "keep"]), default="skip", show_default=True,
              help="Annotations with iscrowd=1: leave out or convert.")
@click.option("--task", type=click.Choice(["detect", "segment"]), default="detect", show_default=True,
              help="Box labels, or Ultralytics segment labels (polygons).")
@unannotated_option
@click.option("--split", default=None,
              help="Split name in the dataset. [default: from the file name, instances_val2017 -> val2017]")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Dataset folder (manifest, lists, names). [default: IMAGES/../yolo]")
@click.option("--max-json-mb", type=click.IntRange(1), default=MAX_JSON_BYTES // 2**20, show_default=True,
              help="Refuse a larger JSON before reading it (a detect run needs ~2x its size in memory).")
@workers_option
@json_option
def coco(instances, images_dir, ids, crowd, task, unannotated, split, out, max_json_mb, workers, as_json):
    """Convert a COCO instances JSON: `<image stem>.txt` beside every image under --images.

    Writes in the dataset folder: manifest.json, <split>.txt (absolute image paths),
    classes.txt, coco.names, problems-<split>.tsv. Crowd boxes, unused categories, missing
    images, orphan annotations and unsafe file_names are counted and reported.

    \b
    Examples:
      yolo-pipeline convert coco coco/annotations/instances_val2017.json --images coco/val2017
      yolo-pipeline convert coco instances_train2017.json --images train2017 --ids coco80 -j 8
      yolo-pipeline convert coco export/test/_annotations.coco.json --images export/test --task segment
    """
    options = ConvertOptions(unannotated=unannotated, workers=workers, progress=progress_enabled())
    manifest = convert_coco(instances, images_dir, out=out, split=split, ids=ids, crowd=crowd, task=task,
                            options=options, max_json_bytes=max_json_mb * 2**20)
    name = split or default_split(Path(instances))
    unused = manifest.source.get("unused_categories") or []
    text = summary_text(manifest, (name,))
    if unused:
        shown = ", ".join(unused[:5]) + (f", ... ({len(unused)} in all)" if len(unused) > 5 else "")
        text += f"\n  unused categories (kept, no annotation): {shown}"
    finish(manifest, (name,), as_json, text)


@convert.command("voc", context_settings=CONTEXT_SETTINGS)
@click.argument("root", type=click.Path(file_okay=False, path_type=str))
@click.option("--sets", default="trainval,test", show_default=True,
              help="Comma-separated ImageSets/Main/<set>.txt to convert; each becomes a split.")
@click.option("--classes", "classes_file", type=click.Path(dir_okay=False), default=None,
              help="Class names, one per line, in id order. [default: sorted names found in the XML]")
@difficult_option
@unannotated_option
@click.option("--darknet-labels", is_flag=True,
              help="Also write each label where darknet looks (JPEGImages -> labels).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Dataset folder (manifest, lists, names). [default: ROOT/yolo]")
@workers_option
@json_option
def voc(root, sets, classes_file, difficult, unannotated, darknet_labels, out, workers, as_json):
    """Convert a Pascal VOC year folder (Annotations/, JPEGImages/, ImageSets/Main/).

    Labels `<stem>.txt` go beside the images in JPEGImages/ (and, with --darknet-labels,
    also to ROOT/labels/); the dataset folder gets manifest.json, <set>.txt lists,
    classes.txt, voc.names and problems-<set>.tsv.

    \b
    Examples:
      yolo-pipeline convert voc VOCdevkit/VOC2007
      yolo-pipeline convert voc VOCdevkit/VOC2012 --sets train,val --difficult skip --darknet-labels
    """
    from pipeline.sources.voc import convert_voc

    chosen = tuple(s.strip() for s in sets.split(",") if s.strip())
    options = ConvertOptions(unannotated=unannotated, difficult=difficult, workers=workers,
                             progress=progress_enabled())
    manifest = convert_voc(root, sets=chosen, classes_file=classes_file, darknet_labels=darknet_labels,
                           out=out, options=options)
    finish(manifest, chosen, as_json, summary_text(manifest, chosen))


@synth.command("coco", context_settings=CONTEXT_SETTINGS)
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--images", type=click.IntRange(1), default=100, show_default=True)
@click.option("--annotations", type=click.IntRange(0), default=700, show_default=True)
@click.option("--jpeg/--placeholder", default=True, show_default=True,
              help="JPEGs with the polygons drawn, or empty placeholder files.")
@click.option("--seed", type=int, default=0, show_default=True)
def synth_coco(out, images, annotations, jpeg, seed):
    """Write OUT/annotations/instances_train.json (COCO-like: 80 categories, polygons, crowd
    RLE) and the images it lists under OUT/train/.

    \b
    Example:
      yolo-pipeline synth coco /tmp/coco --images 200 --annotations 1500
    """
    from pipeline.synth_coco import make_coco_images, make_coco_json

    path = make_coco_json(Path(out) / "annotations" / "instances_train.json", images=images,
                          annotations=annotations, seed=seed)
    make_coco_images(path, Path(out) / "train", jpeg=jpeg)
    click.echo(f"wrote {path} ({annotations} annotations) and {images} images in {Path(out) / 'train'}")


@synth.command("voc", context_settings=CONTEXT_SETTINGS)
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--images", type=click.IntRange(4), default=40, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def synth_voc(out, images, seed):
    """Write a VOC year folder (Annotations/, JPEGImages/ with real JPEGs, ImageSets/Main/).

    \b
    Example:
      yolo-pipeline synth voc /tmp/VOCdevkit/VOC2007 --images 40
    """
    from pipeline.synth_voc import make_voc_tree

    counts = make_voc_tree(out, images=images, seed=seed)
    click.echo(f"wrote {out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
