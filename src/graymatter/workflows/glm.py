"""The mass-univariate GLM workflow: participants + images or regions -> design -> engine -> files.

This is what ``graymatter glm`` runs. Voxel and region data go through the same engine; only the
reading of the data and the writing of the maps differ.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..io.atomic import save_image, write_json, write_tsv
from ..io.images import MaskedGrid, find_images, load_image_matrix
from ..io.naming import contrast_slug
from ..io.outputs import output_folder
from ..io.participants import match_subjects, read_participants
from ..io.provenance import input_record, provenance_record
from ..io.regions import read_regions
from ..report.figures import plot_design_matrix, save_figure
from ..stats.contrasts import Contrast, parse_contrasts
from ..stats.design import Design, make_design
from ..stats.glm import MassUnivariateGLM
from .inference import ContrastInference, InferenceSettings, infer_regions, infer_voxels, neg_log10

logger = logging.getLogger("graymatter")

#: The provenance sidecar, written last: its presence means the run finished.
SIDECAR = "glm.json"


@dataclass
class GLMOutputs:
    """What :func:`run_glm` computed and wrote.

    Attributes
    ----------
    out_dir : pathlib.Path
        Output folder.
    design : Design
        The design matrix actually fitted (rows in participants order).
    contrasts : list of Contrast
        The parsed contrasts.
    model : MassUnivariateGLM or StreamedFit
        The fitted engine (betas, residual variance, valid features), or, with a zarr store,
        the streamed fit's summary (voxel count, residual df, exclusion counts).
    results : dict of str to contrast result
        Per contrast name, the t or F result arrays over features.
    features : list of str or None
        Region names for region data; None for voxels.
    grid : MaskedGrid or None
        The voxel grid and mask for voxel data; None for regions.
    files : dict of str to pathlib.Path
        Every file written, by role.
    inference : dict of str to ContrastInference
        Corrected inference per contrast name (empty when no method was requested).
    smoothness : Smoothness or None
        Estimated residual smoothness (voxel data with random field theory).
    """

    out_dir: Path
    design: Design
    contrasts: list[Contrast]
    model: MassUnivariateGLM
    results: dict
    features: list[str] | None
    grid: MaskedGrid | None
    files: dict[str, Path] = field(default_factory=dict)
    inference: dict[str, ContrastInference] = field(default_factory=dict)
    smoothness: object | None = None


def _participants_table(participants, id_column):
    if isinstance(participants, pd.DataFrame):
        return participants, None
    return read_participants(participants, id_column=id_column), input_record(participants)


def _load_voxels(subject_ids, images, mask, dtype, progress, inputs):
    paths = find_images(subject_ids, images)
    Y, grid = load_image_matrix([paths[s] for s in subject_ids], mask=mask, dtype=dtype,
                                progress=progress)
    inputs["images"] = {sid: input_record(p) for sid, p in paths.items()}
    if mask is not None and not hasattr(mask, "get_fdata"):
        inputs["mask"] = input_record(mask)
    return Y, grid


def _load_regions(subject_ids, regions, id_column, dtype, inputs):
    if isinstance(regions, pd.DataFrame):
        table, what = regions, "regions table"
    else:
        table, what = read_regions(regions, id_column=id_column), f"regions table '{regions}'"
        inputs["regions"] = ([input_record(p) for p in regions]
                             if isinstance(regions, (list, tuple)) else input_record(regions))
    ids = match_subjects(subject_ids, [str(i) for i in table.index], what=what)
    table = table.copy()
    table.index = table.index.map(str)
    return table.loc[ids].to_numpy(dtype=dtype), [str(c) for c in table.columns]


# Per-feature inference results -> file label; p-values are written as -log10(p).
_INFERENCE_MAPS = {
    "p_fdr": "logpFDR",
    "p_fwe_perm": "logpFWEvoxelPerm",
    "p_cluster_fwe_perm": "logpFWEclusterPerm",
    "p_fwe_tfce": "logpFWEtfcePerm",
    "p_fwe_rft": "logpFWEvoxelRFT",
    "p_cluster_fwe_rft": "logpFWEclusterRFT",
    "tfce": "tfce",
    "clusters": "clusters",
}


def _write_voxel_maps(out_dir, grid, slug, result, inference, files):
    maps = dict(result.maps())
    if inference is not None:
        for key, values in inference.maps.items():
            maps[_INFERENCE_MAPS[key]] = neg_log10(values) if key.startswith("p_") else values
    for stat, values in maps.items():
        files[f"{slug}:{stat}"] = save_image(
            out_dir / f"contrast-{slug}_stat-{stat}.nii.gz", grid.to_image(values))
    if inference is not None and inference.table is not None:
        from ..report.cluster_table import write_cluster_table

        files[f"{slug}:clusters.tsv"] = write_cluster_table(
            inference.table, out_dir / f"contrast-{slug}_clusters.tsv")


def run_glm(
    participants: str | os.PathLike | pd.DataFrame,
    *,
    model: str,
    contrasts: Mapping[str, str | Sequence[str]],
    out_dir: str | os.PathLike,
    images: str | Sequence | Mapping | None = None,
    regions: str | os.PathLike | list | pd.DataFrame | None = None,
    mask: str | os.PathLike | None = None,
    levels: Mapping[str, Sequence[str]] | None = None,
    center: bool = True,
    id_column: str | None = None,
    dtype: str = "float64",
    chunk_size: int | None = None,
    inference: InferenceSettings | None = None,
    progress: bool = True,
    executor=None,
    store: str | os.PathLike | None = None,
) -> GLMOutputs:
    """Fit one mass-univariate GLM to voxel or region data and write maps, tables and provenance.

    Subjects are matched to images or table rows by id, never by order. Numeric covariates are
    mean-centred by default (see :func:`graymatter.stats.design.make_design`).

    Parameters
    ----------
    participants : path or pandas.DataFrame
        ``participants.tsv`` (BIDS) or CSV with one row per subject, or a table indexed by id.
    model : str
        Model formula over participant columns, e.g. ``"0 + group + age + sex + tiv"``
        (``0 +`` gives cell-means coding: one column per group).
    contrasts : mapping of str to str or sequence of str
        Contrast name -> expression over levels and columns (a t contrast), or a list of
        expressions (an F contrast), e.g. ``{"HC > MDD": "HC - MDD"}``.
    out_dir : path
        Output folder (created).
    images : glob pattern, sequence of paths or mapping id -> path, optional
        Voxel data: one 3-D NIfTI per subject (e.g. CAT12 ``mwp1*.nii``). Give this or ``regions``.
    regions : path, list of paths or pandas.DataFrame, optional
        Region data: a subjects x regions table (CSV/TSV) with an id column, or FreeSurfer
        ``asegstats2table`` / ``aparcstats2table`` outputs (one per hemisphere), read by
        :func:`graymatter.io.regions.read_regions`.
    mask : path, optional
        Analysis mask for voxel data; default: nilearn's MNI152 gray-matter mask resampled to the
        data grid.
    levels : mapping of str to sequence of str, optional
        Explicit level order per categorical factor.
    center : bool, default=True
        Mean-centre numeric covariates.
    id_column : str, optional
        Subject id column of the participants and regions tables (default: ``participant_id`` or
        a recognised alternative).
    dtype : {"float64", "float32"}, default="float64"
        Precision of the data matrix and the model fit.
    chunk_size : int, optional
        Features per chunk in the engine (default: a few MB of residuals per chunk).
    inference : InferenceSettings, optional
        Corrected inference (permutation max-T/cluster/TFCE, random field theory, FDR) and, for
        voxel data, SPM-style cluster tables. Default: none (maps of the GLM only).
    progress : bool, default=True
        Show progress bars.
    executor : Executor, optional
        Where permutation batches run (:func:`graymatter.parallel.get_executor`: serial,
        joblib or a dask cluster); the numbers do not depend on it.
    store : str or os.PathLike, optional
        Voxel data only: stream subjects x voxels through this zarr store instead of holding
        them in memory (written from the images on the first run, checked and reused later;
        see :mod:`graymatter.workflows.streamed`). The maps equal the in-memory ones; inference
        is then voxel-wise max-T and FDR (no TFCE, cluster-level permutation p or RFT).

    Returns
    -------
    GLMOutputs

    Examples
    --------
    >>> out = run_glm("participants.tsv", images="mri/mwp1*.nii", model="0 + group + age + tiv",
    ...               contrasts={"HC > MDD": "HC - MDD"}, out_dir="glm")  # doctest: +SKIP
    >>> out.results["HC > MDD"].t.max()  # doctest: +SKIP
    """
    # The folder is checked before any work; files of an earlier run that this run does not
    # write again are removed at the end (see graymatter.io.outputs).
    with output_folder(out_dir, final=(SIDECAR,)):
        return _run_glm(participants, model=model, contrasts=contrasts, out_dir=out_dir,
                        images=images, regions=regions, mask=mask, levels=levels, center=center,
                        id_column=id_column, dtype=dtype, chunk_size=chunk_size,
                        inference=inference, progress=progress, executor=executor, store=store)


def _run_glm(participants, *, model, contrasts, out_dir, images, regions, mask, levels, center,
             id_column, dtype, chunk_size, inference, progress, executor, store) -> GLMOutputs:
    """:func:`run_glm` inside its output folder."""
    started = time.perf_counter()
    if (images is None) == (regions is None):
        raise InputError("give exactly one of `images` (voxel data) or `regions` (a subjects x "
                         "regions table); got " + ("both" if images is not None else "neither") + ".")
    if dtype not in ("float64", "float32"):
        raise InputError(f"dtype must be 'float64' or 'float32', got {dtype!r}.")
    out_dir = Path(out_dir)
    inputs: dict = {}
    table, record = _participants_table(participants, id_column)
    if record:
        inputs["participants"] = record

    design = make_design(table, model, levels=levels, center=center)
    parsed = parse_contrasts(contrasts, design)
    slugs = [contrast_slug(c.name) for c in parsed]
    if len(set(slugs)) != len(slugs) or "" in slugs:
        raise InputError("contrast names must give distinct file labels (letters and digits); got "
                         + ", ".join(f"'{c.name}' -> '{s}'" for c, s in zip(parsed, slugs)))
    subject_ids = [str(s) for s in design.matrix.index]

    inference = inference or InferenceSettings()
    features = grid = smoothness = None
    if store is not None:
        from .streamed import fit_streamed

        if images is None:
            raise InputError("store= streams voxel images through a zarr store; a regions table "
                             "fits in memory: remove store.")
        grid, glm, results, inferred = fit_streamed(
            subject_ids, images, mask, store, dtype, design.X, parsed, inference, inputs,
            progress=progress, executor=executor)
    else:
        if images is not None:
            Y, grid = _load_voxels(subject_ids, images, mask, dtype, progress, inputs)
        else:
            Y, features = _load_regions(subject_ids, regions, id_column, dtype, inputs)
        glm = MassUnivariateGLM(chunk_size=chunk_size, dtype=dtype).fit(Y, design.X)
        results = {c.name: glm.contrast(c) for c in parsed}
        inferred, smoothness = _infer(Y, design.X, glm, parsed, results, grid, inference,
                                      progress, executor)

    files: dict[str, Path] = {}
    files["design.tsv"] = write_tsv(out_dir / "design.tsv", design.matrix)
    figure = plot_design_matrix(design.matrix, title=model)
    for ext in ("png", "svg"):
        files[f"design.{ext}"] = save_figure(figure, out_dir / f"design.{ext}")
    if grid is not None:
        files["mask"] = save_image(out_dir / "mask.nii.gz", grid.mask_image())
        for contrast, slug in zip(parsed, slugs):
            _write_voxel_maps(out_dir, grid, slug, results[contrast.name],
                              inferred.get(contrast.name), files)
    else:
        for contrast, slug in zip(parsed, slugs):
            frame = results[contrast.name].to_frame(index=pd.Index(features, name="region"))
            if contrast.name in inferred:
                for key, values in inferred[contrast.name].maps.items():
                    frame[key] = values
            files[slug] = write_tsv(out_dir / f"contrast-{slug}_stat.tsv", frame)

    sidecar = {
        **provenance_record(
            step="glm", inputs=inputs,
            parameters={"model": model, "levels": levels, "center": center,
                        "id_column": id_column, "dtype": dtype, "chunk_size": chunk_size},
            outputs={k: Path(v).name for k, v in files.items()},
            random_state=inference.random_state if inference.enabled else None),
        "data": "voxels" if grid is not None else "regions",
        "n_subjects": len(subject_ids),
        "subjects": subject_ids,
        "n_features": int(glm.n_features_),
        "n_features_excluded": {"nan_or_infinite": int(glm.n_nan_features_),
                                "constant": int(glm.n_constant_features_),
                                "zero_residual_variance": int(glm.n_zero_variance_features_)},
        "dtype": dtype,
        "design": design.to_dict(),
        "df_resid": int(glm.df_resid_),
        "contrasts": {c.name: {**c.to_dict(design.columns), "files_label": s}
                      for c, s in zip(parsed, slugs)},
        "inference": _inference_record(inference, inferred, smoothness),
        "run_time_s": round(time.perf_counter() - started, 3),
    }
    files["sidecar"] = write_json(out_dir / SIDECAR, sidecar)
    logger.info("GLM done: %d subjects x %d features, %d contrasts -> %s",
                len(subject_ids), glm.n_features_, len(parsed), out_dir)
    return GLMOutputs(out_dir, design, parsed, glm, results, features, grid, files, inferred,
                      smoothness)


def _infer(Y, X, glm, contrasts, results, grid, settings, progress, executor):
    """Run the requested corrected inference for every contrast."""
    if not settings.enabled:
        return {}, None
    if grid is None:
        return {c.name: infer_regions(Y, X, c, results[c.name], settings, progress=progress,
                                     executor=executor)
                for c in contrasts}, None
    from ..datasets.atlases import load_atlas

    smoothness = None
    if "rft" in settings.methods:
        from ..stats.rft import estimate_smoothness

        smoothness = estimate_smoothness(glm.residuals(Y, standardized=True), grid,
                                         df=glm.df_resid_)
        logger.info("residual smoothness: FWHM %s mm, %.1f voxels per resel",
                    np.round(smoothness.fwhm_mm, 2).tolist(), smoothness.resel_size_vox)
    atlas = load_atlas(settings.atlas, labels=settings.atlas_labels)
    inferred = {c.name: infer_voxels(Y, X, c, results[c.name], grid, settings,
                                     smoothness=smoothness, atlas=atlas, progress=progress,
                                     executor=executor)
                for c in contrasts}
    return inferred, smoothness


def _inference_record(settings, inferred, smoothness) -> dict | None:
    """What the sidecar says about corrected inference."""
    if not settings.enabled:
        return None
    record = {"settings": settings.to_dict(),
              "smoothness": smoothness.to_dict() if smoothness is not None else None,
              "contrasts": {}}
    for name, inf in inferred.items():
        record["contrasts"][name] = {
            "cluster_forming_height": inf.height,
            "n_clusters": None if inf.clusters is None else int(len(inf.clusters.sizes)),
            "permutation_method": None if inf.permutation is None else inf.permutation.method,
            "rft_height_fwe": (None if inf.rft_threshold is None
                               else inf.rft_threshold.to_dict()),
        }
    return record
