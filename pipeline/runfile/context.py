"""What every stage of a run sees: the spec, the work folder, the run-state, and where
each stage's outputs live.

    WORK/run-state.json     digests of each stage's last success
    WORK/subset/            the class subset (when the file has a `subset` section)
    WORK/configs/           .names/.data/.cfg, train.txt/valid.txt, data.yaml, backup/
    WORK/runs/<backend>-<digest>/   the training's run folder (`status`, `summarize` read it)
    WORK/summary/<run>/     summary.json, metrics.csv, report.md, chart.png

The converted dataset stays where `convert` puts it: labels beside the images, the
dataset folder (manifest, lists) at `source.dataset` or `<download>/yolo`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import UserError
from pipeline.runfile.load import Loaded
from pipeline.runfile.schema import RunFile
from pipeline.runfile.state import RunState, StageRecord


@dataclass
class Outcome:
    """What a stage did: output digests, details kept in the record, one line for people.

    `code` 0 is success; 1 a failed stage (e.g. the training failed); 130 stopped;
    `pending` means the stage was left running (a detached training).
    """

    outputs: dict[str, str] = field(default_factory=dict)
    detail: dict[str, object] = field(default_factory=dict)
    text: str = ""
    code: int = 0
    pending: bool = False


@dataclass
class Context:
    """The loaded file, the work folder and its run-state, and how to talk to the user."""

    loaded: Loaded
    spec: RunFile
    state: RunState
    say: Callable[[str], None] = print
    progress: bool = False
    detach: bool = False
    forced: frozenset[str] = frozenset()
    on_progress: Callable[[dict], None] | None = None
    #: The train stage's plan (`training.TrainPlan`), made when its turn comes.
    train_plan: object | None = None

    @property
    def work(self) -> Path:
        """The work folder (absolute)."""
        return Path(self.spec.work)

    @property
    def dataset_dir(self) -> Path:
        """The converted dataset's folder (manifest.json, lists, names)."""
        src = self.spec.source
        if src.dataset:
            return Path(src.dataset)
        if src.kind == "coco":
            return Path(src.files[0].images).parent / "yolo"
        return Path(src.labels_root or src.path or "") / "yolo"

    @property
    def subset_dir(self) -> Path:
        """Where the subset is built."""
        return self.work / "subset"

    @property
    def train_input(self) -> Path:
        """The dataset `configs` reads: the subset, or the converted dataset without one."""
        return self.subset_dir if self.spec.subset is not None else self.dataset_dir

    @property
    def cfg_dir(self) -> Path:
        """Where `configs` writes."""
        return self.work / "configs"

    def record(self, stage: str) -> StageRecord:
        """The last success of an earlier stage; a UserError when there is none."""
        rec = self.state.stages.get(stage)
        if rec is None:
            raise UserError(f"stage {stage} has not run in {self.work} yet",
                            "run without --from, or --from an earlier stage")
        return rec

    def cfg_files(self) -> dict[str, str]:
        """The files `configs` wrote (names, data, cfg, train, valid, yaml, backup)."""
        return dict(self.record("configs").detail["files"])  # type: ignore[arg-type]
