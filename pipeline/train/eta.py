"""Speed and time-to-finish from a run's own measurements.

Iterations (darknet): the median wall time per iteration over the recent window,
leaving out the first iterations of each attempt (loading, allocation).
Epochs (Ultralytics): the median epoch time of mosaic and no-mosaic epochs apart (the last
`close_mosaic` epochs load one image per sample, not four), leaving out the first epoch of
each session (label scan, caching); validation is part of every epoch, so it is counted.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass


@dataclass(slots=True)
class Eta:
    """Units per second and seconds left (None until there is something to measure)."""

    speed: float | None
    seconds: float | None


def iteration_eta(seconds_per_iteration: list[float], done: int, total: int | None,
                  window: int = 200) -> Eta:
    """ETA from per-iteration wall times (already without each attempt's first ones)."""
    recent = seconds_per_iteration[-window:]
    if not recent:
        return Eta(None, None)
    per = statistics.median(recent)
    if per <= 0:
        return Eta(None, None)
    left = max(0, (total or done) - done)
    return Eta(1.0 / per, left * per)


def epoch_eta(epochs: list[dict], done: int, total: int | None, close_mosaic: int = 0) -> Eta:
    """ETA from epoch records `{epoch, seconds, mosaic, first_of_session}`.

    Example: 2 measured mosaic epochs of 10 s, done 3 of 10, close_mosaic 0 -> 70 s left.
    """
    usable = [e for e in epochs if not e.get("first_of_session")] or epochs
    if not usable or total is None:
        return Eta(None, None)
    mosaic = [e["seconds"] for e in usable if e.get("mosaic", True)]
    plain = [e["seconds"] for e in usable if not e.get("mosaic", True)]
    per_mosaic = statistics.median(mosaic) if mosaic else statistics.median(plain)
    per_plain = statistics.median(plain) if plain else per_mosaic
    first_plain = total - close_mosaic  # epochs numbered 1..total; later ones run without mosaic
    left = 0.0
    for epoch in range(done + 1, total + 1):
        left += per_plain if epoch > first_plain else per_mosaic
    recent = [e["seconds"] for e in usable[-5:]]
    speed = 1.0 / statistics.median(recent) if recent and statistics.median(recent) > 0 else None
    return Eta(speed, left)
