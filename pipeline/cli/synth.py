"""`yolo-pipeline synth imagenet|coco|voc`: generate small or huge synthetic datasets."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.cli import CONTEXT_SETTINGS
from pipeline.synth.imagenet import SynthSpec


@click.group(context_settings=CONTEXT_SETTINGS)
def synth() -> None:
    """Generate synthetic datasets in the real download layouts (demo, tests, benchmarks)."""


@synth.command("imagenet", context_settings=CONTEXT_SETTINGS)
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--classes", type=click.IntRange(1, 10_000), default=SynthSpec.classes,
              show_default=True)
@click.option("--annotated", type=click.IntRange(0), default=SynthSpec.annotated, show_default=True,
              help="Train images per class with an XML.")
@click.option("--unannotated", type=click.IntRange(0), default=SynthSpec.unannotated,
              show_default=True, help="Train images per class without an XML.")
@click.option("--val", type=click.IntRange(0), default=SynthSpec.val, show_default=True,
              help="Val images (flat).")
@click.option("--jpeg/--placeholder", default=True, show_default=True,
              help="Real JPEGs with drawn objects, or empty placeholder files.")
@click.option("--seed", type=int, default=0, show_default=True)
def imagenet(out, classes, annotated, unannotated, val, jpeg, seed):
    """Write a Kaggle-layout ImageNet CLS-LOC tree (XML, CSV, ImageSets, synset mapping).

    \b
    Example:
      yolo-pipeline synth imagenet /tmp/in --classes 5 --annotated 20 --val 30
    """
    from pipeline.synth.imagenet import make_imagenet_tree

    spec = SynthSpec(
        classes=classes, annotated=annotated, unannotated=unannotated, val=val, jpeg=jpeg, seed=seed
    )
    make_imagenet_tree(out, spec)
    click.echo(
        f"wrote {out}: {classes} classes, {classes * (annotated + unannotated)} train "
        f"images ({classes * annotated} with XML), {val} val images"
    )


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
    from pipeline.synth.coco import make_coco_images, make_coco_json

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
    from pipeline.synth.voc import make_voc_tree

    counts = make_voc_tree(out, images=images, seed=seed)
    click.echo(f"wrote {out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
