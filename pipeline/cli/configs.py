"""`yolo-pipeline configs` and `yolo-pipeline check-cfg`: darknet/Ultralytics files and cfg checks."""

from __future__ import annotations

import sys

import click

from pipeline.cli import CONTEXT_SETTINGS, emit, fork_options, json_option, verbosity
from pipeline.darknet.values import (
    MAX_BATCHES_RULE,
    SHORT_RUN,
    SIZE_MULTIPLE,
    TRAIN_BATCH,
    TRAIN_SUBDIVISIONS,
    CfgOptions,
)


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("dataset", type=click.Path(exists=True))
@click.option("--template", "-t", required=True,
              help="darknet cfg template: a path, or a name looked up in $DARKNET_HOME/cfg then "
                   "/usr/share/darknet/cfg (e.g. yolov3-tiny).")
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False),
              help="Folder for the files (must stay writable: Ultralytics writes list caches).")
@click.option("--name", help="Base name of .names/.data/.cfg (default: the dataset folder name).")
@click.option("--width", type=click.IntRange(min=SIZE_MULTIPLE),
              help=f"Input width, a multiple of {SIZE_MULTIPLE}.")
@click.option("--height", type=click.IntRange(min=SIZE_MULTIPLE),
              help=f"Input height, a multiple of {SIZE_MULTIPLE}.")
@click.option("--batch", type=click.IntRange(min=1), help=f"Images per iteration (default "
              f"{TRAIN_BATCH} for templates in test mode, else the template's).")
@click.option("--subdivisions", type=click.IntRange(min=1), help="batch is split in this many "
              f"GPU passes (default {TRAIN_SUBDIVISIONS} for templates in test mode).")
@click.option("--max-batches", type=click.IntRange(min=1),
              help=f"Iterations (default: {MAX_BATCHES_RULE}).")
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True))
@click.option("--burn-in", type=click.IntRange(min=0))
@click.option("--random", type=click.IntRange(0, 1),
              help="Multi-scale training in every head (default: template's; 0 for runs of "
                   f"{SHORT_RUN} iterations or fewer).")
@fork_options
@click.option("--force", is_flag=True,
              help="Overwrite files edited since configs wrote them (kept by default).")
@json_option
def configs(dataset, template, out, name, width, height, batch, subdivisions, max_batches,
            learning_rate, burn_in, random, darknet_bin, fork, force, as_json):
    """Write darknet .names/.data/.cfg, train.txt/valid.txt and an Ultralytics data.yaml.

    DATASET is a dataset folder with manifest.json (from convert or subset), the folder
    convert wrote it into, an Ultralytics data.yaml or a darknet .data (labels where the
    --fork looks). Every value put into the cfg is printed with its reason (-q:
    only the files and errors; -v: also the fork detection and check-cfg warnings). A file
    edited by hand since the last run is not overwritten without --force.

    \b
    Example:
      yolo-pipeline configs /data/in10 --template yolov3-tiny --out /data/in10/cfg
      yolo-pipeline configs /data/in10 -t yolov3-tiny -o cfg --width 320 --height 320
    """
    from pipeline.configs import make_configs

    opts = CfgOptions(width=width, height=height, batch=batch, subdivisions=subdivisions,
                      max_batches=max_batches, learning_rate=learning_rate, burn_in=burn_in,
                      random=random)
    report = make_configs(dataset, template, out, name=name, opts=opts, fork=_fork(fork, darknet_bin),
                          force=force)
    emit(report.as_dict(), as_json, _configs_text(report, verbosity()))


def _configs_text(report, level: int = 0) -> str:
    """-1: files and errors; 0: also every value with its reason and notes; 1: also the fork
    detection and the check-cfg warnings."""
    errors = [f"{report.fork}: {f}" for f in report.findings]
    wrote = "wrote " + ", ".join(report.files.values())
    if level < 0:
        return "\n".join([*errors, wrote])
    lines = [f"configs: {report.classes} classes, {report.train_images} train / "
             f"{report.valid_images} valid images; template {report.template}"]
    width = max(len(f"{c.where} {c.key}={c.value}") for c in report.choices)
    lines += [f"  {f'{c.where} {c.key}={c.value}':<{width}}  {c.reason}" for c in report.choices]
    lines += [f"note: {n}" for n in report.notes]
    if level > 0:
        lines.append(f"darknet fork: {report.fork} ({report.fork_reason})")
        lines += [f"{report.fork}: {f}" for f in report.warnings]
    lines += [*errors, wrote]
    lines.append(f"train: darknet detector train {report.files['data']} {report.files['cfg']}")
    return "\n".join(lines)


@click.command("check-cfg", context_settings=CONTEXT_SETTINGS)
@click.argument("cfg", type=click.Path())
@click.option("--data", "data", type=click.Path(),
              help="The .data file: also check .names, list files, images and labels.")
@click.option("--weights", type=click.Path(),
              help="A weights file: does it hold all layers of CFG, the first N, or not match?")
@fork_options
@json_option
def check_cfg(cfg, data, weights, darknet_bin, fork, as_json):
    """Find the mistakes in a darknet cfg (and its dataset) before a run, with line numbers.

    Checks filters/classes per detection layer, mask and anchors, width/height, batch and
    subdivisions, steps/scales/max_batches, and what the fork's parser cannot read; with
    --data also classes vs .data/.names, list paths, images, labels and class ids.
    With --weights, whether the file holds all layers of the cfg (a full model), the first N
    (a partial file such as yolov4-tiny.conv.29), or does not match it, and where.
    Exit code 0: no errors; 1: errors found (or weights that do not match); 2: unusable input.

    \b
    Example:
      yolo-pipeline check-cfg yolo-obj.cfg --data obj.data --darknet ~/darknet/darknet
      yolo-pipeline check-cfg yolov4-tiny-obj.cfg --weights yolov4-tiny.conv.29 --fork alexeyab
    """
    from pipeline.configs import check_cfg as run_check

    report = run_check(cfg, data, _fork(fork, darknet_bin), weights=weights)
    emit(report.as_dict(), as_json, _check_text(report))
    sys.exit(1 if report.errors or (report.weights and not report.weights.ok_for_start) else 0)


def _fork(fork: str | None, binary: str | None) -> str | None:
    """The fork given, or the one of the --darknet binary (None: detected from the default one)."""
    if fork or not binary:
        return fork
    from pipeline.darknet.fork import choose_fork, resolve_binary

    return choose_fork(None, resolve_binary(binary))[0]


def _check_text(report) -> str:
    lines = [str(f) for f in report.findings]
    shown = len(report.findings)
    total = report.errors + report.warnings
    if total > shown:
        lines.append(f"... {total - shown} more (first 20 per rule shown; see --json counts)")
    if report.weights:
        lines.append(f"{report.weights_path}: {report.weights.message}")
    lines.append(f"{report.cfg}: {report.errors} errors, {report.warnings} warnings "
                 f"(darknet fork: {report.fork}, {report.fork_reason})")
    return "\n".join(lines)


@click.command("partial", context_settings=CONTEXT_SETTINGS)
@click.argument("cfg", type=click.Path(dir_okay=False))
@click.argument("weights", type=click.Path(dir_okay=False))
@click.option("--layers", "-n", required=True, type=click.IntRange(min=1),
              help="Keep layers 0..N-1 (29 for yolov4-tiny, 137 for yolov4, 74 for darknet53/yolov3).")
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False),
              help="The partial file to write, e.g. yolov4-tiny.conv.29.")
@fork_options
@json_option
def partial(cfg, weights, layers, out, darknet_bin, fork, as_json):
    """Make start weights for another dataset: the first N layers of WEIGHTS (trained with CFG),
    written by the darknet binary's own `partial` command and checked against CFG.

    \b
    Example:
      yolo-pipeline partial yolov4-tiny.cfg yolov4-tiny.weights --layers 29 --out yolov4-tiny.conv.29
      yolo-pipeline train data/cfg --backend darknet --darknet ~/darknet/darknet --weights yolov4-tiny.conv.29
    """
    from pipeline.darknet.fork import choose_fork, find_darknet, resolve_binary
    from pipeline.darknet.weights import make_partial
    from pipeline.errors import UserError

    binary = resolve_binary(darknet_bin) if darknet_bin else find_darknet()
    if binary is None:
        raise UserError("no darknet binary on PATH or in $DARKNET_HOME", "give --darknet PATH")
    fork_name, _ = choose_fork(fork, binary)
    match = make_partial(binary, fork_name, cfg, weights, layers, out)
    emit({"out": str(out), "kind": match.kind, "layers": match.layers, "message": match.message,
          "fork": fork_name, "darknet": binary}, as_json, f"wrote {out}: {match.message}")
