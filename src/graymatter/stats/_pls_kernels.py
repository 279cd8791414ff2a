"""Numba kernel behind the PLS1 bootstrap of :mod:`graymatter.stats._pls_core`.

After the batch's matrix products (row-weighted sums ``C X``, ``C X²`` and the cross-products
``X'C y``), what is left per resample and gene is a handful of flops: the resample's standard
deviation of the gene, the scaled cross-product, the norm, the sign and the running sums of the
deviations from the full fit. In numpy that is some twenty passes over ``(B, p)`` arrays; here
it is two passes over one resample's row at a time, which stays in cache. The arithmetic of
each element is the one of :func:`graymatter.stats._pls_core._engine` (same operations in the
same order), so only the order of the sums over genes differs (rounding).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, error_model="numpy")
def pls1_boot_rows(S1, S2, A, nb, floor, ref, scale, l1, l2):
    """Turn row-weighted products into sign-aligned unit PLS1 weights; add up their deviations.

    Parameters
    ----------
    S1, S2 : (B, p) float64
        ``C X`` and ``C X²`` of the batch (unused when ``scale`` is false).
    A : (B, p) float64
        ``X'C y_b`` of each resample (weighted-centred, scaled response); overwritten by the
        weights ``w_b`` (NaN where the resample has no finite weights).
    nb : (B,) float64
        Sum of the row weights of each resample.
    floor : (p,) float64
        A variance at or below ``floor`` counts as constant (scale 1).
    ref : (p,) float64
        Full-fit weights: each ``w_b`` is flipped to a non-negative dot product with them.
    scale : bool
    l1, l2 : (p,) float64
        Receive ``sum_b (w_b - ref)`` and ``sum_b (w_b - ref)²`` over the valid resamples,
        added in row order.

    Returns
    -------
    int
        Number of valid resamples (all weights finite).
    """
    B, p = A.shape
    n_valid = 0
    for b in range(B):
        if scale:
            fac = nb[b] / (nb[b] - 1.0)
            for j in range(p):
                mx = S1[b, j] / nb[b]
                vx = (S2[b, j] / nb[b] - mx * mx) * fac
                if vx > floor[j]:
                    A[b, j] = A[b, j] / np.sqrt(max(vx, 0.0))
        ss = 0.0
        dot = 0.0
        for j in range(p):
            ss += A[b, j] * A[b, j]
            dot += A[b, j] * ref[j]
        norm = np.sqrt(ss)
        sgn = -1.0 if dot < 0.0 else 1.0
        good = True
        for j in range(p):
            w = (A[b, j] / norm) * sgn
            A[b, j] = w
            if not np.isfinite(w):
                good = False
        if not good:
            continue
        n_valid += 1
        for j in range(p):
            d = A[b, j] - ref[j]
            l1[j] += d
            l2[j] += d * d
    return n_valid
