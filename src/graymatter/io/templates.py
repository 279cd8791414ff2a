"""MNI152 grids and the default gray-matter mask (shipped with nilearn, no download)."""

from __future__ import annotations

import functools
import logging
import os

import nibabel as nib
import numpy as np

from graymatter.errors import InputError

logger = logging.getLogger("graymatter")

# SPM's MNI bounding box (mm), shared by SPM and CAT12 outputs: x from +90 (voxel 0, left-right
# flipped) to -90, y from -126 to 90, z from -72 to 108.
_BBOX_MIN = np.array([-90.0, -126.0, -72.0])
_BBOX_MAX = np.array([90.0, 90.0, 108.0])


def mni_grid(resolution_mm: float) -> tuple[tuple[int, int, int], np.ndarray]:
    """Shape and affine of the SPM/CAT12 MNI152 grid at an isotropic resolution.

    The grid covers SPM's bounding box (x -90..90, y -126..90, z -72..108 mm) with a
    negative x step (radiological storage, as SPM and CAT12 write images): 1 mm gives
    181 x 217 x 181, 1.5 mm gives CAT12's 121 x 145 x 121 and 2 mm SPM's 91 x 109 x 91.

    Parameters
    ----------
    resolution_mm : float
        Voxel size in mm (> 0).

    Returns
    -------
    shape : tuple of int, shape (3,)
    affine : numpy.ndarray of float, shape (4, 4)
        Voxel indices to MNI mm.

    Examples
    --------
    >>> shape, affine = mni_grid(1.5)
    >>> shape
    (121, 145, 121)
    >>> affine[:3, 3].tolist()
    [90.0, -126.0, -72.0]
    """
    try:
        r = float(resolution_mm)
    except (TypeError, ValueError):
        r = float("nan")
    if not np.isfinite(r) or r <= 0:
        raise InputError(f"resolution_mm must be a positive number of millimetres (e.g. 1.5 or "
                         f"2); found {resolution_mm!r}.")
    # The small tolerance keeps 216 / 1.5 = 144 from rounding down to 143.
    shape = tuple(int(n) + 1 for n in np.floor((_BBOX_MAX - _BBOX_MIN) / r + 1e-6))
    affine = np.diag([-r, r, r, 1.0])
    affine[:3, 3] = [_BBOX_MAX[0], _BBOX_MIN[1], _BBOX_MIN[2]]
    return shape, affine


def _target_grid(target_img) -> tuple[tuple[int, ...], np.ndarray]:
    if isinstance(target_img, tuple) and len(target_img) == 2:
        shape, affine = target_img
        return tuple(int(s) for s in shape)[:3], np.asarray(affine, dtype=float)
    if isinstance(target_img, (str, os.PathLike)):
        try:
            target_img = nib.load(target_img)
        except Exception as exc:  # nibabel raises many types for unreadable files
            raise InputError(f"Cannot read image '{target_img}' to build the gray-matter mask: "
                             f"{exc}. Pass a readable NIfTI image.") from exc
    if not hasattr(target_img, "affine") or not hasattr(target_img, "shape"):
        raise InputError("target_img must be a nibabel image, an image path or a (shape, "
                         f"affine) tuple; found {type(target_img).__name__}.")
    return tuple(int(s) for s in target_img.shape[:3]), np.asarray(target_img.affine, float)


def default_gm_mask(target_img=None, *, threshold: float = 0.2) -> nib.Nifti1Image:
    """The MNI152 (ICBM 2009) gray-matter mask on a given voxel grid.

    The gray-matter probability template shipped with nilearn (ICBM152 2009a nonlinear
    symmetric, 1 mm, :func:`nilearn.datasets.load_mni152_gm_template`) is resampled *as a
    probability map* (linear interpolation) onto the target grid, then thresholded:
    ``mask = probability > threshold``. Resampling before thresholding makes the mask depend
    only on the anatomy at each target voxel centre, not on how a binary 1 mm mask happened to
    fall on the grid. Unlike :func:`nilearn.datasets.load_mni152_gm_mask`, no morphological
    closing is applied, so every masked voxel really has ``probability > threshold``.

    Parameters
    ----------
    target_img : nibabel image, path, (shape, affine) tuple or None, default=None
        The grid to produce the mask on (e.g. the first image of a study, or
        :func:`mni_grid` output). None gives nilearn's native 2 mm template grid
        (99 x 117 x 95).
    threshold : float, default=0.2
        Gray-matter probability threshold (in [0, 1)); 0.2 is nilearn's default and a common
        VBM choice (SPM's "absolute threshold masking" commonly uses 0.1-0.2).

    Returns
    -------
    mask : nibabel.Nifti1Image of uint8, shape (X, Y, Z)
        1 inside gray matter, 0 elsewhere, with the target affine.

    Examples
    --------
    >>> mask = default_gm_mask(mni_grid(2))  # doctest: +SKIP
    >>> mask.shape  # doctest: +SKIP
    (91, 109, 91)
    """
    from nilearn.datasets import load_mni152_gm_template
    from nilearn.image import resample_img

    if not (isinstance(threshold, (int, float)) and 0 <= threshold < 1):
        raise InputError(f"threshold must be a gray-matter probability in [0, 1) (e.g. 0.2); "
                         f"found {threshold!r}.")
    if target_img is None:
        template = load_mni152_gm_template(resolution=2)
        data = template.get_fdata(dtype=np.float32)
        affine = template.affine
    else:
        shape, affine = _target_grid(target_img)
        template = load_mni152_gm_template(resolution=1)
        resampled = resample_img(template, target_affine=affine, target_shape=shape,
                                 interpolation="linear", fill_value=0.0, force_resample=True,
                                 copy_header=True)
        data = resampled.get_fdata(dtype=np.float32)
    mask = (data > threshold).astype(np.uint8)
    logger.info("Default gray-matter mask: %d voxels (MNI152 GM probability > %g)",
                int(mask.sum()), threshold)
    img = nib.Nifti1Image(mask, affine)
    img.header.set_xyzt_units("mm")
    return img


@functools.lru_cache(maxsize=1)
def _mni_brain_points(threshold: float = 0.2) -> np.ndarray:
    """World (mm) coordinates of the MNI152 gray-matter voxels (2 mm), shape (n, 3)."""
    from nilearn.datasets import load_mni152_gm_template

    template = load_mni152_gm_template(resolution=2)
    inside = np.argwhere(template.get_fdata(dtype=np.float32) > threshold)
    return nib.affines.apply_affine(template.affine, inside)


def template_overlap(shape, affine) -> float:
    """Fraction of the MNI152 gray matter that lies inside a grid's field of view.

    An image normalised to MNI space covers (nearly) all of it; an image in native scanner
    space, or with a wrong affine, covers little or none.

    Parameters
    ----------
    shape : tuple of int, shape (3,)
    affine : numpy.ndarray of float, shape (4, 4)

    Returns
    -------
    overlap : float in [0, 1]

    Examples
    --------
    >>> round(template_overlap(*mni_grid(2)), 3)  # doctest: +SKIP
    1.0
    """
    points = _mni_brain_points()
    try:
        voxels = nib.affines.apply_affine(np.linalg.inv(np.asarray(affine, float)), points)
    except np.linalg.LinAlgError:
        return 0.0  # a singular affine maps the brain nowhere
    upper = np.asarray(shape[:3], float) - 0.5
    inside = ((voxels >= -0.5) & (voxels <= upper)).all(axis=1)
    return float(inside.mean())


def mask_to_grid(mask, shape, affine, *, atol: float = 1e-3) -> np.ndarray:
    """A mask as a boolean array on a voxel grid, resampling it if needed.

    Parameters
    ----------
    mask : None, str, os.PathLike, nibabel image or numpy.ndarray
        None: :func:`default_gm_mask` on the grid. An image (or its path) on another grid is
        resampled with nearest-neighbour interpolation (logged). Voxels > 0 are kept.
    shape : tuple of int, shape (3,)
    affine : numpy.ndarray of float, shape (4, 4)
        The target grid.
    atol : float, default=1e-3
        Tolerance (mm) when deciding whether the mask is already on the grid.

    Returns
    -------
    mask : numpy.ndarray of bool, shape ``shape``

    Examples
    --------
    >>> shape, affine = mni_grid(2)
    >>> mask_to_grid(None, shape, affine).shape  # doctest: +SKIP
    (91, 109, 91)
    """
    shape = tuple(int(s) for s in shape)
    if mask is None:
        return np.asanyarray(default_gm_mask((shape, affine)).dataobj) > 0
    if isinstance(mask, np.ndarray):
        if mask.shape != shape:
            raise InputError(f"mask array has shape {mask.shape}; the images have shape {shape}. "
                             "Pass a mask image (it is resampled) or an array on the image grid.")
        return mask > 0
    name = f"'{mask}'" if isinstance(mask, (str, os.PathLike)) else "image"
    img = mask
    if isinstance(mask, (str, os.PathLike)):
        try:
            img = nib.load(mask)
        except Exception as exc:  # nibabel raises many types for missing/corrupt files
            raise InputError(f"Cannot read mask {name}: {exc}. Pass a readable NIfTI mask "
                             "image.") from exc
    if not hasattr(img, "dataobj") or len(img.shape) < 3 or any(s != 1 for s in img.shape[3:]):
        raise InputError(f"mask {name} must be a 3-D image, a path to one or a boolean array; "
                         f"found {getattr(img, 'shape', type(img).__name__)}.")
    try:
        data = np.asanyarray(img.dataobj).reshape(img.shape[:3])
    except Exception as exc:
        raise InputError(f"Cannot read the voxels of mask {name}: {exc}.") from exc
    if data.shape != shape or not np.allclose(img.affine, affine, atol=atol):
        from nilearn.image import resample_img

        logger.info("Resampling mask %s from shape %s to the image grid %s (nearest neighbour)",
                    name, data.shape, shape)
        img = resample_img(nib.Nifti1Image((data > 0).astype(np.uint8), img.affine),
                           target_affine=affine, target_shape=shape, interpolation="nearest",
                           force_resample=True, copy_header=True)
        data = np.asanyarray(img.dataobj)
    return data > 0


__all__ = ["default_gm_mask", "mni_grid", "mask_to_grid", "template_overlap"]
