"""`yolo-pipeline convert coco|voc` and `yolo-pipeline synth coco|voc`."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.cli import CONTEXT_SETTINGS, json_option, progress_enabled, workers_option
from pipeline.cli.convert import convert, difficult_option, finish, summary_text, unannotated_option
from pipeline.cli.synth import synth
from pipeline.convert import ConvertOptions
from pipeline.errors import UserError
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
@click.option("--sets", default=None,
              help="Comma-separated ImageSets/Main/<set>.txt to convert; each becomes a split. "
                   "[default: trainval,test]")
@click.option("--images", "images_dir", type=click.Path(file_okay=False), default=None,
              help="Flat export: the folder of the images, when not beside the XML in ROOT.")
@click.option("--val-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Flat export: this share of the images (a seeded draw) becomes split val.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of --val-fraction.")
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
def voc(root, sets, images_dir, val_fraction, seed, classes_file, difficult, unannotated,
        darknet_labels, out, workers, as_json):
    """Convert a Pascal VOC year folder (Annotations/, JPEGImages/, ImageSets/Main/), or a
    flat export: a folder of XML with the images beside them or in --images DIR.

    Labels `<stem>.txt` go beside the images (and, with --darknet-labels, also to
    ROOT/labels/); the dataset folder gets manifest.json, <set>.txt lists, classes.txt,
    voc.names and problems-<set>.tsv. A flat export has no ImageSets: its images form one
    split, train, or train and val with --val-fraction.

    \b
    Examples:
      yolo-pipeline convert voc VOCdevkit/VOC2007
      yolo-pipeline convert voc VOCdevkit/VOC2012 --sets train,val --difficult skip --darknet-labels
      yolo-pipeline convert voc export/train --val-fraction 0.2 --seed 1
      yolo-pipeline convert voc labelimg/xml --images labelimg/photos
    """
    from pipeline.sources.voc import convert_voc
    from pipeline.sources.voc_flat import is_flat_export

    if images_dir or val_fraction or is_flat_export(root):
        if sets:
            raise UserError("--sets needs ImageSets/Main/ (a devkit year folder); a flat "
                                   "export is one split, or two with --val-fraction")
        return _voc_flat(root, images_dir=images_dir, val_fraction=val_fraction, seed=seed,
                         classes_file=classes_file, darknet_labels=darknet_labels, out=out,
                         as_json=as_json, options=ConvertOptions(
                             unannotated=unannotated, difficult=difficult, workers=workers,
                             progress=progress_enabled()))
    chosen = tuple(s.strip() for s in (sets or "trainval,test").split(",") if s.strip())
    options = ConvertOptions(unannotated=unannotated, difficult=difficult, workers=workers,
                             progress=progress_enabled())
    manifest = convert_voc(root, sets=chosen, classes_file=classes_file, darknet_labels=darknet_labels,
                           out=out, options=options)
    finish(manifest, chosen, as_json, summary_text(manifest, chosen))


def _voc_flat(root: str, *, images_dir: str | None, val_fraction: float | None, seed: int,
              classes_file: str | None, darknet_labels: bool, out: str | None, as_json: bool,
              options: ConvertOptions) -> None:
    """`convert voc` on a flat export (one split, or train and val)."""
    from pipeline.sources.voc_flat import convert_voc_flat

    manifest = convert_voc_flat(root, images=images_dir, val_fraction=val_fraction, seed=seed,
                                classes_file=classes_file, darknet_labels=darknet_labels,
                                out=out, options=options)
    made = ("train", "val") if val_fraction else ("train",)
    finish(manifest, made, as_json, summary_text(manifest, made))


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
