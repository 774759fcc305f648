"""The `yolo-pipeline` command group: shared options, logging, one error mapping.

Each command family lives in its own module and is a thin layer over library calls; any
`PipelineError` becomes `Error: <one line>` on stderr with exit code 2.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

import click

from pipeline import __version__
from pipeline.errors import PipelineError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class PipelineClickError(click.ClickException):
    """A user error: one line on stderr, exit code 2 (or the library error's own)."""

    exit_code = 2

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class PipelineGroup(click.Group):
    """Runs a command and turns library errors into one-line messages with exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PipelineError as exc:  # a name that is not UTF-8 is shown as \xff, whatever stderr is
            raise PipelineClickError(printable(str(exc), "utf-8"), exc.exit_code) from None
        except click.BadParameter as exc:  # a folder where a file is expected: one line, no usage
            if exc.param is None or not isinstance(exc.param.type, click.Path):
                raise
            raise PipelineClickError(exc.format_message()) from None
        except OSError as exc:  # unwritable output folder, disk full, permission denied...
            where = f": {exc.filename}" if exc.filename else ""
            raise PipelineClickError(f"{exc.strerror or exc}{where}") from None
        except KeyboardInterrupt:
            click.echo("Interrupted; re-run the same command to resume.", err=True)
            sys.exit(130)


def workers_option(f: Callable) -> Callable:
    """`--workers N`: processes for bulk work (default: all cores)."""
    return click.option(
        "--workers", "-j", type=click.IntRange(min=1), default=None,
        help="Worker processes (default: all cores).",
    )(f)


def json_option(f: Callable) -> Callable:
    """`--json`: print the result as JSON on stdout, for scripts."""
    return click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")(f)


def fork_options(f: Callable) -> Callable:
    """`--darknet PATH` (the binary that will run) and `--fork NAME` (override its detected fork)."""
    from pipeline.darknet.fork import FORKS

    f = click.option("--fork", type=click.Choice(FORKS),
                     help="darknet fork (default: detected from the --darknet binary).")(f)
    return click.option("--darknet", "darknet_bin", metavar="PATH",
                        help="The darknet binary that will run (a path, or a name on PATH; "
                             "default: $DARKNET_HOME/darknet, else darknet on PATH).")(f)


def printable(text: str, encoding: str | None) -> str:
    """`text` as a stream of this encoding can print it: bytes of a file that were not UTF-8
    (kept as surrogate escapes) shown as `\\xff`, other characters it lacks as `\\u....`."""
    shown = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    encoding = encoding or "utf-8"
    return shown.encode(encoding, "backslashreplace").decode(encoding)


def emit(result: dict, as_json: bool, text: str) -> None:
    """Print `result` as JSON or `text` for people (unless quiet and text is empty).

    Never fails on a file name or cfg value that is not UTF-8, whatever stdout's encoding.
    """
    if as_json:
        click.echo(json.dumps(result, indent=2, sort_keys=False))  # ASCII: \udcff escapes
    elif text:
        click.echo(printable(text, getattr(sys.stdout, "encoding", None)))


def verbosity() -> int:
    """-1 with -q, 0 by default, 1 with -v, 2 with -vv: how much a command prints."""
    ctx = click.get_current_context(silent=True)
    obj = (ctx.find_root().obj if ctx else None) or {}
    return -1 if obj.get("quiet") else int(obj.get("verbose") or 0)


def progress_enabled() -> bool:
    """Progress bars are shown unless -q was given or stderr is not a terminal."""
    ctx = click.get_current_context(silent=True)
    quiet = bool(ctx and ctx.find_root().obj and ctx.find_root().obj.get("quiet"))
    return not quiet and sys.stderr.isatty()


@click.group(cls=PipelineGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, prog_name="yolo-pipeline")
@click.option("-q", "--quiet", is_flag=True, help="Only errors and results.")
@click.option("-v", "--verbose", count=True, help="More detail (-vv for debug).")
@click.pass_context
def cli(ctx: click.Context, quiet: bool, verbose: int) -> None:
    """From a raw ImageNet / COCO / VOC download to a finished, understood YOLO training run.

    \b
    Typical flow:
      yolo-pipeline convert imagenet /data/imagenet
      yolo-pipeline subset /data/imagenet/yolo --top 10 --out /data/in10
      yolo-pipeline configs /data/in10 --template yolov3-tiny --out /data/in10/cfg
    """
    ctx.obj = {"quiet": quiet, "verbose": verbose}
    level = logging.WARNING if quiet or not verbose else (logging.INFO if verbose == 1 else logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("YOLO_OFFLINE", "1")


def _register() -> None:
    """Add every command family's commands to `cli`: one module per family, each listed here."""
    from pipeline.cli import bench, configs, convert, evaluate, report, run, subset, synth, train, watch
    from pipeline.cli.board import board

    families = (
        (convert.convert,),  # convert imagenet|coco|voc
        (synth.synth,),  # synth imagenet|coco|voc
        (subset.subset, subset.check, subset.stats),
        (configs.configs, configs.check_cfg, configs.partial),
        (report.summarize,),
        (evaluate.evaluate,),  # evaluate: per-class AP of a trained run
        (train.train, train.resume, train.stop, train.status, train.estimate),
        (run.run,),
        (bench.bench,),  # bench train
        (watch.serve,),  # serve: a status page of the runs under a folder
        (board,),  # board: TensorBoard on runs trained with --tensorboard
    )
    for family in families:
        for command in family:
            cli.add_command(command)


_register()


GLOBAL_FLAGS = frozenset({"-q", "--quiet", "-v", "-vv", "-vvv", "--verbose"})


def hoist_global_flags(args: list[str]) -> list[str]:
    """Move -q/-v given after the sub-command to the front, where Click expects them.

    Example: `["convert", "imagenet", "R", "-q"]` -> `["-q", "convert", "imagenet", "R"]`;
    nothing after a `--` is touched.
    """
    end = args.index("--") if "--" in args else len(args)
    flags = [a for a in args[:end] if a in GLOBAL_FLAGS]
    return flags + [a for a in args[:end] if a not in GLOBAL_FLAGS] + args[end:]


def main() -> None:
    """Console-script entry point."""
    cli(args=hoist_global_flags(sys.argv[1:]), prog_name="yolo-pipeline")
