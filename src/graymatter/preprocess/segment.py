"""Bias correction, brain extraction from the warped template mask, and Atropos segmentation."""

from __future__ import annotations

import numpy as np

from .antsbridge import import_ants


def bias_correct(t1, *, denoise: bool = False, shrink_factor: int = 4):
    """N4 bias-field correction, optionally after non-local-means denoising (Rician).

    Parameters
    ----------
    t1 : ants.ANTsImage
        Native T1 (3-D).
    denoise : bool
        Run ``ants.denoise_image`` first.
    shrink_factor : int
        N4 works on the image shrunk by this factor (the field is smooth).

    Returns
    -------
    corrected : ants.ANTsImage
        Same grid as ``t1``, intensities rescaled to [0, 1000].

    Examples
    --------
    >>> corrected = bias_correct(t1)  # doctest: +SKIP
    """
    ants = import_ants()
    image = t1 - float(t1.min())  # N4 works on log intensities: keep them positive
    if denoise:
        image = ants.denoise_image(image, noise_model="Rician")
    corrected = ants.n4_bias_field_correction(
        image, shrink_factor=shrink_factor,
        convergence={"iters": [50, 50, 30, 20], "tol": 1e-6})
    return ants.iMath(corrected, "Normalize") * 1000.0


def warp_to_native(template_image, reference, transforms):
    """Warp a template-space image into native space (inverse of the registration).

    Parameters
    ----------
    template_image : ants.ANTsImage
    reference : ants.ANTsImage
        Native grid.
    transforms : Registration
        From :func:`graymatter.preprocess.normalise.register_to_template`.

    Returns
    -------
    image : ants.ANTsImage
    """
    ants = import_ants()
    return ants.apply_transforms(reference, template_image, transforms.inverse,
                                 whichtoinvert=transforms.inverse_flags, interpolator="linear")


def brain_mask(template_mask_native, *, threshold: float = 0.5):
    """Binary brain mask: the template mask warped to native space, thresholded, holes filled.

    Parameters
    ----------
    template_mask_native : ants.ANTsImage
        Template mask probability on the native grid.
    threshold : float

    Returns
    -------
    mask : ants.ANTsImage
        0/1 on the native grid.
    """
    ants = import_ants()
    mask = ants.threshold_image(template_mask_native, threshold, 1e9)
    return ants.iMath(mask, "FillHoles")


#: Atropos classes in order of increasing T1 intensity; DGM (deep GM) counts as GM.
CLASSES = ("CSF", "GM", "DGM", "WM")


def segment_tissues(t1, mask, priors, *, prior_weight: float = 0.25, iterations: int = 5,
                    mrf: float = 0.1):
    """Prior-based Atropos segmentation (with an MRF) into CSF, GM, deep GM and WM.

    Parameters
    ----------
    t1 : ants.ANTsImage
        Bias-corrected native T1.
    mask : ants.ANTsImage
        Brain mask (0/1), same grid.
    priors : dict of str to ants.ANTsImage
        Prior probabilities on the native grid for ``CSF``, ``GM``, ``WM`` and optionally
        ``DGM`` (deep GM, a class of its own because its intensity lies between cortex and WM).
    prior_weight : float
        Weight of the priors against the intensity likelihood and the MRF (0 = none,
        1 = priors only). Low, so that intensity decides where it is clear (CSF in enlarged
        ventricles and sulci of an atrophied brain stays CSF).
    iterations : int
        EM iterations.
    mrf : float
        Atropos MRF smoothing (neighbourhood 1 voxel).

    Returns
    -------
    probabilities : dict of str to numpy.ndarray of float32, shape (X, Y, Z)
        Posterior probabilities of CSF, GM (deep GM included) and WM, zero outside the mask;
        they sum to 1 inside it.
    means : dict of str to float
        Posterior-weighted mean T1 intensity of each Atropos class (QC: CSF < GM < WM).

    Examples
    --------
    >>> probs, means = segment_tissues(t1, mask, priors)  # doctest: +SKIP
    """
    ants = import_ants()
    names = [n for n in CLASSES if n in priors]
    # Normalise the priors so they sum to 1 in the mask (Atropos expects a partition).
    stack = np.stack([priors[n].numpy() for n in names]).clip(0, None) + 1e-4
    stack /= stack.sum(axis=0, keepdims=True)
    prior_images = [priors["GM"].new_image_like(p.astype(np.float32)) for p in stack]
    result = ants.atropos(a=t1, x=mask, i=prior_images, m=f"[{float(mrf)},1x1x1]",
                          c=f"[{int(iterations)},0]", priorweight=float(prior_weight),
                          r=0)  # -r 0: fixed seed, so reruns repeat exactly
    inside = mask.numpy() > 0
    intensity = t1.numpy()[inside].astype(np.float64)
    raw, means = {}, {}
    for name, image in zip(names, result["probabilityimages"]):
        p = np.where(inside, image.numpy(), 0.0).astype(np.float32)
        raw[name] = p
        weight = p[inside].astype(np.float64)
        means[name] = float((weight * intensity).sum() / weight.sum()) if weight.sum() else \
            float("nan")
    if "DGM" in raw:
        raw["GM"] = raw["GM"] + raw.pop("DGM")
    out = {n: raw[n] for n in ("CSF", "GM", "WM")}
    total = sum(out.values())
    ok = total > 0
    for name in out:  # exact partition of the mask, whatever Atropos's rounding
        out[name] = np.where(ok, out[name] / np.where(ok, total, 1.0), 0.0).astype(np.float32)
    # A masked voxel that got no posterior at all counts as CSF, so the volumes add up to TIV.
    out["CSF"][inside & ~ok] = 1.0
    return out, means


__all__ = ["CLASSES", "bias_correct", "warp_to_native", "brain_mask", "segment_tissues"]
