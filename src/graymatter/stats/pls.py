"""Partial least squares regression (PLS1 / PLS2) with batched permutations, bootstraps and CV.

One core serves the clinical PLS of Study B (regional ΔGMV of 24 subjects -> ΔHAMD) and imaging
transcriptomics (expression of 180 regions x 15,633 genes -> a regional t-map). The fit is
scikit-learn's ``PLSRegression`` (NIPALS, regression deflation, mode A): weights, scores, loadings,
coefficients and predictions agree to rounding error. For one response (PLS1) the weight vector is
the closed form ``w ∝ X'y``; for several (PLS2) it is the dominant left singular vector of ``X'Y``,
the fixed point NIPALS iterates towards, found here exactly from the small ``(q, q)`` Gram matrix.

Speed comes from never refitting in a Python loop: every resample (bootstrap, permutation or
CV fold) is the full data with row weights and possibly permuted responses, and a whole batch
of them is fitted with a few matrix products (see :mod:`graymatter.stats._pls_core`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from graymatter.errors import InputError
from graymatter.parallel import as_executor
from graymatter.stats._pls_core import (BootstrapPLS, CVResult, PermutationPLS, _align, _batch,
                                        _bootstrap_moments, _check_components, _coef_scaled,
                                        _corr_cols, _cv_null, _cv_predict, _fit_arrays, _folds,
                                        _null_indices, _perm_p, _permutation_null, _positive,
                                        _rng, _xy)

__all__ = ["PLSResult", "PermutationPLS", "BootstrapPLS", "CVResult", "ClinicalPLSResult", "pls_fit",
           "pls_permutation", "pls_bootstrap", "pls_cross_validate", "clinical_pls"]

logger = logging.getLogger("graymatter")


# ================================================================================ results

@dataclass(frozen=True, eq=False)
class PLSResult:
    """A fitted PLS regression (scikit-learn ``PLSRegression`` conventions, coef as (p, q)).

    Attributes
    ----------
    x_weights : (p, k) ndarray
        Unit-norm weight vectors ``w_a`` (deflated-X space); the largest |weight| of each is positive.
    x_loadings : (p, k) ndarray
    y_weights, y_loadings : (q, k) ndarray
        Equal in PLS regression (``Y_a' t_a / t_a't_a``).
    x_scores, y_scores : (n, k) ndarray
    x_rotations : (p, k) ndarray
        ``W (P'W)^-1``: scores of new data are ``standardised X @ x_rotations``.
    coef : (p, q) ndarray
        Coefficients on the original scale: ``Y ≈ X @ coef + intercept``.
    intercept : (q,) ndarray
    x_mean, x_std : (p,) ndarray
    y_mean, y_std : (q,) ndarray
    explained_variance_x, explained_variance_y : (k,) ndarray
        Share of the total variance (sum of squares) of the centred, and if ``scale`` standardised,
        X and Y reproduced by each component: ``t't p'p / ||X||²`` and ``t't q'q / ||Y||²``.
        Scores are orthogonal, so the Y shares add up to the in-sample R² of the fit.
    r : (q,) ndarray
        Pearson r between fitted and observed values of each response (in-sample, optimistic).
    n_components : int
    scale : bool
    feature_names, response_names, subjects : pandas.Index or None
    """

    x_weights: np.ndarray
    x_loadings: np.ndarray
    y_weights: np.ndarray
    y_loadings: np.ndarray
    x_scores: np.ndarray
    y_scores: np.ndarray
    x_rotations: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    x_mean: np.ndarray
    x_std: np.ndarray
    y_mean: np.ndarray
    y_std: np.ndarray
    explained_variance_x: np.ndarray
    explained_variance_y: np.ndarray
    r: np.ndarray
    n_components: int
    scale: bool
    feature_names: pd.Index | None = None
    response_names: pd.Index | None = None
    subjects: pd.Index | None = None

    def predict(self, X) -> np.ndarray:
        """Predicted responses ``(n_new, q)`` for new predictors ``X`` of shape (n_new, p)."""
        Xa = np.asarray(X, dtype=np.float64)
        if Xa.ndim != 2 or Xa.shape[1] != self.coef.shape[0]:
            raise InputError(f"X must have shape (n, {self.coef.shape[0]}) like the training data, "
                             f"got {Xa.shape}")
        return Xa @ self.coef + self.intercept


# ================================================================================ public functions

def pls_fit(X, Y, *, n_components: int = 1, scale: bool = True) -> PLSResult:
    """Fit a PLS regression of ``Y`` on ``X`` (identical to scikit-learn's ``PLSRegression``).

    Parameters
    ----------
    X : (n_subjects, p) array-like or pandas.DataFrame
        Predictors (e.g. regional ΔGMV, or expression regions x genes).
    Y : (n_subjects,) or (n_subjects, q) array-like, pandas.Series or DataFrame
        Responses. When X and Y are both pandas objects, rows are matched by index.
    n_components : int, default=1
        Number of PLS components; at most the rank of the centred X.
    scale : bool, default=True
        Standardise each column of X and Y (SD with ddof=1; constant columns are left unscaled).

    Returns
    -------
    PLSResult

    Raises
    ------
    InputError
        Non-numeric, NaN or infinite values (named by row and column), mismatched subjects, or
        ``n_components`` above the rank of X.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((24, 360)); y = X[:, :10].sum(axis=1) + rng.standard_normal(24)
    >>> fit = pls_fit(X, y, n_components=2)
    >>> fit.x_weights.shape, fit.coef.shape, fit.explained_variance_y.shape
    ((360, 2), (360, 1), (2,))
    """
    Xa, Ya, xcols, ycols, rows, _ = _xy(X, Y)
    k = _check_components(Xa, n_components)
    out, xs, ys = _fit_arrays(Xa, Ya, k, bool(scale))
    coef_s = _coef_scaled(out)[0]
    sx, sy = out["sx"][0], out["sy"][0]
    x_mean, y_mean = xs + out["mx"][0], ys + out["my"][0]
    coef = coef_s * sy[None, :] / sx[:, None]
    W, P = out["w"][0], out["p"][0]
    fitted = out["t"][0] @ out["q"][0].T
    Ys = (Ya - y_mean) / sy
    return PLSResult(
        x_weights=W, x_loadings=P, y_weights=out["q"][0].copy(), y_loadings=out["q"][0],
        x_scores=out["t"][0], y_scores=out["u"][0], x_rotations=W @ np.linalg.pinv(P.T @ W),
        coef=coef, intercept=y_mean - x_mean @ coef, x_mean=x_mean, x_std=np.broadcast_to(sx, xs.shape).copy(),
        y_mean=y_mean, y_std=sy, explained_variance_x=out["evx"][0], explained_variance_y=out["evy"][0],
        r=_corr_cols(fitted, Ys), n_components=k, scale=bool(scale), feature_names=xcols,
        response_names=ycols, subjects=rows)


def pls_permutation(X, Y, *, n_components: int = 1, n_perm: int = 1000, scale: bool = True,
                    random_state=None, batch_size: int | None = None,
                    permutations=None, executor=None) -> PermutationPLS:
    """Permutation test of a PLS fit: permute the rows of Y, refit, and compare.

    The statistics are the share of Y variance explained by each component and the in-sample
    r(fitted, observed) of each response. ``p = (1 + #{null >= observed}) / (1 + n_perm)``.
    Permutations are processed in batches as matrix products (no per-permutation refit loop).

    Parameters
    ----------
    X : (n_subjects, p) array-like
    Y : (n_subjects,) or (n_subjects, q) array-like
    n_components : int, default=1
    n_perm : int, default=1000
    scale : bool, default=True
    random_state : None, int or numpy.random.Generator
        Seed of the permutations; the same seed gives the same permutations whatever ``batch_size``.
    batch_size : int, optional
        Permutations per batch; default keeps a batch's working memory near 100 MB.
    permutations : (n_subjects, n_null) int array-like, optional
        Row indices to use instead of random permutations: null ``j`` refits ``Y[permutations[:, j]]``
        (e.g. spin-test reassignments from ``spin_permutations``; repeated indices are allowed,
        as in nearest-centroid spins). ``n_perm`` and ``random_state`` are then ignored.
    executor : Executor, optional
        From :func:`graymatter.parallel.get_executor`: each batch of permutations is a task
        (the data go to each worker once). The permutations are drawn here, so the null agrees
        with a serial run (to rounding: BLAS on workers may use another thread count).

    Returns
    -------
    PermutationPLS

    Notes
    -----
    Permuting subjects assumes they are exchangeable. For maps over brain regions (imaging
    transcriptomics) that is false, because neighbouring regions are alike: use a spatial null
    (spin test) there instead of this function's p-value.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((24, 50)); y = X[:, 0] + rng.standard_normal(24)
    >>> res = pls_permutation(X, y, n_perm=99, random_state=1)
    >>> bool(0.01 <= res.p_r[0] <= 1.0)
    True
    """
    Xa, Ya, *_ = _xy(X, Y)
    k = _check_components(Xa, n_components)
    n_perm = _positive(n_perm, "n_perm") if permutations is None else 0
    out, xs, ys = _fit_arrays(Xa, Ya, k, bool(scale))
    n, q = Ya.shape
    obs_ev = out["evy"][0]
    obs_r = _corr_cols(out["t"][0] @ out["q"][0].T, (Ya - ys - out["my"][0]) / out["sy"][0])
    if permutations is None:
        rng = _rng(random_state)
        perms = np.argsort(rng.random((n_perm, n)), axis=1).astype(np.int32)
    else:
        perms = _null_indices(permutations, n)
        n_perm = perms.shape[0]
    X0, Y0 = Xa - xs, Ya - ys
    bs = _batch(batch_size, n_perm, n, Xa.shape[1], q, k)
    null_ev, null_r = _permutation_null(X0, Y0, perms, k, bool(scale), bs,
                                        as_executor(executor))
    return PermutationPLS(explained_variance_y=obs_ev, null_explained_variance_y=null_ev,
                          p_explained_variance=_perm_p(obs_ev, null_ev), r=obs_r, null_r=null_r,
                          p_r=_perm_p(obs_r, null_r), n_perm=n_perm, permutations=perms,
                          random_state=random_state)


def pls_bootstrap(X, Y, *, n_components: int = 1, n_boot: int = 1000, scale: bool = True,
                  random_state=None, batch_size: int | None = None,
                  return_samples: bool = False, executor=None) -> BootstrapPLS:
    """Bootstrap the x-weights of a PLS fit by resampling subjects (rows) with replacement.

    Each resample is refitted exactly as :func:`pls_fit` would refit ``X[idx], Y[idx]`` (centring
    and scaling recomputed on the resample), with resamples handled in batches as row-weighted
    matrix products. Each bootstrap weight vector is sign-aligned to the full fit's (flipped when
    their dot product is negative); ``se`` is the SD (ddof=1) of the aligned weights and
    ``z = weight / se``.

    Parameters
    ----------
    X : (n_subjects, p) array-like
    Y : (n_subjects,) or (n_subjects, q) array-like
    n_components : int, default=1
    n_boot : int, default=1000
    scale : bool, default=True
    random_state : None, int or numpy.random.Generator
    batch_size : int, optional
        Resamples per batch; default keeps a batch's working memory near 100 MB.
    return_samples : bool, default=False
        Keep all bootstrap weights ``(n_boot, p, k)`` (memory: n_boot x p x k x 8 bytes).
    executor : Executor, optional
        Each batch of resamples is a task (resamples are drawn here; see
        :func:`pls_permutation`).

    Returns
    -------
    BootstrapPLS

    Notes
    -----
    Components are aligned by sign only, not rotated (no Procrustes); with several components of
    similar strength their order can swap between resamples, which inflates ``se`` of the later
    ones. When the rows are brain regions (imaging transcriptomics) the resampling ignores spatial
    dependence between regions, so ``se`` is optimistic; report it as such.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((24, 30)); y = X[:, 0] + rng.standard_normal(24)
    >>> boot = pls_bootstrap(X, y, n_boot=200, random_state=0)
    >>> int(np.argmax(np.abs(boot.z[:, 0])))
    0
    """
    Xa, Ya, *_ = _xy(X, Y)
    k = _check_components(Xa, n_components)
    n_boot = _positive(n_boot, "n_boot", 2)
    out, xs, ys = _fit_arrays(Xa, Ya, k, bool(scale))
    ref = out["w"][0]
    n, p = Xa.shape
    rng = _rng(random_state)
    indices = rng.integers(0, n, size=(n_boot, n)).astype(np.int32)
    X0, Y0 = Xa - xs, Ya - ys
    X2 = X0 * X0 if scale else None
    bs = _batch(batch_size, n_boot, n, p, Ya.shape[1], k)
    s1, s2, n_valid, samples = _bootstrap_moments(X0, X2, Y0, indices, ref, k, bool(scale), bs,
                                                  keep=return_samples,
                                                  executor=as_executor(executor))
    if n_valid < n_boot:
        logger.warning("%d of %d bootstrap resamples gave no finite PLS weights (e.g. a constant "
                       "response in the resample) and were left out", n_boot - n_valid, n_boot)
    if n_valid < 2:
        raise InputError(f"fewer than 2 of {n_boot} bootstrap resamples could be fitted; the data "
                         "have too little variation for a bootstrap")
    mean_d = s1 / n_valid
    var = np.maximum(s2 - n_valid * mean_d ** 2, 0.0) / (n_valid - 1)
    se = np.sqrt(var)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = ref / se
    return BootstrapPLS(weights=ref, se=se, z=z, mean=ref + mean_d, n_boot=n_boot, n_valid=n_valid,
                        indices=indices, samples=samples, random_state=random_state)


def pls_cross_validate(X, Y, *, n_components: int = 1, cv="loo", scale: bool = True, n_perm: int = 0,
                       random_state=None, batch_size: int | None = None) -> CVResult:
    """Out-of-sample PLS predictions by cross-validation, and their r with the observations.

    In-sample r of a PLS with more predictors than subjects is strongly optimistic (it is high
    even for pure noise); the cross-validated r is the honest measure of predictive value.

    Parameters
    ----------
    X : (n_subjects, p) array-like
    Y : (n_subjects,) or (n_subjects, q) array-like
    n_components : int, default=1
    cv : "loo" or int, default="loo"
        Leave-one-out, or k folds of a random split of the subjects (seeded by ``random_state``).
    scale : bool, default=True
    n_perm : int, default=0
        When > 0, the whole cross-validation is repeated on permuted Y to give
        ``p_r = (1 + #{null r >= r}) / (1 + n_perm)`` (the same folds are used throughout).
    random_state : None, int or numpy.random.Generator
    batch_size : int, optional

    Returns
    -------
    CVResult

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((24, 40)); y = X[:, :3].sum(axis=1) + rng.standard_normal(24)
    >>> res = pls_cross_validate(X, y, cv="loo")
    >>> res.predictions.shape
    (24, 1)
    """
    Xa, Ya, *_ = _xy(X, Y)
    n, p = Xa.shape
    k = _check_components(Xa, n_components)
    n_perm = _positive(n_perm, "n_perm", 0)
    rng = _rng(random_state)
    folds = _folds(cv, n, rng)
    xs, ys = Xa.mean(axis=0), Ya.mean(axis=0)
    X0, Y0 = Xa - xs, Ya - ys
    X2 = X0 * X0
    bs = _batch(batch_size, max(1, n_perm) * len(folds), n, p, Ya.shape[1], k)
    pred = _cv_predict(X0, X2, Y0, folds, k, bool(scale), bs)[0] + ys
    r = _corr_cols(pred, Ya)
    null_r = p_r = None
    if n_perm:
        perms = np.argsort(rng.random((n_perm, n)), axis=1)
        null_r = _cv_null(X0, X2, Y0, perms, folds, k, bool(scale), bs)
        p_r = _perm_p(r, null_r)
    return CVResult(predictions=pred, r=r, folds=folds, n_perm=n_perm, null_r=null_r, p_r=p_r)


# ================================================================================ clinical wrapper

@dataclass(frozen=True, eq=False)
class ClinicalPLSResult:
    """Clinical PLS of regional change against clinical change (Study B).

    Attributes
    ----------
    fit : PLSResult
    permutation : PermutationPLS
    bootstrap : BootstrapPLS
    cv : CVResult or None
    regional : pandas.DataFrame
        One row per region: ``weight_plsK``, ``se_plsK``, ``z_plsK`` for each component K
        (bootstrap z = weight / bootstrap SE).
    """

    fit: PLSResult
    permutation: PermutationPLS
    bootstrap: BootstrapPLS
    cv: CVResult | None
    regional: pd.DataFrame

    @property
    def variance_explained(self) -> np.ndarray:
        """``(k,)`` share of (standardised) clinical-change variance per component."""
        return self.fit.explained_variance_y

    @property
    def r(self) -> float:
        """In-sample r(fitted, observed) of the first clinical response (optimistic)."""
        return float(self.fit.r[0])

    @property
    def p_perm(self) -> float:
        """Permutation p of :attr:`r` (equal to that of the total variance explained)."""
        return float(self.permutation.p_r[0])

    @property
    def cv_r(self) -> float:
        """Cross-validated r(predicted, observed) of the first clinical response (NaN without cv)."""
        return float(self.cv.r[0]) if self.cv is not None else float("nan")

    def to_dict(self) -> dict:
        """JSON-able summary for provenance sidecars."""
        return {"n_components": self.fit.n_components, "scale": self.fit.scale,
                "n_subjects": int(self.fit.x_scores.shape[0]),
                "variance_explained": self.variance_explained.tolist(), "r": self.r,
                "p_perm": self.p_perm, "n_perm": self.permutation.n_perm,
                "n_boot": self.bootstrap.n_boot, "cv_r": self.cv_r,
                "cv_folds": None if self.cv is None else len(self.cv.folds),
                "random_state": self.permutation.random_state
                if isinstance(self.permutation.random_state, (int, type(None))) else "generator"}


def clinical_pls(delta_regions: pd.DataFrame, delta_clinical, *, n_components: int = 1,
                 n_perm: int = 1000, n_boot: int = 1000, cv="loo", random_state=None,
                 scale: bool = True, executor=None) -> ClinicalPLSResult:
    """PLS regression of clinical change on regional change, with permutation, bootstrap and CV.

    Parameters
    ----------
    delta_regions : (n_subjects, n_regions) pandas.DataFrame
        Regional change (e.g. ΔGMV, post − pre), indexed by subject id.
    delta_clinical : (n_subjects,) pandas.Series or (n_subjects, q) DataFrame
        Clinical change (e.g. ΔHAMD), indexed by the same subject ids (matched by id).
    n_components : int, default=1
    n_perm : int, default=1000
        Permutations of subjects for the p-value of r (and of variance explained).
    n_boot : int, default=1000
        Bootstrap resamples of subjects for the regional z-scores.
    cv : "loo", int or None, default="loo"
        Cross-validation of predictions (None to skip).
    random_state : None, int or numpy.random.Generator
        One seed; independent streams for permutations, bootstrap and CV are derived from it.
    scale : bool, default=True
    executor : Executor, optional
        Where the permutation and bootstrap batches run (:func:`pls_permutation`).

    Returns
    -------
    ClinicalPLSResult

    Notes
    -----
    With a few dozen subjects and hundreds of regions the PLS overfits: the in-sample ``r``
    between fitted and observed clinical change is optimistic (it is large even for noise). Its
    permutation p-value accounts for that; the cross-validated r (``cv_r``) estimates how well
    the regional pattern predicts a new patient.

    Examples
    --------
    >>> from graymatter.datasets.simulate_longitudinal import simulate_longitudinal_cohort
    >>> cohort = simulate_longitudinal_cohort(random_state=0)
    >>> delta = cohort.post - cohort.pre
    >>> dhamd = cohort.participants["hamd_post"] - cohort.participants["hamd_pre"]
    >>> res = clinical_pls(delta, dhamd, n_perm=199, n_boot=199, random_state=0)
    >>> res.regional.columns.tolist()
    ['weight_pls1', 'se_pls1', 'z_pls1']
    """
    if not isinstance(delta_regions, pd.DataFrame):
        raise InputError(f"delta_regions must be a pandas DataFrame (subjects x regions) indexed by "
                         f"subject id, got {type(delta_regions).__name__}")
    if not isinstance(delta_clinical, (pd.Series, pd.DataFrame)):
        raise InputError(f"delta_clinical must be a pandas Series or DataFrame indexed by subject id, "
                         f"got {type(delta_clinical).__name__}")
    X, Y = _align(delta_regions, delta_clinical, "delta_regions", "delta_clinical")
    streams = _rng(random_state).spawn(3)
    fit = pls_fit(X, Y, n_components=n_components, scale=scale)
    perm = pls_permutation(X, Y, n_components=n_components, n_perm=n_perm, scale=scale,
                           random_state=streams[0], executor=executor)
    boot = pls_bootstrap(X, Y, n_components=n_components, n_boot=n_boot, scale=scale,
                         random_state=streams[1], executor=executor)
    cvres = None if cv is None else pls_cross_validate(X, Y, n_components=n_components, cv=cv,
                                                       scale=scale, random_state=streams[2])
    cols = {}
    for a in range(fit.n_components):
        cols[f"weight_pls{a + 1}"] = boot.weights[:, a]
        cols[f"se_pls{a + 1}"] = boot.se[:, a]
        cols[f"z_pls{a + 1}"] = boot.z[:, a]
    regional = pd.DataFrame(cols, index=X.columns)
    perm = PermutationPLS(**{**perm.__dict__, "random_state": random_state})
    logger.info("clinical PLS: %d subjects x %d regions, r=%.3f (p_perm=%.4g), cv r=%.3f",
                X.shape[0], X.shape[1], fit.r[0], perm.p_r[0],
                cvres.r[0] if cvres is not None else float("nan"))
    return ClinicalPLSResult(fit=fit, permutation=perm, bootstrap=boot, cv=cvres, regional=regional)
