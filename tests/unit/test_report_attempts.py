"""Charts that do not mislead (issue 20): each attempt of a resumed/restarted run its own
stretch, what a later attempt redid faded; resumes and watchdog restarts told apart;
epochs and iterations never on one axis; legends off the curves; a running run says so;
the model the run used named; percentages throughout."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from pipeline.logs.darknet import parse_darknet
from pipeline.logs.rows import LogStats, MapBlock, MetricRow
from pipeline.report.chart import Series, comparison_figure, run_figure
from pipeline.report.markdown import facts, render_report, render_text
from pipeline.report.plot import REDONE_ALPHA, split_redone
from pipeline.report.summary import Summary, SummaryBuilder
from pipeline.report.training_run import attempts, model_name, run_model, run_status
from pipeline.train.runs import process_start_time

#: (first, last) iteration of each attempt: killed at 59 before any checkpoint, so the
#: watchdog's restart begins again at 1; stopped at 112, resumed from the weights of 100.
ATTEMPTS = [(1, 59), (1, 112), (101, 200)]


def iteration_line(step: int, attempt: int) -> str:
    loss = 8.0 / (1 + step / 20) + 0.8 * (3 - attempt)
    return (f" {step}: {loss:.6f}, {loss:.6f} avg loss, 0.001000 rate, 0.5 seconds, "
            f"{step * 64} images, 1.0 hours left\n")


def darknet_run(root: Path, state: dict | None = None) -> Path:
    """A darknet run folder as `train` leaves it after a watchdog restart and a resume."""
    (root / "logs").mkdir(parents=True)
    (root / "run.json").write_text(json.dumps({"run_id": "x", "backend": "darknet", "total": 200,
                                               "options": {"gpus": None}}))
    (root / "state.json").write_text(json.dumps(state or {"status": "finished", "done": 200}))
    for n, (a, b) in enumerate(ATTEMPTS, 1):
        (root / "logs" / f"attempt-{n:02d}.log").write_text(
            "".join(iteration_line(s, n) for s in range(a, b + 1)))
    events = [("start", 0, "supervisor pid 5"), ("attempt", 0, "attempt 1"), ("crashed", 59, "exit 139"),
              ("restart", 59, "restart 1/2 from the last checkpoint after crashed"),
              ("attempt", 59, "attempt 2"), ("stopped", 112, "stopped on request; resumable"),
              ("resume", 112, "supervisor pid 6, after status stopped"), ("attempt", 112, "attempt 3"),
              ("finished", 200, "done")]
    with open(root / "events.jsonl", "w") as f:
        for i, (kind, step, detail) in enumerate(events):
            extra = {"attempt": int(detail.split()[1])} if kind == "attempt" else {}
            event = {"kind": kind, "at": 1000.0 + i, "detail": detail, "step": step, **extra}
            f.write(json.dumps(event) + "\n")
    return root


def parsed(root: Path) -> tuple[Summary, Series, SummaryBuilder]:
    builder, series = SummaryBuilder(), Series()
    for n in range(1, len(ATTEMPTS) + 1):
        for item in parse_darknet(str(root / "logs" / f"attempt-{n:02d}.log"), LogStats()):
            builder.add(item)
            series.add(item)
    summary = builder.finish(LogStats(format="darknet-alexeyab"), name="run", source=str(root))
    summary.attempts = attempts(root, "darknet")
    return summary, series, builder


def runs_of_x(line) -> list[list[float]]:
    """The stretches of a line between its nan gaps."""
    out, cur = [], []
    for x in line.get_xdata():
        if math.isnan(x):
            out, cur = out + [cur] * bool(cur), []
        else:
            cur.append(x)
    return out + [cur] * bool(cur)


def test_split_redone_keeps_the_last_attempt_over_each_step():
    xs = [float(s) for a, b in ATTEMPTS for s in range(a, b + 1)]
    ys = [1.0] * len(xs)
    (kx, _), (gx, _) = split_redone(xs, ys)
    kept = [x for x in kx if not math.isnan(x)]
    assert kept == list(range(1, 201))  # 1-100 of the second attempt, then the third
    faded = [[]]
    for x in gx:
        faded = faded + [[]] if math.isnan(x) else faded[:-1] + [faded[-1] + [x]]
    assert faded == [list(range(1, 60)), list(range(100, 113))]


def test_attempts_of_a_run_folder_say_what_began_each(tmp_path):
    root = darknet_run(tmp_path / "run")
    got = [(a["cause"], a["step"], a["fresh"]) for a in attempts(root, "darknet")]
    assert got == [("start", 1, True), ("restart", 1, True), ("resume", 101, False)]
    ultra = tmp_path / "ultra"
    ultra.mkdir()
    events = [{"kind": "start", "step": 0}, {"kind": "attempt", "attempt": 1},
              {"kind": "fresh-start", "detail": "starts from yolov8n.yaml (no checkpoint yet)"},
              {"kind": "nan", "step": 7},
              {"kind": "restart", "step": 7, "detail": "restart 1/2 from the last healthy checkpoint "
                                                         "after nan, with lr0 0.005"},
              {"kind": "attempt", "attempt": 2},
              {"kind": "checkpoint-chosen", "detail": "continues from /r/last_good.pt after epoch 5"}]
    (ultra / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    got = attempts(ultra, "ultralytics")
    assert [(a["cause"], a["step"], a["fresh"]) for a in got] == [("start", 1, True), ("restart", 6, False)]
    summary = Summary(name="u", source="u", format="ultralytics-11", unit="epoch", attempts=got)
    words = dict(facts(summary))["attempts"]
    assert words == "2: started at epoch 1; watchdog restart at epoch 6 (after nan)"


def test_a_resumed_darknet_run_is_drawn_attempt_by_attempt_with_distinct_marks(tmp_path):
    summary, series, builder = parsed(darknet_run(tmp_path / "run"))
    fig = run_figure(series, summary, builder.lr_points)
    ax = fig.axes[0]
    curves = [ln for ln in ax.get_lines() if len(ln.get_xdata()) > 2]
    for line in curves:  # no diagonal back to an earlier step: x only grows between gaps
        assert all(a < b for run in runs_of_x(line) for a, b in zip(run, run[1:], strict=False))
    faded = [ln for ln in curves if ln.get_alpha() == REDONE_ALPHA]
    assert faded and all(runs_of_x(ln)[0][:2] == [1, 2] for ln in faded)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "watchdog restart" in legend and "resumed (resume command)" in legend
    assert "faded: steps a later attempt redid" in legend
    marks = {ln.get_label(): ln for ln in ax.get_lines() if ln.get_label() in legend}
    restart, resume = marks["watchdog restart"], marks["resumed (resume command)"]
    assert (restart.get_xdata()[0], resume.get_xdata()[0]) == (1, 101)
    assert restart.get_color() != resume.get_color()
    assert restart.get_linestyle() != resume.get_linestyle()
    assert "1 watchdog restart | 1 resume" in ax.get_title()
    text = dict(facts(summary))["attempts"]
    assert text == ("3: started at iteration 1; watchdog restart at iteration 1 (after crashed, from "
                    "scratch); resumed (resume command) at iteration 101 (after stopped)")


def _overlaps_an_axes(fig) -> list[str]:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend()] + list(fig.legends)
    assert legends
    return [f"{ax.get_title()!r}" for legend in legends for ax in fig.axes
            if legend.get_window_extent(renderer).overlaps(ax.get_window_extent(renderer))]


def test_legends_sit_outside_every_axes(tmp_path):
    rows = [MetricRow(step=i, loss=5 / i, avg_loss=5 / i, lr=0.001, seconds=1.0, images=64 * i,
                      map50=0.1 * i / 30 if i % 5 == 0 else None) for i in range(1, 31)]
    builder, series = SummaryBuilder(), Series()
    for r in rows:
        builder.add(r)
        series.add(r)
    summary = builder.finish(LogStats(format="darknet-alexeyab"), name="a", source="a.log")
    one = run_figure(series, summary, builder.lr_points)
    assert _overlaps_an_axes(one) == []
    two = comparison_figure([(series, summary), (series, summary)])
    assert _overlaps_an_axes(two) == []


def _epoch_run() -> tuple[Series, Summary]:
    builder, series = SummaryBuilder(), Series()
    for i in range(1, 11):
        row = MetricRow(step=i, loss=3 / i, val_loss=3.5 / i, map50=0.05 * i)
        builder.add(row)
        series.add(row)
    return series, builder.finish(LogStats(format="ultralytics-11"), name="yolo", source="results.csv")


def test_epochs_and_iterations_are_never_on_one_axis(tmp_path):
    summary, series, _ = parsed(darknet_run(tmp_path / "run"))
    fig = comparison_figure([_epoch_run(), (series, summary)])
    drawn = [ax for ax in fig.axes if any(len(ln.get_xdata()) > 2 for ln in ax.get_lines())]
    assert {ax.get_xlabel() for ax in drawn} == {"epoch", "iteration"}
    for ax in drawn:
        colors = {ln.get_color() for ln in ax.get_lines() if len(ln.get_xdata()) > 2}
        assert len(colors) == 1, ax.get_title()  # one run per panel here: one unit each
        assert ax.get_xlabel() in ax.get_title()
    assert "one column per unit" in fig._suptitle.get_text()


def test_a_running_run_says_so_in_the_chart_and_report_titles(tmp_path):
    me = os.getpid()
    root = darknet_run(tmp_path / "run", {"status": "running", "pid": me,
                                          "pid_start": process_start_time(me), "done": 200})
    assert run_status(root) == "running"
    summary, series, builder = parsed(root)
    summary.status = run_status(root)
    title = run_figure(series, summary, builder.lr_points).axes[0].get_title()
    assert "STILL RUNNING" in title and "latest avg loss" in title
    assert render_report([summary]).startswith("# Training summary: run (still running)")
    assert "(STILL RUNNING)" in render_text([summary]).splitlines()[0]
    assert dict(facts(summary))["trained"].startswith("200 iterations so far")


def test_the_model_the_run_used_labels_it(tmp_path):
    assert [model_name(m) for m in ("yolov8n.yaml", "/m/yolo11s.pt", "runs/w/last.pt")] == [
        "yolov8n", "yolo11s", "last.pt"]
    (tmp_path / "run.json").write_text(json.dumps({"backend": "ultralytics",
                                                   "options": {"model": "yolov8n.yaml"}}))
    assert run_model(tmp_path) == "yolov8n"
    s = Summary(name="r", source="results.csv", format="ultralytics-11", unit="epoch", model="yolov8n")
    first = render_text([s]).splitlines()[0]
    assert "yolov8n" in first and "ultralytics-11" not in first


def test_metrics_are_percentages_throughout():
    block = MapBlock(step=10, line=1, iou_threshold=0.5, map=0.0038, precision=0.61, recall=0.34,
                     f1=0.43, tp=3, fp=2, fn=6, avg_iou=0.432)
    s = Summary(name="r", source="a.log", format="darknet-alexeyab", unit="iteration", last_step=10,
                first_step=1, best_map50=0.0038, best_map50_step=10, final_map50=0.0038,
                best_map_block=block)
    lines = dict(facts(s))
    assert lines["mAP@0.5"] == "best 0.38 % at iteration 10, final 0.38 %"
    assert lines["at best mAP"] == ("P 61.00 %, R 34.00 %, F1 43.00 %, TP 3, FP 2, FN 6, "
                                    "avg IoU 43.20 %")
