"""FreeSurfer results for many subjects: ``*stats2table`` tables and a SUBJECTS_DIR walker.

Two routes lead to a subjects x regions table:

- :func:`read_stats_table` reads what ``asegstats2table`` / ``aparcstats2table`` already wrote.
- :func:`collect_stats` walks a ``SUBJECTS_DIR`` and reads each subject's stats files into one
  tidy long table (one row per subject, region and measure), which :func:`wide_table` pivots.

Longitudinal FreeSurfer names its runs ``<timepoint>.long.<base>`` (e.g.
``13900_01.long.13900_base``); :func:`parse_subject_name` splits them so that time points of
one participant can be paired.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from graymatter.errors import GraymatterWarning, InputError, format_choices
from graymatter.io.freesurfer import NUMBER, FreeSurferParseError, read_stats
from graymatter.io.freesurfer_regions import check_consistent_regions, check_regions

logger = logging.getLogger("graymatter")

#: Columns of the long table returned by :func:`collect_stats`.
LONG_COLUMNS = ("subject", "base", "timepoint", "hemisphere", "region", "measure", "value",
                "source")

#: Measure name of the aseg structure volumes in the long table.
ASEG_MEASURE = "Volume_mm3"

_MISSING_CELLS = frozenset({"", "n/a", "N/A", "NA", "NaN", "nan"})
_LONG_SEPARATOR = ".long."


def parse_subject_name(name: str) -> tuple[str, str | None, bool]:
    """Split a FreeSurfer subject name into base, time point and whether it is longitudinal.

    Parameters
    ----------
    name : str
        A subject folder name: ``<timepoint>.long.<base>`` for runs of the longitudinal stream,
        anything else for cross-sectional runs (and for the base template itself).

    Returns
    -------
    base : str
        The base (template) name, or ``name`` itself for a cross-sectional subject.
    timepoint : str or None
        The time point's own subject name (``"13900_01"``), None when not longitudinal.
    is_long : bool

    Raises
    ------
    InputError
        The name is empty, or has ``.long.`` with nothing before or after it.

    Examples
    --------
    >>> parse_subject_name("13900_01.long.13900_base")
    ('13900_base', '13900_01', True)
    >>> parse_subject_name("sub-01")
    ('sub-01', None, False)
    """
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"FreeSurfer subject name must be a non-empty string, got {name!r}.")
    timepoint, separator, base = name.partition(_LONG_SEPARATOR)
    if not separator:
        return name, None, False
    if not timepoint or not base:
        raise InputError(f"FreeSurfer subject name {name!r} has '.long.' but no "
                         f"{'time point before' if not timepoint else 'base after'} it; "
                         "longitudinal runs are named '<timepoint>.long.<base>'.")
    return base, timepoint, True


def read_stats_table(path) -> pd.DataFrame:
    """Read an ``asegstats2table`` or ``aparcstats2table`` output (subjects x structures).

    Parameters
    ----------
    path : str or os.PathLike
        Tab-separated (the default of both tools), comma-separated or whitespace-separated text.
        The first header cell names the table (``Measure:volume``, ``lh.aparc.thickness``...);
        the first column holds subject ids; every other cell must be a number (``n/a``, ``NA``,
        ``nan`` or an empty cell are missing).

    Returns
    -------
    table : (n_subjects, n_columns) pandas.DataFrame of float64
        Indexed by subject id (str, index name ``"subject"``, file order); columns as in the
        file (e.g. ``lh_superiorfrontal_volume``, ``Left-Amygdala``, ``eTIV``).
        ``table.attrs["measure"]`` holds the first header cell.

    Raises
    ------
    InputError
        Missing file or folder.
    FreeSurferParseError
        Empty file, a row with the wrong number of cells, a cell that is not a number, a blank
        or repeated subject id, or repeated column names (names the file and line).

    Examples
    --------
    >>> volumes = read_stats_table("aseg_stats.txt")  # doctest: +SKIP
    >>> volumes.attrs["measure"], volumes.loc["13900_01.long.13900_base", "Left-Amygdala"]
    ... # doctest: +SKIP
    ('Measure:volume', 1277.1)
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a file" if path.exists() else "does not exist"
        raise InputError(f"FreeSurfer table '{path}' {what}. Pass the file written by "
                         "asegstats2table or aparcstats2table (--tablefile).")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FreeSurferParseError(path, None, f"byte {exc.start} is not text.",
                                   "Is this an asegstats2table/aparcstats2table output?") from None
    numbered = [(n, line.rstrip("\r")) for n, line in enumerate(text.split("\n"), start=1)
                if line.strip()]
    if not numbered:
        raise FreeSurferParseError(path, 1, "the file is empty.")
    first = numbered[0][1]
    separator = "\t" if "\t" in first else ("," if "," in first else None)

    def cells(line: str) -> list[str]:
        return [c.strip() for c in line.split(separator)] if separator else line.split()

    header = cells(first)
    if len(header) < 2:
        raise FreeSurferParseError(path, numbered[0][0], "the header has a single column; "
                                   "expected the id column then one column per structure.",
                                   "Is the file tab- or comma-separated?")
    _no_repeats(path, numbered[0][0], header[1:], "column name")
    ids, rows = [], []
    for number, line in numbered[1:]:
        row = cells(line)
        if len(row) != len(header):
            raise FreeSurferParseError(path, number, f"row has {len(row)} cells but the header "
                                       f"has {len(header)}.", "The file looks truncated or "
                                       "damaged.")
        if not row[0]:
            raise FreeSurferParseError(path, number, "the subject id (first cell) is blank.")
        values = []
        for column, cell in zip(header[1:], row[1:], strict=True):
            if cell in _MISSING_CELLS:
                values.append(np.nan)
            elif NUMBER.fullmatch(cell):
                values.append(float(cell))
            else:
                raise FreeSurferParseError(path, number, f"column {column!r} (subject {row[0]!r}) "
                                           f"holds {cell!r}, which is not a number.",
                                           "Write missing values as n/a.")
        ids.append(row[0])
        rows.append(values)
    _no_repeats(path, None, ids, "subject id")
    table = pd.DataFrame(np.array(rows, dtype=np.float64).reshape(len(rows), len(header) - 1),
                         index=pd.Index(ids, name="subject", dtype="str"), columns=header[1:])
    table.attrs["measure"] = header[0]
    logger.info("Read %d subjects x %d columns (%s) from %s", *table.shape, header[0], path)
    return table


def _no_repeats(path: Path, line: int | None, names: list[str], what: str) -> None:
    seen, repeated = set(), []
    for name in names:
        if name in seen:
            repeated.append(name)
        seen.add(name)
    if repeated:
        raise FreeSurferParseError(path, line, f"repeated {what}(s): "
                                   f"{format_choices(sorted(set(repeated)))}.",
                                   f"Each {what} must appear once.")


def collect_stats(subjects_dir, *, subjects: Sequence[str] | None = None, annot: str = "aparc",
                  measures: Sequence[str] | str = ("GrayVol",), include_aseg: bool = True,
                  missing: str = "error") -> pd.DataFrame:
    """Read the stats files of every subject in a FreeSurfer SUBJECTS_DIR into a long table.

    For each subject it reads ``stats/lh.<annot>.stats`` and ``stats/rh.<annot>.stats``
    (``measures`` columns of the structure table), ``stats/aseg.stats`` (each structure's
    ``Volume_mm3``) when ``include_aseg``, and eTIV.

    Parameters
    ----------
    subjects_dir : str or os.PathLike
        The FreeSurfer ``SUBJECTS_DIR``.
    subjects : sequence of str, optional
        Subject folder names to read, in this order. Default: every folder that looks like a
        FreeSurfer subject (has ``stats``, ``mri`` or ``surf``), sorted by name, except
        ``fsaverage*`` and hidden folders. Longitudinal runs (``<tp>.long.<base>``) are
        subjects like any other; base templates are read too when they have stats.
    annot : str, default="aparc"
        Annotation name in the file names: ``aparc``, ``aparc.a2009s``, ``aparc.DKTatlas``,
        ``HCP-MMP1``...
    measures : sequence of str or str, default=("GrayVol",)
        Columns of the surface tables to keep: ``GrayVol``, ``ThickAvg``, ``SurfArea``,
        ``NumVert``, ``ThickStd``, ``MeanCurv``, ``GausCurv``, ``FoldInd``, ``CurvInd``.
    include_aseg : bool, default=True
        Also keep the volumes (mm³) of the ``aseg.stats`` structures (measure ``"Volume_mm3"``,
        hemisphere missing, region e.g. ``"Left-Amygdala"``).
    missing : {"error", "skip"}, default="error"
        What to do when a subject lacks one of the files: raise, or leave the whole subject out
        with a :class:`~graymatter.errors.GraymatterWarning`.

    Returns
    -------
    long : (n_rows, 8) pandas.DataFrame
        Columns ``subject``, ``base``, ``timepoint`` (missing for cross-sectional runs),
        ``hemisphere`` (``"lh"``/``"rh"``, missing for aseg structures and eTIV), ``region``
        (``StructName``), ``measure``, ``value`` (float64) and ``source`` (the file's path).
        Each subject also has one row with region and measure ``"eTIV"``, read from
        ``aseg.stats`` when it exists (also when ``include_aseg=False``) and otherwise from the
        surface stats (FreeSurfer >= 6 writes it there); NaN with a warning when neither has it.

    Raises
    ------
    InputError
        ``subjects_dir`` or a named subject does not exist, no subjects found, bad ``missing``
        or ``measures``, a stats file is missing (with ``missing="error"``; names the subject
        and the expected path), or a surface table lacks a requested measure.
    FreeSurferParseError
        A stats file is truncated or damaged, including a surface table that lacks regions of
        its parcellation (``aparc``: the 34 Desikan-Killiany regions; ``aparc.DKTatlas``: the
        31 DKT regions; see :mod:`graymatter.io.freesurfer_regions`).

    Warns
    -----
    GraymatterWarning
        A DK subject without ``frontalpole``/``temporalpole`` (FreeSurfer omits regions that
        got no vertex), or, for other annotations, files lacking regions that other subjects'
        files of that hemisphere have; the subjects and regions are named.

    Examples
    --------
    >>> long = collect_stats("/data/freesurfer", annot="HCP-MMP1")  # doctest: +SKIP
    >>> volumes = wide_table(long, measure="GrayVol")  # doctest: +SKIP
    """
    root = Path(subjects_dir)
    if not root.is_dir():
        raise InputError(f"subjects_dir '{root}' is not an existing folder. Pass the FreeSurfer "
                         "SUBJECTS_DIR that holds one folder per subject.")
    if missing not in ("error", "skip"):
        raise InputError(f"missing must be 'error' or 'skip', got {missing!r}.")
    if not isinstance(annot, str) or not annot.strip() or "/" in annot:
        raise InputError(f"annot must be an annotation name such as 'aparc' or 'HCP-MMP1' (the "
                         f"<annot> in lh.<annot>.stats), got {annot!r}.")
    measures = _as_names(measures)
    names = _subject_names(root, subjects)
    frames = []
    for name in names:
        frame = _collect_subject(root, name, annot, measures, include_aseg, missing)
        if frame is not None:
            frames.append(frame)
    _check_region_sets(frames, annot)
    if not frames:
        raise InputError(f"No subject in '{root}' has the stats files needed (all "
                         f"{len(names)} skipped as incomplete; see the warnings).")
    long = pd.concat(frames, ignore_index=True)
    # One text dtype whatever the mix of cross-sectional (None) and longitudinal subjects.
    long = long.astype({"timepoint": "str", "hemisphere": "str"})
    logger.info("Read FreeSurfer stats of %d subjects from %s (%d rows)", len(frames), root,
                len(long))
    return long


def _as_names(measures) -> tuple[str, ...]:
    if isinstance(measures, str):
        measures = (measures,)
    measures = tuple(measures)
    if not measures or not all(isinstance(m, str) and m for m in measures):
        raise InputError(f"measures must be one or more column names of the surface stats "
                         f"table (e.g. 'GrayVol', 'ThickAvg', 'SurfArea'), got {measures!r}.")
    return measures


def _subject_names(root: Path, subjects) -> list[str]:
    if subjects is None:
        names = sorted(p.name for p in root.iterdir()
                       if p.is_dir() and not p.name.startswith((".", "fsaverage"))
                       and any((p / sub).is_dir() for sub in ("stats", "mri", "surf")))
        if not names:
            raise InputError(f"No FreeSurfer subject folders (with stats/, mri/ or surf/) in "
                             f"'{root}'. Is this the SUBJECTS_DIR?")
        return names
    if isinstance(subjects, str):
        subjects = [subjects]
    names = [str(s) for s in subjects]
    if not names:
        raise InputError("subjects is empty; pass subject folder names or None for all.")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(f"subjects names {format_choices(repeated)} more than once.")
    absent = [n for n in names if not (root / n).is_dir()]
    if absent:
        present = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise InputError(f"Subject folder(s) {format_choices(absent)} not found in '{root}' "
                         f"(folders there: {format_choices(present)}). Check the names.")
    return names


def _collect_subject(root: Path, name: str, annot: str, measures: tuple[str, ...],
                     include_aseg: bool, missing: str) -> pd.DataFrame | None:
    stats_dir = root / name / "stats"
    needed = [stats_dir / f"{hemi}.{annot}.stats" for hemi in ("lh", "rh")]
    if include_aseg:
        needed.append(stats_dir / "aseg.stats")
    absent = [p for p in needed if not p.is_file()]
    if absent:
        message = (f"Subject {name!r} has no {absent[0].name}: expected '{absent[0]}'"
                   + (f" (and {len(absent) - 1} more missing file(s))" if len(absent) > 1 else "")
                   + ". Did recon-all finish for this subject, and is annot the right name?")
        if missing == "error":
            raise InputError(message + " Pass missing='skip' to leave such subjects out.")
        warnings.warn(message + " Subject left out.", GraymatterWarning, stacklevel=3)
        return None
    base, timepoint, _ = parse_subject_name(name)
    records: list[tuple] = []
    etiv, etiv_source = np.nan, ""
    aseg_path = stats_dir / "aseg.stats"
    if aseg_path.is_file():
        aseg = read_stats(aseg_path)
        if aseg.etiv is not None:
            etiv, etiv_source = aseg.etiv, str(aseg_path)
        if include_aseg:
            _require_columns(aseg, ("StructName", ASEG_MEASURE))
            for region, value in zip(aseg.table["StructName"], aseg.table[ASEG_MEASURE],
                                     strict=True):
                records.append((None, region, ASEG_MEASURE, float(value), str(aseg_path)))
    for path in needed[:2]:
        surface = read_stats(path)
        hemi = path.name[:2]
        if surface.hemisphere not in (None, hemi):
            raise InputError(f"'{path}' says it is hemisphere {surface.hemisphere!r} in its "
                             f"header but its name says {hemi!r}. Was the file renamed?")
        _require_columns(surface, ("StructName", *measures))
        check_regions(path, surface.table["StructName"], annot, name)
        for measure in measures:
            for region, value in zip(surface.table["StructName"], surface.table[measure],
                                     strict=True):
                records.append((hemi, region, measure, float(value), str(path)))
        if np.isnan(etiv) and surface.etiv is not None:
            etiv, etiv_source = surface.etiv, str(path)
    if np.isnan(etiv):
        warnings.warn(f"Subject {name!r}: no eTIV found (no aseg.stats with an "
                      "EstimatedTotalIntraCranialVol measure, nor one in the surface stats); "
                      "its eTIV is NaN.", GraymatterWarning, stacklevel=3)
    records.append((None, "eTIV", "eTIV", float(etiv), etiv_source))
    frame = pd.DataFrame(records, columns=["hemisphere", "region", "measure", "value", "source"])
    frame.insert(0, "timepoint", timepoint)
    frame.insert(0, "base", base)
    frame.insert(0, "subject", name)
    return frame.astype({"value": "float64"})


def _check_region_sets(frames: list[pd.DataFrame], annot: str) -> None:
    """Warn about regions some subjects lack (annotations without a known region list)."""
    regions = {}
    for frame in frames:
        surface = frame[frame["hemisphere"].notna()]
        for (subject, hemi), rows in surface.groupby(["subject", "hemisphere"], sort=False):
            regions[(subject, hemi)] = pd.unique(rows["region"]).tolist()
    check_consistent_regions(regions, annot)


def _require_columns(stats, columns: Iterable[str]) -> None:
    absent = [c for c in columns if c not in stats.table.columns]
    if absent:
        raise InputError(f"'{stats.path}' has no column(s) {format_choices(absent)} in its "
                         f"table (columns: {format_choices(stats.table.columns)}). Choose "
                         "measures among those columns.")


def wide_table(long: pd.DataFrame, *, measure: str = "GrayVol",
               aseg_measure: str | None = "auto") -> pd.DataFrame:
    """Pivot a :func:`collect_stats` long table to subjects x regions, plus an ``eTIV`` column.

    Parameters
    ----------
    long : pandas.DataFrame
        Output of :func:`collect_stats` (columns ``subject``, ``hemisphere``, ``region``,
        ``measure``, ``value`` at least).
    measure : str, default="GrayVol"
        The surface measure to spread: one column per region, named ``lh_<region>`` /
        ``rh_<region>`` (e.g. ``lh_superiorfrontal``).
    aseg_measure : str or None, default="auto"
        Measure of the rows without hemisphere (aseg structures) to add, keeping their names
        (``Left-Amygdala``). ``"auto"``: ``"Volume_mm3"`` when ``measure`` is ``"GrayVol"``
        (volumes next to volumes), none otherwise. None: surface regions only.

    Returns
    -------
    wide : (n_subjects, n_regions + 1) pandas.DataFrame of float64
        Index ``"subject"`` (first-appearance order); columns: left-hemisphere regions, then
        right-hemisphere regions, then aseg structures (each in file order), then ``eTIV``.
        A region missing for some subject is NaN (logged). For longitudinal data, get each
        subject's base and time point with :func:`parse_subject_name` or from the ``base`` /
        ``timepoint`` columns of ``long``.

    Raises
    ------
    InputError
        ``long`` lacks a needed column, ``measure`` is not in it, or a subject has two values
        for one region.

    Examples
    --------
    >>> wide = wide_table(collect_stats("/data/freesurfer"))  # doctest: +SKIP
    >>> wide[["lh_superiorfrontal", "Left-Amygdala", "eTIV"]].head()  # doctest: +SKIP
    """
    needed = ("subject", "hemisphere", "region", "measure", "value")
    if not isinstance(long, pd.DataFrame) or any(c not in long.columns for c in needed):
        found = list(long.columns) if isinstance(long, pd.DataFrame) else type(long).__name__
        raise InputError(f"wide_table needs the long table of collect_stats (columns "
                         f"{format_choices(needed)}); got {found}.")
    available = sorted(long.loc[long["hemisphere"].notna(), "measure"].unique())
    if measure not in available:
        raise InputError(f"measure {measure!r} is not in the long table (surface measures "
                         f"there: {format_choices(available)}). Pass measures=[...] to "
                         "collect_stats to read it.")
    if aseg_measure == "auto":
        aseg_measure = ASEG_MEASURE if measure == "GrayVol" else None
    surface = long[long["hemisphere"].notna() & (long["measure"] == measure)]
    parts = [surface.assign(column=surface["hemisphere"].astype(str) + "_"
                                   + surface["region"].astype(str),
                            order=surface["hemisphere"].map({"lh": 0, "rh": 1}).fillna(2))]
    no_hemi = long["hemisphere"].isna()
    if aseg_measure is not None:
        aseg = long[no_hemi & (long["measure"] == aseg_measure)]
        parts.append(aseg.assign(column=aseg["region"].astype(str), order=3))
    etiv = long[no_hemi & (long["measure"] == "eTIV")]
    parts.append(etiv.assign(column="eTIV", order=4))
    cells = pd.concat(parts, ignore_index=True)
    repeated = cells[cells.duplicated(["subject", "column"])]
    if len(repeated):
        row = repeated.iloc[0]
        raise InputError(f"Subject {row['subject']!r} has more than one {row['column']!r} value "
                         "in the long table; was a subject read twice?")
    columns = (cells.drop_duplicates("column").sort_values("order", kind="stable")["column"])
    subjects = pd.unique(long["subject"])
    wide = cells.pivot(index="subject", columns="column", values="value")
    wide = wide.reindex(index=subjects, columns=columns).astype("float64")
    wide.index.name, wide.columns.name = "subject", None
    n_missing = int(wide.isna().to_numpy().sum())
    if n_missing:
        logger.warning("wide_table: %d missing value(s) (regions absent for some subjects or "
                       "eTIV unknown)", n_missing)
    return wide


__all__ = ["ASEG_MEASURE", "LONG_COLUMNS", "collect_stats", "parse_subject_name",
           "read_stats_table", "wide_table"]
