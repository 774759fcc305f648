"""Read a pipeline file: YAML with line numbers, `--set` overrides, schema, paths.

Every problem is one `PipelineError` naming where the value came from and the key:
`cfg/demo.yaml:12: train.epoch: unknown key (did you mean epochs?)` or
`--set train.epochs=ten: train.epochs: expected int, got str`. Nothing is written here.
"""

from __future__ import annotations

import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import yaml

from pipeline.errors import PipelineError, UserError, closest
from pipeline.io import read_text
from pipeline.runfile.schema import NAME_OR_PATH_KEYS, PATH_KEYS, RunFile

_COMPONENT = re.compile(r"\.?[^.\[]+|\[\d+\]")
#: Keys of `source` that only one kind reads.
KIND_KEYS = {
    "imagenet": ("path", "splits", "annotations", "labels_root", "synth"),
    "coco": ("files", "ids", "crowd"),
    "voc": ("path", "splits", "classes_file", "darknet_labels"),
}


@dataclass
class Loaded:
    """A validated pipeline file: the spec (absolute paths) and where each key came from."""

    file: Path
    lines: dict[str, int] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    spec: RunFile | None = None

    def where(self, key: str) -> str:
        """`FILE:LINE` of a key (or of its closest parent), or the `--set` that gave it."""
        parts = _COMPONENT.findall(key)
        while parts:
            dotted = "".join(parts).lstrip(".")
            if dotted in self.origins:
                return self.origins[dotted]
            if dotted in self.lines:
                return f"{self.file}:{self.lines[dotted]}"
            parts.pop()
        return str(self.file)

    def error(self, key: str, reason: str) -> PipelineError:
        """A one-line error about `key`."""
        return PipelineError(f"{self.where(key)}: {key}: {reason}")


def load_runfile(path: str | Path, sets: tuple[str, ...] = ()) -> Loaded:
    """Read, override, validate and resolve a pipeline file.

    Example: `load_runfile("cfg/demo.yaml", ("train.epochs=3",)).spec.train.epochs` -> 3.
    """
    file = Path(path)
    text = read_text(file, "pipeline")
    data, lines = parse_yaml(text, file)
    loaded = Loaded(file, lines)
    for item in sets:
        apply_set(data, item, loaded)
    check_keys(data, RunFile, "", loaded)
    resolve_paths(data, file.parent, loaded)
    try:
        spec = msgspec.convert(data, RunFile)
    except msgspec.ValidationError as exc:
        reason, _, at = str(exc).partition(" - at `$")
        key = at.rstrip("`").lstrip(".").replace("[...]", "")
        raise loaded.error(key or "(top)", reason.replace("`", "").replace("Expected", "expected")) from None
    check_spec(spec, loaded)
    loaded.spec = spec
    return loaded


def parse_yaml(text: str, file: Path) -> tuple[dict, dict[str, int]]:
    """The document as Python data and the line of every key (`train.epochs` -> 12)."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise PipelineError(f"{file}{line}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    except RecursionError:  # PyYAML recurses per nesting level
        raise PipelineError(f"{file}: not valid YAML: nested too deeply") from None
    except ValueError as exc:  # an integer of over 4300 digits
        raise PipelineError(f"{file}: unreadable YAML value: {exc}") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise PipelineError(f"{file}: a pipeline file is a mapping of sections (work, source, ...)")
    lines: dict[str, int] = {}
    _node_lines(node, "", lines, file)
    return data, lines


def _node_lines(node: yaml.Node, prefix: str, lines: dict[str, int], file: Path) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value in node.value:
            key = f"{prefix}.{key_node.value}" if prefix else str(key_node.value)
            if key in lines:
                raise PipelineError(f"{file}:{key_node.start_mark.line + 1}: {key}: duplicate key "
                                    f"(first at line {lines[key]})")
            lines[key] = key_node.start_mark.line + 1
            _node_lines(value, key, lines, file)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[f"{prefix}[{i}]"] = item.start_mark.line + 1
            _node_lines(item, f"{prefix}[{i}]", lines, file)


def _unwrap(tp: object) -> tuple[object, bool]:
    """(the type without None, whether None is allowed)."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return (args[0] if len(args) == 1 else tp), len(args) < len(typing.get_args(tp))
    return tp, False


def _struct_fields(tp: object) -> dict[str, object] | None:
    """Field name -> type for a Struct type (None for anything else)."""
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return {f.encode_name: f.type for f in msgspec.structs.fields(tp)}
    return None


def _unknown(key: str, name: str, known: dict[str, object], loaded: Loaded) -> PipelineError:
    near = closest(name, known, n=1)
    hint = f" (did you mean {near[0]}?)" if near else f" (known: {', '.join(known)})"
    return loaded.error(key, f"unknown key{hint}")


def check_keys(data: object, tp: object, prefix: str, loaded: Loaded) -> None:
    """Refuse unknown keys anywhere, with the closest valid name."""
    tp, _ = _unwrap(tp)
    fields = _struct_fields(tp)
    if fields is not None and isinstance(data, dict):
        for name, value in data.items():
            key = f"{prefix}.{name}" if prefix else str(name)
            if name not in fields:
                raise _unknown(key, str(name), fields, loaded)
            check_keys(value, fields[name], key, loaded)
    elif typing.get_origin(tp) is list and isinstance(data, list):
        (item_type,) = typing.get_args(tp)
        for i, item in enumerate(data):
            check_keys(item, item_type, f"{prefix}[{i}]", loaded)


def apply_set(data: dict, item: str, loaded: Loaded) -> None:
    """Apply one `--set a.b=value`, typed by the schema (a str key keeps the text as is)."""
    key, eq, raw = item.partition("=")
    key = key.strip()
    if not eq or not key:
        raise UserError(f"--set {item}: expected KEY=VALUE, e.g. --set train.epochs=20")
    origin = f"--set {item}"
    node, tp = data, RunFile
    parts = key.split(".")
    for depth, part in enumerate(parts):
        so_far = ".".join(parts[: depth + 1])
        fields = _struct_fields(_unwrap(tp)[0])
        if fields is None:
            if typing.get_origin(_unwrap(tp)[0]) is not dict:
                raise UserError(f"{origin}: {'.'.join(parts[:depth])} has no sub-keys")
            tp = typing.get_args(_unwrap(tp)[0])[1]
        elif part not in fields:
            raise UserError(f"{origin}: {so_far}: unknown key"
                            + (f" (did you mean {near[0]}?)" if (near := closest(part, fields, n=1)) else ""))
        else:
            tp = fields[part]
        if depth < len(parts) - 1:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
    node[parts[-1]] = typed_value(raw, tp)
    loaded.origins[key] = origin


def typed_value(raw: str, tp: object) -> object:
    """`--set` text as the schema's type: str stays text, a list[str] may be `a,b`, else YAML."""
    inner, optional = _unwrap(tp)
    if optional and raw.strip() in ("null", "~", ""):
        return None
    if inner is str:
        return raw
    is_names = typing.get_origin(inner) is list and typing.get_args(inner) == (str,)
    if is_names and not raw.lstrip().startswith("["):
        return [v.strip() for v in raw.split(",") if v.strip()]
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def _resolve(value: object, base: Path) -> object:
    if not isinstance(value, str) or not value:
        return value
    return os.path.abspath(os.path.join(base, os.path.expanduser(value)))


def resolve_paths(data: dict, base: Path, loaded: Loaded) -> None:
    """Make every path absolute: relative to the file, or to the current folder for --set."""
    def base_of(key: str) -> Path:
        return Path.cwd() if loaded.where(key).startswith("--set") else base

    for key in PATH_KEYS + NAME_OR_PATH_KEYS:
        section, _, name = key.partition(".")
        holder = data if not name else data.get(section)
        if not name:
            name, holder = section, data
        if key.startswith("source.files."):
            entries = (data.get("source") or {}).get("files")
            for i, entry in enumerate(entries if isinstance(entries, list) else []):
                field_name = key.rsplit(".", 1)[1]
                if isinstance(entry, dict) and field_name in entry:
                    entry[field_name] = _resolve(entry[field_name], base_of(f"source.files[{i}]"))
            continue
        if not isinstance(holder, dict) or name not in holder:
            continue
        value = holder[name]
        if key in NAME_OR_PATH_KEYS and not (isinstance(value, str) and "/" in value):
            continue
        holder[name] = _resolve(value, base_of(key))


def check_spec(spec: RunFile, loaded: Loaded) -> None:
    """What the types cannot say: keys of another source kind, required paths, a subset rule."""
    src = spec.source
    given = {k.split(".")[1].split("[")[0] for k in (*loaded.lines, *loaded.origins)
             if k.startswith("source.")}
    for name in sorted(given - set(KIND_KEYS[src.kind])):
        if any(name in keys for keys in KIND_KEYS.values()):
            raise loaded.error(f"source.{name}", f"not used by kind {src.kind}")
    if src.kind == "coco":
        if not src.files:
            raise loaded.error("source", "kind coco needs files: [{json: ..., images: ...}]")
        for i, entry in enumerate(src.files):
            _exists(loaded, f"source.files[{i}].json", entry.json, dir_ok=False)
            _exists(loaded, f"source.files[{i}].images", entry.images, file_ok=False)
    elif not src.path:
        raise loaded.error("source", f"kind {src.kind} needs path")
    elif not (src.synth and src.synth.generate and not os.path.exists(src.path)):
        hint = ("; source.synth generates a tree there only with source.synth.generate: true"
                if src.synth and not os.path.exists(src.path) else "")
        _exists(loaded, "source.path", src.path, file_ok=False, hint=hint)
    if src.classes_file:
        _exists(loaded, "source.classes_file", src.classes_file, dir_ok=False)
    if spec.subset is not None:
        s = spec.subset
        if not (s.top or s.classes or s.spread or s.min_images or s.exclude):
            raise loaded.error("subset", "no class rule: give top, classes, spread, min_images "
                                         "or exclude (or leave the section out)")
    for key in NAME_OR_PATH_KEYS:
        section, name = key.split(".")
        value = getattr(getattr(spec, section), name)
        if "/" in value:
            _exists(loaded, key, value, dir_ok=False)


def _exists(loaded: Loaded, key: str, path: str, file_ok: bool = True, dir_ok: bool = True,
            hint: str = "") -> None:
    p = Path(path)
    if not p.exists():
        near = nearest_existing(path, folders=not file_ok)
        raise loaded.error(key, f"{path} does not exist"
                           + (f" (closest existing: {near})" if near else "") + hint)
    if p.is_dir() and not dir_ok:
        raise loaded.error(key, f"{path} is a folder, not a file")
    if not p.is_dir() and not file_ok:
        raise loaded.error(key, f"{path} is not a folder")


def nearest_existing(path: str | Path, folders: bool = False) -> str | None:
    """The existing entry most like a missing `path`: a sibling with a close name, found in
    the deepest folder above it that exists (`/data/imagenett` -> `/data/imagenet`).

    With `folders`, only folders count. None when nothing there has a close name.
    """
    p = Path(path)
    missing = [p.name]
    parent = p.parent
    while not parent.is_dir():
        if parent == parent.parent:
            return None
        missing.insert(0, parent.name)
        parent = parent.parent
    try:
        with os.scandir(parent) as it:
            names = [e.name for e in it if e.is_dir() or not (folders or len(missing) > 1)]
    except OSError:
        return None
    near = closest(missing[0], names, n=1)
    if not near:
        return None
    whole = parent.joinpath(near[0], *missing[1:])
    return str(whole if whole.exists() else parent / near[0])
