"""Drawing for the synthetic datasets: each class a filled shape of its own colour and form,
so a detector can learn it from a few images. Deterministic for a `random.Random`.
"""

from __future__ import annotations

import random

COLOURS = (  # name, BGR
    ("red", (40, 40, 220)), ("blue", (220, 90, 30)), ("green", (60, 200, 60)), ("yellow", (40, 220, 230)),
    ("purple", (200, 60, 150)), ("orange", (20, 140, 250)), ("white", (235, 235, 235)),
    ("pink", (190, 150, 250)), ("teal", (170, 170, 20)), ("brown", (30, 80, 140)),
)
SHAPES = ("square", "disc", "triangle")


def draw_jpeg(width: int, height: int, boxes: list[tuple[int, tuple]], rng: random.Random) -> bytes:
    """JPEG bytes of a plain background with each (class, box) drawn as its class's shape and colour."""
    import cv2  # here, so the CLI and SynthSpec load without OpenCV
    import numpy as np

    image = np.full((height, width, 3), rng.randrange(30, 90), np.uint8)
    for cls, (x1, y1, x2, y2) in boxes:
        colour = COLOURS[cls % 10][1]
        shape = SHAPES[cls % 3]
        if shape == "square":
            cv2.rectangle(image, (x1, y1), (x2, y2), colour, -1)
        elif shape == "disc":
            cv2.ellipse(image, (((x1 + x2) / 2, (y1 + y2) / 2), (x2 - x1, y2 - y1), 0), colour, -1)
        else:
            pts = np.array([[(x1 + x2) // 2, y1], [x1, y2], [x2, y2]], np.int32)
            cv2.fillPoly(image, [pts], colour)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return data.tobytes()


def random_boxes(rng: random.Random, width: int, height: int, classes: list[int]) -> list[tuple[int, tuple]]:
    """One random (class, integer corner box) inside the image per entry of `classes`."""
    out = []
    for cls in classes:
        bw = rng.randint(max(8, width // 5), max(9, width * 3 // 4))
        bh = rng.randint(max(8, height // 5), max(9, height * 3 // 4))
        x1 = rng.randint(0, width - bw)
        y1 = rng.randint(0, height - bh)
        out.append((cls, (x1, y1, x1 + bw - 1, y1 + bh - 1)))
    return out
