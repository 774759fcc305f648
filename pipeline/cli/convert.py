"""`yolo-pipeline convert ...`: one sub-command per annotation source."""

from __future__ import annotations

import os
from pathlib import Path

import click
import msgspec

from pipeline.cli import CONTEXT_SETTINGS, emit, json_option, progress_enabled, workers_option
from pipeline.convert import UNANNOTATED_POLICIES, ConvertOptions, nothing_converted
from pipeline.errors import UserError
from pipeline.labels import DIFFICULT_POLICIES
from pipeline.manifest import Manifest


@click.group(context_settings=CONTEXT_SETTINGS)
def convert() -> None:
    """Convert annotations into YOLO txt labels beside the images."""


def unannotated_option(f):
    """`--unannotated skip|empty`, shared by every source."""
    return click.option(
        "--unannotated",
        type=click.Choice(UNANNOTATED_POLICIES),
        default="skip",
        show_default=True,
        help="Images without annotation: not listed (skip) or listed with an empty label (empty).",
    )(f)


def difficult_option(f):
    """`--difficult keep|skip` for VOC-style `difficult` objects."""
    return click.option(
        "--difficult",
        type=click.Choice(DIFFICULT_POLICIES),
        default="keep",
        show_default=True,
        help="Objects marked difficult=1: keep them or leave them out.",
    )(f)


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
    type=click.Choice(["xml", "csv"]),
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
    from pipeline.sources.imagenet import convert_imagenet

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
