"""The mass-univariate OLS engine: one design, fitted independently to every voxel or region.

Voxel-wise (VBM) and regional analyses both reduce to a data matrix ``Y`` of shape
``(n_subjects, n_features)`` and a design ``X`` of shape ``(n_subjects, n_regressors)``.
:class:`MassUnivariateGLM` fits ``Y[:, j] = X @ beta_j + e_j`` for every feature ``j`` at once,
in chunks of features, with the Moore-Penrose pseudo-inverse of ``X`` (rank-deficient designs are
allowed; only estimable contrasts are accepted). :func:`fit_glm` is its functional twin.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import special
from threadpoolctl import threadpool_limits

from graymatter.errors import ContrastError, DesignError, GraymatterWarning, InputError
from graymatter.stats._tails import _f_logsf, _t_tail
from graymatter.stats._threads import resolve_n_jobs, run_batch

__all__ = ["MassUnivariateGLM", "TContrastResult", "FContrastResult", "fit_glm"]

logger = logging.getLogger("graymatter")

# A chunk of this many bytes (per working array) stays in the CPU cache for the three passes
# (GEMM, GEMM, residual sum of squares); measured ~25% faster than 32 MB chunks and it bounds
# the engine's temporary memory to a few chunk-sized arrays whatever the data size.
_CHUNK_BYTES = 4_000_000
_MIN_CHUNK = 1024
# A contrast is estimable when it lies in the row space of X up to this relative tolerance.
_ESTIMABLE_RTOL = 1e-8


def _plural(k: int, one: str, many: str) -> str:
    return f"{k:,} {one if k == 1 else many}"


def _svd_rank_pinv(X: np.ndarray) -> tuple[int, np.ndarray, np.ndarray, float]:
    """Rank, pseudo-inverse ``(p, n)``, row-space basis ``(rank, p)`` and condition number of X.

    The rank tolerance is numpy's ``matrix_rank`` default (``s_max * max(n, p) * eps``), also used
    to truncate the pseudo-inverse so that rank and pinv always agree.
    """
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    tol = (s[0] if s.size else 0.0) * max(X.shape) * np.finfo(np.float64).eps
    r = int(np.sum(s > tol))
    pinv = (Vt[:r].T / s[:r]) @ U[:, :r].T
    cond = float(s[0] / s[r - 1]) if r else np.inf
    return r, pinv, Vt[:r], cond


def _fit_chunk(Yc, Pw, Xw, XtXw, zero_rtol: float, const_rtol: float | None):
    """Betas, RSS and the exclusion flags (non-finite, exact fit, constant) of one chunk of Y.

    ``const_rtol`` None checks every column for a constant; else only columns whose relative RSS
    is below it (a design spanning the constants fits those almost exactly).
    """
    if Yc.dtype != Xw.dtype:
        Yc = Yc.astype(Xw.dtype)  # per-chunk conversion only
    B = Pw @ Yc  # (p, c)
    R = Xw @ B
    np.subtract(Yc, R, out=R)  # residuals in place: one (n, c) temporary per chunk
    r = np.einsum("ij,ij->j", R, R)
    # NaN/inf anywhere in a column makes its RSS non-finite, so only those few columns need the
    # exact (costly) finiteness check; overflow is told apart by that check.
    nonfinite = np.zeros(r.size, dtype=bool)
    suspect = np.flatnonzero(~np.isfinite(r))
    if suspect.size:
        nonfinite[suspect] = ~np.isfinite(Yc[:, suspect]).all(axis=0)
    # ||y||² = RSS + b'X'X b, so the relative-RSS test costs no extra pass over Yc.
    ss = r + np.einsum("ij,ij->j", XtXw @ B, B)
    exact = r <= zero_rtol * ss
    if const_rtol is None:
        constant = Yc.max(axis=0) == Yc.min(axis=0)
    else:
        constant = np.zeros(r.size, dtype=bool)
        cand = np.flatnonzero(r <= const_rtol * ss)
        if cand.size:
            Ys = Yc[:, cand]
            constant[cand] = Ys.max(axis=0) == Ys.min(axis=0)
    return B, r, nonfinite, exact, constant


class _Result:
    """Shared ``maps`` / ``to_frame`` of the contrast results (``_COLUMNS`` in output order)."""

    _COLUMNS: ClassVar[tuple[str, ...]]
    _INTS: ClassVar[tuple[str, ...]]

    def maps(self) -> dict[str, np.ndarray]:
        """Return ``{name: (n_features,) float64 array}`` of every statistic, for writing images."""
        return {k: getattr(self, k) for k in self._COLUMNS if k not in self._INTS}

    def to_frame(self, index=None) -> pd.DataFrame:
        """Return one row per feature, one column per statistic (plus degrees of freedom).

        ``index`` defaults to the feature names (columns of a DataFrame ``Y``), else 0..m-1.
        """
        first = getattr(self, self._COLUMNS[0])
        cols = {k: np.full(first.shape, getattr(self, k), dtype=np.int64) if k in self._INTS
                else getattr(self, k) for k in self._COLUMNS}
        return pd.DataFrame(cols, index=self.index if index is None else index)


@dataclass(frozen=True, eq=False)
class TContrastResult(_Result):
    """Statistics of one t contrast ``c' beta`` at every feature.

    Attributes
    ----------
    estimate, se, t : ndarray of shape (n_features,)
        Contrast estimate ``c' beta``, its standard error and ``t = estimate / se``.
    p, p_one_sided : ndarray of shape (n_features,)
        Two-sided p-value; one-sided p-value for H1: ``c' beta > 0``.
    z : ndarray of shape (n_features,)
        Signed normal deviate with the same one-sided tail probability as ``t``, from log tail
        probabilities so it stays exact (and finite) where ``p`` underflows.
    partial_r2 : ndarray of shape (n_features,)
        ``t² / (t² + df)``.
    cohens_d : ndarray of shape (n_features,)
        Standardised effect, see :meth:`MassUnivariateGLM.t_contrast`.
    df : int
        Residual degrees of freedom.
    contrast : ndarray of shape (n_regressors,) or None
    index : pandas.Index or None
        Feature names, the default index of :meth:`to_frame`.

    Arrays are float64 and NaN at features excluded from the model.
    """

    estimate: np.ndarray
    se: np.ndarray
    t: np.ndarray
    p: np.ndarray
    p_one_sided: np.ndarray
    z: np.ndarray
    partial_r2: np.ndarray
    cohens_d: np.ndarray
    df: int
    contrast: np.ndarray | None = None
    index: pd.Index | None = None
    kind: ClassVar[str] = "t"
    _COLUMNS: ClassVar[tuple[str, ...]] = ("estimate", "se", "t", "df", "p", "p_one_sided", "z",
                                           "partial_r2", "cohens_d")
    _INTS: ClassVar[tuple[str, ...]] = ("df",)


@dataclass(frozen=True, eq=False)
class FContrastResult(_Result):
    """Statistics of one F contrast (H0: ``C beta = 0``) at every feature.

    Attributes
    ----------
    f, p : ndarray of shape (n_features,)
        F statistic and its upper-tail p-value on ``(df_num, df_den)`` degrees of freedom.
    z : ndarray of shape (n_features,)
        Normal deviate with the same upper-tail probability (log space, exact for large F).
    partial_r2 : ndarray of shape (n_features,)
        ``F df_num / (F df_num + df_den)``.
    df_num, df_den : int
        Rank of the contrast and residual degrees of freedom.
    contrast : ndarray of shape (n_rows, n_regressors) or None
    index : pandas.Index or None
        Feature names, the default index of :meth:`to_frame`.
    """

    f: np.ndarray
    p: np.ndarray
    z: np.ndarray
    partial_r2: np.ndarray
    df_num: int
    df_den: int
    contrast: np.ndarray | None = None
    index: pd.Index | None = None
    kind: ClassVar[str] = "F"
    _COLUMNS: ClassVar[tuple[str, ...]] = ("f", "df_num", "df_den", "p", "z", "partial_r2")
    _INTS: ClassVar[tuple[str, ...]] = ("df_num", "df_den")


class MassUnivariateGLM:
    """Ordinary least squares fitted independently to every feature (voxel or region) with one design.

    Parameters
    ----------
    chunk_size : int, optional
        Features processed per chunk. Default: about 4 MB of working dtype per chunk
        (``max(1024, 4e6 // (itemsize * n_subjects))``), which is cache-friendly and keeps the
        temporary memory a few MB whatever the number of features.
    dtype : str or numpy.dtype, default="float64"
        Precision of the matrix products. ``"float32"`` halves memory traffic at the cost of
        ~1e-6 relative accuracy; fitted parameters and all statistics are stored as float64.

    Attributes
    ----------
    betas_ : ndarray of shape (n_regressors, n_features)
        Least-squares coefficients (minimum-norm when ``X`` is rank-deficient); NaN at excluded features.
    sigma2_ : ndarray of shape (n_features,)
        Residual variance ``RSS / df_resid``; NaN at excluded features.
    df_resid_ : int
        ``n_subjects - rank_``.
    rank_ : int
        Numerical rank of the design.
    valid_ : ndarray of shape (n_features,), bool
        Features that entered the model.
    n_nan_features_, n_constant_features_, n_zero_variance_features_ : int
        Features excluded because they contain NaN/inf, are constant across subjects, or are
        fitted exactly by the design (zero residual variance), in that order of precedence.
    n_features_ : int
        Number of features.
    design_ : ndarray of shape (n_subjects, n_regressors)
        Float64 copy of the design.
    feature_names_, regressor_names_ : pandas.Index or None
        Column names of ``Y`` / ``X`` when they were DataFrames.
    """

    def __init__(self, *, chunk_size: int | None = None, dtype: str | np.dtype = "float64"):
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise InputError(f"dtype must be float32 or float64, got {self.dtype}.")
        if chunk_size is not None and int(chunk_size) < 1:
            raise InputError(f"chunk_size must be a positive integer, got {chunk_size}.")
        self.chunk_size = None if chunk_size is None else int(chunk_size)

    # ------------------------------------------------------------------ fitting
    def fit(self, Y, X) -> MassUnivariateGLM:
        """Fit the model to every column of ``Y``.

        Parameters
        ----------
        Y : array-like of shape (n_subjects, n_features)
            Data; never copied as a whole (only chunks are converted to the working dtype), so
            memory-mapped arrays work. DataFrame columns become ``feature_names_``.
        X : array-like of shape (n_subjects, n_regressors)
            Finite design matrix; rank-deficient designs are allowed.

        Returns
        -------
        self

        Raises
        ------
        InputError
            ``Y`` or ``X`` is not 2-D, their row counts differ, or ``X`` is not finite.
        DesignError
            The design leaves no residual degrees of freedom.

        Warns
        -----
        GraymatterWarning
            When features are excluded (NaN/inf, constant, zero residual variance); their statistics are NaN.
        """
        self.feature_names_ = Y.columns if isinstance(Y, pd.DataFrame) else None
        self.regressor_names_ = X.columns if isinstance(X, pd.DataFrame) else None
        Y = np.asarray(Y)  # no copy for ndarrays / memmaps
        try:
            Xf = np.array(X, dtype=np.float64)  # a private copy: the caller may mutate theirs
        except (TypeError, ValueError) as exc:
            raise InputError(f"The design matrix X must be numeric: {exc}") from exc
        if Y.ndim != 2 or Xf.ndim != 2:
            raise InputError(f"Y must be 2-D (n_subjects, n_features) and X 2-D (n_subjects, "
                             f"n_regressors); got Y with shape {Y.shape} and X with shape {Xf.shape}.")
        if Y.shape[0] != Xf.shape[0]:
            raise InputError(f"Y and X must have one row per subject, but Y has shape {Y.shape} and "
                             f"X has shape {Xf.shape} ({Y.shape[0]} vs {Xf.shape[0]} rows).")
        if not (np.issubdtype(Y.dtype, np.number) or Y.dtype == bool):
            raise InputError(f"Y must be numeric, got dtype {Y.dtype}.")
        if not np.isfinite(Xf).all():
            bad = np.unique(np.nonzero(~np.isfinite(Xf))[1]).tolist()
            raise InputError(f"The design matrix X contains NaN or infinite values (columns {bad}); "
                             "remove or impute those subjects first.")
        n, p = Xf.shape
        m = Y.shape[1]
        rank, pinv, row_basis, cond = _svd_rank_pinv(Xf)
        if n - rank < 1:
            raise DesignError(f"The design has {n} subjects and rank {rank}, leaving {n - rank} residual "
                              "degrees of freedom; at least 1 is needed. Use fewer regressors or more subjects.")
        self.design_, self.rank_, self.df_resid_, self.n_features_ = Xf, rank, n - rank, m
        self._pinv, self._row_basis = pinv, row_basis
        self._xtx_pinv = pinv @ pinv.T  # (X'X)^+ = X^+ X^+'

        wd = self.dtype
        chunk = self.chunk_size or max(_MIN_CHUNK, _CHUNK_BYTES // (wd.itemsize * n))
        # Exact fits leave rounding noise ~ eps * cond(X) in the residuals, not zero; anything below
        # this relative RSS is treated as zero residual variance (no real data fits that well).
        rel_sd = min(max(10 * np.finfo(wd).eps * cond * np.sqrt(n), 1e-10), 1e-4)
        zero_rtol = rel_sd**2
        Xw, Pw = Xf.astype(wd), pinv.astype(wd)
        XtXw = (Xf.T @ Xf).astype(wd)
        const_rtol = self._constant_rss_bound(Xw, Pw)
        screen = const_rtol < 1e-2  # False when X does not span constants: check every column
        betas = np.empty((p, m), dtype=np.float64)
        rss = np.empty(m, dtype=np.float64)
        nonfinite = np.zeros(m, dtype=bool)
        constant = np.zeros(m, dtype=bool)
        exact = np.zeros(m, dtype=bool)

        def fit_chunks(first: int, stop: int) -> None:  # chunks [first, stop), into their slices
            with np.errstate(invalid="ignore", over="ignore"):  # errstate is per thread
                for start in range(first * chunk, min(stop * chunk, m), chunk):
                    sl = slice(start, min(start + chunk, m))
                    betas[:, sl], rss[sl], nonfinite[sl], exact[sl], constant[sl] = _fit_chunk(
                        Y[:, sl], Pw, Xw, XtXw, zero_rtol, const_rtol if screen else None)

        # From the main thread, chunks go to one thread per CPU with one BLAS thread each: a
        # chunk's products are too small to split, and BLAS threads that wait on each other at
        # every chunk made the fit ~9x slower on shared cores (measured). From a worker thread
        # (one chunk at a time) the process-wide BLAS setting is left alone, so that limits
        # entered and left by concurrent threads cannot leave it lowered.
        main = threading.current_thread() is threading.main_thread()
        with threadpool_limits(1, user_api="blas") if main else contextlib.nullcontext():
            run_batch(fit_chunks, -(-m // chunk), resolve_n_jobs(None))
        nonfinite |= ~np.isfinite(rss)  # also values so large (> ~1e154) that their squares overflow
        constant &= ~nonfinite
        exact &= ~(nonfinite | constant)
        valid = ~(nonfinite | constant | exact)
        betas[:, ~valid] = np.nan
        sigma2 = rss / self.df_resid_
        sigma2[~valid] = np.nan
        self.betas_, self.sigma2_, self.valid_ = betas, sigma2, valid
        self.n_nan_features_ = int(nonfinite.sum())
        self.n_constant_features_ = int(constant.sum())
        self.n_zero_variance_features_ = int(exact.sum())
        self._warn_excluded()
        logger.debug("GLM fitted: %d subjects, %d regressors (rank %d), %d features in chunks of %d, "
                     "%d excluded", n, p, rank, m, chunk, m - int(valid.sum()))
        return self

    @staticmethod
    def _constant_rss_bound(Xw: np.ndarray, Pw: np.ndarray) -> float:
        """Upper bound of ``RSS / ||y||²`` as computed for any constant column ``y``.

        A constant ``y = k 1`` leaves the residual ``k (1 - X P 1)`` (the design's defect at
        representing constants, zero when X spans them) plus GEMM rounding, bounded elementwise by
        ``gamma (|X| |P| |y| + |y|)`` with ``gamma = 2 (n + p) eps``. Columns above 100x this bound
        cannot be constant, which spares a min/max pass over the data (~15% of the fit time).
        """
        n, p = Xw.shape
        ones = np.ones(n)
        Xd, Pd = Xw.astype(np.float64), Pw.astype(np.float64)
        defect = np.linalg.norm(ones - Xd @ (Pd @ ones)) / np.sqrt(n)
        gemm = 2 * (n + p) * np.finfo(Xw.dtype).eps * ((np.abs(Xd) @ (np.abs(Pd) @ ones)).max() + 1)
        return float(100 * (defect + gemm) ** 2)

    def _warn_excluded(self) -> None:
        parts = []
        if self.n_nan_features_:
            parts.append(_plural(self.n_nan_features_, "contains", "contain") + " NaN or infinite values")
        if self.n_constant_features_:
            parts.append(_plural(self.n_constant_features_, "is", "are") + " constant across subjects")
        if self.n_zero_variance_features_:
            parts.append(_plural(self.n_zero_variance_features_, "has", "have")
                         + " zero residual variance (fitted exactly by the design)")
        if parts:
            k = self.n_features_ - int(self.valid_.sum())
            warnings.warn(f"{k:,} of {self.n_features_:,} features excluded from the model: "
                          f"{', '.join(parts)}; their statistics are NaN.", GraymatterWarning, stacklevel=3)

    # ---------------------------------------------------------------- contrasts
    def _check_contrast(self, C, what: str) -> np.ndarray:
        if not hasattr(self, "betas_"):
            raise RuntimeError("MassUnivariateGLM is not fitted yet; call fit(Y, X) first.")
        p = self.design_.shape[1]
        try:
            C = np.array(C, dtype=np.float64, ndmin=2)
        except (TypeError, ValueError) as exc:
            raise ContrastError(f"The {what} must be numeric: {exc}") from exc
        if C.ndim != 2 or C.shape[1] != p or C.shape[0] < 1:
            raise ContrastError(f"The {what} must have one weight per design column: expected {p} "
                                f"columns, got shape {C.shape}.")
        if not np.isfinite(C).all() or not np.abs(C).sum(axis=1).all():
            raise ContrastError(f"The {what} has NaN, infinite or all-zero weights: {C.tolist()}.")
        # Estimable iff every row lies in the row space of X (c = c X^+ X).
        resid = C - (C @ self._row_basis.T) @ self._row_basis
        bad = np.linalg.norm(resid, axis=1) > _ESTIMABLE_RTOL * np.maximum(1.0, np.linalg.norm(C, axis=1))
        if bad.any():
            rows = "" if C.shape[0] == 1 else f" (rows {np.flatnonzero(bad).tolist()})"
            raise ContrastError(f"The {what}{rows} is not estimable: the design is rank-deficient "
                                f"(rank {self.rank_} < {p} columns) and the contrast is not a combination "
                                "of estimable effects. Test differences the design can identify, or drop "
                                "redundant columns.")
        return C

    def t_contrast(self, c) -> TContrastResult:
        """Test one linear combination ``c' beta`` at every feature.

        Parameters
        ----------
        c : array-like of shape (n_regressors,) or (1, n_regressors)
            Estimable contrast weights (else :class:`ContrastError`, as for a wrong length).

        Returns
        -------
        TContrastResult
            ``cohens_d = (c' beta / s) / sigma``, where ``s`` is the sum of the positive weights of
            ``c`` (if it has none, the sum of the magnitudes of its negative weights) and ``sigma``
            the residual SD. Hence ``A + B - C - D`` gives the standardised difference between the
            mean of cells A, B and that of C, D; ``A - B`` on cell-mean columns is Cohen's d adjusted
            for the covariates (pooled residual SD); a covariate's slope gives SD units per unit.
        """
        C = self._check_contrast(c, "t contrast")
        if C.shape[0] != 1:
            raise ContrastError(f"A t contrast is one row of weights, got shape {C.shape}; "
                                "use f_contrast for several rows.")
        c = C[0]
        df = self.df_resid_
        estimate = c @ self.betas_
        sd = np.sqrt(self.sigma2_)
        se = sd * np.sqrt(float(c @ self._xtx_pinv @ c))
        with np.errstate(divide="ignore", invalid="ignore"):
            t = estimate / se
            # One tail serves both p-values and z; its log stays exact far beyond float underflow.
            tail, log_tail = _t_tail(np.abs(t), df)
            p = np.minimum(2.0 * tail, 1.0)
            p_one = np.where(t >= 0, tail, -np.expm1(log_tail))
            z = np.sign(t) * -special.ndtri_exp(log_tail) + 0.0  # + 0.0 turns -0.0 into 0.0
            partial_r2 = t * t / (t * t + df)
            positive = c[c > 0].sum()
            scale = positive if positive > 0 else -c[c < 0].sum()
            cohens_d = estimate / scale / sd
        return TContrastResult(estimate=estimate, se=se, t=t, p=p, p_one_sided=p_one, z=z,
                               partial_r2=partial_r2, cohens_d=cohens_d, df=df, contrast=c,
                               index=self.feature_names_)

    def f_contrast(self, C) -> FContrastResult:
        """Test H0: ``C beta = 0`` jointly at every feature.

        ``F = (C b)' [C (X'X)^+ C']^+ (C b) / (q sigma²)`` with ``q = rank(C (X'X)^+ C')``: redundant
        rows are allowed and do not count (as in statsmodels' ``f_test``).

        Parameters
        ----------
        C : array-like of shape (n_rows, n_regressors)
            Contrast matrix; every row must be estimable.

        Returns
        -------
        FContrastResult
        """
        C = self._check_contrast(C, "F contrast")
        M = C @ self._xtx_pinv @ C.T
        q = int(np.linalg.matrix_rank(M))
        est = C @ self.betas_  # (rows, m)
        quad = np.einsum("im,im->m", est, np.linalg.pinv(M, hermitian=True) @ est)
        df = self.df_resid_
        with np.errstate(divide="ignore", invalid="ignore"):
            f = quad / (q * self.sigma2_)
            log_tail = _f_logsf(f, q, df)
            p = np.exp(log_tail)
            z = -special.ndtri_exp(log_tail)
            partial_r2 = f * q / (f * q + df)
        return FContrastResult(f=f, p=p, z=z, partial_r2=partial_r2, df_num=q, df_den=df,
                               contrast=C, index=self.feature_names_)

    def contrast(self, contrast) -> TContrastResult | FContrastResult:
        """Evaluate a contrast object with ``.kind`` in {"t", "F"} and ``.matrix`` of shape (q, p)."""
        kind = getattr(contrast, "kind", None)
        matrix = getattr(contrast, "matrix", None)
        if kind not in ("t", "F") or matrix is None:
            raise ContrastError(f"Expected a contrast with .kind 't' or 'F' and a .matrix, got {contrast!r}.")
        return self.t_contrast(matrix) if kind == "t" else self.f_contrast(matrix)

    # ---------------------------------------------------------------- residuals
    def residuals(self, Y, *, standardized: bool = False, chunk_size: int | None = None) -> np.ndarray:
        """Residuals ``Y - X beta`` of the fitted model, e.g. for smoothness estimation.

        Parameters
        ----------
        Y : array-like of shape (n_subjects, n_features)
            The data the model was fitted to (same rows and columns); read chunk by chunk.
        standardized : bool, default=False
            Divide each feature's residuals by its residual SD ``sqrt(RSS / df_resid_)``, as SPM's
            ``spm_spm`` writes its ``ResI`` images; each column then has sum of squares ``df_resid_``.
        chunk_size : int, optional
            Features per chunk; default as for the fit.

        Returns
        -------
        residuals : (n_subjects, n_features) numpy.ndarray of float64
            NaN in the columns of features excluded from the model (``~valid_``).

        Raises
        ------
        InputError
            ``Y`` does not have the fitted shape, or its residual sums of squares differ from the
            fitted ones (it is not the data the model was fitted to).

        Examples
        --------
        >>> rng = np.random.default_rng(0)
        >>> X = np.column_stack([np.ones(20), rng.normal(size=20)])
        >>> Y = rng.normal(size=(20, 5))
        >>> model = MassUnivariateGLM().fit(Y, X)
        >>> E = model.residuals(Y, standardized=True)
        >>> np.allclose((E**2).sum(axis=0), model.df_resid_)
        True
        """
        if not hasattr(self, "betas_"):
            raise RuntimeError("MassUnivariateGLM is not fitted yet; call fit(Y, X) first.")
        Y = np.asarray(Y)
        n, m = self.design_.shape[0], self.n_features_
        if Y.shape != (n, m):
            raise InputError(f"Y must be the data the model was fitted to, of shape ({n}, {m}) "
                             f"(n_subjects, n_features); got shape {Y.shape}.")
        if chunk_size is not None and int(chunk_size) < 1:
            raise InputError(f"chunk_size must be a positive integer, got {chunk_size}.")
        chunk = int(chunk_size or self.chunk_size or max(_MIN_CHUNK, _CHUNK_BYTES // (8 * n)))
        out = np.empty((n, m), dtype=np.float64)
        X, df = self.design_, self.df_resid_
        # The fitted RSS was accumulated in the working dtype: allow its rounding, nothing more.
        rtol = 1e-6 if self.dtype == np.float64 else 1e-3
        gamma = 10 * (n + X.shape[1]) * np.finfo(self.dtype).eps
        bad: list[int] = []
        with np.errstate(invalid="ignore", over="ignore"):
            for start in range(0, m, chunk):
                sl = slice(start, min(start + chunk, m))
                valid = self.valid_[sl]
                F = X @ np.where(valid, self.betas_[:, sl], 0.0)  # fitted values
                R = np.asarray(Y[:, sl], dtype=np.float64) - F
                R[:, ~valid] = np.nan
                rss = np.einsum("ij,ij->j", R, R)
                fitted = self.sigma2_[sl] * df
                ssy = rss + np.einsum("ij,ij->j", F, F)  # ||y||², the scale of rounding errors
                off = valid & ~(np.abs(rss - fitted) <= rtol * fitted + gamma * ssy)
                if off.any():
                    bad.extend((start + np.flatnonzero(off)[:5]).tolist())
                if standardized:
                    R /= np.sqrt(self.sigma2_[sl])
                out[:, sl] = R
        if bad:
            raise InputError(f"Y is not the data this model was fitted to: the residual sum of squares "
                             f"of features {bad[:5]} differs from the fitted one. Pass the same Y "
                             "(same subjects in the same order, same features) as to fit().")
        return out


def fit_glm(Y, X, contrasts: Sequence = (), *, chunk_size: int | None = None,
            dtype: str | np.dtype = "float64"):
    """Fit :class:`MassUnivariateGLM` and evaluate contrasts in one call.

    Parameters
    ----------
    Y : array-like of shape (n_subjects, n_features)
    X : array-like of shape (n_subjects, n_regressors)
    contrasts : sequence
        Each item is a contrast object (``.kind`` and ``.matrix``), a 1-D array of shape
        (n_regressors,) (t contrast) or a 2-D array of shape (q, n_regressors) (F contrast).
    chunk_size, dtype
        As for :class:`MassUnivariateGLM`.

    Returns
    -------
    model : MassUnivariateGLM
    results : list of TContrastResult or FContrastResult, in the order of ``contrasts``
    """
    model = MassUnivariateGLM(chunk_size=chunk_size, dtype=dtype).fit(Y, X)
    results = []
    for con in contrasts:
        if hasattr(con, "kind"):
            results.append(model.contrast(con))
        elif np.ndim(con) == 1:
            results.append(model.t_contrast(con))
        else:
            results.append(model.f_contrast(con))
    return model, results
