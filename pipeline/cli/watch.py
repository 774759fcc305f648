"""`serve`: a read-only web page of the training runs under a folder, refreshing itself."""

from __future__ import annotations

import signal
from pathlib import Path

import click

from pipeline.cli import CONTEXT_SETTINGS


def _stop_on_signals() -> None:
    """SIGTERM stops the server like Ctrl-C does; so does SIGINT even when the shell that
    started it in the background set it to be ignored."""
    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("folder", metavar="DIR", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface; the page is then open to the network).")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port to listen on (0: any free one).")
@click.option("--refresh", type=click.IntRange(min=1), default=5, show_default=True,
              help="Seconds between the page's reloads.")
@click.option("--chart-every", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="Redraw a running run's chart at most this often (seconds).")
def serve(folder, host, port, refresh, chart_every):
    """Serve a page of every training run under DIR: status, progress, ETA and finish time,
    speed, loss, mAP, restarts, latest events and resource sample; each run links to its own
    page with its chart, summary and events. The page reloads itself every few seconds.

    Read-only: no button starts or stops anything, and nothing outside DIR is served. A run's
    chart is drawn as `summarize RUN` draws it, into RUN/summary. Ctrl-C stops the server.

    \b
    Examples:
      yolo-pipeline serve runs                 # then open http://127.0.0.1:8765/
      yolo-pipeline serve runs --port 0        # any free port (the URL is printed)
      yolo-pipeline serve runs --host 0.0.0.0  # reachable from other machines
    """
    from pipeline.errors import UserError
    from pipeline.watch.runs import find_runs
    from pipeline.watch.server import make_server, url_of

    try:
        server = make_server(folder, host, port, refresh, chart_every)
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                        "give another --port (0: any free one)") from None
    _stop_on_signals()
    click.echo(f"serving {len(find_runs(folder))} run(s) under {folder.resolve()} at {url_of(server)} "
               "(Ctrl-C stops)")
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    click.echo("stopped")
