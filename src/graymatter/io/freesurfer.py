"""Read one FreeSurfer stats file (``aseg.stats``, ``?h.<annot>.stats``, ``brainvol.stats``...).

FreeSurfer writes its results as text: ``#`` header lines (program, version, subject, hemisphere,
annotation), ``# Measure`` lines with global values (eTIV, BrainSegVol...) and, for most files, a
whitespace-separated table announced by ``# ColHeaders``. The header varies between versions (5.3
to 7.4 add, drop and rename lines), so header lines are read liberally: any ``# key value`` line is
kept. The numbers are read strictly: a measure or table cell that is not a number, a table row with
the wrong number of fields, a row before ``# ColHeaders``, a row count that disagrees with
``# NRows`` or a last row cut off mid-line raises :class:`FreeSurferParseError` with the file and
line, so a truncated file never yields a silently shorter or wrong table.

Subjects-directory walking and ``asegstats2table`` tables live in
:mod:`graymatter.io.freesurfer_tables`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from graymatter.errors import InputError, format_choices

logger = logging.getLogger("graymatter")

#: Kinds of stats file :func:`read_stats` recognises (see :class:`FreeSurferStats`).
KINDS = ("aseg", "surface", "brainvol", "wmparc", "other")

#: Table columns holding text; every other column must hold numbers.
TEXT_COLUMNS = frozenset({"StructName"})

MEASURE_COLUMNS = ("name", "short", "description", "value", "unit")

# A decimal number as C's printf writes it, plus nan/inf; stricter than float(), which would
# also take "1_000" or surrounding blanks.
NUMBER = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|nan|inf(?:inity)?)",
                     re.IGNORECASE)
_INTEGER = re.compile(r"[+-]?\d+")
_RELEASE = re.compile(r"v?\d+(?:\.\d+)+\S*")
_ANNOT_FILE = re.compile(r"(?:^|/)(?:lh|rh)\.(.+)\.annot$")
_TABLE_PROGRAMS = ("mris_anatomical_stats", "mri_segstats")


class FreeSurferParseError(InputError):
    """A FreeSurfer stats or table file is truncated, garbled or not a stats file.

    Attributes
    ----------
    path : pathlib.Path
        The file.
    line : int or None
        1-based line number of the problem (None when it concerns the whole file).
    problem : str
        What was wrong, without the file and line prefix.
    """

    def __init__(self, path, line: int | None, problem: str, fix: str = ""):
        self.path = Path(path)
        self.line = line
        self.problem = problem
        where = f"FreeSurfer file '{self.path}'" + (f", line {line}" if line is not None else "")
        message = f"{where}: {problem}"
        if fix:
            message += f" {fix}"
        super().__init__(message)


@dataclass(frozen=True, eq=False)
class FreeSurferStats:
    """The content of one FreeSurfer stats file, as returned by :func:`read_stats`.

    Attributes
    ----------
    path : pathlib.Path
        The file read.
    kind : str
        ``"aseg"`` (``mri_segstats`` of a volume segmentation), ``"wmparc"`` (the same for
        ``wmparc.mgz``), ``"surface"`` (``mris_anatomical_stats -a``: ``?h.aparc.stats``,
        ``?h.aparc.a2009s.stats``, ``?h.HCP-MMP1.stats``, ``?h.BA_exvivo.stats``...),
        ``"brainvol"`` (only ``# Measure`` lines) or ``"other"`` (anything else with measures or
        a table, e.g. ``?h.w-g.pct.stats`` or ``?h.curv.stats``).
    header : dict of str to str
        ``# key value`` header lines in file order (first occurrence wins), e.g.
        ``generating_program``, ``cvs_version``, ``subjectname``, ``hemi``, ``AnnotationFile``,
        ``CreationTime``. Derived keys: ``annot`` (annotation name, e.g. ``"aparc.a2009s"``) and
        ``version`` (release number such as ``"7.4.1"``, only when ``cvs_version`` holds one;
        5.x files hold an RCS ``$Id`` string instead).
    measures : (n_measures, 5) pandas.DataFrame
        One row per ``# Measure`` line with columns ``name`` (e.g.
        ``"EstimatedTotalIntraCranialVol"``, or ``"Cortex"`` in surface files), ``short``
        (``"eTIV"``, ``"NumVert"``...), ``description``, ``value`` (float) and ``unit``.
    table : (n_structures, n_columns) pandas.DataFrame
        The structure table with the ``# ColHeaders`` columns, in file order; ``StructName`` is
        text, every other column numeric (int64 when all its cells are integers, else float64).
        ``table.attrs["units"]`` maps column names to units from ``# TableCol`` lines when the
        file has them. Empty (no columns) when the file has no table.
    """

    path: Path
    kind: str
    header: dict[str, str]
    measures: pd.DataFrame
    table: pd.DataFrame

    @property
    def hemisphere(self) -> str | None:
        """``"lh"`` or ``"rh"`` for per-hemisphere files, None otherwise.

        Taken from the ``# hemi`` line, else the hemisphere in an ``# Annot <subject> <hemi>
        <annot>`` line, else the ``lh.``/``rh.`` prefix of the file name.
        """
        hemi = self.header.get("hemi", "").strip()
        if hemi in ("lh", "rh"):
            return hemi
        annot = self.header.get("Annot", "").split()
        if len(annot) == 3 and annot[1] in ("lh", "rh"):
            return annot[1]
        prefix = self.path.name[:3]
        if self.kind in ("surface", "other") and prefix in ("lh.", "rh."):
            return prefix[:2]
        return None

    @property
    def etiv(self) -> float | None:
        """Estimated total intracranial volume (mm³), or None when the file has none.

        ``EstimatedTotalIntraCranialVol`` (short name ``eTIV``), falling back to the
        ``IntraCranialVol`` (``ICV``) measure written by FreeSurfer before 5.0.
        """
        for names in (("EstimatedTotalIntraCranialVol", "eTIV"), ("IntraCranialVol", "ICV")):
            hit = self.measures[self.measures["name"].isin(names)
                                | self.measures["short"].isin(names)]
            if len(hit):
                return float(hit["value"].iloc[0])
        return None

    def measure(self, name: str) -> float:
        """Return the value of the ``# Measure`` line whose name or short name is ``name``.

        Parameters
        ----------
        name : str
            E.g. ``"BrainSegVol"``, ``"BrainSeg"`` or ``"MeanThickness"`` (surface files name
            every measure ``Cortex``, so use the short name there).

        Returns
        -------
        value : float

        Raises
        ------
        InputError
            No measure or several measures have that name.

        Examples
        --------
        >>> read_stats("aseg.stats").measure("BrainSegVol")  # doctest: +SKIP
        1340363.0
        """
        by_short = self.measures["short"] == name
        if not by_short.any():
            by_short = self.measures["name"] == name
        hit = self.measures[by_short]
        if len(hit) != 1:
            found = "no" if hit.empty else f"{len(hit)}"
            raise InputError(
                f"{self.path}: {found} '# Measure' line(s) named {name!r}; expected exactly one. "
                f"Measures in this file: {format_choices(self.measures['short'])}.")
        return float(hit["value"].iloc[0])


def read_stats(path) -> FreeSurferStats:
    """Read one FreeSurfer stats file; the kind is detected from the content.

    Parameters
    ----------
    path : str or os.PathLike
        ``aseg.stats``, ``wmparc.stats``, ``brainvol.stats``, ``?h.<annot>.stats`` for any
        annotation (``aparc``, ``aparc.a2009s``, ``aparc.DKTatlas[40]``, ``HCP-MMP1``...), or
        another ``mri_segstats`` / ``mris_anatomical_stats`` / ``mris_curvature_stats`` output,
        from FreeSurfer 5.x to 7.x.

    Returns
    -------
    stats : FreeSurferStats
        ``kind``, ``header``, ``measures`` (one row per ``# Measure`` line) and ``table`` (the
        ``# ColHeaders`` table). ``mris_curvature_stats`` output (``?h.curv.stats``) has no such
        table; it is returned as kind ``"other"`` with a table of columns ``section``,
        ``surface``, ``statistic``, ``value``, ``unit``.

    Raises
    ------
    InputError
        The file does not exist or is a folder.
    FreeSurferParseError
        Bad content (an :class:`InputError`): empty file, bytes that are not text, a measure or
        table cell that is not a number, a table row with the wrong number of fields or before
        ``# ColHeaders``, duplicate column or structure names, a row count that disagrees with
        ``# NRows``, a table missing although the header announces one, or a last table row cut
        off (no line end). The message names the file and line.

    Examples
    --------
    >>> aseg = read_stats("subjects/sub-01/stats/aseg.stats")  # doctest: +SKIP
    >>> aseg.kind, round(aseg.etiv)  # doctest: +SKIP
    ('aseg', 1764143)
    >>> aseg.table.set_index("StructName").loc["Left-Amygdala", "Volume_mm3"]  # doctest: +SKIP
    1846.0
    >>> lh = read_stats("subjects/sub-01/stats/lh.aparc.stats")  # doctest: +SKIP
    >>> lh.kind, lh.hemisphere, lh.header["annot"]  # doctest: +SKIP
    ('surface', 'lh', 'aparc')
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"FreeSurfer stats file '{path}' does not exist. Check the path (stats "
                         "files are in <SUBJECTS_DIR>/<subject>/stats/).")
    if not path.is_file():
        raise InputError(f"'{path}' is a folder, not a FreeSurfer stats file.")
    lines, complete = _read_lines(path)
    # Imported here: that module imports FreeSurferParseError from this one.
    from graymatter.io.freesurfer_curvature import is_curvature_stats, parse_curvature_stats

    if is_curvature_stats(lines):
        header, table = parse_curvature_stats(path, lines, complete=complete)
        return FreeSurferStats(path=path, kind="other", header=header,
                               measures=_measures_frame([]), table=table)
    return _parse(path, lines, complete)


def _read_lines(path: Path) -> tuple[list[str], bool]:
    """Return the file's lines and whether its last line ends with a line end."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise FreeSurferParseError(path, line, f"byte {exc.start} is not text (not UTF-8/ASCII).",
                                   "The file is corrupt or not a FreeSurfer stats file.") from None
    if not text.strip():
        raise FreeSurferParseError(path, 1, "the file is empty.",
                                   "Re-run the FreeSurfer step that writes it.")
    lines = text.split("\n")
    # split() leaves '' after a final newline; FreeSurfer always ends its files with one, so a
    # last line without it was probably cut off.
    complete = lines[-1] == ""
    if complete:
        lines.pop()
    return [line.rstrip("\r") for line in lines], complete


class _State:
    """Accumulates one file's header, measures and table while its lines are read."""

    def __init__(self, path: Path):
        self.path = path
        self.header: dict[str, str] = {}
        self.measures: list[tuple[str, str, str, float, str]] = []
        self.columns: list[str] | None = None
        self.columns_line = 0
        self.rows: list[list[str]] = []
        self.row_lines: list[int] = []
        self.tablecols: dict[int, dict[str, str]] = {}
        self.nrows: tuple[int, int] | None = None  # (value, line)
        self.ncols: tuple[int, int] | None = None
        self.only_measures = True

    def error(self, line: int | None, problem: str, fix: str = "") -> FreeSurferParseError:
        return FreeSurferParseError(self.path, line, problem, fix)


def _parse(path: Path, lines: list[str], complete: bool) -> FreeSurferStats:
    state = _State(path)
    for number, line in enumerate(lines, start=1):
        truncated = number == len(lines) and not complete
        if "\0" in line:
            raise state.error(number, "the line contains a NUL byte.",
                              "The file is corrupt or not a FreeSurfer stats file.")
        if not line.strip():
            continue
        if line.lstrip().startswith("#"):
            body = line.lstrip()[1:].strip()
            if truncated and body.startswith("Measure"):
                raise state.error(number, "the last line (a '# Measure' line) has no line end, so "
                                          "the file was probably cut off in the middle of it.",
                                  "Re-copy the file; if it is complete, add a newline at its end.")
            _comment(state, number, body)
        else:
            _row(state, number, line, truncated)
    return _finish(state)


def _comment(state: _State, number: int, body: str) -> None:
    if not body:
        return
    key, _, value = body.partition(" ")
    value = value.strip()
    if key != "Measure":
        state.only_measures = False
    if key == "Measure":
        state.measures.append(_measure(state, number, value))
    elif key == "ColHeaders":
        _colheaders(state, number, value)
    elif key == "TableCol":
        # '# TableCol  4 ColHeader GrayVol'; malformed ones are header noise, not data.
        parts = value.split(None, 2)
        if len(parts) == 3 and _INTEGER.fullmatch(parts[0]):
            state.tablecols.setdefault(int(parts[0]), {}).setdefault(parts[1], parts[2].strip())
    elif key in ("NRows", "NTableCols"):
        if not _INTEGER.fullmatch(value) or int(value) < 0:
            raise state.error(number, f"'# {key}' should be followed by a count, found {value!r}.")
        setattr(state, "nrows" if key == "NRows" else "ncols", (int(value), number))
    elif body.startswith("Table of"):
        state.header.setdefault("Title", body)
    else:
        state.header.setdefault(key, value)


def _measure(state: _State, number: int, text: str) -> tuple[str, str, str, float, str]:
    fields = [f.strip() for f in text.split(",")]
    if len(fields) == 4:
        # FreeSurfer 6 writes '# Measure Cortex, CortexVol Total cortical gray matter volume,
        # 553998.3, mm^3' (missing comma): the short name is the first word of field 2.
        short, _, description = fields[1].partition(" ")
        fields = [fields[0], short, description.strip(), fields[2], fields[3]]
    if len(fields) < 5:
        raise state.error(number, f"a '# Measure' line needs 5 comma-separated fields (name, "
                                  f"short name, description, value, unit); found {len(fields)}: "
                                  f"{text!r}.", "The file looks truncated or edited by hand.")
    # Extra commas can only belong to the description.
    name, short, *description, value, unit = fields
    if not NUMBER.fullmatch(value):
        raise state.error(number, f"the value of measure {name!r} ({short}) is {value!r}, which "
                                  "is not a number.", "The file looks corrupt or edited by hand.")
    if not name or not short:
        raise state.error(number, f"a '# Measure' line has an empty name: {text!r}.")
    return name, short, ", ".join(description), float(value), unit


def _colheaders(state: _State, number: int, value: str) -> None:
    columns = value.split()
    if state.columns is not None:
        raise state.error(number, f"a second '# ColHeaders' line (the first is on line "
                                  f"{state.columns_line}); a stats file has one table.",
                          "The file looks like two files pasted together.")
    if not columns:
        raise state.error(number, "'# ColHeaders' names no columns.")
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise state.error(number, f"'# ColHeaders' repeats column name(s) "
                                  f"{format_choices(duplicated)}.")
    state.columns, state.columns_line = columns, number


def _row(state: _State, number: int, line: str, truncated: bool) -> None:
    if state.columns is None:
        raise state.error(number, f"found a table row ({line.strip()[:60]!r}) before any "
                                  "'# ColHeaders' line, so its columns are unknown.",
                          "The header is missing or damaged; is this a FreeSurfer stats file?")
    fields = line.split()
    if len(fields) != len(state.columns):
        raise state.error(number, f"table row has {len(fields)} fields but '# ColHeaders' (line "
                                  f"{state.columns_line}) names {len(state.columns)} columns.",
                          "The file looks truncated or damaged.")
    if truncated:
        raise state.error(number, "the last table row has no line end, so the file was probably "
                                  "cut off in the middle of this row.",
                          "Re-copy the file; if it is complete, add a newline at its end.")
    state.rows.append(fields)
    state.row_lines.append(number)


def _finish(state: _State) -> FreeSurferStats:
    table = _table(state)
    program = state.header.get("generating_program", "")
    expects_table = (program in _TABLE_PROGRAMS or bool(state.tablecols)
                     or state.nrows is not None or state.ncols is not None)
    if state.columns is None and expects_table:
        raise state.error(None, "no '# ColHeaders' line although the header announces a table "
                                f"(generating_program {program or '?'}).",
                          "The file looks truncated; re-copy it or re-run FreeSurfer.")
    if state.columns is not None and not state.rows:
        raise state.error(state.columns_line, "'# ColHeaders' is not followed by any table row.",
                          "The file looks truncated.")
    if state.columns is None and not state.measures:
        raise state.error(None, "no '# Measure' lines and no table: nothing to read.",
                          "Is this a FreeSurfer stats file? It may be truncated.")
    header = dict(state.header)
    _derive_header(header)
    kind = _kind(state, header)
    logger.debug("Read %s stats %s: %d measures, %d table rows", kind, state.path,
                 len(state.measures), len(table))
    return FreeSurferStats(path=state.path, kind=kind, header=header,
                           measures=_measures_frame(state.measures), table=table)


def _table(state: _State) -> pd.DataFrame:
    if state.columns is None:
        return pd.DataFrame()
    columns = state.columns
    if state.ncols is not None and state.ncols[0] != len(columns):
        raise state.error(state.ncols[1], f"'# NTableCols {state.ncols[0]}' but '# ColHeaders' "
                                          f"(line {state.columns_line}) names {len(columns)} "
                                          "columns.", "The header looks damaged.")
    for index, fields in state.tablecols.items():
        named = fields.get("ColHeader")
        if named is not None and (index > len(columns) or columns[index - 1] != named):
            found = columns[index - 1] if index <= len(columns) else "nothing"
            raise state.error(state.columns_line, f"'# TableCol {index} ColHeader {named}' but "
                                                  f"column {index} of '# ColHeaders' is {found}.",
                              "The header looks damaged.")
    if state.nrows is not None and state.nrows[0] != len(state.rows):
        raise state.error(state.nrows[1], f"'# NRows {state.nrows[0]}' but the table has "
                                          f"{len(state.rows)} rows.",
                          "The file looks truncated or has duplicated lines.")
    data = {}
    for j, name in enumerate(columns):
        cells = [row[j] for row in state.rows]
        data[name] = cells if name in TEXT_COLUMNS else _numeric(state, name, cells)
    table = pd.DataFrame(data, columns=columns)
    if "StructName" in table:
        names = table["StructName"]
        repeated = names[names.duplicated()]
        if len(repeated):
            first = int(np.flatnonzero(names.duplicated().to_numpy())[0])
            raise state.error(state.row_lines[first], f"structure {repeated.iloc[0]!r} appears "
                                                      "twice in the table.",
                              "The file looks damaged (duplicated lines).")
    units = {fields["ColHeader"]: fields["Units"] for fields in state.tablecols.values()
             if "ColHeader" in fields and "Units" in fields}
    if units:
        table.attrs["units"] = units
    return table


def _numeric(state: _State, name: str, cells: list[str]) -> np.ndarray:
    for i, cell in enumerate(cells):
        if not NUMBER.fullmatch(cell):
            raise state.error(state.row_lines[i], f"column {name!r} holds {cell!r}, which is not "
                                                  "a number.", "The file looks damaged.")
    if all(_INTEGER.fullmatch(cell) for cell in cells):
        values = [int(cell) for cell in cells]
        if all(abs(v) < 2**63 for v in values):
            return np.array(values, dtype=np.int64)
    return np.array([float(cell) for cell in cells], dtype=np.float64)


def _measures_frame(rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(MEASURE_COLUMNS))
    return frame.astype({"name": "str", "short": "str", "description": "str",
                         "value": "float64", "unit": "str"})


def _derive_header(header: dict[str, str]) -> None:
    annot = None
    match = _ANNOT_FILE.search(header.get("AnnotationFile", "").strip())
    if match:
        annot = match.group(1)
    elif len(header.get("Annot", "").split()) == 3:
        annot = header["Annot"].split()[2]  # '# Annot <subject> <hemi> <annot>' (mri_segstats)
    if annot is not None:
        header.setdefault("annot", annot)
    version = header.get("cvs_version", "").strip()
    if _RELEASE.fullmatch(version):
        header.setdefault("version", version)


def _kind(state: _State, header: dict[str, str]) -> str:
    columns = state.columns or []
    program = header.get("generating_program", "")
    if not columns:
        return "brainvol" if state.only_measures else "other"
    if program == "mris_anatomical_stats" or ("hemi" in header and "StructName" in columns) or (
            {"StructName", "NumVert", "GrayVol"} <= set(columns)):
        return "surface"
    if header.get("anatomy_type", "volume") == "volume" and (
            program == "mri_segstats" or {"SegId", "Volume_mm3"} <= set(columns)):
        segmentation = header.get("SegVolFile") or header.get("cmdline", "")
        return "wmparc" if "wmparc" in segmentation else "aseg"
    return "other"


__all__ = ["FreeSurferParseError", "FreeSurferStats", "KINDS", "read_stats"]
