"""Reading YAML files safely: safe loading, UTF-8 only, no silently repeated keys, key lines.

A repeated key (two ``model:`` lines, one contrast name twice) is legal YAML and a plain loader
keeps only the last value; in a study file that silently drops a model or a contrast, so it is
refused here with both lines.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from graymatter.errors import InputError

__all__ = ["read_yaml"]


class _DuplicateKeyError(yaml.YAMLError):
    def __init__(self, key, first: int, again: int):
        super().__init__(f"the key {key!r} appears twice (lines {first} and {again}); YAML would "
                         "keep only the last value, so remove or rename one of them.")
        self.line = again


class _UniqueKeyLoader(yaml.SafeLoader):
    """The safe loader (no Python objects), refusing a key repeated within one mapping."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # "<<" merges may override
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node.start_mark.line + 1)
                except TypeError:  # unhashable key: the base class reports it
                    continue
                if first != key_node.start_mark.line + 1:
                    raise _DuplicateKeyError(key, first, key_node.start_mark.line + 1)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | os.PathLike, error: type[InputError] = InputError
              ) -> tuple[Path, object, dict]:
    """Parse a YAML file: its absolute path, the data and the line of every key path.

    Parameters
    ----------
    path : path
        The YAML file (UTF-8).
    error : type, default=InputError
        Exception class raised for problems; its message names the file and the line.

    Returns
    -------
    source : pathlib.Path
    data : object
        What the file holds (safe loading: plain mappings, lists, text and numbers only).
    lines : dict
        Key path (tuple of keys and list indices) -> 1-based line number.

    Raises
    ------
    InputError (or ``error``)
        If the file is missing, is not UTF-8 text, is not valid YAML or repeats a key.
    """
    source = Path(path).resolve()
    if not source.is_file():
        raise error(f"study file {path} does not exist.")
    raw = source.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        raise error(f"{source}, line {line}: the file is not UTF-8 text (byte 0x{raw[err.start]:02x} "
                    "cannot be decoded; it looks like Latin-1 or Windows-1252). Save the file as "
                    "UTF-8 (in most editors: Save As, encoding UTF-8) and run again.") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
        lines = _line_map(yaml.compose(text, Loader=yaml.SafeLoader))
    except _DuplicateKeyError as err:
        raise error(f"{source}, line {err.line}: {err}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark else ""
        raise error(f"{source}{where}: not valid YAML "
                    f"({getattr(err, 'problem', None) or err}).") from None
    return source, data, lines


def _line_map(node, path=(), lines=None) -> dict:
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
