"""Benchmark harness behind `make bench`: runs every tools/bench_*.py, writes one markdown file.

Each bench module defines `run(workdir: Path) -> str`, returning a markdown section
(heading, table, notes). Run one with `--only imagenet` (the part after `bench_`): its
section replaces the one of the same name in the existing file, the others are kept.
"""

from __future__ import annotations

import argparse
import importlib
import platform
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="bench/results.md", help="markdown file to write")
    parser.add_argument("--work", default="bench/work", help="scratch folder for generated data")
    parser.add_argument("--only", action="append", help="run only these benches (repeatable)")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    names = sorted(p.stem[len("bench_") :] for p in HERE.glob("bench_*.py"))
    if args.only:
        names = [n for n in names if n in args.only]
    import os

    header = (
        f"# yolo-pipeline benchmarks\n\n{time.strftime('%Y-%m-%d %H:%M')} · "
        f"{platform.processor() or platform.machine()} · {os.cpu_count()} cores · "
        f"Python {platform.python_version()}\n"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sections = split_sections(out.read_text()) if args.only and out.exists() else {"": header}
    for name in names:
        print(f"== bench {name}", flush=True)
        module = importlib.import_module(f"bench_{name}")
        work = Path(args.work) / name
        work.mkdir(parents=True, exist_ok=True)
        section = module.run(work)
        print(section, flush=True)
        sections[name] = f"{MARK.format(name)}\n{section}"
        out.write_text("\n".join(sections.values()))
    print(f"wrote {out}")


MARK = "<!-- bench:{} -->"


def split_sections(text: str) -> dict[str, str]:
    """An earlier results file by bench name ("" for what precedes the first marked one)."""
    found = {}
    for part in re.split(r"(?m)^(?=<!-- bench:)", text):
        m = re.match(r"<!-- bench:(\w+) -->", part)
        found[m.group(1) if m else ""] = part.rstrip("\n") + "\n"
    return found


if __name__ == "__main__":
    main()
