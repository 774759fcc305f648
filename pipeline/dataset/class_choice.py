"""Choosing the classes of a subset; only the manifest's per-class counts are read.

Rules combine (`choose_classes`):
the candidate pool is every class minus `--exclude`, minus classes with fewer than
`--min-images` annotated train images; `--classes` are taken first, then `--top N` adds
the N best-covered candidates left, then `--spread N` adds N more. With only
`--min-images` / `--exclude`, every candidate is taken.

Spread rule: the candidates left, in source id order, are cut into N equal slices and
the best-covered class of each slice is taken. Source id order keeps related classes
together in both sources: ImageNet ids follow sorted wnids, and a wnid is a WordNet
offset, so the 118 dog breeds sit in one run (ids 151-268) and fall into about one slice
in ten; COCO ids are grouped by supercategory (vehicles 2-9, animals 16-25...). `--top
10` on ImageNet gives four dog breeds; `--spread 10` gives one class per region of the
hierarchy, and still the best-covered one there, so the subset stays trainable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pipeline.convert.sources.kaggle_files import SYNSET_FILE
from pipeline.dataset.manifest import ClassCount, ClassInfo, Manifest
from pipeline.errors import UserError, closest
from pipeline.io import read_text

_WNID_SUFFIX = re.compile(r"\s*\(n\d{8}\)$")


@dataclass(frozen=True)
class ClassRule:
    """The class-choice options; see the module docstring for how they combine."""

    top: int | None = None
    classes: tuple[str, ...] = ()
    spread: int | None = None
    min_images: int = 0
    exclude: tuple[str, ...] = ()

    def describe(self) -> str:
        """The rule in words, for the manifest and the dry-run header."""
        parts = [f"classes {', '.join(self.classes)}"] if self.classes else []
        parts += [f"top {self.top} by annotated train images"] if self.top else []
        parts += [f"spread {self.spread} (best-covered of equal slices in id order)"
                  ] if self.spread else []
        parts += [f"min {self.min_images} train images"] if self.min_images else []
        parts += [f"excluding {', '.join(self.exclude)}"] if self.exclude else []
        return "; ".join(parts)


@dataclass(frozen=True)
class Choice:
    """Chosen source classes in source id order, why each was taken, train counts."""

    classes: list[ClassInfo]
    reasons: dict[str, str]
    counts: dict[str, ClassCount]
    rule: ClassRule


def class_counts(manifest: Manifest, split: str = "train") -> dict[str, ClassCount]:
    """Annotated images and boxes per class key in a split (all splits if it is absent)."""
    splits = [manifest.splits[split]] if split in manifest.splits else manifest.splits.values()
    total = {c.key: ClassCount() for c in manifest.classes}
    for info in splits:
        for key, count in info.per_class.items():
            if key in total:
                total[key].images += count.images
                total[key].boxes += count.boxes
    return total


def load_synonyms(manifest: Manifest) -> dict[str, list[str]]:
    """Every synonym of each wnid from LOC_synset_mapping.txt at the source root, if there."""
    root = manifest.source.get("root")
    path = Path(str(root)) / SYNSET_FILE if root else None
    if path is None or not path.is_file():
        return {}
    try:
        text = read_text(path, "synset mapping", keep_bad_bytes=True)
    except UserError:  # unreadable: synonyms only help name lookups, do without them
        return {}
    synonyms = {}
    for line in text.splitlines():
        wnid, _, names = line.strip().partition(" ")
        synonyms[wnid] = [n.strip() for n in names.lstrip(": ").split(",") if n.strip()]
    return synonyms


def _norm(text: str) -> str:
    return " ".join(text.replace("_", " ").casefold().split())


def resolve_classes(
    classes: list[ClassInfo], names: tuple[str, ...], synonyms: dict[str, list[str]] | None = None
) -> list[ClassInfo]:
    """Find classes by key (wnid, COCO name), human name or synonym, case-insensitively.

    An unknown or ambiguous name is a UserError listing the closest matches.
    Example: `resolve_classes(classes, ("tench", "n01443537"))`.
    """
    index: dict[str, set[str]] = {}
    by_key = {c.key: c for c in classes}
    for c in classes:
        words = [c.key, c.name, _WNID_SUFFIX.sub("", c.name), *(synonyms or {}).get(c.key, [])]
        for word in words:
            index.setdefault(_norm(word), set()).add(c.key)
    found, errors = [], []
    for name in names:
        keys = index.get(_norm(name), set())
        if len(keys) == 1:
            found.append(by_key[keys.pop()])
            continue
        if keys:
            options = ", ".join(f"{k} ({by_key[k].name})" for k in sorted(keys))
            errors.append(f"class {name!r} is ambiguous: {options}; give the key")
            continue
        close = closest(_norm(name), index)
        hint = ", ".join(
            f"{word} ({'/'.join(sorted(index[word]))})" for word in close) or "none close"
        errors.append(f"unknown class {name!r}; closest: {hint}")
    if errors:
        raise UserError("; ".join(errors))
    return found


def spread_pick(pool: list[ClassInfo], counts: dict[str, ClassCount], n: int) -> list[ClassInfo]:
    """The best-covered class of each of `n` equal slices of `pool` (in id order).

    Example: 6 classes, n=2 -> the best of ids 0-2 and the best of ids 3-5.
    """
    if n > len(pool):
        raise UserError(f"--spread {n} needs {n} candidate classes, only {len(pool)} left")
    pool = sorted(pool, key=lambda c: c.id)
    bounds = [len(pool) * i // n for i in range(n + 1)]
    return [max(pool[a:b], key=lambda c: (counts[c.key].images, -c.id))
            for a, b in zip(bounds, bounds[1:], strict=False)]


def choose_classes(
    manifest: Manifest, rule: ClassRule, synonyms: dict[str, list[str]] | None = None
) -> Choice:
    """Apply a `ClassRule` to a dataset's classes; see the module docstring.

    Example: `choose_classes(manifest, ClassRule(top=10, exclude=("n02085620",)))`.
    """
    if not (rule.top or rule.classes or rule.spread or rule.min_images or rule.exclude):
        raise UserError("no classes chosen",
                        "use --top N, --classes, --spread N, --min-images K or --exclude")
    counts = class_counts(manifest)
    excluded = {c.key for c in resolve_classes(manifest.classes, rule.exclude, synonyms)}
    pool = [c for c in manifest.classes
            if c.key not in excluded and counts[c.key].images >= rule.min_images]
    in_pool = {c.key for c in pool}
    reasons: dict[str, str] = {}
    for c in resolve_classes(manifest.classes, rule.classes, synonyms):
        if c.key in excluded:
            raise UserError(f"class {c.key} ({c.name}) is both chosen and excluded")
        if c.key not in in_pool:
            raise UserError(f"class {c.key} ({c.name}) has {counts[c.key].images} annotated "
                            f"train images, below --min-images {rule.min_images}")
        reasons[c.key] = "explicit"
    left = [c for c in pool if c.key not in reasons]
    if rule.top:
        for c in sorted(left, key=lambda c: (-counts[c.key].images, c.id))[: rule.top]:
            reasons[c.key] = "top"
        left = [c for c in left if c.key not in reasons]
    if rule.spread:
        for c in spread_pick(left, counts, rule.spread):
            reasons[c.key] = "spread"
    if not (rule.top or rule.classes or rule.spread):
        reasons = {c.key: "filter" for c in pool}
    if not reasons:
        raise UserError("the rule leaves no class", "lower --min-images or --exclude less")
    chosen = [c for c in manifest.classes if c.key in reasons]
    return Choice(chosen, reasons, counts, rule)
