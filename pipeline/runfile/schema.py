"""The pipeline file's schema: one msgspec Struct per section, unknown keys refused.

Defaults come from the stages' own Options (ConvertOptions, SubsetOptions, ...): a key
left out means "what the command would do". Paths are resolved by `load.py` (relative to
the pipeline file, or to the current folder for `--set`); `PATH_KEYS` lists them.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import msgspec

from pipeline.convert.engine import ConvertOptions
from pipeline.dataset.subset import SubsetOptions
from pipeline.train.options import TrainOptions

_TRAIN = {f.name: f.default for f in dataclasses.fields(TrainOptions)}


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Every section: unknown keys are errors."""


class Synth(_Section):
    """`source.synth`: a Kaggle-layout tree of drawn objects, generated at `source.path` when
    it is missing, only with `generate: true` (a typo in the path is an error otherwise)."""

    generate: bool = False
    classes: int = 12
    annotated: int = 60
    unannotated: int = 0
    val: int = 240
    seed: int = 0


class CocoFile(_Section):
    """One COCO instances JSON and the folder its `file_name`s are relative to."""

    json: str
    images: str
    split: str | None = None


class Source(_Section):
    """`source`: the download and how it is converted (`convert imagenet|coco|voc`)."""

    kind: Literal["imagenet", "coco", "voc"]
    path: str | None = None
    files: list[CocoFile] = []
    splits: list[str] | None = None
    annotations: Literal["xml", "csv"] = "xml"
    unannotated: Literal["skip", "empty"] = ConvertOptions.unannotated  # type: ignore[assignment]
    difficult: Literal["keep", "skip"] = ConvertOptions.difficult  # type: ignore[assignment]
    labels_root: str | None = None
    ids: Literal["contiguous", "coco80", "original"] = "contiguous"
    crowd: Literal["skip", "keep"] = "skip"
    classes_file: str | None = None
    darknet_labels: bool = False
    dataset: str | None = None
    workers: int | None = None
    synth: Synth | None = None


class Subset(_Section):
    """`subset`: the class rule and how the subset is built (`subset`)."""

    top: int | None = None
    classes: list[str] = []
    spread: int | None = None
    min_images: int = 0
    exclude: list[str] = []
    max_per_class: int | None = None
    val_fraction: float | None = None
    link: Literal["symlink", "hardlink", "copy"] = SubsetOptions.link  # type: ignore[assignment]
    unannotated: Literal["skip", "empty"] = SubsetOptions.unannotated  # type: ignore[assignment]
    seed: int = SubsetOptions.seed
    workers: int | None = None


class Configs(_Section):
    """`configs`: the darknet template and the values put into the cfg (`configs`)."""

    template: str = "yolov3-tiny"
    name: str | None = None
    width: int | None = None
    height: int | None = None
    batch: int | None = None
    subdivisions: int | None = None
    max_batches: int | None = None
    learning_rate: float | None = None
    burn_in: int | None = None
    random: int | None = None
    fork: Literal["pjreddie", "alexeyab", "hank"] | None = None


class Train(_Section):
    """`train`: backend, model and engine options, watchdog (`train`)."""

    backend: Literal["ultralytics", "darknet"] = _TRAIN["backend"]
    name: str | None = _TRAIN["name"]
    model: str = _TRAIN["model"]
    epochs: int = _TRAIN["epochs"]
    imgsz: int = _TRAIN["imgsz"]
    batch: int = _TRAIN["batch"]
    device: str | int = _TRAIN["device"]
    workers: int | None = _TRAIN["workers"]
    seed: int = _TRAIN["seed"]
    extra: dict[str, str | int | float | bool] = {}
    darknet: str = _TRAIN["darknet"]
    fork: Literal["pjreddie", "alexeyab", "hank"] | None = None
    weights: str | None = None
    gpus: str | int | None = _TRAIN["gpus"]
    on_nan: Literal["lower-lr", "restart", "stop"] = _TRAIN["on_nan"]
    map_each: bool = _TRAIN["map_each"]
    keep_weights: int = _TRAIN["keep_weights"]
    max_restarts: int = _TRAIN["max_restarts"]
    explode_factor: float = _TRAIN["explode_factor"]
    stall_minutes: float = _TRAIN["stall_minutes"]
    sample_seconds: float = _TRAIN["sample_seconds"]
    notify: str | None = _TRAIN["notify"]
    tensorboard: bool = _TRAIN["tensorboard"]


class Summarize(_Section):
    """`summarize`: where the summary of the training run goes."""

    out: str | None = None


class Evaluate(_Section):
    """`evaluate`: the per-class evaluation of the trained weights (`evaluate`)."""

    split: Literal["val", "test"] = "val"
    weights: Literal["best", "last"] = "best"
    out: str | None = None


class RunFile(_Section):
    """A whole pipeline file."""

    work: str
    source: Source
    subset: Subset | None = None
    configs: Configs = msgspec.field(default_factory=Configs)
    train: Train = msgspec.field(default_factory=Train)
    summarize: Summarize = msgspec.field(default_factory=Summarize)
    evaluate: Evaluate = msgspec.field(default_factory=Evaluate)


#: Keys holding paths. `files.json` / `files.images` are inside each entry of source.files.
PATH_KEYS = ("work", "source.path", "source.labels_root", "source.classes_file", "source.dataset",
             "source.files.json", "source.files.images", "summarize.out", "train.weights",
             "evaluate.out")
#: Keys that are a path when they hold a '/', else a name looked up by the stage.
NAME_OR_PATH_KEYS = ("configs.template", "train.model", "train.darknet")
