"""Read participant tables (BIDS ``participants.tsv`` or CSV) and align data to them by id.

Data are always aligned to participants **by subject id, never by row order**: a shuffled or
partial image list must not silently pair one subject's image with another subject's age.
"""

from __future__ import annotations

import csv
import gzip
import logging
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from graymatter.errors import GraymatterWarning, InputError, format_choices

logger = logging.getLogger("graymatter")

#: Column names recognised (case-insensitively, in this order) as the subject-id column.
ID_CANDIDATES = ("participant_id", "subject_id", "subject", "subjid", "id")

#: Cell values read as missing (after stripping whitespace); ``n/a`` is the BIDS convention.
MISSING_TOKENS = frozenset({"", "n/a", "N/A", "NA", "NaN", "nan"})

INDEX_NAME = "participant_id"


def _open_text(path: Path):
    # utf-8-sig drops the byte-order mark that spreadsheet programs put before the first header.
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _separator(path: Path, header_line: str) -> str:
    name = path.name.lower().removesuffix(".gz")
    expected = {".tsv": "\t", ".csv": ","}.get(Path(name).suffix)
    if expected is not None and expected in header_line:
        return expected
    # Unknown extension, or a mislabelled file (a TSV saved as .csv): sniff the header line.
    counts = {sep: header_line.count(sep) for sep in ("\t", ",", ";")}
    best = max(counts, key=counts.get)
    if counts[best] == 0:
        return expected or "\t"
    if expected is not None:
        logger.info("%s: header has no %r; reading it as %r-separated", path, expected, best)
    return best


def _check_file(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise InputError(f"Table file '{path}' does not exist (looked in '{Path.cwd()}' for "
                         "relative paths). Check the path and its spelling.")
    if not path.is_file():
        raise InputError(f"'{path}' is a folder, not a table file. Pass the path of a .tsv or "
                         ".csv file.")
    return path


def _read_cells(path: Path) -> tuple[list[str], list[list[str]], list[int]]:
    """Return header, rows of stripped string cells, and each row's 1-based line number."""
    try:
        with _open_text(path) as handle:
            first = handle.readline()
            sep = _separator(path, first)
            handle.seek(0)
            reader = csv.reader(handle, delimiter=sep)
            header = next(reader, None)
            rows, lines = [], []
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue  # blank line: skipped, but line numbers still count it
                rows.append([cell.strip() for cell in row])
                lines.append(reader.line_num)
    except (UnicodeDecodeError, OSError, csv.Error, EOFError) as exc:
        raise InputError(f"Cannot read table '{path}': {exc}. Expected a UTF-8 text file with "
                         "tab- or comma-separated values (export it from your spreadsheet as "
                         "CSV UTF-8).") from exc
    if not header or not any(h.strip() for h in header):
        raise InputError(f"Table '{path}' is empty: expected a header line with column names "
                         "followed by one row per subject.")
    header = [h.strip() for h in header]
    if not rows:
        raise InputError(f"Table '{path}' has a header ({format_choices(header, 6)}) but no data "
                         "rows: add one row per subject.")
    for row, line in zip(rows, lines):
        if len(row) != len(header):
            raise InputError(
                f"Table '{path}', line {line}: expected {len(header)} fields like the header, "
                f"found {len(row)}. Check for a stray separator, a missing value (write n/a) or "
                "an unquoted value containing the separator.")
    blank = [name for name in header if not name]
    if blank:
        raise InputError(f"Table '{path}': the header (line 1) has {len(blank)} empty column "
                         "name(s). Name every column.")
    seen, dupes = set(), []
    for name in header:
        if name in seen and name not in dupes:
            dupes.append(name)
        seen.add(name)
    if dupes:
        raise InputError(f"Table '{path}': duplicate column names in the header (line 1): "
                         f"{format_choices(dupes)}. Every column name must be unique.")
    return header, rows, lines


def _choose_id_column(path: Path, header: list[str], id_column: str | None) -> str:
    if id_column is not None:
        if id_column in header:
            return id_column
        folded = [h for h in header if h.lower() == str(id_column).lower()]
        if len(folded) == 1:
            return folded[0]
        raise InputError(f"Table '{path}' has no column id_column={id_column!r}. Columns found: "
                         f"{format_choices(header)}. Pass one of them as id_column.")
    if INDEX_NAME in header:
        return INDEX_NAME
    lower = {h.lower(): h for h in header}
    for candidate in ID_CANDIDATES:
        if candidate in lower:
            logger.info("%s: using column %r as subject ids", path, lower[candidate])
            return lower[candidate]
    raise InputError(
        f"Table '{path}': no subject-id column found. Expected one named "
        f"{format_choices(ID_CANDIDATES)} (any case); columns found: {format_choices(header)}. "
        f"Pass id_column=... naming the column that holds subject ids (e.g. "
        f"id_column={header[0]!r}).")


def read_id_table(path, *, id_column: str | None = None) -> tuple[pd.DataFrame, Path, dict]:
    """Read a table with one row per subject as strings, indexed by validated subject ids.

    Shared by :func:`read_participants` and :func:`graymatter.io.regions.read_regions`.

    Parameters
    ----------
    path : str or os.PathLike
        ``.tsv`` / ``.csv`` file (optionally ``.gz``); other extensions are sniffed.
    id_column : str, optional
        Column holding subject ids; default as in :func:`read_participants`.

    Returns
    -------
    cells : pandas.DataFrame of object, shape (n_subjects, n_columns)
        Stripped string cells, missing ones as ``None``; index = ids (str), named
        ``"participant_id"``; the id column removed.
    path : pathlib.Path
        The file read.
    lines : dict of str to int
        Line number of each subject's row in the file (header = line 1), for error messages.
    """
    path = _check_file(path)
    header, rows, lines = _read_cells(path)
    id_col = _choose_id_column(path, header, id_column)
    k = header.index(id_col)
    ids = [row[k] for row in rows]
    blank = [line for sid, line in zip(ids, lines) if sid in MISSING_TOKENS]
    if blank:
        raise InputError(f"Table '{path}': {len(blank)} row(s) have a blank subject id in column "
                         f"{id_col!r}, at line(s) {format_choices(blank)} (header = line 1). "
                         "Fill in the ids or delete those rows.")
    where: dict[str, list[int]] = {}
    for sid, line in zip(ids, lines):
        where.setdefault(sid, []).append(line)
    dupes = {sid: ls for sid, ls in where.items() if len(ls) > 1}
    if dupes:
        shown = [f"{sid!r} (lines {', '.join(map(str, ls))})" for sid, ls in dupes.items()]
        raise InputError(f"Table '{path}': {len(dupes)} duplicate subject id(s) in column "
                         f"{id_col!r}: {format_choices(shown, 6)}. Each subject must appear on "
                         "exactly one row; remove or rename the duplicates.")
    columns = [h for h in header if h != id_col]
    data = [[None if c in MISSING_TOKENS else c for j, c in enumerate(row) if j != k]
            for row in rows]
    cells = pd.DataFrame(data, columns=columns, dtype=object,
                         index=pd.Index(ids, dtype=object, name=INDEX_NAME))
    return cells, path, dict(zip(ids, lines))


def _convert_column(name: str, values: pd.Series, path: Path, lines: dict) -> pd.Series:
    present = values.dropna()
    numbers = pd.to_numeric(present, errors="coerce")
    if numbers.notna().all():  # all-missing columns become float NaN
        return pd.to_numeric(values)
    text_bad = present[numbers.isna()]
    if numbers.notna().sum() > len(present) / 2:
        # Mostly numbers with a few words is usually a missing-value code like "unknown".
        sid = text_bad.index[0]
        warnings.warn(
            f"Table '{path}', column {name!r} holds numbers but also {len(text_bad)} text "
            f"value(s) (first: {text_bad.iloc[0]!r} at line {lines[sid]}); the column is read as "
            "text. Write missing values as n/a to keep it numeric.", GraymatterWarning,
            stacklevel=3)
    return values.astype("str").where(values.notna())  # pandas 2 would write None as "None"


def read_participants(path, *, id_column: str | None = None) -> pd.DataFrame:
    """Read a participants table (BIDS ``participants.tsv`` or a CSV).

    Parameters
    ----------
    path : str or os.PathLike
        ``.tsv`` (tab-separated) or ``.csv`` (comma-separated) file, optionally gzipped; other
        extensions are sniffed (tab vs comma). ``n/a``, ``NA``, ``NaN`` and empty cells are
        missing values.
    id_column : str, optional
        Column holding subject ids. Default: ``participant_id`` if present, else the first
        case-insensitive match among ``participant_id, subject_id, subject, subjid, id``.

    Returns
    -------
    participants : pandas.DataFrame, shape (n_subjects, n_columns)
        Indexed by subject id (str, index name ``"participant_id"``, file order); the id column
        is removed. Columns whose values are all numbers (or all missing) are numeric;
        others stay text (pandas string dtype).

    Raises
    ------
    InputError
        Missing file, empty table, ragged row, no id column, blank or duplicate ids (with line
        numbers, header = line 1).

    Examples
    --------
    >>> participants = read_participants("participants.tsv")  # doctest: +SKIP
    >>> participants.loc["sub-01", "age"]  # doctest: +SKIP
    31.0
    """
    cells, path, lines = read_id_table(path, id_column=id_column)
    out = {name: _convert_column(name, cells[name], path, lines) for name in cells.columns}
    table = pd.DataFrame(out, index=cells.index.astype("str"))
    table.index.name = INDEX_NAME
    logger.info("Read %d participants x %d columns from %s", *table.shape, path)
    return table


def _normalise_id(value: str) -> str:
    return re.sub(r"^sub-", "", str(value).strip().lower())


def match_subjects(subject_ids: Sequence[str], available_ids: Sequence[str], *,
                   what: str) -> list[str]:
    """Check that data exist for every participant and return the ids to use, in order.

    Parameters
    ----------
    subject_ids : sequence of str, shape (n_subjects,)
        Participant ids, in the order the analysis uses (the participants table order).
    available_ids : sequence of str
        Ids for which the data source (image list, regions table...) has data, in any order.
    what : str
        Describes the data source for messages, e.g. ``"regions table 'thick.csv'"``.

    Returns
    -------
    ids : list of str, shape (n_subjects,)
        ``subject_ids`` as str, in participants order: index the data source with these.

    Raises
    ------
    InputError
        Some participants have no data (names the first few and how many, with a hint when ids
        differ only by a ``sub-`` prefix, case or whitespace).

    Warns
    -----
    GraymatterWarning
        Some available ids are not participants; those data are ignored.

    Examples
    --------
    >>> match_subjects(["sub-01", "sub-02"], ["sub-02", "sub-01", "sub-03"], what="x")
    ... # doctest: +SKIP
    ['sub-01', 'sub-02']
    """
    subjects = [str(s) for s in subject_ids]
    available = [str(a) for a in available_ids]
    available_set = set(available)
    missing = [s for s in subjects if s not in available_set]
    if missing:
        hint = ""
        normalised = {_normalise_id(a): a for a in available}
        near = [(s, normalised[_normalise_id(s)]) for s in missing
                if _normalise_id(s) in normalised]
        if near:
            pairs = ", ".join(f"{s!r} vs {a!r}" for s, a in near[:3])
            hint = (f" {len(near)} of them differ only by a 'sub-' prefix, letter case or "
                    f"whitespace ({pairs}): make the ids identical in both places.")
        raise InputError(
            f"{len(missing)} of {len(subjects)} participants have no data in {what}: "
            f"{format_choices(missing, 8)}. Ids found there include: "
            f"{format_choices(available, 5)}.{hint} Add the missing data, or remove those "
            "participants from the participants table.")
    subject_set = set(subjects)
    extra = [a for a in available if a not in subject_set]
    if extra:
        warnings.warn(f"{len(extra)} rows of {what} have no participant and are ignored: "
                      f"{format_choices(extra, 8)}", GraymatterWarning, stacklevel=2)
    return subjects


__all__ = ["read_participants", "match_subjects", "read_id_table", "ID_CANDIDATES",
           "MISSING_TOKENS"]
