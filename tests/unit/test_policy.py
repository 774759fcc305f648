"""The restart policy on its own: each rule of what follows an attempt."""

from __future__ import annotations

import pytest

from pipeline.train.policy import RestartPolicy
from pipeline.train.protocol import Outcome, OutcomeKind


def policy(**kw) -> RestartPolicy:
    return RestartPolicy(**{"max_restarts": 2, "on_nan": "restart", "backend": "darknet",
                            "unit": "iteration", **kw})


@pytest.mark.parametrize("kind, action", [(OutcomeKind.FINISHED, "finish"), (OutcomeKind.STOPPED, "stop"),
                                          (OutcomeKind.FAILED, "fail"), (OutcomeKind.CRASHED, "restart"),
                                          (OutcomeKind.STALL, "restart")])
def test_each_end_has_its_step(kind, action):
    decision = policy().decide(Outcome(kind, "x"), checkpoints=0)
    assert decision.action == action and not decision.gave_up


def test_after_a_nan_only_a_healthy_checkpoint_and_on_nan_stop_fails():
    assert policy().decide(Outcome(OutcomeKind.NAN, "x", at=5), checkpoints=0).healthy_only
    stop = policy(on_nan="stop").decide(Outcome(OutcomeKind.NAN, "nan at 5"), checkpoints=0)
    assert stop.action == "fail" and stop.reason == "nan at 5 (--on-nan stop)"


def test_restarts_in_a_row_are_bounded_and_refill_after_progress():
    p = policy(max_restarts=1)
    crash = Outcome(OutcomeKind.CRASHED, "exit 3")
    assert p.decide(crash, checkpoints=0).action == "restart"
    assert p.decide(crash, checkpoints=1).action == "restart"  # progress since: refilled
    gave_up = p.decide(crash, checkpoints=0)
    assert gave_up.action == "fail" and gave_up.gave_up and gave_up.reason.startswith("gave up after 1")


def test_the_same_failure_at_the_same_point_stops_unless_something_changed():
    p = policy(max_restarts=9)
    nan = Outcome(OutcomeKind.NAN, "nan", at=34)
    assert p.decide(nan, checkpoints=0).action == "restart"
    p.remedied()
    assert p.decide(nan, checkpoints=0).action == "restart"  # the rate was lowered: worth a try
    repeat = p.decide(nan, checkpoints=0)
    assert repeat.action == "fail" and "again at iteration 34" in repeat.reason
    assert "learning_rate" in repeat.reason
