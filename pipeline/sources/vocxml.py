"""The Pascal VOC annotation XML schema, shared by ImageNet CLS-LOC and VOC devkits.

`<annotation><size><width/><height/></size><object><name/><difficult/><bndbox>
<xmin/><ymin/><xmax/><ymax/></bndbox></object>...</annotation>`; corners in pixels.
"""

from __future__ import annotations

from lxml import etree

from pipeline.core import Box, ImageRecord, ObjectAnnotation
from pipeline.errors import FormatError
from pipeline.io import parse_xml

_CORNERS = ("xmin", "ymin", "xmax", "ymax")


def _number(element: etree._Element, tag: str, path: str) -> float:
    text = element.findtext(tag)
    try:
        return float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise FormatError(path, f"<{tag}> is {text!r}, not a number", line=element.sourceline) from None


def _size(root: etree._Element) -> tuple[int, int]:
    """Width and height from <size>; (0, 0) when missing or unreadable."""
    size = root.find("size")
    if size is None:
        return 0, 0
    try:
        return int(float(size.findtext("width") or 0)), int(float(size.findtext("height") or 0))
    except ValueError:
        return 0, 0


def parse_voc_xml(data: bytes, path: str, parser: etree.XMLParser) -> ImageRecord:
    """Parse one annotation file; width/height are 0 when the XML lacks a usable size.

    Example: `parse_voc_xml(open(p, "rb").read(), p, xml_parser())`
    -> `ImageRecord(width=500, height=375, objects=(ObjectAnnotation("n01443537", Box(...)),))`
    """
    root = parse_xml(data, path, parser)
    if root.tag != "annotation":
        raise FormatError(path, f"root element is <{root.tag}>, expected <annotation>", line=root.sourceline)
    width, height = _size(root)
    objects = []
    for obj in root.iterfind("object"):
        name = (obj.findtext("name") or "").strip()
        box = obj.find("bndbox")
        if not name or box is None:
            raise FormatError(path, "<object> without <name> or <bndbox>", line=obj.sourceline)
        difficult = (obj.findtext("difficult") or "0").strip() == "1"
        objects.append(ObjectAnnotation(name, Box(*(_number(box, t, path) for t in _CORNERS)), difficult))
    return ImageRecord(width, height, tuple(objects))
