"""Small synthetic Pascal VOC devkit trees with real JPEGs (tests, demo).

`ROOT/Annotations/<stem>.xml` in VOC2007's layout (tab indent, `<source>`, `<pose>`,
`<truncated>`, `<difficult>`), `ROOT/JPEGImages/<stem>.jpg` with every box drawn as a filled
shape whose form and colour follow its class (so a detector can learn it), and
`ROOT/ImageSets/Main/{train,val,trainval,test}.txt` plus per-class `<class>_<set>.txt` files.
"""

from __future__ import annotations

import random
from pathlib import Path

from pipeline.synth.draw import draw_jpeg, random_boxes

VOC_CLASSES = ("bicycle", "car", "cat", "dog", "person")


def voc_xml(*, folder: str, filename: str, database: str, width: int, height: int,
            objects: list[tuple[str, tuple, bool]], final_newline: bool = True) -> str:
    """A VOC `<annotation>` in VOC2007's layout (tab indent, `<source>`, `<pose>`,
    `<truncated>`, `<difficult>`); `objects` are (name, (x1, y1, x2, y2), difficult).

    ImageNet's CLS-LOC XML is the same schema with no final newline.
    """
    body = "".join(
        f"\t<object>\n\t\t<name>{name}</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n"
        f"\t\t<difficult>{int(difficult)}</difficult>\n\t\t<bndbox>\n\t\t\t<xmin>{x1}</xmin>\n"
        f"\t\t\t<ymin>{y1}</ymin>\n\t\t\t<xmax>{x2}</xmax>\n\t\t\t<ymax>{y2}</ymax>\n\t\t</bndbox>\n\t</object>\n"
        for name, (x1, y1, x2, y2), difficult in objects
    )
    return (
        f"<annotation>\n\t<folder>{folder}</folder>\n\t<filename>{filename}</filename>\n"
        f"\t<source>\n\t\t<database>{database}</database>\n\t</source>\n"
        f"\t<size>\n\t\t<width>{width}</width>\n\t\t<height>{height}</height>\n\t\t<depth>3</depth>\n"
        f"\t</size>\n\t<segmented>0</segmented>\n{body}</annotation>" + ("\n" if final_newline else "")
    )


def _xml(stem: str, width: int, height: int, objects: list[tuple[str, tuple, bool]]) -> str:
    return voc_xml(folder="VOC2007", filename=f"{stem}.jpg", database="synthetic", width=width,
                   height=height, objects=objects)


def make_voc_tree(
    root: str | Path,
    *,
    classes: tuple[str, ...] = VOC_CLASSES,
    images: int = 20,
    difficult_rate: float = 0.1,
    min_size: int = 96,
    max_size: int = 192,
    seed: int = 0,
) -> dict[str, int]:
    """Write a VOC year folder under `root`; returns {set name: number of images}.

    The first 50% of the stems are `train`, the next 25% `val` (both in `trainval`), the
    rest `test`. Example: `make_voc_tree(tmp / "VOC2007", images=12)`
    """
    root = Path(root)
    rng = random.Random(seed)
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    stems = [f"{n:06d}" for n in range(1, images + 1)]
    present: dict[str, set[str]] = {}
    for stem in stems:
        width, height = rng.randint(min_size, max_size), rng.randint(min_size, max_size)
        ids = [rng.randrange(len(classes)) for _ in range(rng.randint(1, 3))]
        boxes = random_boxes(rng, width, height, ids)
        (root / "JPEGImages" / f"{stem}.jpg").write_bytes(draw_jpeg(width, height, boxes, rng))
        objects = [(classes[c], box, rng.random() < difficult_rate) for c, box in boxes]
        (root / "Annotations" / f"{stem}.xml").write_text(_xml(stem, width, height, objects))
        present[stem] = {classes[c] for c in ids}
    cut1, cut2 = images // 2, images * 3 // 4
    sets = {"train": stems[:cut1], "val": stems[cut1:cut2], "trainval": stems[:cut2], "test": stems[cut2:]}
    main = root / "ImageSets" / "Main"
    for name, members in sets.items():
        (main / f"{name}.txt").write_text("".join(f"{s}\n" for s in members))
        for cls in classes:
            (main / f"{cls}_{name}.txt").write_text(
                "".join(f"{s} {' 1' if cls in present[s] else '-1'}\n" for s in members))
    return {name: len(members) for name, members in sets.items()}


def make_flat_voc(root: str | Path, *, images_dir: str | Path | None = None,
                  classes: tuple[str, ...] = VOC_CLASSES, images: int = 12, seed: int = 0) -> Path:
    """Write a flat VOC export: `<stem>.xml` in `root`, `<stem>.jpg` beside it or in
    `images_dir`; no Annotations/, JPEGImages/ or ImageSets/ (a labelling tool's or
    Roboflow's "Pascal VOC" export, with Roboflow-like stems). Returns `root`.

    Example: `make_flat_voc(tmp / "export", images=8)`
    """
    root = Path(root)
    image_dir = Path(images_dir) if images_dir else root
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    image_dir.mkdir(parents=True, exist_ok=True)
    for n in range(1, images + 1):
        stem = f"photo{n:03d}_jpg.rf.{rng.getrandbits(64):016x}"
        width, height = rng.randint(96, 192), rng.randint(96, 192)
        boxes = random_boxes(rng, width, height,
                             [rng.randrange(len(classes)) for _ in range(rng.randint(1, 3))])
        (image_dir / f"{stem}.jpg").write_bytes(draw_jpeg(width, height, boxes, rng))
        objects = [(classes[c], box, False) for c, box in boxes]
        (root / f"{stem}.xml").write_text(_xml(stem, width, height, objects))
    return root
