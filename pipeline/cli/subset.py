"""`yolo-pipeline subset | check | stats`: class subsets, dataset validation, dataset stats."""

from __future__ import annotations

import sys

import click
import msgspec

from pipeline.cli import CONTEXT_SETTINGS, emit, json_option, progress_enabled, workers_option
from pipeline.convert.engine import UNANNOTATED_POLICIES
from pipeline.dataset.class_choice import Choice, ClassRule
from pipeline.dataset.subset import LINK_MODES, SubsetOptions

DATASET = click.argument("dataset", type=click.Path(exists=True, path_type=str))


def warn(lines: list[str] | tuple[str, ...]) -> None:
    """Each line on stderr as `Warning: ...`."""
    for line in lines:
        click.echo(f"Warning: {line}", err=True)


def _names(values: tuple[str, ...]) -> tuple[str, ...]:
    """Repeatable, comma-separated option values -> one tuple of names."""
    return tuple(n.strip() for v in values for n in v.split(",") if n.strip())


def choice_table(choice: Choice) -> str:
    """The chosen classes with their new ids and train counts, one line each."""
    lines = [f"rule: {choice.rule.describe()}",
             f"{'new':>3} {'old':>5}  {'key':<12} {'name':<30} {'images':>7} {'boxes':>7}  why"]
    for new, c in enumerate(choice.classes):
        n = choice.counts[c.key]
        lines.append(f"{new:>3} {c.id:>5}  {c.key:<12} {c.name[:30]:<30} {n.images:>7} "
                     f"{n.boxes:>7}  {choice.reasons[c.key]}")
    return "\n".join(lines)


@click.command(context_settings=CONTEXT_SETTINGS)
@DATASET
@click.option("--out", "-o", type=click.Path(file_okay=False), help="New dataset folder.")
@click.option("--top", type=click.IntRange(min=1), help="The N classes with most annotated train images.")
@click.option("--classes", "classes", multiple=True,
              help="Classes by key (wnid, COCO name) or human name; comma-separated, repeatable.")
@click.option("--spread", type=click.IntRange(min=1),
              help="N distinct classes: the best-covered of each of N equal slices in id order.")
@click.option("--min-images", type=click.IntRange(min=0), default=0,
              help="Only classes with at least K annotated train images.")
@click.option("--exclude", multiple=True, help="Classes never to take; comma-separated, repeatable.")
@click.option("--dry-run", is_flag=True, help="Print the chosen classes with counts and stop.")
@click.option("--link", type=click.Choice(LINK_MODES), default="symlink", show_default=True,
              help="How images get into the subset.")
@click.option("--unannotated", type=click.Choice(UNANNOTATED_POLICIES), default="skip",
              show_default=True, help="Images left with no box: not listed, or listed empty.")
@click.option("--max-per-class", type=click.IntRange(min=1),
              help="At most M images per class in each split (drawn with --seed).")
@click.option("--val-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Carve val from train (per class); the source val becomes 'test'.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for draws.")
@workers_option
@json_option
def subset(dataset, out, top, classes, spread, min_images, exclude, dry_run, link, unannotated,
           max_per_class, val_fraction, seed, workers, as_json):
    """Build a class subset of DATASET in a new folder, in seconds.

    DATASET: a dataset folder (manifest.json), the folder convert wrote it into, an
    Ultralytics data.yaml (Roboflow, CVAT exports) or a darknet .data; it is only read.
    Images are linked (not copied, by default), labels are rewritten beside them with ids
    0..N-1 in the source's id order, boxes of other classes are dropped. The new folder
    is a dataset like any other (manifest.json, train.txt/val.txt, .names).

    \b
    Examples:
      yolo-pipeline subset data/yolo --top 10 --dry-run
      yolo-pipeline subset data/yolo --spread 10 --min-images 300 --out data/in10
      yolo-pipeline subset data/yolo --classes tench,goldfish,n01443537 --out data/fish
      yolo-pipeline subset data/yolo --top 12 --exclude Chihuahua --max-per-class 200 \\
          --val-fraction 0.1 --seed 1 --out data/in11
      yolo-pipeline subset data/in10 --top 5 --out data/in5
      yolo-pipeline subset roboflow-export/data.yaml --classes car,bus --out data/cars
    """
    from pipeline.dataset.class_choice import choose_classes, load_synonyms
    from pipeline.dataset.folder import counted_manifest, open_dataset
    from pipeline.dataset.subset import build_subset

    rule = ClassRule(top=top, classes=_names(classes), spread=spread, min_images=min_images,
                     exclude=_names(exclude))
    if dry_run:
        ds = open_dataset(dataset)
        warn(ds.notes)
        choice = choose_classes(counted_manifest(ds), rule, load_synonyms(ds.manifest))
        emit({"rule": rule.describe(), "classes": [
            {"new_id": i, "old_id": c.id, "key": c.key, "name": c.name,
             "images": choice.counts[c.key].images, "boxes": choice.counts[c.key].boxes,
             "why": choice.reasons[c.key]} for i, c in enumerate(choice.classes)]},
             as_json, choice_table(choice))
        return
    if not out:
        raise click.UsageError("--out DIR is required (or use --dry-run)")
    options = SubsetOptions(link=link, unannotated=unannotated, max_per_class=max_per_class,
                            val_fraction=val_fraction, seed=seed, workers=workers,
                            progress=progress_enabled())
    report = build_subset(dataset, out, rule, options)
    warn(report.warnings)
    emit(msgspec.to_builtins(report.manifest), as_json,
         f"{choice_table(report.choice)}\n{split_summary(report.manifest)}\nwrote {report.out}")


def split_summary(manifest) -> str:
    """Per split: images and boxes kept, images left with no box, labels, problems."""
    lines = []
    for split, info in manifest.splits.items():
        lines.append(
            f"{split}: {info.images:,} images, {info.boxes:,} boxes; {info.unannotated:,} left "
            f"with no box of the chosen classes ({info.unannotated_listed:,} listed); labels "
            f"{info.labels_written:,} written, {info.labels_unchanged:,} unchanged")
        if info.problems:
            lines.append("  problems: " + ", ".join(
                f"{k} {v.count:,}" for k, v in info.problems.items()) + f" (see {info.problems_file})")
    return "\n".join(lines)


@click.command(context_settings=CONTEXT_SETTINGS)
@DATASET
@click.option("--decode", is_flag=True, help="Also decode every image with OpenCV.")
@click.option("--duplicates", is_flag=True, help="Also find images with identical bytes.")
@click.option("--report", "report_file", type=click.Path(dir_okay=False),
              help="Report file. [default: DATASET/check-report.tsv]")
@workers_option
@json_option
def check(dataset, decode, duplicates, report_file, workers, as_json):
    """Check a dataset; exit code 1 when problems are found.

    DATASET: a dataset folder (manifest.json), the folder convert wrote it into, an
    Ultralytics data.yaml or a darknet .data (labels looked for where that tool looks).

    Label lines (5 fields, id in range, values in [0,1], positive size), listed images
    present (and decodable with --decode), labels present, no label without an image,
    no path listed twice, no relative path; each problem is a row of the report file.

    \b
    Examples:
      yolo-pipeline check data/in10
      yolo-pipeline check data/in10 --decode --duplicates --report /tmp/in10-check.tsv
      yolo-pipeline check darknet/data/obj.data
    """
    from pipeline.dataset.checks import check_dataset

    report = check_dataset(dataset, decode=decode, duplicates=duplicates,
                           report_file=report_file, workers=workers, progress=progress_enabled())
    warn(report.warnings)
    found = ", ".join(f"{k} {v:,}" for k, v in report.problems.items())
    emit(report.as_dict(), as_json,
         f"{report.images:,} images, {report.labels:,} labels, {report.boxes:,} boxes: "
         + (f"problems: {found} (see {report.report_file})" if found else "no problems"))
    if not report.ok:
        sys.exit(1)


@click.command(context_settings=CONTEXT_SETTINGS)
@DATASET
@click.option("--split", "splits", multiple=True, help="Only these splits (repeatable).")
@click.option("--chart", type=click.Path(dir_okay=False), help="Write a PNG chart here.")
@json_option
def stats(dataset, splits, chart, as_json):
    """Per-class images and boxes, boxes per image, box sizes and aspects, unannotated count.

    DATASET: a dataset folder (manifest.json), the folder convert wrote it into, an
    Ultralytics data.yaml or a darknet .data.

    \b
    Examples:
      yolo-pipeline stats data/in10
      yolo-pipeline stats data/imagenet/yolo --split train --chart train-stats.png --json
    """
    from pipeline.dataset.stats import dataset_stats, public, render_text
    from pipeline.dataset.stats_chart import draw_chart

    result = dataset_stats(dataset, tuple(splits), progress=progress_enabled())
    warn(result["warnings"])
    if chart:
        draw_chart(result, chart)
    emit(public(result), as_json,
         render_text(result) + (f"\nchart: {chart}" if chart else ""))
