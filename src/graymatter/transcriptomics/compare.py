"""Correlation between two parcellated brain maps, tested against spatial null maps.

Like ``neuromaps.stats.compare_images(x, y, nulls=...)``: the observed correlation of ``x`` and
``y`` is compared with the correlations of ``y`` with null versions of ``x`` (spins, naive
permutations or surrogate maps).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np

from graymatter.errors import GraymatterWarning, InputError, format_choices

logger = logging.getLogger("graymatter")

METRICS = ("pearson", "spearman")


@dataclass(frozen=True, eq=False)
class MapComparison:
    """Result of :func:`compare_maps`.

    Attributes
    ----------
    r : float
        Observed correlation of ``x`` and ``y`` over the regions valid in both.
    p : float
        Permutation p-value, ``(1 + #{null more extreme than r}) / (1 + n_null)``; never 0.
    null : (n_null,) numpy.ndarray
        Correlation of ``y`` with each null map of ``x`` (NaN for a degenerate null map,
        e.g. constant; such maps are not counted).
    method : str
        The correlation metric used (``"pearson"`` or ``"spearman"``).
    n_null : int
        Number of null maps that entered the p-value.
    """

    r: float
    p: float
    null: np.ndarray
    method: str
    n_null: int


def _as_map(values, name: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be a numeric map (one value per region): {exc}") from exc
    arr = np.squeeze(arr) if arr.ndim > 1 else arr
    if arr.ndim != 1:
        raise InputError(f"{name} must be one-dimensional (n_regions,), got shape {arr.shape}")
    return arr


def _rank_columns(a: np.ndarray, valid: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(np.where(valid, a, np.nan), axis=0, nan_policy="omit")


def _masked_pearson(a: np.ndarray, b: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Pearson correlation of columns of ``a`` and ``b`` (n, k) over rows where ``valid``."""
    w = valid.astype(np.float64)
    n = w.sum(axis=0)
    a = np.where(valid, a, 0.0)
    b = np.where(valid, b, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ma = a.sum(axis=0) / n
        mb = b.sum(axis=0) / n
        da = (a - ma) * w
        db = (b - mb) * w
        r = (da * db).sum(axis=0) / np.sqrt((da * da).sum(axis=0) * (db * db).sum(axis=0))
    return np.clip(r, -1.0, 1.0)


def _correlate(x: np.ndarray, y: np.ndarray, valid: np.ndarray, metric: str) -> np.ndarray:
    if metric == "spearman":
        x = _rank_columns(x, valid)
        y = _rank_columns(y, valid)
    return _masked_pearson(x, y, valid)


def compare_maps(x, y, *, nulls: np.ndarray, metric="pearson", two_sided=True) -> MapComparison:
    """Correlate two regional maps and test the correlation against null maps of ``x``.

    Parameters
    ----------
    x : (n_regions,) array_like
        Map whose null versions are in ``nulls`` (e.g. a regional t-map). NaN = missing.
    y : (n_regions,) array_like
        The other map, same regions in the same order. NaN = missing.
    nulls : (n_regions, n_null) numpy.ndarray
        Either integer indices (from :func:`~graymatter.transcriptomics.nulls.spin_permutations`
        or :func:`~graymatter.transcriptomics.nulls.permutation_nulls`): null map ``k`` is
        ``x[nulls[:, k]]``; or float surrogate maps of ``x`` (e.g. Moran surrogates), one per
        column.
    metric : {"pearson", "spearman"}, default="pearson"
        Correlation computed for the observed maps and for every null map.
    two_sided : bool, default=True
        True: ``p = (1 + #{|null| >= |r|}) / (1 + n_null)``. False: one-sided test of a
        positive association, ``p = (1 + #{null >= r}) / (1 + n_null)``.

    Returns
    -------
    result : MapComparison
        ``r``, ``p``, the null correlations, the metric and the number of null maps used.

    Notes
    -----
    Regions missing (NaN) in ``x`` or ``y`` are dropped from the observed correlation and from
    every null correlation. A spin can move a missing region of ``x`` onto a kept region; that
    region then drops out of that one null correlation only (neuromaps does the same through
    ``nan_policy="omit"``). Null maps with a NaN correlation (fewer than 3 valid regions or a
    constant map) are excluded from the p-value with a warning.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(size=30), rng.normal(size=30)
    >>> nulls = np.stack([rng.permutation(30) for _ in range(99)], axis=1)
    >>> res = compare_maps(x, y, nulls=nulls)
    >>> 0 < res.p <= 1, res.n_null
    (True, 99)
    """
    if metric not in METRICS:
        raise InputError(f"metric={metric!r} is not supported; choose one of "
                         f"{format_choices(METRICS)}")
    x = _as_map(x, "x")
    y = _as_map(y, "y")
    if len(x) != len(y):
        raise InputError(f"maps have different lengths: x has {len(x)} regions, y has {len(y)}; "
                         "both must list the same regions in the same order")
    nulls = np.asarray(nulls)
    if nulls.ndim != 2 or nulls.shape[1] == 0:
        raise InputError(f"nulls must have shape (n_regions, n_null), got {nulls.shape}; build "
                         "them with spin_permutations or permutation_nulls")
    if nulls.shape[0] != len(x):
        raise InputError(f"nulls has {nulls.shape[0]} rows but the maps have {len(x)} regions; "
                         "build the nulls from the centroids of the same regions (in the same "
                         "order, left then right)")
    if np.issubdtype(nulls.dtype, np.integer):
        if nulls.min() < 0 or nulls.max() >= len(x):
            raise InputError(f"nulls indices must lie in 0..{len(x) - 1}, found "
                             f"{nulls.min()}..{nulls.max()}")
        null_maps = x[nulls]
    elif np.issubdtype(nulls.dtype, np.floating):
        null_maps = nulls.astype(np.float64, copy=False)
    else:
        raise InputError(f"nulls must be integer indices or float surrogate maps, got dtype "
                         f"{nulls.dtype}")

    keep = np.isfinite(x) & np.isfinite(y)
    if keep.sum() < 3:
        raise InputError(f"only {int(keep.sum())} regions have values in both x and y; a "
                         "correlation needs at least 3")
    if not keep.all():
        logger.info("compare_maps: %d of %d regions missing in x or y are dropped",
                    int((~keep).sum()), len(x))
    xk, yk = x[keep], y[keep]
    for name, values in (("x", xk), ("y", yk)):
        if np.ptp(values) == 0:
            raise InputError(f"map {name} is constant over the {len(values)} regions valid in "
                             "both maps; a correlation is undefined")
    r = float(_correlate(xk[:, None], yk[:, None], np.ones((len(xk), 1), bool), metric)[0])

    nk = null_maps[keep]
    valid = np.isfinite(nk)
    null = _correlate(nk, np.broadcast_to(yk[:, None], nk.shape), valid, metric)
    null[valid.sum(axis=0) < 3] = np.nan
    ok = np.isfinite(null)
    if not ok.all():
        warnings.warn(f"{int((~ok).sum())} of {len(null)} null maps give no correlation "
                      "(constant or fewer than 3 valid regions) and are not counted",
                      GraymatterWarning, stacklevel=2)
    used = null[ok]
    if two_sided:
        exceed = np.count_nonzero(np.abs(used) >= abs(r))
    else:
        exceed = np.count_nonzero(used >= r)
    p = (1.0 + exceed) / (1.0 + len(used))
    return MapComparison(r=r, p=float(p), null=null, method=metric, n_null=int(len(used)))
