"""The Study A demo recovers what was planted, and only that (slow: three full simulated studies)."""

import numpy as np
import pytest

from graymatter.datasets.study_a import EFFECTS
from graymatter.workflows.demo import run_demo

# Planted effect -> the contrast that should find it and the label expected among the cluster's
# anatomical labels (Desikan-Killiany names).
EXPECTED = [("TRD > nonTRD", EFFECTS[0], "amygdala"), ("TRD > nonTRD", EFFECTS[1], "amygdala"),
            ("HC > MDD", EFFECTS[2], "anteriorcingulate"),
            ("Li > non-Li", EFFECTS[3], "frontal"), ("Li > non-Li", EFFECTS[4], "frontal")]
NULL_CONTRASTS = ("BP > UP (TRD)", "UP > BP (TRD)", "BP > UP (nonTRD)", "UP > BP (nonTRD)")
SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    return {seed: run_demo(root / f"seed{seed}", n_perm=199, random_state=seed, tfce=False,
                           progress=False) for seed in SEEDS}


def _significant_clusters(summary, contrast):
    table = summary.study.glm.inference[contrast].table
    first = table[table["cluster_p_fwe_perm"].notna()]
    return first[first["cluster_p_fwe_perm"] < 0.05]


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_each_planted_effect_is_found_near_its_centre_with_its_label(demos, seed):
    for contrast, effect, label in EXPECTED:
        clusters = _significant_clusters(demos[seed], contrast)
        peaks = clusters[["x", "y", "z"]].to_numpy(dtype=float)
        distance = np.linalg.norm(peaks - np.asarray(effect.center_mm), axis=1)
        assert distance.size and distance.min() <= 8.0, (contrast, effect.center_mm, clusters)
        nearest = clusters.iloc[int(np.argmin(distance))]
        assert label in f"{nearest['peak_label']} {nearest['cluster_labels']}", nearest


@pytest.mark.slow
def test_contrasts_without_planted_effects_stay_at_the_nominal_rate(demos):
    # Each null contrast is controlled at 5 % family-wise error, so across 4 contrasts x 3 seeds
    # about 0.6 false positives are expected; 3 or more would happen with probability < 2 %.
    false_positives = [(seed, c) for seed in SEEDS for c in NULL_CONTRASTS
                       if len(_significant_clusters(demos[seed], c))]
    assert len(false_positives) <= 2, false_positives
