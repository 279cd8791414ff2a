"""Read subjects x regions tables (cortical thickness, volumes... one column per region)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from graymatter.errors import InputError, format_choices
from graymatter.io.participants import INDEX_NAME, read_id_table

logger = logging.getLogger("graymatter")


def read_regions(path, *, id_column: str | None = None) -> pd.DataFrame:
    """Read a subjects x regions table of numbers.

    Parameters
    ----------
    path : str or os.PathLike
        ``.csv`` / ``.tsv`` file (optionally gzipped; other extensions sniffed) with one row per
        subject and one column per region, e.g. an ENIGMA ``CortThick.csv`` or a FreeSurfer
        ``aparcstats2table`` output. ``n/a``, ``NA``, ``NaN`` and empty cells are missing.
    id_column : str, optional
        Column holding subject ids; same default rules as
        :func:`graymatter.io.participants.read_participants` (``participant_id``, ``subject_id``,
        ``subject``, ``subjid``, ``id``, any case).

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
        Missing or empty file, no id column, blank or duplicate ids, duplicate region names, or
        a cell that is not a number (names the line, column and value).

    Examples
    --------
    >>> thickness = read_regions("metr2_CortThick.csv")  # doctest: +SKIP
    >>> thickness.shape  # doctest: +SKIP
    (20, 73)
    """
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
    empty = table.columns[table.isna().all()].tolist()
    if empty:
        logger.warning("%s: %d region(s) have no values at all and will be masked out: %s",
                       path, len(empty), format_choices(empty))
    n_missing = int(table.isna().to_numpy().sum())
    logger.info("Read %d subjects x %d regions from %s (%d missing values)", *table.shape, path,
                n_missing)
    return table


__all__ = ["read_regions"]
