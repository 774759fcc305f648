"""`yolo-pipeline convert imagenet|coco|voc`: one sub-command per annotation source."""

from __future__ import annotations

import os
from pathlib import Path

import click
import msgspec

from pipeline.cli import CONTEXT_SETTINGS, emit, json_option, progress_enabled, workers_option
from pipeline.convert.engine import UNANNOTATED_POLICIES, ConvertOptions
from pipeline.convert.sources.coco import CROWD_POLICIES, TASKS, convert_coco, default_split
from pipeline.convert.sources.coco_schema import ID_MODES, MAX_JSON_BYTES
from pipeline.convert.sources.imagenet import SOURCES
from pipeline.convert.split_checks import nothing_converted
from pipeline.dataset.labels import DIFFICULT_POLICIES
from pipeline.dataset.manifest import Manifest
from pipeline.errors import UserError


@click.group(context_settings=CONTEXT_SETTINGS)
def convert() -> None:
    """Convert annotations into YOLO txt labels beside the images."""


#: `--unannotated skip|empty`, shared by every source.
unannotated_option = click.option(
    "--unannotated", type=click.Choice(UNANNOTATED_POLICIES), default=ConvertOptions.unannotated,
    show_default=True,
    help="Images without annotation: not listed (skip) or listed with an empty label (empty).")
#: `--difficult keep|skip` for VOC-style `difficult` objects.
difficult_option = click.option(
    "--difficult", type=click.Choice(DIFFICULT_POLICIES), default=ConvertOptions.difficult,
    show_default=True, help="Objects marked difficult=1: keep them or leave them out.")


def finish(manifest: Manifest, splits: tuple[str, ...], as_json: bool, text: str) -> None:
    """Print the result of a conversion; exit 1 with one `Error:` line when nothing converted."""
    emit(msgspec.to_builtins({s: manifest.splits[s] for s in splits}), as_json, text)
    reason = nothing_converted(manifest, splits)
    if reason:
        click.echo(f"Error: {reason}", err=True)
        click.get_current_context().exit(1)


def summary_text(manifest: Manifest, splits: tuple[str, ...]) -> str:
    """A few lines per converted split: images, boxes, labels written/unchanged, problems."""
    lines = []
    for split in splits:
        info = manifest.splits[split]
        lines.append(
            f"{split}: {info.images:,} images listed, {info.boxes:,} boxes, "
            f"{info.unannotated:,} without annotation ({info.unannotated_listed:,} listed); "
            f"labels {info.labels_written:,} written, {info.labels_unchanged:,} unchanged"
        )
        if info.fixes:
            lines.append("  fixes: " + ", ".join(f"{k} {v:,}" for k, v in info.fixes.items()))
        if info.problems:
            lines.append(
                "  problems: "
                + ", ".join(f"{k} {v.count:,}" for k, v in info.problems.items())
                + f" (see {info.problems_file})"
            )
        lines.append(f"  list: {info.list_file}")
    return "\n".join(lines)


def manifest_path(out: str | None, out_manifest: str | None) -> str | None:
    """The manifest file from `--out DIR` or `--out-manifest FILE.json` (one of them at most).

    Example: `manifest_path("in-yolo", None)` -> "in-yolo/manifest.json"; an --out-manifest
    that is not a .json file path is a one-line error.
    """
    if out and out_manifest:
        raise UserError("give --out DIR or --out-manifest FILE, not both")
    if out:
        return str(Path(out) / "manifest.json")
    if out_manifest is not None and (not out_manifest.lower().endswith(".json")
                                     or os.path.isdir(out_manifest)):
        raise UserError(f"--out-manifest {out_manifest!r} is not a .json file path",
                        "for a dataset folder use --out DIR")
    return out_manifest


@convert.command("imagenet", context_settings=CONTEXT_SETTINGS)
@click.argument("root", type=click.Path(file_okay=False, path_type=str))
@click.option(
    "--split", "splits", default="train,val", show_default=True, help="Comma-separated splits to convert."
)
@click.option(
    "--from",
    "source",
    type=click.Choice(SOURCES),
    default="xml",
    show_default=True,
    help="Read boxes from the XML annotations or from LOC_<split>_solution.csv.",
)
@unannotated_option
@difficult_option
@click.option(
    "--labels-root",
    type=click.Path(file_okay=False),
    default=None,
    help="Write labels (and symlinks to the images) to this mirror tree; ROOT stays untouched.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Dataset folder (manifest, lists, names, problems). [default: ROOT/yolo, or LABELS_ROOT/yolo]",
)
@click.option(
    "--out-manifest",
    type=click.Path(),
    default=None,
    help="Manifest file (a .json path); its folder gets the lists and names.",
)
@workers_option
@json_option
def imagenet(root, splits, source, unannotated, difficult, labels_root, out, out_manifest, workers,
             as_json):
    """Convert a Kaggle ImageNet CLS-LOC download (ROOT holds ILSVRC/ and LOC_*.txt/csv).

    Writes `<image stem>.txt` beside every image (`id cx cy w h`, 6 decimals), and in the
    dataset folder: manifest.json, train.txt / val.txt (absolute paths), classes.txt,
    imagenet.names, problems-<split>.tsv. Re-running rewrites nothing that is unchanged.

    \b
    Examples:
      yolo-pipeline convert imagenet /data/imagenet
      yolo-pipeline convert imagenet /data/imagenet --split val --from csv --unannotated empty
      yolo-pipeline convert imagenet /mnt/ro/imagenet --labels-root /data/imagenet-yolo
      yolo-pipeline convert imagenet /data/imagenet --out /data/in-yolo
    """
    from pipeline.convert.sources.imagenet import convert_imagenet

    out_manifest = manifest_path(out, out_manifest)
    chosen = tuple(s.strip() for s in splits.split(",") if s.strip())
    options = ConvertOptions(
        unannotated=unannotated, difficult=difficult, workers=workers, progress=progress_enabled()
    )
    manifest = convert_imagenet(
        root,
        splits=chosen,
        source=source,
        options=options,
        labels_root=labels_root,
        out_manifest=out_manifest,
    )
    finish(manifest, chosen, as_json, summary_text(manifest, chosen))


@convert.command("coco", context_settings=CONTEXT_SETTINGS)
@click.argument("instances", type=click.Path(dir_okay=False, path_type=str))
@click.option("--images", "images_dir", required=True, type=click.Path(file_okay=False),
              help="Folder the JSON's file_name values are relative to (labels are written there).")
@click.option("--ids", type=click.Choice(ID_MODES), default=ID_MODES[0],
              show_default=True,
              help="Class ids: categories sorted by id -> 0..N-1; COCO's 80-class table; "
                   "or the category ids as they are (only if 0..N-1).")
@click.option("--crowd", type=click.Choice(CROWD_POLICIES), default=CROWD_POLICIES[0], show_default=True,
              help="Annotations with iscrowd=1: leave out or convert.")
@click.option("--task", type=click.Choice(TASKS), default=TASKS[0], show_default=True,
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
    from pipeline.convert.sources.voc import convert_voc
    from pipeline.convert.sources.voc_flat import is_flat_export

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
    from pipeline.convert.sources.voc_flat import convert_voc_flat

    manifest = convert_voc_flat(root, images=images_dir, val_fraction=val_fraction, seed=seed,
                                classes_file=classes_file, darknet_labels=darknet_labels,
                                out=out, options=options)
    made = ("train", "val") if val_fraction else ("train",)
    finish(manifest, made, as_json, summary_text(manifest, made))
