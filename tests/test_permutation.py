"""Tests of the permutation engine: exactness against a naive implementation, exact enumeration,
nilearn as an oracle, calibration under the null, determinism, validation."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
from scipy import stats

from graymatter.errors import ContrastError, GraymatterWarning, InputError
from graymatter.stats import permutation as perm_mod
from graymatter.stats.glm import MassUnivariateGLM
from graymatter.stats.multiple import fwe_p_from_null
from graymatter.stats.permutation import PermutationResult, PermutationStatistic, permutation_test
from graymatter.stats.relabel import draw_relabellings


# ----------------------------------------------------------------------------- helpers
class Recorder:
    """A PermutationStatistic that keeps every map it sees (serial runs only)."""

    names = ("recorded_max",)

    def __init__(self):
        self.maps = []

    def maxima(self, maps):
        self.maps.append(maps.copy())
        return {"recorded_max": maps.max(axis=1)}

    def stacked(self):
        return np.vstack(self.maps)


class SupraCount:
    """Number of features above a height (a toy spatial statistic)."""

    names = ("n_supra",)

    def __init__(self, height):
        self.height = height

    def maxima(self, maps):
        return {"n_supra": (maps > self.height).sum(axis=1).astype(float)}


def naive_maps(Y, X, C, kind, method, transforms):
    """Freedman–Lane done the slow way: form each permuted data set and refit the GLM."""
    C = np.atleast_2d(C)
    Z = X @ (np.eye(X.shape[1]) - np.linalg.pinv(C) @ C)
    Hz = Z @ np.linalg.pinv(Z)
    fit = Hz @ Y
    E = Y - fit
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GraymatterWarning)
        for T in transforms:
            Ystar = (E * T[:, None] if method == "sign-flip" else E[T]) + fit
            model = MassUnivariateGLM().fit(Ystar, X)
            out.append(model.t_contrast(C[0]).t if kind == "t" else model.f_contrast(C).f)
    return np.array(out)


def drawn(method, n, n_perm, seed, blocks=None):
    codes = None if blocks is None else np.unique(np.asarray(blocks).astype(str), return_inverse=True)[1]
    return draw_relabellings(method, n, n_perm, codes, np.random.default_rng(seed), False)


def two_group_design(rng, n=24, n_cov=2):
    g = np.repeat([0.0, 1.0], n // 2)
    return np.column_stack([np.ones(n), g, rng.standard_normal((n, n_cov))])


def cell_means_design(rng, cells=(6, 7, 5), n_cov=2):
    n = sum(cells)
    labels = np.repeat(np.arange(len(cells)), cells)
    ind = (labels[:, None] == np.arange(len(cells))).astype(float)
    return np.column_stack([ind, rng.standard_normal((n, n_cov))])


# ----------------------------------------------------------------------------- naive vs fast
CASES = {
    # name: (design builder, contrast, kind, expected method)
    "t two-group + covariates": (two_group_design, np.array([0, 1.0, 0, 0]), "t", "freedman-lane"),
    "t cell means": (cell_means_design, np.array([1.0, -1, 0, 0, 0]), "t", "freedman-lane"),
    "t covariate slope, cell means": (cell_means_design, np.array([0, 0, 0, 1.0, 0]), "t", "freedman-lane"),
    "F cell means": (cell_means_design, np.array([[1.0, -1, 0, 0, 0], [0, 1, -1, 0, 0]]), "F",
                     "freedman-lane"),
    "t one-sample + covariate": (lambda rng: np.column_stack([np.ones(15), rng.uniform(20, 60, 15)]),
                                 np.array([1.0, 0]), "t", "sign-flip"),
    "t one-sample": (lambda rng: np.ones((13, 1)), np.array([1.0]), "t", "sign-flip"),
    "F one-sample + covariate": (lambda rng: np.column_stack([np.ones(15), rng.standard_normal(15)]),
                                 np.eye(2), "F", "sign-flip"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_fast_statistics_equal_naive_refits(case, rng):
    build, C, kind, expected_method = CASES[case]
    X = build(rng)
    n = X.shape[0]
    Y = rng.standard_normal((n, 23)) + 1.0 + 0.3 * X[:, -1:]
    rec = Recorder()
    res = permutation_test(Y, X, C, n_perm=40, random_state=7, statistics=[rec], batch_size=16,
                           progress=False)
    assert res.method == expected_method and res.kind == kind and res.n_perm == 40
    maps = rec.stacked()
    expected = naive_maps(Y, X, C, kind, res.method, drawn(res.method, n, 40, 7))
    np.testing.assert_allclose(maps, expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(res.null_max["max_stat"], maps.max(axis=1))
    model = MassUnivariateGLM().fit(Y, X)
    obs = model.t_contrast(C).t if kind == "t" else model.f_contrast(C).f
    np.testing.assert_array_equal(res.statistic, obs)


def test_blocks_rank_deficient_design_and_large_n_path(rng, monkeypatch):
    """Within-block permutations, an over-parameterised design, and the path without the W basis."""
    n = 24
    X = cell_means_design(rng, cells=(8, 8, 8), n_cov=1)
    X = np.column_stack([np.ones(n), X])  # intercept + all cells: rank-deficient
    c = np.array([0, 1.0, 0, -1, 0])
    blocks = np.tile(["s1", "s2", "s3"], 8)
    Y = rng.standard_normal((n, 17))
    T = drawn("freedman-lane", n, 30, 11, blocks)
    for row in T:  # every permutation stays within its block
        np.testing.assert_array_equal(blocks[row], blocks)
    expected = naive_maps(Y, X, c, "t", "freedman-lane", T)
    for with_basis in (True, False):  # False: E = R_Z Y at full height
        monkeypatch.setattr(perm_mod, "_basis_pays", lambda *args, use=with_basis: use)
        rec = Recorder()
        permutation_test(Y, X, c, n_perm=30, blocks=blocks, random_state=11, statistics=[rec],
                         progress=False)
        np.testing.assert_allclose(rec.stacked(), expected, rtol=1e-10, atol=1e-10)


def test_two_sided_and_spatial_statistic_see_both_tails(rng):
    X = two_group_design(rng, n=20, n_cov=1)
    c = np.array([0, 1.0, 0])
    Y = rng.standard_normal((20, 31))
    res = permutation_test(Y, X, c, n_perm=60, two_sided=True, statistics=[SupraCount(1.5)],
                           random_state=2, progress=False)
    maps = naive_maps(Y, X, c, "t", "freedman-lane", drawn("freedman-lane", 20, 60, 2))
    np.testing.assert_allclose(res.null_max["max_stat"], np.abs(maps).max(axis=1), rtol=1e-10)
    expected_supra = np.maximum((maps > 1.5).sum(axis=1), (-maps > 1.5).sum(axis=1))
    np.testing.assert_array_equal(res.null_max["n_supra"], expected_supra)
    # p_unc counts |t_perm| >= |t_obs| per feature; p_fwe uses the max-|t| null
    counts = (np.abs(maps) >= np.abs(res.statistic) * (1 - 1e-10)).sum(axis=0)
    np.testing.assert_allclose(res.p_unc, (1 + counts) / 61)
    np.testing.assert_allclose(res.p_fwe, fwe_p_from_null(np.abs(res.statistic), np.abs(maps).max(axis=1)))
    assert isinstance(SupraCount(1.0), PermutationStatistic)


class TwoTailedCount(SupraCount):
    """Handles both tails itself (declares two_sided), so the engine must call it once."""

    names = ("n_supra_abs",)
    two_sided = True

    def __init__(self, height):
        super().__init__(height)
        self.calls = 0

    def maxima(self, maps):
        self.calls += 1
        return {"n_supra_abs": (np.abs(maps) > self.height).sum(axis=1).astype(float)}


def test_statistic_declaring_two_sided_is_called_once(rng):
    X = two_group_design(rng, n=20, n_cov=1)
    Y = rng.standard_normal((20, 31))
    stat = TwoTailedCount(1.5)
    res = permutation_test(Y, X, [0, 1.0, 0], n_perm=60, two_sided=True, statistics=[stat],
                           batch_size=60, random_state=2, progress=False)
    assert stat.calls == 1
    maps = naive_maps(Y, X, [0, 1.0, 0], "t", "freedman-lane", drawn("freedman-lane", 20, 60, 2))
    np.testing.assert_array_equal(res.null_max["n_supra_abs"], (np.abs(maps) > 1.5).sum(axis=1))


# ----------------------------------------------------------------------------- exact enumeration
def _one_sample_t(Y):
    return Y.mean(axis=0) / (Y.std(axis=0, ddof=1) / np.sqrt(Y.shape[0]))


@pytest.mark.parametrize("two_sided", [False, True])
def test_exhaustive_sign_flips_give_exact_p(rng, two_sided):
    n = 6
    Y = rng.standard_normal((n, 9)) + np.linspace(-1, 2, 9)
    X = np.ones((n, 1))
    res = permutation_test(Y, X, [1.0], n_perm=63, two_sided=two_sided, progress=False)
    assert res.n_perm == 63 and res.method == "sign-flip"
    patterns = np.array(list(itertools.product([1, -1], repeat=n)))  # all 64, identity included
    null = np.array([_one_sample_t(Y * s[:, None]) for s in patterns])  # (64, 9)
    obs = _one_sample_t(Y)
    if two_sided:
        null, obs = np.abs(null), np.abs(obs)
    tol = 1e-9 * np.abs(obs)
    np.testing.assert_allclose(res.p_unc, (null >= obs - tol).sum(axis=0) / 64, rtol=1e-12)
    null_max = null.max(axis=1)
    np.testing.assert_allclose(res.p_fwe, (null_max[:, None] >= obs - tol).sum(axis=0) / 64, rtol=1e-12)
    assert res.p_unc.min() >= 1 / 64


def test_exhaustive_permutations_warn_and_give_exact_p(rng):
    n = 6  # two groups of 3: 720 permutations
    X = np.column_stack([np.ones(n), [0, 0, 0, 1, 1, 1.0]])
    Y = rng.standard_normal((n, 5)) + np.array([[0.0], [0], [0], [1], [1], [1]]) * np.arange(5)
    with pytest.warns(GraymatterWarning, match="719 distinct"):
        res = permutation_test(Y, X, [0, 1.0], n_perm=1000, progress=False)
    assert res.n_perm == 719 and res.method == "freedman-lane"
    null = np.array([stats.ttest_ind(Y[list(p)][3:], Y[list(p)][:3]).statistic
                     for p in itertools.permutations(range(n))])  # identity included
    obs = null[0]
    np.testing.assert_allclose(res.statistic, obs, rtol=1e-10)
    expected = (null >= obs - 1e-9 * np.abs(obs)).sum(axis=0) / 720
    np.testing.assert_allclose(res.p_unc, expected, rtol=1e-12)


# ----------------------------------------------------------------------------- determinism, dtype, masking
def test_same_seed_same_null_whatever_n_jobs_and_batch_size(rng):
    # Workers never change the numbers. The batch size changes the shapes of the matrix
    # products, so BLAS may round the last bits differently (seen with OpenBLAS): equal to 1e-12.
    X = cell_means_design(rng)
    Y = rng.standard_normal((X.shape[0], 3000))
    kw = dict(n_perm=45, random_state=123, statistics=[SupraCount(2.0)], progress=False)
    ref = permutation_test(Y, X, [1.0, 0, -1, 0, 0], **kw)
    for n_jobs, batch_size in [(2, None), (1, 7), (2, 7)]:
        other = permutation_test(Y, X, [1.0, 0, -1, 0, 0], n_jobs=n_jobs, batch_size=batch_size, **kw)
        same_batches = permutation_test(Y, X, [1.0, 0, -1, 0, 0], batch_size=batch_size, **kw)
        for name in ("max_stat", "n_supra"):
            np.testing.assert_array_equal(other.null_max[name], same_batches.null_max[name])
            np.testing.assert_allclose(other.null_max[name], ref.null_max[name], rtol=1e-12)
        np.testing.assert_array_equal(other.p_unc, same_batches.p_unc)
    different = permutation_test(Y, X, [1.0, 0, -1, 0, 0], **{**kw, "random_state": 124})
    assert not np.array_equal(different.null_max["max_stat"], ref.null_max["max_stat"])


def test_float32_close_to_float64(rng):
    X = two_group_design(rng, n=30)
    Y = rng.standard_normal((30, 500)) * 0.1 + 0.5
    kw = dict(n_perm=50, random_state=0, progress=False)
    a = permutation_test(Y, X, [0, 1.0, 0, 0], **kw)
    b = permutation_test(Y, X, [0, 1.0, 0, 0], dtype="float32", **kw)
    np.testing.assert_array_equal(a.statistic, b.statistic)  # observed: always float64
    np.testing.assert_allclose(b.null_max["max_stat"], a.null_max["max_stat"], rtol=1e-4)


def test_invalid_features_are_nan_and_left_out_of_maxima(rng):
    X = two_group_design(rng, n=20, n_cov=1)
    Y = rng.standard_normal((20, 12))
    bad = Y.copy()
    bad[3, 2] = np.nan
    bad[:, 5] = 4.0  # constant
    bad[:, 9] = 100.0 + 50 * X[:, 1]  # fitted exactly: would give an infinite t if it leaked
    keep = np.setdiff1d(np.arange(12), [2, 5, 9])
    with pytest.warns(GraymatterWarning, match="excluded"):
        res = permutation_test(bad, X, [0, 1.0, 0], n_perm=40, random_state=1,
                               statistics=[SupraCount(0.0)], progress=False)
    ref = permutation_test(Y[:, keep], X, [0, 1.0, 0], n_perm=40, random_state=1, progress=False)
    for arr in (res.statistic, res.p_unc, res.p_fwe):
        assert np.isnan(arr[[2, 5, 9]]).all() and np.isfinite(arr[keep]).all()
    np.testing.assert_allclose(res.null_max["max_stat"], ref.null_max["max_stat"], rtol=1e-12)
    np.testing.assert_allclose(res.p_unc[keep], ref.p_unc)
    assert res.null_max["n_supra"].max() <= keep.size  # excluded features are 0 in the maps


def test_result_fwe_p_and_contrast_object(rng):
    from graymatter.stats.contrasts import Contrast

    X = two_group_design(rng, n=20, n_cov=1)
    Y = rng.standard_normal((20, 10))
    con = Contrast(name="g", kind="t", matrix=np.array([[0, 1.0, 0]]), expressions=("g",))
    res = permutation_test(Y, X, con, n_perm=30, random_state=0, progress=False)
    assert isinstance(res, PermutationResult) and res.kind == "t" and res.random_state == 0
    np.testing.assert_array_equal(res.fwe_p(res.statistic), res.p_fwe)
    np.testing.assert_allclose(res.fwe_p(np.array([np.inf, -np.inf])), [1 / 31, 1.0])
    with pytest.raises(InputError, match="cluster_mass"):
        res.fwe_p(res.statistic, name="cluster_mass")
    con_f = Contrast(name="f", kind="F", matrix=np.array([[0, 1.0, 0]]), expressions=("g",))
    res_f = permutation_test(Y, X, con_f, n_perm=30, random_state=0, progress=False)
    np.testing.assert_allclose(res_f.statistic, res.statistic**2, rtol=1e-10)


def test_planted_effect_is_detected(rng):
    X = two_group_design(rng, n=40)
    Y = rng.standard_normal((40, 200))
    Y[:, :5] += 2.5 * X[:, 1:2]
    res = permutation_test(Y, X, [0, 1.0, 0, 0], n_perm=499, random_state=0, progress=False)
    assert (res.p_fwe[:5] < 0.05).all()
    assert (res.p_fwe[5:] >= 0.05).mean() > 0.95


# ----------------------------------------------------------------------------- nilearn oracle
def _nilearn_fwe(tested, Y, confounds, two_sided, n_perm, seed):
    from nilearn.mass_univariate import permuted_ols

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = permuted_ols(tested[:, None], Y, confounding_vars=confounds, model_intercept=True,
                           n_perm=n_perm, two_sided_test=two_sided, random_state=seed, n_jobs=1,
                           verbose=0, output_type="dict")
    return out["t"][0], 10 ** -out["logp_max_t"][0]


@pytest.mark.parametrize("design", ["one-sample sign-flip", "two groups + covariate"])
def test_fwe_p_agrees_with_nilearn_permuted_ols(rng, design):
    """nilearn permutes the confound-orthogonalised regressor (Kennedy-like) where graymatter
    permutes reduced-model residuals (Freedman–Lane); with a covariate independent of the groups
    the two nulls agree in expectation, so the FWE p differ only by Monte-Carlo error. For the
    one-sample test both sign-flip the data (nilearn: intercept-only tested variable)."""
    n, m, n_perm = 30, 150, 2000
    Y = rng.standard_normal((n, m))
    if design == "one-sample sign-flip":
        Y[:, :6] += np.linspace(0.4, 1.0, 6)
        X, c, tested, conf, two_sided = np.ones((n, 1)), [1.0], np.ones(n), None, True
    else:
        g = np.repeat([0.0, 1.0], n // 2)
        age = rng.standard_normal(n)
        Y[:, :6] += np.linspace(0.8, 1.8, 6)[None, :] * g[:, None] + 0.5 * age[:, None]
        X, c, tested, conf, two_sided = np.column_stack([np.ones(n), g, age]), [0, 1.0, 0], g, age[:, None], False
    res = permutation_test(Y, X, c, n_perm=n_perm, two_sided=two_sided, random_state=0, progress=False)
    t_nl, p_nl = _nilearn_fwe(tested, Y, conf, two_sided, n_perm, 0)
    np.testing.assert_allclose(res.statistic, t_nl, rtol=1e-8)  # same observed t
    p = (res.p_fwe + p_nl) / 2
    tol = 3 * np.sqrt(2 * p * (1 - p) / n_perm) + 0.005  # two independent Monte-Carlo estimates
    assert np.all(np.abs(res.p_fwe - p_nl) <= tol), np.max(np.abs(res.p_fwe - p_nl) - tol)
    # the comparison spans small, intermediate and large p
    assert (res.p_fwe < 0.02).any() and ((res.p_fwe > 0.1) & (res.p_fwe < 0.9)).any()


# ----------------------------------------------------------------------------- calibration
def _calibration(n_datasets, n, m, n_perm, seed, method):
    rng = np.random.default_rng(seed)
    reject, p_first = [], []
    for i in range(n_datasets):
        if method == "sign-flip":
            X = np.column_stack([np.ones(n), rng.uniform(-1, 1, n)])
            c = [1.0, 0]
            Y = rng.laplace(size=(n, m)) + 0.7 * X[:, 1:2]  # symmetric errors, nuisance effect
        else:
            X = np.column_stack([np.ones(n), np.repeat([0.0, 1.0], n // 2), rng.standard_normal(n)])
            c = [0, 1.0, 0]
            Y = rng.standard_normal((n, m)) + 1.0 * X[:, 2:3]  # strong nuisance effect
        res = permutation_test(Y, X, c, n_perm=n_perm, random_state=i, progress=False)
        assert res.method == method
        reject.append(res.p_fwe.min() <= 0.05)
        p_first.append(res.p_unc[0])
    # p_unc lives on {1, ..., n_perm + 1} / (n_perm + 1): subtracting U(0, 1/(n_perm + 1)) makes it
    # exactly uniform under an exact test.
    p_cont = np.array(p_first) - rng.uniform(0, 1 / (n_perm + 1), n_datasets)
    return np.mean(reject), stats.kstest(p_cont, "uniform").pvalue


def _binomial_interval(n, p=0.05, level=0.99):
    lo, hi = stats.binom.interval(level, n, p)
    return lo / n, hi / n


@pytest.mark.parametrize("method", ["freedman-lane", "sign-flip"])
def test_calibration_under_global_null(method):
    rate, ks_p = _calibration(300, 20, 50, 99, seed=2026, method=method)
    lo, hi = _binomial_interval(300)
    assert lo <= rate <= hi, rate
    assert ks_p > 0.001


@pytest.mark.slow
@pytest.mark.parametrize("method", ["freedman-lane", "sign-flip"])
def test_calibration_under_global_null_large(method):
    rate, ks_p = _calibration(5000, 20, 50, 199, seed=7, method=method)
    lo, hi = _binomial_interval(5000)
    assert lo <= rate <= hi, rate
    assert ks_p > 0.001


# ----------------------------------------------------------------------------- validation
@pytest.mark.parametrize("bad", [0, -5, 2.5, True, "100"])
def test_n_perm_must_be_positive_integer(rng, bad):
    with pytest.raises(InputError, match="n_perm"):
        permutation_test(rng.standard_normal((10, 3)), np.ones((10, 1)), [1.0], n_perm=bad)


def test_block_with_a_single_subject_is_named(rng):
    X = two_group_design(rng, n=10, n_cov=0)
    blocks = ["a"] * 5 + ["b"] * 4 + ["lonely"]
    with pytest.raises(InputError, match="lonely"):
        permutation_test(rng.standard_normal((10, 3)), X, [0, 1.0], blocks=blocks, progress=False)
    with pytest.raises(InputError, match=r"blocks.*\(10,\).*\(9,\)"):
        permutation_test(rng.standard_normal((10, 3)), X, [0, 1.0], blocks=blocks[:9], progress=False)


def test_other_input_errors(rng):
    X = two_group_design(rng, n=10, n_cov=0)
    Y = rng.standard_normal((10, 3))
    with pytest.raises(InputError, match="method"):
        permutation_test(Y, X, [0, 1.0], method="randomise")
    with pytest.raises(ContrastError, match="2 columns"):
        permutation_test(Y, X, [0, 1.0, 0])
    cells = np.column_stack([np.ones(10), X[:, 1], 1 - X[:, 1]])  # rank-deficient
    with pytest.raises(ContrastError, match="not estimable"):
        permutation_test(Y, cells, [0, 1.0, 0])
    with pytest.raises(InputError, match="Y and X"):
        permutation_test(Y[:9], X, [0, 1.0])
    with pytest.raises(InputError, match="none of the 3 features"), pytest.warns(GraymatterWarning):
        permutation_test(np.ones((10, 3)), X, [0, 1.0], progress=False)
    with pytest.raises(InputError, match="batch_size"):
        permutation_test(Y, X, [0, 1.0], batch_size=0)
    with pytest.raises(InputError, match="dtype"):
        permutation_test(Y, X, [0, 1.0], dtype="float16")
    with pytest.raises(InputError, match="distinct names"):
        permutation_test(Y, X, [0, 1.0], statistics=[SupraCount(1), SupraCount(2)])


def test_forcing_permutation_on_a_one_sample_test_warns(rng):
    Y = rng.standard_normal((12, 4))
    with pytest.warns(GraymatterWarning, match="sign-flip"):
        res = permutation_test(Y, np.ones((12, 1)), [1.0], method="freedman-lane", n_perm=20,
                               random_state=0, progress=False)
    np.testing.assert_allclose(res.p_unc, 1.0)  # every permuted t equals the observed one
