"""The files of a Kaggle ImageNet download other than images and XML: where its parts are
(`find_layout`), the class list (`LOC_synset_mapping.txt`) and the solution CSVs."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from pipeline.core import Box, ObjectAnnotation
from pipeline.dataset.manifest import ClassInfo
from pipeline.errors import FormatError, UserError
from pipeline.io import read_text

SYNSET_FILE = "LOC_synset_mapping.txt"


@dataclass(frozen=True)
class KaggleLayout:
    """Where the parts of a Kaggle ImageNet download are."""

    root: Path
    ilsvrc: Path
    synsets: Path

    def images(self, split: str) -> Path:
        """Image folder of a split."""
        return self.ilsvrc / "Data" / "CLS-LOC" / split

    def annotations(self, split: str) -> Path:
        """Annotation XML folder of a split."""
        return self.ilsvrc / "Annotations" / "CLS-LOC" / split

    def solution(self, split: str) -> Path:
        """`LOC_<split>_solution.csv` beside the synset file."""
        return self.synsets.parent / f"LOC_{split}_solution.csv"


def find_layout(root: str | Path) -> KaggleLayout:
    """Locate ILSVRC/ and LOC_synset_mapping.txt under ROOT, or fail with one clear line."""
    root = Path(root).absolute()
    if not root.is_dir():
        raise UserError(f"dataset root {root} is not a folder", "give the unpacked Kaggle download")
    ilsvrc = root / "ILSVRC" if (root / "ILSVRC").is_dir() else root
    if not (ilsvrc / "Data" / "CLS-LOC").is_dir():
        raise UserError(f"no ILSVRC/Data/CLS-LOC under {root}", "give the folder holding ILSVRC/")
    for folder in (root, ilsvrc.parent, ilsvrc):
        if (folder / SYNSET_FILE).is_file():
            return KaggleLayout(root, ilsvrc, folder / SYNSET_FILE)
    raise UserError(f"{SYNSET_FILE} not found in {root}", "it ships with the Kaggle download")


def parse_synsets(text: str, path: str = SYNSET_FILE) -> list[ClassInfo]:
    """Classes from LOC_synset_mapping.txt lines `n01440764 tench, Tinca tinca`.

    Ids follow the file's order. The human name is the first synonym; a name that two
    synsets share (`crane`) gets its wnid appended: `crane (n02012849)`.
    Example: `parse_synsets("n01440764 tench, Tinca tinca\\n")[0].name == "tench"`.
    """
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        wnid, _, names = line.strip().partition(" ")
        names = names.lstrip(": ").strip()
        if not (wnid.startswith("n") and wnid[1:].isdigit()):
            raise FormatError(path, f"expected '<wnid> <names>', got {line[:60]!r}", line=number)
        entries.append((wnid, names.split(",")[0].strip() or wnid))
    counts: dict[str, int] = {}
    for _, name in entries:
        counts[name] = counts.get(name, 0) + 1
    return [
        ClassInfo(id=i, key=wnid, name=name if counts[name] == 1 else f"{name} ({wnid})")
        for i, (wnid, name) in enumerate(entries)
    ]


def parse_prediction(text: str, where: str) -> tuple[ObjectAnnotation, ...]:
    """Boxes from a solution CSV PredictionString `wnid xmin ymin xmax ymax wnid ...`."""
    tokens = text.split()
    if len(tokens) % 5:
        raise FormatError(where, f"PredictionString has {len(tokens)} fields, not a multiple of 5")
    try:
        return tuple(
            ObjectAnnotation(tokens[i], Box(*(float(t) for t in tokens[i + 1 : i + 5])))
            for i in range(0, len(tokens), 5)
        )
    except ValueError:
        raise FormatError(where, "PredictionString holds a non-numeric coordinate") from None


def read_solution(path: Path) -> dict[str, list[tuple[str, str, str]]]:
    """Rows of a LOC_*_solution.csv grouped by folder (wnid for train, "" for flat val)."""
    if not path.is_file():
        raise UserError(f"{path} not found", "use --from xml, or add the Kaggle solution CSV")
    groups: dict[str, list[tuple[str, str, str]]] = {}
    reader = csv.reader(io.StringIO(read_text(path, "solution CSV"), newline=""))
    try:
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:2]] != ["ImageId", "PredictionString"]:
            raise FormatError(path, "expected the header 'ImageId,PredictionString'", line=1)
        for row in reader:
            if len(row) < 2:
                continue
            image_id = row[0].strip()
            folder = image_id.split("_")[0] if "train" in path.name else ""
            groups.setdefault(folder, []).append((image_id, row[1], f"{path}:{reader.line_num}"))
    except csv.Error as exc:  # a field over the csv module's limit (128 KiB), a stray quote...
        raise FormatError(path, f"malformed CSV: {exc}", line=reader.line_num) from None
    return groups
