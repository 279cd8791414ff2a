"""Paired regional comparison: oracle agreement (scipy, statsmodels), FWE calibration, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.multitest import multipletests

from graymatter.errors import GraymatterError, InputError
from graymatter.stats.paired import change_scores, paired_change


def _sessions(rng, n=24, m=12, shift=0.0):
    subjects = [f"sub-{i:02d}" for i in range(n)]
    regions = [f"r{j:02d}" for j in range(m)]
    pre = pd.DataFrame(rng.normal(1000, 100, (n, m)), index=subjects, columns=regions)
    post = pre + rng.normal(shift, 10, (n, m))
    return pre, post


def test_change_scores_align_by_label_not_order(rng):
    pre, post = _sessions(rng)
    shuffled = post.sample(frac=1, random_state=1)[post.columns[::-1]]
    change = change_scores(pre, shuffled)
    assert change.index.equals(pre.index) and change.columns.equals(pre.columns)
    np.testing.assert_allclose(change.to_numpy(), (post - pre).to_numpy(), rtol=0, atol=1e-9)


def test_equals_scipy_ttest_rel_without_covariates(rng):
    pre, post = _sessions(rng, shift=3.0)
    res = paired_change(pre, post.iloc[::-1], n_perm=0)
    t, p = stats.ttest_rel(post.to_numpy(), pre.to_numpy(), axis=0)
    tab = res.table
    np.testing.assert_allclose(tab["t"], t, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(tab["p"], p, rtol=1e-10, atol=1e-12)
    assert (tab["df"] == len(pre) - 1).all()
    np.testing.assert_allclose(tab["mean_change"], (post - pre).mean(), rtol=1e-12)
    np.testing.assert_allclose(tab["estimate"], tab["mean_change"], rtol=1e-10)
    assert tab["p_fwe"].isna().all()  # n_perm=0: no permutation test


def test_equals_statsmodels_ols_with_covariate(rng):
    pre, post = _sessions(rng, shift=2.0)
    delta_tiv = pd.Series(rng.normal(5, 20, len(pre)), index=pre.index)
    post = post + 0.02 * delta_tiv.to_numpy()[:, None] * 10  # drift that shows in every region
    covs = pd.DataFrame({"delta_tiv": delta_tiv, "age": rng.normal(40, 10, len(pre))}).iloc[::-1]
    res = paired_change(pre, post, covariates=covs, formula="1 + delta_tiv + age", n_perm=0)
    change = (post - pre)
    X = sm.add_constant(covs.loc[pre.index] - covs.mean())  # centred, as make_design does
    for region in change.columns:
        ols = sm.OLS(change[region].to_numpy(), X.to_numpy()).fit()
        row = res.table.loc[region]
        assert row["estimate"] == pytest.approx(ols.params[0], rel=1e-10)
        assert row["t"] == pytest.approx(ols.tvalues[0], rel=1e-10)
        assert row["p"] == pytest.approx(ols.pvalues[0], rel=1e-9, abs=1e-14)
        assert row["df"] == ols.df_resid
        # d_z with covariates: intercept / residual SD
        assert row["cohens_dz"] == pytest.approx(ols.params[0] / np.sqrt(ols.scale), rel=1e-10)


def test_cohens_dz_by_hand_and_fdr():
    pre = pd.DataFrame({"a": [10.0, 12.0, 9.0, 11.0, 10.0], "b": [5.0, 5.0, 6.0, 7.0, 4.0]},
                       index=list("vwxyz"))
    post = pre + pd.DataFrame({"a": [1.0, 2.0, 0.0, 3.0, 1.5], "b": [0.5, -0.5, 0.2, -0.1, 0.0]},
                              index=list("vwxyz"))
    res = paired_change(pre, post, n_perm=0)
    # a: changes 1, 2, 0, 3, 1.5 -> mean 1.5, SD sqrt(1.25) ; b: mean 0.02, SD sqrt(0.137)
    assert res.table.loc["a", "cohens_dz"] == pytest.approx(1.5 / np.sqrt(1.25), rel=1e-12)
    assert res.table.loc["b", "cohens_dz"] == pytest.approx(0.02 / np.sqrt(0.137), rel=1e-10)
    q = multipletests(res.table["p"], method="fdr_bh")[1]
    np.testing.assert_allclose(res.table["p_fdr"], q, rtol=1e-12)


def test_fwe_p_is_consistent_and_reproducible(rng):
    pre, post = _sessions(rng, m=30)
    post.iloc[:, :5] += 8.0  # planted increases
    res = paired_change(pre, post, n_perm=499, random_state=7, progress=False)
    tab = res.table
    assert ((tab["p_fwe"] >= 1 / 500) & (tab["p_fwe"] <= 1)).all()
    # FWE p can only be larger than the uncorrected one (up to Monte Carlo error)
    assert (tab["p_fwe"] >= tab["p"] - 0.01).all()
    # max-|t|: p_fwe is a non-increasing function of |t|
    order = np.argsort(-tab["t"].abs().to_numpy())
    assert np.all(np.diff(tab["p_fwe"].to_numpy()[order]) >= -1e-12)
    assert (tab["p_fwe"].iloc[:5] < 0.05).all()
    again = paired_change(pre, post, n_perm=499, random_state=7, progress=False)
    np.testing.assert_array_equal(again.table["p_fwe"], tab["p_fwe"])
    d = res.to_dict()
    assert d["n_perm"] == 499 and d["random_state"] == 7 and d["design"]["columns"] == ["Intercept"]


def test_one_sided_fwe_ignores_decreases(rng):
    pre, post = _sessions(rng, m=10)
    post.iloc[:, 0] -= 15.0  # strong decrease
    two = paired_change(pre, post, n_perm=199, random_state=0, progress=False).table
    one = paired_change(pre, post, n_perm=199, random_state=0, two_sided=False, progress=False).table
    assert two.loc["r00", "p_fwe"] < 0.05
    assert one.loc["r00", "p_fwe"] > 0.5


def test_fwe_calibration_under_null():
    # 200 null datasets, n=24, 20 regions, 99 sign-flips: family-wise rejection rate at 0.05
    n_sets, alpha = 200, 0.05
    rejections = 0
    for seed in range(n_sets):
        r = np.random.default_rng(1000 + seed)
        pre = pd.DataFrame(r.normal(0, 1, (24, 20)))
        post = pre + r.normal(0, 1, (24, 20))
        res = paired_change(pre, post, n_perm=99, random_state=seed, progress=False)
        rejections += bool((res.table["p_fwe"] <= alpha).any())
    lo, hi = stats.binom.ppf([0.005, 0.995], n_sets, alpha)
    assert lo <= rejections <= hi, rejections


def test_errors_name_the_problem(rng):
    pre, post = _sessions(rng, n=6, m=3)
    with pytest.raises(InputError, match="only in post: sub-99"):
        paired_change(pre, post.rename(index={"sub-05": "sub-99"}), n_perm=0)
    with pytest.raises(InputError, match="regions.*only in pre: r02"):
        paired_change(pre, post.drop(columns="r02"), n_perm=0)
    bad = pre.copy()
    bad.loc["sub-03", "r01"] = np.nan
    with pytest.raises(InputError, match=r"region\(s\) r01 for subject\(s\) sub-03"):
        paired_change(bad, post, n_perm=0)
    covs = pd.DataFrame({"delta_tiv": np.arange(5.0)}, index=pre.index[:5])
    with pytest.raises(InputError, match="no row for subject.*sub-05"):
        paired_change(pre, post, covariates=covs, formula="1 + delta_tiv", n_perm=0)
    covs = pd.DataFrame({"delta_tiv": np.arange(6.0)}, index=pre.index)
    with pytest.raises(InputError, match="no intercept"):
        paired_change(pre, post, covariates=covs, formula="0 + delta_tiv", n_perm=0)
    with pytest.raises(GraymatterError, match="tiv"):
        paired_change(pre, post, covariates=covs, formula="1 + tiv", n_perm=0)
    with pytest.raises(InputError, match="DataFrame"):
        paired_change(pre.to_numpy(), post, n_perm=0)
