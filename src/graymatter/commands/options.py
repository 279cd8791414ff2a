"""Options and option types shared by the subcommands (and the top-level `glm` command)."""

from __future__ import annotations

import argparse

from ..errors import InputError

__all__ = ["seed", "add_model_options", "model_options"]


def seed(text: str) -> int:
    """``type=`` of ``--seed`` options: a non-negative integer (what numpy's generators accept).

    Examples
    --------
    >>> seed("42")
    42
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a random seed is a non-negative integer such as 0 or "
                                         f"42; got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a random seed is a non-negative integer such as 0 or "
                                         f"42; got {value}")
    return value


def _name_value(text: str, option: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise InputError(f"{option} expects NAME=VALUE, got {text!r}; e.g. {option} "
                         "\"HC > MDD=HC - MDD\".")
    return name.strip(), value.strip()


def add_model_options(p) -> None:
    """Add the options that define a GLM: formula, contrasts, level order, ids, centring."""
    p.add_argument("--model", required=True, help='model formula, e.g. "0 + group + age + tiv"')
    p.add_argument("--contrast", action="append", default=[], metavar="NAME=EXPR",
                   help='t contrast, e.g. "TRD > nonTRD=TRD_UP + TRD_BP - nonTRD_UP - nonTRD_BP" '
                        "(repeatable)")
    p.add_argument("--f-contrast", action="append", default=[], metavar="NAME=EXPR;EXPR",
                   help='F contrast with rows separated by ";", e.g. "cells=A - B; B - C" '
                        "(repeatable)")
    p.add_argument("--level", action="append", default=[], metavar="FACTOR=L1,L2",
                   help="explicit level order of a categorical factor (repeatable)")
    p.add_argument("--id-column", metavar="NAME",
                   help="subject id column (default: participant_id or a recognised alternative)")
    p.add_argument("--no-center", action="store_true",
                   help="do not mean-centre numeric covariates")


def model_options(args) -> tuple[dict[str, str | list[str]], dict[str, list[str]] | None]:
    """The contrasts and level orders given by :func:`add_model_options`' options."""
    from ..stats.formula import parse_formula

    parse_formula(args.model)  # refuse a formula outside the grammar before reading any data
    contrasts: dict[str, str | list[str]] = {}
    given: dict[str, str] = {}
    for option, texts in (("--contrast", args.contrast), ("--f-contrast", args.f_contrast)):
        for text in texts:
            name, expr = _name_value(text, option)
            if name in contrasts:
                raise InputError(f"the contrast name {name!r} is given twice ({given[name]} and "
                                 f"{option} {text!r}); only one would be kept, so give each "
                                 "contrast its own name.")
            given[name] = f"{option} {text!r}"
            contrasts[name] = (expr if option == "--contrast" else
                               [row.strip() for row in expr.split(";") if row.strip()])
    if not contrasts:
        raise InputError("no contrast given: add at least one --contrast NAME=EXPR "
                         "(or --f-contrast).")
    levels = {}
    for text in args.level:
        factor, values = _name_value(text, "--level")
        levels[factor] = [v.strip() for v in values.split(",") if v.strip()]
    return contrasts, levels or None
