"""Synthetic T1 scans with known tissue maps, made from the MNI152 2009 template (offline).

A scan is the template T1 that nilearn ships, carried into a "subject" space by known transforms:
an optional atrophy (enlarged ventricles, thinned cortex), a random affine (scales 0.85-1.15,
rotations up to 20 degrees), a smooth random nonlinear warp, a header with an unusual axis order
(LPS or PSR) and an origin far from the brain, on a 2 mm grid. A multiplicative bias field, Rician
noise and uint8 storage follow. The template's GM/WM/CSF probability maps go through exactly the
same transforms (one trilinear interpolation composes them all), so the true native-space tissue
maps, volumes and ventricles are known. Used by the preprocessing accuracy tests and benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import nibabel as nib
import numpy as np
from scipy import ndimage as ndi

from ..errors import InputError

TISSUES = ("GM", "WM", "CSF")
_DIRECTIONS = {"R": (1, 0, 0), "L": (-1, 0, 0), "A": (0, 1, 0), "P": (0, -1, 0),
               "S": (0, 0, 1), "I": (0, 0, -1)}
_CSF_T1 = 0.28  # template T1 intensity of voxels with CSF > 0.9 (GM 0.65, WM 0.87)
_GM_T1 = 0.65


@dataclass
class SyntheticT1:
    """A synthetic T1 scan and its ground truth on the same voxel grid.

    Attributes
    ----------
    image : nibabel.Nifti1Image
        The scan (uint8 unless ``dtype`` said otherwise).
    truth : dict of str to numpy.ndarray
        ``GM``, ``WM``, ``CSF`` probabilities (float32, in [0, 1]) on the scan's grid.
    ventricles : numpy.ndarray of bool
        Voxels that are mostly ventricular CSF (ventricle fraction >= 0.5 and CSF >= 0.5).
    params : dict
        The transforms drawn (scales, rotations, origin offset, ...), for the record.
    """

    image: nib.Nifti1Image
    truth: dict
    ventricles: np.ndarray
    params: dict = field(default_factory=dict)

    @property
    def voxel_ml(self) -> float:
        """Volume of one voxel in millilitres."""
        return float(abs(np.linalg.det(self.image.affine[:3, :3]))) / 1000.0

    def volumes_ml(self) -> dict:
        """True tissue volumes ``gm_ml``, ``wm_ml``, ``csf_ml`` and ``tiv_ml`` (their sum)."""
        out = {f"{t.lower()}_ml": float(self.truth[t].sum(dtype=np.float64) * self.voxel_ml)
               for t in TISSUES}
        out["tiv_ml"] = out["gm_ml"] + out["wm_ml"] + out["csf_ml"]
        return out


@lru_cache(maxsize=1)
def _template() -> dict:
    """Template T1 (0-1), GM, WM, CSF (brain mask minus GM and WM) and ventricles, 1 mm."""
    from nilearn import datasets

    t1 = datasets.load_mni152_template(resolution=1)
    data = np.asarray(t1.get_fdata(), dtype=np.float32)
    gm = np.asarray(datasets.load_mni152_gm_template(resolution=1).get_fdata(), np.float32)
    wm = np.asarray(datasets.load_mni152_wm_template(resolution=1).get_fdata(), np.float32)
    brain = data > 0.2  # nilearn's brain mask: the template is skull-stripped at this level
    gm, wm = np.clip(gm, 0, 1) * brain, np.clip(wm, 0, 1) * brain
    csf = np.clip(brain - gm - wm, 0, 1).astype(np.float32)
    ventricles = _ventricle_mask(csf, brain, t1.affine)
    # Unit pull-back field of the ventricle enlargement: the gradient of the smoothed mask.
    push = np.stack(np.gradient(ndi.gaussian_filter(ventricles.astype(np.float32), 6.0)))
    push /= np.sqrt((push ** 2).sum(axis=0)).max()
    return {"t1": data * brain, "GM": gm, "WM": wm, "CSF": csf, "brain": brain,
            "depth": ndi.distance_transform_edt(brain).astype(np.float32),
            "ventricles": ventricles, "push": push, "affine": t1.affine}


def _ventricle_mask(csf: np.ndarray, brain: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """CSF > 0.5 more than 20 mm inside the brain, in components of > 1 ml near the centre.

    These are the lateral ventricles with the third ventricle and atria; sulcal CSF and the
    interhemispheric fissure lie closer to the surface or form small pieces.
    """
    depth = ndi.distance_transform_edt(ndi.binary_fill_holes(brain))
    labels, n = ndi.label((csf > 0.5) & (depth > 20))
    keep = np.zeros(n + 1, bool)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    centres = ndi.center_of_mass(np.ones_like(csf), labels, range(1, n + 1))
    for k, centre in enumerate(centres, start=1):
        mm = affine[:3, :3] @ np.asarray(centre) + affine[:3, 3]
        keep[k] = sizes[k] > 1000 and np.linalg.norm(mm - np.array([0.0, -20.0, 10.0])) < 30
    return keep[labels]


def _thin_cortex(tpl: dict, depth_mm: float, fraction: float) -> dict:
    """Turn ``fraction`` of the GM within ``depth_mm`` of the brain's outer surface into CSF.

    The T1 intensity changes with the tissue (linear mixing of the GM and CSF intensities).
    """
    lost = tpl["GM"] * fraction * (tpl["depth"] <= depth_mm)
    out = dict(tpl)
    out["GM"] = tpl["GM"] - lost
    out["CSF"] = tpl["CSF"] + lost
    out["t1"] = tpl["t1"] + lost * (_CSF_T1 - _GM_T1)
    return out


@lru_cache(maxsize=1)
def _head() -> np.ndarray:
    """A skull (dark) and scalp (bright) shell around the brain, as T1 intensities."""
    tpl = _template()
    outside = ndi.distance_transform_edt(~tpl["brain"])
    scalp = ((outside > 7) & (outside <= 12)).astype(np.float32) * 0.75
    return ndi.gaussian_filter(scalp, 1.0) + ((outside > 0) & (outside <= 7)) * 0.05


def _rotation(angles_deg) -> np.ndarray:
    ax, ay, az = np.deg2rad(angles_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def _native_grid(orientation: str, lo: np.ndarray, hi: np.ndarray, voxel_mm: float):
    """Shape and affine of a grid covering world box [lo, hi] with the given axis codes."""
    codes = orientation.upper()
    if len(codes) != 3 or set(codes) - set(_DIRECTIONS) or \
            len({np.flatnonzero(_DIRECTIONS[c])[0] for c in codes}) != 3:
        raise InputError(f"orientation must be three axis codes naming each of x (L/R), y (A/P) "
                         f"and z (S/I) once, e.g. 'LPS' or 'PSR'; found {orientation!r}.")
    affine = np.eye(4)
    shape = []
    for k, code in enumerate(codes):
        direction = np.asarray(_DIRECTIONS[code], float)
        axis = int(np.flatnonzero(direction)[0])
        shape.append(int(np.ceil((hi[axis] - lo[axis]) / voxel_mm)) + 1)
        affine[:3, k] = direction * voxel_mm
        affine[axis, 3] = lo[axis] if direction[axis] > 0 else hi[axis]
    return tuple(shape), affine


def _smooth_field(rng, shape, sigma_vox: float, n: int) -> np.ndarray:
    """``n`` smooth random fields, each scaled to a maximum absolute value of 1."""
    fields = np.stack([ndi.gaussian_filter(rng.standard_normal(shape), sigma_vox, mode="wrap")
                       for _ in range(n)])
    return fields / np.abs(fields).max(axis=tuple(range(1, fields.ndim)), keepdims=True)


def make_synthetic_t1(*, seed: int = 0, orientation: str = "LPS", voxel_mm: float = 2.0,
                      origin_offset_mm: float = 100.0, scale_range=(0.85, 1.15),
                      max_rotation_deg: float = 20.0, warp_mm: float = 4.0,
                      warp_smoothness_mm: float = 20.0, bias: float = 0.2,
                      noise: float = 0.03, atrophy: bool = False, ventricle_push_mm: float = 4.0,
                      thinning_depth_mm: float = 3.0, thinning_fraction: float = 0.7,
                      skull: bool = True, contrast: str = "T1",
                      dtype=np.uint8) -> SyntheticT1:
    """Make a seeded synthetic T1 scan with its true GM/WM/CSF maps and ventricles.

    Parameters
    ----------
    seed : int
        Seeds every random draw: the same arguments give the same scan.
    orientation : str
        Voxel axis codes of the stored image (nibabel's convention: the world direction each
        axis points to), e.g. ``"LPS"`` or ``"PSR"``.
    voxel_mm : float
        Voxel size of the scan.
    origin_offset_mm : float
        Distance of the brain's centre from the world origin (random direction).
    scale_range : (float, float)
        Range of the random per-axis scales of the affine.
    max_rotation_deg : float
        Rotations about each axis are uniform in +- this.
    warp_mm, warp_smoothness_mm : float
        Largest displacement of the smooth random warp and the Gaussian width (sigma) of its
        random field.
    bias : float
        Multiplicative bias field exp(b) with b a smooth random field in [-bias, bias].
    noise : float
        Rician noise SD as a fraction of the white-matter intensity.
    atrophy : bool
        Enlarge the ventricles (radial push of up to ``ventricle_push_mm``) and turn
        ``thinning_fraction`` of the GM within ``thinning_depth_mm`` of the outer brain surface
        into CSF, before the subject transforms.
    skull : bool
        Add a dark skull and bright scalp shell around the (skull-stripped) template brain.
    contrast : {"T1", "T2"}
        ``"T2"`` inverts the brain's intensities (CSF bright, WM dark): a scan a T1 pipeline
        cannot handle, for failure tests.
    dtype : numpy dtype
        Stored data type (uint8 scales the 99.9th percentile to 250).

    Returns
    -------
    scan : SyntheticT1

    Examples
    --------
    >>> scan = make_synthetic_t1(seed=1, orientation="PSR")  # doctest: +SKIP
    >>> nib.aff2axcodes(scan.image.affine)  # doctest: +SKIP
    ('P', 'S', 'R')
    """
    if contrast not in ("T1", "T2"):
        raise InputError(f"contrast must be 'T1' or 'T2'; found {contrast!r}.")
    rng = np.random.default_rng(seed)
    tpl = _template()
    if atrophy:
        tpl = _thin_cortex(tpl, thinning_depth_mm, thinning_fraction)
    t1 = tpl["t1"]
    if contrast == "T2":
        t1 = np.where(tpl["brain"], 1.0 - t1, 0.0).astype(np.float32)
    if skull:
        t1 = t1 + _head()
    # Anti-aliasing for the 2 mm grid: the sampled maps are what a 2 mm scan would hold.
    sigma = 0.42 * np.sqrt(max(voxel_mm ** 2 - 1.0, 0.0))
    maps = {name: ndi.gaussian_filter(np.asarray(a, np.float32), sigma) for name, a in
            (("t1", t1), *((t, tpl[t]) for t in TISSUES), ("V", tpl["ventricles"]))}

    scales = rng.uniform(*scale_range, size=3)
    angles = rng.uniform(-max_rotation_deg, max_rotation_deg, size=3)
    direction = rng.standard_normal(3)
    offset = origin_offset_mm * direction / np.linalg.norm(direction)
    linear = _rotation(angles) @ np.diag(scales)
    aff_t = tpl["affine"]
    ijk = np.argwhere(ndi.binary_dilation(t1 > 0.02, iterations=2))
    corners = aff_t[:3, :3] @ ijk.T + aff_t[:3, 3:4]
    centre_t = (aff_t[:3, :3] @ np.argwhere(tpl["brain"]).mean(axis=0)) + aff_t[:3, 3]
    world = linear @ (corners - centre_t[:, None]) + offset[:, None]
    margin = warp_mm + 8.0
    shape, affine = _native_grid(orientation, world.min(axis=1) - margin,
                                 world.max(axis=1) + margin, voxel_mm)

    # Pull-back: native voxel -> world -> template mm (inverse affine, then the warp).
    grid = np.indices(shape, dtype=np.float32).reshape(3, -1)
    xw = affine[:3, :3] @ grid + affine[:3, 3:4]
    xt = np.linalg.solve(linear, xw - offset[:, None]) + centre_t[:, None]
    warp = _smooth_field(rng, shape, warp_smoothness_mm / voxel_mm, 3) * warp_mm
    xt = xt + warp.reshape(3, -1)
    vox = np.linalg.solve(aff_t[:3, :3], xt - aff_t[:3, 3:4])
    if atrophy:
        # Sampling at x + u(x), u pointing to the ventricles, reads each point from nearer
        # them: they grow radially (u is at most ventricle_push_mm, small enough to invert).
        vox = vox + ventricle_push_mm * np.stack([ndi.map_coordinates(p, vox, order=1)
                                                  for p in tpl["push"]])

    def sample(a):
        return ndi.map_coordinates(a, vox, order=1, cval=0.0).reshape(shape).astype(np.float32)

    sampled = {k: sample(v) for k, v in maps.items()}
    truth = {t: np.clip(sampled[t], 0, 1) for t in TISSUES}
    ventricles = (sampled["V"] >= 0.5) & (truth["CSF"] >= 0.5)

    img = sampled["t1"]
    field_ = np.exp(bias * _smooth_field(rng, shape, 40.0 / voxel_mm, 1)[0])
    img = img * field_
    sd = noise * 0.87  # WM intensity of the template
    img = np.hypot(img + sd * rng.standard_normal(shape), sd * rng.standard_normal(shape))
    if np.dtype(dtype) == np.uint8:
        img = np.clip(np.round(img * (250.0 / np.percentile(img, 99.9))), 0, 255)
    image = nib.Nifti1Image(img.astype(dtype), affine)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    image.header.set_slope_inter(1.0, 0.0)
    params = {"seed": seed, "orientation": orientation, "voxel_mm": voxel_mm,
              "scales": scales.tolist(), "rotations_deg": angles.tolist(),
              "origin_offset_mm": offset.tolist(), "warp_mm": warp_mm, "bias": bias,
              "noise": noise, "atrophy": atrophy, "skull": skull, "contrast": contrast}
    return SyntheticT1(image, truth, ventricles, params)


def scrambled(image: nib.Nifti1Image, *, seed: int = 0) -> nib.Nifti1Image:
    """The same header with the voxels randomly permuted: a scan no registration can align.

    Parameters
    ----------
    image : nibabel.Nifti1Image
    seed : int

    Returns
    -------
    image : nibabel.Nifti1Image
    """
    data = np.asarray(image.dataobj)
    flat = np.random.default_rng(seed).permutation(data.ravel())
    out = nib.Nifti1Image(flat.reshape(data.shape).astype(data.dtype), image.affine,
                          image.header)
    return out


def compare_to_truth(scan: SyntheticT1, probabilities: dict, *, threshold: float = 0.5) -> dict:
    """Accuracy of estimated tissue probabilities against a synthetic scan's truth.

    Parameters
    ----------
    scan : SyntheticT1
    probabilities : dict of str to nibabel.Nifti1Image
        Estimated ``GM``, ``WM``, ``CSF`` maps; resampled (trilinear) to the scan's grid when
        they lie on another one (e.g. a reoriented copy: then the resampling is a permutation).
    threshold : float
        Probability at and above which a voxel counts as the tissue (both maps).

    Returns
    -------
    metrics : dict
        ``gm_dice`` (Dice of the thresholded GM maps), ``<tissue>_ml`` and ``<tissue>_err_pct``
        (estimated volume, probability sum, and its error relative to the truth in %), and
        ``ventricle_csf_pct`` (% of the true ventricle voxels with estimated CSF >= threshold).
    """
    from nibabel.processing import resample_from_to

    ref = scan.image
    out = {}
    est = {}
    for tissue in TISSUES:
        img = probabilities[tissue]
        same = img.shape[:3] == ref.shape[:3] and np.allclose(img.affine, ref.affine, atol=1e-3)
        if not same:
            img = resample_from_to(img, (ref.shape[:3], ref.affine), order=1)
        est[tissue] = np.asarray(img.dataobj, dtype=np.float64)
    truth = scan.volumes_ml()
    for tissue in TISSUES:
        key = f"{tissue.lower()}_ml"
        out[key] = float(est[tissue].sum() * scan.voxel_ml)
        out[f"{tissue.lower()}_err_pct"] = 100.0 * (out[key] - truth[key]) / truth[key]
    a, b = est["GM"] >= threshold, scan.truth["GM"] >= threshold
    out["gm_dice"] = float(2 * (a & b).sum() / (a.sum() + b.sum()))
    if scan.ventricles.any():
        out["ventricle_csf_pct"] = float(100 * (est["CSF"][scan.ventricles] >= threshold).mean())
    return out


__all__ = ["SyntheticT1", "TISSUES", "make_synthetic_t1", "scrambled", "compare_to_truth"]
