"""Voxel-level FWE p-values and height thresholds as SPM12 reports them: RFT floored by Bonferroni.

Random field theory (:mod:`graymatter.stats.rft`, SPM's ``spm_P_RF``/``spm_uc_RF``) is one valid
bound on the family-wise error of a voxel; Bonferroni over the ``S`` voxels of the search volume
(``spm_P_Bonf``/``spm_uc_Bonf``) is another. SPM12's ``spm_P`` (for a peak: one cluster, extent 0)
and ``spm_uc`` report the smaller p-value and the lower height threshold of the two, so at low
smoothness, or far in the tail, the Bonferroni value is the one reported. Cluster-level p-values
are RFT alone, as in SPM (Bonferroni has no cluster-size counterpart).

- Bonferroni p of a height ``u``: ``min(1, S P(STAT > u))`` (t: ``P(T_df > u)``; F:
  ``P(F_{df1, df2} > u)``).
- Bonferroni height at ``alpha``: the ``1 - alpha / S`` quantile of the statistic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as _dist

from graymatter.errors import InputError
from graymatter.stats.rft import (Smoothness, _as_height, _check_smoothness, _check_stat,
                                  ec_densities, height_threshold_fwe, peak_p_fwe)

__all__ = ["VoxelFWE", "FWEThreshold", "bonferroni_p", "bonferroni_height", "voxel_fwe",
           "voxel_height_fwe"]

RFT, BONFERRONI = "RFT", "Bonferroni"


def _n_voxels(n_voxels) -> int:
    try:
        ok = np.ndim(n_voxels) == 0 and float(n_voxels) >= 1 and float(n_voxels) == int(n_voxels)
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise InputError(f"n_voxels (voxels in the search volume, for the Bonferroni bound) must "
                         f"be a whole number >= 1; got {n_voxels!r}. Use Smoothness.n_voxels "
                         "from estimate_smoothness.")
    return int(n_voxels)


def bonferroni_p(u, n_voxels: int, *, df, stat: str = "T") -> np.ndarray:
    """Bonferroni FWE p-value of height(s) ``u`` over ``n_voxels`` voxels (SPM12 ``spm_P_Bonf``).

    Parameters
    ----------
    u : float or array-like
        Statistic value(s).
    n_voxels : int
        Voxels in the search volume (SPM's ``S``).
    df : int, (int, int) or None
        Residual df for ``"T"``, ``(df_num, df_den)`` for ``"F"``, ignored for ``"Z"``.
    stat : {"T", "Z", "F"}, default="T"

    Returns
    -------
    p : numpy.ndarray of the shape of ``u``
        ``min(1, n_voxels * P(STAT > u))``.

    Examples
    --------
    >>> float(np.round(bonferroni_p(7.24, 235375, df=28), 5))
    0.00824
    """
    S = _n_voxels(n_voxels)
    tail = ec_densities(_as_height(u, "u"), df, stat=stat)[0]  # rho_0 is P(STAT > u)
    return np.minimum(1.0, S * tail)


def bonferroni_height(alpha, n_voxels: int, *, df, stat: str = "T") -> float:
    """Bonferroni height threshold: the statistic exceeded with probability ``alpha / n_voxels``.

    SPM12 ``spm_uc_Bonf`` (for one contrast): ``spm_u(alpha / S, df, STAT)``.

    Parameters
    ----------
    alpha : float
        FWE rate in (0, 1).
    n_voxels : int
        Voxels in the search volume.
    df, stat
        As for :func:`bonferroni_p`.

    Returns
    -------
    u : float

    Examples
    --------
    >>> round(bonferroni_height(0.05, 235375, df=28), 3)
    6.548
    """
    if not np.isscalar(alpha) or not np.isfinite(alpha) or not 0 < alpha < 1:
        raise InputError(f"alpha must be a probability in (0, 1), e.g. 0.05; got {alpha!r}.")
    q = alpha / _n_voxels(n_voxels)
    stat, dfc = _check_stat(stat, df)
    if stat == "Z":
        return float(_dist.norm.isf(q))
    if stat == "T":
        return float(_dist.t.isf(q, dfc))
    return float(_dist.f.isf(q, *dfc))


@dataclass(frozen=True, eq=False)  # eq=False: ndarray fields do not compare as a tuple
class VoxelFWE:
    """Voxel-level FWE p-values: RFT, Bonferroni and the smaller of the two (what SPM reports).

    Attributes
    ----------
    p : numpy.ndarray
        ``min(p_rft, p_bonferroni)``.
    p_rft : numpy.ndarray
        Random field theory alone (:func:`graymatter.stats.rft.peak_p_fwe`).
    p_bonferroni : numpy.ndarray
        Bonferroni over the search volume's voxels (:func:`bonferroni_p`).
    """

    p: np.ndarray
    p_rft: np.ndarray
    p_bonferroni: np.ndarray

    @property
    def method(self) -> np.ndarray:
        """``"Bonferroni"`` where it is strictly smaller than RFT, else ``"RFT"`` (per value)."""
        return np.where(self.p_bonferroni < self.p_rft, BONFERRONI, RFT)


@dataclass(frozen=True)
class FWEThreshold:
    """Voxel-level FWE height threshold: the lower of the RFT and Bonferroni thresholds.

    Attributes
    ----------
    alpha : float
        FWE rate.
    u : float
        ``min(u_rft, u_bonferroni)``, the threshold SPM12's ``spm_uc`` reports.
    u_rft : float
        Random field theory alone (:func:`graymatter.stats.rft.height_threshold_fwe`).
    u_bonferroni : float
        Bonferroni over ``n_voxels`` voxels (:func:`bonferroni_height`).
    n_voxels : int
        Voxels in the search volume.
    """

    alpha: float
    u: float
    u_rft: float
    u_bonferroni: float
    n_voxels: int

    @property
    def method(self) -> str:
        """``"Bonferroni"`` when its threshold is strictly lower than RFT's, else ``"RFT"``."""
        return BONFERRONI if self.u_bonferroni < self.u_rft else RFT

    def to_dict(self) -> dict:
        """JSON-able fields plus ``method`` (for provenance)."""
        return {"alpha": float(self.alpha), "u": float(self.u), "u_rft": float(self.u_rft),
                "u_bonferroni": float(self.u_bonferroni), "n_voxels": int(self.n_voxels),
                "method": self.method}


def voxel_fwe(u, smoothness: Smoothness, *, df, stat: str = "T") -> VoxelFWE:
    """Voxel-level FWE p-values as SPM12 reports them (``spm_P(1, 0, u, df, STAT, R, 1, S)``).

    The smaller of the random field theory p-value (``1 - exp(-E[EC](u))``, Worsley et al.,
    1996) and the Bonferroni p-value over the ``smoothness.n_voxels`` voxels of the search volume.

    Parameters
    ----------
    u : float or array-like
        Peak or voxel height(s) as statistic values.
    smoothness : Smoothness
        From :func:`graymatter.stats.rft.estimate_smoothness`; its ``resels`` give the RFT p and
        its ``n_voxels`` the Bonferroni p.
    df : int, (int, int) or None
        As for :func:`graymatter.stats.rft.ec_densities`.
    stat : {"T", "Z", "F"}, default="T"

    Returns
    -------
    VoxelFWE
        ``p`` (the reported value), ``p_rft``, ``p_bonferroni`` and ``method`` per value.

    Raises
    ------
    InputError
        Not a Smoothness, bad ``df``/``stat``, or ``smoothness.n_voxels`` < 1.

    Examples
    --------
    >>> from graymatter.stats.rft import resel_counts
    >>> s = Smoothness(np.full(3, 4.0), np.full(3, 8.0), 64.0,
    ...                resel_counts(np.ones((40, 40, 40), bool), [4, 4, 4]), 64000)
    >>> fwe = voxel_fwe([5.0, 7.0], s, df=30)  # Bonferroni wins far in the tail
    >>> fwe.method.tolist(), bool(np.all(fwe.p <= fwe.p_rft))
    (['RFT', 'Bonferroni'], True)
    """
    _check_smoothness(smoothness)
    p_bonf = bonferroni_p(u, smoothness.n_voxels, df=df, stat=stat)
    p_rft = peak_p_fwe(u, smoothness, df=df, stat=stat)
    return VoxelFWE(p=np.minimum(p_rft, p_bonf), p_rft=p_rft, p_bonferroni=p_bonf)


def voxel_height_fwe(alpha, smoothness: Smoothness, *, df, stat: str = "T") -> FWEThreshold:
    """FWE-corrected height threshold as SPM12's ``spm_uc``: the lower of RFT and Bonferroni.

    Parameters
    ----------
    alpha : float
        FWE rate in (0, 1), e.g. 0.05.
    smoothness : Smoothness
    df : int, (int, int) or None
    stat : {"T", "Z", "F"}, default="T"

    Returns
    -------
    FWEThreshold
        ``u`` (the threshold), ``u_rft``, ``u_bonferroni`` and ``method``.

    Raises
    ------
    InputError
        As :func:`graymatter.stats.rft.height_threshold_fwe` and :func:`bonferroni_height`.

    Examples
    --------
    >>> from graymatter.stats.rft import resel_counts
    >>> s = Smoothness(np.full(3, 4.0), np.full(3, 8.0), 64.0,
    ...                resel_counts(np.ones((40, 40, 40), bool), [4, 4, 4]), 64000)
    >>> thr = voxel_height_fwe(0.05, s, df=None, stat="Z")
    >>> round(thr.u, 3), thr.method
    (4.644, 'RFT')
    """
    _check_smoothness(smoothness)
    u_bonf = bonferroni_height(alpha, smoothness.n_voxels, df=df, stat=stat)
    u_rft = height_threshold_fwe(alpha, smoothness, df=df, stat=stat)
    return FWEThreshold(alpha=float(alpha), u=min(u_rft, u_bonf), u_rft=u_rft,
                        u_bonferroni=u_bonf, n_voxels=int(smoothness.n_voxels))
