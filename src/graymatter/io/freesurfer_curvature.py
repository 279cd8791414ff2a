"""Parse ``mris_curvature_stats`` output (``?h.curv.stats``) for :func:`read_stats`.

Unlike other stats files it has no ``#`` header and no ``# ColHeaders`` table: blocks of
``<name> <mean> +- <std> (using '<surface>'): <mean> +- <std> [unit]`` followed by indented
``<name> <statistic>: <value> ...`` lines, a few ``curv -- <index>: <value>`` lines and a final
``Mean across N curvatures`` line. It is turned into a long table with one row per number.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from graymatter.io.freesurfer import NUMBER, FreeSurferParseError

_NUM = NUMBER.pattern
_BLOCK = re.compile(
    rf"(\S+) <mean> \+- <std> \(using '([^']*)'\):\s*({_NUM}) \+- ({_NUM})\s*(\S*)", re.IGNORECASE)
_STAT = re.compile(r"\s+(\S+) ([^:]+):\s*(\S+)\s*(.*)")
_INDEX = re.compile(r"(\S+) -- ([^:]+):\s*(\S+)\s*(.*)")
_OVERALL = re.compile(rf"(Mean across .+?):\s*({_NUM}) \+- ({_NUM})", re.IGNORECASE)

COLUMNS = ("section", "surface", "statistic", "value", "detail")


def is_curvature_stats(lines: list[str]) -> bool:
    """Whether ``lines`` look like ``mris_curvature_stats`` output (no ``#`` header, a block)."""
    if any(line.lstrip().startswith("#") for line in lines):
        return False
    return any(_BLOCK.fullmatch(line.strip()) for line in lines)


def parse_curvature_stats(path: Path, lines: list[str], *,
                          complete: bool = True) -> tuple[dict[str, str], pd.DataFrame]:
    """Return ``(header, table)`` for ``mris_curvature_stats`` output.

    ``table`` has columns ``section`` (``"Raw"``, ``"K"``, ``"H"``, ``"curv"``, ``"all"``...),
    ``surface`` (the file named in ``(using '...')``, empty when none), ``statistic``
    (``"mean"``, ``"std"``, ``"Min"``, ``"Total Surface Area"``...), ``value`` (float) and
    ``detail`` (the rest of the line, e.g. ``"at vertex 35075"`` or ``"mm^2"``). Text values such
    as ``Curvature Calculation Type: discrete`` go to ``header`` as ``"<section> <statistic>"``.
    Unrecognised lines, and a last line without line end (``complete=False``: the file was
    probably cut off), raise :class:`FreeSurferParseError`.
    """
    header = {"generating_program": "mris_curvature_stats"}
    rows: list[tuple[str, str, str, float, str]] = []
    section, surface = None, ""
    for number, line in enumerate(lines, start=1):
        line = line.rstrip()
        if not line:
            continue
        if number == len(lines) and not complete:
            raise FreeSurferParseError(path, number, "the last line has no line end, so the file "
                                       "was probably cut off in the middle of it.",
                                       "Re-copy the file; if complete, add a newline at its end.")
        block, stat = _BLOCK.fullmatch(line.strip()), _STAT.fullmatch(line)
        index, overall = _INDEX.fullmatch(line), _OVERALL.fullmatch(line)
        if block:
            section, surface, mean, std, unit = block.groups()
            rows += [(section, surface, "mean", float(mean), unit),
                     (section, surface, "std", float(std), unit)]
        elif stat and section is not None and stat.group(1) == section:
            _value(path, number, header, rows, section, surface, *stat.group(2, 3, 4))
        elif index:
            _value(path, number, header, rows, index.group(1), "", *index.group(2, 3, 4))
        elif overall:
            label, mean, std = overall.groups()
            rows += [("all", "", f"{label} mean", float(mean), ""),
                     ("all", "", f"{label} std", float(std), "")]
        else:
            raise FreeSurferParseError(path, number, f"unrecognised line in mris_curvature_stats "
                                       f"output: {line.strip()[:60]!r}.",
                                       "The file looks damaged.")
    if not rows:
        raise FreeSurferParseError(path, None, "no values found in mris_curvature_stats output.")
    table = pd.DataFrame(rows, columns=list(COLUMNS)).astype({"value": "float64"})
    return header, table


def _value(path, number, header, rows, section, surface, statistic, text, detail) -> None:
    statistic = statistic.strip()
    if NUMBER.fullmatch(text):
        rows.append((section, surface, statistic, float(text), detail.strip()))
    elif re.fullmatch(r"[A-Za-z_]+", text) and not detail:
        header.setdefault(f"{section} {statistic}", text)  # e.g. 'Calculation Type: discrete'
    else:
        raise FreeSurferParseError(path, number, f"{section} {statistic!r} has value {text!r}, "
                                   "which is not a number.", "The file looks damaged.")
