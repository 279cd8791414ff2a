"""Study files: YAML -> a validated :class:`StudySpec`, with errors that point at key and line.

Relative paths in a study file are relative to the file's own folder, so a study folder can be
moved or shared as a whole.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError

# key -> (expected type(s) description, required)
_TOP = {
    "name": "text", "participants": "file", "id_column": "text", "images": "pattern or list",
    "regions": "file", "mask": "file", "model": "text", "levels": "mapping", "center": "bool",
    "contrasts": "mapping", "inference": "mapping", "atlas": "mapping or file",
    "demographics": "mapping", "output": "folder", "dtype": "text",
}
_REQUIRED = ("participants", "model", "contrasts")
_INFERENCE = {"methods": "list", "n_perm": "int", "height_p": "number", "height_t": "number",
              "connectivity": "int", "tfce": "bool", "two_sided": "bool", "random_state": "int",
              "n_jobs": "int"}
_ATLAS = {"image": "file", "labels": "file"}
_DEMOGRAPHICS = {"group": "text", "group_order": "list", "variables": "list"}


class StudyFileError(InputError):
    """A study file is malformed: the message names the file, the line and the key."""


@dataclass(frozen=True)
class StudySpec:
    """A validated study file.

    Attributes mirror the YAML keys; paths are absolute. ``lines`` maps key paths such as
    ``("contrasts", "HC > MDD")`` to their line in the file, for later error messages.
    """

    source: Path
    name: str
    participants: Path
    model: str
    contrasts: dict
    output: Path
    id_column: str | None = None
    images: str | list[str] | None = None
    regions: Path | None = None
    mask: Path | None = None
    levels: dict | None = None
    center: bool = True
    inference: dict = field(default_factory=dict)
    atlas: dict | None = None
    demographics: dict | None = None
    dtype: str = "float64"
    lines: dict = field(default_factory=dict, repr=False)

    def where(self, *key) -> str:
        """``"study.yaml, line 12"`` for a key path (or the nearest parent that has a line)."""
        while key and key not in self.lines:
            key = key[:-1]
        line = self.lines.get(key)
        return f"{self.source.name}, line {line}" if line else self.source.name


def _line_map(node, path=(), lines=None) -> dict:
    import yaml

    lines = {} if lines is None else lines
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = path + (str(key_node.value),)
            lines[key] = key_node.start_mark.line + 1
            _line_map(value_node, key, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[path + (i,)] = item.start_mark.line + 1
            _line_map(item, path + (i,), lines)
    return lines


class _Checker:
    def __init__(self, source: Path, lines: dict):
        self.source, self.lines = source, lines

    def where(self, *key) -> str:
        while key and key not in self.lines:
            key = key[:-1]
        line = self.lines.get(key)
        return f"{self.source}, line {line}" if line else str(self.source)

    def fail(self, key: tuple, problem: str) -> StudyFileError:
        return StudyFileError(f"{self.where(*key)}: {problem}")

    def keys(self, mapping, allowed: Mapping[str, str], path: tuple) -> None:
        if not isinstance(mapping, Mapping):
            raise self.fail(path, f"'{'.'.join(map(str, path)) or 'the study file'}' must be a "
                                  f"mapping of keys to values; got {type(mapping).__name__}.")
        for key in mapping:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), list(allowed), n=1)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                raise self.fail(path + (key,), f"unknown key '{key}'.{hint} Valid keys here: "
                                               f"{', '.join(allowed)}.")

    def file(self, value, key: tuple, *, must_exist: bool = True) -> Path:
        if not isinstance(value, (str, os.PathLike)):
            raise self.fail(key, f"'{key[-1]}' must be a path; got {value!r}.")
        path = Path(value)
        path = path if path.is_absolute() else (self.source.parent / path)
        if must_exist and not path.exists():
            raise self.fail(key, f"'{key[-1]}' names {value}, which does not exist "
                                 f"(looked for {path}); relative paths are relative to the study "
                                 "file's folder.")
        return path

    def typed(self, value, kind: str, key: tuple):
        checks = {"text": lambda v: isinstance(v, str), "bool": lambda v: isinstance(v, bool),
                  "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
                  "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
                  "list": lambda v: isinstance(v, list),
                  "mapping": lambda v: isinstance(v, Mapping)}
        phrases = {"text": "text", "bool": "true or false", "int": "an integer",
                   "number": "a number", "list": "a list", "mapping": "a mapping"}
        if kind in checks and value is not None and not checks[kind](value):
            raise self.fail(key, f"'{key[-1]}' must be {phrases[kind]}; got {value!r}.")
        return value


def load_study(path: str | os.PathLike) -> StudySpec:
    """Read and validate a study file.

    Parameters
    ----------
    path : path
        The YAML study file.

    Returns
    -------
    StudySpec

    Raises
    ------
    StudyFileError
        With the file, line and key of the first problem: unknown keys (with the closest valid
        key), missing required keys, wrong types, files that do not exist.

    Examples
    --------
    >>> spec = load_study("study.yaml")  # doctest: +SKIP
    >>> spec.contrasts  # doctest: +SKIP
    {'HC > MDD': 'HC - MDD'}
    """
    import yaml

    source = Path(path).resolve()
    if not source.is_file():
        raise StudyFileError(f"study file {path} does not exist.")
    text = source.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
        lines = _line_map(yaml.compose(text))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark else ""
        raise StudyFileError(f"{source}{where}: not valid YAML "
                             f"({getattr(err, 'problem', None) or err}).") from None
    check = _Checker(source, lines)
    check.keys(data if data is not None else {}, _TOP, ())
    data = dict(data or {})
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise StudyFileError(f"{source}: missing required key(s) {', '.join(missing)}.")
    if ("images" in data) == ("regions" in data):
        raise StudyFileError(f"{source}: give exactly one of 'images' (voxel data) or 'regions' "
                             "(a subjects x regions table).")
    for key in ("name", "id_column", "model", "dtype"):
        check.typed(data.get(key), "text", (key,))
    check.typed(data.get("center", True), "bool", ("center",))
    for key in ("levels", "contrasts", "inference", "demographics"):
        check.typed(data.get(key), "mapping", (key,))
    inference = dict(data.get("inference") or {})
    check.keys(inference, _INFERENCE, ("inference",))
    for key, kind in _INFERENCE.items():
        check.typed(inference.get(key), kind, ("inference", key))
    for name, expr in data["contrasts"].items():
        if not (isinstance(expr, str) or (isinstance(expr, list)
                                          and all(isinstance(e, str) for e in expr))):
            raise check.fail(("contrasts", name), f"contrast '{name}' must be an expression or a "
                                                  f"list of expressions (F); got {expr!r}.")
    atlas = data.get("atlas")
    if isinstance(atlas, str):
        atlas = {"image": atlas}
    if atlas is not None:
        check.keys(atlas, _ATLAS, ("atlas",))
        atlas = {k: check.file(v, ("atlas", k)) for k, v in atlas.items()}
    demographics = data.get("demographics")
    if demographics is not None:
        check.keys(demographics, _DEMOGRAPHICS, ("demographics",))
        if "group" not in demographics or "variables" not in demographics:
            raise check.fail(("demographics",), "demographics needs 'group' and 'variables'.")
    images = data.get("images")
    if isinstance(images, str):
        images = str(check.file(images, ("images",), must_exist=False))
    elif isinstance(images, list):
        images = [str(check.file(p, ("images", i))) for i, p in enumerate(images)]
    elif images is not None:
        raise check.fail(("images",), "'images' must be a glob pattern or a list of files.")
    output = data.get("output") or f"{source.stem}-results"
    return StudySpec(
        source=source,
        name=data.get("name") or source.stem,
        participants=check.file(data["participants"], ("participants",)),
        model=data["model"],
        contrasts=dict(data["contrasts"]),
        output=check.file(output, ("output",), must_exist=False),
        id_column=data.get("id_column"),
        images=images,
        regions=check.file(data["regions"], ("regions",)) if "regions" in data else None,
        mask=check.file(data["mask"], ("mask",)) if data.get("mask") else None,
        levels=data.get("levels"),
        center=data.get("center", True),
        inference=inference,
        atlas=atlas,
        demographics=demographics,
        dtype=data.get("dtype", "float64"),
        lines=lines,
    )
