"""Step specifications: each option of an analysis step declared once, with its documentation.

A step spec is a frozen dataclass whose fields are the step's options. Each field is made with
:func:`option`, which records its kind, default, allowed choices, lower bound and one line of
documentation. Everything that presents or checks options reads that declaration:

* the study-file checker (:meth:`StepSpec.from_mapping`: unknown keys, types, choices, bounds,
  with the file and line of the problem);
* the command line (:meth:`StepSpec.add_arguments` and :meth:`StepSpec.from_args`);
* the Python API (constructing a spec checks it in ``__post_init__``);
* the generated study-file reference (:meth:`StepSpec.reference`).

The pattern follows scikit-learn's ``_parameter_constraints`` (one table of constraints per
estimator) with nilearn's habit of documenting an option once.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass
from typing import Any, ClassVar

from ..errors import InputError

__all__ = ["KINDS", "Option", "SpecError", "StepSpec", "option"]

#: kind -> (phrase used in messages and docs, test of a value)
KINDS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "text": ("text", lambda v: isinstance(v, str)),
    "bool": ("true or false", lambda v: isinstance(v, bool)),
    "int": ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "seed": ("a non-negative integer (random seed)",
             lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0),
    "number": ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
    "list": ("a list", lambda v: isinstance(v, (list, tuple))),
    "mapping": ("a mapping", lambda v: isinstance(v, Mapping)),
    "path": ("a path", lambda v: isinstance(v, str) or hasattr(v, "__fspath__")),
    "formula": ("a model formula", lambda v: isinstance(v, str)),
    "any": ("a value", lambda v: True),
}
_ARG_TYPES = {"text": str, "int": int, "seed": int, "number": float, "path": str,
              "formula": str}


class SpecError(InputError):
    """An option of a step has a value outside what the step accepts."""


@dataclass(frozen=True)
class Option:
    """One declared option: what :func:`option` stores in the field's metadata.

    Attributes
    ----------
    name : str
        Field name; also the study-file key and (with ``-`` for ``_``) the CLI flag.
    default : object
        Default value (:data:`dataclasses.MISSING` when required).
    kind : str
        One of :data:`KINDS`.
    doc : str
        One sentence for the CLI help, the API docs and the study-file reference.
    choices : tuple or None
        Allowed values (for a ``list`` kind: allowed items).
    minimum : number or None
        Smallest allowed value.
    none_ok : bool
        Whether None is accepted (it is whenever the default is None).
    cli : bool
        Whether the option appears on the command line.
    flag : str or None
        CLI flag when it is not ``--name-with-dashes``.
    """

    name: str
    default: Any
    kind: str
    doc: str
    choices: tuple | None = None
    minimum: float | None = None
    none_ok: bool = False
    cli: bool = True
    flag: str | None = None

    @property
    def required(self) -> bool:
        return self.default is MISSING

    def problem(self, value) -> str | None:
        """Why ``value`` is not acceptable (None when it is)."""
        if value is None:
            return None if self.none_ok or self.required else "null is not allowed here"
        phrase, test = KINDS[self.kind]
        if not test(value):
            return f"expected {phrase}; got {value!r}"
        items = list(value) if self.kind == "list" else [value]
        if self.choices is not None:
            bad = [v for v in items if v not in self.choices]
            if bad:
                return (f"expected one of {', '.join(map(str, self.choices))}; got "
                        f"{bad[0]!r}")
        if self.minimum is not None and self.kind in ("int", "number", "seed") \
                and value < self.minimum:
            return f"expected a value >= {self.minimum}; got {value!r}"
        return None

    def default_text(self) -> str:
        """The default as the docs show it."""
        if self.required:
            return "required"
        if self.default is None:
            return "none"
        if isinstance(self.default, bool):
            return str(self.default).lower()
        if isinstance(self.default, tuple):
            return "[" + ", ".join(map(str, self.default)) + "]"
        return str(self.default)


def option(default=MISSING, *, kind: str, doc: str, choices=None, minimum=None,
           cli: bool = True, flag: str | None = None):
    """Declare one option of a step spec (use as the default of a dataclass field).

    Parameters
    ----------
    default : object, optional
        Default value; omit it for a required option. Lists are stored as tuples so the spec
        stays immutable.
    kind : str
        One of :data:`KINDS`.
    doc : str
        One sentence of documentation.
    choices : sequence, optional
        Allowed values.
    minimum : number, optional
        Smallest allowed value.
    cli : bool
        False for options that only a study file or the API sets.
    flag : str, optional
        CLI flag when it differs from ``--name-with-dashes``.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Toy(StepSpec):
    ...     n_perm: int = option(1000, kind="int", minimum=1, doc="Permutations.")
    >>> Toy().n_perm
    1000
    >>> Toy(n_perm=0)
    Traceback (most recent call last):
    ...
    graymatter.specs.base.SpecError: Toy: 'n_perm' expected a value >= 1; got 0
    """
    if kind not in KINDS:
        raise ValueError(f"unknown option kind {kind!r}")
    meta = {"graymatter": {"kind": kind, "doc": doc,
                           "choices": tuple(choices) if choices is not None else None,
                           "minimum": minimum, "cli": cli, "flag": flag}}
    if isinstance(default, list):
        default = tuple(default)
    if default is MISSING:
        return dataclasses.field(metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class StepSpec:
    """Base of every step spec: checks on construction, readers for study files and the CLI.

    Subclasses set ``step`` (the study-file block and chain name) and ``title``.
    """

    step: ClassVar[str] = ""
    title: ClassVar[str] = ""

    def __post_init__(self):
        for opt in self.options():
            value = getattr(self, opt.name)
            if isinstance(value, list):  # lists given by users are kept immutable
                object.__setattr__(self, opt.name, tuple(value))
                value = tuple(value)
            if opt.required and value is None:
                raise SpecError(f"{type(self).__name__}: '{opt.name}' is required ({opt.doc})")
            problem = opt.problem(value)
            if problem:
                raise SpecError(f"{type(self).__name__}: '{opt.name}' {problem}")
        self.check()

    def check(self) -> None:
        """Checks that involve several options (subclasses override; raise SpecError)."""

    # ----------------------------------------------------------------------------- reading
    @classmethod
    def options(cls) -> list[Option]:
        """The declared options, in field order."""
        out = []
        for f in dataclasses.fields(cls):
            meta = f.metadata.get("graymatter")
            if meta is None:
                continue
            default = f.default if f.default is not MISSING else MISSING
            out.append(Option(name=f.name, default=default, none_ok=default is None, **meta))
        return out

    @classmethod
    def option_named(cls, name: str) -> Option:
        """One declared option by name."""
        for opt in cls.options():
            if opt.name == name:
                return opt
        raise KeyError(name)

    @classmethod
    def from_mapping(cls, mapping: Mapping | None, *, where: Callable[..., str] | None = None,
                     ignore: tuple = (), **extra):
        """A spec from a study-file block, with errors that name the key and its line.

        Parameters
        ----------
        mapping : mapping or None
            The block's keys and values (None: all defaults).
        where : callable, optional
            ``where(*key_path)`` -> ``"study.yaml, line 12"``; the block name is the first key.
        ignore : tuple of str
            Keys of the block that are not options (inputs read by the caller).
        **extra
            Values for options set by the caller (they win over the block).
        """
        where = where or (lambda *key: cls.step or cls.__name__)
        mapping = dict(mapping or {})
        names = [o.name for o in cls.options()]
        for key in mapping:
            if key not in names and key not in ignore:
                close = difflib.get_close_matches(str(key), names + list(ignore), n=1)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                raise SpecError(f"{where(cls.step, key)}: unknown key '{key}' in "
                                f"'{cls.step}'.{hint} Valid keys: "
                                f"{', '.join(names + list(ignore))}.")
        values = {k: v for k, v in mapping.items() if k in names}
        values.update(extra)
        for opt in cls.options():
            if opt.name in values:
                problem = opt.problem(values[opt.name])
                if problem:
                    raise SpecError(f"{where(cls.step, opt.name)}: '{opt.name}' {problem}.")
            elif opt.required:
                raise SpecError(f"{where(cls.step)}: '{cls.step}' needs '{opt.name}' "
                                f"({opt.doc})")
        try:
            return cls(**values)
        except SpecError as err:
            raise SpecError(f"{where(cls.step)}: {err}") from None

    # ------------------------------------------------------------------------ command line
    @classmethod
    def add_arguments(cls, parser, *, skip: tuple = (), only: tuple | None = None) -> None:
        """Add one command-line option per declared option (help and default from the spec)."""
        for opt in cls.options():
            if not opt.cli or opt.name in skip or (only is not None and opt.name not in only):
                continue
            flag = opt.flag or "--" + opt.name.replace("_", "-")
            help_ = f"{opt.doc} (default: {opt.default_text()})"
            if opt.choices and opt.kind != "list":
                help_ += f"; one of {', '.join(map(str, opt.choices))}"
            kw: dict = {"dest": opt.name, "help": help_.replace("%", "%%")}
            if not opt.required:
                kw["default"] = opt.default
            else:
                kw["required"] = True
            if opt.kind == "bool":
                if opt.default is True:
                    flag = opt.flag or "--no-" + opt.name.replace("_", "-")
                    kw.update(action="store_false")
                else:
                    kw.update(action="store_true")
            elif opt.kind == "list":
                kw.update(nargs="+", choices=opt.choices)
            else:
                kw.update(type=_arg_type(opt), choices=opt.choices, metavar=opt.name.upper()
                          if not opt.choices else None)
            parser.add_argument(flag, **kw)

    @classmethod
    def from_args(cls, args: argparse.Namespace, **extra):
        """A spec from parsed command-line options (options not on the parser keep defaults)."""
        values = {o.name: getattr(args, o.name) for o in cls.options()
                  if o.cli and hasattr(args, o.name)}
        values.update(extra)
        return cls(**values)

    # ------------------------------------------------------------------------------- output
    def to_dict(self) -> dict:
        """Options as plain JSON-ready values (tuples become lists), for provenance."""
        out = {}
        for opt in self.options():
            value = getattr(self, opt.name)
            out[opt.name] = list(value) if isinstance(value, tuple) else value
        return out

    def replace(self, **changes):
        """A copy with some options changed (checked again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def reference(cls) -> str:
        """Markdown table of the step's options: the study-file reference of this block."""
        rows = [f"### `{cls.step}`: {cls.title}", "",
                "| key | type | default | allowed | description |",
                "|---|---|---|---|---|"]
        for opt in cls.options():
            allowed = ", ".join(map(str, opt.choices)) if opt.choices else (
                f">= {opt.minimum}" if opt.minimum is not None else "")
            rows.append(f"| `{opt.name}` | {KINDS[opt.kind][0]} | {opt.default_text()} | "
                        f"{allowed} | {opt.doc} |")
        return "\n".join(rows) + "\n"


def _arg_type(opt: Option):
    base = _ARG_TYPES.get(opt.kind, str)
    if opt.choices:
        return type(opt.choices[0]) if opt.kind != "list" else base
    if opt.kind == "seed" or opt.minimum is not None:
        def checked(text: str):
            try:
                value = base(text)
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"expected {KINDS[opt.kind][0]}; got {text!r}") from None
            problem = opt.problem(value)
            if problem:
                raise argparse.ArgumentTypeError(problem)
            return value
        checked.__name__ = opt.kind
        return checked
    return base
