"""Simulated Study-B cohort: realistic structure and recoverable planted effects."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from graymatter.errors import InputError
from graymatter.datasets.simulate_longitudinal import simulate_longitudinal_cohort
from graymatter.stats.pls import clinical_pls


@pytest.fixture(scope="module")
def cohort():
    return simulate_longitudinal_cohort(random_state=0)


def test_shapes_names_and_participants(cohort):
    assert cohort.pre.shape == cohort.post.shape == (24, 360)
    assert cohort.pre.columns[0] == "region_001" and cohort.pre.columns[-1] == "region_360"
    assert cohort.pre.index.equals(cohort.participants.index)
    p = cohort.participants
    assert list(p.columns) == ["age", "sex", "hamd_pre", "hamd_post", "tiv_pre", "tiv_post"]
    assert (p["sex"] == "M").sum() == 9  # Study B: 9 male, 15 female
    assert p["hamd_pre"].dtype.kind == "i" and (p["hamd_post"] >= 0).all()
    assert len(cohort.changed_regions) == 72 and set(cohort.changed_regions) <= set(cohort.pre.columns)
    assert (cohort.pre.to_numpy() > 0).all()


def test_reproducible_and_seed_dependent():
    a = simulate_longitudinal_cohort(n_subjects=10, regions=30, random_state=3)
    b = simulate_longitudinal_cohort(n_subjects=10, regions=30, random_state=3)
    c = simulate_longitudinal_cohort(n_subjects=10, regions=30, random_state=4)
    np.testing.assert_array_equal(a.post.to_numpy(), b.post.to_numpy())
    assert not np.allclose(a.post.to_numpy(), c.post.to_numpy())


def test_realistic_structure(cohort):
    logv = np.log(cohort.pre.to_numpy())
    sizes = cohort.pre.mean()
    assert sizes.max() / sizes.min() > 5  # log-normal region sizes
    corr = np.corrcoef(logv.T)[np.triu_indices(360, 1)]
    assert corr.mean() > 0.2  # between-region correlation (head size + shared factors)
    total = cohort.pre.sum(axis=1)
    assert stats.pearsonr(total, cohort.participants["tiv_pre"])[0] > 0.5  # TIV scaling
    # session drift shows in TIV and in the unchanged regions alike
    unchanged = cohort.pre.columns.difference(list(cohort.changed_regions))
    rel_change = (cohort.post[unchanged] / cohort.pre[unchanged] - 1).mean(axis=1)
    d_tiv = cohort.participants["tiv_post"] / cohort.participants["tiv_pre"] - 1
    assert stats.pearsonr(rel_change, d_tiv)[0] > 0.5


def test_hamd_falls_like_study_b(cohort):
    p = cohort.participants
    t = stats.ttest_rel(p["hamd_post"], p["hamd_pre"]).statistic
    assert -20 < t < -9  # Study B: t(23) = -13.93


def test_planted_increases_are_recoverable(cohort):
    t = stats.ttest_rel(cohort.post, cohort.pre).statistic
    changed = cohort.pre.columns.isin(list(cohort.changed_regions))
    assert t[changed].mean() > 3 and abs(t[~changed].mean()) < 1
    assert stats.mannwhitneyu(t[changed], t[~changed], alternative="greater").pvalue < 1e-10


def test_clinical_link_is_found_by_pls(cohort):
    p = cohort.participants
    delta = cohort.post - cohort.pre
    res = clinical_pls(delta, p["hamd_post"] - p["hamd_pre"], n_perm=199, n_boot=199, random_state=0)
    assert res.r > 0.3 and res.cv_r > 0.3
    changed = delta.columns.isin(list(cohort.changed_regions))
    z = res.regional["z_pls1"].abs()
    assert z[changed].mean() > 1.5 * z[~changed].mean()
    # the planted truth: response correlates with clinical change as requested
    assert stats.pearsonr(cohort.response, p["hamd_post"] - p["hamd_pre"])[0] < -0.3


def test_custom_names_and_changed_regions():
    names = ["L_V1_ROI", "L_V2_ROI", "L_MST_ROI", "R_V1_ROI"]
    c = simulate_longitudinal_cohort(n_subjects=8, regions=names, changed_regions=["L_V2_ROI"],
                                      effect=0.5, effect_sd=0.0, random_state=1)
    assert list(c.pre.columns) == names and c.changed_regions == ("L_V2_ROI",)
    ratio = (c.post / c.pre).mean()
    assert ratio["L_V2_ROI"] > 1.2 and (ratio.drop("L_V2_ROI").sub(1).abs() < 0.05).all()


def test_errors():
    with pytest.raises(InputError, match="not among the regions"):
        simulate_longitudinal_cohort(regions=5, changed_regions=["hippocampus"])
    with pytest.raises(InputError, match="duplicates a"):
        simulate_longitudinal_cohort(regions=["a", "a", "b"])
    with pytest.raises(InputError, match="link_to_clinical"):
        simulate_longitudinal_cohort(link_to_clinical=1.5)
    with pytest.raises(InputError, match="n_subjects"):
        simulate_longitudinal_cohort(n_subjects=2)
