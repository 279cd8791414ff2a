"""Study A (VBM in treatment-resistant depression) as a simulated cohort: design, effects, contrasts.

The participants table follows the published Table 1 (group sizes, age, sex, illness measures,
bipolar subtype and medication counts); the planted effects sit at the published peak
coordinates. The images are simulated (see :func:`graymatter.datasets.simulate.simulate_vbm_cohort`),
so results resemble the design of the paper, not its data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .simulate import PlantedEffect

CELLS = {"TRD_UP": 26, "TRD_BP": 15, "nonTRD_UP": 16, "nonTRD_BP": 24, "HC": 44}
MEDICATIONS = ("antidepressants", "lithium", "anticonvulsants", "antipsychotics",
               "benzodiazepines")
# Published counts of users per medication in TRD (41) and non-TRD (40).
_MEDICATION_COUNTS = {"antidepressants": (19, 23), "anticonvulsants": (12, 10),
                      "lithium": (5, 10), "antipsychotics": (16, 9), "benzodiazepines": (18, 15)}
# (mean, SD) per diagnosis group: TRD, non-TRD, HC.
_AGE = {"TRD": (47.15, 8.06), "nonTRD": (46.10, 9.62), "HC": (46.42, 10.08)}
_MALES = {"TRD": 15, "nonTRD": 22, "HC": 23}
_CLINICAL = {"onset": {"TRD": (28.26, 9.92), "nonTRD": (28.06, 10.90)},
             "duration": {"TRD": (18.90, 9.21), "nonTRD": (18.01, 11.56)},
             "madrs": {"TRD": (34.20, 7.19), "nonTRD": (12.70, 13.78)}}

MODEL = ("0 + group + age + tiv + sex + voxel_size + antidepressants + lithium + "
         "anticonvulsants + antipsychotics + benzodiazepines")

CONTRASTS = {
    "TRD > nonTRD": "TRD_UP + TRD_BP - nonTRD_UP - nonTRD_BP",
    "nonTRD > TRD": "nonTRD_UP + nonTRD_BP - TRD_UP - TRD_BP",
    "HC > MDD": "HC - mean(TRD_UP, TRD_BP, nonTRD_UP, nonTRD_BP)",
    "MDD > HC": "mean(TRD_UP, TRD_BP, nonTRD_UP, nonTRD_BP) - HC",
    "BP > UP (TRD)": "TRD_BP - TRD_UP",
    "UP > BP (TRD)": "TRD_UP - TRD_BP",
    "BP > UP (nonTRD)": "nonTRD_BP - nonTRD_UP",
    "UP > BP (nonTRD)": "nonTRD_UP - nonTRD_BP",
    "Li > non-Li": "lithium",
}

_PATIENTS = "group != 'HC'"
EFFECTS = (
    PlantedEffect("group in ['TRD_UP', 'TRD_BP']", (28.0, 4.0, -20.0), 8.0, 0.09),
    PlantedEffect("group in ['TRD_UP', 'TRD_BP']", (-34.0, 2.0, -18.0), 8.0, 0.09),
    PlantedEffect(_PATIENTS, (2.0, 34.0, 19.0), 8.0, -0.10),
    PlantedEffect("lithium == 1", (-21.0, 53.0, 31.0), 8.0, 0.12),
    PlantedEffect("lithium == 1", (45.0, 23.0, 37.0), 8.0, 0.12),
)
"""Planted effects at the paper's peaks: TRD > non-TRD in both amygdalae, HC > MDD in the
anterior cingulate, lithium > no lithium in left and right middle/superior frontal gyrus."""

DEMOGRAPHICS = {
    "group": "diagnosis",
    "group_order": ["TRD", "nonTRD", "HC"],
    "variables": [
        {"column": "age", "label": "Age"},
        {"column": "sex", "label": "Male", "level": "M"},
        {"column": "onset", "label": "Age of onset", "groups": ["TRD", "nonTRD"]},
        {"column": "duration", "label": "Illness duration (y)", "groups": ["TRD", "nonTRD"]},
        {"column": "madrs", "label": "MADRS", "groups": ["TRD", "nonTRD"]},
        {"column": "bipolar", "label": "Bipolar", "level": 1, "groups": ["TRD", "nonTRD"]},
    ] + [{"column": m, "label": m.capitalize(), "level": 1, "groups": ["TRD", "nonTRD"]}
         for m in ("antidepressants", "anticonvulsants", "lithium", "antipsychotics",
                   "benzodiazepines")],
}


def _shuffled_flags(rng, n, k):
    flags = np.zeros(n, dtype=int)
    flags[rng.choice(n, size=k, replace=False)] = 1
    return flags


def study_a_participants(random_state: int | np.random.Generator | None = 0) -> pd.DataFrame:
    """Draw Study A's 125 participants with the published group sizes and Table 1 distributions.

    Counts (sex, bipolar, each medication) match the published ones exactly; continuous
    variables are drawn from normal distributions with the published means and SDs. Healthy
    controls take no medication. Voxel size (the two acquisition protocols) is split at random.

    Parameters
    ----------
    random_state : int, numpy.random.Generator or None, default=0
        Seed.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``participant_id``; columns group (five cells), diagnosis (TRD/nonTRD/HC),
        age, sex, tiv, voxel_size, onset, duration, madrs, bipolar and the five medications.
    """
    rng = np.random.default_rng(random_state)
    rows = []
    for cell, n in CELLS.items():
        diagnosis = cell.split("_")[0]
        rows += [{"group": cell, "diagnosis": diagnosis, "bipolar": int(cell.endswith("BP"))}
                 for _ in range(n)]
    table = pd.DataFrame(rows)
    table.insert(0, "participant_id", [f"sub-{i + 1:03d}" for i in range(len(table))])
    for diagnosis in ("TRD", "nonTRD", "HC"):
        idx = np.flatnonzero(table.diagnosis == diagnosis)
        mean, sd = _AGE[diagnosis]
        table.loc[idx, "age"] = np.round(rng.normal(mean, sd, idx.size), 1)
        table.loc[idx, "sex"] = np.where(_shuffled_flags(rng, idx.size, _MALES[diagnosis]),
                                         "M", "F")
        for column, spec in _CLINICAL.items():
            if diagnosis in spec:
                mean, sd = spec[diagnosis]
                table.loc[idx, column] = np.round(np.clip(rng.normal(mean, sd, idx.size), 0, None), 1)
        for medication in MEDICATIONS:
            k = dict(zip(("TRD", "nonTRD"), _MEDICATION_COUNTS[medication])).get(diagnosis, 0)
            table.loc[idx, medication] = _shuffled_flags(rng, idx.size, k)
    male = table.sex == "M"
    table["tiv"] = np.round(rng.normal(1450.0, 110.0, len(table)) + np.where(male, 130.0, 0.0), 1)
    table["voxel_size"] = np.where(rng.random(len(table)) < 0.5, 1.15, 1.03)
    table[list(MEDICATIONS)] = table[list(MEDICATIONS)].astype(int)
    return table.set_index("participant_id")
