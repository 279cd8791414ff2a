"""compare_maps: oracle correlations, p-value formula, NaN handling, calibration of spin nulls."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from graymatter.errors import InputError
from graymatter.transcriptomics.compare import MapComparison, compare_maps
from graymatter.transcriptomics.nulls import permutation_nulls, spin_permutations


def test_pearson_and_spearman_match_scipy(rng):
    x, y = rng.normal(size=40), rng.normal(size=40) + 0.3 * np.arange(40) / 40
    nulls = permutation_nulls(40, n_perm=99, random_state=1)
    for metric, fn in (("pearson", stats.pearsonr), ("spearman", stats.spearmanr)):
        res = compare_maps(x, y, nulls=nulls, metric=metric)
        assert isinstance(res, MapComparison) and res.method == metric
        assert res.r == pytest.approx(fn(x, y)[0], abs=1e-12)
        ref = np.array([fn(x[nulls[:, k]], y)[0] for k in range(99)])
        np.testing.assert_allclose(res.null, ref, atol=1e-12)
        assert res.n_null == 99
        assert res.p == (1 + np.sum(np.abs(ref) >= abs(res.r))) / 100


def test_p_value_counts_and_sidedness():
    # y = x: the identity null reproduces r exactly and counts as ">= observed"; a reversed map
    # gives r = -1, which counts two-sided but not one-sided
    x = np.arange(10.0)
    nulls = np.stack([np.arange(10), np.arange(10)[::-1]], axis=1)
    res = compare_maps(x, x, nulls=nulls)
    assert res.r == pytest.approx(1.0)
    np.testing.assert_allclose(res.null, [1.0, -1.0])
    assert res.p == pytest.approx(3 / 3)
    one = compare_maps(x, x, nulls=nulls, two_sided=False)
    assert one.p == pytest.approx(2 / 3)


def test_planted_effect_smallest_p(rng):
    x = rng.normal(size=100)
    y = x + 0.1 * rng.normal(size=100)
    res = compare_maps(x, y, nulls=permutation_nulls(100, n_perm=999, random_state=2))
    assert res.p == pytest.approx(1 / 1000)


def test_nan_regions_dropped_consistently(rng):
    x, y = rng.normal(size=30), rng.normal(size=30)
    x[3] = np.nan
    y[10] = np.nan
    nulls = permutation_nulls(30, n_perm=50, random_state=4)
    res = compare_maps(x, y, nulls=nulls)
    keep = np.isfinite(x) & np.isfinite(y)
    assert res.r == pytest.approx(stats.pearsonr(x[keep], y[keep])[0], abs=1e-12)
    for k in range(50):
        nx = x[nulls[:, k]][keep]
        ok = np.isfinite(nx)  # the missing region of x may have been moved onto a kept region
        assert res.null[k] == pytest.approx(stats.pearsonr(nx[ok], y[keep][ok])[0], abs=1e-12)


def test_surrogate_maps_path(rng):
    x, y = rng.normal(size=25), rng.normal(size=25)
    surrogates = rng.normal(size=(25, 40))
    res = compare_maps(x, y, nulls=surrogates)
    ref = np.array([stats.pearsonr(surrogates[:, k], y)[0] for k in range(40)])
    np.testing.assert_allclose(res.null, ref, atol=1e-12)


def test_errors(rng):
    x, y = rng.normal(size=20), rng.normal(size=20)
    nulls = permutation_nulls(20, n_perm=10, random_state=0)
    with pytest.raises(InputError, match="x has 20 regions, y has 19"):
        compare_maps(x, y[:19], nulls=nulls)
    with pytest.raises(InputError, match="nulls has 19 rows but the maps have 20 regions"):
        compare_maps(x, y, nulls=nulls[:19])
    with pytest.raises(InputError, match=r"shape \(n_regions, n_null\)"):
        compare_maps(x, y, nulls=nulls[:, 0])
    with pytest.raises(InputError, match="indices must lie in 0..19"):
        compare_maps(x, y, nulls=nulls + 5)
    with pytest.raises(InputError, match="metric='kendall'"):
        compare_maps(x, y, nulls=nulls, metric="kendall")
    with pytest.raises(InputError, match="map y is constant"):
        compare_maps(x, np.ones(20), nulls=nulls)
    with pytest.raises(InputError, match="only 2 regions"):
        compare_maps(np.r_[1.0, 2.0, [np.nan] * 18], y, nulls=nulls)


# ----------------------------------------------------------------------------- calibration

def _smooth_maps(coords, n_sim, lam, rng):
    """Isotropic Gaussian fields on the sphere: covariance exp(-chord distance / lam)."""
    d = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
    chol = np.linalg.cholesky(np.exp(-d / lam) + 1e-9 * np.eye(len(coords)))
    return chol @ rng.normal(size=(len(coords), n_sim))


def _rate(x, y, nulls):
    p = np.array([compare_maps(x[:, s], y[:, s], nulls=nulls).p for s in range(x.shape[1])])
    return float(np.mean(p <= 0.05))


def test_calibration_spins_vs_naive(shared_data):
    """Independent smooth maps: spins keep the false-positive rate near 5%, naive does not.

    500 simulations, 200 nulls computed once (spins do not depend on the data). The full table
    (2,000 simulations, 1,000 nulls, several smoothness levels) is docs/spin_calibration.md.
    """
    lh = np.loadtxt(shared_data / "surfaces" / "sphere_HCP_centroids.txt")[:180]
    rng = np.random.default_rng(40)
    x = _smooth_maps(lh, 500, 40.0, rng)
    y = _smooth_maps(lh, 500, 40.0, rng)
    rates = {m: _rate(x, y, spin_permutations(lh, n_rotations=200, method=m, random_state=11))
             for m in ("alexander-bloch", "vasa")}
    rates["naive"] = _rate(x, y, permutation_nulls(180, n_perm=200, random_state=12))
    # nearest-centroid spins are calibrated (<= nominal + 2%)
    assert rates["alexander-bloch"] <= 0.07, rates
    # naive permutation is badly inflated for maps this smooth (0.31 in the docs table)
    assert rates["naive"] >= 0.15, rates
    # Váša's unique reassignment is mildly liberal for smooth maps (medial-wall effect, about
    # 0.09 in the docs table): far better than naive, yet not within nominal + 2%
    assert rates["vasa"] <= 0.11 and rates["vasa"] < rates["naive"] / 2, rates


# ----------------------------------------------------------------------------- Moran surrogates

def test_moran_surrogates_preserve_moments_and_morans_i(rng):
    from graymatter.transcriptomics.surrogates import moran_surrogates

    coords = rng.normal(size=(60, 3)) * 30
    x = coords[:, 0] / 30 + 0.5 * rng.normal(size=60) + 3.0  # spatially smooth map
    surr = moran_surrogates(x, coords, n=200, random_state=5)
    assert surr.shape == (60, 200)
    np.testing.assert_allclose(surr.mean(axis=0), x.mean(), atol=1e-10)
    np.testing.assert_allclose(surr.var(axis=0), x.var(), rtol=1e-10)
    d = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
    w = np.where(d > 0, 1 / np.where(d > 0, d, 1), 0.0)

    def morans_i(v):
        c = v - v.mean()
        return len(v) / w.sum() * (c @ w @ c) / (c @ c)

    np.testing.assert_allclose([morans_i(s) for s in surr.T], morans_i(x), rtol=1e-8)
    assert np.abs(np.corrcoef(surr.T)[0, 1:]).mean() < 0.9  # surrogates differ from each other
    np.testing.assert_array_equal(surr, moran_surrogates(x, coords, n=200, random_state=5))


def test_moran_surrogates_errors(rng):
    from graymatter.transcriptomics.surrogates import moran_surrogates

    coords = rng.normal(size=(10, 3))
    with pytest.raises(InputError, match="coords has 10 rows"):
        moran_surrogates(np.ones(9), coords)
    with pytest.raises(InputError, match=r"shape \(n_regions, 3\)"):
        moran_surrogates(np.ones(10), coords[:, :2])
    with pytest.raises(InputError, match="NaN"):
        moran_surrogates(np.r_[np.nan, np.ones(9)], coords)
    with pytest.raises(InputError, match="duplicate"):
        moran_surrogates(np.arange(10.0), np.vstack([coords[:9], coords[:1]]))
