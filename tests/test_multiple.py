"""Tests of the multiple-comparison helpers: BH FDR against statsmodels, the permutation counting rule."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from graymatter.errors import InputError
from graymatter.stats.multiple import fdr_bh, fwe_p_from_null


@pytest.mark.parametrize("m", [1, 2, 17, 1000])
def test_fdr_bh_equals_statsmodels_with_nans(rng, m):
    p = rng.uniform(size=m) ** 3  # skewed towards 0: many discoveries
    p[rng.uniform(size=m) < 0.2] = np.nan
    p[: min(3, m)] = p[0]  # ties
    q = fdr_bh(p)
    ok = ~np.isnan(p)
    assert np.array_equal(np.isnan(q), ~ok)
    if ok.any():
        np.testing.assert_allclose(q[ok], multipletests(p[ok], method="fdr_bh")[1], rtol=1e-13)


def test_fdr_bh_hand_example_and_shape():
    # m = 4: 0.01*4/1 = 0.04, 0.02*4/2 = 0.04, 0.03*4/3 = 0.04, 0.5*4/4 = 0.5
    np.testing.assert_allclose(fdr_bh([0.03, 0.5, 0.01, 0.02]), [0.04, 0.5, 0.04, 0.04])
    grid = np.array([[0.01, np.nan], [0.04, 0.03]])
    q = fdr_bh(grid)
    assert q.shape == (2, 2) and np.isnan(q[0, 1])
    np.testing.assert_allclose(q[~np.isnan(grid)], [0.03, 0.04, 0.04])  # m = 3, not 4
    assert np.isnan(fdr_bh([np.nan, np.nan])).all()
    assert (fdr_bh([1.0, 1.0]) == 1.0).all()
    assert np.all(fdr_bh(np.linspace(0, 1, 50)) <= 1.0)


def test_fdr_bh_rejects_non_p_values():
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        fdr_bh([0.1, 1.5])
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        fdr_bh([-0.1, 0.5])


def test_fwe_counting_rule_with_ties_and_never_zero():
    null = np.array([1.0, 2.0, 3.0, 3.0, 5.0])
    p = fwe_p_from_null([0.0, 3.0, 5.0, 6.0, np.nan, -np.inf, np.inf], null)
    # (1 + #{null >= obs}) / (1 + 5)
    np.testing.assert_allclose(p, [1.0, 4 / 6, 2 / 6, 1 / 6, np.nan, 1.0, 1 / 6])
    # an observed value a rounding error below a null value is a tie
    assert fwe_p_from_null(3.0 - 1e-14, null) == pytest.approx(4 / 6)
    assert fwe_p_from_null(3.0 + 1e-6, null) == pytest.approx(2 / 6)
    # negative statistics (e.g. a one-sided max t that stays below 0)
    np.testing.assert_allclose(fwe_p_from_null([-2.0, -0.5], [-1.0, -3.0]), [2 / 3, 1 / 3])
    assert fwe_p_from_null(np.full((2, 3), 100.0), null).shape == (2, 3)


def test_fwe_matches_brute_force_count(rng):
    null = np.round(rng.standard_normal(999), 1)  # many ties
    obs = np.round(rng.standard_normal(300) * 1.5, 1)
    brute = (1 + (null[None, :] >= obs[:, None]).sum(axis=1)) / 1000
    np.testing.assert_allclose(fwe_p_from_null(obs, null), brute)


def test_fwe_rejects_bad_null():
    with pytest.raises(InputError, match="null_max"):
        fwe_p_from_null([1.0], [])
    with pytest.raises(InputError, match="NaN"):
        fwe_p_from_null([1.0], [1.0, np.nan])
    with pytest.raises(InputError, match="1-D"):
        fwe_p_from_null([1.0], np.ones((2, 2)))
