"""`board`: TensorBoard on a run's (or every run's) RUN/tensorboard, offline."""

from __future__ import annotations

import signal
from pathlib import Path

import click

from pipeline.cli import CONTEXT_SETTINGS, verbosity


def _stop_on_signals() -> None:
    """SIGTERM stops like Ctrl-C; SIGINT too, even when a background shell ignored it."""
    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("path", metavar="RUN|DIR", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface; the board is then open to the network).")
@click.option("--port", type=click.IntRange(0, 65535), default=6006, show_default=True,
              help="Port to listen on (0: any free one).")
def board(path: Path, host: str, port: int) -> None:
    """Start TensorBoard on RUN/tensorboard of a run trained with --tensorboard, or on every such
    run under DIR (each run named by its path under DIR). Prints the URL; Ctrl-C stops it.

    \b
    What a run holds (RUN/tensorboard/):
      ultralytics/  train/*_loss, lr/pg*, metrics/*, val/*_loss per epoch (the worker's)
      darknet/      train/avg_loss, train/learning_rate, metrics/mAP50 per iteration
      resources/    resources/cpu_tree, rss_mb, ... and gpuN/util, mem_mb per GPU;
                    step: seconds since the run was created

    \b
    Examples:
      yolo-pipeline board runs/in10               # then open http://127.0.0.1:6006/
      yolo-pipeline board runs --port 0           # every run under runs/, any free port
      yolo-pipeline board runs --host 0.0.0.0     # reachable from other machines
    """
    from pipeline.watch.board import Board, board_logdirs

    logdirs = board_logdirs(path)
    server = Board(logdirs, host, port)
    _stop_on_signals()
    try:
        url = server.start()
        runs = "" if len(logdirs) == 1 and not logdirs[0][0] else f" ({len(logdirs)} runs)"
        click.echo(f"TensorBoard{runs} at {url} (Ctrl-C stops)")
        if verbosity() > 0:
            click.echo(" ".join(server.argv), err=True)
        code = server.wait()
        if code:
            raise click.ClickException(f"TensorBoard exited with code {code}: {server.output(1)}")
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    click.echo("stopped")
