"""Speed and time-to-finish from a run's own measurements.

Iterations (darknet): the wall seconds between consecutive iteration lines, the first
iterations of each attempt left out (loading, allocation). Three parts:
- the steady cost: a trimmed mean over the recent window, pauses left out;
- periodic pauses (weight saves, `random=1` resizes, a slow disk): gaps over `SPIKE` x the
  window's median; their extra seconds are spread over the iterations they came from (at
  least `PAUSE_SPAN`, darknet's `_last.weights` period), so each costs what it measured;
- `-map` evaluations (AlexeyAB, hank-ai): the extra seconds of the gaps that hold one, times
  the evaluations left by the fork's schedule (`MapPlan`). Before the first is measured, one
  is priced as a forward pass of each valid image (`FORWARD_SHARE` of a training image).
The median alone drops all of these: 5-30% too optimistic on a run with `-map`.

Epochs (Ultralytics): the last `RECENT_EPOCHS` epochs weighted towards the newest, training
and validation apart (mosaic and no-mosaic epochs apart: the last `close_mosaic` epochs load
one image per sample, not four), the first epoch of each session left out (label scan,
caching); the time between epochs (saving, the scheduler) is counted from the records' clock,
and the end: one more validation for the final evaluation of best.pt (priced like a session's
first one, which also sets up its validator) and `END_SECONDS` for its plots and the exit.
`time=` (hours) caps the
training where the run's args set it; `patience=` may end it early, which the ETA cannot
know: `Eta.note` says so.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: A gap this many times the window's median is a pause (a save, a resize, an mAP evaluation).
SPIKE = 2.5
#: Pauses are spread over at least this many iterations (darknet saves `_last` every 100).
PAUSE_SPAN = 100
#: An mAP evaluation's forward pass per valid image, as a share of a training image's step
#: (measured with AlexeyAB's CPU build, yolov4-tiny: 0.028 s forward vs 0.076 s trained).
FORWARD_SHARE = 1 / 3
#: Ultralytics: epochs the ETA weights (the newest counts most).
RECENT_EPOCHS = 10
#: Ultralytics: seconds after the last epoch besides the final validation (its plots,
#: results.png, the worker's exit, the supervisor's last writes): 4-7 s measured on 2 CPU cores.
END_SECONDS = 5.0
#: The first gap of an attempt is recorded after this many of its iteration lines.
WARM_LINES = 3


@dataclass(slots=True)
class Eta:
    """Units per second, seconds left (None until there is something to measure), a caveat
    to say (`patience`, `time=`), and the parts the seconds were added up from."""

    speed: float | None
    seconds: float | None
    note: str | None = None
    basis: dict = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MapPlan:
    """When darknet's `-map` computes mAP, and what pricing an unmeasured evaluation needs.

    AlexeyAB: every `max(100, 4 x train_images / batch)` iterations counted from the attempt's
    first iteration, none before burn_in, and once more at max_batches (hank-ai: every epoch,
    `max(100, train_images / batch)`). Example: `MapPlan(every=100, burn_in=0, valid_images=4,
    batch=4).left(done=150, total=400, anchor=100)` -> 3 (at 200, 300 and 400).
    """

    every: int
    burn_in: int = 0
    valid_images: int = 0
    batch: int = 1

    def left(self, done: int, total: int, anchor: int) -> int:
        """Evaluations still to come once iteration `done`'s line is out (one due at `done`
        itself runs after that line; the one at `total` counts even off the grid)."""
        if total < done:
            return 0
        at = max(anchor + self.every, self.burn_in)
        if at < done:
            at += -(-(done - at) // self.every) * self.every
        on_grid = (total - 1 - at) // self.every + 1 if at < total else 0
        return on_grid + 1

    def guess(self, per_iteration: float) -> float:
        """Seconds of one evaluation before any is measured: a forward pass of each valid image."""
        return self.valid_images * per_iteration / max(1, self.batch) * FORWARD_SHARE


def map_plan(fork: str | None, *, train_images: int, batch: int, burn_in: int,
             valid_images: int) -> MapPlan | None:
    """The fork's `-map` schedule (None for pjreddie, which has no `-map`)."""
    if fork not in ("alexeyab", "hank") or batch <= 0:
        return None
    epochs = 4 if fork == "alexeyab" else 1  # AB's -mAP_epochs default
    return MapPlan(every=max(100, epochs * train_images // batch), burn_in=burn_in,
                   valid_images=valid_images, batch=batch)


def _labelled(gaps: Sequence) -> tuple[list[int | None], list[float]]:
    """Gaps as (iteration before the gap, seconds); plain floats have no label."""
    after, seconds = [], []
    for g in gaps:
        if isinstance(g, (tuple, list)):
            after.append(int(g[0]))
            seconds.append(float(g[1]))
        else:
            after.append(None)
            seconds.append(float(g))
    return after, seconds


def _attempt_start(after: list[int | None]) -> int:
    """The iteration the current attempt started from (its labels count up from there)."""
    labels = [a for a in after if a is not None]
    if not labels:
        return 0
    first = len(labels) - 1
    while first > 0 and labels[first - 1] < labels[first]:
        first -= 1
    return max(0, labels[first] - WARM_LINES)


def iteration_eta(gaps: Sequence, done: int, total: int | None, window: int = 200, *,
                  maps: Sequence[int] = (), plan: MapPlan | None = None) -> Eta:
    """ETA from the wall seconds between iteration lines.

    `gaps`: seconds, or (iteration before the gap, seconds) so that the gaps holding an mAP
    evaluation (`maps`: the iterations it was computed after) are told apart; `plan`: the
    `-map` schedule. Example: 400 gaps of 0.3 s with a 4 s evaluation after 100, 200 and 300,
    done 400 of 1000, every 100 -> 600 x 0.3 + 7 x 3.7 = 205.9 s (the median says 180).
    """
    after, seconds = _labelled(gaps)
    evaluated = set(maps)
    pairs = list(zip(after, seconds, strict=True))
    map_gaps = [s for a, s in pairs if a is not None and a in evaluated]
    plain = [s for a, s in pairs if a is None or a not in evaluated]
    if not plain:
        return Eta(None, None)
    recent = plain[-window:]
    median = statistics.median(recent)
    if median <= 0:
        return Eta(None, None)
    limit = SPIKE * median
    base = statistics.fmean([s for s in recent if s <= limit])  # trimmed of its pauses
    pauses = [s - base for s in plain if s > limit]
    # one pause may be a one-off: spread over a save period at least; more recur where seen
    pause = sum(pauses) / (len(plain) if len(pauses) > 1 else max(len(plain), PAUSE_SPAN))
    per = base + pause
    left = max(0, (total or done) - done)
    seconds_left = left * per
    basis = {"per_iteration": round(base, 6), "pause_per_iteration": round(pause, 6),
             "window": len(recent), "pauses": len(pauses)}
    if plan is not None and total:
        measured = [s - base for s in map_gaps if s > base]
        each = statistics.fmean(measured) if measured else plan.guess(base)
        anchor = max([m for m in evaluated if m <= done], default=_attempt_start(after))
        count = plan.left(done, total, anchor)
        seconds_left += count * each
        basis.update(map_seconds=round(each, 3), map_measured=len(measured), maps_left=count,
                     map_every=plan.every)
    return Eta(1.0 / per, seconds_left, basis=basis)


def _weighted(values: list[float]) -> float:
    """Mean weighted 1, 2, ..., n from the oldest to the newest."""
    weights = range(1, len(values) + 1)
    return sum(w * v for w, v in zip(weights, values, strict=True)) / sum(weights)


def _parts(e: dict) -> tuple[float, float]:
    """(training, validation) seconds of an epoch record; old records have only `seconds`."""
    if e.get("train_seconds") is not None:
        return float(e["train_seconds"]), float(e.get("val_seconds") or 0.0)
    return float(e["seconds"]), 0.0


def _between(epochs: list[dict]) -> list[float]:
    """Seconds between one epoch's end and the next one's start (saving, scheduler), from the
    records' clock `t`, within a session."""
    out = []
    for a, b in zip(epochs, epochs[1:], strict=False):
        if a.get("t") is not None and b.get("t") is not None and not b.get("first_of_session"):
            out.append(max(0.0, float(b["t"]) - float(a["t"]) - float(b["seconds"])))
    return out


def epoch_eta(epochs: list[dict], done: int, total: int | None, close_mosaic: int = 0, *,
              fraction: float = 0.0, time_hours: float | None = None,
              patience: int | None = None) -> Eta:
    """ETA from epoch records `{epoch, seconds, train_seconds, val_seconds, mosaic,
    first_of_session, t}`; `fraction` of epoch done+1 is trained already.

    Example: 2 measured mosaic epochs of 10 s (no validation split), done 3 of 10,
    close_mosaic 0 -> 70 s left.
    """
    usable = [e for e in epochs if not e.get("first_of_session")] or epochs
    if not usable or total is None:
        return Eta(None, None)
    recent = usable[-RECENT_EPOCHS:]
    parts = [(_parts(e), e.get("mosaic", True)) for e in recent]
    mosaic = [t for (t, _), m in parts if m]
    plain = [t for (t, _), m in parts if not m]
    train_mosaic = _weighted(mosaic) if mosaic else _weighted(plain)
    train_plain = _weighted(plain) if plain else train_mosaic
    gaps = _between(epochs)[-RECENT_EPOCHS:]
    val = _weighted([v for (_, v), _ in parts]) + (_weighted(gaps) if gaps else 0.0)
    first_plain = total - close_mosaic  # epochs numbered 1..total; later ones run without mosaic
    left = 0.0
    for epoch in range(done + 1, total + 1):
        left += (train_plain if epoch > first_plain else train_mosaic) + val
    if done < total:
        left -= min(1.0, max(0.0, fraction)) * (train_plain if done + 1 > first_plain else train_mosaic)
        # the final evaluation of best.pt sets up a validator anew, as a session's first one did
        firsts = [e for e in epochs if e.get("first_of_session") and e.get("val_seconds") is not None]
        left += (max(val, float(firsts[-1]["val_seconds"])) if firsts else val) + END_SECONDS
    per_epoch = _weighted([float(e["seconds"]) for e in recent]) + (_weighted(gaps) if gaps else 0.0)
    basis = {"train_seconds": round(train_mosaic, 3), "train_seconds_plain": round(train_plain, 3),
             "val_seconds": round(val, 3), "epochs_weighted": len(recent)}
    notes = []
    if time_hours:
        session = _session(epochs)
        spent = sum(float(e["seconds"]) for e in session) + sum(_between(session)) \
            + fraction * train_mosaic
        capped = max(0.0, time_hours * 3600 - spent) + 2 * val + END_SECONDS  # its epoch's val, the end
        notes.append(f"time={time_hours:g} h: Ultralytics stops training after {time_hours:g} h "
                     "(counted in the ETA)")
        if capped < left:
            left = capped
            basis["capped_by_time"] = True
    if patience and total - done > patience:
        notes.append(f"patience={patience}: it may end early, after {patience} epochs without a "
                     "better fitness (not counted in the ETA)")
    speed = 1.0 / per_epoch if per_epoch > 0 else None
    return Eta(speed, max(0.0, left), "; ".join(notes) or None, basis)


def _session(epochs: list[dict]) -> list[dict]:
    """The records of the current session (from its last `first_of_session` on)."""
    start = max((i for i, e in enumerate(epochs) if e.get("first_of_session")), default=0)
    return epochs[start:]


# -- the supervisor's view ----------------------------------------------------------------
_PLANS: dict[tuple, MapPlan | None] = {}


def run_map_plan(root: Path) -> MapPlan | None:
    """The `-map` schedule of a darknet run folder (run.json, its cfg and .data copies)."""
    from pipeline.darknet.cfg import read_cfg
    from pipeline.dataset.datafiles import read_data, read_list
    from pipeline.errors import PipelineError

    try:
        key = (str(root), (root / "run.json").stat().st_mtime_ns)
    except OSError:
        return None
    if key in _PLANS:
        return _PLANS[key]
    plan = None
    try:
        info = json.loads((root / "run.json").read_text(encoding="utf-8"))
        files = info.get("darknet_files") or {}
        if (info.get("options") or {}).get("map_each", True) and files:
            net = read_cfg(_in_run(root, files["cfg"])).net
            valid = read_data(_in_run(root, files["data"])).get("valid")
            plan = map_plan((info.get("engine") or {}).get("fork"),
                            train_images=(info.get("dataset") or {}).get("train_images") or 0,
                            batch=max(1, net.get_int("batch", 1)), burn_in=net.get_int("burn_in", 0),
                            valid_images=len(read_list(valid)) if valid else 0)
    except (OSError, ValueError, KeyError, PipelineError):
        plan = None
    _PLANS[key] = plan
    return plan


def _in_run(root: Path, path: str) -> Path:
    return Path(path) if Path(path).is_absolute() else root / path


def _number(text: object, kind: type) -> float | int | None:
    try:
        value = kind(float(str(text)))
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def run_eta(root: Path, state: dict, unit: str, gaps: Sequence, epochs: list[dict],
            extra: dict | None = None) -> Eta:
    """The supervisor's ETA from what it has collected (state.json, the gaps, the epochs)."""
    done, total = state.get("done", 0), state.get("total")
    if unit == "iteration":
        maps = [e["done"] for e in (state.get("map") or {}).get("evaluations") or []]
        return iteration_eta(gaps, done, total, maps=maps, plan=run_map_plan(root))
    close = epochs[-1].get("close_mosaic", 10) if epochs else 10
    extra = extra or {}
    return epoch_eta(epochs, done, total, close if close is not None else 10,
                     fraction=state.get("fraction") or 0.0,
                     time_hours=_number(extra.get("time"), float),
                     patience=_number(extra.get("patience"), int))
