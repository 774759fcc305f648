"""Seeded mutation fuzzing: real fixtures and synth trees, mutated, through every command.

Each case copies one small input tree (the real fixtures of tests/data, or a synth tree)
into its own workspace, applies one seeded mutation to one of its files (truncate, flip
bytes, bad UTF-8, BOM, UTF-16, a huge field, deep nesting, many or duplicated lines, NUL,
a folder or dangling link in the file's place, ...), and runs one command on it in-process
through the CLI. A case fails when the command ends in a traceback, exits other than
0/1/2, writes anything outside its workspace, or takes longer than the time cap.

    python tools/fuzz.py --cases 3000 --seed 0          # `make fuzz` (FUZZ_CASES=3000)
    python tools/fuzz.py --cases 20 --only coco -v      # one target, every case printed

`run_cases` is what tests/fuzz/test_fuzz.py calls with a small fixed number of cases.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from click.testing import CliRunner
from fuzz_mutations import BYTE_MUTATIONS, FILE_MUTATIONS, mutate

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
#: The workspace folder's name: pjreddie's darknet rewrites "raw" in label paths, so a
#: label written where it looks would land beside the workspace and be caught.
WORKSPACE = "rawdata"
TIME_CAP = 10.0


# --- targets: an input tree, the files worth mutating, the commands to run ---------------------


@dataclass
class Target:
    """A kind of input: how to build it once, which files to mutate, which commands to run."""

    name: str
    build: Callable[[Path], None]
    files: Callable[[Path], list[Path]]
    commands: list[Callable[[Path, Path], list[str]]]


def _invoke(*args: object) -> None:
    from pipeline.cli import cli

    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=True)
    if result.exit_code != 0:
        raise RuntimeError(f"building a fuzz input failed: {args}: {result.output}")


def _build_imagenet(ws: Path) -> None:
    _invoke("synth", "imagenet", ws / "in", "--classes", 3, "--annotated", 2, "--unannotated", 1,
            "--val", 3, "--seed", 3)


def _build_real_imagenet(ws: Path) -> None:
    import cv2
    import numpy as np

    root, src = ws / "in", DATA / "imagenet"
    for xml in sorted((src / "xml").rglob("*.xml")):
        rel = xml.relative_to(src / "xml")
        dest = root / "ILSVRC/Annotations/CLS-LOC" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(xml, dest)
        image = root / "ILSVRC/Data/CLS-LOC" / rel.with_suffix(".JPEG")
        image.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(image), np.zeros((8, 8, 3), np.uint8))
    shutil.copy(src / "LOC_synset_mapping.txt", root)
    rows = (src / "LOC_val_solution.csv").read_bytes().splitlines(keepends=True)
    (root / "LOC_val_solution.csv").write_bytes(b"".join(rows[:1] + rows[-10:]))


def _build_coco(ws: Path) -> None:
    for js in sorted(DATA.glob("coco/*.json")):
        images = ws / js.stem
        shutil.copy(js, ws / js.name)
        for img in json.loads(js.read_text())["images"]:
            path = images / img["file_name"]
            if path.resolve().is_relative_to(images.resolve()):
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()


def _build_voc(ws: Path) -> None:
    _invoke("synth", "voc", ws / "VOC2007", "--images", 6, "--seed", 1)
    names = sorted({line.split("<name>")[1].split("<")[0]
                    for xml in (ws / "VOC2007/Annotations").glob("*.xml")
                    for line in xml.read_text().splitlines() if "<name>" in line})
    (ws / "classes.txt").write_text("".join(f"{n}\n" for n in names))


def _build_dataset(ws: Path) -> None:
    _build_imagenet(ws)
    _invoke("-q", "convert", "imagenet", ws / "in", "-j", 1)


def _build_cfg(ws: Path) -> None:
    for f in DATA.glob("cfg/*"):
        if f.suffix in (".cfg", ".data", ".names"):
            shutil.copy(f, ws / f.name)


def _build_logs(ws: Path) -> None:
    for f in DATA.glob("logs/*"):
        if f.suffix == ".csv" or f.stat().st_size < 300_000:
            shutil.copy(f, ws / f.name)


def _build_run(ws: Path) -> None:
    run = ws / "train"
    run.mkdir()
    shutil.copy(DATA / "logs/yolo11_resume-ocr_results.csv", run / "results.csv")
    (run / "args.yaml").write_text("task: detect\nmode: train\nepochs: 60\nbatch: 16\nimgsz: 640\n")


def _coco_command(task: str, ids: str) -> Callable[[Path, Path], list[str]]:
    def command(ws: Path, file: Path) -> list[str]:
        js = file if file.suffix == ".json" else ws / "instances_val2017_first4.json"
        return ["convert", "coco", js, "--images", ws / js.stem, "--task", task, "--ids", ids,
                "--out", ws / "out", "-j", "1"]
    return command


TARGETS = [
    Target("imagenet", _build_imagenet,
           lambda ws: sorted(p for p in (ws / "in").rglob("*") if p.suffix in (".xml", ".txt", ".csv")
                             and "ImageSets" not in p.parts),
           [lambda ws, f: ["convert", "imagenet", ws / "in", "-j", "1"],
            lambda ws, f: ["convert", "imagenet", ws / "in", "--from", "csv", "--split", "val", "-j", "1"],
            lambda ws, f: ["convert", "imagenet", ws / "in", "--labels-root", ws / "mirror", "-j", "1"]]),
    Target("imagenet-real", _build_real_imagenet,
           lambda ws: sorted(p for p in (ws / "in").rglob("*") if p.suffix in (".xml", ".txt", ".csv")),
           [lambda ws, f: ["convert", "imagenet", ws / "in", "-j", "1"],
            lambda ws, f: ["convert", "imagenet", ws / "in", "--from", "csv", "--split", "val", "-j", "1"]]),
    Target("coco", _build_coco, lambda ws: sorted(ws.glob("*.json")),
           [_coco_command("detect", "contiguous"), _coco_command("segment", "contiguous"),
            _coco_command("detect", "coco80")]),
    Target("voc", _build_voc,
           lambda ws: sorted([*(ws / "VOC2007").rglob("*.xml"), ws / "classes.txt",
                              *(ws / "VOC2007/ImageSets/Main").glob("*.txt")]),
           [lambda ws, f: ["convert", "voc", ws / "VOC2007", "--sets", "trainval,test", "-j", "1"],
            lambda ws, f: ["convert", "voc", ws / "VOC2007", "--darknet-labels", "-j", "1"],
            lambda ws, f: ["convert", "voc", ws / "VOC2007", "--classes", ws / "classes.txt", "-j", "1"]]),
    Target("dataset", _build_dataset,
           lambda ws: sorted([*(ws / "in/yolo").glob("*.*"),
                              *list((ws / "in/ILSVRC/Data/CLS-LOC/train").rglob("*.txt"))[:3]]),
           [lambda ws, f: ["check", ws / "in/yolo"],
            lambda ws, f: ["stats", ws / "in/yolo", "--json"],
            lambda ws, f: ["subset", ws / "in/yolo", "--top", "2", "--out", ws / "sub", "-j", "1"],
            lambda ws, f: ["configs", ws / "in/yolo", "-t", DATA / "cfg/tiny_yolo.cfg", "-o", ws / "cfg"]]),
    Target("cfg", _build_cfg, lambda ws: sorted(ws.glob("*.*")),
           [lambda ws, f: ["check-cfg", f if f.suffix == ".cfg" else ws / "tiny_yolo.cfg", "--fork",
                           "pjreddie"],
            lambda ws, f: ["check-cfg", ws / "Sanip_yolov4-obj.cfg", "--fork", "alexeyab", "--data",
                           f if f.suffix == ".data" else ws / "Sanip_obj.data"]]),
    Target("logs", _build_logs, lambda ws: sorted(ws.glob("*.*")),
           [lambda ws, f: ["summarize", f, "--out", ws / "report", "--json"]]),
    Target("run", _build_run, lambda ws: sorted((ws / "train").iterdir()),
           [lambda ws, f: ["summarize", ws / "train", "--out", ws / "report"]]),
]


# --- running ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One case: what was run on what, and what went wrong (empty when nothing)."""

    case: int
    target: str
    file: str
    mutation: str
    args: list[str]
    exit_code: int | None = None
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)


class CaseTimeout(BaseException):
    """Raised by the alarm in a case that runs far past the cap."""


@contextlib.contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    def ring(signum, frame):
        raise CaseTimeout

    old = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _outside(home: Path, scratch: Path) -> list[str]:
    """What a case left beside its workspace: in its own folder, the scratch folder, or above."""
    found = [p for p in home.iterdir() if p.name != WORKSPACE]
    found += [p for p in scratch.iterdir() if p != home]
    found += [p for p in scratch.parent.iterdir() if p.name not in ("base", "cases")]
    return sorted(str(p) for p in found)


def run_case(case: int, target: Target, base: Path, scratch: Path, rng: random.Random,
             time_cap: float = TIME_CAP) -> Outcome:
    """Copy `base` into a fresh workspace, mutate one file, run one command, check the rules."""
    from pipeline.cli import cli

    home = scratch / f"case-{case:05d}"
    ws = home / WORKSPACE
    shutil.copytree(base, ws, symlinks=True)
    _rebase(ws, base)
    file = rng.choice([f for f in target.files(ws) if f.is_file()])
    mutation = rng.choice([*BYTE_MUTATIONS, *FILE_MUTATIONS])
    mutate(file, mutation, rng)
    args = [str(a) for a in rng.choice(target.commands)(ws, file)]
    out = Outcome(case, target.name, str(file.relative_to(ws)), mutation, args)
    start = time.monotonic()
    try:
        with _alarm(time_cap * 3):
            result = CliRunner().invoke(cli, args, catch_exceptions=True)
    except CaseTimeout:
        out.failures.append(f"still running after {time_cap * 3:.0f} s")
        shutil.rmtree(home, ignore_errors=True)
        return out
    finally:
        out.seconds = round(time.monotonic() - start, 3)
    out.exit_code = result.exit_code
    outside = _outside(home, scratch)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        out.failures.append(f"{type(result.exception).__name__}: {str(result.exception)[:200]}")
    if "Traceback" in result.output:
        out.failures.append("traceback in the output")
    if result.exit_code not in (0, 1, 2):
        out.failures.append(f"exit code {result.exit_code}")
    if outside:
        out.failures.append(f"wrote outside its workspace: {outside[:3]}")
    if out.seconds > time_cap:
        out.failures.append(f"took {out.seconds:.1f} s (cap {time_cap:.0f} s)")
    shutil.rmtree(home, ignore_errors=True)
    return out


def _rebase(ws: Path, base: Path) -> None:
    """Point the absolute paths of a copied dataset (lists, manifest) at the copy."""
    for f in ws.rglob("*"):
        if f.is_file() and not f.is_symlink() and (f.suffix == ".txt" and f.parent.name == "yolo"
                                                   or f.name == "manifest.json"):
            f.write_bytes(f.read_bytes().replace(str(base).encode(), str(ws).encode()))


def run_cases(cases: int, seed: int = 0, *, only: tuple[str, ...] = (), time_cap: float = TIME_CAP,
              progress: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Run `cases` seeded cases, round-robin over the targets; return every outcome."""
    targets = [t for t in TARGETS if not only or t.name in only]
    rng = random.Random(seed)
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="yolo-fuzz-") as tmp:
        root = Path(tmp)
        bases = {}
        for t in targets:
            bases[t.name] = root / "base" / t.name / WORKSPACE
            bases[t.name].mkdir(parents=True)
            t.build(bases[t.name])
        scratch = root / "cases"
        scratch.mkdir()
        for case in range(cases):
            target = targets[case % len(targets)]
            outcome = run_case(case, target, bases[target.name], scratch, random.Random(rng.random()),
                               time_cap)
            outcomes.append(outcome)
            if progress:
                progress(outcome)
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=int(os.environ.get("FUZZ_CASES", 300)))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", action="append", default=[], help="target name (repeatable)")
    parser.add_argument("--time-cap", type=float, default=TIME_CAP, help="seconds per case")
    parser.add_argument("--report", help="write every outcome as JSON here")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every case")
    args = parser.parse_args()
    os.environ.setdefault("MPLBACKEND", "Agg")

    def show(o: Outcome) -> None:
        if o.failures or args.verbose:
            status = "FAIL " + "; ".join(o.failures) if o.failures else "ok"
            print(f"#{o.case} {o.target} {o.file} {o.mutation} -> exit {o.exit_code} "
                  f"{o.seconds:.2f}s {status}\n    {' '.join(o.args)}", flush=True)

    start = time.monotonic()
    outcomes = run_cases(args.cases, args.seed, only=tuple(args.only), time_cap=args.time_cap,
                         progress=show)
    failed = [o for o in outcomes if o.failures]
    codes = Counter(o.exit_code for o in outcomes)
    print(f"{len(outcomes)} cases in {time.monotonic() - start:.0f} s, {len(failed)} failed; "
          f"exit codes {dict(sorted(codes.items(), key=str))}; slowest "
          f"{max((o.seconds for o in outcomes), default=0):.2f} s")
    if args.report:
        Path(args.report).write_text(json.dumps([o.__dict__ for o in outcomes], indent=1))
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
