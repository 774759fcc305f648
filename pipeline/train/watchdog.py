"""Judging a training's loss: non-finite values and explosions (pure, no engine imports).

The same rules serve darknet (the `avg` field of each iteration line: never the `Region`
lines, where `-nan` is normal) and Ultralytics (batch `loss_items` for NaN, epoch means
for explosions), so the watchdog behaves the same whichever engine runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pipeline.train.protocol import OutcomeKind

#: What the supervisor does on a non-finite loss: restart from the last healthy checkpoint
#: with the learning rate halved and burn-in doubled (darknet; the default), restart
#: unchanged, or stop.
ON_NAN_CHOICES = ("lower-lr", "restart", "stop")


@dataclass(slots=True)
class LossWatch:
    """Flags a non-finite loss at once and a loss above `factor` x its running minimum.

    `warmup=True` observations are checked for NaN only and do not set the minimum (the
    loss of a burn-in or a mosaic switch is not a baseline). Example:
    `w = LossWatch(10.0); w.check(5.0); w.check(60.0)` -> OutcomeKind.EXPLOSION.
    """

    factor: float = 10.0
    minimum: float = math.inf

    def check(self, loss: float, *, warmup: bool = False) -> str | None:
        """OutcomeKind.NAN, OutcomeKind.EXPLOSION or None for one observed loss."""
        if not math.isfinite(loss):
            return OutcomeKind.NAN
        if warmup:
            return None
        if self.minimum < math.inf and loss > self.factor * self.minimum:
            return OutcomeKind.EXPLOSION
        self.minimum = min(self.minimum, loss)
        return None


@dataclass(slots=True)
class NanStreak:
    """NaN in `limit` consecutive batches (one bad batch can be skipped by the engine)."""

    limit: int = 3
    count: int = 0

    def check(self, values: list[float]) -> bool:
        """Feed one batch's loss values; True once `limit` batches in a row had a non-finite one."""
        self.count = self.count + 1 if not all(math.isfinite(v) for v in values) else 0
        return self.count >= self.limit
