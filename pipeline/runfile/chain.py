"""The chain convert -> subset -> configs -> check-cfg -> train -> summarize, and its plan.

A stage runs when it was never run here, when `--force` names it, when an earlier stage
was redone in this run, or when its options, the digests of its inputs, the tool version
or its recorded outputs differ from its last success in WORK/run-state.json; otherwise it
is skipped and says why. `--dry-run` prints the same decisions and runs nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import msgspec

from pipeline.runfile.context import Context
from pipeline.runfile.load import Loaded
from pipeline.runfile.stages import DATA_STAGES, EVALUATE_STAGES, Stage
from pipeline.runfile.state import StageRecord, file_digest, now, read_state, write_state
from pipeline.runfile.training import TRAIN_STAGES, check_train_section, plan_train, record_train

STAGES: dict[str, Stage] = {s.name: s for s in DATA_STAGES + TRAIN_STAGES + EVALUATE_STAGES}
ORDER = tuple(STAGES)


@dataclass
class Step:
    """One stage's part in a run: `run`, `skip` (up to date), `absent`, `outside` the
    --from/--until range, or `not reached` (an earlier stage failed or was left running)."""

    stage: str
    action: str
    why: str
    result: str = ""
    seconds: float | None = None


@dataclass
class RunReport:
    """Every step, the exit code, and where the outputs are."""

    file: str
    work: str
    steps: list[Step] = field(default_factory=list)
    code: int = 0
    locations: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        """JSON-ready form."""
        return asdict(self)


def _plain(value: object) -> object:
    """Data as it reads back from the run-state JSON (tuples become lists...)."""
    return msgspec.json.decode(msgspec.json.encode(value))


def _differs(now_: dict, then: dict) -> list[str]:
    return [k for k in sorted(set(now_) | set(then)) if now_.get(k) != then.get(k)]


def decide(ctx: Context, stage: Stage, cascade: str | None, dry_run: bool = False) -> tuple[str, str]:
    """("run" | "skip", why) for one stage; `cascade` is the last earlier stage that runs."""
    name = stage.name
    if name in ctx.forced:
        return "run", f"forced (--force {name})"
    if cascade:
        return "run", f"after {cascade}, which {'will run' if dry_run else 'was redone'}"
    rec = ctx.state.stages.get(name)
    if rec is None:
        started = ctx.state.started.get(name)
        if started:
            return "run", f"not finished yet: continues {started['run_dir']} if its inputs are unchanged"
        return "run", "never run in this work folder"
    options = _plain(stage.options(ctx))
    if changed := _differs(options, rec.options):  # type: ignore[arg-type]
        section = stage.section or name
        return "run", "options changed: " + ", ".join(f"{section}.{k}" for k in changed)
    if changed := _differs(stage.inputs(ctx), rec.inputs):
        return "run", "inputs changed: " + ", ".join(changed)
    if (tool := stage.tool(ctx)) != rec.tool:
        return "run", f"tool changed: {rec.tool} -> {tool}"
    for path, digest in rec.outputs.items():
        if file_digest(path) != digest:
            return "run", f"output missing or changed: {path}"
    return "skip", f"up to date: done {rec.finished_at} in {rec.seconds:.1f} s"


def locations(ctx: Context) -> dict[str, str]:
    """Where each stage's outputs are (those that exist)."""
    found = {"work": str(ctx.work), "run-state": str(ctx.work / "run-state.json"),
             "dataset": str(ctx.dataset_dir)}
    if ctx.spec.subset is not None:
        found["subset"] = str(ctx.subset_dir)
    found["configs"] = str(ctx.cfg_dir)
    started = ctx.state.started.get("train")
    train = ctx.state.stages.get("train")
    run = started["run_dir"] if started else str(train.detail["run_dir"]) if train else None
    if run is not None:  # the newest: a run left running or stopped before the older finished one
        found["run"] = run
    summary = ctx.state.stages.get("summarize")
    if summary is not None and not started and summary.detail.get("run_dir", run) == run:
        found["summary"] = str(summary.detail["out"])
    return found


def run_chain(loaded: Loaded, *, first: str | None = None, last: str | None = None,
              force: tuple[str, ...] = (), dry_run: bool = False, detach: bool = False,
              say: Callable[[str], None] = print, progress: bool = False,
              on_progress: Callable[[dict], None] | None = None) -> RunReport:
    """Run (or, with `dry_run`, plan) the stages of a loaded pipeline file.

    Example: `run_chain(load_runfile("cfg/demo.yaml"), dry_run=True).steps[0].action`.
    """
    spec = loaded.spec
    if spec is None:
        raise ValueError("run_chain needs a loaded pipeline file")
    ctx = Context(loaded, spec, read_state(Path(spec.work)), say=say, progress=progress,
                  detach=detach, forced=frozenset(force), on_progress=on_progress)
    report = RunReport(str(loaded.file), spec.work)
    cascade: str | None = None
    in_range = first is None
    past: Step | None = None  # what every stage after a stop is: not reached, or past --until
    at = ORDER.index
    warnings = []  # train's checks come first: a bad engine argument must not wait for convert
    if at(first or ORDER[0]) <= at("train") <= at(last or ORDER[-1]):
        warnings = check_train_section(ctx, dry_run)
    for name in ORDER:
        in_range = in_range or name == first
        if past is not None:
            step = Step(name, past.action, past.why)
        elif name == "subset" and spec.subset is None:
            step = Step(name, "absent", "no subset section: configs reads the converted dataset")
        elif not in_range:
            step = Step(name, "outside", f"before --from {first}")
        else:
            step = _decide_step(ctx, STAGES[name], cascade, dry_run)
            if name == "train" and warnings:
                step.why += "; warning: " + "; ".join(warnings)
            say(_line(step, dry_run))
            if step.action == "run":
                cascade = name
                if not dry_run:
                    report.code, stopped = _execute(ctx, STAGES[name], step)
                    if stopped:
                        past = Step("", "not reached", f"{name} stopped the chain")
            elif name == "train" and not dry_run:  # found finished: nothing after it is redone for it
                record_train(ctx, ctx.train_plan)  # type: ignore[arg-type]
                cascade = None
        if past is None and name == last:
            past = Step("", "outside", f"after --until {last}")
        report.steps.append(step)
    report.locations = locations(ctx)
    return report


def _decide_step(ctx: Context, stage: Stage, cascade: str | None, dry_run: bool) -> Step:
    """The step of a stage in range. The train stage plans its run folder (new, resumed,
    continued, finished) once the stages before it have run; a dry run whose earlier stages
    would rewrite the configs cannot know it yet."""
    if stage.name == "train" and not (dry_run and cascade):
        plan = plan_train(ctx)
        ctx.train_plan = plan
        return Step("train", plan.action, plan.text)
    action, why = decide(ctx, stage, cascade, dry_run)
    if action == "run" and (note := stage.note(ctx)):
        why += f"; {note}"
    return Step(stage.name, action, why)


def _line(step: Step, dry_run: bool) -> str:
    """One line per stage: `subset: run (options changed: subset.spread)`; the train stage's
    plan says itself (`train: resumes RUN (killed at 3/15 epochs) with workers 2 -> 8`)."""
    if step.stage == "train" and step.action == "run" and not step.why.startswith("after "):
        return f"train: {step.why}"
    word = "skipped" if step.action == "skip" else step.action if dry_run else "runs"
    return f"{step.stage}: {word} ({step.why})"


def _execute(ctx: Context, stage: Stage, step: Step) -> tuple[int, bool]:
    """Run one stage and record its success; (exit code, whether the chain stops)."""
    options = _plain(stage.options(ctx))
    tool = stage.tool(ctx)
    start = time.monotonic()
    outcome = stage.run(ctx)
    step.seconds = round(time.monotonic() - start, 2)
    step.result = outcome.text
    ctx.say(f"  {outcome.text}" if outcome.text else "  done")
    if outcome.code or outcome.pending:
        return outcome.code, True
    ctx.state.stages[stage.name] = StageRecord(
        options=options, inputs=stage.inputs(ctx), tool=tool,  # type: ignore[arg-type]
        outputs=outcome.outputs, detail=outcome.detail, finished_at=now(), seconds=step.seconds)
    ctx.state.started.pop(stage.name, None)
    write_state(ctx.work, ctx.state)
    return 0, False
