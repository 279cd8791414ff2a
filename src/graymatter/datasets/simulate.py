"""Simulated VBM cohorts: modulated gray-matter maps with planted effects, for demos and tests.

The maps start from the MNI152 gray-matter probability template that nilearn ships (offline) and
add what real cohorts have: smooth per-subject anatomical variability, head-size (TIV) scaling,
age-related gray-matter loss, smooth measurement noise, and group effects planted in spheres.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter

from ..errors import InputError
from ..io.atomic import save_image, write_tsv
from ..io.outputs import check_writable


@dataclass(frozen=True)
class PlantedEffect:
    """A relative gray-matter change planted in a sphere for some subjects.

    Parameters
    ----------
    where : str
        Which subjects carry the effect, as a :meth:`pandas.DataFrame.query` over the
        participants columns, e.g. ``"group == 'MDD'"`` or ``"lithium == 1"``.
    center_mm : (3,) tuple of float
        Centre of the effect in MNI millimetres.
    radius_mm : float
        Distance from the centre at which the effect has fallen to half (a Gaussian profile:
        anatomical effects taper rather than stop at an edge).
    effect : float
        Relative change of gray matter at the centre, e.g. ``-0.10`` for 10 % less.
    """

    where: str
    center_mm: tuple[float, float, float]
    radius_mm: float
    effect: float


@dataclass(frozen=True)
class SimulatedCohort:
    """Files written by :func:`simulate_vbm_cohort`."""

    participants_file: Path
    participants: pd.DataFrame
    images: dict[str, Path]
    effects: tuple[PlantedEffect, ...]


def _fwhm_to_sigma(fwhm_mm: float, voxel_mm: float) -> float:
    return fwhm_mm / (voxel_mm * np.sqrt(8.0 * np.log(2.0)))


def _smooth_field(rng, shape, sigma_vox, sd):
    field = gaussian_filter(rng.standard_normal(shape), sigma_vox)
    return field * (sd / field.std())


def _bump(shape, affine, center_mm, half_mm):
    """Gaussian profile, 1 at ``center_mm`` and 0.5 at ``half_mm`` from it."""
    ijk = np.indices(shape).reshape(3, -1)
    xyz = affine[:3, :3] @ ijk + affine[:3, 3:4]
    dist = np.linalg.norm(xyz - np.asarray(center_mm, dtype=float)[:, None], axis=0)
    return np.exp(-np.log(2.0) * (dist / half_mm) ** 2).reshape(shape)


def simulate_vbm_cohort(
    out_dir: str | os.PathLike,
    *,
    groups: Mapping[str, int] | None = None,
    participants: pd.DataFrame | None = None,
    effects: Sequence[PlantedEffect] = (
        PlantedEffect("group == 'MDD'", (28.0, 4.0, -20.0), 12.0, -0.12),),
    resolution: int = 2,
    variability_sd: float = 0.06,
    noise_sd: float = 0.03,
    fwhm_mm: float = 8.0,
    random_state: int | np.random.Generator | None = 0,
) -> SimulatedCohort:
    """Write a simulated cohort of modulated gray-matter maps and its ``participants.tsv``.

    For subject *s* and voxel *v* the map is
    ``template(v) * tiv_s / 1500 * (1 - 0.003 (age_s - 45)) * (1 + planted_g(v)) * (1 + a_s(v)) + e_s(v)``,
    where ``a_s`` (anatomical variability) and ``e_s`` (noise) are Gaussian random fields smoothed to
    ``fwhm_mm``. Images are named like CAT12 outputs (``mwp1sub-001_T1w.nii.gz``).

    Parameters
    ----------
    out_dir : path
        Folder to write ``participants.tsv`` and ``mri/`` into.
    groups : mapping of str to int, default {"HC": 20, "MDD": 20}
        Group sizes, in the order the participants table lists them (ignored when
        ``participants`` is given).
    participants : pandas.DataFrame, optional
        A ready participants table indexed by subject id, with at least ``age`` and ``tiv``
        (e.g. :func:`study_a_participants`); default: drawn from ``groups``.
    effects : sequence of PlantedEffect
        Effects to plant; each ``where`` selects subjects from the participants table.
    resolution : int, default=2
        Voxel size in mm of nilearn's MNI152 template grid.
    variability_sd, noise_sd : float
        Standard deviations of the relative anatomical variability and of the additive noise.
    fwhm_mm : float, default=8
        Smoothness of both random fields.
    random_state : int, numpy.random.Generator or None, default=0
        Seed; the same seed writes the same cohort.

    Returns
    -------
    SimulatedCohort

    Examples
    --------
    >>> cohort = simulate_vbm_cohort("demo", groups={"HC": 10, "MDD": 10})  # doctest: +SKIP
    >>> cohort.participants.head()  # doctest: +SKIP
    """
    from nilearn.datasets import load_mni152_gm_template

    rng = np.random.default_rng(random_state)
    if participants is None:
        participants = draw_participants(groups or {"HC": 20, "MDD": 20}, rng)
    missing = {"age", "tiv"} - set(participants.columns)
    if missing:
        raise InputError(f"participants need columns {sorted(missing)} to simulate age and head "
                         "size effects.")
    template_img = load_mni152_gm_template(resolution=resolution)
    template = np.asarray(template_img.get_fdata(), dtype=np.float64)
    affine, shape = template_img.affine, template.shape
    sigma = _fwhm_to_sigma(fwhm_mm, float(abs(affine[0, 0])))

    # Per subject, the product of the planted relative changes that apply to them.
    carriers = []
    for effect in effects:
        try:
            selected = participants.query(effect.where).index
        except Exception as err:  # pandas raises many types for a bad expression
            raise InputError(f"planted effect 'where' expression {effect.where!r} cannot be "
                             f"evaluated on the participants table ({err}).") from None
        carriers.append((set(selected),
                         effect.effect * _bump(shape, affine, effect.center_mm, effect.radius_mm)))

    out_dir = check_writable(out_dir)
    images = {}
    for sid, row in participants.iterrows():
        scale = row.tiv / 1500.0 * (1.0 - 0.003 * (row.age - 45.0))
        gm = template * scale
        for selected, change in carriers:
            if sid in selected:
                gm = gm * (1.0 + change)
        gm *= 1.0 + _smooth_field(rng, shape, sigma, variability_sd)
        gm += _smooth_field(rng, shape, sigma, noise_sd) * (template > 0.05)
        img = nib.Nifti1Image(np.clip(gm, 0.0, None).astype(np.float32), affine)
        images[sid] = save_image(out_dir / "mri" / f"mwp1{sid}_T1w.nii.gz", img)
    participants_file = write_tsv(out_dir / "participants.tsv", participants)
    return SimulatedCohort(participants_file, participants, images, tuple(effects))


def draw_participants(groups: Mapping[str, int], rng: np.random.Generator) -> pd.DataFrame:
    """Participants with group, age (45 ± 9), sex and TIV (larger in men), ids ``sub-001``…"""
    n = sum(groups.values())
    sex = rng.choice(["F", "M"], size=n)
    return pd.DataFrame({
        "participant_id": [f"sub-{i + 1:03d}" for i in range(n)],
        "group": np.repeat(list(groups), list(groups.values())),
        "age": np.round(np.clip(rng.normal(45.0, 9.0, n), 18, 80), 1),
        "sex": sex,
        "tiv": np.round(rng.normal(1450.0, 110.0, n) + np.where(sex == "M", 120.0, 0.0), 1),
    }).set_index("participant_id")
