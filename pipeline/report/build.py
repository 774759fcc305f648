"""`summarize`: runs or logs in, summary.json / metrics.csv / report.md / chart.png out.

Each run is parsed once, streaming: every item goes to the SummaryBuilder, the chart
Series and metrics.csv as it comes, so a multi-GB log needs no more memory than a
small one. The total for the projection is found here:

- darknet: `--max-batches`, else `max_batches` of `--cfg`, else of the one `*.cfg`
  beside the log;
- Ultralytics: `epochs` in the run folder's `args.yaml` (YOLOv8/11) or `opt.yaml` (YOLOv5).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import msgspec

from pipeline.darknet.cfg import read_cfg
from pipeline.dataset.datafiles import read_ultralytics_yaml
from pipeline.errors import PipelineError, UserError
from pipeline.io import atomic_write, atomic_writer
from pipeline.logs import PARSERS, sniff
from pipeline.logs.rows import ROW_FIELDS, LogStats, MetricRow
from pipeline.report.chart import Series, draw_comparison, draw_run
from pipeline.report.markdown import render_report
from pipeline.report.resources_chart import draw_resources, resource_table
from pipeline.report.summary import Summary, SummaryBuilder
from pipeline.report.training_run import (
    attempts,
    engine_input,
    eta_checks,
    is_training_run,
    model_name,
    run_events,
    run_model,
    run_status,
)
from pipeline.train.resources import read_samples

OUTPUTS = ("summary.json", "metrics.csv", "report.md", "chart.png")


@dataclass(frozen=True)
class Run:
    """One input: its display name, parser, the file parsed, and the folder around it."""

    name: str
    format: str
    file: Path
    folder: Path
    given: str
    #: A folder `train` made: parsed through `training_run.engine_input`, events added.
    training: bool = False


def resolve_runs(paths: list[str]) -> list[Run]:
    """Sniff every input; names are the run folder or log stem, made unique."""
    runs, seen = [], {}
    for given in paths:
        p = Path(given)
        if not p.exists():
            raise UserError(f"{given}: no such file or folder")
        if is_training_run(p):
            base = p.resolve().name
            seen[base] = seen.get(base, 0) + 1
            name = base if seen[base] == 1 else f"{base}-{seen[base]}"
            runs.append(Run(name, "training-run", p / "run.json", p, given, training=True))
            continue
        fmt, file = sniff(p)
        base = p.resolve().name if p.is_dir() else (
            file.parent.name if file.name == "results.csv" else file.stem)
        seen[base] = seen.get(base, 0) + 1
        name = base if seen[base] == 1 else f"{base}-{seen[base]}"
        runs.append(Run(name, fmt, file, file.parent, given))
    return runs


def default_out(runs: list[Run]) -> Path:
    """`<run>/summary` for a run folder, `<log>-summary` beside a log, ./summary for several."""
    if len(runs) > 1:
        return Path("summary")
    r = runs[0]
    return Path(r.given) / "summary" if Path(r.given).is_dir() else r.file.with_name(
        f"{r.file.stem}-summary")


def max_steps_for(run: Run, max_batches: int | None, cfg: str | None) -> tuple[int | None, str | None]:
    """(total steps, where it came from) for the projection, or (None, None)."""
    if run.format == "ultralytics":
        for name in ("args.yaml", "opt.yaml"):
            f = run.folder / name
            if f.is_file():
                try:
                    epochs = read_ultralytics_yaml(f).get("epochs")
                except PipelineError:  # no usable epochs: no projection
                    continue
                if isinstance(epochs, int) and not isinstance(epochs, bool) and epochs > 0:
                    return epochs, f"{name} epochs"
        return None, None
    if max_batches:
        return max_batches, "--max-batches"
    cfgs = [Path(cfg)] if cfg else sorted(run.folder.glob("*.cfg"))
    if len(cfgs) != 1:
        return None, None
    try:
        value = read_cfg(cfgs[0]).net.get_int("max_batches", 0)
    except PipelineError:
        if cfg:
            raise
        return None, None
    return (value, f"max_batches in {cfgs[0].name}") if value > 0 else (None, None)


def model_of(run: Run) -> str | None:
    """The model a run used: a `train` run's run.json, else `model` in args.yaml beside
    results.csv (YOLOv5's opt.yaml: `weights`/`cfg`); None where nothing says."""
    if run.training:
        return run_model(run.folder)
    if run.format != "ultralytics":
        return None
    for name, keys in (("args.yaml", ("model",)), ("opt.yaml", ("cfg", "weights"))):
        f = run.folder / name
        if f.is_file():
            try:
                args = read_ultralytics_yaml(f)
            except PipelineError:
                continue
            value = next((args[k] for k in keys if args.get(k)), None)
            if value:
                return model_name(value)
    return None


def _parse(run: Run, writer, progress, max_batches, cfg, out: Path) -> tuple[Summary, Series, list]:
    stats, builder, series = LogStats(), SummaryBuilder(), Series()
    astuple = msgspec.structs.astuple
    scratch = out / f".{run.name}.console.log.tmp"
    try:
        if run.training:
            fmt, file, total, source = engine_input(run.folder, scratch)
        else:
            fmt, file = run.format, run.file
            total, source = max_steps_for(run, max_batches, cfg)
        for item in PARSERS[fmt](str(file), stats, progress):
            builder.add(item)
            series.add(item)
            if isinstance(item, MetricRow):
                writer.writerow((run.name, *astuple(item)))
    finally:
        scratch.unlink(missing_ok=True)
    summary = builder.finish(stats, name=run.name, source=str(run.folder if run.training else file),
                             max_steps=total, max_steps_source=source)
    summary.model, summary.chart_skipped = model_of(run), series.skipped
    if run.training:
        summary.run_events = run_events(run.folder)
        summary.eta_checks = eta_checks(run.folder)
        summary.attempts = attempts(run.folder, fmt)
        summary.status = run_status(run.folder)
        summary.resources = resource_table(read_samples(run.folder))
    return summary, series, builder.lr_points


@dataclass(frozen=True)
class SummarizeResult:
    """Where the outputs went and the summary of each run."""

    out: Path
    summaries: list[Summary]

    @property
    def files(self) -> list[str]:
        """The four output paths."""
        return [str(self.out / n) for n in OUTPUTS]

    def as_dict(self) -> dict:
        """JSON-ready: {"out", "files", "runs"}; nan/inf become null."""
        runs = msgspec.json.decode(msgspec.json.encode(self.summaries))
        return {"out": str(self.out), "files": self.files, "runs": runs}


def summarize_paths(paths: list[str], out: str | Path | None = None, *,
                    max_batches: int | None = None, cfg: str | None = None,
                    progress: Callable[[int], None] | None = None) -> SummarizeResult:
    """Summarize runs/logs into `out` (summary.json, metrics.csv, report.md, chart.png).

    Example: `summarize_paths(["darknet/train.log"], "report", max_batches=20000)`.
    """
    if not paths:
        raise UserError("give at least one run folder or log file")
    if cfg and not Path(cfg).is_file():
        raise UserError(f"--cfg {cfg}: no such file")
    runs = resolve_runs(paths)
    out = Path(out) if out else default_out(runs)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    try:
        return _write_outputs(runs, out, max_batches=max_batches, cfg=cfg, progress=progress)
    except OSError as exc:
        raise UserError(f"cannot write to {out}: {exc.strerror}") from None


def _write_outputs(runs: list[Run], out: Path, *, max_batches: int | None, cfg: str | None,
                   progress: Callable[[int], None] | None) -> SummarizeResult:
    out.mkdir(parents=True, exist_ok=True)
    parsed = []
    with atomic_writer(out / "metrics.csv", "w") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(("run", *ROW_FIELDS))
        for run in runs:
            parsed.append(_parse(run, writer, progress, max_batches, cfg, out))
    summaries = [p[0] for p in parsed]
    if len(parsed) == 1:
        draw_run(parsed[0][1], summaries[0], parsed[0][2], out / "chart.png")
        if runs[0].training and (samples := read_samples(runs[0].folder)):
            draw_resources(samples, out / "resources.png", title=f"{summaries[0].name}: resources")
    else:
        draw_comparison([(series, s) for s, series, _ in parsed], out / "chart.png")
    result = SummarizeResult(out, summaries)
    atomic_write(out / "summary.json",
                 msgspec.json.format(msgspec.json.encode({"runs": summaries}), indent=2) + b"\n")
    atomic_write(out / "report.md", render_report(summaries))
    return result
