"""Which darknet will run a cfg, what its parser knows, and where cfg templates are.

Three forks matter: pjreddie's original (the Debian package, git 2018-09-14), AlexeyAB's,
and hank-ai's Darknet V3-V5 (AlexeyAB's maintained successor, a C++ rewrite).
pjreddie's parser lacks the layers, activations and keys of the yolov4 era: an unknown
section prints "Type not recognized" and breaks the network, an unknown activation prints
"Couldn't find activation function mish, going with ReLU", and an unknown key prints
"Unused field" (in `[net]`: nothing) and is ignored.

A binary is told apart by `darknet version` (hank-ai prints `Darknet V<k> ...`; the others
exit 0 with "Not an option: version") and then by the strings compiled into it (its
parser's section and key names): AlexeyAB's contains `[Gaussian_yolo]` and `scale_x_y`,
pjreddie's has `[yolo]` without them. `--fork NAME` overrides the detection; `--darknet
PATH` always names a binary.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import UserError, closest

FORKS = ("pjreddie", "alexeyab", "hank")
DEBIAN_CFG_DIR = Path("/usr/share/darknet/cfg")


def _words(text: str) -> list[str]:
    return text.split()


#: Keys every layer reads in pjreddie's `parse_network_cfg` (checked: no "Unused field").
_COMMON = frozenset(
    _words("onlyforward stopbackward dontsave dontload numload dontloadscales learning_rate")
)
#: Keys pjreddie's 2018 parser reads per section type (seen with the Debian binary: any
#: other key prints "Unused field"). Types missing here are checked for the type only.
PJREDDIE_KEYS: dict[str, frozenset[str]] = {
    t: frozenset(_words(keys)) | _COMMON
    for types, keys in (
        (("[convolutional]", "[conv]"),
         "filters size stride pad padding groups activation batch_normalize binary xnor "
         "flipped dot"),
        (("[deconvolutional]", "[deconv]"),
         "filters size stride pad padding activation batch_normalize"),
        (("[connected]", "[conn]"), "output activation batch_normalize"),
        (("[maxpool]", "[max]"), "size stride padding"),
        (("[avgpool]", "[avg]"), ""),
        (("[dropout]",), "probability"),
        (("[route]",), "layers"),
        (("[shortcut]",), "from activation alpha beta"),
        (("[upsample]",), "stride scale"),
        (("[reorg]",), "stride reverse flatten extra"),
        (("[yolo]",), "classes num mask anchors max jitter ignore_thresh truth_thresh random map"),
        (("[region]",),
         "coords classes num log sqrt softmax background max jitter rescore thresh classfix "
         "absolute random coord_scale object_scale noobject_scale mask_scale class_scale "
         "bias_match tree map anchors"),
        (("[detection]",),
         "coords classes rescore num side softmax sqrt max jitter object_scale "
         "noobject_scale class_scale coord_scale random reorg forced"),
    )
    for t in types
}
#: `[net]` keys pjreddie reads (`parse_net_options`); others are ignored without a word.
PJREDDIE_NET_KEYS = frozenset(_words(
    "batch learning_rate momentum decay subdivisions time_steps notruth random adam B1 B2 eps "
    "height width channels inputs max_crop min_crop max_ratio min_ratio center clip angle "
    "aspect saturation exposure hue policy burn_in power step scale steps scales gamma "
    "max_batches"
))
_PJ_TYPES = _words(
    "[net] [network] [convolutional] [conv] [deconvolutional] [deconv] [local] [activation] "
    "[logistic] [l2norm] [rnn] [gru] [lstm] [crnn] [connected] [conn] [crop] [cost] "
    "[region] [yolo] [iseg] [detection] [softmax] [soft] [normalization] [lrn] [batchnorm] "
    "[maxpool] [max] [reorg] [avgpool] [avg] [route] [upsample] [shortcut] [dropout]"
)
_AB_EXTRA_TYPES = _words(
    "[Gaussian_yolo] [sam] [scale_channels] [conv_lstm] [history] [implicit] "
    "[contrastive] [empty] [silence] [local_avgpool] [local_avg] [reorg3d]"
)
_PJ_ACTIVATIONS = _words("logistic loggy relu elu selu relie plse hardtan lhtan linear ramp leaky "
                   "tanh stair")
_AB_EXTRA_ACTIVATIONS = _words("mish hard_mish swish relu6 gelu revleaky normalize_channels "
                         "normalize_channels_softmax normalize_channels_softmax_maxval")
_PJ_POLICIES = _words("random poly constant step exp sigmoid steps")
#: Section types hank-ai's parser accepts (research darknet-forks.md §6; no [batchnorm], [gru]).
_HANK_TYPES = _words(
    "[net] [network] [convolutional] [conv] [maxpool] [max] [upsample] [connected] [conn] [crnn] "
    "[rnn] [local_avgpool] [lstm] [reorg3d] [avgpool] [avg] [yolo] [cost] [region] [Gaussian_yolo] "
    "[contrastive] [route] [shortcut] [softmax] [soft] [scale_channels] [sam] [dropout] [local_avg] "
    "[empty] [silence]"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ForkInfo:
    """What one fork's cfg parser accepts."""

    name: str
    section_types: frozenset[str]
    activations: frozenset[str]
    policies: frozenset[str]
    #: Per-type keys it reads (None: not checked for this fork).
    keys: dict[str, frozenset[str]] | None
    net_keys: frozenset[str] | None
    reads_crlf: bool


FORK_INFO = {
    "pjreddie": ForkInfo(
        name="pjreddie", section_types=frozenset(_PJ_TYPES),
        activations=frozenset(_PJ_ACTIVATIONS), policies=frozenset(_PJ_POLICIES),
        keys=PJREDDIE_KEYS, net_keys=PJREDDIE_NET_KEYS, reads_crlf=False,
    ),
    "alexeyab": ForkInfo(
        name="alexeyab", section_types=frozenset(_PJ_TYPES + _AB_EXTRA_TYPES),
        activations=frozenset(_PJ_ACTIVATIONS + _AB_EXTRA_ACTIVATIONS),
        policies=frozenset([*_PJ_POLICIES, "sgdr"]), keys=None, net_keys=None, reads_crlf=True,
    ),
    "hank": ForkInfo(
        name="hank", section_types=frozenset(_HANK_TYPES),
        activations=frozenset(_PJ_ACTIVATIONS + _AB_EXTRA_ACTIVATIONS),
        policies=frozenset([*_PJ_POLICIES, "sgdr"]), keys=None, net_keys=None, reads_crlf=True,
    ),
}
_HANK_VERSION = re.compile(r"Darknet V\d+")

_AB_MARKERS = (b"[Gaussian_yolo]", b"scale_x_y", b"dont_show")
_PJ_MARKERS = (b"[yolo]", b"First section must be [net] or [network]")


@dataclass(frozen=True, slots=True)
class DetectedFork:
    """The fork of a binary and why we think so."""

    fork: str | None
    binary: str | None
    evidence: str


def find_darknet() -> str | None:
    """The darknet that would run: `$DARKNET_HOME/darknet`, else `darknet` on PATH."""
    home = os.environ.get("DARKNET_HOME")
    if home and os.access(Path(home) / "darknet", os.X_OK):
        return str(Path(home) / "darknet")
    return shutil.which("darknet")


def fork_of_bytes(data: bytes) -> str | None:
    """The fork whose parser strings are in `data` (a binary or library), or None.

    Example: bytes containing b"scale_x_y" -> "alexeyab".
    """
    if any(m in data for m in _AB_MARKERS):
        return "alexeyab"
    if all(m in data for m in _PJ_MARKERS):
        return "pjreddie"
    return None


def detect_fork(binary: str | Path | None = None) -> DetectedFork:
    """Detect the fork of `binary` (default: `find_darknet()`): `darknet version`, then its strings.

    The parser may live in a shared `libdarknet.so`; those listed by `ldd` are read too.
    Example: `detect_fork("/usr/bin/darknet").fork` -> "pjreddie" (the Debian package).
    """
    path = str(binary) if binary else find_darknet()
    if not path:
        return DetectedFork(None, None, "no darknet binary on PATH or in $DARKNET_HOME")
    if (line := _hank_version(path)) is not None:
        return DetectedFork("hank", path, f"`darknet version` printed {line!r}")
    for candidate in [path, *_darknet_libraries(path)]:
        try:
            fork = fork_of_bytes(Path(candidate).read_bytes())
        except OSError as exc:
            return DetectedFork(None, path, f"cannot read {candidate}: {exc.strerror}")
        if fork:
            return DetectedFork(fork, path, f"parser strings found in {candidate}")
    return DetectedFork(None, path, f"no known parser strings in {path}")


def _hank_version(binary: str) -> str | None:
    """hank-ai's `Darknet V<k> ...` line from `darknet version`, or None (other forks, errors)."""
    try:
        out = subprocess.run([binary, "version"], capture_output=True, text=True, timeout=20,
                             stdin=subprocess.DEVNULL, errors="replace")
    except (OSError, subprocess.SubprocessError):
        return None
    for line in (out.stdout + out.stderr).splitlines():
        if _HANK_VERSION.search(line):
            return re.sub(r"\x1b\[[0-9;]*m", "", line).strip()[:120]
    return None


def resolve_binary(name_or_path: str) -> str:
    """The absolute path of a darknet binary (a path, or a name on PATH) that exists and is
    executable; UserError otherwise. Relative paths are taken from the current folder.

    Example: `resolve_binary("darknet")` -> "/usr/bin/darknet".
    """
    if os.sep in name_or_path or name_or_path.startswith("."):
        path = os.path.abspath(name_or_path)
    else:
        path = shutil.which(name_or_path) or ""
        if not path:
            raise UserError(f"--darknet {name_or_path}: not found on PATH",
                            "give the binary's path, e.g. --darknet ~/darknet/darknet")
    if not os.path.exists(path):
        near = closest(Path(path).name, [p.name for p in Path(path).parent.glob("*")]
                       if Path(path).parent.is_dir() else [])
        raise UserError(f"--darknet {name_or_path}: no such file",
                        f"did you mean {Path(path).parent / near[0]}?" if near else None)
    if os.path.isdir(path):
        inner = Path(path) / "darknet"
        raise UserError(f"--darknet {name_or_path} is a folder",
                        f"did you mean {inner}?" if inner.is_file() else None)
    if not os.access(path, os.X_OK):
        raise UserError(f"--darknet {name_or_path}: not executable", f"chmod +x {path}")
    return path


def _darknet_libraries(binary: str) -> list[str]:
    try:
        out = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [ln.split("=>")[1].split("(")[0].strip() for ln in out.splitlines()
            if "darknet" in ln and "=>" in ln]


def binary_runs(binary: str) -> None:
    """UserError unless `binary` starts (`darknet version`, which every fork answers with exit 0)."""
    try:
        subprocess.run([binary, "version"], capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    except OSError as exc:
        raise UserError(f"--darknet {binary} cannot be run: {exc.strerror}",
                        "is it a darknet binary built for this machine?") from None
    except subprocess.TimeoutExpired:
        raise UserError(f"--darknet {binary}: `darknet version` did not answer in 30 s") from None


def choose_fork(given: str | None, binary: str | None = None) -> tuple[str, str]:
    """The fork to check for and why: `given` (--fork), else the one of `binary` (--darknet,
    default: `find_darknet()`), else alexeyab.

    Example: `choose_fork("pjreddie")` -> ("pjreddie", "given (--fork)").
    """
    if given:
        return given, "given (--fork)"
    found = detect_fork(binary)
    if found.fork:
        return found.fork, f"detected from {found.binary} ({found.evidence})"
    return "alexeyab", f"{found.evidence}; assuming alexeyab (pass --fork to choose)"


def template_dirs() -> list[Path]:
    """Where template names are looked up: `$DARKNET_HOME/cfg`, then the Debian folder."""
    dirs = []
    if os.environ.get("DARKNET_HOME"):
        dirs.append(Path(os.environ["DARKNET_HOME"]) / "cfg")
    dirs.append(DEBIAN_CFG_DIR)
    return dirs


def find_template(name_or_path: str) -> Path:
    """A template given as a path, or a name (`yolov3-tiny`, `yolov3-tiny.cfg`) looked up
    in `template_dirs()`. Example: `find_template("yolov3-tiny")` ->
    /usr/share/darknet/cfg/yolov3-tiny.cfg.
    """
    p = Path(name_or_path)
    if p.is_file():
        return p.resolve()
    if "/" not in name_or_path:
        name = name_or_path if name_or_path.endswith(".cfg") else f"{name_or_path}.cfg"
        for d in template_dirs():
            if (d / name).is_file():
                return d / name
    looked = ", ".join(str(d) for d in template_dirs())
    near = closest(Path(name_or_path).name.removesuffix(".cfg"), template_names())
    hint = f"closest: {', '.join(near)}" if near else "give --template PATH or set DARKNET_HOME"
    raise UserError(f"unknown template {name_or_path!r}: not a file, not in {looked}", hint)


def template_names() -> list[str]:
    """The template names `find_template` knows (`yolov3-tiny` for yolov3-tiny.cfg), sorted."""
    names: set[str] = set()
    for d in template_dirs():
        try:
            names.update(p.stem for p in d.glob("*.cfg") if p.is_file())
        except OSError:  # an unreadable folder offers no names
            continue
    return sorted(names)
