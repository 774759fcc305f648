"""`yolo-pipeline synth ...`: generate small or huge synthetic datasets."""

from __future__ import annotations

import click

from pipeline.cli import CONTEXT_SETTINGS


@click.group(context_settings=CONTEXT_SETTINGS)
def synth() -> None:
    """Generate synthetic datasets in the real download layouts (demo, tests, benchmarks)."""


@synth.command("imagenet", context_settings=CONTEXT_SETTINGS)
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--classes", type=click.IntRange(1, 10_000), default=10, show_default=True)
@click.option(
    "--annotated",
    type=click.IntRange(0),
    default=5,
    show_default=True,
    help="Train images per class with an XML.",
)
@click.option(
    "--unannotated",
    type=click.IntRange(0),
    default=2,
    show_default=True,
    help="Train images per class without an XML.",
)
@click.option("--val", type=click.IntRange(0), default=10, show_default=True, help="Val images (flat).")
@click.option(
    "--jpeg/--placeholder",
    default=True,
    show_default=True,
    help="Real JPEGs with drawn objects, or empty placeholder files.",
)
@click.option("--seed", type=int, default=0, show_default=True)
def imagenet(out, classes, annotated, unannotated, val, jpeg, seed):
    """Write a Kaggle-layout ImageNet CLS-LOC tree (XML, CSV, ImageSets, synset mapping).

    \b
    Example:
      yolo-pipeline synth imagenet /tmp/in --classes 5 --annotated 20 --val 30
    """
    from pipeline.synth import SynthSpec, make_imagenet_tree

    spec = SynthSpec(
        classes=classes, annotated=annotated, unannotated=unannotated, val=val, jpeg=jpeg, seed=seed
    )
    make_imagenet_tree(out, spec)
    click.echo(
        f"wrote {out}: {classes} classes, {classes * (annotated + unannotated)} train "
        f"images ({classes * annotated} with XML), {val} val images"
    )
