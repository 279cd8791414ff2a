"""Read subjects x regions tables (cortical thickness, volumes... one column per region).

Besides plain CSV/TSV tables with a subject-id column, :func:`read_regions` recognises the
outputs of FreeSurfer's ``asegstats2table`` and ``aparcstats2table`` by their first header cell
(``Measure:volume``, ``lh.aparc.thickness``...) and reads them with
:func:`graymatter.io.freesurfer_tables.read_stats_table`. The two hemispheres of
``aparcstats2table`` (one file each) and an ``asegstats2table`` table can be given together;
they are joined column-wise on subject id.
"""

from __future__ import annotations

import gzip
import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from graymatter.errors import InputError, format_choices
from graymatter.io.freesurfer_tables import read_stats_table
from graymatter.io.participants import INDEX_NAME, read_id_table

logger = logging.getLogger("graymatter")

# First header cell of asegstats2table (Measure:volume, Measure:mean...) and aparcstats2table
# (<hemi>.<parcellation>.<measure>, e.g. lh.aparc.a2009s.thickness).
_ASEG_HEADER = re.compile(r"Measure:\S+")
_APARC_HEADER = re.compile(r"(lh|rh)\.(\S+)\.([^.\s]+)")


def stats_table_header(path) -> str | None:
    """The first header cell of a FreeSurfer ``*stats2table`` output, or None for other tables.

    Parameters
    ----------
    path : str or os.PathLike
        A text table (``.gz`` allowed). A missing or unreadable file gives None (the table
        reader then reports it).

    Returns
    -------
    str or None
        E.g. ``"Measure:volume"`` (asegstats2table) or ``"lh.aparc.thickness"``
        (aparcstats2table); None when the first cell is anything else.

    Examples
    --------
    >>> stats_table_header("aseg_stats.txt")  # doctest: +SKIP
    'Measure:volume'
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", errors="replace") as handle:
            first = next((line for line in handle if line.strip()), "")
    except OSError:
        return None
    cell = re.split(r"[\t,]|\s+", first.strip(), maxsplit=1)[0].strip().strip('"')
    if _ASEG_HEADER.fullmatch(cell) or _APARC_HEADER.fullmatch(cell):
        return cell
    return None


def read_regions(path, *, id_column: str | None = None) -> pd.DataFrame:
    """Read a subjects x regions table of numbers.

    Parameters
    ----------
    path : str or os.PathLike, or a list of them
        ``.csv`` / ``.tsv`` file (optionally gzipped; other extensions sniffed) with one row per
        subject and one column per region, e.g. an ENIGMA ``CortThick.csv``. An
        ``asegstats2table`` / ``aparcstats2table`` output is recognised by its first header
        cell (``Measure:volume``, ``lh.aparc.thickness``...): its first column holds the
        subject ids whatever ``id_column`` says. A list of such FreeSurfer tables (at most one
        per hemisphere of one parcellation and measure, plus at most one aseg table, all with
        the same subjects) is joined column-wise; summary columns repeated with equal values
        (``eTIV``, ``BrainSegVolNotVent``) are kept once. ``n/a``, ``NA``, ``NaN`` and empty
        cells are missing.
    id_column : str, optional
        Column holding subject ids; same default rules as
        :func:`graymatter.io.participants.read_participants` (``participant_id``, ``subject_id``,
        ``subject``, ``subjid``, ``id``, any case). Not used for FreeSurfer tables.

    Returns
    -------
    regions : pandas.DataFrame of float64, shape (n_subjects, n_regions)
        Indexed by subject id (str, index name ``"participant_id"``, file order); columns are the
        region names in file order. Every non-id column is kept (summary columns such as
        ``ICV`` or ``LThickness`` too: select the columns you want to analyse). A region whose
        values are all missing is kept (the GLM masks features with missing values and warns).

    Raises
    ------
    InputError
        Missing or empty file, no id column, blank or duplicate ids, duplicate region names, a
        cell that is not a number (names the line, column and value), or FreeSurfer tables that
        cannot be joined (names the files and what differs).

    Examples
    --------
    >>> thickness = read_regions("metr2_CortThick.csv")  # doctest: +SKIP
    >>> thickness.shape  # doctest: +SKIP
    (20, 73)
    >>> both = read_regions(["lh.thickness.txt", "rh.thickness.txt"])  # doctest: +SKIP
    """
    if isinstance(path, (list, tuple)):
        if not path:
            raise InputError("No regions table given: pass a file (or one aparcstats2table "
                             "output per hemisphere).")
        tables = [_read_one(p, id_column) for p in path]
        table = tables[0] if len(tables) == 1 else _join_stats_tables(tables, list(path))
    else:
        table = _read_one(path, id_column)
    return table


def _read_one(path, id_column) -> pd.DataFrame:
    if isinstance(path, (str, os.PathLike)) and stats_table_header(path) is not None:
        table = read_stats_table(path)
        _refuse_transposed(table, path)
        table.index.name = INDEX_NAME
        table.attrs["path"] = str(path)
        _warn_empty(table, path)
        return table
    cells, path, lines = read_id_table(path, id_column=id_column)
    if cells.shape[1] == 0:
        raise InputError(f"Regions table '{path}' has only the subject-id column: expected one "
                         "more column per region.")
    values = np.empty(cells.shape, dtype=np.float64)
    for j, name in enumerate(cells.columns):
        column = cells[name]
        numbers = pd.to_numeric(column, errors="coerce")
        bad = column.notna() & numbers.isna()
        if bad.any():
            sid = bad.index[bad.to_numpy()][0]
            raise InputError(
                f"Regions table '{path}', line {lines[sid]} (subject {sid!r}), column {name!r}: "
                f"expected a number, found {column[sid]!r} ({int(bad.sum())} non-numeric "
                f"cell(s) in this column). Write missing values as n/a or leave the cell empty; "
                "if this column is not a region, remove it from the table.")
        values[:, j] = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
    table = pd.DataFrame(values, index=pd.Index(cells.index.astype("str"), name=INDEX_NAME),
                         columns=list(cells.columns))
    table.attrs["path"] = str(path)
    _warn_empty(table, path)
    n_missing = int(table.isna().to_numpy().sum())
    logger.info("Read %d subjects x %d regions from %s (%d missing values)", *table.shape, path,
                n_missing)
    return table


# Summary measures both tools write: rows, not columns, of a --transpose output.
_SUMMARY_NAMES = frozenset({"eTIV", "EstimatedTotalIntraCranialVol", "BrainSegVolNotVent"})


def _refuse_transposed(table: pd.DataFrame, path) -> None:
    """Refuse a ``--transpose`` table (structures as rows): subjects and regions would swap."""
    match = _APARC_HEADER.fullmatch(table.attrs["measure"])
    rows = [str(r) for r in table.index]
    prefix = match.group(1) + "_" if match else None
    hemi_rows = prefix is not None and sum(r.startswith(prefix) for r in rows) > len(rows) / 2
    if hemi_rows or _SUMMARY_NAMES.intersection(rows):
        raise InputError(f"Regions table '{path}' has structures as rows ({format_choices(rows, 4)}"
                         "): it looks like a *stats2table --transpose output. Write it without "
                         "--transpose (one row per subject) or transpose it before use.")


def _warn_empty(table: pd.DataFrame, path) -> None:
    empty = table.columns[table.isna().all()].tolist()
    if empty:
        logger.warning("%s: %d region(s) have no values at all and will be masked out: %s",
                       path, len(empty), format_choices(empty))


def _join_stats_tables(tables: list[pd.DataFrame], paths: list) -> pd.DataFrame:
    """Join aparcstats2table hemispheres (and an asegstats2table table) on subject id."""
    kinds: dict[str, str] = {}
    surface = None
    for table, path in zip(tables, paths, strict=True):
        header = table.attrs.get("measure")
        if header is None:
            raise InputError(
                f"Regions table '{path}' is not an asegstats2table/aparcstats2table output "
                f"(its first header cell is not 'Measure:...' nor '<lh|rh>.<parc>.<measure>'). "
                "Several regions files are joined only when each is such a FreeSurfer table; "
                "otherwise merge them into one table with a subject-id column.")
        match = _APARC_HEADER.fullmatch(header)
        kind = match.group(1) if match else "aseg"
        if kind in kinds:
            raise InputError(f"Regions tables '{kinds[kind]}' and '{path}' are both {kind} "
                             f"tables ({header}); give at most one lh and one rh "
                             "aparcstats2table output and one asegstats2table output.")
        kinds[kind] = str(path)
        if match:
            if surface is not None and surface[1:] != match.groups()[1:]:
                raise InputError(
                    f"Regions tables '{surface[0]}' ({surface[1]}.{surface[2]}) and '{path}' "
                    f"({header}) hold different parcellations or measures; the two hemispheres "
                    "must come from aparcstats2table runs with the same --parc and --meas.")
            surface = surface or (str(path), *match.groups()[1:])
    first, first_path = tables[0], paths[0]
    joined = first
    for table, path in zip(tables[1:], paths[1:], strict=True):
        _same_subjects(first, first_path, table, path)
        table = table.loc[first.index]
        shared = [c for c in table.columns if c in joined.columns]
        for column in shared:
            a, b = joined[column].to_numpy(), table[column].to_numpy()
            if not np.allclose(a, b, rtol=1e-6, atol=0.0, equal_nan=True):
                raise InputError(f"Column {column!r} is in both '{first_path}' and '{path}' "
                                 "with different values; were the tables made from different "
                                 "FreeSurfer runs?")
        joined = pd.concat([joined, table.drop(columns=shared)], axis=1)
    joined.attrs = {"measure": "+".join(t.attrs["measure"] for t in tables),
                    "path": [str(p) for p in paths]}
    logger.info("Joined %d FreeSurfer tables: %d subjects x %d columns", len(tables),
                *joined.shape)
    return joined


def _same_subjects(first: pd.DataFrame, first_path, other: pd.DataFrame, path) -> None:
    only_first = [s for s in first.index if s not in set(other.index)]
    only_other = [s for s in other.index if s not in set(first.index)]
    if only_first or only_other:
        raise InputError(
            f"Regions tables '{first_path}' and '{path}' list different subjects: only in the "
            f"first: {format_choices(only_first, 5) or 'none'}; only in the second: "
            f"{format_choices(only_other, 5) or 'none'}. Run aparcstats2table/asegstats2table "
            "with the same --subjects list for every table.")


__all__ = ["read_regions", "stats_table_header"]
