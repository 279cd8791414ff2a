"""The mass-univariate GLM engine against independent oracles (statsmodels OLS, nilearn, scipy)."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import special, stats

from graymatter.errors import ContrastError, DesignError, GraymatterWarning, InputError
from graymatter.stats.glm import FContrastResult, MassUnivariateGLM, TContrastResult, fit_glm

TOL = dict(rtol=1e-8, atol=1e-10)


# ----------------------------------------------------------------------------- designs
def random_design(rng, n: int) -> np.ndarray:
    """Intercept + 2 continuous covariates + a 3-level factor in dummy (treatment) coding."""
    level = rng.integers(0, 3, n)
    level[:3] = [0, 1, 2]  # every level present
    return np.column_stack([np.ones(n), rng.normal(50, 10, n), rng.normal(0, 1, n),
                            level == 1, level == 2]).astype(float)


STUDY_A_CELLS = (26, 15, 16, 24, 44)  # TRD-a, TRD-b, nonTRD-a, nonTRD-b, healthy controls


def study_a_design(rng) -> np.ndarray:
    """Study A: 125 subjects, 5 cell-mean indicators + age, TIV, sex, voxel size, 5 medications."""
    cell = np.repeat(np.arange(5), STUDY_A_CELLS)
    n = cell.size
    cells = (cell[:, None] == np.arange(5)).astype(float)
    age = rng.normal(40, 12, n)
    tiv = rng.normal(1500, 120, n)
    sex = rng.integers(0, 2, n).astype(float)
    voxel = rng.choice([1.0, 1.2], n)
    meds = (rng.random((n, 5)) < 0.4).astype(float)
    meds[cell == 4] = 0.0  # controls take no medication
    X = np.column_stack([cells, age, tiv, sex, voxel, meds])
    assert X.shape == (125, 14) and np.linalg.matrix_rank(X) == 14
    return X


def simulate(rng, X, m: int, noise: float = 1.0) -> np.ndarray:
    beta = rng.normal(0, 0.3, (X.shape[1], m)) / np.maximum(X.std(axis=0), 1.0)[:, None]
    return X @ beta + noise * rng.standard_normal((X.shape[0], m))


def assert_t_matches_statsmodels(model, res, Y, c, features):
    for j in features:
        ols = sm.OLS(Y[:, j], model.design_).fit()
        tt = ols.t_test(c)
        np.testing.assert_allclose(model.betas_[:, j], ols.params, **TOL)
        np.testing.assert_allclose(model.sigma2_[j], ols.scale, **TOL)
        np.testing.assert_allclose(res.estimate[j], tt.effect[0], **TOL)
        np.testing.assert_allclose(res.se[j], tt.sd[0, 0], **TOL)
        np.testing.assert_allclose(res.t[j], tt.tvalue[0, 0], **TOL)
        np.testing.assert_allclose(res.p[j], tt.pvalue, **TOL)
        assert res.df == ols.df_resid


def assert_f_matches_statsmodels(model, res, Y, C, features):
    for j in features:
        ft = sm.OLS(Y[:, j], model.design_).fit().f_test(C)
        np.testing.assert_allclose(res.f[j], ft.fvalue, **TOL)
        np.testing.assert_allclose(res.p[j], ft.pvalue, **TOL)
        assert (res.df_num, res.df_den) == (ft.df_num, ft.df_denom)


# ------------------------------------------------------------------- statsmodels oracle
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_designs_match_statsmodels(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 60))
    X = random_design(rng, n)
    Y = simulate(rng, X, 40)
    model = MassUnivariateGLM().fit(Y, X)
    assert model.rank_ == 5 and model.df_resid_ == n - 5 and model.valid_.all()
    features = range(0, 40, 4)
    for c in ([0, 1, 0, 0, 0], [0, 0, 0, 1, -1], [1, 0, 0, 0.5, 0.5]):
        assert_t_matches_statsmodels(model, model.t_contrast(c), Y, c, features)
    C = np.array([[0, 0, 0, 1, 0], [0, 0, 0, 0, 1]])
    assert_f_matches_statsmodels(model, model.f_contrast(C), Y, C, features)


def test_study_a_design_matches_statsmodels(rng):
    X = study_a_design(rng)
    Y = simulate(rng, X, 200, noise=0.05) + 0.5
    trd_vs_non = np.r_[1, 1, -1, -1, 0, np.zeros(9)]             # TRD (cells 1, 2) vs nonTRD (3, 4)
    hc_vs_pat = np.r_[-0.25, -0.25, -0.25, -0.25, 1, np.zeros(9)]  # HC vs mean of four patient cells
    cells_differ = np.column_stack([np.diff(np.eye(5), axis=0), np.zeros((4, 9))])  # 4 differences
    model, (trd, hc, omnibus) = fit_glm(Y, X, [trd_vs_non, hc_vs_pat, cells_differ])
    assert model.df_resid_ == 111
    features = range(0, 200, 10)  # 20 features
    assert_t_matches_statsmodels(model, trd, Y, trd_vs_non, features)
    assert_t_matches_statsmodels(model, hc, Y, hc_vs_pat, features)
    assert isinstance(omnibus, FContrastResult) and omnibus.df_num == 4
    assert_f_matches_statsmodels(model, omnibus, Y, cells_differ, features)


@pytest.mark.filterwarnings("ignore:The design matrix is rank-deficient")  # statsmodels' notice
def test_rank_deficient_design(rng):
    n = 40
    level = np.arange(n) % 3
    # intercept + all three level indicators + covariate: rank 4 of 5 columns
    X = np.column_stack([np.ones(n), level == 0, level == 1, level == 2, rng.normal(size=n)]).astype(float)
    Y = simulate(rng, X, 15)
    model = MassUnivariateGLM().fit(Y, X)
    assert model.rank_ == 4 and model.df_resid_ == n - 4
    for c in ([0, -1, 1, 0, 0], [1, 1, 0, 0, 0], [0, 0, 0, 0, 1]):  # estimable
        assert_t_matches_statsmodels(model, model.t_contrast(c), Y, c, range(15))
    C = [[0, -1, 1, 0, 0], [0, -1, 0, 1, 0]]
    assert_f_matches_statsmodels(model, model.f_contrast(C), Y, np.array(C), range(15))
    with pytest.raises(ContrastError, match="not estimable"):
        model.t_contrast([0, 1, 0, 0, 0])
    with pytest.raises(ContrastError, match="not estimable"):
        model.f_contrast([[0, -1, 1, 0, 0], [1, 0, 0, 0, 0]])


def test_redundant_f_rows_count_once(rng):
    X = random_design(rng, 30)
    Y = simulate(rng, X, 5)
    model = MassUnivariateGLM().fit(Y, X)
    full = model.f_contrast([[0, 0, 0, 1, 0], [0, 0, 0, 0, 1]])
    redundant = model.f_contrast([[0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 1, 1]])
    assert redundant.df_num == 2
    np.testing.assert_allclose(redundant.f, full.f, **TOL)


# --------------------------------------------------------------- derived statistics
def test_partial_r2_and_one_sided_p(rng):
    X = random_design(rng, 50)
    Y = simulate(rng, X, 6)
    model = MassUnivariateGLM().fit(Y, X)
    t = model.t_contrast([0, 0, 1, 0, 0])
    F = model.f_contrast([[0, 0, 0, 1, 0], [0, 0, 0, 0, 1]])
    for j in range(6):
        rss_full = sm.OLS(Y[:, j], X).fit().ssr
        rss_no_cov = sm.OLS(Y[:, j], np.delete(X, 2, axis=1)).fit().ssr
        rss_no_factor = sm.OLS(Y[:, j], X[:, :3]).fit().ssr
        np.testing.assert_allclose(t.partial_r2[j], 1 - rss_full / rss_no_cov, **TOL)
        np.testing.assert_allclose(F.partial_r2[j], 1 - rss_full / rss_no_factor, **TOL)
    np.testing.assert_allclose(t.p_one_sided, stats.t.sf(t.t, t.df), **TOL)
    np.testing.assert_allclose(t.z, stats.norm.isf(stats.t.sf(t.t, t.df)), **TOL)
    np.testing.assert_allclose(F.z, stats.norm.isf(stats.f.sf(F.f, 2, F.df_den)), **TOL)


def slope_data(targets, n, seed=7):
    """Y whose slope t statistics (intercept + slope design, df = n - 2) are exactly ``targets``."""
    rng = np.random.default_rng(seed)
    x = np.linspace(-1, 1, n)
    X = np.column_stack([np.ones(n), x])
    noise = rng.standard_normal(n)
    noise -= X @ np.linalg.lstsq(X, noise, rcond=None)[0]  # orthogonal to X
    s = np.sqrt(noise @ noise / (n - 2))
    sxx = np.sum((x - x.mean()) ** 2)  # slope b has t = b sqrt(sxx) / s
    return np.column_stack([t * s / np.sqrt(sxx) * x + noise for t in targets]), X


def test_z_is_exact_for_huge_t():
    targets = np.array([40.0, -40.0, 1e3, -1e6, 2.0])
    Y, X = slope_data(targets, n=22)  # df = 20
    model = MassUnivariateGLM().fit(Y, X)
    res = model.t_contrast([0, 1])
    np.testing.assert_allclose(res.t, targets, rtol=1e-9)
    assert np.all(np.isfinite(res.z)) and np.array_equal(np.sign(res.z), np.sign(res.t))
    expected = stats.norm.isf(stats.t.sf(40.0, 20))  # sf = 7e-21, still representable
    np.testing.assert_allclose(res.z[0], expected, rtol=1e-10)
    np.testing.assert_allclose(res.z[1], -expected, rtol=1e-10)
    np.testing.assert_allclose(res.z[2], stats.norm.isf(stats.t.sf(1e3, 20)), rtol=1e-10)
    np.testing.assert_allclose(res.p, 2 * stats.t.sf(np.abs(res.t), 20), rtol=1e-10)
    F = model.f_contrast([[0, 1]])
    np.testing.assert_allclose(F.f, targets**2, rtol=1e-8)
    np.testing.assert_allclose(F.z[0], stats.norm.isf(stats.f.sf(1600.0, 1, 20)), rtol=1e-10)
    assert np.all(np.isfinite(F.z))


def test_z_stays_finite_where_p_underflows():
    # df = 1000: P(T > 60) ~ 1e-333 underflows in float64 (scipy's t.logsf returns -inf there)
    targets = np.array([30.0, 40.0, 60.0, -100.0])
    Y, X = slope_data(targets, n=1002)
    model = MassUnivariateGLM().fit(Y, X)
    res, F = model.t_contrast([0, 1]), model.f_contrast([[0, 1]])
    np.testing.assert_allclose(res.t, targets, rtol=1e-9)
    assert np.all(np.isfinite(res.z)) and np.all(np.isfinite(F.z))
    assert res.z[3] < 0 < res.z[0] < res.z[1] < res.z[2] < -res.z[3]
    from graymatter.stats._tails import _log_betainc_tail, _t_tail

    # with one numerator df, P(F > t²) = 2 P(T > |t|) (the F fallback takes another code path)
    np.testing.assert_allclose(F.z, -special.ndtri_exp(np.log(2) + _t_tail(np.abs(res.t), 1000)[1]),
                               rtol=1e-10)
    # the continued-fraction fallback agrees with scipy where scipy's log tail is still finite

    for df, t in [(1000, 40.0), (111, 1000.0), (20, 10.0)]:
        log_1mx = -np.log1p(df / t**2)
        log_x = np.log(df) - 2 * np.log(t) + log_1mx
        ours = np.log(0.5) + _log_betainc_tail(df / 2, 0.5, np.array([log_x]), np.array([log_1mx]))
        np.testing.assert_allclose(ours, stats.t.logsf(t, df), rtol=1e-12)


@pytest.mark.parametrize("n", [12, 1002])
def test_t_p_values_equal_scipy(rng, n):
    """p and one-sided p are scipy's ``t.sf`` to 1e-12 relative wherever p > 1e-300."""
    targets = np.r_[0.0, 1e-8, -0.3, 1.0, -1.96, 2.5, 4.0, -7.0, 12.0, 25.0, -38.0, 60.0, -80.0,
                    rng.standard_normal(200) * 3]
    Y, X = slope_data(targets, n=n)
    res = MassUnivariateGLM().fit(Y, X).t_contrast([0, 1])
    df = n - 2
    two = np.minimum(2 * stats.t.sf(np.abs(res.t), df), 1.0)
    one = stats.t.sf(res.t, df)
    ok = two > 1e-300
    assert ok.sum() >= 200 and (n < 1000 or (~ok).sum() >= 2)  # df=1000: |t| = 60, 80 underflow
    np.testing.assert_allclose(res.p[ok], two[ok], rtol=1e-12, atol=0)
    np.testing.assert_allclose(res.p_one_sided[one > 1e-300], one[one > 1e-300], rtol=1e-12, atol=0)
    np.testing.assert_allclose(res.z[ok], stats.norm.isf(two[ok] / 2) * np.sign(res.t[ok]),
                               rtol=1e-9, atol=1e-12)
    # beyond float underflow p is the exp of the exact log tail: tiny, and z is still finite
    assert np.all(res.p[~ok] < 1e-299) and np.all(np.isfinite(res.z))


def test_fit_threads_give_the_same_numbers_and_restore_blas(rng):
    """Chunks fitted on threads (main thread) or serially (worker thread) agree bit for bit."""
    import threading

    from threadpoolctl import threadpool_info

    Y = rng.standard_normal((30, 9000))
    X = np.column_stack([np.ones(30), rng.standard_normal(30)])
    before = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    main = MassUnivariateGLM(chunk_size=1000).fit(Y, X).t_contrast([0, 1])
    out = {}
    worker = threading.Thread(target=lambda: out.setdefault(
        "res", MassUnivariateGLM(chunk_size=1000).fit(Y, X).t_contrast([0, 1])))
    worker.start()
    worker.join()
    for name in ("t", "p", "z"):
        np.testing.assert_array_equal(getattr(main, name), getattr(out["res"], name))
    assert [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"] == before


def test_cohens_d(rng):
    n1, n2, n3 = 20, 25, 30
    g = np.repeat([0, 1, 2], [n1, n2, n3])
    X = (g[:, None] == np.arange(3)).astype(float)  # cell means
    Y = rng.normal(0, 1, (n1 + n2 + n3, 4)) + np.array([0.0, 0.5, 1.0])[g][:, None]
    model = MassUnivariateGLM().fit(Y, X)
    means = np.stack([Y[g == k].mean(axis=0) for k in range(3)])
    sd = np.sqrt(sum(((Y[g == k] - means[k]) ** 2).sum(axis=0) for k in range(3)) / (len(g) - 3))
    np.testing.assert_allclose(model.t_contrast([1, -1, 0]).cohens_d, (means[0] - means[1]) / sd, **TOL)
    # weights are rescaled so each side sums to one: 2A - B - C == A - (B + C) / 2
    expected = (means[0] - (means[1] + means[2]) / 2) / sd
    np.testing.assert_allclose(model.t_contrast([2, -1, -1]).cohens_d, expected, **TOL)
    np.testing.assert_allclose(model.t_contrast([-4, 2, 2]).cohens_d, -expected, **TOL)
    # no positive weights: scaled by the sum of the negative magnitudes
    np.testing.assert_allclose(model.t_contrast([0, -3, 0]).cohens_d, -means[1] / sd, **TOL)


# ------------------------------------------------------------------- invalid features
def test_invalid_features_are_nan_and_reported(rng):
    X = random_design(rng, 30)
    Y = simulate(rng, X, 1000)
    Y[4, 10] = np.nan
    Y[:, 20] = np.inf
    Y[:, 30] = 0.7  # constant
    Y[:, 40] = 2 * X[:, 1] - 3 * X[:, 4] + 1  # fitted exactly: zero residual variance
    Y.setflags(write=False)  # the engine must never write into the caller's data
    with pytest.warns(GraymatterWarning) as record:
        model = MassUnivariateGLM(chunk_size=64).fit(Y, X)
    msg = str(record[0].message)
    assert msg == ("4 of 1,000 features excluded from the model: 2 contain NaN or infinite values, "
                   "1 is constant across subjects, 1 has zero residual variance (fitted exactly by "
                   "the design); their statistics are NaN.")
    assert (model.n_nan_features_, model.n_constant_features_, model.n_zero_variance_features_) == (2, 1, 1)
    bad = np.array([10, 20, 30, 40])
    assert np.flatnonzero(~model.valid_).tolist() == bad.tolist()
    t = model.t_contrast([0, 1, 0, 0, 0])
    F = model.f_contrast([[0, 0, 0, 1, 0], [0, 0, 0, 0, 1]])
    for arr in [*t.maps().values(), *F.maps().values(), model.sigma2_, *model.betas_]:
        assert np.isnan(arr[bad]).all() and np.isfinite(np.delete(arr, bad)).all()
    keep = np.setdiff1d(np.arange(1000), bad)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clean = MassUnivariateGLM().fit(Y[:, keep], X)
    np.testing.assert_allclose(model.betas_[:, keep], clean.betas_, rtol=1e-12)
    np.testing.assert_allclose(t.t[keep], clean.t_contrast([0, 1, 0, 0, 0]).t, rtol=1e-12)


def test_constant_feature_without_intercept(rng):
    X = rng.normal(size=(20, 2))  # no constant column: a constant y is NOT fitted exactly
    Y = rng.normal(size=(20, 3))
    Y[:, 1] = 5.0
    with pytest.warns(GraymatterWarning, match="1 of 3 features excluded.*1 is constant"):
        model = MassUnivariateGLM().fit(Y, X)
    assert model.n_constant_features_ == 1 and model.valid_.tolist() == [True, False, True]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_constants_of_any_magnitude_are_found(rng, dtype):
    # unscaled covariates (TIV ~ 1500) make X ill-conditioned; constants must still be caught exactly
    X = study_a_design(rng)
    Y = simulate(rng, X, 50, noise=0.05) + 0.5
    levels = [0.0, 1e-3, 0.5, 1.0, 1500.0, -7e5, 1e-30]
    Y[:, : len(levels)] = levels
    with pytest.warns(GraymatterWarning, match=f"{len(levels)} are constant"):
        model = MassUnivariateGLM(dtype=dtype, chunk_size=16).fit(Y, X)
    assert model.n_constant_features_ == len(levels)
    assert np.flatnonzero(~model.valid_).tolist() == list(range(len(levels)))


# --------------------------------------------------------------- chunking and precision
def test_chunking_and_input_dtype_invariance(rng):
    X = study_a_design(rng)
    Y = simulate(rng, X, 3000)
    c = np.r_[1, 1, -1, -1, 0, np.zeros(9)]
    C = np.column_stack([np.diff(np.eye(5), axis=0), np.zeros((4, 9))])
    ref_model, (ref_t, ref_f) = fit_glm(Y, X, [c, C])
    for kwargs, data in [({"chunk_size": 7}, Y), ({"chunk_size": 5000}, Y),
                         ({}, np.asfortranarray(Y))]:
        model, (t, f) = fit_glm(data, X, [c, C], **kwargs)
        np.testing.assert_allclose(model.betas_, ref_model.betas_, rtol=1e-12, atol=1e-14)
        for name, arr in t.maps().items():
            np.testing.assert_allclose(arr, getattr(ref_t, name), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(f.f, ref_f.f, rtol=1e-12)
    # float32 input with the float64 engine is converted chunk by chunk, not up front
    Y32 = Y.astype(np.float32)
    _, (t64_from32, _) = fit_glm(Y32, X, [c, C], chunk_size=100)
    _, (t_ref32, _) = fit_glm(Y32.astype(np.float64), X, [c, C])
    np.testing.assert_allclose(t64_from32.t, t_ref32.t, rtol=1e-12)


def test_float32_close_to_float64(rng):
    X = study_a_design(rng)
    Y = simulate(rng, X, 2000, noise=0.05) + 0.5
    c = np.r_[-0.25, -0.25, -0.25, -0.25, 1, np.zeros(9)]
    m64, (t64,) = fit_glm(Y, X, [c])
    m32, (t32,) = fit_glm(Y.astype(np.float32), X, [c], dtype="float32")
    assert m32.betas_.dtype == np.float64 and t32.t.dtype == np.float64
    np.testing.assert_allclose(t32.t, t64.t, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(m32.sigma2_, m64.sigma2_, rtol=1e-3)
    np.testing.assert_allclose(t32.z, t64.z, rtol=1e-3, atol=1e-3)


# ------------------------------------------------------------------------- nilearn oracle
@pytest.mark.parametrize("sphere", [False, True])
def test_voxel_maps_match_nilearn(rng, sphere):
    from nilearn.glm.second_level import SecondLevelModel

    shape, n = (7, 8, 9), 30
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    grid = np.stack(np.indices(shape), axis=-1) - (np.array(shape) - 1) / 2
    mask = (np.linalg.norm(grid, axis=-1) <= 3.6) if sphere else np.ones(shape, bool)
    mask_img = nib.Nifti1Image(mask.astype(np.uint8), affine)
    design = pd.DataFrame({"intercept": np.ones(n), "age": rng.normal(40, 10, n),
                           "group": np.repeat([0.0, 1.0], n // 2)})
    signal = rng.normal(size=shape)
    imgs = [nib.Nifti1Image(rng.normal(size=shape) + 0.3 * design["group"][i] * signal
                            + 0.01 * design["age"][i], affine) for i in range(n)]
    Y = np.stack([img.get_fdata()[mask] for img in imgs])  # C order, as nilearn's masker
    model = MassUnivariateGLM().fit(Y, design)
    slm = SecondLevelModel(mask_img=mask_img).fit(imgs, design_matrix=design)
    for c in ([0, 0, 1], [0, 1, 0]):
        ours = model.t_contrast(c)
        theirs_t = slm.compute_contrast(np.array(c), output_type="stat").get_fdata()[mask]
        theirs_z = slm.compute_contrast(np.array(c), output_type="z_score").get_fdata()[mask]
        np.testing.assert_allclose(ours.t, theirs_t, rtol=0, atol=1e-5)
        moderate = np.abs(ours.z) < 8
        np.testing.assert_allclose(ours.z[moderate], theirs_z[moderate], rtol=0, atol=1e-5)


# ------------------------------------------------------------------ API and errors
def test_contrast_objects_frames_and_names(rng):
    X = pd.DataFrame(random_design(rng, 30), columns=["intercept", "age", "x", "b", "c"])
    Y = pd.DataFrame(simulate(rng, X.to_numpy(), 4), columns=["hippo_L", "hippo_R", "amyg_L", "amyg_R"])
    model, (t, f) = fit_glm(Y, X, [SimpleNamespace(kind="t", matrix=np.array([[0, 1, 0, 0, 0]])),
                                   SimpleNamespace(kind="F", matrix=np.eye(5)[3:])])
    assert isinstance(t, TContrastResult) and t.kind == "t" and f.kind == "F"
    assert model.regressor_names_.tolist() == X.columns.tolist()
    frame = t.to_frame()
    assert frame.columns.tolist() == ["estimate", "se", "t", "df", "p", "p_one_sided", "z",
                                      "partial_r2", "cohens_d"]
    assert frame.index.tolist() == Y.columns.tolist() and (frame["df"] == 25).all()
    assert f.to_frame(index=list("abcd")).columns.tolist() == ["f", "df_num", "df_den", "p", "z",
                                                              "partial_r2"]
    assert set(t.maps()) == {"estimate", "se", "t", "z", "p", "p_one_sided", "partial_r2", "cohens_d"}
    assert set(f.maps()) == {"f", "z", "p", "partial_r2"}
    np.testing.assert_allclose(f.f, model.f_contrast(np.eye(5)[3:]).f)


def test_input_errors(rng):
    X = random_design(rng, 20)
    Y = rng.normal(size=(20, 3))
    with pytest.raises(InputError, match=r"\(19, 3\).*\(20, 5\)"):
        MassUnivariateGLM().fit(Y[:19], X)
    with pytest.raises(InputError, match="2-D"):
        MassUnivariateGLM().fit(Y[:, 0], X)
    X_nan = X.copy()
    X_nan[3, 1] = np.nan
    with pytest.raises(InputError, match="NaN or infinite"):
        MassUnivariateGLM().fit(Y, X_nan)
    with pytest.raises(DesignError, match="residual degrees of freedom"):
        MassUnivariateGLM().fit(Y[:5], X[:5])
    model = MassUnivariateGLM().fit(Y, X)
    with pytest.raises(ContrastError, match="expected 5 columns, got shape \\(1, 3\\)"):
        model.t_contrast([1, 0, 0])
    with pytest.raises(ContrastError, match="expected 5"):
        model.f_contrast(np.eye(4))
    with pytest.raises(ContrastError, match="f_contrast"):
        model.t_contrast(np.eye(5)[:2])
    with pytest.raises(ContrastError, match="all-zero"):
        model.t_contrast(np.zeros(5))
    with pytest.raises(ContrastError, match="all-zero"):
        model.f_contrast([[0, 1, 0, 0, 0], [0, 0, 0, 0, 0]])
    with pytest.raises(RuntimeError, match="not fitted"):
        MassUnivariateGLM().t_contrast([1])
