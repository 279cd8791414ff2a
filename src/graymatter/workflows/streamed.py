"""Voxel studies too large for memory: images -> zarr store -> streamed GLM and max-T.

:func:`~graymatter.workflows.glm.run_glm` (and a study file with ``store:``) calls these when a
zarr store is given. Images are written to the store once, one at a time; later runs reuse it
after checking that it holds the same subjects, the same image files (path, size, modification
time) and the same mask. The GLM and the voxel-wise max-T null are then computed block by block
(:mod:`graymatter.stats.streaming`), so memory is bounded by a block, not by the cohort.

Cluster-extent/mass and TFCE nulls need whole permuted images, and random field theory the
residual images' smoothness; neither is available from voxel blocks, so they are refused with a
message rather than silently dropped.
"""

from __future__ import annotations

import logging
from pathlib import Path

import nibabel as nib
import numpy as np

from ..io.templates import mask_to_grid
from ..errors import InputError
from ..io.images import MaskedGrid, find_images
from ..io.provenance import input_record
from ..stats.multiple import fwe_p_from_null
from ..stats.permutation import PermutationResult, auto_method
from .inference import ContrastInference, InferenceSettings, infer_voxels

__all__ = ["fit_streamed", "stream_voxels", "infer_streamed", "check_streamable"]

logger = logging.getLogger("graymatter")


def _check_store(store: Path, attrs: dict, subject_ids: list[str], paths: dict, grid,
                 wanted_mask: np.ndarray) -> None:
    """Raise unless the store was written from these subjects' current images with this mask."""
    from ..io.zarr_store import image_fingerprint

    rebuild = f"delete '{store}' to rebuild it from the images, or give another store path"
    stored = attrs.get("subjects")
    if stored is None:
        raise InputError(f"The zarr store '{store}' does not record its subjects (written from an "
                         f"array, not by a study); {rebuild}.")
    if list(stored) != list(subject_ids):
        missing = [s for s in subject_ids if s not in set(stored)]
        extra = [s for s in stored if s not in set(subject_ids)]
        detail = (f"{len(missing)} subject(s) not in the store (first: {missing[:3]}), "
                  f"{len(extra)} in the store but not in the study (first: {extra[:3]})"
                  if missing or extra else "the same subjects in another order")
        raise InputError(f"The zarr store '{store}' holds {len(stored)} subjects, the study "
                         f"{len(subject_ids)}: {detail}; {rebuild}.")
    sources = attrs.get("sources") or {}
    for sid in subject_ids:
        if list(sources.get(sid, [])) != image_fingerprint(paths[sid]):
            raise InputError(f"The image of '{sid}' ({paths[sid]}) is not the file the zarr store "
                             f"'{store}' was written from (path, size or modification time "
                             f"differ); {rebuild}.")
    if grid is None or grid.mask.shape != wanted_mask.shape \
            or not np.array_equal(grid.mask, wanted_mask):
        raise InputError(f"The zarr store '{store}' was written with another mask than the one "
                         f"asked for now; {rebuild}.")


def stream_voxels(subject_ids, images, mask, store, dtype: str, progress: bool,
                  inputs: dict) -> tuple[Path, MaskedGrid]:
    """Write the subjects' images to ``store`` (or check and reuse it); return (store, grid).

    Parameters
    ----------
    subject_ids : list of str
        Row order of the store (the design's order).
    images : glob pattern, sequence or mapping
        As for :func:`graymatter.io.images.find_images`.
    mask : None, path, image or array
        Voxels to keep (None: the MNI152 gray-matter mask on the images' grid).
    store : str or os.PathLike
    dtype : {"float32", "float64"}
    progress : bool
    inputs : dict
        Provenance records are added here (``images``, ``store``).

    Returns
    -------
    store : pathlib.Path
    grid : MaskedGrid
    """
    from ..io.zarr_store import open_matrix_zarr, store_attributes, write_matrix_zarr

    paths = find_images(subject_ids, images)
    ordered = [paths[s] for s in subject_ids]
    store = Path(store)
    if store.exists():
        first = nib.load(ordered[0])
        wanted = mask_to_grid(mask, first.shape[:3], np.asarray(first.affine))
        _, grid = open_matrix_zarr(store)
        _check_store(store, store_attributes(store), subject_ids, paths, grid, wanted)
        logger.info("Reusing the zarr store %s (%d subjects, images unchanged)", store,
                    len(subject_ids))
    else:
        logger.info("Writing %d images to the zarr store %s", len(ordered), store)
        write_matrix_zarr(ordered, store, mask=mask, dtype=dtype, subjects=subject_ids,
                          progress=progress)
        _, grid = open_matrix_zarr(store)
    inputs["images"] = {sid: input_record(p) for sid, p in paths.items()}
    inputs["store"] = {"path": str(store.resolve()), "kind": "zarr store (a folder)"}
    return store, grid


def fit_streamed(subject_ids, images, mask, store, dtype: str, X, contrasts,
                 settings: InferenceSettings, inputs: dict, *, progress: bool = True,
                 executor=None):
    """The streamed half of :func:`~graymatter.workflows.glm.run_glm`: store, GLM, inference.

    Returns
    -------
    grid : MaskedGrid
    fit : StreamedFit
    results : dict of str to contrast result
    inferred : dict of str to ContrastInference (empty without inference methods)
    """
    from ..datasets.atlases import load_atlas
    from ..stats.streaming import streamed_contrasts

    check_streamable(settings)  # before anything is written
    store, grid = stream_voxels(subject_ids, images, mask, store, dtype, progress, inputs)
    fitted, fit = streamed_contrasts(store, X, contrasts, executor=executor, progress=progress)
    results = {c.name: r for c, r in zip(contrasts, fitted)}
    inferred = {}
    if settings.enabled:
        atlas = load_atlas(settings.atlas, labels=settings.atlas_labels)
        inferred = infer_streamed(store, X, contrasts, results, grid, settings, atlas=atlas,
                                  progress=progress, executor=executor)
    return grid, fit, results, inferred


def check_streamable(settings: InferenceSettings) -> None:
    """Raise before any work when the inference asked for needs whole images in memory.

    Raises
    ------
    InputError
        TFCE or random field theory requested.
    """
    if settings.tfce:
        raise InputError("TFCE needs whole permuted images in memory, but a zarr store is "
                         "streamed in voxel blocks (voxel-wise max-T only). Remove tfce, or drop "
                         "the store and run in memory (graymatter run --dry-run says how much).")
    if "rft" in settings.methods:
        raise InputError("random field theory needs the smoothness of whole residual images, "
                         "which a zarr store streamed in voxel blocks does not give. Use methods: "
                         "[permutation] (voxel-wise max-T) with a store, or run in memory.")


def infer_streamed(store, X, contrasts, results, grid, settings: InferenceSettings, *,
                   atlas=None, progress: bool = True,
                   executor=None) -> dict[str, ContrastInference]:
    """Voxel-wise max-T FWE (streamed), FDR and cluster tables for every contrast.

    Parameters
    ----------
    store : pathlib.Path
        The zarr store the GLM was fitted from.
    X : (n_subjects, n_regressors) ndarray
    contrasts : list of Contrast
    results : dict of str to contrast result
        The streamed GLM's results by contrast name.
    grid : MaskedGrid
    settings : InferenceSettings
        ``methods`` may hold "permutation" only; ``tfce`` must be False.
    atlas : Atlas, optional
    progress : bool, default=True
    executor : Executor, optional
        Where the voxel blocks run.

    Returns
    -------
    dict of str to ContrastInference

    Raises
    ------
    InputError
        TFCE or random field theory requested, or ``random_state`` None.
    """
    from ..stats.streaming import streamed_max_t

    check_streamable(settings)
    inferred = {}
    for contrast in contrasts:
        result = results[contrast.name]
        permutation = None
        if "permutation" in settings.methods:
            stat = result.t if contrast.kind == "t" else result.f
            null = streamed_max_t(store, X, contrast, n_perm=settings.n_perm,
                                  random_state=settings.random_state, executor=executor,
                                  progress=progress)
            permutation = PermutationResult(
                statistic=stat, kind=contrast.kind, null_max={"max_stat": null},
                p_fwe=fwe_p_from_null(stat, null), p_unc=np.full(stat.shape, np.nan),
                n_perm=int(null.size), method=auto_method(X, contrast), two_sided=False,
                random_state=settings.random_state)
        inferred[contrast.name] = infer_voxels(None, X, contrast, result, grid, settings,
                                               atlas=atlas, progress=progress,
                                               permutation=permutation)
    return inferred
