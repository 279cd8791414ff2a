"""The batched PLS core behind :mod:`graymatter.stats.pls`: input checks and row-weighted fits.

A resample (bootstrap, permutation or CV fold) is the full data with *row weights* ``c``
(bootstrap counts, 0/1 fold masks, ones) and possibly permuted responses; centring, scaling,
``X'CY``, scores and loadings of a whole batch of resamples are then a few matrix products with
the original ``X``: ``(B, n) @ (n, p)``. Deflation of ``X`` is never materialised:
``X_a = X - sum_l t_l p_l'`` enters only through ``X_a w = X w - sum_l t_l (p_l'w)`` and
``X_a'Ct = X'Ct`` (scores are C-orthogonal). Memory per batch is bounded (``_batch``), so wide
``X`` (p >> n) works without forming anything of size ``p x p`` or ``B x n x p``.

The functions here work on arrays and are private; the result records of the resampling
(:class:`PermutationPLS`, :class:`BootstrapPLS`, :class:`CVResult`) are defined here and
published, with the public functions, by :mod:`graymatter.stats.pls`: import them from there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from graymatter.errors import InputError, format_choices
from graymatter.stats._pls_kernels import pls1_boot_rows

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
    if n_components == 1 and Xc.any():
        return 1  # rank >= 1 iff the largest singular value is > 0, i.e. Xc is not all zero
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


def _null_indices(permutations, n: int) -> np.ndarray:
    """Validate ``(n, n_null)`` row indices of null resamples; return them as ``(n_null, n)`` int32."""
    arr = np.asarray(permutations)
    if arr.ndim != 2 or arr.shape[0] != n or arr.shape[1] < 1:
        raise InputError(f"permutations must be an (n_subjects, n_null) = ({n}, n_null) array of row "
                         f"indices (column j reorders Y for null j), got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"permutations must hold integer row indices, got dtype {arr.dtype}")
    if arr.min() < 0 or arr.max() >= n:
        raise InputError(f"permutations must hold row indices in [0, {n - 1}], found values from "
                         f"{arr.min()} to {arr.max()}")
    return np.ascontiguousarray(arr.T, dtype=np.int32)


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


def _fit_arrays(Xa, Ya, k, scale) -> tuple[dict, np.ndarray, np.ndarray]:
    xs, ys = Xa.mean(axis=0), Ya.mean(axis=0)
    X0, Y0 = Xa - xs, Ya - ys
    out = _engine(X0, None, Y0, None, k, scale)
    return out, xs, ys


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


def _cv_null(X0, X2, Y0, perms, folds, k, scale, bs) -> np.ndarray:
    """``(n_perm, q)`` cross-validated r of the permuted responses ``Y0[perm]`` (same folds)."""
    null_r = np.empty((len(perms), Y0.shape[1]))
    per = max(1, bs // len(folds))
    for start in range(0, len(perms), per):
        Yp = Y0[perms[start:start + per]]
        null_r[start:start + len(Yp)] = _corr_cols(_cv_predict(X0, X2, Yp, folds, k, scale, bs), Yp)
    return null_r


def _batch_items(executor, shared, rows: np.ndarray, bs: int, *rest) -> list:
    """Items ``(handle, rows of one batch, *rest)`` with the data sent to the workers once."""
    handle = executor.share(shared)
    return [(handle, rows[start:start + bs], *rest) for start in range(0, len(rows), bs)]


def _permutation_null_task(item):
    (X0, Y0), perms, k, scale, bs = item
    return _permutation_null(X0, Y0, perms, k, scale, bs)


def _permutation_null(X0, Y0, perms, k: int, scale: bool, bs: int, executor=None):
    """Null ``(n_perm, k)`` shares of Y variance and ``(n_perm, q)`` r of refits to ``Y0[perm]``.

    With a parallel ``executor`` each batch is one task; the batches are the serial ones, so the
    nulls agree with a serial run to rounding (BLAS may use other thread counts on workers).
    """
    if executor is not None and executor.kind != "serial":
        parts = executor.map(_permutation_null_task,
                             _batch_items(executor, (X0, Y0), perms, bs, k, scale, bs),
                             desc="PLS nulls", unit="batch")
        return (np.concatenate([ev for ev, _ in parts]), np.concatenate([r for _, r in parts]))
    null_ev = np.empty((len(perms), k))
    null_r = np.empty((len(perms), Y0.shape[1]))
    for start in range(0, len(perms), bs):
        idx = perms[start:start + bs]
        Yp = Y0[idx]  # (B, n, q)
        o = _engine(X0, None, Yp, None, k, scale, full=True)
        null_ev[start:start + len(idx)] = o["evy"]
        fitted = o["t"] @ o["q"].transpose(0, 2, 1)
        null_r[start:start + len(idx)] = _corr_cols(fitted, Yp)
    return null_ev, null_r


def _bootstrap_task(item):
    (X0, X2, Y0), indices, ref, k, scale, bs, keep = item
    return _bootstrap_moments(X0, X2, Y0, indices, ref, k, scale, bs, keep=keep)


def _bootstrap_moments(X0, X2, Y0, indices, ref, k: int, scale: bool, bs: int, *, keep: bool,
                       executor=None):
    """Sums of deviations of bootstrap weights from ``ref`` (p, k): ``(s1, s2, n_valid, samples)``.

    Resample ``b`` draws rows ``indices[b]``; it is fitted as row weights (counts) on the full data.
    Resamples without finite weights (e.g. a constant response) are left out of the sums. With a
    parallel ``executor`` each batch is one task and the batch sums are added in batch order, as
    the serial loop adds them.
    """
    n_boot, n = indices.shape
    p = X0.shape[1]
    s1 = np.zeros((p, k))
    s2 = np.zeros((p, k))
    n_valid = 0
    if executor is not None and executor.kind != "serial":
        parts = executor.map(_bootstrap_task,
                             _batch_items(executor, (X0, X2, Y0), indices, bs, ref, k, scale, bs,
                                          keep),
                             desc="PLS bootstrap", unit="batch")
        for a1, a2, nv, _ in parts:
            s1 += a1
            s2 += a2
            n_valid += nv
        samples = np.concatenate([part[3] for part in parts]) if keep else None
        return s1, s2, n_valid, samples
    samples = np.empty((n_boot, p, k)) if keep else None
    pls1 = k == 1 and Y0.shape[1] == 1  # one weight vector: the fused path
    # the engine's floor of a constant column, once rather than per batch
    floor = 1e3 * np.finfo(float).eps * np.maximum(X2.mean(axis=0), np.finfo(float).tiny) \
        if pls1 and scale else None
    for start in range(0, n_boot, bs):
        idx = indices[start:start + bs]
        # bootstrap counts: C[b, i] = how often row i was drawn in resample b
        C = np.bincount((np.arange(len(idx))[:, None] * n + idx).ravel(),
                        minlength=len(idx) * n).reshape(len(idx), n).astype(np.float64)
        if pls1:
            w, a1, a2, nv = _pls1_boot_batch(X0, X2, Y0[:, 0], C, ref[:, 0], floor)
            w = w[:, :, None]
        else:
            w = _engine(X0, X2, Y0, C, k, scale, sign_ref=ref, full=False)["w"]
            good = np.isfinite(w).all(axis=(1, 2))
            d = w[good] - ref  # deviations from the full fit: a stable one-pass variance
            a1, a2, nv = d.sum(axis=0), (d * d).sum(axis=0), int(good.sum())
        if samples is not None:
            samples[start:start + len(idx)] = w
        s1 += a1.reshape(p, k)
        s2 += a2.reshape(p, k)
        n_valid += nv
    return s1, s2, n_valid, samples


def _pls1_boot_batch(X0, X2, y, C, ref, floor):
    """PLS1 weights of a batch of bootstrap resamples (row counts ``C``) and their deviation sums.

    The single-component, single-response case of ``_engine(..., full=False)`` with the same
    arithmetic, but with the three products over ``X`` in two matrix products and the rest fused
    in one numba pass per resample (:func:`graymatter.stats._pls_kernels.pls1_boot_rows`).
    ``floor`` is the engine's floor of a constant column; None means no scaling.

    Returns
    -------
    w : (B, p) weights; l1, l2 : (p,) sums of ``w_b - ref`` and its square over the valid
    resamples; n_valid : int.
    """
    B = C.shape[0]
    nb = C.sum(axis=1)
    yk = y - (C @ y / nb)[:, None]
    if floor is not None:
        vy = (C * yk * yk).sum(axis=1) / (nb - 1)
        yfloor = 1e3 * np.finfo(float).eps * max((y * y).mean(), 1e-300)
        yk /= np.where(vy > yfloor, np.sqrt(vy), 1.0)[:, None]
        S = np.concatenate([C, yk * C]) @ X0  # C X and X'C y_b in one product
        S1, A, S2 = S[:B], S[B:], C @ X2
    else:
        A = (yk * C) @ X0
        S1 = S2 = A  # not read without scaling
    l1 = np.zeros(X0.shape[1])
    l2 = np.zeros(X0.shape[1])
    n_valid = pls1_boot_rows(S1, S2, A, nb, floor if floor is not None else l1, ref,
                             floor is not None, l1, l2)
    return A, l1, l2, int(n_valid)


# ================================================================================ resampling results

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
