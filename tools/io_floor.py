"""I/O floor for the benchmark: read every XML, write one small fixed file per image, no parsing.

Usage: python tools/io_floor.py ROOT WORKERS
Same process count and the same files touched as the converter; the time below which no
converter of this tree can go.
"""

import os
import sys
from multiprocessing import Pool

PAYLOAD = b"0 0.500000 0.500000 0.500000 0.500000\n"


def touch_folder(job: tuple[str, str, list[str] | None]) -> int:
    ann, img, names = job
    names = names if names is not None else [e.name for e in os.scandir(ann) if e.name.endswith(".xml")]
    for name in names:
        with open(os.path.join(ann, name), "rb") as f:
            f.read()
        with open(os.path.join(img, name[:-4] + ".txt"), "wb") as f:
            f.write(PAYLOAD)
    return len(names)


def main(root: str, workers: int) -> None:
    jobs = []
    for split in ("train", "val"):
        ann = os.path.join(root, "ILSVRC", "Annotations", "CLS-LOC", split)
        img = os.path.join(root, "ILSVRC", "Data", "CLS-LOC", split)
        subs = sorted(e.name for e in os.scandir(ann) if e.is_dir())
        jobs += [(os.path.join(ann, s), os.path.join(img, s), None) for s in subs]
        loose = sorted(e.name for e in os.scandir(ann) if e.name.endswith(".xml"))
        jobs += [(ann, img, loose[i : i + 1000]) for i in range(0, len(loose), 1000)]
    with Pool(workers) as pool:
        print(sum(pool.imap_unordered(touch_folder, jobs)))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
