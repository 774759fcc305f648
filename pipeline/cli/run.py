"""`yolo-pipeline run FILE`: every stage from one pipeline file, redoing only what changed."""

from __future__ import annotations

import sys

import click

from pipeline.cli import CONTEXT_SETTINGS, emit, json_option, progress_enabled, verbosity

STAGE_NAMES = ("convert", "subset", "configs", "check-cfg", "train", "summarize", "evaluate")


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override a key of the file, e.g. --set train.epochs=20 (repeatable).")
@click.option("--from", "first", type=click.Choice(STAGE_NAMES), help="Start at this stage.")
@click.option("--until", "last", type=click.Choice(STAGE_NAMES), help="Stop after this stage.")
@click.option("--force", multiple=True, type=click.Choice(STAGE_NAMES),
              help="Redo this stage (and every later one) even if it is up to date (repeatable).")
@click.option("--dry-run", is_flag=True, help="Print which stages would run and why; run nothing.")
@click.option("--detach", is_flag=True,
              help="Leave the training running in the background and return (run again to summarize).")
@json_option
def run(file, sets, first, last, force, dry_run, detach, as_json):
    """Run convert -> subset -> configs -> check-cfg -> train -> summarize -> evaluate from FILE.

    A stage whose options, inputs and tool version are unchanged since its last success
    (WORK/run-state.json) is skipped; a changed one is redone with every later stage. The
    training's folder follows what changes the learned model: an unfinished one is resumed
    with the file's device, workers and watchdog options; a finished one is not retrained,
    or goes on to more epochs (train.epochs) / iterations (configs.max_batches). Paths in
    FILE are relative to FILE; paths given with --set to the current folder.

    \b
    Examples:
      yolo-pipeline run cfg/demo.yaml
      yolo-pipeline run cfg/imagenet-10class.yaml --set source.path=/data/imagenet --set work=/data/in10
      yolo-pipeline run cfg/demo.yaml --set subset.spread=5 --dry-run
      yolo-pipeline run cfg/demo.yaml --from train --force train
      yolo-pipeline run cfg/demo.yaml --set train.epochs=30 --dry-run
    """
    from pipeline.cli.train import ProgressPrinter
    from pipeline.runfile.chain import run_chain
    from pipeline.runfile.load import load_runfile

    loaded = load_runfile(file, tuple(sets))
    quiet = as_json or verbosity() < 0
    printer = None if quiet else ProgressPrinter()
    try:
        report = run_chain(loaded, first=first, last=last, force=tuple(force), dry_run=dry_run,
                           detach=detach, say=(lambda _: None) if quiet else click.echo,
                           progress=progress_enabled(), on_progress=printer)
    finally:
        if printer is not None:
            printer.close()
    where = "\n".join(f"  {k:<10} {v}" for k, v in report.locations.items())
    emit(report.as_dict(), as_json, "" if verbosity() < 0 else f"where everything is:\n{where}")
    if report.code:
        sys.exit(report.code)
