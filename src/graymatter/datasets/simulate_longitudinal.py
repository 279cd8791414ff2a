"""A simulated longitudinal cohort shaped like Study B: regional volumes before and after ECT.

Regional gray-matter volumes (mm³) come from a model with what real FreeSurfer/HCP-MMP1 tables
have: log-normal region sizes, volumes that scale with head size (TIV), between-region correlation
from a few shared anatomical factors plus region-specific variation, and test-retest measurement
noise per session. Between sessions every subject also gets a small global drift that shows in
both the TIV estimate and all regional volumes (the reason to adjust paired change for ΔTIV).
Treatment increases volume in a subset of regions by a subject-specific amount, the subject's
*response*; HAMD falls after treatment (Study B: paired t(23) = −13.93) and its change is
correlated with that response, so a clinical PLS of ΔGMV on ΔHAMD has something to find.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from graymatter.errors import InputError, format_choices

__all__ = ["LongitudinalCohort", "simulate_longitudinal_cohort"]

_TIV_MEAN, _TIV_SD = 1.45e6, 1.3e5  # mm³, adult TIV
_REGION_MEDIAN_MM3, _REGION_LOG_SD = 2500.0, 0.55  # HCP-MMP1 regional GMV, roughly 500 to 15,000 mm³
_N_FACTORS, _FACTOR_SD, _UNIQUE_SD = 3, 0.06, 0.06  # between-subject log-volume variation
_CHANGED_FRACTION = 0.2  # default share of regions with a planted increase
_RETEST_SD = 0.006  # per-session measurement noise (relative), FreeSurfer longitudinal stream
_DRIFT_SD = 0.003  # global session drift shared by TIV and regions (relative)
_HAMD_PRE = (24.0, 4.0)  # mean, SD of baseline HAMD
_HAMD_DROP, _HAMD_DROP_SD = -14.0, 4.9  # gives paired t(23) ≈ -13.9 as in Study B


@dataclass(frozen=True, eq=False)
class LongitudinalCohort:
    """A simulated pre/post cohort.

    Attributes
    ----------
    pre, post : (n_subjects, n_regions) pandas.DataFrame
        Regional gray-matter volumes in mm³, index = subject ids ("sub-01", ...).
    participants : (n_subjects, 6) pandas.DataFrame
        ``age``, ``sex`` ("M"/"F"), ``hamd_pre``, ``hamd_post`` (integers), ``tiv_pre``,
        ``tiv_post`` (mm³).
    changed_regions : tuple of str
        Regions with a planted increase after treatment.
    response : pandas.Series
        Each subject's planted relative volume increase in the changed regions (the truth).
    """

    pre: pd.DataFrame
    post: pd.DataFrame
    participants: pd.DataFrame
    changed_regions: tuple[str, ...]
    response: pd.Series


def _region_names(regions) -> list[str]:
    if isinstance(regions, (int, np.integer)) and not isinstance(regions, bool):
        if regions < 2:
            raise InputError(f"regions must be at least 2 (or a list of names), got {regions}")
        return [f"region_{i + 1:03d}" for i in range(int(regions))]
    if isinstance(regions, str) or not isinstance(regions, Sequence):
        raise InputError(f"regions must be a number of regions or a sequence of region names, got {regions!r}")
    names = [str(r) for r in regions]
    if len(names) < 2 or len(set(names)) != len(names):
        dup = sorted({r for r in names if names.count(r) > 1})
        raise InputError(f"regions must list at least 2 distinct names; got {len(names)} name(s)"
                         + (f" with duplicates {format_choices(dup)}" if dup else ""))
    return names


def _changed(changed_regions, names: list[str], rng) -> list[str]:
    if changed_regions is None:
        k = max(1, round(_CHANGED_FRACTION * len(names)))
        return [names[i] for i in np.sort(rng.choice(len(names), size=k, replace=False))]
    if isinstance(changed_regions, (int, np.integer)) and not isinstance(changed_regions, bool):
        if not 0 <= changed_regions <= len(names):
            raise InputError(f"changed_regions={changed_regions} must be between 0 and the number of "
                             f"regions ({len(names)})")
        return [names[i] for i in np.sort(rng.choice(len(names), size=int(changed_regions), replace=False))]
    chosen = [str(r) for r in changed_regions]
    unknown = [r for r in chosen if r not in set(names)]
    if unknown:
        raise InputError(f"changed_regions names {format_choices(unknown)}, which are not among the "
                         f"regions ({format_choices(names)})")
    return chosen


def simulate_longitudinal_cohort(*, n_subjects: int = 24, regions: int | Sequence[str] = 360,
                                 changed_regions: int | Sequence[str] | None = None,
                                 effect: float = 0.02, effect_sd: float = 0.012,
                                 link_to_clinical: float = -0.7,
                                 random_state=0) -> LongitudinalCohort:
    """Simulate regional volumes before and after treatment, with HAMD and TIV, like Study B.

    Parameters
    ----------
    n_subjects : int, default=24
    regions : int or sequence of str, default=360
        Number of regions (named ``region_001`` …) or their names (e.g. HCP-MMP1 labels).
    changed_regions : int, sequence of str or None, default=None
        Regions with a planted increase: a count (chosen at random), names, or None for 20 % of
        the regions.
    effect : float, default=0.02
        Mean relative volume increase in the changed regions (0.02 = +2 %).
    effect_sd : float, default=0.012
        Between-subject SD of that increase (the subject's response).
    link_to_clinical : float, default=-0.7
        Correlation between a subject's response and their HAMD change (``hamd_post − hamd_pre``);
        negative means larger volume increases go with larger improvements. Must be in [-1, 1].
    random_state : None, int or numpy.random.Generator, default=0

    Returns
    -------
    LongitudinalCohort

    Examples
    --------
    >>> cohort = simulate_longitudinal_cohort(n_subjects=24, regions=360, random_state=0)
    >>> cohort.pre.shape, len(cohort.changed_regions)
    ((24, 360), 72)
    >>> sorted(cohort.participants.columns)
    ['age', 'hamd_post', 'hamd_pre', 'sex', 'tiv_post', 'tiv_pre']
    """
    if isinstance(n_subjects, bool) or not isinstance(n_subjects, (int, np.integer)) or n_subjects < 4:
        raise InputError(f"n_subjects must be an integer >= 4, got {n_subjects!r}")
    if not -1.0 <= float(link_to_clinical) <= 1.0:
        raise InputError(f"link_to_clinical is a correlation and must be in [-1, 1], got {link_to_clinical}")
    if float(effect_sd) < 0:
        raise InputError(f"effect_sd must be >= 0, got {effect_sd}")
    rng = np.random.default_rng(random_state)
    names = _region_names(regions)
    changed = _changed(changed_regions, names, rng)
    n, m = int(n_subjects), len(names)
    subjects = [f"sub-{i + 1:0{max(2, len(str(n)))}d}" for i in range(n)]

    # participants: Study B's age 31.5 ± 10.8 and 9 of 24 male
    age = np.clip(rng.normal(31.5, 10.8, n), 18, 70).round(1)
    sex = np.array(["F"] * n, dtype=object)
    sex[rng.choice(n, size=round(n * 9 / 24), replace=False)] = "M"
    tiv = rng.normal(_TIV_MEAN, _TIV_SD, n) * np.where(sex == "M", 1.06, 0.96)

    # baseline volumes: log-normal region sizes, TIV scaling (slope ~0.8 in log-log, allometry),
    # a few shared factors (between-region correlation) and region-specific variation
    size = _REGION_MEDIAN_MM3 * np.exp(rng.normal(0.0, _REGION_LOG_SD, m))
    allometry = rng.normal(0.8, 0.1, m)
    loadings = rng.normal(0.0, 1.0, (_N_FACTORS, m)) * (_FACTOR_SD / np.sqrt(_N_FACTORS))
    log_true = (np.log(size)[None, :] + np.log(tiv / _TIV_MEAN)[:, None] * allometry[None, :]
                + rng.standard_normal((n, _N_FACTORS)) @ loadings
                + rng.normal(0.0, _UNIQUE_SD, (n, m)))
    true_pre = np.exp(log_true)

    # treatment: each subject's response applies to all changed regions (with regional variation)
    response = rng.normal(effect, effect_sd, n)
    region_gain = np.zeros(m)
    mask = np.isin(names, changed)
    region_gain[mask] = rng.uniform(0.6, 1.4, mask.sum())
    true_post = true_pre * (1.0 + response[:, None] * region_gain[None, :])

    # measurement: session drift shared by TIV and regions, plus test-retest noise
    drift = rng.normal(0.0, _DRIFT_SD, (2, n))
    pre = true_pre * (1 + drift[0])[:, None] * (1 + rng.normal(0, _RETEST_SD, (n, m)))
    post = true_post * (1 + drift[1])[:, None] * (1 + rng.normal(0, _RETEST_SD, (n, m)))
    tiv_pre = tiv * (1 + drift[0]) * (1 + rng.normal(0, 0.002, n))
    tiv_post = tiv * (1 + drift[1]) * (1 + rng.normal(0, 0.002, n))

    # clinical: HAMD change correlated with the standardised response
    z = (response - response.mean()) / (response.std() if response.std() > 0 else 1.0)
    rho = float(link_to_clinical)
    dhamd = _HAMD_DROP + _HAMD_DROP_SD * (rho * z + np.sqrt(1 - rho ** 2) * rng.standard_normal(n))
    hamd_pre = np.clip(np.round(rng.normal(*_HAMD_PRE, n)), 18, 52)
    hamd_post = np.clip(np.round(hamd_pre + dhamd), 0, 52)

    index = pd.Index(subjects, name="participant_id")
    participants = pd.DataFrame({"age": age, "sex": pd.array(sex, dtype="str"),
                                 "hamd_pre": hamd_pre.astype(np.int64), "hamd_post": hamd_post.astype(np.int64),
                                 "tiv_pre": tiv_pre, "tiv_post": tiv_post}, index=index)
    return LongitudinalCohort(pre=pd.DataFrame(pre, index=index, columns=names),
                              post=pd.DataFrame(post, index=index, columns=names),
                              participants=participants, changed_regions=tuple(changed),
                              response=pd.Series(response, index=index, name="response"))
