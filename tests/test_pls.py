"""PLS regression: agreement with scikit-learn, permutation/bootstrap/CV against slow references."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.cross_decomposition import PLSRegression
from sklearn.model_selection import LeaveOneOut, cross_val_predict

from graymatter.errors import InputError
from graymatter.stats.pls import (clinical_pls, pls_bootstrap, pls_cross_validate, pls_fit,
                                  pls_permutation)


def _sk(k, scale):
    # NIPALS run to convergence (sklearn's default tol=1e-6 on the squared step leaves PLS2
    # weights ~1e-3 away from the fixed point that graymatter computes exactly)
    return PLSRegression(n_components=k, scale=scale, tol=1e-30, max_iter=20_000)


def _fit_sk(X, Y, k, scale):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _sk(k, scale).fit(X, Y)


def _data(rng, n, p, q):
    X = rng.standard_normal((n, p)) * rng.uniform(0.5, 5, p) + rng.uniform(-10, 10, p)
    Y = X[:, :q] @ rng.standard_normal((q, q)) + rng.standard_normal((n, q)) * 3 + 50
    return X, (Y[:, 0] if q == 1 else Y)


def _same_up_to_sign(a, b, atol):
    signs = np.sign((a * b).sum(axis=0))
    np.testing.assert_allclose(a * signs, b, atol=atol, rtol=0)


@pytest.mark.parametrize("n, p, q, k, scale", [
    (24, 360, 1, 1, True), (24, 360, 1, 3, False), (30, 8, 1, 4, True),
    (30, 8, 3, 3, True), (30, 8, 3, 2, False), (40, 100, 2, 4, True), (20, 2000, 1, 2, True)])
def test_fit_equals_sklearn(rng, n, p, q, k, scale):
    X, Y = _data(rng, n, p, q)
    fit = pls_fit(X, Y, n_components=k, scale=scale)
    sk = _fit_sk(X, Y, k, scale)
    for ours, theirs in [(fit.x_weights, sk.x_weights_), (fit.x_scores, sk.x_scores_),
                         (fit.x_loadings, sk.x_loadings_), (fit.y_loadings, sk.y_loadings_),
                         (fit.y_weights, sk.y_weights_), (fit.y_scores, sk.y_scores_),
                         (fit.x_rotations, sk.x_rotations_)]:
        _same_up_to_sign(ours, theirs, 1e-6)
    np.testing.assert_allclose(fit.coef, sk.coef_.T, atol=1e-6, rtol=1e-6)
    np.testing.assert_allclose(fit.predict(X), sk.predict(X).reshape(n, -1), atol=1e-6, rtol=1e-8)
    X_new = rng.standard_normal((5, p)) * 3
    np.testing.assert_allclose(fit.predict(X_new), sk.predict(X_new).reshape(5, -1), atol=1e-6, rtol=1e-8)
    # explained variance: scores orthogonal, so the Y shares add up to the in-sample R²
    Ys = (np.reshape(Y, (n, -1)) - fit.y_mean) / fit.y_std
    fitted = (fit.predict(X) - fit.y_mean) / fit.y_std
    r2 = 1 - ((Ys - fitted) ** 2).sum() / (Ys ** 2).sum()
    assert fit.explained_variance_y.sum() == pytest.approx(r2, rel=1e-8)
    Xs = (X - fit.x_mean) / fit.x_std
    for a in range(k):
        share = (fit.x_scores[:, a] @ fit.x_scores[:, a]) * (fit.x_loadings[:, a] @ fit.x_loadings[:, a])
        assert fit.explained_variance_x[a] == pytest.approx(share / (Xs ** 2).sum(), rel=1e-8)
    np.testing.assert_allclose(fit.r, [stats.pearsonr(fitted[:, j], Ys[:, j])[0] for j in range(Ys.shape[1])],
                               rtol=1e-8)


def test_pls1_weights_are_the_closed_form(rng):
    X, y = _data(rng, 24, 50, 1)
    fit = pls_fit(X, y)
    Xs = (X - X.mean(0)) / X.std(0, ddof=1)
    w = Xs.T @ (y - y.mean())
    w /= np.linalg.norm(w)
    _same_up_to_sign(fit.x_weights[:, 0], w, 1e-12)


def test_real_expression_matrix_equals_sklearn(shared_data):
    # real wide predictors: AHBA expression of the 180 left HCP-MMP1 regions (268 stable genes)
    expr = pd.read_csv(shared_data / "ahba" / "ahba_glasser360_ds0.6.csv", index_col=0).iloc[:180]
    expr = expr.dropna(axis=0, how="any")
    rng = np.random.default_rng(0)
    tmap = expr.iloc[:, :5].mean(axis=1).to_numpy() + rng.normal(0, 0.05, len(expr))
    fit = pls_fit(expr, tmap, n_components=2)
    sk = _fit_sk(expr.to_numpy(), tmap, 2, True)
    _same_up_to_sign(fit.x_weights, sk.x_weights_, 1e-6)
    np.testing.assert_allclose(fit.predict(expr.to_numpy())[:, 0], sk.predict(expr.to_numpy()).ravel(), atol=1e-6)
    assert list(fit.feature_names) == list(expr.columns)


@pytest.mark.parametrize("q, k, scale", [(1, 1, True), (1, 2, False), (3, 2, True)])
def test_permutation_null_matches_refits_and_counting_rule(rng, q, k, scale):
    X, Y = _data(rng, 20, 15, q)
    res = pls_permutation(X, Y, n_components=k, n_perm=40, scale=scale, random_state=3, batch_size=7)
    assert res.permutations.shape == (40, 20)
    for perm, null_ev, null_r in zip(res.permutations[:6], res.null_explained_variance_y, res.null_r):
        Yp = np.asarray(Y)[perm]
        sk = _fit_sk(X, Yp, k, scale)
        Ys = (np.reshape(Yp, (20, -1)) - sk._y_mean) / sk._y_std
        ev = [(sk.x_scores_[:, a] @ sk.x_scores_[:, a]) * (sk.y_loadings_[:, a] @ sk.y_loadings_[:, a])
              / (Ys ** 2).sum() for a in range(k)]
        np.testing.assert_allclose(null_ev, ev, rtol=1e-6, atol=1e-9)
        pred = sk.predict(X).reshape(20, -1)
        np.testing.assert_allclose(null_r, [stats.pearsonr(pred[:, j], Ys[:, j])[0] for j in range(q)],
                                   rtol=1e-6)
    expected = (1 + (res.null_explained_variance_y >= res.explained_variance_y).sum(axis=0)) / 41
    np.testing.assert_allclose(res.p_explained_variance, expected)
    np.testing.assert_allclose(res.p_r, (1 + (res.null_r >= res.r).sum(axis=0)) / 41)
    assert (res.p_r >= 1 / 41).all()
    same = pls_permutation(X, Y, n_components=k, n_perm=40, scale=scale, random_state=3, batch_size=40)
    np.testing.assert_array_equal(same.permutations, res.permutations)  # independent of batch size
    np.testing.assert_allclose(same.null_r, res.null_r, rtol=1e-12)


def test_permutation_p_is_calibrated_under_the_null():
    n_sets, alpha = 200, 0.05
    rejections = 0
    for seed in range(n_sets):
        r = np.random.default_rng(seed)
        res = pls_permutation(r.standard_normal((15, 12)), r.standard_normal(15), n_perm=99,
                              random_state=seed)
        rejections += bool(res.p_r[0] <= alpha)
    lo, hi = stats.binom.ppf([0.005, 0.995], n_sets, alpha)
    assert lo <= rejections <= hi, rejections


def test_permutation_detects_a_real_link(rng):
    X = rng.standard_normal((30, 20))
    y = X[:, :4].sum(axis=1) + rng.standard_normal(30)
    assert pls_permutation(X, y, n_perm=199, random_state=0).p_r[0] <= 0.01


@pytest.mark.parametrize("q, k, scale", [(1, 1, True), (1, 2, False), (2, 2, True)])
def test_bootstrap_equals_sklearn_refit_loop(rng, q, k, scale):
    X, Y = _data(rng, 24, 30, q)
    X[:, 3] = np.repeat([0.0, 1.0], 12)  # a binary column: constant in some resamples
    boot = pls_bootstrap(X, Y, n_components=k, n_boot=60, scale=scale, random_state=5, batch_size=11,
                         return_samples=True)
    full = _fit_sk(X, Y, k, scale).x_weights_
    ref = []
    for idx in boot.indices:
        w = _fit_sk(X[idx], np.asarray(Y)[idx], k, scale).x_weights_
        ref.append(w * np.where((w * full).sum(axis=0) < 0, -1.0, 1.0))
    ref = np.array(ref)
    np.testing.assert_allclose(boot.samples, ref, atol=1e-6)
    se = ref.std(axis=0, ddof=1)
    np.testing.assert_allclose(boot.se, se, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(boot.z, full / se, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(boot.mean, ref.mean(axis=0), atol=1e-9)
    other = pls_bootstrap(X, Y, n_components=k, n_boot=60, scale=scale, random_state=5, batch_size=60)
    np.testing.assert_allclose(other.z, boot.z, rtol=1e-9)


def _naive_pls1_weights(X, y, scale):
    """Closed-form PLS1 weights of one (re)sample, refitted from scratch."""
    Xc = X - X.mean(axis=0)
    if scale:
        sd = Xc.std(axis=0, ddof=1)
        Xc = Xc / np.where(sd > 1e-12, sd, 1.0)  # a constant column keeps scale 1 (sklearn)
    w = Xc.T @ (y - y.mean())
    return w / np.linalg.norm(w)


@pytest.mark.parametrize("scale", [True, False])
def test_pls1_bootstrap_equals_naive_refits_and_general_engine(rng, scale):
    """The fused PLS1 bootstrap reproduces per-resample refits and the k > 1 engine to 1e-10."""
    from graymatter.stats._pls_core import _engine

    X, y = _data(rng, 30, 50, 1)
    X[:, 7] = np.repeat([0.0, 1.0], 15)  # binary: constant in some resamples
    boot = pls_bootstrap(X, y, n_boot=90, scale=scale, random_state=3, batch_size=17,
                         return_samples=True)
    full = _naive_pls1_weights(X, y, scale)
    np.testing.assert_allclose(boot.weights[:, 0], full * np.sign(full[np.abs(full).argmax()]),
                               rtol=1e-10, atol=1e-14)
    ref = np.array([_naive_pls1_weights(X[idx], y[idx], scale) for idx in boot.indices])
    ref *= np.where(ref @ boot.weights[:, 0] < 0, -1.0, 1.0)[:, None]
    assert boot.n_valid == 90
    np.testing.assert_allclose(boot.samples[:, :, 0], ref, rtol=1e-10, atol=1e-14)
    se = ref.std(axis=0, ddof=1)
    np.testing.assert_allclose(boot.se[:, 0], se, rtol=1e-10)
    np.testing.assert_allclose(boot.z[:, 0], boot.weights[:, 0] / se, rtol=1e-10)
    # the general engine (used for several components or responses) on the same row counts
    X0, y0 = X - X.mean(axis=0), (y - y.mean())[:, None]
    C = np.stack([np.bincount(idx, minlength=30) for idx in boot.indices]).astype(float)
    w = _engine(X0, X0 * X0, y0, C, 1, scale, sign_ref=boot.weights, full=False)["w"]
    np.testing.assert_allclose(boot.samples, w, rtol=1e-10, atol=1e-14)
    # a constant response in a resample gives no weights: left out, as the engine does
    y_bin = np.r_[np.zeros(27), 1.0, 2.0, 3.0]
    one = pls_bootstrap(X, y_bin, n_boot=40, scale=scale, random_state=0, batch_size=7)
    n_const = sum(np.ptp(y_bin[idx]) == 0 for idx in one.indices)
    assert n_const > 0 and one.n_valid == 40 - n_const


def test_bootstrap_z_finds_the_predictive_features(rng):
    X = rng.standard_normal((40, 200))
    y = X[:, :5].sum(axis=1) + rng.standard_normal(40)
    z = pls_bootstrap(X, y, n_boot=300, random_state=0).z[:, 0]
    assert np.abs(z[:5]).mean() > 3 * np.abs(z[5:]).mean()
    assert np.median(np.abs(z[:5])) > 3


@pytest.mark.parametrize("q, k, scale", [(1, 1, True), (1, 3, False), (2, 2, True)])
def test_loo_cv_equals_sklearn_cross_val_predict(rng, q, k, scale):
    X, Y = _data(rng, 18, 25, q)
    res = pls_cross_validate(X, Y, n_components=k, scale=scale, cv="loo")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk = cross_val_predict(_sk(k, scale), X, Y, cv=LeaveOneOut()).reshape(18, -1)
    np.testing.assert_allclose(res.predictions, sk, atol=1e-6, rtol=1e-8)
    Yr = np.reshape(Y, (18, -1))
    np.testing.assert_allclose(res.r, [stats.pearsonr(sk[:, j], Yr[:, j])[0] for j in range(q)], rtol=1e-6)
    assert res.p_r is None


def test_kfold_cv_and_permutation_p(rng):
    X = rng.standard_normal((30, 10))
    y = X[:, :3].sum(axis=1) + rng.standard_normal(30)
    res = pls_cross_validate(X, y, cv=5, n_perm=50, random_state=0)
    assert sorted(np.concatenate(res.folds).tolist()) == list(range(30))
    splits = [(np.setdiff1d(np.arange(30), f), f) for f in res.folds]
    sk = cross_val_predict(PLSRegression(n_components=1), X, y, cv=splits)
    np.testing.assert_allclose(res.predictions[:, 0], sk, atol=1e-6)
    assert res.r[0] > 0.5
    assert res.p_r[0] == pytest.approx((1 + (res.null_r[:, 0] >= res.r[0]).sum()) / 51)
    assert res.p_r[0] < 0.05


def test_clinical_pls_aligns_subjects_by_id(rng):
    subjects = [f"sub-{i:02d}" for i in range(24)]
    regions = [f"region_{j:03d}" for j in range(20)]
    delta = pd.DataFrame(rng.standard_normal((24, 20)), index=subjects, columns=regions)
    dhamd = pd.Series(-10 - 3 * delta.iloc[:, :6].mean(axis=1) + rng.normal(0, 0.3, 24), index=subjects)
    res = clinical_pls(delta, dhamd, n_perm=99, n_boot=99, random_state=1)
    shuffled = clinical_pls(delta, dhamd.sample(frac=1, random_state=0), n_perm=99, n_boot=99, random_state=1)
    assert res.r == pytest.approx(shuffled.r, rel=1e-12)
    assert res.p_perm == shuffled.p_perm
    pd.testing.assert_frame_equal(res.regional, shuffled.regional)
    assert list(res.regional.index) == regions
    assert res.regional.columns.tolist() == ["weight_pls1", "se_pls1", "z_pls1"]
    assert res.r > 0.3 and res.cv_r > 0.3 and res.p_perm <= 0.05
    assert res.regional["z_pls1"].abs().iloc[:6].mean() > 2 * res.regional["z_pls1"].abs().iloc[6:].mean()
    assert res.r == pytest.approx(np.sqrt(res.variance_explained.sum()), rel=1e-10)  # PLS1: r² = R²
    info = res.to_dict()
    assert info["n_perm"] == 99 and info["random_state"] == 1 and info["cv_folds"] == 24


def test_errors(rng):
    X, y = _data(rng, 10, 4, 1)
    with pytest.raises(InputError, match="n_components=5 exceeds the rank.*4"):
        pls_fit(X, y, n_components=5)
    Xr = X.copy()
    Xr[:, 3] = Xr[:, 0] + Xr[:, 1]  # rank 3
    with pytest.raises(InputError, match="rank of the centred predictors \\(3"):
        pls_fit(Xr, y, n_components=4)
    df = pd.DataFrame(X, index=[f"s{i}" for i in range(10)], columns=list("abcd"))
    df.iloc[2, 1] = np.nan
    with pytest.raises(InputError, match=r"\(b\) for 1 subject\(s\) \(s2\)"):
        pls_fit(df, pd.Series(y, index=df.index))
    with pytest.raises(InputError, match="only in Y: s99"):
        pls_fit(df.fillna(0), pd.Series(y, index=[*df.index[:-1], "s99"]))
    with pytest.raises(InputError, match="delta_clinical: s99"):
        clinical_pls(df.fillna(0), pd.Series(y, index=[*df.index[:-1], "s99"]), n_perm=9, n_boot=9)
    with pytest.raises(InputError, match="cv must be"):
        pls_cross_validate(X, y, cv=1)
    with pytest.raises(InputError, match="n_perm"):
        pls_permutation(X, y, n_perm=0)
    with pytest.raises(InputError, match="10 subjects.*9"):
        pls_fit(X, y[:9])
