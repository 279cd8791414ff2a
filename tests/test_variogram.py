"""Variogram-matched surrogates (Burt et al. 2020): oracle = BrainSMASH's loop, written out here."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from graymatter.errors import InputError
from graymatter.transcriptomics.surrogates import (_generate, smoothed_variogram,
                                                   variogram_surrogates)

DELTAS = np.linspace(0.1, 0.9, 9)


def _smooth_map(n_regions=120, length=20.0, seed=0):
    """A spatially autocorrelated map (exponential covariance) on random 3-D centroids."""
    rng = np.random.default_rng(seed)
    xyz = rng.uniform(0, 100, size=(n_regions, 3))
    d = np.linalg.norm(xyz[:, None] - xyz[None], axis=-1)
    chol = np.linalg.cholesky(np.exp(-d / length) + 1e-9 * np.eye(n_regions))
    return 2.0 + 0.5 * chol @ rng.standard_normal(n_regions), xyz, d


def _brainsmash_loop(x, D, perms, noise, deltas=DELTAS, pv=25, nh=25, kernel="exp"):
    """BrainSMASH's Base.__call__ (brainsmash/mapgen/base.py), one surrogate at a time."""
    n = x.size
    triu = np.triu_indices(n, k=1)
    u = D[triu]
    uidx = np.where(u < np.percentile(u, pv))[0]
    utrunc = u[uidx]
    h = np.linspace(utrunc.min(), utrunc.max(), nh)
    b = 3.0 * (h[1] - h[0])

    def variogram(m):
        return 0.5 * np.square(np.subtract.outer(m, m))[triu]

    def smooth_variogram(v):
        w = np.exp(-np.square(2.68 * np.abs(utrunc - h[:, None]) / b) / 2)
        return (w * v[uidx][None, :]).sum(axis=1) / w.sum(axis=1)

    disort = np.argsort(D, axis=-1)
    ikn = np.arange(n)[:, None]

    def smooth(m, delta):
        k = int(delta * n)
        jkn = disort[:, 1:k + 1]
        dkn = D[(ikn, jkn)]
        if kernel == "exp":
            w = np.exp(-dkn / dkn.max(axis=-1)[:, None])
        else:  # uniform
            w = np.ones(dkn.shape) / dkn.shape[-1]
        return (w * m[jkn]).sum(axis=1) / w.sum(axis=1)

    target = smooth_variogram(variogram(x))
    out = np.empty((len(perms), n))
    for i, perm in enumerate(perms):
        xperm = x[perm]
        res = []
        for delta in deltas:
            sv = smooth_variogram(variogram(smooth(xperm, delta)))
            lm = LinearRegression().fit(sv[:, None], target)
            pred = lm.predict(sv[:, None])
            res.append((lm.intercept_, lm.coef_[0], np.sum(np.square(target - pred))))
        alphas, betas, sse = np.array(res).T
        best = np.argmin(sse)
        out[i] = (np.sqrt(np.abs(betas[best])) * smooth(xperm, deltas[best])
                  + np.sqrt(np.abs(alphas[best])) * noise[i])
    return (out - out.mean(axis=1, keepdims=True)).T


@pytest.mark.parametrize("kernel", ["exp", "uniform"])
def test_equals_brainsmash_algorithm_given_the_same_random_numbers(kernel):
    x, _, d = _smooth_map(70, seed=3)
    rng = np.random.default_rng(1)
    perms = np.stack([rng.permutation(70) for _ in range(130)])  # > one internal batch of 64
    noise = rng.standard_normal((130, 70))
    ours = _generate(x, d, perms, noise, deltas=DELTAS, kernel=kernel, pv=25, nh=25,
                     resample=False)
    oracle = _brainsmash_loop(x, d, perms, noise, kernel=kernel) + x.mean()
    np.testing.assert_allclose(ours, oracle, rtol=1e-8, atol=1e-10)


def test_smoothed_variogram_matches_direct_formula():
    x, xyz, d = _smooth_map(50, seed=4)
    h, g = smoothed_variogram(x, xyz)
    triu = np.triu_indices(50, k=1)
    u, v = d[triu], 0.5 * np.subtract.outer(x, x)[triu] ** 2
    keep = u < np.percentile(u, 25)
    b = 3 * (h[1] - h[0])
    for hk, gk in zip(h, g):
        w = np.exp(-0.5 * (2.68 * np.abs(u[keep] - hk) / b) ** 2)
        assert gk == pytest.approx((w * v[keep]).sum() / w.sum(), rel=1e-12)
    assert h[0] == pytest.approx(u[keep].min()) and h[-1] == pytest.approx(u[keep].max())
    h2, g2 = smoothed_variogram(np.column_stack([x, 2 * x]), d)
    np.testing.assert_allclose(g2[:, 1], 4 * g, rtol=1e-12)  # gamma scales with variance


def test_surrogates_keep_the_variogram_much_better_than_permutations():
    x, xyz, d = _smooth_map(150, seed=5)
    surr = variogram_surrogates(x, xyz, n=200, random_state=0)
    perms = np.stack([np.random.default_rng(k).permutation(x) for k in range(200)], axis=1)
    _, target = smoothed_variogram(x, d)
    _, g_surr = smoothed_variogram(surr, d)
    _, g_perm = smoothed_variogram(perms, d)
    sse_surr = ((g_surr - target[:, None]) ** 2).sum(axis=0)
    sse_perm = ((g_perm - target[:, None]) ** 2).sum(axis=0)
    assert np.median(sse_surr) < 0.3 * np.median(sse_perm)
    # permuted maps have a flat variogram; surrogates rise with distance like the map
    assert np.median(g_surr[-1] - g_surr[0]) > 0.5 * (target[-1] - target[0])
    assert abs(np.median(g_perm[-1] - g_perm[0])) < 0.2 * (target[-1] - target[0])


def test_mean_and_variance_approximately_preserved():
    x, xyz, _ = _smooth_map(150, seed=6)
    surr = variogram_surrogates(x, xyz, n=200, random_state=2)
    np.testing.assert_allclose(surr.mean(axis=0), x.mean(), atol=1e-12)
    ratio = surr.var(axis=0).mean() / x.var()
    assert 0.6 < ratio < 1.7
    res = variogram_surrogates(x, xyz, n=20, random_state=2, resample=True)
    np.testing.assert_array_equal(np.sort(res, axis=0), np.sort(x)[:, None].repeat(20, axis=1))


def test_surrogates_decorrelate_from_the_map():
    x, xyz, _ = _smooth_map(150, seed=7)
    surr = variogram_surrogates(x, xyz, n=300, random_state=3)
    r = np.array([np.corrcoef(x, s)[0, 1] for s in surr.T])
    assert abs(r.mean()) < 0.1  # a null, not copies of x
    assert np.ptp(surr, axis=0).min() > 0


def test_seeded_and_block_independent():
    x, xyz, _ = _smooth_map(60, seed=8)
    a = variogram_surrogates(x, xyz, n=70, random_state=11)
    b = variogram_surrogates(x, xyz, n=70, random_state=np.random.default_rng(11))
    c = variogram_surrogates(x, xyz, n=10, random_state=11)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a[:, :10], c, rtol=1e-12, atol=1e-12)  # first maps: same draws
    assert not np.array_equal(a, variogram_surrogates(x, xyz, n=70, random_state=12))


def test_errors():
    x, xyz, d = _smooth_map(30, seed=9)
    with pytest.raises(InputError, match="1000 regions.*sampled variant"):
        variogram_surrogates(np.zeros(1001) + np.arange(1001), np.zeros((1001, 3)), n=1)
    with pytest.raises(InputError, match=r"\(30, 30\) distance matrix or \(30, 3\)"):
        variogram_surrogates(x, d[:20, :20])
    with pytest.raises(InputError, match="not symmetric"):
        variogram_surrogates(x, d + np.triu(np.ones((30, 30)), 1))
    with pytest.raises(InputError, match="diagonal"):
        variogram_surrogates(x, d + np.eye(30))
    bad = x.copy()
    bad[3] = np.nan
    with pytest.raises(InputError, match="1 NaN"):
        variogram_surrogates(bad, xyz)
    with pytest.raises(InputError, match="constant"):
        variogram_surrogates(np.ones(30), xyz)
    with pytest.raises(InputError, match="kernel must be one of"):
        variogram_surrogates(x, xyz, kernel="box")
    with pytest.raises(InputError, match="deltas"):
        variogram_surrogates(x, xyz, deltas=(0.5, 1.5))
    with pytest.raises(InputError, match="0 neighbours"):
        variogram_surrogates(x, xyz, deltas=(0.01,))
    with pytest.raises(InputError, match="pv must be"):
        variogram_surrogates(x, xyz, pv=0)
    with pytest.raises(InputError, match="nh must be"):
        variogram_surrogates(x, xyz, nh=1)
    with pytest.raises(InputError, match="n must be a positive integer"):
        variogram_surrogates(x, xyz, n=0)
