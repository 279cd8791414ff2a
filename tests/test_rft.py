"""Random field theory (stats/rft.py) and MassUnivariateGLM.residuals.

Oracles: closed forms of Worsley et al. (1996, Table 2) re-derived with scipy.special, the
analytic resel counts of boxes, literal (loop/volume) re-implementations of SPM12's
spm_resels_vol.c and spm_est_smoothness.m, a published number (Brett, Penny & Kiebel, "An
introduction to random field theory": 100 resels in 2-D give E[EC] = 0.05 at Z = 3.8), and Monte
Carlo simulations of smooth Gaussian fields.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from scipy import ndimage, optimize, special, stats

from graymatter.errors import GraymatterWarning, InputError
from graymatter.io.images import MaskedGrid
from graymatter.stats.glm import MassUnivariateGLM
from graymatter.stats.rft import (Smoothness, cluster_p_fwe, cluster_p_unc, ec_densities,
                                  estimate_smoothness, height_threshold_fwe, peak_p_fwe,
                                  resel_counts)
from graymatter.stats.voxel_fwe import (bonferroni_height, bonferroni_p, voxel_fwe,
                                        voxel_height_fwe)

FOUR_LN2 = 4 * np.log(2)


def smooth_fields(rng, n, shape, fwhm):
    """``n`` stationary smooth Gaussian fields of unit variance (noise smoothed on a padded grid)."""
    fwhm = np.broadcast_to(np.asarray(fwhm, float), (3,))
    sigma = fwhm / np.sqrt(8 * np.log(2))
    pad = int(np.ceil(4 * sigma.max())) + 1
    big = tuple(s + 2 * pad for s in shape)
    crop = tuple(slice(pad, pad + s) for s in shape)
    # Variance of smoothed unit white noise = sum of the squared (separable, discrete) kernel.
    var = 1.0
    for s in sigma:
        impulse = np.zeros(2 * pad + 1)
        impulse[pad] = 1.0
        var *= (ndimage.gaussian_filter1d(impulse, s) ** 2).sum()
    out = np.empty((n, *shape))
    for i in range(n):
        out[i] = ndimage.gaussian_filter(rng.standard_normal(big), sigma)[crop] / np.sqrt(var)
    return out


def known_smoothness(shape, fwhm, mask=None):
    mask = np.ones(shape, bool) if mask is None else mask
    fw = np.full(3, float(fwhm))
    return Smoothness(fwhm_vox=fw, fwhm_mm=fw, resel_size_vox=float(np.prod(fw)),
                      resels=resel_counts(mask, fw), n_voxels=int(mask.sum()))


# ------------------------------------------------------------------ MassUnivariateGLM.residuals
def test_residuals_match_least_squares_and_are_standardised_like_spm(rng):
    n, m = 25, 300
    X = np.column_stack([np.ones(n), rng.normal(size=n), rng.integers(0, 2, n)])
    Y = rng.normal(size=(n, m)) * rng.uniform(0.5, 3, m) + 10
    model = MassUnivariateGLM(chunk_size=64).fit(Y, X)
    beta = np.linalg.lstsq(X, Y, rcond=None)[0]
    expected = Y - X @ beta
    np.testing.assert_allclose(model.residuals(Y), expected, atol=1e-10)
    E = model.residuals(Y, standardized=True, chunk_size=7)
    # SPM's ResI: e / sqrt(RSS / df), so every column has sum of squares df.
    np.testing.assert_allclose((E**2).sum(axis=0), model.df_resid_, rtol=1e-10)
    np.testing.assert_allclose(E * np.sqrt(model.sigma2_), expected, atol=1e-10)
    np.testing.assert_allclose(X.T @ E, 0, atol=1e-9)  # orthogonal to the design


def test_residuals_nan_at_excluded_features_and_float32(rng):
    n = 12
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    Y = rng.normal(size=(n, 6))
    Y[:, 1] = 3.0  # constant
    Y[4, 2] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GraymatterWarning)
        model = MassUnivariateGLM(dtype="float32").fit(Y, X)
    E = model.residuals(Y, standardized=True)
    assert np.isnan(E[:, [1, 2]]).all()
    ok = [0, 3, 4, 5]
    assert np.isfinite(E[:, ok]).all()
    np.testing.assert_allclose((E[:, ok] ** 2).sum(axis=0), model.df_resid_, rtol=1e-4)


def test_residuals_refuse_other_data(rng):
    X = np.column_stack([np.ones(15), rng.normal(size=15)])
    Y = rng.normal(size=(15, 40))
    model = MassUnivariateGLM().fit(Y, X)
    with pytest.raises(InputError, match=r"shape \(15, 40\)"):
        model.residuals(Y[:, :39])
    with pytest.raises(InputError, match="not the data this model was fitted to"):
        model.residuals(Y[::-1])  # subjects in another order
    with pytest.raises(RuntimeError, match="not fitted"):
        MassUnivariateGLM().residuals(Y)


# ------------------------------------------------------------------ smoothness
def spm_smoothness_literal(E, mask):
    """spm_est_smoothness.m written out on volumes: NaN outside the mask, forward differences."""
    n = E.shape[0]
    vols = np.full((n, *mask.shape), np.nan)
    vols[:, mask] = E / np.sqrt((E**2).sum(axis=0) / (n - 2))  # ResI with df = n - 2
    d = [np.full(vols.shape, np.nan) for _ in range(3)]
    d[0][:, :-1] = vols[:, 1:] - vols[:, :-1]
    d[1][:, :, :-1] = vols[:, :, 1:] - vols[:, :, :-1]
    d[2][:, :, :, :-1] = vols[:, :, :, 1:] - vols[:, :, :, :-1]
    L = np.empty((3, 3, *mask.shape))
    for a in range(3):
        for b in range(3):
            L[a, b] = (d[a] * d[b]).sum(axis=0) / n * (n / (n - 2))
    L = np.moveaxis(L, (0, 1), (-2, -1))[mask]  # (voxels, 3, 3)
    ok = np.isfinite(L).all(axis=(1, 2))
    L = L[ok]
    img = np.sqrt(np.maximum(np.linalg.det(L), 0) / FOUR_LN2**3).mean()
    xyz = np.sqrt(np.diagonal(L, axis1=1, axis2=2) / FOUR_LN2).mean(axis=0)
    return 1 / (img ** (1 / 3) * xyz / np.prod(xyz) ** (1 / 3))


def test_smoothness_matches_literal_spm_port_on_odd_mask(rng):
    shape = (7, 8, 9)
    F = smooth_fields(rng, 6, shape, (1.5, 2.5, 2.0))
    mask = np.zeros(shape, bool)
    mask[1:6, 1:8, 0:8] = True
    mask[3, 2:5, 3:6] = False  # a hole
    E = F[:, mask] - F[:, mask].mean(axis=0)
    grid = MaskedGrid(mask, np.diag([1.5, 2.0, 3.0, 1.0]))
    s = estimate_smoothness(E, grid, df=5)
    np.testing.assert_allclose(s.fwhm_vox, spm_smoothness_literal(E, mask), rtol=1e-10)
    np.testing.assert_allclose(s.fwhm_mm, s.fwhm_vox * [1.5, 2.0, 3.0])
    assert s.resel_size_vox == pytest.approx(np.prod(s.fwhm_vox))
    np.testing.assert_allclose(s.resels, resel_counts(mask, s.fwhm_vox))
    assert s.n_voxels == mask.sum()
    # Raw and standardised residuals give the same estimate (each voxel is normalised).
    s2 = estimate_smoothness(E * rng.uniform(1, 5, E.shape[1]), grid, df=5)
    np.testing.assert_allclose(s2.fwhm_vox, s.fwhm_vox, rtol=1e-12)


@pytest.mark.parametrize("fwhm", [3.0, 4.0, 6.0, (3.0, 5.0, 4.0)])
def test_fwhm_estimate_within_10_percent(rng, fwhm):
    shape = (40, 42, 38)  # unequal sides catch axis mix-ups
    g = np.indices(shape) - (np.array(shape) - 1)[:, None, None, None] / 2
    mask = (g**2).sum(axis=0) <= 15**2  # a ball away from the edges
    n = 30
    x = rng.normal(size=n)
    X = np.column_stack([np.ones(n), x])
    Y = smooth_fields(rng, n, shape, fwhm)[:, mask] + 0.3 * x[:, None] + 2.0
    model = MassUnivariateGLM().fit(Y, X)
    E = model.residuals(Y, standardized=True)
    s = estimate_smoothness(E, MaskedGrid(mask, np.diag([2.0, 2.0, 2.0, 1.0])), df=model.df_resid_)
    true = np.broadcast_to(np.asarray(fwhm, float), (3,))
    np.testing.assert_array_less(np.abs(s.fwhm_vox / true - 1), 0.10)
    np.testing.assert_allclose(s.fwhm_mm, 2 * s.fwhm_vox)
    assert s.resels[0] == 1  # a ball: one component, no holes


def test_smoothness_excludes_invalid_voxels(rng):
    shape = (10, 11, 12)
    mask = np.ones(shape, bool)
    E = smooth_fields(rng, 8, shape, 3.0)[:, mask]
    E -= E.mean(axis=0)
    E[:, :5] = np.nan  # features excluded from the model
    E[:, 5:9] = 0.0
    s = estimate_smoothness(E, MaskedGrid(mask, np.eye(4)), df=7)
    assert s.n_voxels == mask.sum() - 9
    search = mask.copy()
    search.reshape(-1)[:9] = False
    np.testing.assert_allclose(s.resels, resel_counts(search, s.fwhm_vox))
    assert np.all(np.isfinite(s.fwhm_vox))


def test_smoothness_input_errors(rng):
    mask = np.ones((5, 6, 7), bool)
    grid = MaskedGrid(mask, np.eye(4))
    E = rng.normal(size=(4, mask.sum()))
    with pytest.raises(InputError, match="at least 2 subjects"):
        estimate_smoothness(E[:1], grid, df=1)
    with pytest.raises(InputError, match="df"):
        estimate_smoothness(E, grid, df=0)
    with pytest.raises(InputError, match="df"):
        estimate_smoothness(E, grid, df=5)
    with pytest.raises(InputError, match=r"\(n, 210\)"):
        estimate_smoothness(E[:, :-1], grid, df=3)
    flat = np.zeros((5, 6, 7), bool)
    flat[:, :, 3] = True  # one slice: no pairs along k
    with pytest.raises(InputError, match="axis 2"):
        estimate_smoothness(rng.normal(size=(4, flat.sum())), MaskedGrid(flat, np.eye(4)), df=3)
    with pytest.raises(InputError, match="MaskedGrid"):
        estimate_smoothness(E, mask, df=3)


def test_smoothness_to_dict_is_json(rng):
    s = known_smoothness((9, 9, 9), 3.0)
    d = json.loads(json.dumps(s.to_dict()))
    assert d["fwhm_vox"] == [3.0, 3.0, 3.0] and d["n_voxels"] == 729
    assert d["resels"] == pytest.approx([1, 8, 64 / 3, 512 / 27])


# ------------------------------------------------------------------ resel counts
def spm_resels_loop(mask, fwhm):
    """spm_resels_vol.c's plane-by-plane counting, literally (zero-padded low borders)."""
    m, n, k = mask.shape
    P = C = 0
    E, F = [0, 0, 0], [0, 0, 0]
    prev = np.zeros((m + 1, n + 1), bool)
    for z in range(k):
        curr = np.zeros((m + 1, n + 1), bool)
        curr[1:, 1:] = mask[:, :, z]
        for i in range(1, m + 1):
            for j in range(1, n + 1):
                if not curr[i, j]:
                    continue
                P += 1
                E[0] += curr[i - 1, j]
                E[1] += curr[i, j - 1]
                E[2] += prev[i, j]
                F[0] += curr[i - 1, j] and curr[i, j - 1] and curr[i - 1, j - 1]
                F[1] += curr[i - 1, j] and prev[i, j] and prev[i - 1, j]
                F[2] += curr[i, j - 1] and prev[i, j] and prev[i, j - 1]
                C += (curr[i - 1, j] and curr[i, j - 1] and curr[i - 1, j - 1] and prev[i, j]
                      and prev[i - 1, j] and prev[i, j - 1] and prev[i - 1, j - 1])
        prev = curr
    r = 1 / np.asarray(fwhm, float)
    return np.array([P - sum(E) + sum(F) - C,
                     (E[0] - F[0] - F[1] + C) * r[0] + (E[1] - F[0] - F[2] + C) * r[1]
                     + (E[2] - F[1] - F[2] + C) * r[2],
                     (F[0] - C) * r[0] * r[1] + (F[1] - C) * r[0] * r[2] + (F[2] - C) * r[1] * r[2],
                     C * r[0] * r[1] * r[2]])


def test_resel_counts_of_a_box_by_hand():
    mask = np.zeros((20, 25, 30), bool)
    mask[2:12, 3:23, 5:20] = True  # 10 x 20 x 15 voxels: edge lengths 9, 19, 14 voxels
    fw = np.array([2.0, 4.0, 3.0])
    a, b, c = 9 / 2.0, 19 / 4.0, 14 / 3.0  # lengths in resels
    expected = [1.0, a + b + c, a * b + a * c + b * c, a * b * c]
    np.testing.assert_allclose(resel_counts(mask, fw), expected, rtol=1e-12)
    np.testing.assert_allclose(resel_counts(mask.astype(float), fw), expected, rtol=1e-12)


def test_resel_counts_euler_characteristic_and_literal_port(rng):
    two = np.zeros((12, 8, 8), bool)
    two[1:4, 1:5, 1:6] = True
    two[7:11, 2:6, 2:5] = True
    assert resel_counts(two, [1, 1, 1])[0] == 2  # two components
    shell = np.ones((7, 7, 7), bool)
    shell[2:5, 2:5, 2:5] = False
    assert resel_counts(shell, [1, 1, 1])[0] == 2  # one component + one cavity
    ring = np.ones((6, 6, 3), bool)
    ring[2:4, 2:4, :] = False
    assert resel_counts(ring, [1, 1, 1])[0] == 0  # one component - one tunnel
    blob = ndimage.gaussian_filter(rng.normal(size=(9, 10, 11)), 1.0) > 0
    fw = [1.7, 2.3, 3.1]
    np.testing.assert_allclose(resel_counts(blob, fw), spm_resels_loop(blob, fw), rtol=1e-12)


def test_resel_counts_errors():
    with pytest.raises(InputError, match="3-D"):
        resel_counts(np.ones((4, 4), bool), [1, 1, 1])
    with pytest.raises(InputError, match="fwhm_vox"):
        resel_counts(np.ones((4, 4, 4), bool), [1, 0, 1])


# ------------------------------------------------------------------ EC densities
U = np.linspace(-1.0, 7.0, 33)


def worsley_z(u):
    """Worsley et al. (1996) Table 2, Gaussian field, via Hermite polynomials He_{d-1}."""
    rho = [stats.norm.sf(u)]
    for d in (1, 2, 3):
        he = special.eval_hermitenorm(d - 1, u)
        rho.append(FOUR_LN2 ** (d / 2) / (2 * np.pi) ** ((d + 1) / 2) * he * np.exp(-u**2 / 2))
    return np.array(rho)


def worsley_t(u, v):
    """Worsley et al. (1996) Table 2, t field with v degrees of freedom."""
    base = (1 + u**2 / v) ** (-(v - 1) / 2)
    ratio = special.gamma((v + 1) / 2) / (np.sqrt(v / 2) * special.gamma(v / 2))
    return np.array([stats.t.sf(u, v),
                     np.sqrt(FOUR_LN2) / (2 * np.pi) * base,
                     FOUR_LN2 / (2 * np.pi) ** 1.5 * ratio * u * base,
                     FOUR_LN2**1.5 / (2 * np.pi) ** 2 * ((v - 1) / v * u**2 - 1) * base])


def test_ec_densities_match_worsley_table_2():
    np.testing.assert_allclose(ec_densities(U, None, stat="Z"), worsley_z(U), rtol=1e-10, atol=1e-300)
    for v in (3, 10, 47.5, 120):
        np.testing.assert_allclose(ec_densities(U, v, stat="T"), worsley_t(U, v), rtol=1e-9,
                                   atol=1e-300)
    assert ec_densities(3.0, 20).shape == (4,)
    assert ec_densities(np.zeros((2, 5)), 20).shape == (4, 2, 5)


def test_t_densities_tend_to_z_and_f1_is_twice_t():
    # rho^T / rho^Z - 1 = O(u^4 / v): 6e-8 at u = 7, v = 1e10.
    np.testing.assert_allclose(ec_densities(U, 1e10, stat="T"), ec_densities(U, None, stat="Z"),
                               rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(ec_densities(U, 1e4, stat="T"), ec_densities(U, None, stat="Z"),
                               rtol=0.1, atol=1e-4)
    assert not np.allclose(ec_densities(U, 1e4, stat="T"), ec_densities(U, None, stat="Z"),
                           rtol=1e-3)
    # Far from Z at low df: heavier tails.
    assert ec_densities(5.0, 8)[3] > 10 * ec_densities(5.0, None, stat="Z")[3]
    # {T^2 >= t^2} = {T >= t} + {-T >= t}, two disjoint t excursions: rho^F(t^2; 1, v) = 2 rho^T(t; v).
    t = np.linspace(0.5, 6, 23)
    for v in (8, 30):
        np.testing.assert_allclose(ec_densities(t**2, (1, v), stat="F"), 2 * worsley_t(t, v),
                                   rtol=1e-9)
    np.testing.assert_allclose(ec_densities(t, (3, 20), stat="F")[0], stats.f.sf(t, 3, 20), rtol=1e-10)


def test_ec_density_input_errors():
    with pytest.raises(InputError, match="stat"):
        ec_densities(3.0, 10, stat="X")
    with pytest.raises(InputError, match="T field"):
        ec_densities(3.0, None, stat="T")
    with pytest.raises(InputError, match="F field"):
        ec_densities(3.0, 10, stat="F")


# ------------------------------------------------------------------ peak p-values and thresholds
def test_peak_p_fwe_is_one_minus_exp_of_expected_ec():
    s = known_smoothness((60, 70, 50), 4.0)
    u = np.linspace(2.5, 8, 45)
    p = peak_p_fwe(u, s, df=25)
    assert np.all(np.diff(p) <= 0) and np.all(np.diff(p[p < 0.999]) < 0)
    assert p[0] == 1.0 and p[-1] < 0.01
    eps = np.finfo(float).eps  # SPM floors each density, and E[EC], at eps
    ec = np.einsum("d,du->u", s.resels, np.maximum(ec_densities(u, 25), eps)) + eps
    np.testing.assert_allclose(p, -np.expm1(-ec), rtol=1e-10)
    small = ec < 1e-3
    np.testing.assert_allclose(p[small], ec[small], rtol=1e-3)  # p ~ E[EC] in the tail
    # A single point (R = [1, 0, 0, 0]) is an uncorrected test.
    point = Smoothness(np.ones(3), np.ones(3), 1.0, np.array([1.0, 0, 0, 0]), 1)
    np.testing.assert_allclose(peak_p_fwe(u, point, df=None, stat="Z"), -np.expm1(-stats.norm.sf(u)),
                               rtol=1e-12, atol=1e-15)  # SPM adds eps to E[EC]


def test_published_threshold_for_100_resels_in_2d():
    # Brett, Penny & Kiebel: E[EC] = 0.05 at Z ~= 3.8 for 100 resels (2-D formula).
    s = Smoothness(np.ones(3), np.ones(3), 1.0, np.array([0.0, 0.0, 100.0, 0.0]), 0)
    u = height_threshold_fwe(-np.expm1(-0.05), s, df=None, stat="Z")
    assert u == pytest.approx(3.8, abs=0.02)


def test_height_threshold_inverts_peak_p():
    s = known_smoothness((50, 60, 45), 3.5)
    for stat, df in (("Z", None), ("T", 12), ("T", 200), ("F", (2, 30))):
        for alpha in (0.001, 0.05, 0.2):
            u = height_threshold_fwe(alpha, s, df=df, stat=stat)
            assert peak_p_fwe(u, s, df=df, stat=stat) == pytest.approx(alpha, rel=1e-8)
    z = height_threshold_fwe(0.05, s, df=None, stat="Z")
    assert height_threshold_fwe(0.05, s, df=12) > height_threshold_fwe(0.05, s, df=200) > z
    assert height_threshold_fwe(0.01, s, df=None, stat="Z") > z
    with pytest.raises(InputError, match="alpha"):
        height_threshold_fwe(0.0, s, df=10)
    point = Smoothness(np.ones(3), np.ones(3), 1.0, np.array([1.0, 0, 0, 0]), 1)
    with pytest.raises(InputError, match="smaller alpha"):
        height_threshold_fwe(0.9, point, df=None, stat="Z")
    with pytest.raises(InputError, match="Smoothness"):
        peak_p_fwe(3.0, {"resels": [1, 2, 3, 4]}, df=10)


# ------------------------------------------------------------------ cluster p-values
def test_cluster_p_conventions():
    s = known_smoothness((40, 40, 40), 4.0)
    k = np.arange(0, 2000, 25)
    p = cluster_p_fwe(k, 3.1, s, df=40)
    assert np.all(np.diff(p) <= 0) and np.all(np.diff(p[p > 1e-300]) < 0)
    # SPM: k = 0 is the probability of any cluster, i.e. the peak p at the height; p_unc(0) = 1.
    assert p[0] == pytest.approx(float(peak_p_fwe(3.1, s, df=40)))
    assert cluster_p_unc(0, 3.1, s, df=40) == 1.0
    # P = 1 - exp(-E[clusters] p_unc); E[clusters] = -log(1 - P(k = 0)).
    ec = -np.log1p(-p[0])
    np.testing.assert_allclose(p, -np.expm1(-(ec + np.finfo(float).eps) * cluster_p_unc(k, 3.1, s, df=40)))
    # Friston 1994: p_unc = exp(-beta k^(2/3)), beta = (Gamma(5/2) / E[k])^(2/3), E[k] = rho0 / rho3.
    rho = ec_densities(3.1, 40)
    beta = (special.gamma(2.5) * rho[3] / rho[0]) ** (2 / 3)
    np.testing.assert_allclose(cluster_p_unc(k, 3.1, s, df=40), np.exp(-beta * (k / 64) ** (2 / 3)))
    # Broadcasting: heights x sizes.
    assert cluster_p_fwe([[10], [50]], [3.1, 3.5, 4.0], s, df=40).shape == (2, 3)
    with pytest.raises(InputError, match="k_voxels"):
        cluster_p_fwe(-1, 3.1, s, df=40)


# ------------------------------------------------------------------ Monte Carlo calibration
def cluster_sizes(fields, u):
    """Face-connected (6-neighbour) clusters above ``u``: the lattice whose EC spm_resels_vol counts."""
    sizes, largest = [], []
    for f in fields:
        lab, n = ndimage.label(f > u)
        sz = np.bincount(lab.ravel())[1:] if n else np.zeros(0, int)
        sizes.append(sz)
        largest.append(sz.max() if n else 0)
    return np.concatenate(sizes), np.array(largest)


@pytest.fixture(scope="module")
def z_fields():
    """200 smooth Gaussian fields of 32^3 voxels, FWHM 6 voxels (about 138 resels each)."""
    return smooth_fields(np.random.default_rng(61), 200, (32, 32, 32), 6.0)


def test_peak_fwe_calibration_monte_carlo(z_fields):
    s = known_smoothness(z_fields.shape[1:], 6.0)
    u = height_threshold_fwe(0.05, s, df=None, stat="Z")
    fwe = np.mean(z_fields.reshape(len(z_fields), -1).max(axis=1) > u)
    # RFT is exact for continuous fields and slightly conservative on a lattice (max over voxels
    # < max of the field); with 200 fields the standard error at 0.05 is ~0.015.
    assert 0.01 <= fwe <= 0.10, fwe


def test_cluster_p_calibration_monte_carlo(z_fields):
    s = known_smoothness(z_fields.shape[1:], 6.0)
    u = 3.1
    sizes, largest = cluster_sizes(z_fields, u)
    expected_clusters = -np.log1p(-float(peak_p_fwe(u, s, df=None, stat="Z")))
    assert len(sizes) / len(z_fields) == pytest.approx(expected_clusters, rel=0.25)
    # The cluster-size law (Friston 1994) is an approximation: compare where it predicts 0.05-0.6.
    for k in (10, 20, 40, 80):
        p_fwe = float(cluster_p_fwe(k, u, s, df=None, stat="Z"))
        emp_fwe = np.mean(largest >= k)
        assert abs(emp_fwe - p_fwe) < 0.1, (k, emp_fwe, p_fwe)
        p_unc = float(cluster_p_unc(k, u, s, df=None, stat="Z"))
        assert abs(np.mean(sizes >= k) - p_unc) < 0.08, (k, np.mean(sizes >= k), p_unc)
    # At the RFT 0.05 cluster-size threshold the empirical FWE is near 0.05 (loose: 0.005-0.12).
    ks = np.arange(1, 400)
    k05 = ks[np.argmax(cluster_p_fwe(ks, u, s, df=None, stat="Z") <= 0.05)]
    assert 0.005 <= np.mean(largest >= k05) <= 0.12


@pytest.mark.slow
def test_peak_fwe_calibration_monte_carlo_large():
    rng = np.random.default_rng(7)
    for fwhm, n in ((5.0, 1000), (8.0, 600)):
        fields = smooth_fields(rng, n, (40, 40, 40), fwhm)
        s = known_smoothness((40, 40, 40), fwhm)
        u = height_threshold_fwe(0.05, s, df=None, stat="Z")
        fwe = np.mean(fields.reshape(n, -1).max(axis=1) > u)
        assert 0.025 <= fwe <= 0.07, (fwhm, fwe)


@pytest.mark.slow
def test_t_field_pipeline_calibration_large():
    """GLM residuals -> estimated smoothness -> T threshold: FWE of null T maps near 0.05."""
    rng = np.random.default_rng(11)
    shape, n_subjects, n_maps = (28, 28, 28), 20, 250
    mask = np.ones(shape, bool)
    X = np.column_stack([np.ones(n_subjects), rng.normal(size=n_subjects)])
    exceed = []
    for _ in range(n_maps):
        Y = smooth_fields(rng, n_subjects, shape, 6.0)[:, mask]
        model = MassUnivariateGLM().fit(Y, X)
        s = estimate_smoothness(model.residuals(Y, standardized=True), MaskedGrid(mask, np.eye(4)),
                                df=model.df_resid_)
        u = height_threshold_fwe(0.05, s, df=model.df_resid_)
        exceed.append(np.nanmax(model.t_contrast([0, 1]).t) > u)
    # Measured 0.06 (SE ~0.015 with 250 maps); RFT gets conservative for T fields with fewer df
    # or less smoothness (Hayasaka & Nichols 2003), so the lower bound is loose.
    assert 0.005 <= np.mean(exceed) <= 0.10, np.mean(exceed)


# ------------------------------------------------------------------ Bonferroni floor (SPM12 spm_P / spm_uc)
def expected_rft_p(u, resels, df):
    """1 - exp(-E[EC]) from the closed-form Worsley t densities (SPM's eps floors included)."""
    eps = np.finfo(float).eps
    rho = np.maximum(worsley_t(np.asarray(u, float), df), eps)
    return -np.expm1(-(np.tensordot(resels, rho, axes=1) + eps))


def smooth_noise_study(seed, fwhm, amplitude, shape=(24, 24, 24), n=20):
    """Two groups of smooth Gaussian noise, group 1 with a Gaussian blob: t map and smoothness."""
    rng = np.random.default_rng(seed)
    group = np.r_[np.ones(n // 2), np.zeros(n - n // 2)]
    g = np.indices(shape) - (np.array(shape)[:, None, None, None] - 1) / 2
    blob = np.exp(-(g**2).sum(axis=0) / (2 * 2.0**2))
    Y = (smooth_fields(rng, n, shape, fwhm) + amplitude * group[:, None, None, None] * blob)
    Y = Y.reshape(n, -1)
    X = np.column_stack([np.ones(n), group])
    model = MassUnivariateGLM().fit(Y, X)
    grid = MaskedGrid(np.ones(shape, bool), np.diag([2.0, 2.0, 2.0, 1.0]))
    s = estimate_smoothness(model.residuals(Y, standardized=True), grid, df=model.df_resid_)
    return model.t_contrast([0, 1]).t, s, int(model.df_resid_)


@pytest.mark.parametrize("fwhm, amplitude, winner", [(1.5, 2.5, "Bonferroni"), (5.0, 2.0, "RFT")])
def test_voxel_fwe_is_the_smaller_of_rft_and_bonferroni(fwhm, amplitude, winner):
    t, s, df = smooth_noise_study(3, fwhm, amplitude)
    assert df == 18 and s.n_voxels == t.size == 24**3
    fwe = voxel_fwe(t, s, df=df)
    # Oracles: closed-form EC densities for RFT, scipy's t tail for Bonferroni (S = voxels).
    p_rft = expected_rft_p(t, s.resels, df)
    p_bonf = np.minimum(1.0, s.n_voxels * stats.t.sf(t, df))
    np.testing.assert_allclose(fwe.p_rft, p_rft, rtol=1e-9)
    np.testing.assert_allclose(fwe.p_bonferroni, p_bonf, rtol=1e-9)
    np.testing.assert_allclose(fwe.p, np.minimum(p_rft, p_bonf), rtol=1e-9)
    np.testing.assert_array_equal(fwe.method, np.where(p_bonf < p_rft, "Bonferroni", "RFT"))
    # At the peak the expected bound wins, by a clear margin, with an informative p-value.
    peak = int(np.argmax(t))
    assert fwe.method[peak] == winner
    small, large = sorted([p_rft[peak], p_bonf[peak]])
    assert small < 0.5 * large and small < 0.2
    assert fwe.p[peak] == pytest.approx(small, rel=1e-9)
    # The height threshold: the lower of the RFT root and the Bonferroni quantile.
    u_rft = optimize.brentq(lambda u: expected_rft_p(u, s.resels, df) - 0.05, 3.0, 20.0,
                            xtol=1e-12)
    u_bonf = stats.t.isf(0.05 / s.n_voxels, df)
    thr = voxel_height_fwe(0.05, s, df=df)
    assert thr.u_rft == pytest.approx(u_rft, abs=1e-8)
    assert thr.u_bonferroni == pytest.approx(u_bonf, rel=1e-12)
    assert thr.u == min(thr.u_rft, thr.u_bonferroni) and thr.method == winner
    assert abs(u_rft - u_bonf) > 0.2  # the two bounds really differ here
    assert float(voxel_fwe(thr.u, s, df=df).p) == pytest.approx(0.05, rel=1e-7)
    assert json.loads(json.dumps(thr.to_dict()))["method"] == winner


def test_bonferroni_bound_for_t_f_z_and_the_issue_numbers():
    u = np.array([3.0, 5.0, 7.24, 9.0])
    np.testing.assert_allclose(bonferroni_p(u, 235375, df=28),
                               np.minimum(1, 235375 * stats.t.sf(u, 28)), rtol=1e-12)
    np.testing.assert_allclose(bonferroni_p(u**2, 1000, df=(2, 40), stat="F"),
                               np.minimum(1, 1000 * stats.f.sf(u**2, 2, 40)), rtol=1e-10)
    np.testing.assert_allclose(bonferroni_p(u, 50, df=None, stat="Z"),
                               np.minimum(1, 50 * stats.norm.sf(u)), rtol=1e-12)
    assert bonferroni_height(0.05, 1000, df=(2, 40), stat="F") == pytest.approx(
        stats.f.isf(0.05 / 1000, 2, 40), rel=1e-12)
    # docs/inference.md: 30 subjects (df 28), the 235,375-voxel MNI152 2 mm brain mask.
    assert float(bonferroni_p(7.24, 235375, df=28)) == pytest.approx(0.0082, abs=5e-5)
    assert bonferroni_height(0.05, 235375, df=28) == pytest.approx(6.548, abs=5e-4)


def test_bonferroni_input_errors():
    s = known_smoothness((10, 10, 10), 2.0)
    no_voxels = Smoothness(s.fwhm_vox, s.fwhm_mm, s.resel_size_vox, s.resels, 0)
    with pytest.raises(InputError, match="n_voxels"):
        voxel_fwe(5.0, no_voxels, df=20)
    with pytest.raises(InputError, match="n_voxels"):
        bonferroni_p(5.0, 10.5, df=20)
    with pytest.raises(InputError, match="alpha"):
        bonferroni_height(1.5, 100, df=20)
    with pytest.raises(InputError, match="T field"):
        voxel_height_fwe(0.05, s, df=None)
    with pytest.raises(InputError, match="Smoothness"):
        voxel_fwe(5.0, {"resels": [1, 2, 3, 4]}, df=10)
