"""What a training is asked to do (`TrainOptions`), checked before anything starts.

Nothing here imports torch or Ultralytics: the engine's argument list is read from its
`cfg/default.yaml`, and model names are resolved against its `cfg/models` folder.
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from pipeline.errors import UserError
from pipeline.train.watchdog import ON_NAN_CHOICES

BACKENDS = ("ultralytics", "darknet")
#: Keys `train` sets itself: passing them after `--` would fight the supervisor.
RESERVED_ENGINE_KEYS = frozenset({"data", "model", "resume", "save_dir", "project", "name",
                                  "exist_ok", "epochs", "imgsz", "batch", "device", "workers",
                                  "seed", "mode", "task"})


@dataclass(kw_only=True, slots=True)
class TrainOptions:
    """Everything `train` needs; defaults are the CLI's."""

    cfgdir: Path
    out: Path
    backend: str = "ultralytics"
    name: str | None = None
    model: str = "yolov8n.yaml"
    epochs: int = 100
    imgsz: int = 640
    batch: int = 16
    #: "auto": the first GPU when one is visible, else the CPU.
    device: str = "auto"
    #: None: what Ultralytics would pick (cores per GPU, at most 8).
    workers: int | None = None
    seed: int = 0
    extra: dict[str, str] = field(default_factory=dict)
    darknet: str = "darknet"
    #: darknet: the fork (None: detected from the binary).
    fork: str | None = None
    #: darknet: start weights for the first attempt (a partial .conv.N or a full .weights).
    weights: str | None = None
    #: darknet (AlexeyAB, hank-ai): compute mAP on the valid list during training (-map).
    map_each: bool = True
    #: darknet: periodic <cfg>_<N>.weights files kept (newest first); 0 keeps all.
    keep_weights: int = 3
    gpus: str | None = None
    on_nan: str = "lower-lr"
    max_restarts: int = 2
    explode_factor: float = 10.0
    stall_minutes: float = 30.0
    #: Seconds between resource samples (RUN/resources.jsonl).
    sample_seconds: float = 10.0
    #: A shell command run on finished, failed, gave-up and restart (never fatal).
    notify: str | None = None
    #: TensorBoard scalars into RUN/tensorboard (`yolo-pipeline board RUN` shows them).
    tensorboard: bool = False

    def as_dict(self) -> dict:
        """JSON-ready form (paths as strings)."""
        d = asdict(self)
        d["cfgdir"], d["out"] = str(self.cfgdir), str(self.out)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainOptions:
        """Inverse of `as_dict` (run.json -> options)."""
        known = {f for f in cls.__dataclass_fields__}  # a run.json from an older version
        return cls(**{**{k: v for k, v in d.items() if k in known},
                      "cfgdir": Path(d["cfgdir"]), "out": Path(d["out"])})


def resolve_auto(opts: TrainOptions) -> None:
    """Fill the machine-dependent defaults: device "auto" -> "0" with a visible GPU, else "cpu";
    workers None -> what Ultralytics itself would use (CPU cores per GPU, at most 8)."""
    if opts.device == "auto":
        opts.device = "0" if visible_gpus() else "cpu"
    if opts.workers is None:
        gpus = len(opts.device.split(",")) if re.fullmatch(r"\d+(,\d+)*", opts.device) else 1
        opts.workers = min((os.cpu_count() or 1) // gpus, 8)


def check_options(opts: TrainOptions) -> None:
    """Refuse what cannot work, with one line each (UserError); machine defaults filled first."""
    resolve_auto(opts)
    if opts.backend not in BACKENDS:
        raise UserError(f"--backend {opts.backend!r}: choose one of {', '.join(BACKENDS)}")
    if opts.on_nan not in ON_NAN_CHOICES:
        raise UserError(f"--on-nan {opts.on_nan!r}: choose one of {', '.join(ON_NAN_CHOICES)}")
    for key, value, low in (("--epochs", opts.epochs, 1), ("--imgsz", opts.imgsz, 32),
                            ("--batch", opts.batch, 1), ("--workers", opts.workers, 0),
                            ("--max-restarts", opts.max_restarts, 0)):
        if value < low:
            raise UserError(f"{key} {value}: must be at least {low}")
    if opts.explode_factor <= 1:
        raise UserError(f"--explode-factor {opts.explode_factor}: must be above 1")
    if opts.sample_seconds <= 0:
        raise UserError(f"--sample-seconds {opts.sample_seconds}: must be positive")
    if opts.stall_minutes <= 0:
        raise UserError(f"--stall-minutes {opts.stall_minutes}: must be positive")
    if not opts.cfgdir.is_dir():
        raise UserError(f"{opts.cfgdir}: no such folder", "give the folder `configs` wrote")
    if not re.fullmatch(r"cpu|mps|\d+(,\d+)*", opts.device):
        raise UserError(f"--device {opts.device!r}: use cpu, a GPU index (0) or a list (0,1)")
    if opts.backend == "ultralytics" and re.fullmatch(r"\d+(,\d+)*", opts.device):
        check_gpus("--device", [int(i) for i in opts.device.split(",")])
    if opts.gpus is not None and not re.fullmatch(r"\d+(,\d+)*", opts.gpus):
        raise UserError(f"--gpus {opts.gpus!r}: use a GPU index list such as 0,1")
    if opts.backend == "ultralytics":
        check_engine_args(opts.extra)
    elif opts.extra:
        keys = ", ".join(sorted(opts.extra))
        raise UserError(f"engine arguments after -- ({keys}) are Ultralytics arguments; darknet takes "
                        "its settings from the cfg",
                        "set them in the cfg: `yolo-pipeline configs ... --learning-rate/--burn-in/"
                        "--batch/--max-batches`, or edit the .cfg and check it with check-cfg")
    if opts.keep_weights < 0:
        raise UserError(f"--keep-weights {opts.keep_weights}: must be 0 (keep all) or more")


def check_cfgdir(opts: TrainOptions) -> None:
    """The configs folder holds what the engine trains from; else a UserError that names the
    folder inside it that does (`train data/in10` -> "did you mean data/in10/cfg?")."""
    wanted = "data.yaml" if opts.backend == "ultralytics" else "*.data"
    if not any(opts.cfgdir.glob(wanted)):
        inside = sorted(p.parent for p in opts.cfgdir.glob(f"*/{wanted}"))
        raise UserError(f"{opts.cfgdir} holds no {wanted}: it is not the folder `configs` wrote",
                        f"did you mean {inside[0]}?" if inside else "run `yolo-pipeline configs` first")


def visible_gpus() -> int:
    """CUDA GPUs this process may use, without importing torch: the NVIDIA driver's list of
    GPUs, narrowed by CUDA_VISIBLE_DEVICES."""
    try:
        count = len(os.listdir("/proc/driver/nvidia/gpus"))
    except OSError:
        count = 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [v for v in (x.strip() for x in visible.split(",")) if v and not v.startswith("-")]
        count = min(count, len(ids))
    return count


def check_gpus(key: str, indices: list[int]) -> None:
    """UserError (before anything is written) for a GPU index this machine does not have."""
    count = visible_gpus()
    if count == 0:
        raise UserError(f"{key} {','.join(map(str, indices))}: no CUDA GPU is visible on this machine",
                        "train on the CPU with --device cpu")
    if max(indices) >= count:
        raise UserError(f"{key} {','.join(map(str, indices))}: only {count} GPU(s) visible "
                        f"(indices 0..{count - 1})")


def ultralytics_home() -> Path:
    """The installed Ultralytics package folder (found without importing it)."""
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or spec.origin is None:
        raise UserError("ultralytics is not installed", "pip install ultralytics")
    return Path(spec.origin).parent


@functools.cache
def engine_defaults() -> dict:
    """Every argument Ultralytics' trainer accepts, with its default (its default.yaml)."""
    with open(ultralytics_home() / "cfg" / "default.yaml", encoding="utf-8") as f:
        return yaml.safe_load(f)


def engine_value(text: str) -> object:
    """A `key=value` value typed as Ultralytics' CLI does: `1e9` -> 1e9, `0` -> 0,
    `true` -> True, `none` -> None, anything else stays a string."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def parse_engine_args(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """`["lr0=0.02", "mosaic=0"]` -> `{"lr0": "0.02", "mosaic": "0"}`; a bad item is a UserError."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"engine argument {item!r}: write key=value (e.g. lr0=0.02)")
        out[key.strip()] = value.strip()
    return out


def check_engine_args(extra: dict[str, str]) -> None:
    """Every key must be one of the engine's, and not one `train` sets itself."""
    defaults = engine_defaults()
    known = sorted(defaults)
    for key, text in extra.items():
        if key in RESERVED_ENGINE_KEYS:
            raise UserError(f"engine argument {key}=: set by `train` itself; use its --{key} option"
                            if key in ("epochs", "imgsz", "batch", "device", "workers", "seed", "model")
                            else f"engine argument {key}=: set by `train` itself")
        if key not in defaults:
            near = difflib.get_close_matches(key, known, n=3)
            hint = f"did you mean {', '.join(near)}?" if near else "see Ultralytics' default.yaml"
            raise UserError(f"engine argument {key!r} is not an Ultralytics train argument", hint)
        default, value = defaults[key], engine_value(text)
        numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
        if numeric and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise UserError(f"engine argument {key}={text}: a number is expected (default {default})")


def resolve_model(model: str) -> str:
    """A model the worker can load offline: a local file (absolute), or a model YAML name.

    `yolov8n.yaml` is found in Ultralytics' own cfg/models (scale letter dropped, as the
    engine does); a bare `yolov8n.pt` that is not a local file would be downloaded, so it is
    refused.
    """
    path = Path(model).expanduser()
    if path.is_file():
        return str(path.resolve())
    if path.suffix in (".yaml", ".yml") and len(path.parts) == 1:
        models = ultralytics_home() / "cfg" / "models"
        unscaled = re.sub(r"(\d+)([nslmx])(.+)?$", r"\1\3", path.stem)
        names = {p.stem for p in models.rglob("*.yaml")}
        if path.stem in names or unscaled in names:
            return model
        near = difflib.get_close_matches(path.stem, sorted(names), n=3)
        raise UserError(f"--model {model}: no such model YAML in Ultralytics' cfg/models",
                        f"did you mean {', '.join(near)}?" if near else None)
    raise UserError(f"--model {model}: no such file",
                    "give a local .pt to fine-tune or a model YAML such as yolov8n.yaml "
                    "(nothing is downloaded)")
