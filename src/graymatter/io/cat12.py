"""Read what CAT12 leaves beside its images: ``report/cat_*.xml`` and ``TIV.txt``.

CAT12 users already have each subject's total intracranial volume (TIV), absolute tissue volumes
and image-quality ratings. ``report/cat_<name>.xml`` holds them per subject (root element ``S``;
``subjectmeasures/vol_TIV``, ``subjectmeasures/vol_abs_CGW`` = ``[CSF GM WM WMH ...]`` in ml,
``qualityratings/{IQR,NCR,ICR,res_RMS}`` as school marks, 1 = best). "Estimate TIV" writes
``TIV.txt``: one row per xml file in the order the files were selected, tab-separated, either TIV
alone or ``TIV GM WM CSF WMH``, optionally preceded by the file name (``calcvol_savenames`` 1) or
its full path (2). Both are matched to participants by subject id, never by row order, unless the
file holds no names; then the caller must state the order.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from graymatter.errors import InputError, format_choices
from graymatter.io.images import find_images, match_files
from graymatter.io.participants import INDEX_NAME

#: Columns of :func:`read_cat12_reports` (volumes in ml; ratings as CAT12's marks, 1 = best).
REPORT_COLUMNS = ("tiv", "gm_ml", "wm_ml", "csf_ml", "wmh_ml",
                  "iqr", "ncr", "icr", "res_rms", "iqr_percent")

_TIV_FILE_COLUMNS = {1: ("tiv",), 5: ("tiv", "gm_ml", "wm_ml", "csf_ml", "wmh_ml")}
_QUALITY = {"IQR": "iqr", "NCR": "ncr", "ICR": "icr", "res_RMS": "res_rms"}
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|NaN|nan|Inf|-Inf")


def mark_to_percent(mark: float) -> float:
    """CAT12's rating in percent from a quality mark: ``clip(105 - 10 * mark, 0, 100)``.

    Parameters
    ----------
    mark : float
        A CAT12 quality mark (1 = excellent, 6 = failed).

    Examples
    --------
    >>> mark_to_percent(2.0)
    85.0
    """
    return float(np.clip(105.0 - 10.0 * float(mark), 0.0, 100.0))


def _numbers(text: str | None, path: Path, field: str) -> list[float]:
    """Parse a MATLAB-style value ``1.5`` or ``[1.5 2 3]`` / ``[1;2]`` into floats."""
    body = (text or "").strip().strip("[]").replace(";", " ").replace(",", " ")
    tokens = body.split()
    if not tokens or not all(_NUMBER.fullmatch(t) for t in tokens):
        raise InputError(f"CAT12 report '{path}': field '{field}' should hold numbers, found "
                         f"{(text or '').strip()[:60]!r}. The file may be damaged; re-run CAT12's "
                         "report or remove the file.")
    return [float(t) for t in tokens]


def _parse_xml(path: Path) -> ET.Element:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"Cannot read CAT12 report '{path}': {exc.strerror}.") from exc
    # CAT12 never writes a DOCTYPE; refusing one rules out entity expansion tricks.
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        raise InputError(f"CAT12 report '{path}' declares a DOCTYPE/ENTITY, which CAT12 never "
                         "writes; refusing to read it.")
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise InputError(f"CAT12 report '{path}' is not valid XML ({exc}); it may be truncated. "
                         "Re-run CAT12 for this subject or remove the file.") from exc
    return root


def read_cat12_report(path) -> dict[str, float]:
    """Read TIV, tissue volumes and quality ratings from one CAT12 ``cat_*.xml`` report.

    Parameters
    ----------
    path : str or os.PathLike
        A ``report/cat_<name>.xml`` file written by CAT12 (12.x).

    Returns
    -------
    measures : dict of str to float
        Keys of :data:`REPORT_COLUMNS`; ratings absent from the file are NaN. ``tiv`` is
        ``vol_TIV``, or the sum of ``vol_abs_CGW`` when ``vol_TIV`` is absent (as CAT12's
        "Estimate TIV" computes it).

    Raises
    ------
    InputError
        The file is not XML, has no ``subjectmeasures/vol_abs_CGW``, or a value is not a number.

    Examples
    --------
    >>> read_cat12_report("report/cat_sub-01_T1w.xml")["tiv"]  # doctest: +SKIP
    1498.7
    """
    path = Path(path)
    root = _parse_xml(path)
    cgw = root.find("subjectmeasures/vol_abs_CGW")
    if cgw is None:
        raise InputError(f"CAT12 report '{path}' has no subjectmeasures/vol_abs_CGW (absolute "
                         "tissue volumes): it is not a CAT12 segmentation report, or CAT12 "
                         "failed for this subject. Check the file or remove the subject.")
    volumes = _numbers(cgw.text, path, "subjectmeasures/vol_abs_CGW")
    if len(volumes) < 3:
        raise InputError(f"CAT12 report '{path}': vol_abs_CGW should list at least CSF, GM and "
                         f"WM volumes, found {len(volumes)} value(s).")
    tiv_node = root.find("subjectmeasures/vol_TIV")
    tiv = (_numbers(tiv_node.text, path, "subjectmeasures/vol_TIV")[0] if tiv_node is not None
           else float(np.nansum(volumes)))
    out = {"tiv": tiv, "csf_ml": volumes[0], "gm_ml": volumes[1], "wm_ml": volumes[2],
           "wmh_ml": volumes[3] if len(volumes) > 3 else float("nan")}
    for field, column in _QUALITY.items():
        node = root.find(f"qualityratings/{field}")
        out[column] = (_numbers(node.text, path, f"qualityratings/{field}")[0]
                       if node is not None else float("nan"))
    out["iqr_percent"] = (mark_to_percent(out["iqr"]) if np.isfinite(out["iqr"])
                          else float("nan"))
    return {c: float(out[c]) for c in REPORT_COLUMNS}


def read_cat12_reports(subject_ids: Sequence[str], reports) -> pd.DataFrame:
    """Read every subject's CAT12 report, matched to participants by id.

    Parameters
    ----------
    subject_ids : sequence of str, shape (n_subjects,)
        Participant ids, e.g. ``participants.index``.
    reports : str, os.PathLike, sequence of paths or mapping of str to path
        A glob pattern such as ``"cat12/report/cat_*.xml"``, a list of files, or a mapping
        subject id -> file; matched as :func:`graymatter.io.images.find_images` matches images.

    Returns
    -------
    table : (n_subjects, 10) pandas.DataFrame
        Indexed by ``participant_id``; columns :data:`REPORT_COLUMNS`.

    Examples
    --------
    >>> read_cat12_reports(participants.index, "cat12/report/cat_*.xml")  # doctest: +SKIP
    """
    files = find_images(subject_ids, reports)
    rows = {sid: read_cat12_report(path) for sid, path in files.items()}
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(REPORT_COLUMNS))
    table.index.name = INDEX_NAME
    return table


def _split_tiv_line(line: str) -> tuple[str | None, list[str]]:
    cells = [c.strip() for c in line.rstrip("\r\n").split("\t")]
    if len(cells) == 1:  # numbers only: CAT12 separates them by tabs, but be lenient
        cells = line.split()
    if cells and not _NUMBER.fullmatch(cells[0]):
        return cells[0], cells[1:]
    return None, cells


def read_cat12_tiv(path, subject_ids: Sequence[str]) -> pd.DataFrame:
    """Read the ``TIV.txt`` written by CAT12's "Estimate TIV".

    Parameters
    ----------
    path : str or os.PathLike
        The text file: one row per report, ``TIV`` or ``TIV GM WM CSF WMH`` (ml), with or
        without a leading file name or path.
    subject_ids : sequence of str, shape (n_subjects,)
        Participant ids. When the file names the reports, rows are matched to these ids by
        name; when it holds numbers only, ``subject_ids`` must list the subjects in the order
        the reports were given to CAT12 (the file cannot tell).

    Returns
    -------
    table : pandas.DataFrame
        Indexed by ``participant_id``, columns ``tiv`` or ``tiv, gm_ml, wm_ml, csf_ml, wmh_ml``.

    Raises
    ------
    InputError
        Rows of different widths, a value that is not a number, or a row count that differs
        from the number of subjects (numbers-only files).

    Examples
    --------
    >>> read_cat12_tiv("TIV.txt", ["sub-01", "sub-02"])  # doctest: +SKIP
    """
    path = Path(path)
    try:
        lines = [ln for ln in path.read_text(encoding="utf-8-sig").splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"Cannot read CAT12 TIV file '{path}': {exc}.") from exc
    names, values = [], []
    for number, line in enumerate(lines, start=1):
        name, cells = _split_tiv_line(line)
        if len(cells) not in _TIV_FILE_COLUMNS or not all(_NUMBER.fullmatch(c) for c in cells):
            raise InputError(f"{path}, line {number}: expected 1 (TIV) or 5 (TIV GM WM CSF WMH) "
                             f"numbers after an optional file name, found {line.strip()!r}. "
                             "Is this the TIV.txt of CAT12's 'Estimate TIV'?")
        names.append(name)
        values.append([float(c) for c in cells])
    widths = {len(v) for v in values}
    if not values or len(widths) != 1 or len({n is None for n in names}) != 1:
        raise InputError(f"CAT12 TIV file '{path}' is empty or mixes row formats; every row "
                         "must have the same columns. Re-run 'Estimate TIV'.")
    columns = _TIV_FILE_COLUMNS[widths.pop()]
    subjects = [str(s) for s in subject_ids]
    if names[0] is None:
        if len(values) != len(subjects):
            raise InputError(f"CAT12 TIV file '{path}' has {len(values)} rows but "
                             f"{len(subjects)} subjects were given, and it holds no file names "
                             "to match them by. Give the subjects in the order of the reports, "
                             "or re-run 'Estimate TIV' with file names saved.")
        rows = dict(zip(subjects, values))
    else:
        row_of = {Path(n.replace("\\", "/")): i for i, n in enumerate(names)}
        matched = match_files(subjects, list(row_of), f"the names in '{path}'")
        rows = {sid: values[row_of[name]] for sid, name in matched.items()}
    table = pd.DataFrame([rows[s] for s in subjects], index=pd.Index(subjects, name=INDEX_NAME),
                         columns=list(columns))
    return table


def add_cat12_measures(participants: pd.DataFrame, source, *,
                       columns: Sequence[str] = ("tiv",)) -> pd.DataFrame:
    """Return ``participants`` with CAT12's TIV (and other measures) added as columns.

    Parameters
    ----------
    participants : pandas.DataFrame
        Indexed by participant id (from :func:`graymatter.io.read_participants`).
    source : str, os.PathLike, sequence or mapping
        CAT12 reports (a ``cat_*.xml`` glob, list or mapping) or a ``TIV.txt`` file.
    columns : sequence of str, default=("tiv",)
        Which measures to add (names of :data:`REPORT_COLUMNS`).

    Returns
    -------
    participants : pandas.DataFrame
        A copy with the columns added.

    Raises
    ------
    InputError
        A column already exists in the table, or is not provided by the source.

    Examples
    --------
    >>> table = add_cat12_measures(participants, "cat12/report/cat_*.xml")  # doctest: +SKIP
    """
    src = str(source) if isinstance(source, (str, Path)) else None
    if src is not None and src.lower().endswith(".txt"):
        measures = read_cat12_tiv(src, participants.index)
    else:
        measures = read_cat12_reports(participants.index, source)
    unknown = [c for c in columns if c not in measures.columns]
    if unknown:
        raise InputError(f"CAT12 source '{source}' provides {format_choices(measures.columns)}; "
                         f"it has no {format_choices(unknown)}.")
    clash = [c for c in columns if c in participants.columns]
    if clash:
        raise InputError(f"The participants table already has column(s) "
                         f"{format_choices(clash)}; rename them or do not read them from CAT12.")
    return participants.join(measures[list(columns)])


__all__ = ["REPORT_COLUMNS", "add_cat12_measures", "mark_to_percent", "read_cat12_report",
           "read_cat12_reports", "read_cat12_tiv"]
