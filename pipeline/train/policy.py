"""What the supervisor does after an attempt ends: the restart policy, pure (no processes, no
files), so each rule reads in one place and is tested on its own.

    finished / stopped   -> end the run (exit 0 / 130)
    failed               -> end the run (exit 1): no restart can cure it
    nan + --on-nan stop  -> end the run
    anything else        -> restart from the last (healthy, after nan/explosion) checkpoint,
                            unless `max_restarts` restarts in a row are used up (the count starts
                            again after a healthy checkpoint) or the same failure came back at the
                            same point with nothing changed (it would repeat).
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.train.protocol import Outcome, OutcomeKind

#: Outcomes after which only a checkpoint judged healthy is resumed.
NEEDS_HEALTHY = (OutcomeKind.NAN, OutcomeKind.EXPLOSION)


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """The next step: `action` is "finish", "stop", "fail" or "restart"; `reason` in words."""

    action: str
    reason: str = ""
    healthy_only: bool = False
    #: The restart number in the current run of failures (1 for the first restart).
    restart: int = 0
    #: A "fail" the supervisor chose (restarts used up, a repeat), not the engine's own end.
    gave_up: bool = False


def nan_advice(outcome: Outcome, backend: str) -> str:
    """What a person should change after a non-finite loss ("" for other outcomes)."""
    if outcome.kind != OutcomeKind.NAN:
        return ""
    if backend == "darknet":
        return ("; lower learning_rate or lengthen burn_in in the cfg (or --on-nan lower-lr, which "
                "halves the rate and lengthens burn-in at each restart), and check the labels")
    return "; lower lr0 (-- lr0=...), try amp=False, and check the labels"


class RestartPolicy:
    """Decides what follows each attempt. Example:
    `p = RestartPolicy(max_restarts=2, on_nan="restart", backend="darknet", unit="iteration")`;
    `p.decide(Outcome(OutcomeKind.CRASHED, "exit 3"), checkpoints=0).action` -> "restart".
    """

    def __init__(self, *, max_restarts: int, on_nan: str, backend: str, unit: str) -> None:
        self.max_restarts, self.on_nan, self.backend, self.unit = max_restarts, on_nan, backend, unit
        self.in_a_row = 0
        self.first: Outcome | None = None
        self.last_failure: tuple[str, int | None] | None = None
        self.changed = False

    def remedied(self) -> None:
        """Something was changed before the next attempt (e.g. a lower learning rate)."""
        self.changed = True

    def decide(self, outcome: Outcome, *, checkpoints: int) -> Decision:
        """The next step after `outcome`; `checkpoints`: healthy checkpoints since the last restart."""
        if outcome.kind == OutcomeKind.FINISHED:
            return Decision(action="finish", reason=outcome.detail)
        if outcome.kind == OutcomeKind.STOPPED:
            return Decision(action="stop", reason=outcome.detail)
        if outcome.kind == OutcomeKind.FAILED:
            return Decision(action="fail", reason=outcome.detail)
        if outcome.kind == OutcomeKind.NAN and self.on_nan == "stop":
            return Decision(action="fail", reason=f"{outcome.detail} (--on-nan stop)")
        if checkpoints:  # progress since the last restart: the budget refills
            self.in_a_row, self.first = 0, None
        self.first = self.first or outcome
        advice = nan_advice(outcome, self.backend)
        if self.in_a_row >= self.max_restarts:
            reason = f"gave up after {self.in_a_row} restart(s): {outcome.kind}: {outcome.detail}"
            if self.first.detail != outcome.detail:
                reason += f" (first: {self.first.kind}: {self.first.detail})"
            return Decision(action="fail", reason=reason + advice, gave_up=True)
        if (repeat := self._same_failure(outcome)) is not None:
            return Decision(action="fail", reason=repeat + advice, gave_up=True)
        self.in_a_row += 1
        return Decision(action="restart", healthy_only=outcome.kind in NEEDS_HEALTHY, restart=self.in_a_row,
                        reason=f"after {outcome.kind}")

    def _same_failure(self, outcome: Outcome) -> str | None:
        """A failure at the same point as the previous one, restarted with nothing changed,
        will come back (same seed, same data order): the reason to stop, else None."""
        previous, self.last_failure = self.last_failure, (outcome.kind, outcome.at)
        unchanged, self.changed = not self.changed, False
        if outcome.at is None or previous != (outcome.kind, outcome.at) or not unchanged:
            return None
        return (f"{outcome.kind} again at {self.unit} {outcome.at} after a restart with nothing "
                "changed: it will repeat")
