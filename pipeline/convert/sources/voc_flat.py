"""Flat Pascal VOC exports -> YOLO labels: a folder of XML, no devkit layout, no ImageSets.

What labelling tools and Roboflow's "Pascal VOC" export write: `<stem>.xml` beside
`<stem>.jpg` in one folder, or the XML in one folder and the images in another
(`images=DIR`). Every XML of the folder is one image; the images form one split, `train`,
or with `val_fraction` a seeded draw of that fraction goes to `val`. The XML is read by the
same job as a devkit (`voc.VocJob`: parser, box rules, problems, `--darknet-labels`); the
labels go beside the images, the dataset folder defaults to `ROOT/yolo`.
"""

from __future__ import annotations

import random
from pathlib import Path

from pipeline.convert.engine import ConvertOptions, convert_split, options_dict, write_dataset
from pipeline.convert.sources.voc import JOB_IMAGES, VocJob, read_class_file, scan_classes
from pipeline.dataset.manifest import ClassInfo, Manifest
from pipeline.errors import UserError


def is_flat_export(root: str | Path) -> bool:
    """Whether `root` is a folder of VOC XML files rather than a devkit year folder.

    Example: a Roboflow "Pascal VOC" `train/` folder -> True; `VOCdevkit/VOC2007` -> False.
    """
    root = Path(root)
    return (root.is_dir() and not (root / "Annotations").is_dir()
            and any(p.name.endswith(".xml") for p in root.iterdir()))


def split_stems(stems: list[str], val_fraction: float | None, seed: int) -> dict[str, list[str]]:
    """{"train": stems} or, with `val_fraction`, a seeded draw of that share into "val"
    (both in name order). Example: `split_stems(["a", "b", "c", "d"], 0.25, 0)` -> 3 train, 1 val.
    """
    if not val_fraction:
        return {"train": stems}
    if not 0 < val_fraction < 1:
        raise UserError(f"--val-fraction {val_fraction} must be between 0 and 1")
    drawn = list(stems)
    random.Random(seed).shuffle(drawn)
    val = set(drawn[: round(val_fraction * len(stems))])
    return {"train": [s for s in stems if s not in val], "val": [s for s in stems if s in val]}


def convert_voc_flat(
    root: str | Path,
    *,
    images: str | Path | None = None,
    val_fraction: float | None = None,
    seed: int = 0,
    classes_file: str | Path | None = None,
    darknet_labels: bool = False,
    out: str | Path | None = None,
    options: ConvertOptions | None = None,
) -> Manifest:
    """Convert every `<stem>.xml` in `root`; images are `<stem>.<ext>` in `images` (default
    `root`). Example: `convert_voc_flat("export/train", val_fraction=0.2, seed=1)`.
    """
    options = options or ConvertOptions()
    root = Path(root).absolute()
    image_dir = Path(images).absolute() if images else root
    for folder, what in ((root, "XML folder"), (image_dir, "--images")):
        if not folder.is_dir():
            raise UserError(f"{what} {folder} is not a folder")
    stems = sorted(p.name[:-4] for p in root.iterdir() if p.name.endswith(".xml"))
    if not stems:
        raise UserError(f"{root} holds no .xml files and no Annotations/ folder",
                        "give a VOC year folder or a folder of VOC XML")
    names = (read_class_file(classes_file) if classes_file
             else scan_classes(root, stems, xml_dir=root))
    if not names:
        raise UserError(f"no objects in the XML under {root}", "give --classes FILE")
    classes = [ClassInfo(id=i, key=n, name=n) for i, n in enumerate(names)]
    dataset_dir = Path(out).absolute() if out else root / "yolo"
    infos = {}
    for split, group in split_stems(stems, val_fraction, seed).items():
        jobs = [VocJob(f"{split}-{i // JOB_IMAGES:05d}", str(root),
                       tuple(group[i: i + JOB_IMAGES]), darknet_labels,
                       xml_dir=str(root), image_dir=str(image_dir))
                for i in range(0, len(group), JOB_IMAGES)]
        infos[split] = convert_split(jobs, split=split, dataset_dir=dataset_dir,
                                     class_ids={c.key: c.id for c in classes}, options=options)
    source = {"kind": "voc", "layout": "flat", "root": str(root), "images": str(image_dir),
              "val_fraction": val_fraction, "seed": seed,
              "classes_file": str(classes_file) if classes_file else None,
              "darknet_labels": darknet_labels, "options": options_dict(options)}
    return write_dataset(dataset_dir, source=source, classes=classes, splits=infos, name="voc")
