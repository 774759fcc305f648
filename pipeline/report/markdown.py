"""report.md and the console text: one list of (label, value) facts per run, rendered twice.

`facts(summary)` is the single place that words a Summary; `render_report` lays the facts
out for one run (with per-class AP of the best mAP) or side by side for several.
"""

from __future__ import annotations

import math
import re
import time

from pipeline.report.summary import LOSS_LIMIT, Summary

#: Run events listed in report.md (the rest stay in events.jsonl).
MAX_EVENT_ROWS = 40
_LIMIT = f"±{LOSS_LIMIT:.0e}".replace("e+", "e")  # "±1e15"


def duration(seconds: float | None) -> str:
    """Seconds in words. Example: `duration(5400)` -> "1 h 30 min"; `duration(42)` -> "42 s".

    None, nan and inf (a projection from absurd step times) give "—".
    """
    if seconds is None or not math.isfinite(seconds):
        return "—"
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours:,} h {minutes:02d} min"


def size(nbytes: int) -> str:
    """A byte count for people. Example: `size(1632282)` -> "1.6 MB"; `size(2517)` -> "2.5 kB"."""
    if nbytes < 1000:
        return f"{nbytes} B"
    return f"{nbytes / 1e3:.1f} kB" if nbytes < 1e6 else f"{nbytes / 1e6:,.1f} MB"


def pct(x: float | None) -> str:
    """A fraction as a percentage. Example: `pct(0.481172)` -> "48.12 %"."""
    return "—" if x is None else f"{x * 100:.2f} %"


def num(x: float | int | None) -> str:
    """A number in at most 4 significant digits ("—" for None)."""
    if x is None:
        return "—"
    return f"{x:,}" if isinstance(x, int) else f"{x:.4g}"


def run_label(s: Summary) -> str:
    """What trained and what was read. Example: "yolov8n, ultralytics results.csv";
    "darknet-alexeyab" for a log that does not name its model."""
    if not s.format.startswith("ultralytics"):
        return f"{s.model}, {s.format}" if s.model else s.format
    return f"{s.model or 'model unknown'}, ultralytics results.csv"


def _map_line(best: float | None, step: int | None, final: float | None, unit: str) -> str:
    if best is None:
        return "—"
    return f"best {pct(best)} at {unit} {step}, final {pct(final)}"


def facts(s: Summary) -> list[tuple[str, str]]:
    """The summary as labelled one-line values, most important first."""
    unit = s.unit
    so_far = " so far" if s.status == "running" else ""
    steps = (f"{s.last_step:,} {unit}s{so_far} ({s.steps_logged:,} logged from {s.first_step:,})"
             if s.last_step is not None else f"no {unit}s logged")
    if s.missing_steps:
        steps += f"; {s.missing_steps:,} missing from the log"
    out = [("status", _status(s))] if s.status else []
    out += [("trained", steps), ("loss", f"{s.loss_name} {s.loss_verdict}")]
    if s.final_val_loss is not None:
        out.append(("final val loss", num(s.final_val_loss)))
    out.append(("mAP@0.5", _map_line(s.best_map50, s.best_map50_step, s.final_map50, unit)))
    if s.best_map50_95 is not None:
        out.append(("mAP@0.5:0.95",
                    _map_line(s.best_map50_95, s.best_map50_95_step, s.final_map50_95, unit)))
    b = s.best_map_block
    if b is not None and b.precision is not None:
        out.append(("at best mAP", f"P {pct(b.precision)}, R {pct(b.recall)}, F1 {pct(b.f1)}, "
                                   f"TP {b.tp}, FP {b.fp}, FN {b.fn}, avg IoU {pct(b.avg_iou)}"))
    nan = f"{s.nan_events}" + (f" (first at {unit} {s.first_nan_step}; {s.nan_steps:,} "
                               f"{unit}s non-finite)" if s.nan_events else "")
    if s.val_nan_events:
        nan += f"; validation loss non-finite {s.val_nan_events}x"
    out.append(("NaN events", nan))
    if s.attempts:
        out.append(("attempts", _attempts(s)))
    else:
        out.append(("restarts", f"{s.restarts}" + (
            f" (at {unit} {', '.join(map(str, s.restart_steps[:5]))})" if s.restarts else "")))
    what = "sum of iteration times" if unit == "iteration" else "time column"
    out.append(("train time", f"{duration(s.train_seconds)} ({what})"
                if s.train_seconds is not None else "— (the log has no times)"))
    speed = f"{s.seconds_per_step:.3g} s/{unit} (last 100)" if s.seconds_per_step else "—"
    if s.images_per_second:
        speed += f", {s.images_per_second:,.1f} images/s"
    out.append(("speed", speed))
    out.append(("projected finish", _projection(s)))
    if s.engine_hours_left is not None:
        out.append(("darknet's estimate", f"{s.engine_hours_left:,.1f} hours left"))
    out.append(("learning rate", _lr(s)))
    if s.saves:
        out.append(("weights saved", f"{s.saves}x, last {s.last_save}"))
    out.append(("ended", s.ended))
    if s.chart_skipped:
        out.append(("not drawn", f"{s.chart_skipped:,} value(s) infinite, beyond {_LIMIT} or an "
                                 "mAP outside 0..1: left off the chart (kept in metrics.csv)"))
    if s.run_events:
        counts: dict[str, int] = {}
        for e in s.run_events:
            counts[e["kind"]] = counts.get(e["kind"], 0) + 1
        out.append(("supervisor events", ", ".join(f"{k} {n}" for k, n in counts.items())))
    log = f"{s.lines:,} lines, {size(s.bytes)}; {s.header_lines:,} header, " \
          f"{s.unknown_lines:,} unknown skipped"
    if s.truncated_last_line:
        log += f"; last line cut: `{s.truncated_last_line[:60]}`"
    out.append(("log", log))
    return out


def _status(s: Summary) -> str:
    if s.status == "running":
        return "still running: these numbers are a snapshot"
    return s.status or "—"


#: What began an attempt, in words.
CAUSE_WORDS = {"start": "started", "resume": "resumed (resume command)", "restart": "watchdog restart"}
_AFTER = re.compile(r"after (?:status )?([\w-]+)")  # "after crashed", "after status stopped"
#: Attempts listed in the `attempts` fact.
MAX_ATTEMPT_WORDS = 6


def _attempts(s: Summary) -> str:
    """Each attempt and what began it. Example: `3: started at iteration 1; watchdog restart
    at iteration 1 (after crashed, from scratch); resumed (resume command) at iteration 101
    (after stopped)`."""
    words = []
    for a in s.attempts[:MAX_ATTEMPT_WORDS]:
        why = [f"after {m.group(1)}" for m in [_AFTER.search(a.get("detail") or "")] if m]
        why += ["from scratch"] if a.get("fresh") and a["cause"] != "start" else []
        where = f" at {s.unit} {a['step']:,}" if a.get("step") is not None else ""
        words.append(CAUSE_WORDS.get(a["cause"], a["cause"]) + where
                     + (f" ({', '.join(why)})" if why else ""))
    more = len(s.attempts) - MAX_ATTEMPT_WORDS
    return f"{len(s.attempts)}: " + "; ".join(words) + (f"; and {more} more" if more > 0 else "")


def _projection(s: Summary) -> str:
    if s.max_steps is None:
        if s.unit == "iteration":
            return "— (total unknown: give --max-batches N or --cfg)"
        return "— (total unknown: no args.yaml with `epochs` beside results.csv)"
    head = f"{s.max_steps:,} {s.unit}s ({s.max_steps_source})"
    if not s.remaining_steps:
        return head + ": reached"
    if s.projected_seconds_left is None:
        return head + f": {s.remaining_steps:,} left, time per {s.unit} unknown"
    total = f", whole run ≈ {duration(s.projected_total_seconds)}" \
        if s.projected_total_seconds is not None else ""
    return head + f": {s.remaining_steps:,} left ≈ {duration(s.projected_seconds_left)}{total}"


def _lr(s: Summary) -> str:
    if s.final_lr is None:
        return "—"
    if not s.lr_schedule:
        return f"changes throughout (no plateau); final {num(s.final_lr)}"
    steps = "; ".join(f"{lr:g} from {a:,}" for a, lr in s.lr_schedule[:6])
    return f"{steps}; final {num(s.final_lr)}"


#: The facts `-q` keeps: what was trained and how it ended up.
QUIET_FACTS = ("trained", "loss", "mAP@0.5")


def render_text(summaries: list[Summary], level: int = 0) -> str:
    """Console text: each run's facts as aligned `label: value` lines.

    `level` -1 keeps only `QUIET_FACTS`; 1 adds per-class AP at the best mAP, every
    restart, skipped-line samples and error lines.
    """
    blocks = []
    for s in summaries:
        running = "  (STILL RUNNING)" if s.status == "running" else ""
        lines = [f"{s.name}  [{run_label(s)}]  {s.source}{running}"]
        lines += [f"  {label:<18} {value}" for label, value in facts(s)
                  if level >= 0 or label in QUIET_FACTS]
        if level > 0:
            lines += _detail(s)
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _detail(s: Summary) -> list[str]:
    out = []
    b = s.best_map_block
    if b is not None and b.classes:
        out.append(f"  per-class AP at the best mAP ({s.unit} {b.step}):")
        out += [f"    {c.class_id:>3} {c.name:<24} AP {pct(c.ap):>8}  TP {num(c.tp)}  FP {num(c.fp)}"
                for c in b.classes]
    if s.restart_steps:
        out.append(f"  restarts at {s.unit}: " + ", ".join(map(str, s.restart_steps)))
    if s.unknown_samples:
        out.append("  lines skipped (digits shown as #):")
        out += [f"    {n:>6,}  {k}" for k, n in s.unknown_samples.items()]
    out += [f"  error: {e}" for e in s.errors]
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_report(summaries: list[Summary]) -> str:
    """report.md for one run, or a side-by-side comparison for several."""
    if len(summaries) == 1:
        s = summaries[0]
        running = " (still running)" if s.status == "running" else ""
        out = [f"# Training summary: {s.name}{running}", "",
               f"Source: `{s.source}` ({run_label(s)})", "", "| | |", "|---|---|"]
        out += [f"| {label} | {_cell(value)} |" for label, value in facts(s)]
        out += _classes(s) + _run_events(s) + _eta_checks(s) + _resources(s) + _unknown(s) + _errors(s)
    else:
        out = ["# Training comparison", "",
               "| | " + " | ".join(_cell(s.name) for s in summaries) + " |",
               "|---|" + "---|" * len(summaries)]
        table = [dict(facts(s)) for s in summaries]
        labels = list(dict.fromkeys(label for t in table for label, _ in t.items()))
        out += [f"| {label} | " + " | ".join(_cell(t.get(label, "—")) for t in table) + " |"
                for label in labels]
        out += ["", "Sources: " + ", ".join(f"`{s.source}` ({run_label(s)})" for s in summaries)]
        for s in summaries:
            out += _errors(s)
    out += ["", "Files: `summary.json` (all numbers), `metrics.csv` (one row per step), "
                "`chart.png`.", "", "![chart](chart.png)", ""]
    return "\n".join(out)


def _resources(s: Summary) -> list[str]:
    if not s.resources:
        return []
    from pipeline.report.resources_chart import markdown_table

    return ["", "## Resources (RUN/resources.jsonl)", "", markdown_table(s.resources), "",
            "![resources](resources.png)"]


def _classes(s: Summary) -> list[str]:
    b = s.best_map_block
    if b is None or not b.classes:
        return []
    out = ["", f"## Per-class AP at the best mAP ({s.unit} {b.step})", "",
           "| id | class | AP | TP | FP |", "|---|---|---|---|---|"]
    out += [f"| {c.class_id} | {_cell(c.name)} | {pct(c.ap)} | {num(c.tp)} | {num(c.fp)} |"
            for c in b.classes]
    return out


def _run_events(s: Summary) -> list[str]:
    """The supervisor's events of a `train` run folder (NaN, restarts, resumes, stalls...)."""
    if not s.run_events:
        return []
    out = ["", "## Run events", "", f"| when | {s.unit} | event | detail |", "|---|---|---|---|"]
    for e in s.run_events[-MAX_EVENT_ROWS:]:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e["at"] or 0))
        out.append(f"| {when} | {num(e.get('step'))} | {e['kind']} | {_cell(e['detail'][:200])} |")
    if len(s.run_events) > MAX_EVENT_ROWS:
        out.append(f"\n({len(s.run_events) - MAX_EVENT_ROWS} earlier events in events.jsonl)")
    return out


def _eta_checks(s: Summary) -> list[str]:
    """How good the run's own time-to-finish predictions were."""
    if not s.eta_checks:
        return []
    out = ["", "## How good were the ETAs", "",
           "| at | predicted finish | actual finish | off by |", "|---|---|---|---|"]
    for c in s.eta_checks:
        fmt = "%Y-%m-%d %H:%M:%S"
        predicted = time.strftime(fmt, time.localtime(c["predicted_finish"])) \
            if c["predicted_finish"] else "—"
        actual = time.strftime(fmt, time.localtime(c["actual_finish"])) if c["actual_finish"] \
            else "not yet"
        off = "—" if c["error_seconds"] is None else (
            f"{'+' if c['error_seconds'] >= 0 else '-'}{duration(abs(c['error_seconds']))}"
            + (f" ({c['error_percent']:+.0f}% of the time left)" if c["error_percent"] is not None else ""))
        out.append(f"| {c['percent']}% | {predicted} | {actual} | {off} |")
    return out


def _unknown(s: Summary) -> list[str]:
    if not s.unknown_samples:
        return []
    out = ["", "## Lines skipped (digits shown as #)", "", "| count | line |", "|---|---|"]
    return out + [f"| {n:,} | `{_cell(k)}` |" for k, n in s.unknown_samples.items()]


def _errors(s: Summary) -> list[str]:
    if not s.errors:
        return []
    return ["", f"## Errors in {s.name}", ""] + [f"- `{e}`" for e in s.errors]
