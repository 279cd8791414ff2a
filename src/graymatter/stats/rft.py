"""Random field theory (RFT) inference for voxel maps, as in SPM12.

A statistic image that is a smooth random field is corrected for multiple comparisons through the
expected Euler characteristic (EC) of its excursion set above a height ``u`` (Worsley et al.,
1996, Hum Brain Mapp 4:58-73): ``E[EC] = sum_d R_d rho_d(u)``, where ``R_0..R_3`` are the resel
counts of the search volume and ``rho_d`` the EC densities of the statistic. This module ports,
formula for formula, SPM12's

- ``spm_est_smoothness.m`` -- smoothness (FWHM) from the residuals' spatial derivatives
  (Kiebel et al., 1999, NeuroImage 10:756-766; Worsley, 1996 unbiased roughness estimator);
- ``spm_resels_vol.c`` -- resel counts of the mask from its voxels, edges, faces and cubes;
- ``spm_ECdensity.m`` -- EC densities of Z, T and F fields (Worsley et al., 1996, Table 2);
- ``spm_P_RF.m`` -- corrected peak and cluster p-values (Friston et al., 1994, Hum Brain Mapp
  1:210-220, for the cluster-size distribution; Poisson clumping for the number of clusters);
- ``spm_uc_RF.m`` -- the FWE-corrected height threshold.

SPM reports the smaller of these and the Bonferroni values (``spm_P``, ``spm_uc``); that floor is
in :mod:`graymatter.stats.voxel_fwe`.

Caveats: RFT assumes a smooth, stationary field on a lattice fine relative to its FWHM. At low
smoothness (FWHM < ~3 voxels) peak inference is conservative; cluster inference with a low
cluster-forming threshold (e.g. p < 0.01) is anti-conservative, especially for T fields with few
degrees of freedom and non-stationary (non-Gaussian-autocorrelated) data (Hayasaka & Nichols,
2003, NeuroImage 20:2343-2356; Eklund et al., 2016, PNAS 113:7900-7905). Prefer a cluster-forming
threshold of p < 0.001 (Z > 3.09) or permutation inference.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from graymatter.errors import InputError

__all__ = ["Smoothness", "estimate_smoothness", "resel_counts", "ec_densities", "peak_p_fwe",
           "cluster_p_fwe", "cluster_p_unc", "height_threshold_fwe"]

logger = logging.getLogger("graymatter")

_FOUR_LN2 = 4.0 * np.log(2.0)
_EPS = np.finfo(np.float64).eps  # SPM floors EC densities (and E[clusters]) at MATLAB's eps
_STATS = ("T", "Z", "F")


@dataclass(frozen=True, eq=False)  # eq=False: ndarray fields do not compare as a tuple
class Smoothness:
    """Global smoothness of a residual field and the resel counts of its search volume.

    Attributes
    ----------
    fwhm_vox : (3,) numpy.ndarray of float
        FWHM in voxels along the grid axes i, j, k.
    fwhm_mm : (3,) numpy.ndarray of float
        FWHM in mm: ``fwhm_vox`` times the voxel sizes (column norms of the affine).
    resel_size_vox : float
        Voxels per resel, ``prod(fwhm_vox)``.
    resels : (4,) numpy.ndarray of float
        Resel counts ``R0..R3`` of the search volume, as ``spm_resels_vol``.
    n_voxels : int
        Voxels in the search volume.
    """

    fwhm_vox: np.ndarray
    fwhm_mm: np.ndarray
    resel_size_vox: float
    resels: np.ndarray
    n_voxels: int

    def to_dict(self) -> dict:
        """Return the fields as JSON-able Python numbers and lists (for provenance and reports)."""
        return {"fwhm_vox": [float(v) for v in self.fwhm_vox],
                "fwhm_mm": [float(v) for v in self.fwhm_mm],
                "resel_size_vox": float(self.resel_size_vox),
                "resels": [float(v) for v in self.resels],
                "n_voxels": int(self.n_voxels)}


# --------------------------------------------------------------------------- smoothness
def _neighbour_index(index: np.ndarray, axis: int) -> np.ndarray:
    """Column of the next voxel (+1 along ``axis``) of every mask voxel, -1 where there is none."""
    nxt = np.full(index.shape, -1, dtype=np.int64)
    src = [slice(None)] * 3
    dst = [slice(None)] * 3
    src[axis], dst[axis] = slice(1, None), slice(None, -1)
    nxt[tuple(dst)] = index[tuple(src)]
    return nxt[index >= 0]


def estimate_smoothness(residuals, grid, *, df: int) -> Smoothness:
    """Estimate the global FWHM of the residual field and the resel counts of the mask, like SPM.

    Port of SPM12 ``spm_est_smoothness.m`` (Kiebel et al., 1999; Worsley, 1996). At each voxel,
    ``Lambda = sum_scans grad(u) grad(u)'`` with ``u = e / ||e||`` the residuals normalised by
    their root sum of squares and ``grad`` the forward differences to the next voxel along i, j
    and k. This is SPM's small-sample (df) correction: SPM averages the outer products of the
    standardised residuals ``e / sqrt(RSS / df)`` over the ``n`` scans and multiplies by
    ``n / df``, which is the same quantity. Then, as SPM, ``resel_xyz = sqrt(diag(Lambda) / 4ln2)``
    and ``resel_img = sqrt(det(Lambda) / (4ln2)^3)`` are averaged over voxels and
    ``FWHM = 1 / (resel_img^(1/3) resel_xyz / prod(resel_xyz)^(1/3))``: FWHM components in the
    ratio of the axis roughnesses, scaled so that ``1 / prod(FWHM)`` is the mean resels per voxel.

    Parameters
    ----------
    residuals : (n_subjects, n_voxels) array-like
        Residuals (raw or standardised: each voxel is normalised here) of all ``n`` subjects, in
        the grid's voxel order (``data[mask]``), e.g.
        ``MassUnivariateGLM.residuals(Y, standardized=True)``. Voxels whose residuals are not
        finite or are all zero (features excluded from the model) are left out of the estimate
        and of the search volume.
    grid : graymatter.io.images.MaskedGrid
        The voxel grid and mask of the residuals.
    df : int
        Residual degrees of freedom of the model (``1 <= df <= n_subjects``).

    Returns
    -------
    Smoothness

    Raises
    ------
    InputError
        Fewer than 2 subjects, ``df`` out of range, a shape that does not match the grid, or a mask
        without neighbouring voxel pairs (with usable residuals) along some axis.

    Notes
    -----
    Differences are taken only between two voxels that are both in the mask (SPM's residual
    images are NaN outside the mask; SPM also takes a zero difference at the last voxel of the
    image, where here the pair is simply missing). The determinant needs all three differences,
    so the mean is over voxels whose three forward neighbours are in the mask.

    Examples
    --------
    >>> from graymatter.io.images import MaskedGrid
    >>> from scipy.ndimage import gaussian_filter
    >>> rng = np.random.default_rng(0)
    >>> grid = MaskedGrid(np.ones((24, 24, 24), bool), np.eye(4) * [2, 2, 2, 1])
    >>> sigma = 4 / np.sqrt(8 * np.log(2))  # FWHM 4 voxels
    >>> E = np.stack([gaussian_filter(rng.normal(size=grid.shape), sigma)[grid.mask]
    ...               for _ in range(10)])
    >>> s = estimate_smoothness(E - E.mean(axis=0), grid, df=9)
    >>> bool(np.all(np.abs(s.fwhm_vox - 4) < 1))
    True
    """
    mask = getattr(grid, "mask", None)
    if mask is None or getattr(grid, "affine", None) is None:
        raise InputError(f"grid must be a MaskedGrid (mask and affine); got {type(grid).__name__}.")
    E = np.asarray(residuals, dtype=np.float64)
    if E.ndim != 2 or E.shape[1] != grid.n_voxels:
        raise InputError(f"residuals must have shape (n_subjects, n_voxels) = (n, {grid.n_voxels}) "
                         f"for this grid's mask; got shape {E.shape}. Pass the residuals in the "
                         "grid's voxel order (data[mask]).")
    n = E.shape[0]
    if n < 2:
        raise InputError(f"residuals have {n} row(s); smoothness needs the residuals of at least 2 "
                         "subjects.")
    try:
        ok = np.ndim(df) == 0 and bool(np.isfinite(df) and 1 <= df <= n)
    except TypeError:
        ok = False
    if not ok:
        raise InputError(f"df (residual degrees of freedom) must be a number between 1 and the "
                         f"number of subjects ({n}); got {df!r}. Use the fitted model's df_resid_.")

    with np.errstate(invalid="ignore", over="ignore"):
        ss = np.einsum("ij,ij->j", E, E)
    usable = np.isfinite(ss) & (ss > 0)  # SPM: isnan(ssq) | ssq < sqrt(eps) are left out
    scale = np.where(usable, 1.0 / np.sqrt(np.where(usable, ss, 1.0)), 0.0)  # u = e / ||e||

    index = np.full(grid.shape, -1, dtype=np.int64)
    index[grid.mask] = np.arange(grid.n_voxels)
    index[grid.mask] = np.where(usable, index[grid.mask], -1)
    here = index[index >= 0]
    nxt = []
    for axis in range(3):
        nb = _neighbour_index(index, axis)
        if not np.any(nb >= 0):
            raise InputError(
                f"The mask has no pair of neighbouring voxels along axis {axis} (grid shape "
                f"{grid.shape}, {int(usable.sum())} voxels with usable residuals), so the "
                "smoothness along it cannot be estimated. Use a 3-D mask at least 2 voxels thick "
                "along every axis.")
        nxt.append(nb)
    nxt = np.stack(nxt)  # (3, n_usable)
    keep = np.all(nxt >= 0, axis=0)
    if not keep.any():
        raise InputError("No mask voxel has in-mask neighbours along all three axes, so the "
                         "smoothness cannot be estimated; use a thicker 3-D mask.")
    cols, nxt = here[keep], nxt[:, keep]

    # Lambda per voxel, accumulated over subjects: (xx, yy, zz, xy, xz, yz).
    L = np.zeros((6, cols.size))
    rows = max(1, 2_000_000 // E.shape[1])  # subjects per chunk: temporaries of ~16 MB each
    for start in range(0, n, rows):
        Uc = np.where(usable, E[start:start + rows], 0.0) * scale
        base = Uc[:, cols]
        dx, dy, dz = (Uc[:, nxt[a]] - base for a in range(3))
        for k, (a, b) in enumerate(((dx, dx), (dy, dy), (dz, dz), (dx, dy), (dx, dz), (dy, dz))):
            L[k] += np.einsum("ij,ij->j", a, b)
    xx, yy, zz, xy, xz, yz = L
    det = xx * yy * zz + 2 * xy * yz * xz - xx * yz**2 - xy**2 * zz - xz**2 * yy
    resel_img = np.sqrt(np.maximum(det, 0.0) / _FOUR_LN2**3).mean()
    resel_xyz = np.sqrt(L[:3] / _FOUR_LN2).mean(axis=1)
    if resel_img <= 0 or np.any(resel_xyz <= 0):
        raise InputError("The residuals do not vary between neighbouring voxels along some axis "
                         f"(mean roughness per axis {resel_xyz.tolist()}), so no finite FWHM can be "
                         "estimated. Check that the residuals are in the grid's voxel order.")
    resel = resel_img ** (1 / 3) * resel_xyz / np.prod(resel_xyz) ** (1 / 3)
    fwhm_vox = 1.0 / resel

    search = np.zeros(grid.shape, dtype=bool)
    search[grid.mask] = usable
    voxel_mm = np.sqrt((np.asarray(grid.affine)[:3, :3] ** 2).sum(axis=0))
    out = Smoothness(fwhm_vox=fwhm_vox, fwhm_mm=fwhm_vox * voxel_mm,
                     resel_size_vox=float(np.prod(fwhm_vox)),
                     resels=resel_counts(search, fwhm_vox), n_voxels=int(usable.sum()))
    logger.debug("Smoothness from %d subjects (df %s) over %d voxels: FWHM %s voxels, resels %s",
                 n, df, cols.size, np.round(fwhm_vox, 3).tolist(), np.round(out.resels, 2).tolist())
    return out


def resel_counts(mask: np.ndarray, fwhm_vox) -> np.ndarray:
    """Resel counts ``R0..R3`` of a search volume, a port of SPM12 ``spm_resels_vol.c``.

    The mask is a union of voxel-lattice points; counting its points ``P``, edges ``E_i`` (pairs of
    neighbours along axis i), faces ``F_ij`` (2x2 squares) and cubes ``C`` (2x2x2) gives
    (Worsley et al., 1996)::

        R0 = P - (Ex + Ey + Ez) + (Fxy + Fxz + Fyz) - C             (Euler characteristic)
        R1 = (Ex - Fxy - Fxz + C)/FWx + (Ey - Fxy - Fyz + C)/FWy + (Ez - Fxz - Fyz + C)/FWz
        R2 = (Fxy - C)/(FWx FWy) + (Fxz - C)/(FWx FWz) + (Fyz - C)/(FWy FWz)
        R3 = C / (FWx FWy FWz)

    so an ``a x b x c`` box has ``R0 = 1``, ``R1 = (a-1)/FWx + (b-1)/FWy + (c-1)/FWz``, ...,
    ``R3 = (a-1)(b-1)(c-1) / prod(FW)``.

    Parameters
    ----------
    mask : (X, Y, Z) array-like of bool
        Search volume (non-zero, finite values are in it).
    fwhm_vox : (3,) array-like of float
        FWHM in voxels along each axis.

    Returns
    -------
    resels : (4,) numpy.ndarray of float

    Examples
    --------
    >>> resel_counts(np.ones((11, 21, 31), bool), [2, 2, 2])
    array([  1.,  30., 275., 750.])
    """
    m = np.asarray(mask)
    if m.ndim != 3:
        raise InputError(f"mask must be a 3-D array; got shape {m.shape}.")
    with np.errstate(invalid="ignore"):
        m = np.isfinite(m) & (m != 0) if m.dtype != bool else m
    fw = np.asarray(fwhm_vox, dtype=np.float64).ravel()
    if fw.shape != (3,) or not np.all(np.isfinite(fw) & (fw > 0)):
        raise InputError(f"fwhm_vox must be 3 positive finite numbers (FWHM in voxels along i, j, k); "
                         f"got {np.asarray(fwhm_vox).tolist()}.")
    r = 1.0 / fw
    x0, x1 = m[:-1], m[1:]  # pairs along i
    ex = np.count_nonzero(x0 & x1)
    ey = np.count_nonzero(m[:, :-1] & m[:, 1:])
    ez = np.count_nonzero(m[:, :, :-1] & m[:, :, 1:])
    sq_xy = x0[:, :-1] & x0[:, 1:] & x1[:, :-1] & x1[:, 1:]  # 2x2 squares in the (i, j) planes
    fxy = np.count_nonzero(sq_xy)
    fxz = np.count_nonzero(x0[:, :, :-1] & x0[:, :, 1:] & x1[:, :, :-1] & x1[:, :, 1:])
    fyz = np.count_nonzero(m[:, :-1, :-1] & m[:, :-1, 1:] & m[:, 1:, :-1] & m[:, 1:, 1:])
    c = np.count_nonzero(sq_xy[:, :, :-1] & sq_xy[:, :, 1:])
    p = np.count_nonzero(m)
    return np.array([
        p - (ex + ey + ez) + (fxy + fxz + fyz) - c,
        (ex - fxy - fxz + c) * r[0] + (ey - fxy - fyz + c) * r[1] + (ez - fxz - fyz + c) * r[2],
        (fxy - c) * r[0] * r[1] + (fxz - c) * r[0] * r[2] + (fyz - c) * r[1] * r[2],
        c * r[0] * r[1] * r[2],
    ], dtype=np.float64)


# --------------------------------------------------------------------------- EC densities
def _check_stat(stat: str, df):
    """Validate ``stat`` and ``df``; return ``df`` as None (Z), a float (T) or two floats (F)."""
    if not isinstance(stat, str) or stat.upper() not in _STATS:
        raise InputError(f"stat must be one of 'T', 'Z', 'F'; got {stat!r}.")
    stat = stat.upper()
    if stat == "Z":
        return stat, None
    if stat == "T":
        try:
            ok = np.ndim(df) == 0 and df is not None and bool(np.isfinite(df) and df >= 1)
        except TypeError:
            ok = False
        if not ok:
            raise InputError(f"df must be the residual degrees of freedom (a number >= 1) for a T "
                             f"field; got {df!r}.")
        return stat, float(df)
    try:
        dfs = np.asarray(df, dtype=np.float64) if df is not None else np.empty(0)
    except (TypeError, ValueError):
        dfs = np.empty(0)
    if dfs.shape != (2,) or not np.all(np.isfinite(dfs)) or dfs[0] < 1 or dfs[1] < 4:
        raise InputError(f"df must be (df_num, df_den) with df_num >= 1 and df_den >= 4 for an F "
                         f"field; got {df!r}.")
    return stat, (float(dfs[0]), float(dfs[1]))


def ec_densities(u, df: int | None, *, stat: str = "T") -> np.ndarray:
    """Euler characteristic densities ``rho_0..rho_3`` per resel at height(s) ``u``.

    Port of SPM12 ``spm_ECdensity.m`` (Worsley et al., 1996, Table 2), in resel units (hence the
    ``4 ln 2`` factors). ``rho_0`` is the upper tail probability of the statistic.

    Parameters
    ----------
    u : float or array-like
        Height(s) of the statistic (a statistic value, not a p-value).
    df : int, (int, int) or None
        Residual degrees of freedom (>= 1, non-integer allowed) for ``"T"``; ``(df_num, df_den)``
        with ``df_den >= 4`` for ``"F"``; ignored for ``"Z"``.
    stat : {"T", "Z", "F"}, default="T"

    Returns
    -------
    rho : numpy.ndarray of shape (4,) + shape of ``u``

    Examples
    --------
    >>> np.round(ec_densities(3.0, None, stat="Z"), 5)
    array([0.00135, 0.00294, 0.00587, 0.01039])
    """
    stat, df = _check_stat(stat, df)
    t = np.asarray(u, dtype=np.float64)
    out = np.empty((4,) + t.shape)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if stat == "Z":
            b = np.exp(-t**2 / 2)
            out[0] = special.ndtr(-t)
            out[1] = _FOUR_LN2**0.5 / (2 * np.pi) * b
            out[2] = _FOUR_LN2 / (2 * np.pi) ** 1.5 * b * t
            out[3] = _FOUR_LN2**1.5 / (2 * np.pi) ** 2 * b * (t**2 - 1)
        elif stat == "T":
            v = df
            b = special.poch(v / 2, 0.5)  # Gamma((v+1)/2) / Gamma(v/2), exact also for huge v
            c = (1 + t**2 / v) ** ((1 - v) / 2)
            out[0] = special.stdtr(v, -t)
            out[1] = _FOUR_LN2**0.5 / (2 * np.pi) * c
            out[2] = _FOUR_LN2 / (2 * np.pi) ** 1.5 * c * t / (v / 2) ** 0.5 * b
            out[3] = _FOUR_LN2**1.5 / (2 * np.pi) ** 2 * c * ((v - 1) * t**2 / v - 1)
        else:
            k, v = df
            a = _FOUR_LN2 / (2 * np.pi)
            b = special.gammaln(v / 2) + special.gammaln(k / 2)
            x = k * t / v
            tail = (1 + x) ** (-(v + k - 2) / 2)
            out[0] = special.fdtrc(k, v, t)
            out[1] = (a**0.5 * np.exp(special.gammaln((v + k - 1) / 2) - b) * 2**0.5
                      * x ** ((k - 1) / 2) * tail)
            out[2] = (a * np.exp(special.gammaln((v + k - 2) / 2) - b) * x ** ((k - 2) / 2) * tail
                      * ((v - 1) * x - (k - 1)))
            out[3] = (a**1.5 * np.exp(special.gammaln((v + k - 3) / 2) - b) * 2**-0.5
                      * x ** ((k - 3) / 2) * tail
                      * ((v - 1) * (v - 2) * x**2 - (2 * v * k - v - k - 1) * x + (k - 1) * (k - 2)))
            # An F field is non-negative: below 0 nothing is excluded (SPM leaves NaN/inf there).
            out[:, t <= 0] = np.array([1.0, 0.0, 0.0, 0.0])[:, None]
    return out


# --------------------------------------------------------------------------- p-values
def _check_smoothness(smoothness) -> np.ndarray:
    if not isinstance(smoothness, Smoothness):
        raise InputError(f"smoothness must be a Smoothness (from estimate_smoothness); got "
                         f"{type(smoothness).__name__}.")
    R = np.asarray(smoothness.resels, dtype=np.float64)
    if R.shape != (4,) or not np.all(np.isfinite(R)) or not np.any(R != 0):
        raise InputError(f"smoothness.resels must be 4 finite resel counts, not all zero; got "
                         f"{R.tolist()}.")
    return R


def _p_rf(k_resels, u, R, df, stat):
    """``spm_P_RF(1, k, u, df, STAT, R, 1)``: (corrected P, uncorrected p) for one cluster of k.

    ``k_resels`` and ``u`` broadcast. With one component (n = 1) SPM's ``triu(toeplitz(EC .* G))``
    reduces to ``EC .* G``, so ``E[maxima] = sum_d R_d rho_d``.
    """
    D = int(np.flatnonzero(R)[-1]) + 1  # SPM: D = find(R, 1, 'last')
    k, u = np.broadcast_arrays(np.asarray(k_resels, dtype=np.float64), np.asarray(u, dtype=np.float64))
    EC = np.maximum(ec_densities(u, df, stat=stat)[:D], _EPS)
    Ec = np.tensordot(R[:D], EC, axes=1)  # expected number of clusters (maxima)
    dim = D - 1
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if dim == 0:
            p = np.ones_like(Ec)
        else:
            Ek = EC[0] / EC[D - 1]  # E[resels per cluster] = EN / EM(D) = rho_0 R_D / (R_D rho_D)
            beta = (special.gamma(dim / 2 + 1) / Ek) ** (2 / dim)
            p = np.where(k == 0, 1.0, np.exp(-beta * k ** (2 / dim)))
        P = -np.expm1(-(Ec + _EPS) * p)  # Poisson clumping: P(at least one such cluster)
    return P, p


def _as_height(u, name: str) -> np.ndarray:
    try:
        return np.asarray(u, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be a statistic value or an array of them; got {u!r}.") from exc


def peak_p_fwe(u, smoothness: Smoothness, *, df: int, stat: str = "T") -> np.ndarray:
    """FWE-corrected p-value of a peak of height ``u``: ``spm_P_RF(1, 0, u, df, STAT, R, 1)``.

    ``P = 1 - exp(-E[EC](u))`` with ``E[EC] = sum_d R_d rho_d(u)`` (Worsley et al., 1996). This
    is RFT alone; SPM's ``spm_P`` reports the minimum with the Bonferroni p-value, which
    :func:`graymatter.stats.voxel_fwe.voxel_fwe` gives.

    Parameters
    ----------
    u : float or array-like
        Peak height(s) as statistic values (``height_t``/``height_z``, not a p-value).
    smoothness : Smoothness
    df : int, (int, int) or None
        As for :func:`ec_densities`.
    stat : {"T", "Z", "F"}, default="T"

    Returns
    -------
    p : numpy.ndarray of the shape of ``u``

    Examples
    --------
    >>> s = Smoothness(np.full(3, 4.0), np.full(3, 8.0), 64.0,
    ...                resel_counts(np.ones((40, 40, 40), bool), [4, 4, 4]), 64000)
    >>> float(np.round(peak_p_fwe(5.0, s, df=30), 4))
    0.3441
    """
    R = _check_smoothness(smoothness)
    return _p_rf(0.0, _as_height(u, "u"), R, df, stat)[0]


def _cluster(k_voxels, height, smoothness, df, stat):
    R = _check_smoothness(smoothness)
    k = np.asarray(k_voxels, dtype=np.float64)
    if np.any(k < 0) or not np.all(np.isfinite(k)):
        raise InputError(f"k_voxels must be non-negative cluster sizes in voxels; got {k_voxels!r}.")
    return _p_rf(k / smoothness.resel_size_vox, _as_height(height, "height"), R, df, stat)


def cluster_p_fwe(k_voxels, height, smoothness: Smoothness, *, df: int, stat: str = "T") -> np.ndarray:
    """FWE-corrected p-value of a cluster of ``k_voxels`` above the cluster-forming ``height``.

    ``spm_P_RF(1, k, u, df, STAT, R, 1)`` with ``k = k_voxels / resel_size_vox`` resels: the
    probability of at least one cluster of ``k`` resels or more, ``1 - exp(-E[clusters] p_unc)``
    (Friston et al., 1994; Worsley et al., 1996). As in SPM, ``k = 0`` gives the probability of
    any cluster at all (the peak FWE p-value at ``height``), not 1.

    Parameters
    ----------
    k_voxels : float or array-like
        Cluster size(s) in voxels.
    height : float or array-like
        Cluster-forming threshold as a statistic value (``height_t``/``height_z``); broadcasts
        with ``k_voxels``.
    smoothness : Smoothness
    df : int, (int, int) or None
        As for :func:`ec_densities`.
    stat : {"T", "Z", "F"}, default="T"

    Returns
    -------
    p : numpy.ndarray of the broadcast shape of ``k_voxels`` and ``height``

    Examples
    --------
    >>> s = Smoothness(np.full(3, 4.0), np.full(3, 8.0), 64.0,
    ...                resel_counts(np.ones((40, 40, 40), bool), [4, 4, 4]), 64000)
    >>> np.round(cluster_p_fwe([0, 100, 400], 3.1, s, df=30), 3)
    array([1.   , 0.024, 0.   ])
    """
    return _cluster(k_voxels, height, smoothness, df, stat)[0]


def cluster_p_unc(k_voxels, height, smoothness: Smoothness, *, df: int, stat: str = "T") -> np.ndarray:
    """Uncorrected p-value of a cluster size: ``p`` of ``spm_P_RF(1, k, u, ...)``.

    The probability that one cluster above ``height`` has ``k`` resels or more,
    ``exp(-beta k^(2/D))`` with ``beta = (Gamma(D/2 + 1) / E[k])^(2/D)`` (Friston et al., 1994);
    what SPM lists as the cluster's ``p(unc)``. ``k = 0`` gives 1.

    Parameters
    ----------
    k_voxels, height, smoothness, df, stat
        As for :func:`cluster_p_fwe`.

    Returns
    -------
    p : numpy.ndarray of the broadcast shape of ``k_voxels`` and ``height``

    Examples
    --------
    >>> s = Smoothness(np.full(3, 4.0), np.full(3, 8.0), 64.0,
    ...                resel_counts(np.ones((40, 40, 40), bool), [4, 4, 4]), 64000)
    >>> np.round(cluster_p_unc([0, 100], 3.1, s, df=30), 3)
    array([1.   , 0.001])
    """
    return _cluster(k_voxels, height, smoothness, df, stat)[1]


def height_threshold_fwe(alpha, smoothness: Smoothness, *, df: int, stat: str = "T") -> float:
    """Statistic value ``u`` at which :func:`peak_p_fwe` equals ``alpha`` (SPM12 ``spm_uc_RF``).

    SPM solves it by Newton steps; here Brent's method on ``peak_p_fwe(u) - alpha`` finds the same
    root (to 1e-10), starting from SPM's guess, the ``alpha / max(R)`` uncorrected threshold.
    This is RFT alone; SPM's ``spm_uc`` takes the lower of it and the Bonferroni threshold, as
    :func:`graymatter.stats.voxel_fwe.voxel_height_fwe` does.

    Parameters
    ----------
    alpha : float
        FWE rate in (0, 1), a p-value (``height_p``).
    smoothness : Smoothness
    df : int, (int, int) or None
        As for :func:`ec_densities`.
    stat : {"T", "Z", "F"}, default="T"

    Returns
    -------
    u : float
        The corrected height threshold as a statistic value.

    Raises
    ------
    InputError
        ``alpha`` outside (0, 1), or so large that no height reaches it in this search volume.

    Examples
    --------
    >>> s = Smoothness(np.full(3, 4.0), np.full(3, 8.0), 64.0,
    ...                resel_counts(np.ones((40, 40, 40), bool), [4, 4, 4]), 64000)
    >>> round(height_threshold_fwe(0.05, s, df=None, stat="Z"), 3)
    4.644
    """
    if not np.isscalar(alpha) or not np.isfinite(alpha) or not 0 < alpha < 1:
        raise InputError(f"alpha must be a probability in (0, 1), e.g. 0.05; got {alpha!r}.")
    R = _check_smoothness(smoothness)
    stat, dfc = _check_stat(stat, df)

    def f(u):
        return float(_p_rf(0.0, u, R, dfc, stat)[0]) - alpha

    if stat == "Z":
        u0 = float(special.ndtri(1 - min(alpha / R.max(), 0.5)))
    elif stat == "T":
        u0 = float(special.stdtrit(dfc, 1 - min(alpha / R.max(), 0.5)))
    else:
        u0 = float(special.fdtri(*dfc, 1 - min(alpha / R.max(), 0.5)))
    lo, hi = u0, u0 + 1.0
    while f(hi) > 0:
        lo, hi = hi, 2 * hi + 1
        if hi > 1e6:
            raise InputError(f"No height gives a corrected p-value as small as alpha={alpha}.")
    step = 1.0
    while f(lo) < 0:
        lo -= step
        step *= 2
        if lo < (0 if stat == "F" else -40):
            raise InputError(f"alpha={alpha} is larger than the corrected p-value of any height in "
                             f"this search volume (resels {R.tolist()}); use a smaller alpha.")
    return float(optimize.brentq(f, lo, hi, xtol=1e-10, rtol=1e-12))
