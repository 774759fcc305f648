"""Yardstick for the benchmark: the naive way, one process, xml.etree, one label per XML.

Usage: python tools/naive_imagenet.py ROOT   (writes labels beside the train and val images)
Not part of the tool; it is what a quick hand-written script does.
"""

import os
import sys
import xml.etree.ElementTree as ET


def main(root: str) -> None:
    with open(os.path.join(root, "LOC_synset_mapping.txt")) as f:
        wnids = [line.split()[0] for line in f]
    ids = {w: i for i, w in enumerate(wnids)}
    for split in ("train", "val"):
        ann_root = os.path.join(root, "ILSVRC", "Annotations", "CLS-LOC", split)
        img_root = os.path.join(root, "ILSVRC", "Data", "CLS-LOC", split)
        for folder, _, files in os.walk(ann_root):
            rel = os.path.relpath(folder, ann_root)
            for name in sorted(files):
                tree = ET.parse(os.path.join(folder, name)).getroot()
                w = float(tree.find("size/width").text)
                h = float(tree.find("size/height").text)
                lines = []
                for obj in tree.findall("object"):
                    b = obj.find("bndbox")
                    x1, y1, x2, y2 = (float(b.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax"))
                    lines.append(
                        f"{ids[obj.find('name').text]} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} "
                        f"{(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}\n"
                    )
                with open(os.path.join(img_root, rel, name[:-4] + ".txt"), "w") as f:
                    f.writelines(lines)


if __name__ == "__main__":
    main(sys.argv[1])
