"""Where each darknet fork reads an image's label: one function per fork, used everywhere.

pjreddie's darknet (the Debian package) replaces the FIRST occurrence of each of `images`,
`JPEGImages`, `raw` anywhere in the path, then of each of `.jpg .png .JPG .JPEG`.
AlexeyAB's maps only `/JPEGImages/` and the COCO `/images/<split>/` folders to `/labels/`
and knows more extensions. Either reads the image itself as its label when no extension
matched (the functions then return None).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pipeline.dataset.labels import label_path_beside
from pipeline.io import read_bytes

#: Substrings pjreddie's darknet replaces (first occurrence) to find a label; in this order.
PJREDDIE_REWRITES = (("images", "labels"), ("JPEGImages", "labels"), ("raw", "labels"))
PJREDDIE_EXTENSIONS = (".jpg", ".png", ".JPG", ".JPEG")
ALEXEYAB_DIRS = (
    ("/images/train2017/", "/labels/train2017/"), ("/images/val2017/", "/labels/val2017/"),
    ("/JPEGImages/", "/labels/"), ("/images/train2014/", "/labels/train2014/"),
    ("/images/val2014/", "/labels/val2014/"),
)
ALEXEYAB_EXTENSIONS = (".jpg", ".JPG", ".jpeg", ".JPEG", ".png", ".PNG", ".bmp", ".BMP",
                       ".ppm", ".PPM", ".tiff", ".TIFF")
#: The image extensions each fork knows.
#: hank-ai kept AlexeyAB's rule (its replace_image_to_label is the same code, rewritten in C++).
EXTENSIONS = {"pjreddie": PJREDDIE_EXTENSIONS, "alexeyab": ALEXEYAB_EXTENSIONS, "hank": ALEXEYAB_EXTENSIONS}


def pjreddie_label_path(image_path: str) -> str | None:
    """Where pjreddie's darknet looks for an image's label; None for an unknown extension.

    Example: "/x/drawings/a.jpg" -> "/x/dlabelsings/a.txt".
    """
    path = image_path
    for old, new in PJREDDIE_REWRITES:
        path = path.replace(old, new, 1)
    replaced = path
    for ext in PJREDDIE_EXTENSIONS:
        replaced = replaced.replace(ext, ".txt", 1)
    return replaced if replaced != path else None


def alexeyab_label_path(image_path: str) -> str | None:
    """Where AlexeyAB's darknet looks for an image's label; None for an unknown extension.

    Example: "/voc/JPEGImages/a.jpg" -> "/voc/labels/a.txt"; "/x/drawings/a.jpg" ->
    "/x/drawings/a.txt".
    """
    path = image_path
    for old, new in ALEXEYAB_DIRS:
        path = path.replace(old, new, 1)
    for ext in ALEXEYAB_EXTENSIONS:
        if path.endswith(ext):
            return path[: -len(ext)] + ".txt"
    return None


#: Fork name -> its label rule.
LABEL_PATH: dict[str, Callable[[str], str | None]] = {
    "pjreddie": pjreddie_label_path, "alexeyab": alexeyab_label_path, "hank": alexeyab_label_path}


def darknet_label_paths(image: str) -> list[str]:
    """Label paths the darknet forks read for `image`, other than the one beside it.

    Example: `/v/JPEGImages/a.jpg` -> [`/v/labels/a.txt`].
    """
    beside = label_path_beside(image)
    found = (rule(image) for rule in LABEL_PATH.values())
    return list(dict.fromkeys(p for p in found if p and p != beside and p != image))


def unread_by(images: Iterable[str], rule: Callable[[str], str | None],
              label_of: Callable[[str], str | None]) -> list[tuple[str, str | None, str]]:
    """Images whose label, as a tool's `rule` finds it, is not the dataset's label.

    `rule` is a fork's (`LABEL_PATH[fork]`) or another tool's (`labels.ultralytics_label_path`);
    `label_of` gives the dataset's label path. Returns (image, the tool's path, why), why
    being "missing", "differs" (other bytes) or "extension" (it reads the image itself);
    a copy with the same bytes (e.g. `convert voc --darknet-labels`) is fine.
    Example: [("/v/JPEGImages/a.jpg", "/v/labels/a.txt", "missing")].
    """
    found = []
    for image in images:
        theirs, ours = rule(image), label_of(image)
        if theirs is None:
            found.append((image, None, "extension"))
        elif theirs != ours:
            data = _bytes(theirs)
            if data is None:
                found.append((image, theirs, "missing"))
            elif ours is None or data != _bytes(ours):
                found.append((image, theirs, "differs"))
    return found


def _bytes(path: str) -> bytes | None:
    try:
        return read_bytes(path)
    except OSError:
        return None
