"""Surrogate maps for parcels not on a sphere (e.g. subcortex): Moran and variogram-matched.

**Moran spectral randomisation** (:func:`moran_surrogates`), like BrainSpace's ``MoranRandomization(procedure="singleton")`` (Wagner & Dray 2015; Vos de Wael
et al. 2020): the map is expanded on the Moran eigenvectors of an inverse-distance weight matrix
between parcel centroids and the sign of every coefficient is flipped at random. Each surrogate
keeps the mean, the variance and Moran's I of the map exactly (and the autocorrelation at every
spatial scale of the eigen-decomposition). The weight matrix is ``n x n``: meant for parcels
(a limit of 5,000 regions is enforced), never for voxels.

**Variogram-matched surrogates** (:func:`variogram_surrogates`, Burt et al. 2020, NeuroImage
220:117038), following BrainSMASH's ``Base`` generator (murraylab/brainsmash,
``brainsmash/mapgen/base.py`` and ``kernels.py``): permute the map, smooth the permuted values
over the k nearest neighbours of each region for several neighbourhood sizes, and keep the
smoothing whose variogram, after a linear fit to the map's variogram, matches best. Here all
surrogates of a batch are smoothed with one matrix product per neighbourhood size, and their
variograms are computed together, instead of BrainSMASH's loop over surrogates. The ``n x n``
distance matrix limits this to parcellations (at most 1,000 regions).
"""

from __future__ import annotations

import numpy as np

from graymatter.errors import InputError

__all__ = ["moran_surrogates", "variogram_surrogates", "smoothed_variogram"]

MAX_REGIONS = 5000
MAX_VARIOGRAM_REGIONS = 1000
_KERNELS = ("exp", "gaussian", "invdist", "uniform")
_BLOCK = 64  # surrogates per batch: fixed, so results never depend on memory settings


def _moran_basis(coords: np.ndarray) -> np.ndarray:
    d = np.linalg.norm(coords[:, None, :] - coords[None, :, :], axis=-1)
    with np.errstate(divide="ignore"):
        w = np.where(d > 0, 1.0 / d, 0.0)
    w = (w + w.T) / 2
    n = len(w)
    centre = np.eye(n) - 1.0 / n
    _, vecs = np.linalg.eigh(centre @ w @ centre)
    # the constant vector is in the null space of the doubly-centred matrix: drop it, keep the
    # n - 1 vectors that span the centred maps (so a centred map is reconstructed exactly)
    const = np.argmax(np.abs(vecs.sum(axis=0)))
    return np.delete(vecs, const, axis=1)


def moran_surrogates(x, coords, *, n=1000, random_state=None) -> np.ndarray:
    """Surrogate maps with the spatial autocorrelation of ``x`` (Moran spectral randomisation).

    Parameters
    ----------
    x : (n_regions,) array_like
        Regional map (no NaN: drop missing regions and their centroids first).
    coords : (n_regions, 3) array_like
        Parcel centroids (any space, e.g. MNI mm); weights are ``1 / distance``.
    n : int, default=1000
        Number of surrogates.
    random_state : None, int or numpy.random.Generator, optional
        Seed or generator for the random signs.

    Returns
    -------
    surrogates : (n_regions, n) numpy.ndarray of float64
        One surrogate map per column; pass as ``nulls=`` to
        :func:`~graymatter.transcriptomics.compare.compare_maps`.

    Raises
    ------
    InputError
        ``x`` with NaN or of another length than ``coords``, ``coords`` not (n, 3), duplicate
        centroids, more than 5,000 regions, ``n < 1``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> xyz = rng.normal(size=(30, 3))
    >>> s = moran_surrogates(xyz[:, 0], xyz, n=10, random_state=1)
    >>> s.shape
    (30, 10)
    >>> bool(np.allclose(s.mean(axis=0), xyz[:, 0].mean()))
    True
    """
    x = np.asarray(x, dtype=np.float64)
    coords = np.asarray(coords, dtype=np.float64)
    if coords.ndim != 2 or coords.shape[1] != 3:
        raise InputError(f"coords must have shape (n_regions, 3), got {coords.shape}")
    if x.ndim != 1 or len(x) != len(coords):
        raise InputError(f"x has shape {x.shape} but coords has {len(coords)} rows; pass one "
                         "value per centroid")
    if len(x) > MAX_REGIONS:
        raise InputError(f"{len(x)} regions: Moran randomisation builds an n x n matrix and is "
                         f"meant for parcels (at most {MAX_REGIONS}); parcellate voxel maps first")
    if len(x) < 3:
        raise InputError(f"x has {len(x)} regions; Moran surrogates need at least 3")
    if not (np.isfinite(x).all() and np.isfinite(coords).all()):
        raise InputError("x or coords contain NaN/inf; drop those regions (in both) first")
    if len(np.unique(coords, axis=0)) < len(coords):
        raise InputError("coords has duplicate centroids; inverse-distance weights need "
                         "distinct points")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"n must be a positive integer, got {n!r}")
    rng = np.random.default_rng(random_state)
    basis = _moran_basis(coords)
    mean = x.mean()
    coef = basis.T @ (x - mean)
    signs = rng.choice(np.array([-1.0, 1.0]), size=(basis.shape[1], int(n)))
    return mean + basis @ (coef[:, None] * signs)


# ======================================================================== variogram surrogates

def _check_distances(x: np.ndarray, distances_or_coords) -> np.ndarray:
    """(n, n) distance matrix from a distance matrix or (n, 3) coordinates, validated."""
    n = x.size
    arr = np.asarray(distances_or_coords, dtype=np.float64)
    if arr.ndim == 2 and arr.shape == (n, 3) and n != 3:
        if not np.isfinite(arr).all():
            raise InputError("distances_or_coords (coordinates) contain NaN/inf; drop those "
                             "regions (in x too) first")
        return np.sqrt(np.maximum(((arr[:, None, :] - arr[None, :, :]) ** 2).sum(-1), 0.0))
    if arr.ndim != 2 or arr.shape != (n, n):
        raise InputError(f"distances_or_coords must be an (n_regions, n_regions) = ({n}, {n}) "
                         f"distance matrix or ({n}, 3) coordinates, one row per value of x; got "
                         f"shape {arr.shape}")
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise InputError("the distance matrix has NaN, infinite or negative entries; pass "
                         "non-negative distances between every pair of regions")
    if not np.allclose(arr, arr.T, rtol=1e-8, atol=1e-10 * max(arr.max(), 1.0)):
        raise InputError("the distance matrix is not symmetric; pass d[i, j] == d[j, i] (e.g. "
                         "(d + d.T) / 2 for a geodesic matrix with round-off)")
    if np.abs(np.diag(arr)).max() > 0:
        raise InputError("the distance matrix has non-zero entries on its diagonal; a region's "
                         "distance to itself must be 0")
    return arr


def _kernel(d: np.ndarray, kernel: str) -> np.ndarray:
    """BrainSMASH's smoothing kernels on (n, k) neighbour distances (scale = row maximum)."""
    if kernel == "uniform":
        return np.full(d.shape, 1.0 / d.shape[1])
    if kernel == "invdist":
        return 1.0 / d
    scale = d.max(axis=1, keepdims=True)
    scale[scale == 0] = 1.0
    if kernel == "exp":
        return np.exp(-d / scale)
    return np.exp(-1.25 * np.square(d / scale))  # gaussian


class _Variogram:
    """Smoothed-variogram operator for fixed distances: pairs below the ``pv`` percentile,
    Gaussian-weighted (bandwidth 3 bin widths, BrainSMASH's default) at ``nh`` distances."""

    def __init__(self, distances: np.ndarray, pv: float, nh: int):
        n = len(distances)
        iu, ju = np.triu_indices(n, k=1)
        u = distances[iu, ju]
        keep = u < np.percentile(u, pv)
        if keep.sum() < 2:
            raise InputError(f"pv={pv} keeps {int(keep.sum())} pairs of regions below that "
                             f"percentile of the distances; raise pv (BrainSMASH: 25)")
        self.i, self.j, u = iu[keep], ju[keep], u[keep]
        self.h = np.linspace(u.min(), u.max(), nh)
        b = 3.0 * (self.h[1] - self.h[0])
        if b <= 0:
            raise InputError("all retained pairwise distances are equal; the variogram cannot "
                             "be resolved (raise pv)")
        w = np.exp(-np.square(2.68 * np.abs(u - self.h[:, None]) / b) / 2)
        self.weights = w / w.sum(axis=1, keepdims=True)  # (nh, n_pairs)

    def __call__(self, maps: np.ndarray) -> np.ndarray:
        """(nh, n_maps) smoothed variograms of the (n, n_maps) maps."""
        diff = maps[self.i] - maps[self.j]
        return self.weights @ (0.5 * diff * diff)


def _smoothing_matrices(distances: np.ndarray, deltas, kernel: str) -> list[np.ndarray]:
    """One row-normalised (n, n) smoothing matrix per delta (k = int(delta n) nearest, no self)."""
    n = len(distances)
    d = distances.copy()
    np.fill_diagonal(d, -1.0)  # self sorts first even when other regions sit at distance 0
    order = np.argsort(d, axis=1, kind="stable")
    rows = np.arange(n)[:, None]
    mats = []
    for delta in deltas:
        k = int(delta * n)
        if k < 1:
            raise InputError(f"deltas value {delta} gives int({delta} x {n}) = 0 neighbours for "
                             f"{n} regions; use deltas >= {1 / n:.3g}")
        nbr = order[:, 1:k + 1]
        dk = distances[rows, nbr]
        if kernel == "invdist" and (dk == 0).any():
            raise InputError("kernel='invdist' met two regions at distance 0; use another kernel "
                             "or distinct regions")
        w = _kernel(dk, kernel)
        mat = np.zeros((n, n))
        mat[rows, nbr] = w / w.sum(axis=1, keepdims=True)
        mats.append(mat)
    return mats


def _generate(x: np.ndarray, distances: np.ndarray, perms: np.ndarray, noise: np.ndarray, *,
              deltas, kernel: str, pv: float, nh: int, resample: bool) -> np.ndarray:
    """Surrogates (n, B) from given permutations (B, n) and standard-normal noise (B, n)."""
    vario = _Variogram(distances, pv, nh)
    target = vario(x[:, None])[:, 0]
    t_c = target - target.mean()
    mats = _smoothing_matrices(distances, deltas, kernel)
    out = np.empty((x.size, perms.shape[0]))
    for start in range(0, perms.shape[0], _BLOCK):
        stop = min(start + _BLOCK, perms.shape[0])
        xperm = x[perms[start:stop]].T  # (n, b)
        best_sse = np.full(stop - start, np.inf)
        best = np.zeros((x.size, stop - start))
        alpha = np.zeros(stop - start)
        beta = np.zeros(stop - start)
        for mat in mats:
            smoothed = mat @ xperm
            v = vario(smoothed)  # (nh, b); least squares target ~ a + b v, as BrainSMASH
            v_c = v - v.mean(axis=0)
            ss = (v_c * v_c).sum(axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                b = np.where(ss > 0, (v_c * t_c[:, None]).sum(axis=0) / ss, 0.0)
            a = target.mean() - b * v.mean(axis=0)
            sse = ((target[:, None] - a - b * v) ** 2).sum(axis=0)
            better = sse < best_sse  # strict: ties keep the smaller delta, like np.argmin
            best_sse[better], alpha[better], beta[better] = sse[better], a[better], b[better]
            best[:, better] = smoothed[:, better]
        out[:, start:stop] = (np.sqrt(np.abs(beta)) * best
                              + np.sqrt(np.abs(alpha)) * noise[start:stop].T)
    if resample:
        ranks = np.argsort(np.argsort(out, axis=0, kind="stable"), axis=0, kind="stable")
        return np.sort(x)[ranks]
    # BrainSMASH de-means the surrogates; we then add the map's mean so they sit on its scale
    return out - out.mean(axis=0) + x.mean()


def smoothed_variogram(x, distances_or_coords, *, pv: float = 25, nh: int = 25):
    """Smoothed empirical variogram of a regional map (Burt et al. 2020 / BrainSMASH).

    Half squared differences ``(x_i - x_j)^2 / 2`` of the pairs closer than the ``pv``-th
    percentile of all pairwise distances are kernel-smoothed (Gaussian, bandwidth three times
    the bin width) at ``nh`` evenly spaced distances.

    Parameters
    ----------
    x : (n_regions,) or (n_regions, n_maps) array_like
        One map, or one map per column.
    distances_or_coords : (n_regions, n_regions) or (n_regions, 3) array_like
        Pairwise distances, or coordinates (Euclidean distances are computed).
    pv : float, default=25
        Percentile of the pairwise distances at which the variogram is truncated.
    nh : int, default=25
        Number of distances at which it is evaluated.

    Returns
    -------
    h : (nh,) numpy.ndarray
        Distances.
    gamma : (nh,) or (nh, n_maps) numpy.ndarray
        Smoothed variogram at ``h``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> xyz = rng.uniform(0, 50, size=(60, 3))
    >>> h, g = smoothed_variogram(xyz[:, 0], xyz)
    >>> h.shape, bool(g[-1] > g[0])
    ((25,), True)
    """
    arr = np.asarray(x, dtype=np.float64)
    first = arr if arr.ndim == 1 else arr[:, 0]
    distances = _check_distances(first, distances_or_coords)
    pv, nh = _check_pv_nh(pv, nh)
    vario = _Variogram(distances, pv, nh)
    gamma = vario(arr[:, None] if arr.ndim == 1 else arr)
    return vario.h, gamma[:, 0] if arr.ndim == 1 else gamma


def _check_pv_nh(pv, nh) -> tuple[float, int]:
    try:
        pv = float(pv)
    except (TypeError, ValueError):
        raise InputError(f"pv must be a percentile in (0, 100]; got {pv!r}") from None
    if not 0 < pv <= 100:
        raise InputError(f"pv must be a percentile in (0, 100]; got {pv!r} (BrainSMASH: 25)")
    if isinstance(nh, bool) or not isinstance(nh, (int, np.integer)) or nh < 2:
        raise InputError(f"nh must be an integer >= 2 (distances at which the variogram is "
                         f"evaluated); got {nh!r} (BrainSMASH: 25)")
    return pv, int(nh)


def variogram_surrogates(x, distances_or_coords, *, n: int = 1000,
                         deltas=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
                         kernel: str = "exp", pv: float = 25, nh: int = 25,
                         resample: bool = False, random_state=None) -> np.ndarray:
    """Surrogate maps whose variogram matches that of ``x`` (Burt et al. 2020, BrainSMASH).

    For each surrogate, the values of ``x`` are permuted at random; the permuted map is smoothed
    (kernel-weighted mean over the ``int(delta * n_regions)`` nearest regions) for every
    ``delta``; the smoothed map's variogram is regressed on the map's (``gamma_x ~ a + b
    gamma_s``) and the ``delta`` with the least squared error is kept; the surrogate is
    ``sqrt(|b|) * smoothed + sqrt(|a|) * N(0, 1)`` noise, de-meaned (or rank-matched to ``x``
    with ``resample=True``). Algorithm and defaults follow BrainSMASH's ``Base`` class
    (murraylab/brainsmash, ``brainsmash/mapgen/base.py``).

    Parameters
    ----------
    x : (n_regions,) array_like
        Regional map (no NaN: drop missing regions, and their rows/columns of the distances).
    distances_or_coords : (n_regions, n_regions) or (n_regions, 3) array_like
        Pairwise distances between regions (e.g. geodesic or Euclidean between centroids), or
        centroid coordinates (Euclidean distances are computed).
    n : int, default=1000
        Number of surrogates.
    deltas : sequence of float in (0, 1], default=(0.1, ..., 0.9)
        Fractions of regions used as nearest neighbours when smoothing.
    kernel : {"exp", "gaussian", "invdist", "uniform"}, default="exp"
        Distance weights of the neighbours (BrainSMASH's kernels; ``exp`` and ``gaussian`` are
        scaled by each region's largest neighbour distance).
    pv : float, default=25
        Percentile of the pairwise distances at which the variogram is truncated.
    nh : int, default=25
        Number of distances at which the variogram is evaluated.
    resample : bool, default=False
        Give every surrogate exactly the values of ``x`` (rank-matched): the value distribution
        is kept at the cost of a slightly worse variogram fit.
    random_state : None, int or numpy.random.Generator
        Seed for the permutations and the noise, drawn surrogate by surrogate: a seed gives the
        same maps, and the first k maps do not depend on ``n`` (up to BLAS round-off).

    Returns
    -------
    surrogates : (n_regions, n) numpy.ndarray of float64
        One surrogate map per column, pass as ``nulls=`` to
        :func:`~graymatter.transcriptomics.compare.compare_maps` or
        :func:`~graymatter.transcriptomics.spatial_enrichment.spatial_enrichment`. Without
        ``resample``, each column has the mean of ``x`` (BrainSMASH returns mean 0; shifting
        leaves the variogram unchanged); the variance is close to that of ``x``.

    Raises
    ------
    InputError
        ``x`` with NaN/inf, constant, or shorter than 5 regions; more than 1,000 regions
        (voxel-level surrogates need BrainSMASH's sampled variant, which is not implemented
        here); a distance matrix of the wrong shape, asymmetric, negative or with a non-zero
        diagonal; bad ``deltas``, ``kernel``, ``pv``, ``nh`` or ``n``.

    Notes
    -----
    Memory is ``O(n_regions^2)`` (distances, one smoothing matrix per delta, and the pairs
    below the ``pv`` percentile for a batch of 64 surrogates).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> xyz = rng.uniform(0, 50, size=(80, 3))
    >>> x = np.sin(xyz[:, 0] / 10) + 0.1 * rng.standard_normal(80)
    >>> s = variogram_surrogates(x, xyz, n=20, random_state=1)
    >>> s.shape, bool(np.allclose(s.mean(axis=0), x.mean()))
    ((80, 20), True)
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise InputError(f"x must be one map, shape (n_regions,); got shape {x.shape}")
    if x.size > MAX_VARIOGRAM_REGIONS:
        raise InputError(
            f"x has {x.size} regions; variogram surrogates here build {x.size} x {x.size} "
            f"distance and smoothing matrices and are meant for parcellations (at most "
            f"{MAX_VARIOGRAM_REGIONS} regions). Voxel- or vertex-level surrogates need "
            f"BrainSMASH's sampled variant (Sampled), which is not implemented: parcellate the "
            f"map first, or use brainsmash.mapgen.Sampled directly")
    if x.size < 5:
        raise InputError(f"x has {x.size} regions; variogram surrogates need at least 5")
    if not np.isfinite(x).all():
        raise InputError(f"x has {int((~np.isfinite(x)).sum())} NaN/inf value(s); drop those "
                         "regions (and their rows/columns of the distances) first")
    if np.ptp(x) == 0:
        raise InputError("x is constant; it has no spatial structure to match")
    distances = _check_distances(x, distances_or_coords)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"n must be a positive integer, got {n!r}")
    try:
        deltas = np.atleast_1d(np.asarray(deltas, dtype=np.float64))
    except (TypeError, ValueError):
        raise InputError(f"deltas must be numbers in (0, 1]; got {deltas!r}") from None
    if deltas.ndim != 1 or deltas.size == 0 or not ((deltas > 0) & (deltas <= 1)).all():
        raise InputError(f"deltas must be a non-empty sequence of fractions in (0, 1]; got "
                         f"{deltas.tolist()} (BrainSMASH: 0.1, 0.2, ..., 0.9)")
    if kernel not in _KERNELS:
        raise InputError(f"kernel must be one of {', '.join(_KERNELS)}; got {kernel!r}")
    pv, nh = _check_pv_nh(pv, nh)
    if not isinstance(resample, (bool, np.bool_)):
        raise InputError(f"resample must be True or False; got {resample!r}")
    rng = np.random.default_rng(random_state)
    n = int(n)
    perms = np.empty((n, x.size), dtype=np.int64)
    noise = np.empty((n, x.size))
    for i in range(n):  # per-surrogate draws: map i is the same whatever n is
        perms[i] = rng.permutation(x.size)
        noise[i] = rng.standard_normal(x.size)
    return _generate(x, distances, perms, noise, deltas=deltas, kernel=kernel, pv=pv, nh=nh,
                     resample=bool(resample))
