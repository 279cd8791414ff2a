"""Partial least squares regression (PLS1 / PLS2) with batched permutations, bootstraps and CV.

One core serves the clinical PLS of Study B (regional ΔGMV of 24 subjects -> ΔHAMD) and imaging
transcriptomics (expression of 180 regions x 15,633 genes -> a regional t-map). The fit is
scikit-learn's ``PLSRegression`` (NIPALS, regression deflation, mode A): weights, scores, loadings,
coefficients and predictions agree to rounding error. For one response (PLS1) the weight vector is
the closed form ``w ∝ X'y``; for several (PLS2) it is the dominant left singular vector of ``X'Y``,
the fixed point NIPALS iterates towards, found here exactly from the small ``(q, q)`` Gram matrix.

Speed comes from never refitting in a Python loop. A resample (bootstrap, permutation or CV fold)
is the full data with *row weights* ``c`` (bootstrap counts, 0/1 fold masks, ones) and possibly
permuted responses; centring, scaling, ``X'CY``, scores and loadings of a whole batch of resamples
are then a few matrix products with the original ``X``: ``(B, n) @ (n, p)``. Deflation of ``X`` is
never materialised: ``X_a = X - sum_l t_l p_l'`` enters only through ``X_a w = X w - sum_l t_l (p_l'w)``
and ``X_a'Ct = X'Ct`` (scores are C-orthogonal). Memory per batch is bounded (``batch_size``),
so wide ``X`` (p >> n) works without forming anything of size ``p x p`` or ``B x n x p``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from graymatter.errors import InputError, format_choices

__all__ = ["PLSResult", "PermutationPLS", "BootstrapPLS", "CVResult", "ClinicalPLSResult", "pls_fit",
           "pls_permutation", "pls_bootstrap", "pls_cross_validate", "clinical_pls"]

logger = logging.getLogger("graymatter")

_BATCH_BYTES = 96_000_000  # working memory of one batch of resamples (a few arrays of B x p)
_TIE_RTOL = 1e-10  # a null statistic within this relative distance of the observed one counts as >=


# ================================================================================ input checking

def _matrix(values, name: str) -> tuple[np.ndarray, pd.Index | None, pd.Index | None, bool]:
    """Return ``(array (n, k) float64, row labels, column labels, was_1d)`` or raise InputError."""
    rows = values.index if isinstance(values, (pd.DataFrame, pd.Series)) else None
    cols = values.columns if isinstance(values, pd.DataFrame) else (
        pd.Index([values.name if values.name is not None else name]) if isinstance(values, pd.Series)
        else None)
    try:
        arr = np.array(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be numeric (subjects x variables); {exc}") from None
    was_1d = arr.ndim == 1
    if was_1d:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] < 3 or arr.shape[1] < 1:
        raise InputError(f"{name} must be a 2-D array (n_subjects, n_variables) with at least 3 "
                         f"subjects, got shape {np.shape(values)}")
    bad = ~np.isfinite(arr)
    if bad.any():
        r = np.flatnonzero(bad.any(axis=1))
        c = np.flatnonzero(bad.any(axis=0))
        rn = rows[r] if rows is not None else [f"row {i}" for i in r]
        cn = cols[c] if cols is not None else [f"column {j}" for j in c]
        raise InputError(f"{name} has missing or infinite values in {len(c)} variable(s) "
                         f"({format_choices(cn)}) for {len(r)} subject(s) ({format_choices(rn)}); "
                         "impute them or drop those subjects/variables before the PLS")
    return arr, rows, cols, was_1d


def _xy(X, Y, x_name="X", y_name="Y"):
    """Validated ``(X (n, p), Y (n, q), feature names, response names, subject index, y_was_1d)``.

    When both are pandas objects their subject indices must hold the same ids; Y is reordered to
    X's order (never matched by position).
    """
    if isinstance(X, (pd.DataFrame, pd.Series)) and isinstance(Y, (pd.DataFrame, pd.Series)):
        X, Y = _align(X, Y, x_name, y_name)
    Xa, rows, xcols, _ = _matrix(X, x_name)
    Ya, _, ycols, y1 = _matrix(Y, y_name)
    if Xa.shape[0] != Ya.shape[0]:
        raise InputError(f"{x_name} has {Xa.shape[0]} subjects (rows) but {y_name} has "
                         f"{Ya.shape[0]}; give one row per subject in both")
    return Xa, Ya, xcols, ycols, rows, y1


def _align(a, b, a_name: str, b_name: str):
    """Reorder ``b`` to ``a``'s subject order; InputError naming ids present in only one of them."""
    for obj, nm in ((a, a_name), (b, b_name)):
        if obj.index.has_duplicates:
            dup = obj.index[obj.index.duplicated()].unique()
            raise InputError(f"{nm} has duplicated subject ids: {format_choices(dup)}")
    only_a = a.index.difference(b.index)
    only_b = b.index.difference(a.index)
    if len(only_a) or len(only_b):
        raise InputError(f"{a_name} and {b_name} must hold the same subjects (matched by id, not "
                         f"order): only in {a_name}: {format_choices(only_a) or 'none'}; only in "
                         f"{b_name}: {format_choices(only_b) or 'none'}. Drop or add those subjects")
    return a, b.loc[a.index]


def _check_components(X: np.ndarray, n_components) -> int:
    if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)) or n_components < 1:
        raise InputError(f"n_components must be a positive integer, got {n_components!r}")
    Xc = X - X.mean(axis=0)
    # singular values via the (min(n, p),)-square R of a QR of the tall orientation: an SVD of a
    # wide 180 x 15,633 matrix directly takes seconds, this ~50 ms
    R = np.linalg.qr(Xc.T if Xc.shape[1] > Xc.shape[0] else Xc, mode="r")
    s = np.linalg.svd(R, compute_uv=False)
    rank = int((s > s[0] * max(X.shape) * np.finfo(float).eps).sum()) if s.size and s[0] > 0 else 0
    if n_components > rank:
        raise InputError(f"n_components={n_components} exceeds the rank of the centred predictors "
                         f"({rank}, at most n_subjects - 1 = {X.shape[0] - 1}); each PLS component "
                         f"needs a new dimension of X. Use n_components <= {rank}")
    return int(n_components)


def _positive(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _batch(batch_size, n_total: int, n: int, p: int, q: int, k: int) -> int:
    if batch_size is not None:
        return _positive(batch_size, "batch_size")
    per = 8 * ((8 + q + 3 * k) * p + (4 * q + 4 * k + 3) * n)
    return int(max(1, min(n_total, _BATCH_BYTES // per)))


# ================================================================================ the batched core

def _engine(X, X2, Y, C, k: int, scale: bool, *, sign_ref=None, full=True):
    """PLS regression of a batch of weighted (and possibly permuted) resamples.

    Parameters
    ----------
    X : (n, p) ndarray
        Predictors, column-centred over all rows (conditioning only; every resample re-centres).
    X2 : (n, p) ndarray or None
        ``X * X``, needed when ``C`` is given and ``scale`` is true.
    Y : (n, q) or (B, n, q) ndarray
        Responses, the same for every resample or one (permuted) copy per resample.
    C : (B, n) ndarray or None
        Row weights (bootstrap counts, 0/1 training masks); None means all ones.
    sign_ref : (p, k) ndarray, optional
        Orient each weight vector to have a non-negative dot product with this one (bootstrap);
        default: sklearn's rule (largest absolute weight positive).
    full : bool
        Compute scores and loadings of the last component too (else only what the weights need).

    Returns
    -------
    dict of batched arrays: w, p (loadings), q (y loadings), t, u, mx, sx, my, sy, evx, evy, nb.
    """
    n, p = X.shape
    B = C.shape[0] if C is not None else (Y.shape[0] if Y.ndim == 3 else 1)
    Yb = np.broadcast_to(Y, (B,) + Y.shape[-2:]) if Y.ndim == 2 else Y
    q = Yb.shape[2]
    if C is None:
        nb = np.full(B, float(n))
        mx = X.mean(axis=0, keepdims=True)
        vx = ((X - mx) ** 2).sum(axis=0, keepdims=True) / (n - 1)
        my = Yb.mean(axis=1)
    else:
        nb = C.sum(axis=1)
        # a resample's mean is needed for its scale and its scores (not for the weights alone)
        mx = (C @ X) / nb[:, None] if (scale or full or k > 1) else np.zeros((1, p))
        vx = ((C @ X2) / nb[:, None] - mx * mx) * (nb / (nb - 1))[:, None] if (scale or full) else None
        my = np.einsum("bn,bnq->bq", C, Yb) / nb[:, None]
    Yk = Yb - my[:, None, :]
    if scale:
        # constant columns keep scale 1 (as sklearn); the floor absorbs rounding of E[x²] - m²
        floor = 1e3 * np.finfo(float).eps * np.maximum((X * X).mean(axis=0), np.finfo(float).tiny)
        sx = np.where(vx > floor, np.sqrt(np.maximum(vx, 0.0)), 1.0)
        vy = (np.einsum("bn,bnq->bq", C, Yk * Yk) if C is not None else (Yk * Yk).sum(axis=1))
        vy = vy / (nb - 1)[:, None]
        yfloor = 1e3 * np.finfo(float).eps * np.maximum((Y * Y).reshape(-1, q).mean(axis=0), 1e-300)
        sy = np.where(vy > yfloor, np.sqrt(vy), 1.0)
        Yk = Yk / sy[:, None, :]
    else:
        sx, sy = np.ones((1, p)), np.ones((B, q))
    ssy = np.einsum("bn,bnq->b", C, Yk * Yk) if C is not None else (Yk * Yk).sum(axis=(1, 2))
    ssx = ((nb - 1)[:, None] * vx / sx ** 2).sum(axis=1) if full else None
    W = np.empty((B, p, k))
    P = np.full((B, p, k), np.nan)
    Q = np.full((B, q, k), np.nan)
    T = np.full((B, n, k), np.nan)
    U = np.full((B, n, k), np.nan)
    evx = np.full((B, k), np.nan)
    evy = np.full((B, k), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        for a in range(k):
            G = Yk if C is None else Yk * C[:, :, None]
            # X_a' C Y_a = X'C Y_a: weighted-centred Y_a makes the X mean drop out, and Y_a is
            # C-orthogonal to earlier scores so X's deflation terms vanish
            A = (np.ascontiguousarray(G.transpose(0, 2, 1)).reshape(B * q, n) @ X).reshape(B, q, p)
            A /= sx[:, None, :]
            if q == 1:
                w = A[:, 0, :]
            else:  # dominant left singular vector of the (p, q) matrix, from its (q, q) Gram
                _, vecs = np.linalg.eigh(A @ A.transpose(0, 2, 1))
                w = np.einsum("bq,bqp->bp", vecs[:, :, -1], A)
            w = w / np.sqrt((w * w).sum(axis=1))[:, None]
            if sign_ref is None:
                sgn = np.sign(w[np.arange(B), np.abs(w).argmax(axis=1)])
            else:
                sgn = np.sign(w @ sign_ref[:, a])
            w *= np.where(sgn == 0, 1.0, sgn)[:, None]
            W[:, :, a] = w
            if a == k - 1 and not full:
                break
            ws = w / sx
            t = (X @ ws.T).T - (mx * ws).sum(axis=1)[:, None]
            for j in range(a):  # X_a w = X w - sum_j t_j (p_j'w)
                t -= T[:, :, j] * np.einsum("bp,bp->b", P[:, :, j], w)[:, None]
            ct = t if C is None else C * t
            tt = (ct * t).sum(axis=1)
            qa = np.einsum("bnq,bn->bq", Yk, ct) / tt[:, None]
            if a < k - 1 or full:
                P[:, :, a] = ((ct @ X) / sx) / tt[:, None]
            T[:, :, a], Q[:, :, a] = t, qa
            U[:, :, a] = np.einsum("bnq,bq->bn", Yk, qa) / (qa * qa).sum(axis=1)[:, None]
            evy[:, a] = tt * (qa * qa).sum(axis=1) / ssy
            if full:
                evx[:, a] = tt * (P[:, :, a] ** 2).sum(axis=1) / ssx
            Yk = Yk - t[:, :, None] * qa[:, None, :]
    return {"w": W, "p": P, "q": Q, "t": T, "u": U, "mx": mx, "sx": sx, "my": my, "sy": sy,
            "evx": evx, "evy": evy, "nb": nb, "ssy": ssy}


def _coef_scaled(out) -> np.ndarray:
    """``(B, p, q)`` coefficients in the standardised space: ``W (P'W)^-1 Q'``."""
    W, P, Q = out["w"], out["p"], out["q"]
    R = W @ np.linalg.pinv(P.transpose(0, 2, 1) @ W)
    return R @ Q.transpose(0, 2, 1)


def _corr_cols(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r per column of ``(..., n, q)`` arrays, along axis -2."""
    a = a - a.mean(axis=-2, keepdims=True)
    b = b - b.mean(axis=-2, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * b).sum(axis=-2) / np.sqrt((a * a).sum(axis=-2) * (b * b).sum(axis=-2))


def _perm_p(observed: np.ndarray, null: np.ndarray) -> np.ndarray:
    """``(1 + #{null >= observed}) / (1 + n_valid)`` per column, ties within _TIE_RTOL count."""
    ok = np.isfinite(null)
    hits = (null >= observed - _TIE_RTOL * np.abs(observed)) & ok
    return (1.0 + hits.sum(axis=0)) / (1.0 + ok.sum(axis=0))


def _rng(random_state) -> np.random.Generator:
    return np.random.default_rng(random_state)


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


@dataclass(frozen=True, eq=False)
class PermutationPLS:
    """Permutation null of a PLS fit (rows of Y permuted, everything refitted).

    Attributes
    ----------
    explained_variance_y : (k,) ndarray
        Observed share of Y variance per component.
    null_explained_variance_y : (n_perm, k) ndarray
    p_explained_variance : (k,) ndarray
        ``(1 + #{null >= observed}) / (1 + n_perm)`` per component.
    r : (q,) ndarray
        Observed in-sample r(fitted, observed) per response (all components).
    null_r : (n_perm, q) ndarray
    p_r : (q,) ndarray
    n_perm : int
    permutations : (n_perm, n) int ndarray
        Row order of Y in each permutation (Y[perm]).
    random_state : object
    """

    explained_variance_y: np.ndarray
    null_explained_variance_y: np.ndarray
    p_explained_variance: np.ndarray
    r: np.ndarray
    null_r: np.ndarray
    p_r: np.ndarray
    n_perm: int
    permutations: np.ndarray
    random_state: object = None


@dataclass(frozen=True, eq=False)
class BootstrapPLS:
    """Bootstrap (resampled subjects) of PLS x-weights.

    Attributes
    ----------
    weights : (p, k) ndarray
        x-weights of the full fit.
    se : (p, k) ndarray
        Standard deviation (ddof=1) of the sign-aligned bootstrap weights.
    z : (p, k) ndarray
        ``weights / se``.
    mean : (p, k) ndarray
        Mean of the sign-aligned bootstrap weights.
    n_boot : int
        Resamples drawn; ``n_valid`` of them gave finite weights and enter ``se``.
    n_valid : int
    indices : (n_boot, n) int ndarray
        Rows drawn for each resample.
    samples : (n_boot, p, k) ndarray or None
        All bootstrap weights when ``return_samples=True``.
    random_state : object
    """

    weights: np.ndarray
    se: np.ndarray
    z: np.ndarray
    mean: np.ndarray
    n_boot: int
    n_valid: int
    indices: np.ndarray
    samples: np.ndarray | None = None
    random_state: object = None


@dataclass(frozen=True, eq=False)
class CVResult:
    """Cross-validated (out-of-sample) PLS predictions.

    Attributes
    ----------
    predictions : (n, q) ndarray
        Each subject predicted by the model fitted without its fold.
    r : (q,) ndarray
        Pearson r between predictions and observations.
    folds : list of (n_test,) int ndarrays
        Test rows of each fold.
    n_perm : int
        Permutations of Y for ``p_r`` (0: not computed, ``null_r`` and ``p_r`` are None).
    null_r : (n_perm, q) ndarray or None
    p_r : (q,) ndarray or None
    """

    predictions: np.ndarray
    r: np.ndarray
    folds: list
    n_perm: int = 0
    null_r: np.ndarray | None = None
    p_r: np.ndarray | None = None


# ================================================================================ public functions

def _fit_arrays(Xa, Ya, k, scale) -> tuple[dict, np.ndarray, np.ndarray]:
    xs, ys = Xa.mean(axis=0), Ya.mean(axis=0)
    X0, Y0 = Xa - xs, Ya - ys
    out = _engine(X0, None, Y0, None, k, scale)
    return out, xs, ys


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
                    random_state=None, batch_size: int | None = None) -> PermutationPLS:
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
    n_perm = _positive(n_perm, "n_perm")
    out, xs, ys = _fit_arrays(Xa, Ya, k, bool(scale))
    n, q = Ya.shape
    obs_ev = out["evy"][0]
    obs_r = _corr_cols(out["t"][0] @ out["q"][0].T, (Ya - ys - out["my"][0]) / out["sy"][0])
    rng = _rng(random_state)
    perms = np.argsort(rng.random((n_perm, n)), axis=1).astype(np.int32)
    X0, Y0 = Xa - xs, Ya - ys
    bs = _batch(batch_size, n_perm, n, Xa.shape[1], q, k)
    null_ev = np.empty((n_perm, k))
    null_r = np.empty((n_perm, q))
    for start in range(0, n_perm, bs):
        idx = perms[start:start + bs]
        Yp = Y0[idx]  # (B, n, q)
        o = _engine(X0, None, Yp, None, k, bool(scale), full=True)
        null_ev[start:start + len(idx)] = o["evy"]
        fitted = o["t"] @ o["q"].transpose(0, 2, 1)
        null_r[start:start + len(idx)] = _corr_cols(fitted, Yp)
    return PermutationPLS(explained_variance_y=obs_ev, null_explained_variance_y=null_ev,
                          p_explained_variance=_perm_p(obs_ev, null_ev), r=obs_r, null_r=null_r,
                          p_r=_perm_p(obs_r, null_r), n_perm=n_perm, permutations=perms,
                          random_state=random_state)


def pls_bootstrap(X, Y, *, n_components: int = 1, n_boot: int = 1000, scale: bool = True,
                  random_state=None, batch_size: int | None = None,
                  return_samples: bool = False) -> BootstrapPLS:
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
    s1 = np.zeros((p, k))
    s2 = np.zeros((p, k))
    n_valid = 0
    samples = np.empty((n_boot, p, k)) if return_samples else None
    for start in range(0, n_boot, bs):
        idx = indices[start:start + bs]
        C = np.zeros((len(idx), n))
        np.add.at(C, (np.repeat(np.arange(len(idx)), n), idx.ravel()), 1.0)
        o = _engine(X0, X2, Y0, C, k, bool(scale), sign_ref=ref, full=False)
        w = o["w"]
        if samples is not None:
            samples[start:start + len(idx)] = w
        good = np.isfinite(w).all(axis=(1, 2))
        d = w[good] - ref  # deviations from the full fit: a stable one-pass variance
        s1 += d.sum(axis=0)
        s2 += (d * d).sum(axis=0)
        n_valid += int(good.sum())
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


def _folds(cv, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    if isinstance(cv, str) and cv.lower() == "loo":
        return [np.array([i]) for i in range(n)]
    if isinstance(cv, (int, np.integer)) and not isinstance(cv, bool) and 2 <= cv <= n:
        order = rng.permutation(n)
        return [np.sort(f) for f in np.array_split(order, int(cv))]
    raise InputError(f"cv must be 'loo' or an integer number of folds between 2 and n_subjects={n}, "
                     f"got {cv!r}")


def _cv_predict(X0, X2, Y0, folds, k, scale, bs):
    """Out-of-sample predictions for a batch of Y copies: Y0 (n, q) or (B, n, q) -> same shape."""
    n = X0.shape[0]
    Yb = Y0[None] if Y0.ndim == 2 else Y0
    B, F = Yb.shape[0], len(folds)
    masks = np.ones((F, n))
    for f, test in enumerate(folds):
        masks[f, test] = 0.0
    pred = np.empty_like(Yb)
    per = max(1, bs // F)
    for start in range(0, B, per):
        Ys = Yb[start:start + per]
        m = len(Ys)
        C = np.tile(masks, (m, 1))
        o = _engine(X0, X2, np.repeat(Ys, F, axis=0), C, k, scale, full=True)
        coef = _coef_scaled(o)  # (m F, p, q) standardised
        Xs = (X0[None] - o["mx"][:, None, :]) / o["sx"][:, None, :]
        yhat = (Xs @ coef) * o["sy"][:, None, :] + o["my"][:, None, :]
        yhat = yhat.reshape(m, F, n, -1)
        for f, test in enumerate(folds):
            pred[start:start + m, test] = yhat[:, f, test]
    return pred


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
        null_r = np.empty((n_perm, Ya.shape[1]))
        per = max(1, bs // len(folds))
        for start in range(0, n_perm, per):
            Yp = Y0[perms[start:start + per]]
            null_r[start:start + len(Yp)] = _corr_cols(_cv_predict(X0, X2, Yp, folds, k, bool(scale), bs), Yp)
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
                 scale: bool = True) -> ClinicalPLSResult:
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
                           random_state=streams[0])
    boot = pls_bootstrap(X, Y, n_components=n_components, n_boot=n_boot, scale=scale,
                         random_state=streams[1])
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
