"""Multiple-comparison corrections: Benjamini–Hochberg FDR and family-wise p from a max-statistic null.

:func:`fwe_p_from_null` is the one counting rule of every permutation p-value in graymatter:
``p = (1 + #{null >= observed}) / (1 + n_perm)``, the observed statistic counting as one of the
equally likely relabellings, so a p-value is never 0 (Phipson & Smyth 2010).
"""

from __future__ import annotations

import numpy as np

from graymatter.errors import InputError

__all__ = ["fdr_bh", "fwe_p_from_null"]

# A null value within this relative distance below the observed statistic counts as a tie: the same
# relabelling computed along two numerical paths (the GLM's observed statistic, the permutation
# engine's batched GEMMs) can differ in the last bits, and an exact tie must count as ">=".
TIE_RTOL = 1e-10


def fdr_bh(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (q-values), ignoring NaNs.

    ``q_(i) = min_{j >= i} min(1, m p_(j) / j)`` over the ``m`` non-NaN p-values sorted
    ascending; a feature is declared at FDR level ``alpha`` when ``q <= alpha``. Equal to
    ``statsmodels.stats.multitest.multipletests(p, method="fdr_bh")[1]`` on the non-NaN values.

    Parameters
    ----------
    p : array-like of any shape
        p-values in [0, 1]; NaN marks features that were not tested (they stay NaN and do not
        count in ``m``).

    Returns
    -------
    q : ndarray of the same shape as ``p``, float64

    Raises
    ------
    InputError
        If a p-value is outside [0, 1] or infinite.

    Examples
    --------
    >>> fdr_bh(np.array([0.01, 0.04, np.nan, 0.03]))
    array([0.03, 0.04,  nan, 0.04])
    """
    p = np.asarray(p, dtype=np.float64)
    flat = p.ravel()
    ok = ~np.isnan(flat)
    vals = flat[ok]
    bad = (vals < 0) | (vals > 1)
    if bad.any():
        raise InputError(f"fdr_bh: p-values must lie in [0, 1]; found {int(bad.sum())} outside it "
                         f"(e.g. {vals[bad][0]!r}). Pass p-values, not statistics or -log10 p.")
    q = np.full(flat.shape, np.nan)
    m = vals.size
    if m:
        order = np.argsort(vals, kind="stable")
        scaled = vals[order] * m / np.arange(1, m + 1)
        # Step-up: the running minimum from the largest p down makes q monotone in p.
        scaled = np.minimum.accumulate(scaled[::-1])[::-1]
        out = np.empty(m)
        out[order] = np.minimum(scaled, 1.0)
        q[ok] = out
    return q.reshape(p.shape)


def fwe_p_from_null(observed, null_max) -> np.ndarray:
    """Family-wise corrected p-values from a null distribution of per-permutation maxima.

    ``p = (1 + #{null_max >= observed}) / (1 + n_perm)``, vectorised by a binary search in the
    sorted null. Null values within a relative ``1e-10`` below ``observed`` count as ties (the same
    relabelling computed along two numerical paths differs in the last bits).

    Parameters
    ----------
    observed : array-like of any shape
        Observed statistics (voxel t, cluster mass, TFCE, ...) on the same scale as the null;
        NaN gives NaN.
    null_max : (n_perm,) array-like
        Maximum of the statistic over the whole map in each permutation (not counting the
        unpermuted data).

    Returns
    -------
    p : ndarray of the same shape as ``observed``, float64
        In ``[1 / (1 + n_perm), 1]``, never 0.

    Raises
    ------
    InputError
        If ``null_max`` is empty, not 1-D or contains NaN.

    Examples
    --------
    >>> fwe_p_from_null([3.0, 10.0], [1.0, 2.0, 3.0, 3.0])
    array([0.6, 0.2])
    """
    null = np.asarray(null_max, dtype=np.float64)
    if null.ndim != 1 or null.size == 0:
        raise InputError(f"null_max must be a non-empty 1-D array of per-permutation maxima, got "
                         f"shape {null.shape}.")
    if np.isnan(null).any():
        raise InputError(f"null_max contains {int(np.isnan(null).sum())} NaN value(s); every "
                         "permutation must give a maximum (use 0 when a map has nothing).")
    obs = np.asarray(observed, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        thr = np.where(np.isinf(obs), obs, obs - TIE_RTOL * np.abs(obs))
    ordered = np.sort(null)
    with np.errstate(invalid="ignore"):
        n_ge = null.size - np.searchsorted(ordered, np.where(np.isnan(thr), np.inf, thr), side="left")
    p = (1.0 + n_ge) / (1.0 + null.size)
    return np.where(np.isnan(obs), np.nan, p)
