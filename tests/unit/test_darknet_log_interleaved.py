"""darknet logs with stdout and stderr in one file: messages found anywhere in a line."""

from __future__ import annotations

from pathlib import Path

from pipeline.logs.darknet import parse_darknet, split_interleaved
from pipeline.logs.rows import Event, LogStats, MetricRow

REGION = "Region 16 Avg IOU: 0.512, Class: 0.61, Obj: 0.43, No Obj: 0.004, .5R: 0.5, .75R: 0.1"


def _parse(tmp_path: Path, text: str):
    path = tmp_path / "train.log"
    path.write_text(text)
    stats = LogStats()
    items = list(parse_darknet(str(path), stats))
    return ([x for x in items if isinstance(x, MetricRow)],
            [x for x in items if isinstance(x, Event)], stats)


def _iteration(n: int) -> str:
    return f"{n}: 5.0, 5.0 avg, 0.001000 rate, 1.0 seconds, {64 * n} images\n"


def test_a_save_interleaved_mid_line_is_counted_and_not_unknown(tmp_path):
    text = (
        "Learning Rate: 0.001, Momentum: 0.9, Decay: 0.0005\n"  # header
        + _iteration(1) + _iteration(2)
        # pjreddie's stdout (Region) cut by stderr's save message, the rest on the next line
        + REGION[:40] + "Saving weights to /w/backup/toy_100.weights\n" + REGION[40:] + ",  count: 1\n"
        + _iteration(3)
        # the same at the very end of a stdout line
        + REGION + ",  count: 2Saving weights to /w/backup/toy.backup\n"
        + "some line nobody knows\n"
        + _iteration(4)
        + "x 1Loading weights from /w/backup/toy.backup...\n"
        + REGION[:20] + "Couldn't open file: /d/labels/a.txt\n"
    )
    rows, events, stats = _parse(tmp_path, text)
    saves = [e for e in events if e.kind == "save"]
    assert stats.saves == 2 and [e.detail for e in saves] == [
        "/w/backup/toy_100.weights", "/w/backup/toy.backup"]
    assert [e.step for e in saves] == [2, 3]
    assert [e.line for e in saves] == [4, 7]  # line numbers of the file, as an editor shows
    assert [e.detail for e in events if e.kind == "load"] == ["/w/backup/toy.backup"]
    errors = [e for e in events if e.kind == "error"]
    assert len(errors) == 1 and errors[0].detail.startswith("Couldn't open file: /d/labels/a.txt")
    assert stats.unknown_lines == 1  # only "some line nobody knows"
    assert [r.step for r in rows] == [1, 2, 3, 4]


def test_split_interleaved_keeps_every_byte_and_leaves_clean_lines_alone():
    clean = b"\n" + _iteration(1).encode() + b"Saving weights to a\n  Saving weights to b\n"
    assert split_interleaved(clean, len(clean)) == (clean, len(clean), set())
    raw = b"\nab: 1Saving weights to w\nrest\n"
    new, end, edges = split_interleaved(raw, len(raw))
    assert new.replace(b"\r", b"") == raw and end == len(raw) + 1
    assert new[6:7] == b"\r" and edges == {6}
