"""What the supervisor needs from an engine backend, and what a backend reports back.

A backend knows its engine: how to start or continue it (`launch`), what its output means
(`poll` turns new output into `Note`s) and how an attempt ended (`outcome`). Everything
generic (the restart policy, stalls, stop requests, state.json, ETA) is the supervisor's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol

# Note kinds
PROGRESS = "progress"      # data: done, total, loss (and fraction of the current epoch)
TIMING = "timing"          # data: seconds (one iteration) or an epoch record
CHECKPOINT = "checkpoint"  # data: path, done
VERDICT = "verdict"        # data: kind (nan|explosion|failure); the attempt must end
EVENT = "event"            # detail: something a person should see in the events list
HEARTBEAT = "heartbeat"    # the engine is alive (e.g. validating) but has no new progress
METRIC = "metric"          # data: map (a fraction), done (the iteration or epoch it measures)
ENGINE_DONE = "engine-done"  # the engine's work is complete; end it even if it does not exit



class OutcomeKind(StrEnum):
    """How an attempt ended: the engine's own end, or a watchdog verdict. The values are the
    words of events.jsonl and state.json."""

    FINISHED = "finished"
    STOPPED = "stopped"
    #: No retry helps (a bad argument, a missing file, a binary that cannot start).
    FAILED = "failed"
    CRASHED = "crashed"
    NAN = "nan"
    EXPLOSION = "explosion"
    STALL = "stall"


@dataclass(slots=True)
class Note:
    """One thing a backend read from its engine."""

    kind: str
    detail: str = ""
    data: dict = field(default_factory=dict)


@dataclass(slots=True)
class Launch:
    """How to start one attempt."""

    argv: list[str]
    cwd: Path
    env: dict[str, str]
    resumed_from: str | None = None
    #: Let the kernel kill the engine when the supervisor dies (for engines that cannot
    #: watch their parent themselves, i.e. the darknet binary).
    die_with_parent: bool = False
    #: Text written to the engine's stdin (hank-ai's CPU build asks to type "yes").
    stdin_text: str | None = None


@dataclass(slots=True)
class Outcome:
    """How an attempt ended (an OutcomeKind) and why, in words."""

    kind: OutcomeKind
    detail: str = ""
    #: The unit (iteration, epoch) where a verdict struck, when known.
    at: int | None = None


class Backend(Protocol):
    """One training engine as the supervisor sees it."""

    name: str
    unit: str
    #: Seconds between looks at the engine's output (darknet: short, to act within a line).
    poll_seconds: float

    def prepare(self) -> dict:
        """Check and copy what the run needs; return provenance and `total` units."""

    def launch(self, attempt: int, healthy_only: bool) -> Launch | None:
        """The next attempt's command, resuming from the newest valid checkpoint
        (only a healthy one after a NaN); None when the run is already complete."""

    def poll(self, final: bool = False) -> list[Note]:
        """New notes since the last call (`final`: the engine exited, read a last partial line too)."""

    def outcome(self, returncode: int) -> Outcome:
        """How the attempt that exited with `returncode` ended."""

    def request_stop(self, pid: int, at_epoch_end: bool = False) -> float:
        """Ask the engine to stop at a safe point (the end of the epoch, if it has epochs and
        `at_epoch_end`); the seconds to wait, while no sign of life comes, before killing."""
