"""check-cfg rules for a darknet cfg: each finding has the line it is about.

Errors are what breaks or silently spoils training (a wrong `filters=` aborts, a key the
fork does not know is ignored, steps beyond max_batches never drop the learning rate);
warnings are worth a look but may be on purpose (a template left in test mode).
Every rule is one function in `RULES`; `lint_cfg` runs them all.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

from pipeline.darknet.cfg import DETECTION_TYPES, FILTER_LAYERS, NET_TYPES, Cfg, Head
from pipeline.darknet.fork import FORK_INFO, ForkInfo
from pipeline.darknet.values import (
    SIZE_MULTIPLE,
    TRAIN_BATCH,
    TRAIN_SUBDIVISIONS,
    chosen_max_batches,
    max_batches_formula,
    max_batches_rule,
)

ERROR, WARNING = "error", "warning"
_STRING_KEYS = ("activation", "policy", "mask", "anchors", "steps", "scales", "layers")


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One problem: rule id, severity, file, 1-based line (0: whole file), message."""

    rule: str
    severity: str
    file: str
    line: int
    message: str

    def as_dict(self) -> dict:
        """JSON-ready form."""
        return asdict(self)

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.severity}: {self.message} [{self.rule}]"


@dataclass(frozen=True, slots=True, kw_only=True)
class LintContext:
    """What the rules look at: the cfg, its file, the fork, and what the dataset says."""

    cfg: Cfg
    path: str
    fork: ForkInfo
    data_classes: int | None = None
    train_images: int = 0
    crlf: bool = False


Rule = Callable[[LintContext], Iterator[Finding]]


def reference_classes(ctx: LintContext) -> int | None:
    """The class count the cfg must agree with: the .data's, else the last layer's
    (pjreddie takes it from the cfg's last layer)."""
    if ctx.data_classes is not None:
        return ctx.data_classes
    heads = ctx.cfg.heads()
    return heads[-1].section.get_int("classes", 20) if heads else None


def _f(ctx: LintContext, rule: str, severity: str, line: int, message: str) -> Finding:
    return Finding(rule=rule, severity=severity, file=ctx.path, line=line, message=message)


def rule_parse(ctx: LintContext) -> Iterator[Finding]:
    """Lines darknet cannot read, repeated keys, '#' comments inside values, CRLF."""
    if ctx.crlf and not ctx.fork.reads_crlf:
        yield _f(ctx, "crlf", ERROR, 1, f"CRLF line ends: {ctx.fork.name}'s parser keeps the "
                 "'\\r' and stops with 'First section must be [net] or [network]'")
    for s in ctx.cfg.sections:
        seen: dict[str, int] = {}
        for ln in s.lines:
            if ln.is_junk:
                yield _f(ctx, "junk-line", ERROR, ln.number,
                         f"darknet cannot read {ln.raw.strip()!r} (no '='): it is skipped")
                continue
            key = ln.key
            if key is None:
                continue
            if key in seen:
                first = s.find(key)
                same = first is not None and first.value == ln.value
                yield _f(ctx, "duplicate-key", WARNING if same else ERROR, ln.number,
                         f"{key}={ln.value} repeats line {seen[key]}; darknet uses the first "
                         f"one ({key}={first.value if first else ''})")
            seen.setdefault(key, ln.number)
            if "#" in ln.value:
                sev = ERROR if key in _STRING_KEYS else WARNING
                yield _f(ctx, "inline-comment", sev, ln.number,
                         f"darknet has no end-of-line comments: {key} is read as {ln.value!r}")


def rule_fork(ctx: LintContext) -> Iterator[Finding]:
    """Layer types, activations, policies and keys the chosen fork's parser cannot read."""
    fork = ctx.fork
    for s in ctx.cfg.sections:
        if s.type not in fork.section_types:
            yield _f(ctx, "unknown-layer", ERROR, s.line,
                     f"{fork.name}'s darknet does not know {s.type}: 'Type not recognized', "
                     "the network breaks")
            continue
        act = s.find("activation")
        if act and act.value not in fork.activations:
            yield _f(ctx, "unknown-activation", ERROR, act.number,
                     f"{fork.name}'s darknet has no activation {act.value!r}: it falls back "
                     "to ReLU")
        known = fork.net_keys if s.type in NET_TYPES else (fork.keys or {}).get(s.type)
        if known is None:
            continue
        for ln in s.options():
            if ln.key not in known:
                hint = difflib.get_close_matches(ln.key or "", sorted(known), n=1)
                also = f" (did you mean {hint[0]}?)" if hint else ""
                yield _f(ctx, "unknown-key", ERROR, ln.number,
                         f"{fork.name}'s darknet does not read {ln.key}= in {s.type}: "
                         f"ignored{also}")
    policy = ctx.cfg.net.find("policy")
    if policy and policy.value not in fork.policies:
        yield _f(ctx, "unknown-policy", ERROR, policy.number,
                 f"{fork.name}'s darknet has no policy {policy.value!r}: it uses constant")


def rule_heads(ctx: LintContext) -> Iterator[Finding]:
    """classes, filters, mask and anchors of every detection layer."""
    heads = ctx.cfg.heads()
    if not heads:
        yield _f(ctx, "no-detection-layer", WARNING, 0,
                 f"no detection layer ({', '.join(DETECTION_TYPES)}): not a detector cfg")
        return
    ref = reference_classes(ctx)
    source = ".data classes" if ctx.data_classes is not None else "the last detection layer"
    for h in heads:
        yield from _head(ctx, h, ref, source)


def _head(ctx: LintContext, h: Head, ref: int | None, source: str) -> Iterator[Finding]:
    s = h.section
    name = f"{s.type} #{h.number}"
    classes_line = s.find("classes")
    classes = s.get_int("classes", 20)
    where = classes_line.number if classes_line else s.line
    if classes_line is None:
        yield _f(ctx, "classes-missing", ERROR, s.line, f"{name} has no classes= (darknet "
                 "uses 20)")
    if ref is not None and classes != ref:
        yield _f(ctx, "classes-mismatch", ERROR, where,
                 f"{name} has classes={classes} but {source} says {ref}")
    before = h.before
    key = h.filters_key()
    if before is None or before.type not in FILTER_LAYERS:
        yield _f(ctx, "filters-layer", WARNING, s.line,
                 f"the layer before {name} is not [convolutional]; filters not checked")
    else:
        have = before.get_int(key, 1)
        want = h.expected_filters(classes)
        if have != want:
            ln = before.find(key)
            yield _f(ctx, "filters", ERROR, ln.number if ln else before.line,
                     f"{key}={have} before {name} (line {s.line}) must be {want} for its "
                     f"classes={classes} ({h.filters_formula(classes)}); darknet aborts")
    yield from _anchors(ctx, h, name)


def _anchors(ctx: LintContext, h: Head, name: str) -> Iterator[Finding]:
    s = h.section
    if s.type == "[detection]":
        return
    num = s.get_int("num", 1)
    anchors = s.get_floats("anchors")
    a_line = s.find("anchors")
    n_pairs = None
    if anchors is not None and a_line is not None:
        n = len(anchors)
        if n % 2:
            yield _f(ctx, "anchors", ERROR, a_line.number, f"{name}: {n} anchor numbers, "
                     "not pairs (an odd count)")
        elif n != 2 * num:
            yield _f(ctx, "anchors", ERROR, a_line.number,
                     f"{name}: {n // 2} anchor pairs but num={num} (need {2 * num} numbers)")
        n_pairs = n // 2
    mask = s.get_ints("mask")
    m_line = s.find("mask")
    if mask is not None and m_line is not None:
        limit = min(num, n_pairs) if n_pairs is not None else num
        bad = [m for m in mask if m < 0 or m >= limit]
        if bad:
            yield _f(ctx, "mask", ERROR, m_line.number,
                     f"{name}: mask {','.join(map(str, bad))} beyond num={num}"
                     + (f" / {n_pairs} anchor pairs" if n_pairs is not None else ""))


def rule_net(ctx: LintContext) -> Iterator[Finding]:
    """[net]: input size, batch/subdivisions, max_batches, steps and scales."""
    net = ctx.cfg.net
    detector = bool(ctx.cfg.heads())
    for key in ("width", "height"):
        v = net.get_int(key, 0)
        ln = net.find(key)
        if detector and v % SIZE_MULTIPLE:
            yield _f(ctx, "size-32", ERROR, ln.number if ln else net.line,
                     f"{key}={v} is not a multiple of {SIZE_MULTIPLE}")
    batch, subdiv = net.get_int("batch", 1), net.get_int("subdivisions", 1)
    b_line = (net.find("batch") or net.header).number
    if subdiv <= 0 or batch % subdiv:
        yield _f(ctx, "batch-subdivisions", ERROR, b_line,
                 f"batch={batch} is not divisible by subdivisions={subdiv}")
    elif batch <= 1:
        yield _f(ctx, "test-mode", WARNING, b_line,
                 f"batch={batch} subdivisions={subdiv}: test values; train with e.g. "
                 f"{TRAIN_BATCH}/{TRAIN_SUBDIVISIONS}")
    yield from _schedule(ctx, detector)


def _schedule(ctx: LintContext, detector: bool) -> Iterator[Finding]:
    net = ctx.cfg.net
    mb_line = net.find("max_batches")
    mb = net.get_int("max_batches", 0)
    if detector and (ref := reference_classes(ctx)) is not None:
        rule = max_batches_rule(ref, ctx.train_images)
        where = mb_line.number if mb_line else net.line
        if mb < rule:
            chosen = chosen_max_batches(ctx.cfg) == mb
            yield _f(ctx, "max-batches", WARNING if chosen else ERROR, where,
                     f"max_batches={mb} is below the rule "
                     f"{max_batches_formula(ref, ctx.train_images)}"
                     + ("; chosen with configs --max-batches (a short run)" if chosen else ""))
        elif mb >= 10 * rule:
            yield _f(ctx, "max-batches-high", WARNING, where,
                     f"max_batches={mb} is {mb // rule}x the rule ({rule}) for {ref} classes: "
                     "a template default left in?")
    steps_line, scales_line = net.find("steps"), net.find("scales")
    if net.get("policy", "constant") != "steps" or steps_line is None:
        return
    steps = net.get_ints("steps") or []
    if any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
        yield _f(ctx, "steps-order", ERROR, steps_line.number,
                 f"steps={steps_line.value} do not increase")
    beyond = [s for s in steps if s > mb]
    if mb and beyond:
        yield _f(ctx, "steps-beyond", ERROR, steps_line.number,
                 f"steps {','.join(map(str, beyond))} beyond max_batches={mb}: the learning "
                 "rate never drops there")
    scales = net.get_floats("scales")
    if scales is None or len(scales) != len(steps):
        n = 0 if scales is None else len(scales)
        yield _f(ctx, "scales-count", ERROR, (scales_line or steps_line).number,
                 f"{len(steps)} steps but {n} scales (pjreddie reads past the end and crashes)")


RULES: tuple[Rule, ...] = (rule_parse, rule_fork, rule_heads, rule_net)


def lint_cfg(cfg: Cfg, path: str, fork: str, *, data_classes: int | None = None,
             train_images: int = 0, crlf: bool = False) -> list[Finding]:
    """Run every rule; findings sorted by line.

    Example: `lint_cfg(read_cfg("bad.cfg"), "bad.cfg", "pjreddie")` -> [Finding(...), ...].
    """
    ctx = LintContext(cfg=cfg, path=path, fork=FORK_INFO[fork], data_classes=data_classes,
                      train_images=train_images, crlf=crlf)
    found = [f for rule in RULES for f in rule(ctx)]
    return sorted(found, key=lambda f: f.line)
