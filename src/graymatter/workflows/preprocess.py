"""VBM preprocessing of many subjects: parallel, resumable, with a QC table.

:func:`run_preprocess` preprocesses every T1 (in worker processes when ``n_jobs > 1``, or as tasks
of a dask cluster with ``executor=``), records
each subject's outcome (done, skipped or failed with its error) and writes, in ``out_dir``:
``volumes.tsv`` (GM, WM, CSF, TIV in ml), ``qc.tsv`` (similarity, Dice, sample homogeneity,
errors) and ``dataset_description.json``. :func:`preprocess_outputs_for_glm` hands the smoothed
modulated GM maps and TIV to the GLM workflows.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from graymatter.errors import GraymatterError, InputError
from graymatter.io.atomic import write_json, write_tsv
from graymatter.io.outputs import check_writable
from graymatter.parallel import as_executor, get_executor
from graymatter.preprocess.inputs import T1Input, inputs_from_bids, inputs_from_files
from graymatter.preprocess.pipeline import (VOLUME_COLUMNS, PreprocessSettings, output_names,
                                            preprocess_subject)
from graymatter.preprocess.qc import decide, sample_homogeneity
from graymatter.preprocess.templates import SPACE

logger = logging.getLogger("graymatter")

QC_TABLE = "qc.tsv"
VOLUMES_TABLE = "volumes.tsv"


@dataclass
class PreprocessResult:
    """Outcome of :func:`run_preprocess`.

    Attributes
    ----------
    qc : pandas.DataFrame
        One row per subject (index ``participant_id``): ``status`` (done, skipped, failed),
        ``error``, volumes, registration similarity, brain-mask Dice, sample homogeneity.
    out_dir : pathlib.Path
    """

    qc: pd.DataFrame
    out_dir: Path

    @property
    def failed(self) -> list[str]:
        """Ids of the subjects that failed."""
        return self.qc.index[self.qc["status"] == "failed"].tolist()


def _one(task: tuple[T1Input, str, PreprocessSettings, bool]) -> dict:
    """Preprocess one subject in a worker; a failure becomes a row, never an exception."""
    item, out_dir, settings, force = task
    # ITK's thread count must be in the environment before ANTs loads in this worker.
    os.environ.setdefault("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS",
                          str(settings.threads_per_subject))
    try:
        return preprocess_subject(item, out_dir, settings, force=force)
    except GraymatterError as exc:
        error = str(exc)
    except Exception as exc:  # noqa: BLE001 - ANTs/ITK raise many types, antspyx a bare
        error = f"{type(exc).__name__}: {exc}"  # Exception (Atropos exit 1); the row names it
    logger.error("%s failed: %s", item.participant_id, error)
    return {"participant_id": item.participant_id, "status": "failed", "error": error,
            "qc_status": "fail", "qc_reasons": f"no outputs: {error}",
            "folder": str(Path(out_dir) / item.folder)}


#: Values of ``exclude_qc``: which QC statuses are left out of the GLM (none by default).
EXCLUDE_QC = {None: (), "none": (), "fail": ("fail",), "warn": ("warn", "fail")}


def _judge(row: dict, ages: dict) -> dict:
    """Final QC status of a finished row, with the subject's age when it is known."""
    if row.get("status") == "failed":
        return row
    age = ages.get(row["participant_id"])
    status, reasons = decide(row, age=None if age is None else float(age))
    return {**row, "qc_status": status, "qc_reasons": "; ".join(reasons)}


def run_preprocess(t1_files=None, *, bids_dir=None, out_dir, resolution_mm: float = 1.5,
                   fwhm_mm: float = 10.0, denoise: bool = False, n_jobs: int = 1,
                   threads_per_subject: int = 1, random_state: int = 0,
                   syn_iterations=(40, 20, 10), force: bool = False,
                   progress: bool = True, executor=None, ages=None) -> PreprocessResult:
    """Preprocess T1 images to modulated GM in MNI space, with volumes and QC.

    Parameters
    ----------
    t1_files : sequence of str or os.PathLike, optional
        T1 NIfTI files (subject ids from the names); or give ``bids_dir``.
    bids_dir : str or os.PathLike, optional
        BIDS dataset: every ``sub-*/[ses-*/]anat/*_T1w.nii[.gz]``.
    out_dir : str or os.PathLike
        Output root (BIDS-derivatives-like: ``sub-*/anat/...``).
    resolution_mm : float
        MNI output grid, 1.5 (default), 2 or 1 mm.
    fwhm_mm : float
        Smoothing of the modulated GM (default 10 mm).
    denoise : bool
        Non-local-means denoising before bias correction.
    n_jobs : int
        Subjects processed at once, each in its own process (1 = in this process).
    threads_per_subject : int
        ITK threads per subject; n_jobs x threads_per_subject should not exceed the cores.
    random_state : int
        Registration seed.
    syn_iterations : sequence of int
        SyN iterations per level (fewer is faster and coarser).
    force : bool
        Redo subjects whose outputs are up to date.
    progress : bool
        Show a progress bar over subjects (advancing as any worker finishes one).
    executor : Executor, optional
        From :func:`graymatter.parallel.get_executor` (e.g. a dask cluster); one task per
        subject, and ``n_jobs`` is ignored. Workers write to ``out_dir``, so it must be on a
        file system they share. A subject whose worker dies is resubmitted and resumes from its
        finished steps; finished subjects are never redone. Same seed, same files whatever the
        executor.

    Returns
    -------
    result : PreprocessResult
        Per-subject failures are recorded in ``result.qc`` (and ``qc.tsv``), not raised.

    Examples
    --------
    >>> res = run_preprocess(["sub-01_T1w.nii.gz"], out_dir="derivatives/graymatter",
    ...                      n_jobs=2)  # doctest: +SKIP
    >>> res.failed  # doctest: +SKIP
    []
    """
    if (t1_files is None) == (bids_dir is None) or (t1_files is not None and not len(t1_files)):
        raise InputError("Give either T1 files or bids_dir (--bids), not both and not neither.")
    items = inputs_from_bids(bids_dir) if bids_dir is not None else inputs_from_files(t1_files)
    if int(n_jobs) < 1:
        raise InputError(f"n_jobs must be >= 1; found {n_jobs}.")
    settings = PreprocessSettings(resolution_mm=float(resolution_mm), fwhm_mm=float(fwhm_mm),
                                  denoise=bool(denoise),
                                  threads_per_subject=int(threads_per_subject),
                                  random_state=int(random_state),
                                  syn_iterations=tuple(int(i) for i in syn_iterations))
    from graymatter.io.templates import mni_grid

    mni_grid(settings.resolution_mm)  # validates the resolution before any work
    out = check_writable(out_dir)  # before hours of registration, not after
    out.mkdir(parents=True, exist_ok=True)
    if executor is None:
        executor = (get_executor("serial") if int(n_jobs) == 1
                    else get_executor("joblib", n_jobs=int(n_jobs)))
    # Processes (joblib's loky or dask workers): ITK's thread count is per process, and a crash
    # stays in its worker.
    rows = as_executor(executor).map(_one, [(item, str(out), settings, force) for item in items],
                                     progress=progress, desc="preprocess", unit="subject")
    ages = {} if ages is None else {str(k): v for k, v in dict(ages).items()
                                    if v is not None and np.isfinite(float(v))}
    qc_table = _qc_table([_judge(row, ages) for row in rows], items, out)
    write_tsv(out / QC_TABLE, qc_table)
    ok = qc_table[qc_table["status"] != "failed"]
    write_tsv(out / VOLUMES_TABLE, ok[list(VOLUME_COLUMNS)])
    write_json(out / "dataset_description.json", {
        "Name": "graymatter VBM preprocessing", "BIDSVersion": "1.9.0",
        "DatasetType": "derivative", "GeneratedBy": [{"Name": "graymatter"}],
        "Space": SPACE, "Parameters": settings.parameters()})
    return PreprocessResult(qc_table, out)


def _qc_table(rows: list, items, out: Path) -> pd.DataFrame:
    order = [item.participant_id for item in items]
    table = pd.DataFrame(rows).set_index("participant_id").reindex(order)
    table.index.name = "participant_id"
    for column in ("error", "qc_reasons", *VOLUME_COLUMNS):  # absent when none failed
        if column not in table.columns:
            table[column] = np.nan if column in VOLUME_COLUMNS else pd.NA
    maps = {}
    for pid, row in table.iterrows():
        if row["status"] != "failed":
            path = Path(row["folder"]) / output_names(pid)["mwp1"]
            maps[pid] = np.asarray(nib.load(path).dataobj, dtype=np.float32)
    homogeneity = sample_homogeneity(maps)
    table = table.join(homogeneity)
    table["folder"] = [os.path.relpath(f, out) for f in table["folder"]]
    first = ["status", "qc_status", "qc_reasons", "error", *VOLUME_COLUMNS]
    return table[[c for c in first if c in table] + [c for c in table if c not in first]]


def qc_selection(out_dir, exclude_qc=None) -> tuple[list, list, list, list]:
    """Which subjects enter the GLM under an ``exclude_qc`` choice.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Output root of :func:`run_preprocess`.
    exclude_qc : {None, "none", "fail", "warn"}
        None / "none": every subject with maps is kept, QC failures included; "fail":
        subjects with ``qc_status`` fail are left out; "warn": warn and fail are left out.

    Returns
    -------
    kept, excluded, kept_failing, no_maps : list of str
        Participant ids kept; left out by the choice; kept although their QC failed; and not
        left out by the choice but without maps (their processing failed).

    Raises
    ------
    InputError
        No qc.tsv, or an unknown choice.

    Examples
    --------
    >>> kept, excluded, failing, no_maps = qc_selection("derivatives", "fail")  # doctest: +SKIP
    """
    if exclude_qc not in EXCLUDE_QC:
        raise InputError(f"exclude_qc must be one of none, fail, warn; found {exclude_qc!r}.")
    table = _read_qc(out_dir)
    status = table.get("qc_status", pd.Series("pass", index=table.index)).fillna("pass")
    status[table["status"] == "failed"] = "fail"
    drop = status.isin(EXCLUDE_QC[exclude_qc])
    no_maps = (table["status"] == "failed") & ~drop
    kept = table.index[~drop & ~no_maps].tolist()
    return (kept, table.index[drop].tolist(), [p for p in kept if status[p] == "fail"],
            table.index[no_maps].tolist())


def no_maps_error(no_maps: list, out_dir) -> InputError:
    """The error of a study whose subjects have no maps and no choice leaves them out."""
    return InputError(f"preprocessing failed for {len(no_maps)} subject(s): "
                      f"{', '.join(no_maps)} (reasons in {Path(out_dir) / QC_TABLE}); they have "
                      "no maps. Fix their T1 images, remove them from the study, or leave QC "
                      "failures out explicitly (study file preprocess: exclude_qc: fail, or "
                      "--exclude-qc fail).")


def _read_qc(out_dir) -> pd.DataFrame:
    qc_path = Path(out_dir) / QC_TABLE
    if not qc_path.is_file():
        raise InputError(f"'{qc_path}' not found: '{out_dir}' is not a finished preprocessing "
                         "output folder. Run `graymatter preprocess ... --out DIR` first.")
    return pd.read_csv(qc_path, sep="\t", index_col="participant_id", na_values="n/a",
                       dtype={"participant_id": str})


def preprocess_outputs_for_glm(out_dir, *, exclude_qc=None) -> tuple[dict, pd.DataFrame]:
    """Smoothed modulated GM maps and a participants-like table with TIV, for the GLM.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Output root of :func:`run_preprocess`.
    exclude_qc : {None, "none", "fail", "warn"}
        Leave subjects out by QC status (see :func:`qc_selection`); by default nobody is left
        out and subjects that failed QC are kept with a warning naming them; subjects whose
        processing failed have no maps and are left out with a warning.

    Returns
    -------
    images : dict of str to pathlib.Path
        ``participant_id`` -> smoothed modulated GM image, for the subjects kept.
    participants : pandas.DataFrame
        Index ``participant_id``; columns ``tiv`` (ml), ``gm_ml``, ``wm_ml``, ``csf_ml``.

    Examples
    --------
    >>> images, participants = preprocess_outputs_for_glm("derivatives/graymatter")  # doctest: +SKIP
    >>> participants["tiv"].between(1000, 2000).all()  # doctest: +SKIP
    True
    """
    out = Path(out_dir)
    qc_table = _read_qc(out)
    kept, excluded, failing, no_maps = qc_selection(out, exclude_qc)
    if no_maps:
        logger.warning("no maps (processing failed), not in the GLM: %s", ", ".join(no_maps))
    if excluded:
        logger.warning("left out of the GLM by exclude_qc=%s: %s", exclude_qc,
                       ", ".join(excluded))
    if failing:
        logger.warning("%d subject(s) failed QC but are KEPT in the GLM (no exclude_qc "
                       "choice): %s", len(failing), ", ".join(failing))
    ok = qc_table.loc[kept]
    images = {}
    for pid, row in ok.iterrows():
        path = out / row["folder"] / output_names(pid)["smwp1"]
        if not path.is_file():
            raise InputError(f"qc.tsv lists '{pid}' as preprocessed but '{path}' is missing; "
                             "rerun `graymatter preprocess` on the same output folder.")
        images[pid] = path
    participants = ok[list(VOLUME_COLUMNS)].rename(columns={"tiv_ml": "tiv"})
    participants = participants[["tiv", "gm_ml", "wm_ml", "csf_ml"]].astype(float)
    return images, participants


__all__ = ["PreprocessResult", "run_preprocess", "preprocess_outputs_for_glm", "qc_selection",
           "no_maps_error",
           "EXCLUDE_QC", "QC_TABLE",
           "VOLUMES_TABLE"]
