"""``graymatter run study.yaml``: one study file -> Table 1, the GLM, corrected inference, tables."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ..config import StudyFileError, StudySpec, load_study
from ..errors import ContrastError, DesignError, InputError
from ..io.atomic import write_text, write_tsv
from ..io.participants import read_participants
from ..stats.contrasts import parse_contrast
from ..stats.demographics import DemographicsTable, demographics_table
from ..stats.design import make_design
from .glm import GLMOutputs, run_glm
from .inference import InferenceSettings

logger = logging.getLogger("graymatter")


@dataclass
class StudyOutputs:
    """What :func:`run_study` produced."""

    spec: StudySpec
    table1: DemographicsTable | None
    glm: GLMOutputs


def _check_model(spec: StudySpec, participants) -> None:
    """Build the design and parse each contrast early, so errors point at the study file's line."""
    try:
        design = make_design(participants, spec.model, levels=spec.levels, center=spec.center)
    except DesignError as err:
        raise StudyFileError(f"{spec.where('model')}: {err}") from None
    for name, expr in spec.contrasts.items():
        try:
            parse_contrast(str(name), expr, design)
        except ContrastError as err:
            raise StudyFileError(f"{spec.where('contrasts', name)}: {err}") from None


def write_table1(table: DemographicsTable, out_dir: Path) -> dict[str, Path]:
    """Write Table 1 as TSV (formatted and raw numbers), Markdown and an HTML snippet."""
    return {
        "table1.tsv": write_tsv(out_dir / "table1.tsv", table.table),
        "table1_values.tsv": write_tsv(out_dir / "table1_values.tsv", table.values),
        "table1.md": write_text(out_dir / "table1.md", table.to_markdown()),
        "table1.html": write_text(out_dir / "table1.html", table.to_html()),
    }


def run_study(study: str | os.PathLike | StudySpec, *, progress: bool = True,
              n_jobs: int | None = None) -> StudyOutputs:
    """Run a study file end to end: Table 1, the GLM, corrected inference and result tables.

    Parameters
    ----------
    study : path or StudySpec
        The YAML study file (see the README for an example) or a loaded spec.
    progress : bool, default=True
        Show progress bars.
    n_jobs : int, optional
        Override the study file's ``inference.n_jobs``.

    Returns
    -------
    StudyOutputs
    """
    spec = study if isinstance(study, StudySpec) else load_study(study)
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
    settings = dict(spec.inference)
    if n_jobs is not None:
        settings["n_jobs"] = n_jobs
    if spec.atlas:
        settings["atlas"] = str(spec.atlas["image"])
        settings["atlas_labels"] = str(spec.atlas["labels"]) if "labels" in spec.atlas else None
    if "methods" in settings:
        settings["methods"] = tuple(settings["methods"])
    try:
        inference = InferenceSettings(**settings)
    except InputError as err:
        raise StudyFileError(f"{spec.where('inference')}: {err}") from None
    glm = run_glm(spec.participants, images=spec.images, regions=spec.regions, mask=spec.mask,
                  model=spec.model, contrasts=spec.contrasts, levels=spec.levels,
                  center=spec.center, id_column=spec.id_column, dtype=spec.dtype,
                  out_dir=out_dir, inference=inference, progress=progress)
    outputs = StudyOutputs(spec, table1, glm)
    if glm.grid is not None:  # the regional (Study B) report is written by its own workflow
        from ..report.html import write_study_report

        write_study_report(outputs)
    logger.info("study '%s' done: results in %s", spec.name, out_dir)
    return outputs
