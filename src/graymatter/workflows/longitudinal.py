"""Regional and longitudinal workflows (Study B): FreeSurfer tables, paired change, clinical PLS.

Three steps, each a function the command line and study files call:

- :func:`freesurfer_table`: a FreeSurfer ``SUBJECTS_DIR`` -> one subjects x regions TSV (e.g.
  gray-matter volume per HCP-MMP1 region) with a provenance sidecar;
- :func:`run_longitudinal`: pre and post tables -> a regional paired comparison (post vs pre,
  optionally adjusted for covariates such as ΔTIV) with max-T FWE and FDR;
- :func:`run_pls_clinical`: pre/post tables and clinical scores -> PLS of clinical change on
  regional change, with permutation p, bootstrap z-scores and cross-validated predictions.

Subjects are matched by id, never by row order. A table holding both sessions (e.g. FreeSurfer
longitudinal runs ``<tp>.long.<base>``, or ``sub-01_ses-pre``) can be given as both ``pre`` and
``post`` with ``session_pre`` / ``session_post`` naming each session's label in the row ids.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError, format_choices
from ..io.atomic import write_json, write_tsv
from ..io.outputs import check_writable, owns_output_folder
from ..io.participants import match_subjects, read_participants
from ..io.provenance import input_record, provenance_record
from ..io.regions import read_regions
from ..stats.paired import PairedResult, change_scores, paired_change
from ..stats.pls import ClinicalPLSResult, clinical_pls

__all__ = ["freesurfer_table", "run_regional", "run_longitudinal", "run_pls_clinical", "select_columns",
           "PAIRED_TABLE", "PAIRED_SIDECAR", "PLS_SUMMARY", "PLS_REGIONAL", "PLS_PREDICTIONS"]

logger = logging.getLogger("graymatter")

#: File names written by :func:`run_longitudinal` and :func:`run_pls_clinical` in ``out_dir``.
PAIRED_TABLE, PAIRED_SIDECAR = "paired_change.tsv", "paired_change.json"
PLS_SUMMARY, PLS_REGIONAL, PLS_PREDICTIONS = ("pls_clinical.json", "pls_clinical_regional.tsv",
                                              "pls_clinical_predictions.tsv")

_OPTIMISM_NOTE = ("r is the in-sample correlation between fitted and observed clinical change; "
                  "with more regions than subjects it is optimistic (high even for noise). "
                  "p_perm accounts for that; cv_r (cross-validated) estimates how well the "
                  "regional pattern predicts a new patient.")


# ================================================================================ helpers

def select_columns(table: pd.DataFrame, patterns: str | Sequence[str] | None, *,
                   what: str = "regions table") -> pd.DataFrame:
    """Keep the columns of ``table`` whose names match any of ``patterns`` (shell wildcards).

    Parameters
    ----------
    table : (n_subjects, n_columns) pandas.DataFrame
    patterns : str, sequence of str or None
        Patterns such as ``"*_thickavg"`` or ``["lh_*", "rh_*"]`` (case-sensitive); None keeps
        every column.
    what : str
        Describes the table in error messages.

    Returns
    -------
    (n_subjects, n_selected) pandas.DataFrame
        The matching columns, in table order.

    Raises
    ------
    InputError
        A pattern matches no column (names the pattern and shows the columns).

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame([[1.0, 2.0, 3.0]], columns=["L_a_thickavg", "R_a_thickavg", "ICV"])
    >>> select_columns(t, "*_thickavg").columns.tolist()
    ['L_a_thickavg', 'R_a_thickavg']
    """
    if patterns is None:
        return table
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    keep = np.zeros(table.shape[1], dtype=bool)
    for pattern in patterns:
        hits = np.array([fnmatch.fnmatchcase(str(c), pattern) for c in table.columns], dtype=bool)
        if not hits.any():
            raise InputError(f"column pattern {pattern!r} matches no column of the {what} (columns: "
                             f"{format_choices(table.columns)}). Use shell wildcards, e.g. "
                             "'*_thickavg' or 'lh_*'.")
        keep |= hits
    return table.loc[:, keep]


def _read_table(source, name: str, id_column, inputs: dict) -> pd.DataFrame:
    """A subjects x regions table from a path (recorded in ``inputs``) or a DataFrame."""
    if isinstance(source, pd.DataFrame):
        table = source.copy()
        table.index = table.index.map(str)
        inputs[name] = {"source": "DataFrame", "shape": list(table.shape)}
        return table
    several = isinstance(source, (list, tuple))  # FreeSurfer tables, one per hemisphere
    if not (several or isinstance(source, (str, os.PathLike))):
        raise InputError(f"{name} must be a path to a subjects x regions table (CSV/TSV) or a "
                         f"pandas DataFrame, got {type(source).__name__}.")
    table = read_regions(source, id_column=id_column)
    inputs[name] = [input_record(p) for p in source] if several else input_record(source)
    return table


def _session_rows(table: pd.DataFrame, label: str | None, name: str) -> pd.DataFrame:
    """Rows of session ``label``, re-indexed by participant id (the label and its separator removed).

    A row id matches when it ends with ``<sep><label>`` or starts with ``<label><sep>`` (sep one
    of ``_ - .``); FreeSurfer longitudinal ids ``<tp>.long.<base>`` are matched on ``<tp>``, so
    ``13900_01.long.13900_base`` is participant ``13900`` at session ``01``.
    """
    if label is None:
        return table
    from ..io.freesurfer_tables import parse_subject_name

    label = str(label)
    ids = {}
    for rid in table.index:
        _, timepoint, is_long = parse_subject_name(rid)
        stem = timepoint if is_long else rid
        for sep in ("_", "-", "."):
            if stem.endswith(sep + label) and len(stem) > len(label) + 1:
                ids[rid] = stem[:-len(label) - 1]
                break
            if stem.startswith(label + sep) and len(stem) > len(label) + 1:
                ids[rid] = stem[len(label) + 1:]
                break
    if not ids:
        raise InputError(f"session_{name}={label!r} matches no row id of the {name} table (ids "
                         f"there: {format_choices(table.index, 5)}); a row id must end with "
                         f"'_{label}' (or '-', '.') or start with '{label}_', e.g. 'sub-01_{label}'.")
    rows = table.loc[list(ids)]
    rows.index = pd.Index([ids[r] for r in rows.index], name=table.index.name)
    if rows.index.has_duplicates:
        dup = rows.index[rows.index.duplicated()].unique()
        raise InputError(f"session_{name}={label!r} gives participant(s) {format_choices(dup)} more "
                         f"than one row of the {name} table; make the session label unambiguous.")
    return rows


def add_delta_tiv(table: pd.DataFrame, tiv_pre: str, tiv_post: str) -> pd.DataFrame:
    """A copy of the participants table with ``delta_tiv`` = TIV after - TIV before.

    Parameters
    ----------
    table : pandas.DataFrame
        Participants, one row per subject.
    tiv_pre, tiv_post : str
        Its columns of total intracranial volume per session.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    InputError
        A column is missing.

    Examples
    --------
    >>> t = pd.DataFrame({"tiv_a": [1500.0], "tiv_b": [1490.0]}, index=["s1"])
    >>> add_delta_tiv(t, "tiv_a", "tiv_b")["delta_tiv"].tolist()
    [-10.0]
    """
    for column in (tiv_pre, tiv_post):
        if column not in table.columns:
            raise InputError(f"participants has no column {column!r} (columns: "
                             f"{', '.join(map(str, table.columns))}); name the TIV columns "
                             "before and after (e.g. tiv_pre tiv_post).")
    table = table.copy()
    table["delta_tiv"] = (pd.to_numeric(table[tiv_post], errors="coerce")
                          - pd.to_numeric(table[tiv_pre], errors="coerce"))
    return table


def _paired_inputs(participants, pre, post, *, id_column, session_pre, session_post, columns):
    """Read and align participants, pre and post (participants' order); return them and inputs."""
    inputs: dict = {}
    if isinstance(participants, pd.DataFrame):
        table = participants.copy()
        table.index = table.index.map(str)
        inputs["participants"] = {"source": "DataFrame", "shape": list(table.shape)}
    else:
        table = read_participants(participants, id_column=id_column)
        inputs["participants"] = input_record(participants)
    frames = {}
    for name, source, label in (("pre", pre, session_pre), ("post", post, session_post)):
        frame = _session_rows(_read_table(source, name, id_column, inputs), label, name)
        frame = select_columns(frame, columns, what=f"{name} table")
        ids = match_subjects(list(table.index), list(frame.index), what=f"the {name} table")
        frames[name] = frame.loc[ids]
    return table, frames["pre"], frames["post"], inputs


# ================================================================================ FreeSurfer

def freesurfer_table(subjects_dir, *, out, annot: str = "aparc", measure: str = "GrayVol",
                     subjects: Sequence[str] | None = None, missing: str = "error") -> pd.DataFrame:
    """Collect a FreeSurfer SUBJECTS_DIR into one subjects x regions TSV, with a JSON sidecar.

    Parameters
    ----------
    subjects_dir : str or os.PathLike
        The FreeSurfer ``SUBJECTS_DIR`` (one folder per subject, each with ``stats/``).
    out : str or os.PathLike
        Output table, ending ``.tsv`` (or ``.tsv.gz``); the sidecar is written beside it with
        the suffix ``.json`` (``table.tsv`` -> ``table.json``).
    annot : str, default="aparc"
        Annotation of the surface stats (``lh.<annot>.stats``), e.g. ``"HCP-MMP1"``.
    measure : str, default="GrayVol"
        Surface measure, e.g. ``"GrayVol"`` (mm³; aseg volumes are then added), ``"ThickAvg"``,
        ``"SurfArea"``.
    subjects : sequence of str, optional
        Subject folders to read (default: all FreeSurfer subjects found).
    missing : {"error", "skip"}, default="error"
        Subjects lacking a stats file: raise, or leave them out with a warning.

    Returns
    -------
    (n_subjects, n_columns) pandas.DataFrame
        Index ``subject``; columns ``lh_<region>``, ``rh_<region>``, aseg structures (for
        ``GrayVol``) and ``eTIV``, as :func:`graymatter.io.freesurfer_tables.wide_table`.

    Raises
    ------
    InputError
        Missing folder or files, unknown measure, an ``out`` not ending in ``.tsv``.

    Notes
    -----
    The sidecar records, for every stats file read, its SHA-256, size, the program and
    FreeSurfer version from its header, plus the parameters and the table's own SHA-256.
    ``aseg.stats`` is required only for ``GrayVol`` (eTIV is read from the surface stats
    otherwise when FreeSurfer >= 6 wrote it there).

    Examples
    --------
    >>> wide = freesurfer_table("/data/freesurfer", out="gmv.tsv", annot="HCP-MMP1")
    ... # doctest: +SKIP
    """
    from ..io.freesurfer import read_stats
    from ..io.freesurfer_tables import collect_stats, wide_table

    started = time.perf_counter()
    out = Path(out)
    if not out.name.endswith((".tsv", ".tsv.gz")):
        raise InputError(f"out must be a .tsv file (tab-separated table), got '{out}'; e.g. "
                         "--out gmv.tsv.")
    check_writable(out.parent, "folder of --out")
    root = Path(subjects_dir)
    long = collect_stats(root, subjects=subjects, annot=annot, measures=(measure,),
                         include_aseg=measure == "GrayVol", missing=missing)
    wide = wide_table(long, measure=measure)
    records = {}
    for source in pd.unique(long["source"]):
        if not source:  # eTIV not found anywhere: nothing was read
            continue
        path = Path(source)
        header = read_stats(path).header
        key = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
        records[key] = {**input_record(path),
                        **{k: header[k] for k in ("generating_program", "cvs_version", "version",
                                                  "CreationTime") if k in header}}
    write_tsv(out, wide)
    stem = out.name[:-len(".tsv.gz")] if out.name.endswith(".gz") else out.name[:-len(".tsv")]
    versions = sorted({r["version"] for r in records.values() if "version" in r})
    sidecar = {**provenance_record(
                   step="freesurfer_table", inputs=records, outputs={"table": out.name},
                   parameters={"annot": annot, "measure": measure,
                               "subjects": None if subjects is None else list(subjects),
                               "missing": missing}),
               "analysis": "freesurfer_table", "subjects_dir": str(root.resolve()),
               "n_subjects": int(wide.shape[0]), "n_columns": int(wide.shape[1]),
               "subjects": [str(s) for s in wide.index], "table": input_record(out),
               "freesurfer_versions": versions,
               "run_time_s": round(time.perf_counter() - started, 3)}
    write_json(out.with_name(stem + ".json"), sidecar)
    logger.info("FreeSurfer table: %d subjects x %d columns -> %s", *wide.shape, out)
    return wide


# ================================================================================ regional GLM

@owns_output_folder(("glm.json",))
def run_regional(participants, *, regions, model: str, contrasts, out_dir,
                 columns: str | Sequence[str] | None = None, id_column: str | None = None,
                 **options):
    """Cross-sectional regional GLM (:func:`graymatter.workflows.glm.run_glm`) on chosen columns.

    Parameters
    ----------
    participants : path or pandas.DataFrame
    regions : path or (n_subjects, n_columns) pandas.DataFrame
        Subjects x regions table; summary columns (ICV, mean thickness...) are analysed too
        unless ``columns`` selects the regions.
    model : str
        Model formula, e.g. ``"0 + Dx + Age + Sex + ICV"``.
    contrasts : mapping of str to str or sequence of str
        As :func:`~graymatter.workflows.glm.run_glm`.
    out_dir : path
    columns : str or sequence of str, optional
        Shell patterns of the region columns to analyse, e.g. ``"*_thickavg"``.
    id_column : str, optional
    **options
        Other keyword options of :func:`~graymatter.workflows.glm.run_glm` (``levels``,
        ``center``, ``inference``, ``progress``...).

    Returns
    -------
    GLMOutputs
        As :func:`~graymatter.workflows.glm.run_glm`; with ``columns`` from a file, the sidecar
        ``glm.json`` records the file (SHA-256) and the selected columns.

    Examples
    --------
    >>> out = run_regional("cov.csv", regions="metr2_CortThick.csv", columns="*_thickavg",
    ...                    model="1 + Dx + Age + Sex + ICV", contrasts={"MDD > HC": "Dx"},
    ...                    out_dir="regional")  # doctest: +SKIP
    """
    import json

    from .glm import run_glm

    record = None
    if columns is not None:
        inputs: dict = {}
        table = select_columns(_read_table(regions, "regions", id_column, inputs), columns)
        source = inputs["regions"]
        record = {**(source if isinstance(source, dict) else {"files": source}), "columns": columns,
                  "selected": [str(c) for c in table.columns]}
        regions = table
    out = run_glm(participants, regions=regions, model=model, contrasts=contrasts,
                  out_dir=out_dir, id_column=id_column, **options)
    if record is not None:  # run_glm saw a DataFrame: say where it came from
        sidecar = out.files["sidecar"]
        meta = json.loads(Path(sidecar).read_text(encoding="utf-8"))
        meta.setdefault("inputs", {})["regions"] = record
        write_json(sidecar, meta)
    return out


# ================================================================================ paired change

@owns_output_folder((PAIRED_SIDECAR,))
def run_longitudinal(participants, *, pre, post, out_dir, covariates_formula: str = "1",
                     id_column: str | None = None, session_pre: str | None = None,
                     session_post: str | None = None, columns: str | Sequence[str] | None = None,
                     n_perm: int = 5000, two_sided: bool = True, random_state=0, n_jobs: int = 1,
                     progress: bool = True, executor=None,
                     tiv: Sequence[str] | None = None) -> PairedResult:
    """Regional paired comparison (post vs pre) with covariates, max-T FWE and FDR; write files.

    Fits ``post − pre ~ covariates_formula`` per region and tests the intercept (see
    :func:`graymatter.stats.paired.paired_change`).

    Parameters
    ----------
    participants : path or pandas.DataFrame
        One row per participant (index or id column = subject id) holding the covariates. Every
        participant needs pre and post data; rows of pre/post without participant are ignored
        (with a warning).
    pre, post : path or (n_subjects, n_regions) pandas.DataFrame
        Regional values per session (CSV/TSV read by :func:`graymatter.io.regions.read_regions`),
        matched by subject id and region name. May be the same table when ``session_pre`` and
        ``session_post`` are given.
    out_dir : path
        Output folder: ``paired_change.tsv`` and ``paired_change.json``.
    covariates_formula : str, default="1"
        Right-hand side of the change model over participants columns, e.g. ``"1 + delta_tiv"``.
    id_column : str, optional
        Subject id column of the tables (default: recognised automatically).
    session_pre, session_post : str, optional
        Session labels inside the row ids of ``pre`` / ``post`` (e.g. ``"ses-pre"`` for
        ``sub-01_ses-pre``, ``"01"`` for FreeSurfer ``13900_01.long.13900_base``); rows of other
        sessions are dropped and the label is removed to give the participant id.
    columns : str or sequence of str, optional
        Shell patterns of the region columns to analyse (default: all), e.g. ``"lh_*"``.
    n_perm : int, default=5000
        Sign-flips for max-T FWE (0 skips it).
    two_sided : bool, default=True
        FWE over |t|; False tests increases only.
    random_state : int or None, default=0
        Seed of the sign-flips (same seed, same p_fwe, whatever ``n_jobs``).
    n_jobs : int, default=1
    progress : bool, default=True
    executor : Executor, optional
        Where the sign-flip batches run (:func:`graymatter.parallel.get_executor`).
    tiv : (str, str), optional
        Participants columns of TIV before and after: adds ``delta_tiv`` = after - before for
        ``covariates_formula`` (see :func:`add_delta_tiv`; study files: ``tiv:``).

    Returns
    -------
    PairedResult
        ``table`` has one row per region: ``mean_change, estimate, se, t, df, p, z, p_fwe,
        p_fdr, cohens_dz``.

    Examples
    --------
    >>> res = run_longitudinal("participants.tsv", pre="gmv_pre.csv", post="gmv_post.csv",
    ...                        covariates_formula="1 + delta_tiv", out_dir="paired")
    ... # doctest: +SKIP
    """
    started = time.perf_counter()
    table, pre_t, post_t, inputs = _paired_inputs(
        participants, pre, post, id_column=id_column, session_pre=session_pre,
        session_post=session_post, columns=columns)
    if tiv is not None:
        table = add_delta_tiv(table, *tiv)
    result = paired_change(pre_t, post_t, covariates=table.loc[pre_t.index],
                           formula=covariates_formula, n_perm=n_perm, two_sided=two_sided,
                           random_state=random_state, n_jobs=n_jobs, progress=progress,
                           executor=executor)
    out_dir = Path(out_dir)
    write_tsv(out_dir / PAIRED_TABLE, result.table)
    record = result.to_dict()  # model, design, n_perm, two_sided, random_state
    sidecar = {**provenance_record(
                   step="paired_change", inputs=inputs, outputs={"table": PAIRED_TABLE},
                   random_state=random_state,
                   parameters={"covariates_formula": covariates_formula, "n_jobs": n_jobs,
                               "id_column": id_column, "session_pre": session_pre,
                               "session_post": session_post, "columns": columns,
                               "tiv": None if tiv is None else list(tiv)}),
               **record,
               "n_subjects": int(pre_t.shape[0]), "subjects": [str(s) for s in pre_t.index],
               "regions": [str(r) for r in result.table.index],
               "table": PAIRED_TABLE,
               "run_time_s": round(time.perf_counter() - started, 3)}
    write_json(out_dir / PAIRED_SIDECAR, sidecar)
    logger.info("paired change: %d subjects x %d regions -> %s", *pre_t.shape, out_dir)
    return result


# ================================================================================ clinical PLS

def _clinical_change(table: pd.DataFrame, subjects: pd.Index, clinical_pre: str,
                     clinical_post: str) -> pd.Series:
    for column in (clinical_pre, clinical_post):
        if column not in table.columns:
            raise InputError(f"participants table has no column {column!r} (columns: "
                             f"{format_choices(table.columns)}); name the clinical scores before "
                             "and after treatment, e.g. hamd_pre and hamd_post.")
    values = {}
    for column in (clinical_pre, clinical_post):
        numbers = pd.to_numeric(table.loc[subjects, column], errors="coerce").astype("float64")
        bad = subjects[~np.isfinite(numbers.to_numpy())]
        if len(bad):
            raise InputError(f"participants column {column!r} is missing or not a number for "
                             f"subject(s) {format_choices(bad)}; the clinical PLS needs both "
                             "scores for every subject with pre/post data. Fill them in or remove "
                             "those subjects.")
        values[column] = numbers
    change = values[clinical_post] - values[clinical_pre]
    change.name = f"{clinical_post} - {clinical_pre}"
    return change


@owns_output_folder((PLS_SUMMARY,))
def run_pls_clinical(participants, *, pre, post, clinical_pre: str, clinical_post: str, out_dir,
                     n_components: int = 1, n_perm: int = 1000, n_boot: int = 1000, cv="loo",
                     random_state=0, id_column: str | None = None, session_pre: str | None = None,
                     session_post: str | None = None,
                     columns: str | Sequence[str] | None = None,
                     executor=None) -> ClinicalPLSResult:
    """PLS regression of clinical change on regional change (ΔGMV -> ΔHAMD); write the results.

    Regional change is ``post − pre`` per region; clinical change is
    ``participants[clinical_post] − participants[clinical_pre]``. The PLS, its permutation test,
    bootstrap z-scores and cross-validation are :func:`graymatter.stats.pls.clinical_pls`.

    Parameters
    ----------
    participants : path or pandas.DataFrame
        One row per participant with the clinical scores.
    pre, post : path or (n_subjects, n_regions) pandas.DataFrame
        Regional values per session, matched by subject id and region name.
    clinical_pre, clinical_post : str
        Participants columns of the clinical score before and after, e.g. ``"hamd_pre"``.
    out_dir : path
        Output folder: ``pls_clinical.json`` (summary and provenance),
        ``pls_clinical_regional.tsv`` (weights, bootstrap SE and z per component) and
        ``pls_clinical_predictions.tsv`` (subject, observed, fitted, cv_predicted).
    n_components : int, default=1
    n_perm : int, default=1000
        Permutations of subjects for ``p_perm``.
    n_boot : int, default=1000
        Bootstrap resamples for the regional z-scores.
    cv : "loo", int or None, default="loo"
        Leave-one-out, K folds, or None (no cross-validation).
    random_state : int or None, default=0
    id_column, session_pre, session_post, columns
        As in :func:`run_longitudinal`.
    executor : Executor, optional
        Where the permutation and bootstrap batches run (see
        :func:`graymatter.stats.pls.clinical_pls`).

    Returns
    -------
    ClinicalPLSResult

    Notes
    -----
    The in-sample r is optimistic with more regions than subjects; report ``p_perm`` and the
    cross-validated r with it (the summary JSON says so).

    Examples
    --------
    >>> res = run_pls_clinical("participants.tsv", pre="gmv_pre.csv", post="gmv_post.csv",
    ...                        clinical_pre="hamd_pre", clinical_post="hamd_post", out_dir="pls")
    ... # doctest: +SKIP
    """
    started = time.perf_counter()
    table, pre_t, post_t, inputs = _paired_inputs(
        participants, pre, post, id_column=id_column, session_pre=session_pre,
        session_post=session_post, columns=columns)
    delta = change_scores(pre_t, post_t)
    dclin = _clinical_change(table, delta.index, clinical_pre, clinical_post)
    result = clinical_pls(delta, dclin, n_components=n_components, n_perm=n_perm, n_boot=n_boot,
                          cv=cv, random_state=random_state, executor=executor)
    out_dir = Path(out_dir)
    regional = result.regional.copy()
    regional.index.name = "region"
    write_tsv(out_dir / PLS_REGIONAL, regional)
    cv_pred = (result.cv.predictions[:, 0] if result.cv is not None
               else np.full(len(delta), np.nan))
    predictions = pd.DataFrame({"observed": dclin.to_numpy(),
                                "fitted": result.fit.predict(delta.to_numpy())[:, 0],
                                "cv_predicted": cv_pred},
                               index=pd.Index(delta.index, name="subject"))
    write_tsv(out_dir / PLS_PREDICTIONS, predictions)
    summary = {**provenance_record(
                   step="clinical_pls", inputs=inputs, random_state=random_state,
                   outputs={"regional": PLS_REGIONAL, "predictions": PLS_PREDICTIONS},
                   parameters={"n_components": n_components, "n_perm": n_perm, "n_boot": n_boot,
                               "cv": cv, "random_state": random_state, "id_column": id_column,
                               "session_pre": session_pre, "session_post": session_post,
                               "columns": columns}),
               "analysis": "clinical_pls",
               "predictors": "regional change (post - pre)",
               "response": f"{clinical_post} - {clinical_pre}",
               **result.to_dict(), "p_explained_variance":
                   result.permutation.p_explained_variance.tolist(),
               "note": _OPTIMISM_NOTE,
               "subjects": [str(s) for s in delta.index], "n_regions": int(delta.shape[1]),
               "files": {"regional": PLS_REGIONAL, "predictions": PLS_PREDICTIONS},
               "run_time_s": round(time.perf_counter() - started, 3)}
    write_json(out_dir / PLS_SUMMARY, summary)
    return result
