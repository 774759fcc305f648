"""The Pascal VOC annotation XML schema, shared by ImageNet CLS-LOC and VOC devkits.

`<annotation><size><width/><height/></size><object><name/><difficult/><bndbox>
<xmin/><ymin/><xmax/><ymax/></bndbox></object>...</annotation>`; corners in pixels.
"""

from __future__ import annotations

import math

from lxml import etree

from pipeline.core import Box, ImageRecord, ObjectAnnotation
from pipeline.dataset.labels import ObjectRow
from pipeline.errors import FormatError
from pipeline.io import parse_xml


def _number(text: str | None, tag: str, path: str, element: etree._Element) -> float:
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise FormatError(path, f"<{tag}> is {text!r}, not a number", line=element.sourceline) from None
    if not math.isfinite(value):
        raise FormatError(path, f"<{tag}> is {text!r}, not a finite number", line=element.sourceline)
    return value


def _size(element: etree._Element) -> tuple[int, int]:
    """Width and height from <size>; 0 for a value that is missing or unreadable."""
    width = height = 0
    for child in element:
        tag = child.tag
        if tag == "width" or tag == "height":
            try:
                value = int(float(child.text or 0))
            except (ValueError, OverflowError):  # "abc", "1e999", "nan"
                value = 0
            if tag == "width":
                width = value
            else:
                height = value
    return width, height


def _object(element: etree._Element, path: str) -> ObjectRow:
    name, corners, difficult = "", None, False
    for child in element:  # direct children only: VOC <part>s have boxes of their own
        tag = child.tag
        if tag == "name":
            name = (child.text or "").strip()
        elif tag == "bndbox":
            corners = {c.tag: c.text for c in child}
        elif tag == "difficult":
            difficult = (child.text or "").strip() == "1"
    if not name or corners is None:
        raise FormatError(path, "<object> without <name> or <bndbox>", line=element.sourceline)
    get = corners.get
    return (name, difficult, _number(get("xmin"), "xmin", path, element),
            _number(get("ymin"), "ymin", path, element), _number(get("xmax"), "xmax", path, element),
            _number(get("ymax"), "ymax", path, element))


def parse_voc_xml(data: bytes, path: str, parser: etree.XMLParser) -> ImageRecord:
    """Parse one annotation file; width/height are 0 when the XML lacks a usable size.

    Example: `parse_voc_xml(open(p, "rb").read(), p, xml_parser())`
    -> `ImageRecord(width=500, height=375, objects=(ObjectAnnotation("n01443537", Box(...)),))`
    """
    width, height, filename, rows = parse_voc_rows(data, path, parser)
    objects = tuple(ObjectAnnotation(label, Box(x1, y1, x2, y2), difficult)
                    for label, difficult, x1, y1, x2, y2 in rows)
    return ImageRecord(width, height, objects, filename)


def parse_voc_rows(data: bytes, path: str, parser: etree.XMLParser) -> tuple[int, int, str, list[ObjectRow]]:
    """`parse_voc_xml` without the records: (width, height, `<filename>`, `ObjectRow`s).

    One pass over the root's children; ImageNet's reader (544,546 train files) uses this.
    """
    root = parse_xml(data, path, parser)
    if root.tag != "annotation":
        raise FormatError(path, f"root element is <{root.tag}>, expected <annotation>", line=root.sourceline)
    width = height = 0
    objects = []
    filename = ""
    for child in root:
        tag = child.tag
        if tag == "object":
            objects.append(_object(child, path))
        elif tag == "size":
            width, height = _size(child)
        elif tag == "filename":
            filename = (child.text or "").strip()
    return width, height, filename, objects
