"""check-cfg --data: the .data, .names and image lists, checked for the fork that will read them.

Facts (pjreddie's Debian binary): labels are looked for where `pipeline.darknet.paths`
says; a missing label file ends training with "Couldn't open file" and exit code 0; a
class id >= classes is not reported; a missing image can crash it. Both forks remove every
space from `.data` values. Listed images and label lines are checked with the rules and
problem names `check` uses (`pipeline.dataset.label_lines`).
"""

from __future__ import annotations

import difflib
import os
from collections import Counter
from dataclasses import dataclass, field

from pipeline.darknet.cfg import c_int
from pipeline.darknet.lint import ERROR, WARNING, Finding
from pipeline.darknet.paths import EXTENSIONS, LABEL_PATH
from pipeline.dataset.datafiles import DATA_KEYS, DataFile, read_names, read_text
from pipeline.dataset.label_lines import (
    MISSING_IMAGE,
    MISSING_LABEL,
    RELATIVE_PATH,
    check_lines,
    label_bytes,
)
from pipeline.dataset.labels import label_path_beside
from pipeline.errors import CfgError

#: Keys AlexeyAB's darknet also reads from a .data file.
OTHER_DATA_KEYS = ("eval", "results", "map", "labels", "top", "difficult", "leaderboard")
EXAMPLES_PER_RULE = 20


@dataclass(slots=True)
class Findings:
    """Findings with a cap per rule, so a million bad labels stay readable; counts are full."""

    items: list[Finding] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)

    def add(self, f: Finding) -> None:
        """Count `f`; keep it when its rule has fewer than EXAMPLES_PER_RULE kept."""
        self.counts[(f.rule, f.severity)] += 1
        if self.counts[(f.rule, f.severity)] <= EXAMPLES_PER_RULE:
            self.items.append(f)


@dataclass(slots=True)
class DataSummary:
    """What the dataset says: classes, images listed for training, findings."""

    classes: int
    train_images: int
    findings: Findings


def lint_data(data: DataFile, fork: str) -> DataSummary:
    """Check a parsed .data and everything it points at, for `fork`.

    Example: `lint_data(read_data("obj.data"), "pjreddie").findings.counts`.
    """
    out = Findings()
    path = data.path
    classes = c_int(data.get("classes") or "")
    if classes <= 0:
        ln = data.find("classes")
        raise CfgError(f"{path}:{ln.number if ln else 0}: classes={data.get('classes')!r} "
                       "is not a positive whole number")
    _keys(data, out)
    names = _path(data, "names", out, must_exist=True)
    if names and os.path.isfile(names):
        _names(names, classes, data, out)
    train_images = 0
    checked: set[str] = set()
    for key in ("train", "valid"):
        lst = _path(data, key, out, must_exist=True)
        if lst and os.path.isfile(lst) and os.path.realpath(lst) not in checked:
            checked.add(os.path.realpath(lst))
            n = _list(lst, fork, classes, out)
            train_images = n if key == "train" else train_images
    _path(data, "backup", out, must_exist=False)
    return DataSummary(classes, train_images, out)


def _keys(data: DataFile, out: Findings) -> None:
    known = DATA_KEYS + OTHER_DATA_KEYS
    for ln in data.lines:
        if ln.is_junk:
            out.add(Finding(rule="junk-line", severity=ERROR, file=data.path, line=ln.number,
                            message=f"darknet cannot read {ln.raw.strip()!r} (no '=')"))
        elif ln.key and "#" in ln.value:
            out.add(Finding(rule="inline-comment", severity=WARNING, file=data.path, line=ln.number,
                            message=f"darknet has no end-of-line comments: {ln.key} is read as "
                            f"{ln.value!r}"))
        if ln.key and ln.key not in known:
            hint = difflib.get_close_matches(ln.key, DATA_KEYS, n=1)
            also = f" (did you mean {hint[0]}?)" if hint else ""
            out.add(Finding(rule="data-unknown-key", severity=WARNING, file=data.path, line=ln.number,
                            message=f"darknet does not read {ln.key}={also}"))
    for key in ("valid", "names", "backup"):
        if data.get(key) is None:
            why = {"backup": "pjreddie then saves weights to /backup/",
                   "valid": "darknet validates and computes mAP on it",
                   "names": "class names for detections; checked against classes"}[key]
            out.add(Finding(rule="data-key-missing", severity=ERROR if key == "backup" else WARNING,
                            file=data.path, line=0, message=f"no {key}= ({why})"))


def _path(data: DataFile, key: str, out: Findings, must_exist: bool) -> str | None:
    ln = data.find(key)
    if ln is None:
        return None
    raw = data.raw_value(key) or ""
    value = ln.value
    if any(c in raw for c in " \t") and "#" not in raw:
        out.add(Finding(rule="data-path-space", severity=ERROR, file=data.path, line=ln.number,
                        message=f"darknet removes spaces: {key} {raw!r} is read as {value!r}"))
    if not os.path.isabs(value):
        out.add(Finding(rule="data-path-relative", severity=ERROR, file=data.path, line=ln.number,
                        message=f"{key}={value} is relative: it depends on darknet's working folder"))
    if must_exist and not os.path.isfile(value):
        out.add(Finding(rule="data-path-missing", severity=ERROR, file=data.path, line=ln.number,
                        message=f"{key} file {value} does not exist"))
    return value


def _names(path: str, classes: int, data: DataFile, out: Findings) -> None:
    names = read_names(path)
    for i, n in enumerate(names, 1):
        if not n:
            out.add(Finding(rule="names-empty", severity=WARNING, file=path, line=i,
                            message="empty line: darknet counts it"))
    if len(names) != classes:
        ln = data.find("classes")
        out.add(Finding(rule="names-count", severity=ERROR, file=data.path, line=ln.number if ln else 0,
                        message=f"classes={classes} but {path} has {len(names)} lines"))


def _list(list_path: str, fork: str, classes: int, out: Findings) -> int:
    text = read_text(list_path, "list")
    label_of = LABEL_PATH[fork]
    count = 0
    for number, raw in enumerate(text.splitlines(), 1):
        image = raw.rstrip("\r")
        if not image.strip():
            continue
        count += 1
        _image(list_path, number, image, fork, label_of, classes, out)
    return count


def _image(list_path: str, number: int, image: str, fork: str, label_of, classes: int,
           out: Findings) -> None:
    def add(rule: str, message: str, file: str = list_path, line: int = number) -> None:
        out.add(Finding(rule=rule, severity=ERROR, file=file, line=line, message=message))

    if not os.path.isabs(image):
        add(RELATIVE_PATH, f"{image} is relative: darknet resolves it from its working folder")
    if not os.path.isfile(image):
        add(MISSING_IMAGE, f"{image} does not exist (pjreddie may crash with signal 11)")
        return
    label = label_of(image)
    if label is None:
        exts = " ".join(EXTENSIONS[fork])
        add(MISSING_LABEL, f"{image}: {fork}'s darknet knows only {exts}; it would read "
            "the image itself as its label")
        return
    data = label_bytes(label)
    if data is None:
        beside = label_path_beside(image)
        why = (f" (it rewrites the path; the label beside the image, {beside}, is not read)"
               if label != beside and os.path.isfile(beside) else "")
        add(MISSING_LABEL, f"{fork}'s darknet looks for {label}: missing or unreadable{why}; "
            "pjreddie then stops training with exit code 0")
        return
    for line, exc in check_lines(data, classes)[1]:
        add(exc.kind, exc.detail, file=label, line=line)
