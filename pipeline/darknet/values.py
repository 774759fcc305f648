"""The values `configs` puts into a training cfg, each with its reason, and the rules they
follow (AlexeyAB's "how to train custom objects"): the only place those rules are written.

`max_batches = max(PER_CLASS_BATCHES x classes, training images, MIN_MAX_BATCHES)`, steps at
`STEP_PERCENTS` of max_batches, `filters` before each head (`Head.expected_filters`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from pipeline.darknet.cfg import FILTER_LAYERS, Cfg, Line, Section
from pipeline.errors import CfgError

#: The max_batches rule: this many iterations per class, at least this many in all.
PER_CLASS_BATCHES = 2000
MIN_MAX_BATCHES = 6000
#: The learning rate drops at these percentages of max_batches.
STEP_PERCENTS = (80, 90)
#: Training values for a template left in test mode (batch=1).
TRAIN_BATCH = 64
TRAIN_SUBDIVISIONS = 16
#: Runs this short get random=0 (pjreddie trains at 608 px once iteration+200 > max_batches).
SHORT_RUN = 1000
#: Input width and height must be multiples of this (the network's total stride).
SIZE_MULTIPLE = 32
#: darknet reads whole numbers into a C `int`.
C_INT_MAX = 2**31 - 1
#: The rule in words, for help texts.
MAX_BATCHES_RULE = f"max({PER_CLASS_BATCHES} x classes, training images, {MIN_MAX_BATCHES})"


@dataclass(frozen=True, slots=True, kw_only=True)
class CfgOptions:
    """What the user asked for; None means "choose" (the defaults live here, once)."""

    width: int | None = None
    height: int | None = None
    batch: int | None = None
    subdivisions: int | None = None
    max_batches: int | None = None
    learning_rate: float | None = None
    burn_in: int | None = None
    random: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Choice:
    """One value written into the cfg: where, what, why, and whether the user gave it."""

    section: int
    where: str
    key: str
    value: str
    reason: str
    given: bool = False


#: The comment `configs` writes above a max_batches the user gave (`--max-batches`), so
#: that check-cfg reports a short run on purpose as a warning; darknet skips `#` lines.
CHOSEN_MARK = "# yolo-pipeline configs: max_batches={} chosen with --max-batches"
_CHOSEN = re.compile(r"^#\s*yolo-pipeline configs: max_batches=(\d+) chosen with --max-batches")


def chosen_max_batches(cfg: Cfg) -> int | None:
    """The max_batches value `configs --max-batches` recorded in [net], or None.

    Example: a [net] with the line `# yolo-pipeline configs: max_batches=20 chosen with
    --max-batches` -> 20.
    """
    for ln in cfg.net.lines:
        if m := _CHOSEN.match(ln.raw.strip()):
            return int(m.group(1))
    return None


def max_batches_rule(classes: int, train_images: int) -> int:
    """`MAX_BATCHES_RULE` for a dataset. Example: `max_batches_rule(3, 100)` -> 6000."""
    return max(PER_CLASS_BATCHES * classes, train_images, MIN_MAX_BATCHES)


def max_batches_formula(classes: int, train_images: int) -> str:
    """The rule with its numbers, for reasons and messages.

    Example: `max_batches_formula(2, 6)` ->
    "max(2000 x 2 classes = 4000, 6 training images, 6000) = 6000".
    """
    return (f"max({PER_CLASS_BATCHES} x {classes} classes = {PER_CLASS_BATCHES * classes}, "
            f"{train_images} training images, {MIN_MAX_BATCHES}) = "
            f"{max_batches_rule(classes, train_images)}")


def steps_for(max_batches: int) -> tuple[int, ...]:
    """The iterations where the learning rate drops: `STEP_PERCENTS` of max_batches (>= 1).

    Example: `steps_for(6000)` -> (4800, 5400).
    """
    return tuple(max(1, max_batches * p // 100) for p in STEP_PERCENTS)


def compute_values(cfg: Cfg, *, classes: int, train_images: int, opts: CfgOptions) -> list[Choice]:
    """Every value a training cfg needs for `classes` classes, each with its reason.

    Example: yolov3-tiny, 2 classes, 50 images -> classes=2 and filters=21 in both heads,
    max_batches=6000, steps=4800,5400, batch=64, subdivisions=16.
    """
    heads = cfg.heads()
    if not heads:
        raise CfgError("template has no detection layer ([yolo], [region]...): not a detector")
    _check_options(opts)
    net = cfg.net
    out: list[Choice] = []

    def put(section: int, where: str, key: str, value: object, reason: str) -> None:
        out.append(Choice(section=section, where=where, key=key, value=str(value), reason=reason,
                          given=reason.startswith("given")))

    for key, given in (("width", opts.width), ("height", opts.height)):
        if given is not None:
            if given <= 0 or given % SIZE_MULTIPLE:
                raise CfgError(f"--{key} {given}: must be a positive multiple of {SIZE_MULTIPLE}")
            put(0, "[net]", key, given, f"given (--{key})")
        else:
            put(0, "[net]", key, net.get_int(key, 0), "kept from the template")
    batch, subdiv = _batch(net, opts)
    put(0, "[net]", "batch", batch[0], batch[1])
    put(0, "[net]", "subdivisions", subdiv[0], subdiv[1])

    rule = max_batches_rule(classes, train_images)
    formula = max_batches_formula(classes, train_images)
    if opts.max_batches is not None:
        if opts.max_batches <= 0:
            raise CfgError(f"--max-batches {opts.max_batches}: must be positive")
        mb = opts.max_batches
        below = " (below the rule: a short run)" if mb < rule else ""
        put(0, "[net]", "max_batches", mb, f"given (--max-batches); rule {formula}{below}")
    else:
        mb = rule
        put(0, "[net]", "max_batches", mb, formula)
    steps = steps_for(mb)
    put(0, "[net]", "policy", "steps", "learning rate drops at the steps")
    percents = " and ".join(f"{p}%" for p in STEP_PERCENTS)
    put(0, "[net]", "steps", ",".join(map(str, steps)), f"{percents} of max_batches {mb}")
    put(0, "[net]", "scales", ",".join(".1" for _ in steps), "one x0.1 learning-rate drop per step")
    if opts.learning_rate is not None:
        put(0, "[net]", "learning_rate", f"{opts.learning_rate:g}", "given (--learning-rate)")
    burn = net.get_int("burn_in", 0)
    if opts.burn_in is not None:
        put(0, "[net]", "burn_in", opts.burn_in, "given (--burn-in)")
    elif burn >= mb:
        put(0, "[net]", "burn_in", mb // 10,
            f"template burn_in {burn} >= max_batches {mb}: 10% of the run")

    random = opts.random
    random_reason = "given (--random)"
    if random is None and mb <= SHORT_RUN:
        random = 0
        random_reason = (f"max_batches {mb} <= {SHORT_RUN}: with random=1 pjreddie "
                         "trains at 608 px once iteration+200 > max_batches")
    for head in heads:
        where = f"{head.section.type}#{head.number}"
        idx = cfg.sections.index(head.section)
        put(idx, where, "classes", classes, f"{classes} classes in the dataset")
        if head.before is None or head.before.type not in FILTER_LAYERS:
            raise CfgError(f"{where}: the layer before is not [convolutional]; cannot set filters")
        n = head.expected_filters(classes)
        put(idx - 1, f"{head.before.type}->{where}", head.filters_key(), n,
            head.filters_formula(classes))
        if random is not None and head.section.type != "[detection]":
            put(idx, where, "random", random, random_reason)
    return out


def _check_options(opts: CfgOptions) -> None:
    """Given values darknet could not hold: beyond a C int, a non-finite learning rate."""
    for key in ("width", "height", "batch", "subdivisions", "max_batches", "burn_in"):
        value = getattr(opts, key)
        if value is not None and value > C_INT_MAX:
            raise CfgError(f"--{key.replace('_', '-')} {value}: above {C_INT_MAX} "
                           "(darknet reads it as a C int)")
    lr = opts.learning_rate
    if lr is not None and not (math.isfinite(lr) and lr > 0):
        raise CfgError(f"--learning-rate {lr}: must be a positive finite number")


def _batch(net: Section, opts: CfgOptions) -> tuple[tuple[int, str], tuple[int, str]]:
    tb, ts = net.get_int("batch", 1), net.get_int("subdivisions", 1)
    test_mode = tb <= 1
    if opts.batch is not None:
        batch = (opts.batch, "given (--batch)")
    elif test_mode:
        batch = (TRAIN_BATCH, f"template is in test mode (batch={tb}); training value")
    else:
        batch = (tb, "kept from the template")
    if opts.subdivisions is not None:
        subdiv = (opts.subdivisions, "given (--subdivisions)")
    elif test_mode:
        subdiv = (min(TRAIN_SUBDIVISIONS, batch[0]),
                  f"template is in test mode (subdivisions={ts}); images per GPU pass = "
                  "batch/subdivisions")
    else:
        subdiv = (ts, "kept from the template")
    if batch[0] <= 0 or subdiv[0] <= 0 or batch[0] % subdiv[0]:
        raise CfgError(f"batch {batch[0]} must be a positive multiple of subdivisions {subdiv[0]}")
    return batch, subdiv


def apply_values(cfg: Cfg, choices: list[Choice]) -> None:
    """Write each choice into its section (in place); a given max_batches gets `CHOSEN_MARK`
    above it (an older mark is dropped)."""
    net = cfg.net
    net.lines = [ln for ln in net.lines if not _CHOSEN.match(ln.raw.strip())]
    for c in choices:
        cfg.sections[c.section].set(c.key, c.value)
        if c.key == "max_batches" and c.given and (line := net.find(c.key)):
            eol = "\r\n" if line.raw.endswith("\r\n") else "\n"
            net.lines.insert(net.lines.index(line), Line(CHOSEN_MARK.format(c.value) + eol, 0))
