"""Affine + SyN registration to the MNI template, Jacobian modulation and smoothing."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from . import initialise
from .antsbridge import import_ants

logger = logging.getLogger("graymatter")


@dataclass(frozen=True)
class Registration:
    """Transforms between a native T1 and the template (ANTs files, fixed = template).

    Attributes
    ----------
    forward : list of str
        ``[warp, affine]``: maps native images onto the template grid.
    inverse : list of str
        ``[affine, inverse_warp]``: maps template images onto the native grid.
    inverse_flags : list of bool
        ``whichtoinvert`` for :attr:`inverse`.
    affine_det : float
        Determinant of the affine's linear part: native volume per template volume.
    start_ncc : float
        NCC with the template after the first (head) stage, from the best start.
    """

    forward: list
    inverse: list
    inverse_flags: list
    affine_det: float
    start_ncc: float = float("nan")


#: NCC (inside the template brain) of the first start's similarity transform above which the
#: other starts are not tried (see docs/preprocessing.md for the values it was set from).
GOOD_START_NCC = 0.30


def register_to_template(t1, template, template_mask, *, random_seed: int = 0,
                         syn_iterations=(40, 20, 10), exhaustive: bool = False) -> Registration:
    """Register a whole-head T1 to the skull-stripped template, brain extraction included.

    Stages (fixed = template): (1) similarity transform of the head from a start set by the
    cranium's geometry (:mod:`~.initialise`), metric restricted to the dilated template brain;
    when its NCC is poor, eight rotated starts are tried and the best kept; (2) affine of the
    brain, the native image masked by the template mask carried back (dilated 4 voxels);
    (3) SyN of the brain, masked by the refined carried mask (dilated 2 voxels). Skull and
    neck therefore never drive the affine or the warp.

    Parameters
    ----------
    t1 : ants.ANTsImage
        Bias-corrected native T1 (whole head).
    template, template_mask : ants.ANTsImage
        Template T1 and brain mask on the output grid.
    random_seed : int
        Seed of the metric's random sampling (fixed, so runs repeat exactly).
    syn_iterations : sequence of int
        SyN iterations per level, coarse to fine.
    exhaustive : bool
        Try every start, not only when the first is poor (used by the retry).

    Returns
    -------
    registration : Registration

    Examples
    --------
    >>> reg = register_to_template(t1, tpl, tpl_mask, random_seed=0)  # doctest: +SKIP
    """
    ants = import_ants()
    # antspyx 0.6 ignores registration(random_seed=...) and reads ants.config._random_seed;
    # ANTs takes seed 0 to mean "use the clock", hence the + 1.
    seed = int(random_seed) + 1
    previous = ants.config._random_seed
    ants.config._random_seed = seed
    try:
        return _register(ants, t1, template, template_mask, seed, syn_iterations, exhaustive)
    finally:
        ants.config._random_seed = previous


def masked_ncc(ants, warped, template, mask) -> float:
    """Pearson correlation of a warped image with the template inside ``mask`` (ANTs images)."""
    inside = mask.numpy() > 0.5
    a, b = warped.numpy()[inside].astype(float), template.numpy()[inside].astype(float)
    if a.size < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def _head_similarity(ants, t1, template, template_mask, seed, exhaustive):
    """Stage 1: similarity transform of the head, best of several starts."""
    fixed_mask = ants.iMath(template_mask, "MD", 3)
    coarse = ants.resample_image(template, (3.0, 3.0, 3.0), interp_type=0)
    coarse_mask = ants.resample_image(template_mask, (3.0, 3.0, 3.0), interp_type=1)
    best, starts = None, [(0.0, 0.0, 0.0)]
    k = 0
    while k < len(starts):
        init = initialise.starting_transform(t1, template_mask, starts[k])
        reg = ants.registration(template, t1, type_of_transform="Similarity",
                                initial_transform=init, mask=fixed_mask, random_seed=seed,
                                aff_metric="GC",
                                aff_shrink_factors=(6, 4, 2), aff_smoothing_sigmas=(3, 2, 1),
                                aff_iterations=(200, 100, 50))
        warped = ants.apply_transforms(coarse, t1, reg["fwdtransforms"])
        score = masked_ncc(ants, warped, coarse, coarse_mask)
        logger.debug("start %s: NCC %.3f", starts[k], score)
        remove_files([init])
        if best is None or (np.isfinite(score) and not score <= best[0]):
            if best is not None:
                remove_files(best[1]["fwdtransforms"])
            best = (score, reg)
        else:
            remove_files(reg["fwdtransforms"])
        if k == 0 and (exhaustive or not score >= GOOD_START_NCC):
            starts += initialise.rotations()
        k += 1
    return best[1]["fwdtransforms"][0], best[0]


def _register(ants, t1, template, template_mask, seed, syn_iterations, exhaustive):

    def carried_mask(transforms, dilate):
        warped = ants.apply_transforms(t1, template_mask, transforms, interpolator="linear",
                                       whichtoinvert=[True])
        return ants.iMath(ants.threshold_image(warped, 0.5, 1e9), "MD", dilate)

    head, start_ncc = _head_similarity(ants, t1, template, template_mask, seed, exhaustive)
    mask = carried_mask([head], 4)
    affine = ants.registration(template, t1 * mask, type_of_transform="Affine",
                               initial_transform=head, random_seed=seed,
                               aff_shrink_factors=(4, 2, 1), aff_smoothing_sigmas=(2, 1, 0),
                               aff_iterations=(200, 100, 50))
    mask = carried_mask(affine["fwdtransforms"], 2)
    syn = ants.registration(template, t1 * mask, type_of_transform="SyNOnly",
                            initial_transform=affine["fwdtransforms"][0], random_seed=seed,
                            reg_iterations=tuple(int(i) for i in syn_iterations))
    remove_files([head] + affine["fwdtransforms"] + affine["invtransforms"])
    forward = list(syn["fwdtransforms"])
    matrix = np.asarray(ants.read_transform(forward[1]).parameters[:9], float).reshape(3, 3)
    return Registration(forward, list(syn["invtransforms"]), [True, False],
                        float(abs(np.linalg.det(matrix))), float(start_ncc))


def remove_files(paths) -> None:
    """Delete ANTs' temporary transform files (it leaves them in the temp folder)."""
    for name in set(paths):
        try:
            os.remove(name)
        except OSError:
            pass


def to_template(image, template, registration: Registration, *, interpolator="linear"):
    """Warp a native image onto the template grid (``interpolator`` as in ANTs)."""
    ants = import_ants()
    return ants.apply_transforms(template, image, registration.forward,
                                 interpolator=interpolator)


def jacobian_determinant(template, registration: Registration) -> np.ndarray:
    """Native volume per template volume at each template voxel (warp Jacobian x affine det).

    Parameters
    ----------
    template : ants.ANTsImage
    registration : Registration

    Returns
    -------
    jacobian : (X, Y, Z) numpy.ndarray of float32
        Positive for a diffeomorphic warp.
    """
    ants = import_ants()
    jac = ants.create_jacobian_determinant_image(template, registration.forward[0])
    return (jac.numpy() * registration.affine_det).astype(np.float32)


def modulate(warped_probability: np.ndarray, jacobian: np.ndarray) -> np.ndarray:
    """Jacobian modulation: the map's sum x voxel volume stays the native tissue volume.

    Parameters
    ----------
    warped_probability : (X, Y, Z) numpy.ndarray
    jacobian : (X, Y, Z) numpy.ndarray

    Returns
    -------
    modulated : (X, Y, Z) numpy.ndarray of float32

    Examples
    --------
    >>> modulate(np.full((2, 2, 2), 0.5), np.full((2, 2, 2), 2.0))[0, 0, 0]
    np.float32(1.0)
    """
    return (np.asarray(warped_probability) * np.asarray(jacobian)).astype(np.float32)


def smooth(data: np.ndarray, *, fwhm_mm: float, voxel_mm) -> np.ndarray:
    """Isotropic Gaussian smoothing with a FWHM in mm (zero outside the grid).

    Parameters
    ----------
    data : (X, Y, Z) numpy.ndarray
    fwhm_mm : float
        0 returns a copy.
    voxel_mm : float or sequence of float, shape (3,)

    Returns
    -------
    smoothed : (X, Y, Z) numpy.ndarray of float32

    Examples
    --------
    >>> smooth(np.ones((5, 5, 5)), fwhm_mm=0, voxel_mm=2).sum()
    np.float32(125.0)
    """
    data = np.asarray(data, dtype=np.float32)
    if fwhm_mm <= 0:
        return data.copy()
    sigma = float(fwhm_mm) / np.sqrt(8 * np.log(2)) / np.broadcast_to(voxel_mm, (3,))
    return ndimage.gaussian_filter(data, sigma=sigma, mode="constant").astype(np.float32)


__all__ = ["Registration", "register_to_template", "to_template", "jacobian_determinant",
           "modulate", "smooth", "remove_files"]
