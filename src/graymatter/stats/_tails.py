"""Upper-tail probabilities of the t and F distributions for the GLM, exact beyond underflow.

p-values are scipy's own functions (``stdtr`` is what ``scipy.stats.t.sf`` evaluates); where a
tail probability underflows float64 (below ``_TINY``) its log is recomputed in log space by a
continued fraction, so z-scores stay finite and exact for any t or F.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from graymatter.stats._threads import resolve_n_jobs, run_batch

# Tail probabilities below this are recomputed in log space (float64 subnormals lose digits).
_TINY = 1e-300


def _log_betainc_tail(a: float, b: float, log_x: np.ndarray, log_1mx: np.ndarray) -> np.ndarray:
    """``log I_x(a, b)`` (regularised incomplete beta) in log space, for tiny ``I_x``.

    Continued fraction (modified Lentz, Numerical Recipes ``betacf``), used only where the tail
    probability underflows; there ``x < (a + 1) / (a + b + 2)``, where the fraction converges.
    """
    x, tiny = np.exp(log_x), 1e-300
    c = np.ones_like(x)
    d = 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / np.where(np.abs(d) < tiny, tiny, d)
    h = d.copy()
    for k in range(1, 10_000):
        for num in (k * (b - k) * x / ((a + 2 * k - 1) * (a + 2 * k)),
                    -(a + k) * (a + b + k) * x / ((a + 2 * k) * (a + 2 * k + 1))):
            d = 1.0 + num * d
            d = 1.0 / np.where(np.abs(d) < tiny, tiny, d)
            c = 1.0 + num / c
            c = np.where(np.abs(c) < tiny, tiny, c)
            h *= d * c
        if np.all(np.abs(d * c - 1.0) < 1e-15):
            break
    return a * log_x + b * log_1mx - np.log(a) - special.betaln(a, b) + np.log(h)


def _f_logsf(f: np.ndarray, dfn: int, dfd: int) -> np.ndarray:
    """``log P(F(dfn, dfd) > f)``, finite even where the probability underflows.

    scipy's ``f.logsf`` / ``t.logsf`` return -inf far in the tail (and ``f.logsf`` is ~8x slower
    than ``fdtrc``), so tails below ``_TINY`` are recomputed by :func:`_log_betainc_tail`.
    """
    with np.errstate(divide="ignore", over="ignore"):
        sf = special.fdtrc(dfn, dfd, f)
        out = np.log(sf)
    bad = np.flatnonzero((sf < _TINY) & np.isfinite(f))  # underflowed or subnormal (imprecise)
    if bad.size:  # P(F > f) = I_x(dfd/2, dfn/2) with x = dfd / (dfd + dfn f)
        fb = f[bad]
        log_1mx = -np.log1p(dfd / dfn / fb)
        out[bad] = _log_betainc_tail(dfd / 2, dfn / 2, np.log(dfd / dfn) - np.log(fb) + log_1mx, log_1mx)
    return out


def _t_tail(t: np.ndarray, df: int) -> tuple[np.ndarray, np.ndarray]:
    """``(P(T(df) > t), log P(T(df) > t))`` for ``t >= 0``, the log finite where P underflows.

    ``P`` is ``stdtr(df, -t)``, the very function behind ``scipy.stats.t.sf`` (and ~2.7x cheaper
    than the F form ``fdtrc(1, df, t²) / 2``). Below ``_TINY`` the log is recomputed in log space
    from ``P(T > t) = P(F(1, df) > t²) / 2`` (:func:`_f_logsf`) and ``P`` is its exp;
    ``|t| > 1e154`` (t² overflows) gives ``P = 0`` and log -inf, i.e. ``z = ±inf``.
    """
    t = np.ascontiguousarray(t, dtype=np.float64)
    tail = np.empty_like(t)

    def part(a: int, b: int) -> None:  # scipy's ufunc loops release the GIL
        special.stdtr(df, -t.ravel()[a:b], out=tail.ravel()[a:b])

    run_batch(part, t.size, resolve_n_jobs(None) if t.size >= 100_000 else 1)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        log_tail = np.log(tail)
        bad = np.flatnonzero((tail < _TINY) & np.isfinite(t))
        if bad.size:
            log_tail[bad] = np.log(0.5) + _f_logsf(t[bad] * t[bad], 1, df)
            tail[bad] = np.exp(log_tail[bad])
    return tail, log_tail
