"""What a conversion's splits say about themselves: the problems report's field escaping,
class names that differ only in case, images listed in two splits, and why nothing converted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from pipeline.core import Problem, quoted
from pipeline.dataset.manifest import Manifest, ProblemSummary, SplitInfo
from pipeline.io import atomic_write, read_text

EXAMPLES_PER_KIND = 20


def tsv_field(text: str) -> str:
    """A file name or detail as one TSV field: backslashes, tabs, line breaks and NULs escaped.

    Example: `tsv_field("a\\tb")` -> `"a\\\\tb"` (a literal backslash, doubled).
    """
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace(
        "\r", "\\r").replace("\0", "\\0")


def printable_name(text: str) -> str:
    """A file name for the JSON manifest: bytes that are not UTF-8 shown as U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def case_duplicates(names: Iterable[str], where: str) -> list[Problem]:
    """`class_case_duplicate` for each class name that differs from an earlier one only in case.

    Both stay classes of their own (a tool that folds case would merge them), so the user is
    told. Example: `case_duplicates(["Dog", "dog"], "voc")` -> one problem naming 'dog'.
    """
    first: dict[str, str] = {}
    found = []
    for name in names:
        other = first.setdefault(name.casefold(), name)
        if other != name:
            detail = f"{quoted(name)} and {quoted(other)} differ only in case"
            found.append(Problem("class_case_duplicate", where, detail))
    return found


def _listed(dataset_dir: Path, info: SplitInfo) -> Iterator[str]:
    path = dataset_dir / info.list_file  # an absolute list_file stays as it is
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            yield from (line.rstrip("\n") for line in f if line.strip())
    except OSError:  # an old split whose list is gone: nothing to compare
        return


def note_overlaps(dataset_dir: Path, split: str, splits: dict[str, SplitInfo]) -> None:
    """Count (and add to its problems file) the images of `split` that another split lists too.

    Each pair of lists is compared with a set of the smaller one (ImageNet: the 50k val list
    against the streamed 1.28M train list).
    """
    info = splits[split]
    found = []
    for other in sorted(set(splits) - {split}):
        small, big = sorted((info, splits[other]), key=lambda i: i.images)  # a set of the smaller
        seen = set(_listed(dataset_dir, small))
        found += [(image, other) for image in _listed(dataset_dir, big) if image in seen]
    if not found:
        return
    summary = info.problems.setdefault("listed_in_two_splits", ProblemSummary())
    summary.count += len(found)
    summary.examples.extend(printable_name(image) for image, _ in found[: EXAMPLES_PER_KIND])
    info.problems = dict(sorted(info.problems.items()))
    if info.problems_file:
        path = Path(info.problems_file)
        rows = "".join(f"listed_in_two_splits\t{tsv_field(image)}\talso in {tsv_field(other)}\n"
                       for image, other in found)
        old = read_text(path, "problems", keep_bad_bytes=True) if path.is_file() else ""
        atomic_write(path, old + rows)


def nothing_converted(manifest: Manifest, splits: Sequence[str]) -> str | None:
    """Why no image was listed in any of `splits`, in one line; None when some image was.

    Example: "nothing converted in val: missing_image 5 (see /d/yolo/problems-val.tsv)".
    """
    infos = [manifest.splits[s] for s in splits]
    if any(info.images for info in infos):
        return None
    problems: Counter = Counter()
    for info in infos:
        problems.update({kind: summary.count for kind, summary in info.problems.items()})
    unannotated = sum(info.unannotated for info in infos)
    no_box = sum(info.fixes.get("no_boxes_left", 0) for info in infos)
    why = []
    if problems:
        files = ", ".join(str(info.problems_file) for info in infos if info.problems)
        why.append(", ".join(f"{k} {v:,}" for k, v in problems.most_common()) + f" (see {files})")
    if unannotated:
        why.append(f"{unannotated:,} images without annotation (--unannotated empty lists them)")
    if no_box:
        why.append(f"{no_box:,} images with no box left (--unannotated empty lists them)")
    return f"nothing converted in {', '.join(splits)}: " + ("; ".join(why) or "the source lists no image")
