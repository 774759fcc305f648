"""ETAs that hold (issue 17): synthetic darknet gap sequences with `-map` pauses, weight
saves and `random=1` resizes, and Ultralytics epochs that slow down, switch off mosaic, or
run under `time=` / `patience=`. Each is checked against the true time left; the old median
is shown to be 10%+ off where the new ETA is within a few %."""

from __future__ import annotations

import json
import random
import statistics
from pathlib import Path

import pytest

from pipeline.train import supervisor as sup
from pipeline.train.eta import END_SECONDS, MapPlan, epoch_eta, iteration_eta, map_plan, run_eta, run_map_plan
from pipeline.train.options import TrainOptions
from pipeline.train.protocol import METRIC, PROGRESS, TIMING, Note, Outcome, OutcomeKind
from pipeline.train.runs import RunFolder

TOTAL = 1000
MAP_EVERY = 100
#: Time per iteration at each input size relative to the cfg's (a cycle, so that the time
#: left does not hang on draws still to come).
SIZES = (1.0, 2.0, 0.6, 1.4)


def ab_run(seed: int = 1, *, per: float = 0.3, map_cost: float = 4.4, save: float = 0.2,
           resize: bool = False) -> tuple[list[tuple[int, float]], float]:
    """(gaps after iterations 3..TOTAL-1 labelled by the iteration before them, the final
    mAP's seconds): AlexeyAB with -map every 100 and `_last.weights` every 100."""
    rng = random.Random(seed)
    scale, gaps = 1.0, []
    for after in range(3, TOTAL):
        s = per * scale * rng.uniform(0.9, 1.15)
        if resize and after % 10 == 0:  # random=1: a new input size every 10 iterations
            scale = SIZES[after // 10 % len(SIZES)]
            s += 0.4  # the network's reallocation
        if after % MAP_EVERY == 0:
            s += map_cost + save
        gaps.append((after, s))
    return gaps, map_cost


def truth(gaps, final: float, done: int) -> float:
    return sum(s for a, s in gaps if a >= done) + final


def old_median(gaps, done: int) -> float:
    seconds = [s for a, s in gaps if a < done][-200:]
    return statistics.median(seconds) * (TOTAL - done)


PLAN = MapPlan(every=MAP_EVERY, burn_in=0, valid_images=160, batch=4)


@pytest.mark.parametrize("resize", [False, True])
@pytest.mark.parametrize("percent", [5, 25, 50, 75])
def test_map_pauses_saves_and_resizes_are_counted(percent, resize):
    gaps, final = ab_run(resize=resize)
    done = TOTAL * percent // 100
    seen = [(a, s) for a, s in gaps if a < done]
    maps = [m for m in range(MAP_EVERY, done, MAP_EVERY)]
    eta = iteration_eta(seen, done, TOTAL, maps=maps, plan=PLAN)
    true = truth(gaps, final, done)
    # at 5% of a random=1 run hardly a cycle of sizes has been seen
    assert eta.seconds == pytest.approx(true, rel=0.06 if resize and percent == 5 else 0.04)
    assert abs(old_median(gaps, done) - true) / true >= 0.10
    # due at done (its line is out, the evaluation not yet), on to the one at the end
    assert eta.basis["maps_left"] == len(range(-(-done // MAP_EVERY) * MAP_EVERY, TOTAL, MAP_EVERY)) + 1


def test_before_the_first_evaluation_it_is_priced_from_the_valid_images():
    gaps, final = ab_run()
    eta = iteration_eta(gaps[:47], 50, TOTAL, plan=PLAN)
    assert eta.basis["map_measured"] == 0 and eta.basis["map_seconds"] == pytest.approx(160 * 0.3 / 4 / 3,
                                                                                        rel=0.05)
    gaps_after = iteration_eta(gaps[:300], 303, TOTAL, maps=[100, 200, 300], plan=PLAN)
    assert gaps_after.basis["map_measured"] == 3 and gaps_after.basis["map_seconds"] == pytest.approx(
        4.4 + 0.2, rel=0.05)


def test_the_schedule_follows_the_fork_burn_in_and_the_attempt_start():
    ab = map_plan("alexeyab", train_images=24_000, batch=64, burn_in=1000, valid_images=10)
    assert ab.every == 1500 and map_plan("hank", train_images=24_000, batch=64, burn_in=0,
                                         valid_images=0).every == 375
    assert map_plan("pjreddie", train_images=10, batch=1, burn_in=0, valid_images=1) is None
    assert map_plan("alexeyab", train_images=24, batch=4, burn_in=0, valid_images=1).every == 100
    plan = MapPlan(every=100, burn_in=250)
    assert plan.left(0, 1000, anchor=0) == 9  # 250, 350, ..., 950, and 1000
    assert plan.left(960, 1000, anchor=950) == 1 and plan.left(1000, 1000, anchor=950) == 1
    assert MapPlan(every=100).left(150, 400, anchor=137) == 3  # resumed at 137: 237, 337, 400
    # the line of 300 is out, its evaluation runs next: still to come
    assert MapPlan(every=100).left(300, 400, anchor=200) == 2
    assert MapPlan(every=100).left(300, 400, anchor=300) == 1  # done (its mAP line was seen)
    # a resumed attempt: its labels restart, the schedule counts from its start
    gaps = [(a, 0.3) for a in range(3, 140)] + [(a, 0.3) for a in range(103, 150)]
    eta = iteration_eta(gaps, 150, 400, plan=MapPlan(every=100))
    assert eta.basis["maps_left"] == 3  # 200, 300, 400 (counted from 100)


def run_folder(root: Path, fork: str = "alexeyab", map_each: bool = True) -> Path:
    (root / "darknet").mkdir(parents=True)
    (root / "darknet" / "toy.cfg").write_text("[net]\nbatch=4\nsubdivisions=1\nburn_in=20\n"
                                              "max_batches=400\n[yolo]\nclasses=2\n")
    valid = root / "valid.txt"
    valid.write_text("".join(f"/x/{i}.jpg\n" for i in range(150)))
    (root / "darknet" / "toy.data").write_text(f"classes=2\ntrain={valid}\nvalid={valid}\n")
    (root / "run.json").write_text(json.dumps({
        "run_id": "x", "backend": "darknet", "engine": {"fork": fork},
        "options": {"map_each": map_each}, "dataset": {"classes": 2, "train_images": 24},
        "darknet_files": {"data": "darknet/toy.data", "cfg": "darknet/toy.cfg"}}))
    return root


def test_a_run_folder_gives_the_schedule(tmp_path):
    plan = run_map_plan(run_folder(tmp_path / "a"))
    assert plan == MapPlan(every=100, burn_in=20, valid_images=150, batch=4)
    assert run_map_plan(run_folder(tmp_path / "b", map_each=False)) is None
    assert run_map_plan(run_folder(tmp_path / "c", fork="pjreddie")) is None
    state = {"done": 150, "total": 400, "map": {"evaluations": [{"done": 100, "map": 0.1}]}}
    gaps = [(a, 0.3 + (4.0 if a == 100 else 0.0)) for a in range(3, 150)]
    eta = run_eta(tmp_path / "a", state, "iteration", gaps, [])
    assert eta.seconds == pytest.approx(250 * 0.3 + 3 * 4.0, rel=0.01)


# -- Ultralytics ---------------------------------------------------------------------------
def epochs_of(seconds: list[float], val: float = 0.0, *, t0: float = 1000.0, between: float = 0.0,
              mosaic: bool = True) -> list[dict]:
    out, t = [], t0
    for i, s in enumerate(seconds, start=1):
        t += s + val + between
        out.append({"epoch": i, "seconds": s + val, "train_seconds": s, "val_seconds": val,
                    "mosaic": mosaic, "first_of_session": i == 1, "t": t})
    return out


def test_recent_epochs_weigh_most_when_the_machine_slows_down():
    records = epochs_of([10.0] * 30 + [15.0] * 10)
    eta = epoch_eta(records, 40, 100, close_mosaic=0)
    true = 60 * 15.0 + END_SECONDS
    assert eta.seconds == pytest.approx(true, rel=0.05)
    old = statistics.median(e["seconds"] for e in records[1:]) * 60
    assert abs(old - true) / true >= 0.10


def test_training_and_validation_apart_with_the_mosaic_switch_and_time_between_epochs():
    records = epochs_of([10.0] * 5, val=3.0, between=1.0) + \
        epochs_of([6.0] * 2, val=3.0, t0=1000 + 5 * 14.0, between=1.0, mosaic=False)
    for e in records[5:]:
        e["first_of_session"] = False
    eta = epoch_eta(records, 7, 10, close_mosaic=5, fraction=0.5)
    # 3 plain epochs of 6 + 3 + 1 s, half of the current one's training done, the final evaluation
    assert eta.seconds == pytest.approx(3 * 10.0 - 0.5 * 6.0 + 4.0 + END_SECONDS)
    assert eta.basis["val_seconds"] == pytest.approx(4.0)


def test_the_final_evaluation_is_priced_like_a_first_validation():
    records = epochs_of([10.0] * 4, val=1.0)
    records[0]["val_seconds"] = 5.0  # the session's first validation sets up its validator
    eta = epoch_eta(records, 4, 6)
    assert eta.seconds == pytest.approx(2 * 11.0 + 5.0 + END_SECONDS)


def test_time_caps_the_eta_and_patience_is_said():
    records = epochs_of([10.0] * 4)
    full = epoch_eta(records, 4, 100)
    assert full.seconds == pytest.approx(960.0 + END_SECONDS) and full.note is None
    capped = epoch_eta(records, 4, 100, time_hours=0.02)  # 72 s, 40 spent
    assert capped.seconds == pytest.approx(32.0 + END_SECONDS) and "time=0.02 h" in capped.note
    early = epoch_eta(records, 4, 100, patience=10)
    assert early.seconds == pytest.approx(960.0 + END_SECONDS)
    assert "patience=10: it may end early" in early.note
    assert epoch_eta(records, 95, 100, patience=10).note is None  # fewer epochs left than patience


# -- through the supervisor ----------------------------------------------------------------
class Engine:
    """A fake engine whose notes arrive in one poll."""

    poll_seconds = 0.01

    def __init__(self, unit: str, notes: list[Note]):
        self.unit, self.name, self.notes = unit, "fake", notes

    def launch(self, attempt, healthy_only):
        import sys

        from pipeline.train.protocol import Launch

        if attempt > 1:
            return None
        return Launch([sys.executable, "-c", "pass"], Path("."), {})

    def poll(self, final=False):
        out, self.notes = self.notes, []
        return out

    def outcome(self, returncode):
        return Outcome(OutcomeKind.FINISHED, "done")


def test_the_supervisor_labels_gaps_and_says_the_caveats(tmp_path, monkeypatch):
    monkeypatch.setattr(sup.Supervisor, "_sleep", lambda self, seconds: self.stop_asked)
    notes = []
    for it in range(1, 151):
        if it > 4:
            notes.append(Note(TIMING, data={"seconds": 0.3 + (4.0 if it == 101 else 0.0)}))
        notes.append(Note(PROGRESS, data={"done": it, "total": 400}))
        if it == 100:
            notes.append(Note(METRIC, data={"map": 0.2, "done": 100}))
    root = run_folder(tmp_path / "dk")
    run = RunFolder(root)
    opts = TrainOptions(cfgdir=tmp_path, out=root, backend="darknet")
    s = sup.Supervisor(run, opts, Engine("iteration", notes))
    assert s.run_to_end(resuming=False) == 0
    assert s.iteration_times[96] == (100, pytest.approx(4.3))
    eta_events = [e for e in run.read_events() if e["kind"] == "eta"]
    assert [e["percent"] for e in eta_events] == [5, 25]

    epochs = [Note(TIMING, data={**e, "close_mosaic": 0}) for e in epochs_of([10.0] * 3)]
    notes = [n for i, e in enumerate(epochs, 1) for n in (e, Note(PROGRESS, data={"done": i, "total": 50}))]
    (tmp_path / "ul").mkdir()
    run = RunFolder(tmp_path / "ul")
    run.run_json.write_text(json.dumps({"run_id": "y", "total": 50}))
    opts = TrainOptions(cfgdir=tmp_path, out=tmp_path / "ul", backend="ultralytics",
                        extra={"patience": "5"})
    s = sup.Supervisor(run, opts, Engine("epoch", notes))
    assert s.run_to_end(resuming=False) == 0
    assert s.epochs[-1]["t"] == pytest.approx(1030.0)
    said = [e for e in run.read_events() if e["kind"] == "eta-note"]
    assert len(said) == 1 and "patience=5: it may end early" in said[0]["detail"]
