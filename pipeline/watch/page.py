"""HTML of the status pages, from the rows of `runs.run_rows` (pure: no files, no clock).

Every string that comes from a run (paths, reasons, event details, summary facts) goes
through `html.escape`; links carry the run id URL-quoted. The pages reload themselves every
`refresh` seconds with a meta refresh: no script, no build step.
"""

from __future__ import annotations

import math
import time
from html import escape
from urllib.parse import quote

from pipeline.watch.runs import LIST_EVENTS, RESOURCE_KEYS

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.2em;color:#222}
table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;
vertical-align:top}th{background:#f4f4f4;white-space:nowrap}td.n{white-space:nowrap}.bar{width:120px;height:8px;background:#eee;display:inline-block}
.bar>span{display:block;height:8px;background:#3a7}.running{color:#06c}.finished{color:#080}
.failed,.killed,.unreadable{color:#c00}.stopped{color:#a60}.ev{font-size:12px;color:#555;min-width:16em;max-width:40em}
small{color:#777}.why{display:block;min-width:10em;max-width:20em}img{max-width:100%;border:1px solid #ddd}
"""
RESOURCE_LABELS = {"cpu_tree": ("cpu", "% of a core"), "rss_mb": ("rss", "MB"),
                   "gpu_util": ("gpu", "%"), "gpu_mem_mb": ("gpu mem", "MB")}


def e(value: object) -> str:
    """`value` as escaped HTML text ("" for None)."""
    return "" if value is None else escape(str(value), quote=True)


def hms(seconds: float | None) -> str:
    """Seconds as h:mm:ss ("" for None, nan or inf)."""
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return ""
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def clock(at: float | None, fmt: str = "%m-%d %H:%M:%S") -> str:
    """A timestamp in local time ("" for None)."""
    return time.strftime(fmt, time.localtime(at)) if isinstance(at, (int, float)) else ""


def number(x: object, fmt: str = ".4g") -> str:
    """A number with `fmt` ("" when it is not a finite number)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        return ""
    return format(x, fmt)


def run_url(run_id: str, what: str = "run") -> str:
    """The relative URL of a run's page (`run`), chart (`chart.png`) or report (`report.md`)."""
    return f"{what}?id={quote(run_id, safe='')}"


def progress(row: dict) -> str:
    """done/total unit, the percentage and a bar."""
    done, total, pct = row.get("done"), row.get("total"), row.get("percent")
    text = f"{e(done)}/{e(total if total is not None else '?')} {e(row.get('unit') or '')}"
    if pct is None:
        return text
    width = max(0.0, min(100.0, pct))
    return f'{text} ({pct:.1f} %)<br><span class="bar"><span style="width:{width:.1f}%"></span></span>'


def speed(row: dict) -> str:
    """Seconds per unit, from the run's measured speed."""
    s = row.get("speed")
    return f"{number(1 / s, '.3g')} s/{e(row.get('unit'))}" if number(s) and s > 0 else ""


def eta(row: dict) -> str:
    """ETA as h:mm:ss and the finish time, while the run runs."""
    if row.get("status") != "running" or row.get("eta_seconds") is None:
        return ""
    return f"{hms(row['eta_seconds'])}<br><small>finish ~{e(clock(row.get('finish_at'), '%a %H:%M'))}</small>"


def resources(sample: dict | None, now: float) -> str:
    """The latest resource sample as `cpu 93 %, rss 812 MB, ...` ("" when there is none)."""
    if not sample:
        return ""
    parts = []
    for key in RESOURCE_KEYS:
        value = number(sample.get(key), ".3g" if key in ("cpu_tree", "gpu_util") else ",.0f")
        if value:
            label, unit = RESOURCE_LABELS[key]
            parts.append(f"{label} {value} {unit}")
    t = sample.get("t")
    if number(t) and parts:
        age = max(0.0, now - t)
        parts.append(f"<small>{e(f'{age:.0f} s' if age < 90 else hms(age))} ago</small>")
    return ", ".join(parts)


def mean_ap(x: float | None) -> str:
    """mAP@0.5 (a fraction) as a percentage ("" for None)."""
    text = number(x * 100 if isinstance(x, (int, float)) else None, ".2f")
    return f"{text} %" if text else ""


def shorten(text: object, width: int | None) -> str:
    """`text` cut to `width` characters with an ellipsis (None: whole)."""
    text = "" if text is None else str(text)
    return text if width is None or len(text) <= width else text[: width - 1] + "…"


def events(rows: list[dict], limit: int, width: int | None = None) -> str:
    """The last `limit` events, newest last, one line each (details cut to `width`)."""
    lines = [f"{e(clock(ev.get('at')))} <b>{e(ev.get('kind'))}</b> {e(shorten(ev.get('detail'), width))}"
             for ev in rows[-limit:]]
    return f'<div class="ev">{"<br>".join(lines)}</div>'


def head(title: str, refresh: int) -> str:
    """The document start: title, meta refresh, style."""
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>{e(title)}</title>'
            f'<meta http-equiv="refresh" content="{int(refresh)}">'
            f'<meta name="viewport" content="width=device-width"><style>{STYLE}</style></head><body>')


#: Events left off the list page (its run page has them all).
QUIET_EVENTS = ("eta",)
NOWRAP, NOWRAP_CELLS = ' class="n"', {0, 2, 3, 4, 5, 6, 7, 8}
COLUMNS = ("run", "status", "backend", "progress", "ETA", "speed", "loss", "mAP@0.5", "restarts",
           "resources", "latest events")


def list_row(row: dict, now: float) -> str:
    """One <tr> of the list page."""
    status = row.get("status", "")
    why = f"<small class=\"why\">{e(row.get('reason') or row.get('error'))}</small>" if (
        row.get("reason") or row.get("error")) and status != "running" else ""
    cells = (f'<a href="{e(run_url(row["id"]))}">{e(row["id"])}</a>',
             f'<span class="{e(status)}">{e(status)}</span>{why}', e(row.get("backend")),
             progress(row), eta(row), speed(row), e(number(row.get("loss"))),
             mean_ap(row.get("map50")),
             e(row.get("restarts", "")), resources(row.get("resources"), now),
             events([v for v in row.get("events") or [] if v.get("kind") not in QUIET_EVENTS],
                    LIST_EVENTS, width=80))
    return "<tr>" + "".join(f'<td{NOWRAP if i in NOWRAP_CELLS else ""}>{c}</td>'
                            for i, c in enumerate(cells)) + "</tr>"


def index_html(root: str, rows: list[dict], refresh: int, now: float) -> str:
    """The list page: every run under `root`, one row each."""
    body = "".join(list_row(r, now) for r in rows) or (
        f'<tr><td colspan="{len(COLUMNS)}">no training run under this folder yet '
        "(a run folder holds run.json and state.json)</td></tr>")
    return (head(f"runs: {root}", refresh) + f"<h1>Training runs</h1><p>{e(root)} · "
            f"{len(rows)} run(s) · {e(clock(now, '%Y-%m-%d %H:%M:%S'))} · refreshes every {int(refresh)} s"
            f' · <a href="status.json">JSON</a></p><table><tr>'
            + "".join(f"<th>{e(c)}</th>" for c in COLUMNS) + f"</tr>{body}</table></body></html>")


def facts_table(facts: list[tuple[str, str]]) -> str:
    """`summarize`'s labelled facts as a two-column table."""
    rows = "".join(f"<tr><th>{e(label)}</th><td>{e(value)}</td></tr>" for label, value in facts)
    return f"<table>{rows}</table>" if rows else ""


def run_table(row: dict, now: float) -> str:
    """The run page's table of status, progress, ETA, speed, loss, mAP and resources."""
    facts = [("status", e(row.get("status"))), ("backend", e(row.get("backend"))),
             ("reason", e(row.get("reason") or row.get("error"))), ("progress", progress(row)),
             ("ETA", eta(row)), ("speed", speed(row)), ("loss", e(number(row.get("loss")))),
             ("mAP@0.5", mean_ap(row.get("map50"))), ("restarts", e(row.get("restarts"))),
             ("resources", resources(row.get("resources"), now)), ("checkpoint", e(row.get("checkpoint"))),
             ("pid", e(row.get("pid"))), ("folder", e(row.get("run")))]
    return "<table>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in facts if v) + "</table>"


def run_html(row: dict, facts: list[tuple[str, str]], chart_url: str | None, note: str,
             refresh: int, now: float, max_events: int = 100) -> str:
    """A run's page: its figures, chart, summary facts (with a link to report.md) and events."""
    chart = f'<p><img src="{e(chart_url)}" alt="chart of {e(row["id"])}"></p>' if chart_url else ""
    note_html = f"<p><small>{e(note)}</small></p>" if note else ""
    summary = (facts_table(facts) + f'<p><a href="{e(run_url(row["id"], "report.md"))}">report.md</a></p>'
               if facts else "<p>no summary yet</p>")
    evs = row.get("events") or []
    shown = f"last {max_events} of {len(evs)}" if len(evs) > max_events else str(len(evs))
    return (head(f"run {row['id']}", refresh) + f'<p><a href=".">all runs</a></p><h1>{e(row["id"])}</h1>'
            f"{run_table(row, now)}<h2>Chart</h2>{chart}{note_html}<h2>Summary</h2>{summary}"
            f"<h2>Events ({shown})</h2>{events(evs, max_events)}</body></html>")


def error_html(code: int, message: str) -> str:
    """A small error page."""
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>{code}</title></head><body>'
            f'<h1>{code}</h1><p>{e(message)}</p><p><a href="/">all runs</a></p></body></html>')
