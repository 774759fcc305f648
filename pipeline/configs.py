"""The `configs` and `check-cfg` stages: one call each, returning a report to print.

`make_configs` turns a dataset (its manifest) and a darknet template into the files both
engines train from; `check_cfg` runs the cfg rules and, with a .data, the dataset rules.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.darknet.cfg import read_cfg, write_cfg
from pipeline.darknet.data import Findings, lint_data
from pipeline.darknet.fork import choose_fork, find_template
from pipeline.darknet.lint import ERROR, Finding, lint_cfg
from pipeline.darknet.paths import LABEL_PATH
from pipeline.darknet.values import CfgOptions, Choice, apply_values, compute_values
from pipeline.dataset.datafiles import (
    read_data,
    write_data,
    write_list,
    write_names,
    write_ultralytics_yaml,
)
from pipeline.dataset.folder import open_dataset, unread_labels
from pipeline.dataset.labels import ultralytics_label_path
from pipeline.errors import UserError
from pipeline.io import atomic_write

VAL_SPLITS = ("val", "valid", "validation", "test")
#: In the --out folder: the digest of every file `configs` wrote, to spot hand edits.
RECORD = ".configs-written.json"


@dataclass(slots=True)
class ConfigsReport:
    """What `configs` wrote and every value it chose, with reasons."""

    out: str
    name: str
    template: str
    classes: int
    train_images: int
    valid_images: int
    fork: str
    files: dict[str, str]
    choices: list[Choice]
    notes: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    fork_reason: str = ""

    def as_dict(self) -> dict:
        """JSON-ready form."""
        return {
            "out": self.out, "name": self.name, "template": self.template,
            "classes": self.classes, "train_images": self.train_images,
            "valid_images": self.valid_images, "fork": self.fork,
            "fork_reason": self.fork_reason, "files": self.files,
            "values": [{"where": c.where, "key": c.key, "value": c.value, "reason": c.reason}
                       for c in self.choices],
            "notes": self.notes, "findings": [f.as_dict() for f in self.findings],
            "warnings": [f.as_dict() for f in self.warnings],
        }


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def guard_edits(out: Path, paths: list[Path], force: bool = False) -> None:
    """Refuse to overwrite a file changed since `configs` wrote it (or not written by it),
    unless `force`. The digests are in `out/RECORD`.
    """
    try:
        record = json.loads((out / RECORD).read_text(encoding="utf-8")).get("files", {})
    except (OSError, ValueError, AttributeError):
        record = {}
    changed = [p.name for p in paths if p.is_file() and record.get(p.name) != _digest(p)]
    if changed and not force:
        raise UserError(f"{out}: {', '.join(changed)} changed since configs wrote it "
                        "(edited by hand?) or not written by configs",
                        "--force overwrites, or give another --out")


def record_digests(out: Path, paths: list[Path]) -> None:
    """Write `out/RECORD`: the digest of each file just written."""
    files = {p.name: _digest(p) for p in paths}
    atomic_write(out / RECORD, json.dumps({"files": files}, indent=1) + "\n")


def make_configs(dataset: str | Path, template: str, out: str | Path, name: str | None = None,
                 opts: CfgOptions | None = None, fork: str | None = None,
                 force: bool = False) -> ConfigsReport:
    """Write `<name>.names/.data/.cfg`, `train.txt`, `valid.txt`, `data.yaml` and `backup/`.

    A file edited since the last run is not overwritten without `force` (`guard_edits`).
    Example: `make_configs("/data/in10", "yolov3-tiny", "/data/in10/cfg")`.
    """
    ds = open_dataset(dataset, fork=fork)
    manifest = ds.manifest
    names = manifest.class_names()
    if not names:
        raise UserError(f"dataset {dataset} has no classes")
    tpl = find_template(template)
    cfg = read_cfg(tpl)
    out = Path(out).resolve()
    name = name or ds.name
    if name in (".", "..") or "/" in name:
        raise UserError(f"--name {name!r} must be a plain file name (no '/')")
    notes = list(ds.notes)
    if "train" not in manifest.splits:
        raise UserError(f"dataset {dataset} has no train split",
                        f"splits: {', '.join(manifest.splits) or 'none'}")
    # A relative list_file is relative to the dataset folder (Dataset.list_path).
    train = ds.images("train", absolute=True)
    val_name = next((s for s in VAL_SPLITS if s in manifest.splits), None)
    if val_name is None:
        valid = train
        notes.append("no val split: valid.txt lists the training images")
    else:
        valid = ds.images(val_name, absolute=True)
    if any(c.isspace() for c in str(out)):
        notes.append(f"{out} holds a space: darknet removes spaces from .data values")

    choices = compute_values(cfg, classes=len(names), train_images=len(train),
                             opts=opts or CfgOptions())
    apply_values(cfg, choices)
    files = {k: str(out / v) for k, v in (
        ("names", f"{name}.names"), ("data", f"{name}.data"), ("cfg", f"{name}.cfg"),
        ("train", "train.txt"), ("valid", "valid.txt"), ("yaml", "data.yaml"),
        ("backup", "backup"))}
    written = [Path(v) for k, v in files.items() if k != "backup"]
    guard_edits(out, written, force)
    try:
        os.makedirs(files["backup"], exist_ok=True)
        write_names(files["names"], names)
        write_list(files["train"], train)
        write_list(files["valid"], valid)
        write_data(files["data"], len(names), files["train"], files["valid"], files["names"],
                   files["backup"])
        write_cfg(cfg, files["cfg"])
        write_ultralytics_yaml(files["yaml"], files["train"], files["valid"], names)
        record_digests(out, written)
    except OSError as exc:
        raise UserError(f"cannot write to {out}: {exc.strerror}") from None
    fork_name, fork_reason = choose_fork(fork)
    if ds.layout is not None:  # a foreign layout: will each engine find its labels?
        notes += unread_labels(ds, train + valid, {"Ultralytics": ultralytics_label_path,
                                                   f"{fork_name}'s darknet": LABEL_PATH[fork_name]})
    # The fork's parser may not read the template (a yolov4 one on pjreddie): say so now.
    # A --max-batches below the rule is marked in the cfg, so it is only a warning.
    found = lint_cfg(read_cfg(files["cfg"]), files["cfg"], fork_name, data_classes=len(names),
                     train_images=len(train))
    return ConfigsReport(str(out), name, str(tpl), len(names), len(train), len(valid),
                         fork_name, files, choices, notes,
                         findings=[f for f in found if f.severity == ERROR],
                         warnings=[f for f in found if f.severity != ERROR],
                         fork_reason=fork_reason)


@dataclass(slots=True)
class CheckReport:
    """check-cfg's result: the fork checked for, and every finding with counts."""

    cfg: str
    data: str | None
    fork: str
    fork_reason: str
    findings: list[Finding]
    counts: dict[str, int]
    weights_path: str | None = None
    #: With --weights: a pipeline.darknet.weights.WeightsMatch.
    weights: Any = None

    @property
    def errors(self) -> int:
        """Error findings (all of them, not only those kept as examples)."""
        return sum(n for k, n in self.counts.items() if k.endswith(":error"))

    @property
    def warnings(self) -> int:
        """Warning findings."""
        return sum(n for k, n in self.counts.items() if k.endswith(":warning"))

    def as_dict(self) -> dict:
        """JSON-ready form."""
        out = {"cfg": self.cfg, "data": self.data, "fork": self.fork,
               "fork_reason": self.fork_reason, "errors": self.errors,
               "warnings": self.warnings, "counts": self.counts,
               "findings": [f.as_dict() for f in self.findings]}
        if self.weights is not None:
            out["weights"] = {"path": self.weights_path, "kind": self.weights.kind,
                              "layers": self.weights.layers, "message": self.weights.message}
        return out


def check_cfg(cfg_path: str | Path, data_path: str | Path | None = None,
              fork: str | None = None, *, weights: str | Path | None = None) -> CheckReport:
    """Run the cfg rules (and the dataset rules with a .data) for the fork that will run it.

    Example: `check_cfg("yolo-obj.cfg", "obj.data", "pjreddie").errors` -> 0 when clean.
    """
    if Path(cfg_path).is_dir():  # the folder `configs` wrote: name what is in it
        cfgs = sorted(Path(cfg_path).glob("*.cfg"))
        hint = (f"did you mean {cfgs[0]}" + (f" --data {cfgs[0].with_suffix('.data')}"
                                              if cfgs[0].with_suffix(".data").is_file() else "") + "?"
                if len(cfgs) == 1 else "give one of its .cfg files" if cfgs else None)
        raise UserError(f"{cfg_path} is a folder, not a .cfg file", hint)
    cfg = read_cfg(cfg_path)
    crlf = b"\r\n" in Path(cfg_path).read_bytes()
    fork_name, reason = choose_fork(fork)
    found = Findings()
    classes, train_images = None, 0
    if data_path is not None:
        summary = lint_data(read_data(data_path), fork_name)
        classes, train_images = summary.classes, summary.train_images
        found = summary.findings
    for f in lint_cfg(cfg, str(cfg_path), fork_name, data_classes=classes,
                      train_images=train_images, crlf=crlf):
        found.add(f)
    counts = {f"{rule}:{sev}": n for (rule, sev), n in sorted(found.counts.items())}
    items = sorted(found.items, key=lambda f: (f.file != str(cfg_path), f.file, f.line))
    match = None
    if weights is not None:
        from pipeline.darknet.weights import match_weights

        match = match_weights(cfg_path, weights, fork_name)
    return CheckReport(str(cfg_path), str(data_path) if data_path else None, fork_name,
                       reason, items, counts, str(weights) if weights else None, match)
