"""MNI152 2009 template, tissue priors and brain mask on the output grid (nilearn, offline)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache

import nibabel as nib
import numpy as np

from graymatter.datasets.templates import mni_grid

#: Template space of nilearn's MNI152 images: ICBM152 2009, release a, asymmetric.
SPACE = "MNI152NLin2009aAsym"


@dataclass(frozen=True)
class TemplateSet:
    """Template images on one MNI grid (all shape ``grid``; probabilities in [0, 1]).

    Attributes
    ----------
    t1 : nibabel.Nifti1Image
        Skull-stripped T1 template (registration target).
    gm, wm, csf : nibabel.Nifti1Image
        Tissue priors; CSF is the brain mask minus GM and WM, clipped to [0, 1].
    deep_gm : nibabel.Nifti1Image
        The part of ``gm`` in the basal ganglia and thalamus (see :func:`deep_gm_weight`);
        segmented as its own class (its T1 intensity lies between cortex and WM) and counted
        as GM, as in CAT12/SPM.
    mask : nibabel.Nifti1Image
        Brain (intracranial) mask probability.
    resolution_mm : float
    """

    t1: nib.Nifti1Image
    gm: nib.Nifti1Image
    wm: nib.Nifti1Image
    csf: nib.Nifti1Image
    mask: nib.Nifti1Image
    deep_gm: nib.Nifti1Image
    resolution_mm: float

    @property
    def voxel_ml(self) -> float:
        """Volume of one output voxel in millilitres."""
        return self.resolution_mm ** 3 / 1000.0


def _resampled(image, shape, affine) -> np.ndarray:
    from nilearn.image import resample_img

    with warnings.catch_warnings():  # nilearn's notices about resampling defaults
        warnings.simplefilter("ignore")
        out = resample_img(image, target_affine=affine, target_shape=shape,
                           interpolation="continuous", force_resample=True, copy_header=True)
    return np.clip(np.asarray(out.get_fdata(), dtype=np.float32), 0.0, None)


#: MNI box (mm) holding the caudate, putamen, pallidum and thalamus, and no cortex: the insula
#: lies at |x| > 35, the cingulate above z = 24 or in front of y = 28, the hippocampus below
#: z = -12.
DEEP_GM_BOX = ((-33.0, 33.0), (-38.0, 28.0), (-12.0, 24.0))


def deep_gm_weight(shape, affine, *, soften_mm: float = 2.0) -> np.ndarray:
    """Weight in [0, 1] of the deep-GM box on a grid, its edges softened by a Gaussian.

    Examples
    --------
    >>> shape, affine = mni_grid(2.0)
    >>> w = deep_gm_weight(shape, affine)
    >>> ijk = np.round(np.linalg.inv(affine) @ [12, -18, 8, 1]).astype(int)[:3]  # thalamus
    >>> float(w[tuple(ijk)]) > 0.99
    True
    """
    from scipy import ndimage

    ijk = np.indices(shape).reshape(3, -1)
    xyz = (affine[:3, :3] @ ijk + affine[:3, 3:4]).reshape((3, *shape))
    inside = np.ones(shape, bool)
    for axis, (low, high) in enumerate(DEEP_GM_BOX):
        inside &= (xyz[axis] >= low) & (xyz[axis] <= high)
    voxel = float(np.sqrt((affine[:3, :3] ** 2).sum(axis=0)).mean())
    return ndimage.gaussian_filter(inside.astype(np.float32), soften_mm / voxel).clip(0, 1)


@lru_cache(maxsize=4)
def load_templates(resolution_mm: float = 1.5) -> TemplateSet:
    """The MNI152 2009 template, GM/WM/CSF priors and brain mask on the SPM/CAT12 grid.

    Parameters
    ----------
    resolution_mm : float
        Output voxel size: 1.5 (CAT12's 121 x 145 x 121), 2 or 1 (see
        :func:`graymatter.datasets.templates.mni_grid`).

    Returns
    -------
    templates : TemplateSet

    Examples
    --------
    >>> tpl = load_templates(2.0)
    >>> tpl.t1.shape
    (91, 109, 91)
    """
    from nilearn import datasets

    shape, affine = mni_grid(resolution_mm)
    t1 = _resampled(datasets.load_mni152_template(resolution=1), shape, affine)
    gm = np.clip(_resampled(datasets.load_mni152_gm_template(resolution=1), shape, affine), 0, 1)
    wm = np.clip(_resampled(datasets.load_mni152_wm_template(resolution=1), shape, affine), 0, 1)
    mask = np.clip(_resampled(datasets.load_mni152_brain_mask(resolution=1), shape, affine), 0, 1)
    csf = np.clip(mask - gm - wm, 0.0, 1.0)

    def image(data):
        img = nib.Nifti1Image(data.astype(np.float32), affine)
        img.set_sform(affine, code=4)  # MNI
        img.set_qform(affine, code=4)
        return img

    deep = gm * deep_gm_weight(shape, affine)
    return TemplateSet(image(t1), image(gm), image(wm), image(csf), image(mask),
                       image(deep), float(resolution_mm))


__all__ = ["SPACE", "TemplateSet", "DEEP_GM_BOX", "deep_gm_weight", "load_templates"]
