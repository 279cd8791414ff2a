"""``graymatter run study.yaml``: one study file -> Table 1, the GLM, corrected inference, tables."""

from __future__ import annotations

import glob
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import StudyFileError, StudySpec, load_study
from ..errors import ContrastError, DesignError, InputError
from ..io.atomic import write_text, write_tsv
from ..io.outputs import output_folder
from ..io.participants import read_participants
from ..stats.contrasts import parse_contrast
from ..stats.demographics import DemographicsTable, demographics_table
from ..stats.design import make_design
from .glm import SIDECAR, GLMOutputs, run_glm
from .inference import InferenceSettings

logger = logging.getLogger("graymatter")


@dataclass
class StudyOutputs:
    """What :func:`run_study` produced."""

    spec: StudySpec
    table1: DemographicsTable | None
    glm: GLMOutputs


# Columns that preprocessing adds to the participants table (volumes in ml).
VOLUME_COLUMNS = ("tiv", "gm_ml", "wm_ml", "csf_ml")


def _check_model(spec: StudySpec, participants) -> None:
    """Build the design and parse each contrast early, so errors point at the study file's line."""
    if spec.preprocess:  # volumes exist only after preprocessing: stand-ins let the check run now
        stand_in = np.random.default_rng(0).normal(1500.0, 100.0, len(participants))
        participants = participants.assign(**{c: stand_in for c in VOLUME_COLUMNS
                                              if c not in participants.columns})
    try:
        design = make_design(participants, spec.model, levels=spec.levels, center=spec.center)
    except DesignError as err:
        raise StudyFileError(f"{spec.where('model')}: {err}") from None
    for name, expr in spec.contrasts.items():
        try:
            parse_contrast(str(name), expr, design)
        except ContrastError as err:
            raise StudyFileError(f"{spec.where('contrasts', name)}: {err}") from None


def _preprocess(spec: StudySpec, participants, progress: bool, executor=None,
                exclude_qc=None):
    """Preprocess the study's raw T1 images; return (participants file with volumes, images)."""
    from .preprocess import (QC_TABLE, no_maps_error, preprocess_outputs_for_glm, qc_selection,
                             run_preprocess)

    block, folder = spec.preprocess, spec.output / "preprocess"
    t1 = block.get("t1")
    if isinstance(t1, str):
        pattern, t1 = t1, sorted(glob.glob(t1, recursive=True))
        if not t1:
            raise StudyFileError(f"{spec.where('preprocess', 't1')}: the pattern {pattern} "
                                 "matches no file.")
    ages = None
    age_column = next((c for c in participants.columns if str(c).lower() == "age"), None)
    if age_column is not None:
        ages = pd.to_numeric(participants[age_column], errors="coerce").to_dict()
    run_preprocess(
        t1, bids_dir=block.get("bids"), out_dir=folder,
        resolution_mm=block.get("resolution", 1.5), fwhm_mm=block.get("fwhm", 10.0),
        denoise=block.get("denoise", False), n_jobs=block.get("n_jobs", 1),
        threads_per_subject=block.get("threads_per_subject", 1),
        random_state=block.get("random_state", 0),
        syn_iterations=tuple(block.get("syn_iterations", (40, 20, 10))), progress=progress,
        executor=executor, ages=ages)
    choice = exclude_qc if exclude_qc is not None else block.get("exclude_qc")
    kept, excluded, failing, no_maps = qc_selection(folder, choice)
    if no_maps:
        raise no_maps_error(no_maps, folder)
    note = (f"QC decision for the GLM (exclude_qc: {choice or 'none'}): {len(kept)} subject(s) "
            f"kept; left out: {', '.join(excluded) or 'none'}; kept although QC failed: "
            f"{', '.join(failing) or 'none'} (details in {QC_TABLE}).")
    logger.warning(note) if excluded or failing else logger.info(note)
    write_text(folder / "qc_decision.txt", note + "\n")
    images, volumes = preprocess_outputs_for_glm(folder, exclude_qc=choice)
    added = [c for c in volumes.columns if c not in participants.columns]
    merged = participants.loc[participants.index.isin(list(images))].join(volumes[added])
    path = write_tsv(spec.output / "participants_with_volumes.tsv", merged)
    return path, images


def write_table1(table: DemographicsTable, out_dir: Path) -> dict[str, Path]:
    """Write Table 1 as TSV (formatted and raw numbers), Markdown and an HTML snippet."""
    return {
        "table1.tsv": write_tsv(out_dir / "table1.tsv", table.table),
        "table1_values.tsv": write_tsv(out_dir / "table1_values.tsv", table.values),
        "table1.md": write_text(out_dir / "table1.md", table.to_markdown()),
        "table1.html": write_text(out_dir / "table1.html", table.to_html()),
    }


def run_study(study: str | os.PathLike | StudySpec, *, progress: bool = True,
              n_jobs: int | None = None, executor=None,
              exclude_qc: str | None = None) -> StudyOutputs:
    """Run a study file end to end: Table 1, the GLM, corrected inference and result tables.

    Parameters
    ----------
    study : path or StudySpec
        The YAML study file (see the README for an example) or a loaded spec.
    progress : bool, default=True
        Show progress bars.
    n_jobs : int, optional
        Override the study file's ``inference.n_jobs``.
    executor : Executor, optional
        Where per-subject preprocessing and permutation batches run (e.g. a dask cluster from
        :func:`graymatter.parallel.get_executor`); the same study file and seed give the same
        numbers on any executor.
    exclude_qc : {"none", "fail", "warn"}, optional
        Override the study file's ``preprocess: exclude_qc``: subjects whose preprocessing QC
        status is listed are left out of the GLM (default: nobody; the run names the subjects
        kept although they failed QC, in the log and ``preprocess/qc_decision.txt``).

    Returns
    -------
    StudyOutputs
    """
    spec = study if isinstance(study, StudySpec) else load_study(study)
    # Checked before any work; the preprocessing cache keeps its own bookkeeping.
    with output_folder(spec.output, final=(SIDECAR,), exclude=("preprocess",)):
        return _run_study(spec, progress, n_jobs, executor, exclude_qc)


def study_inference(spec: StudySpec, n_jobs: int | None = None) -> InferenceSettings:
    """The inference settings a study file's run uses (``--dry-run`` plans from the same).

    Parameters
    ----------
    spec : StudySpec
    n_jobs : int, optional
        Override of ``inference.n_jobs``.

    Returns
    -------
    InferenceSettings
        Keys the file does not give take :class:`InferenceSettings`' defaults.

    Raises
    ------
    StudyFileError
        A bad ``inference:`` value, at its line.
    """
    settings = dict(spec.inference)
    if n_jobs is not None:
        settings["n_jobs"] = n_jobs
    if spec.atlas:
        settings["atlas"] = str(spec.atlas["image"])
        settings["atlas_labels"] = str(spec.atlas["labels"]) if "labels" in spec.atlas else None
    if "methods" in settings:
        settings["methods"] = tuple(settings["methods"])
    try:
        return InferenceSettings(**settings)
    except InputError as err:
        raise StudyFileError(f"{spec.where('inference')}: {err}") from None


def _run_study(spec: StudySpec, progress: bool, n_jobs: int | None, executor,
               exclude_qc: str | None = None) -> StudyOutputs:
    """:func:`run_study` inside its output folder."""
    participants = read_participants(spec.participants, id_column=spec.id_column)
    _check_model(spec, participants)
    out_dir = spec.output
    table1 = None
    if spec.demographics:
        try:
            table1 = demographics_table(participants, **spec.demographics)
        except InputError as err:
            raise StudyFileError(f"{spec.where('demographics')}: {err}") from None
        write_table1(table1, out_dir)
    inference = study_inference(spec, n_jobs)
    participants_file, images, id_column = spec.participants, spec.images, spec.id_column
    if spec.preprocess:
        participants_file, images = _preprocess(spec, participants, progress, executor,
                                                 exclude_qc)
        id_column = None  # the merged table is written with a participant_id column
    common = dict(model=spec.model, contrasts=spec.contrasts, levels=spec.levels,
                  center=spec.center, id_column=id_column, dtype=spec.dtype, out_dir=out_dir,
                  inference=inference, progress=progress, executor=executor, mask=spec.mask)
    if spec.regions is not None:  # the code of `graymatter regional --columns`
        from .longitudinal import run_regional

        glm = run_regional(participants_file, regions=spec.regions, columns=spec.columns,
                           **common)
    else:
        glm = run_glm(participants_file, images=images, store=spec.store, **common)
    outputs = StudyOutputs(spec, table1, glm)
    from ..report.html import write_study_report  # voxels and regions alike

    write_study_report(outputs)
    logger.info("study '%s' done: results in %s", spec.name, out_dir)
    return outputs
