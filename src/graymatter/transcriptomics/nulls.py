"""Spatial null models for parcellated cortical maps: spin permutations of parcel centroids.

A spin null rotates the sphere at random, then gives every parcel the value of a parcel lying
near its rotated position, so the null maps keep the spatial autocorrelation of the data
(Alexander-Bloch et al. 2018; Váša et al. 2018; Markello & Mišić 2021).

Conventions (the same as ``neuromaps.nulls.spins.gen_spinsamples``, which is the former
``netneurotools.stats.gen_spinsamples``, so that given the same rotations the assignments are
identical):

* coordinates are row vectors and a rotation ``R`` moves them to ``coords @ R``;
* the right hemisphere uses the mirrored rotation ``F @ R @ F`` with ``F = diag(-1, 1, 1)``;
* the distance matrix is ``D[i, j] = ||rotated_j - original_i||`` (Euclidean), and column ``k`` of
  the result holds, for every original parcel ``i``, the rotated parcel assigned to it, so
  ``x[idx[:, k]]`` is the k-th null map of ``x``.

Methods: ``"alexander-bloch"`` (nearest rotated centroid, ``D[i].argmin()``; may repeat),
``"vasa"`` (greedy unique assignment: repeatedly take the unassigned parcel whose nearest free
rotated parcel is farthest, give it that rotated parcel, remove both; Váša's
``rotate_parcellation`` as implemented in neuromaps) and ``"hungarian"`` (assignment minimising
the total distance, :func:`scipy.optimize.linear_sum_assignment`). Váša and Alexander-Bloch run
in numba over batches of rotations with the row minima kept up to date, O(n²) per rotation instead
of O(n³). Hungarian runs a warm-started shortest-augmenting-path solver in numba that augments only
the rows whose nearest rotated parcel is contested and certifies with dual variables that its
answer is the unique optimum, hence scipy's; the rare rotation it cannot certify (a near-tie) is
handed to scipy (:mod:`graymatter.transcriptomics._spin_kernels`).
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from graymatter.errors import GraymatterWarning, InputError, format_choices
from graymatter.io.atomic import atomic_path
from graymatter.stats._graph import resolve_n_jobs, run_batch
from graymatter.transcriptomics._spin_kernels import hungarian_batch, nearest_batch, vasa_batch

logger = logging.getLogger("graymatter")

METHODS = ("alexander-bloch", "vasa", "hungarian")
_REFLECT = np.diag([-1.0, 1.0, 1.0])
_BATCH = 256
_CACHE_VERSION = b"graymatter-spins-1"


# --------------------------------------------------------------------------- rotations

def _generator(random_state):
    # a legacy RandomState is used as is so that the draws match neuromaps' check_random_state
    if isinstance(random_state, (np.random.Generator, np.random.RandomState)):
        return random_state
    return np.random.default_rng(random_state)


def random_rotations(n: int, *, random_state=None) -> np.ndarray:
    """Draw rotation matrices uniformly (Haar measure) from SO(3).

    The construction is neuromaps' / netneurotools' ``_gen_rotation``: ``Q, T = qr(G)`` for a
    3 x 3 matrix ``G`` of standard normal draws, ``Q = Q @ diag(sign(diag(T)))`` (Haar on O(3)),
    then the first column is negated when ``det(Q) < 0`` (Haar on SO(3)). Matrices are drawn in
    order, nine normals each, so a :class:`numpy.random.RandomState` seeded like neuromaps'
    ``seed`` gives the very rotations ``gen_spinsamples(..., seed=seed, check_duplicates=False)``
    uses.

    Parameters
    ----------
    n : int
        Number of rotations (>= 1).
    random_state : None, int, numpy.random.Generator or numpy.random.RandomState, optional
        Seed or generator (ints go through :func:`numpy.random.default_rng`).

    Returns
    -------
    rotations : (n, 3, 3) numpy.ndarray of float64
        Proper rotations (``R.T @ R = I``, ``det R = 1``) acting on row vectors (``coords @ R``).

    Examples
    --------
    >>> R = random_rotations(5, random_state=0)
    >>> R.shape
    (5, 3, 3)
    >>> bool(np.allclose(np.linalg.det(R), 1.0))
    True
    """
    n = _check_count(n, "n")
    rng = _generator(random_state)
    gauss = rng.normal(size=(n, 3, 3))
    q, t = np.linalg.qr(gauss)
    q = q * np.sign(np.diagonal(t, axis1=1, axis2=2))[:, None, :]
    flip = np.linalg.det(q) < 0
    q[flip, :, 0] = -q[flip, :, 0]
    return q


def _check_count(value, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}; e.g. {name}=1000")
    return int(value)


def _check_rotations(rotations) -> np.ndarray:
    rot = np.asarray(rotations, dtype=np.float64)
    if rot.ndim == 2:
        rot = rot[None]
    if rot.ndim != 3 or rot.shape[1:] != (3, 3) or len(rot) == 0:
        raise InputError(f"rotations must have shape (n_rotations, 3, 3), got {rot.shape}; build "
                         "them with random_rotations(n)")
    if not np.isfinite(rot).all():
        raise InputError("rotations contain NaN or infinite values; build them with "
                         "random_rotations(n)")
    err = np.abs(np.matmul(rot.transpose(0, 2, 1), rot) - np.eye(3)).max(axis=(1, 2))
    det = np.linalg.det(rot)
    bad = np.flatnonzero((err > 1e-6) | (det < 0))
    if len(bad):
        raise InputError(f"rotations {format_choices(bad)} are not proper rotations (R.T @ R = I "
                         "and det R = +1 are required; reflections are not spins)")
    return rot


_KERNELS = {"vasa": vasa_batch, "alexander-bloch": nearest_batch, "hungarian": hungarian_batch}


def _assign(coords: np.ndarray, rotations: np.ndarray, method: str, n_jobs: int) -> np.ndarray:
    n = len(coords)
    out = np.empty((n, len(rotations)), dtype=np.int64)
    kernel = _KERNELS[method]

    def run(start, stop):
        for first in range(start, stop, _BATCH):
            block = rotations[first:min(first + _BATCH, stop)]
            # stacked matmul gives bit-identical results to neuromaps' per-rotation `coords @ rot`
            rotated = np.ascontiguousarray(np.matmul(coords[None], block))
            buf = np.empty((n, len(block)), dtype=np.int64)
            kernel(coords, rotated, buf)
            out[:, first:first + len(block)] = buf

    # every column depends on its rotation only, so threads cannot change the result
    run_batch(run, len(rotations), n_jobs)
    return out


# --------------------------------------------------------------------------- public API

def _check_centroids(centroids, name: str) -> np.ndarray:
    values = centroids.to_numpy() if isinstance(centroids, pd.DataFrame) else centroids
    try:
        coords = np.array(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be numeric (n_regions, 3) coordinates: {exc}") from exc
    if coords.ndim != 2 or coords.shape[1] != 3:
        raise InputError(f"{name} must have shape (n_regions, 3) (x, y, z per parcel), got "
                         f"{coords.shape}; read them with read_centroids or parcel_centroids")
    if len(coords) < 2:
        raise InputError(f"{name} has {len(coords)} region(s); a spin null needs at least 2")
    bad = np.flatnonzero(~np.isfinite(coords).all(axis=1))
    if len(bad):
        raise InputError(f"{name} rows {format_choices(bad)} have NaN or infinite coordinates; "
                         "every parcel needs a centroid (drop parcels without one)")
    radius = np.linalg.norm(coords, axis=1)
    if radius.min() <= 0 or radius.std() > 0.05 * radius.mean():
        warnings.warn(f"{name} are not on a sphere centred at the origin (radius "
                      f"{radius.min():.3g}-{radius.max():.3g}); spins assume spherical "
                      "coordinates (use the sphere surface, not white/pial)",
                      GraymatterWarning, stacklevel=3)
    return np.ascontiguousarray(coords)


def _cache_file(cache_dir, method, lh, rh, rotations) -> Path:
    h = hashlib.sha256(_CACHE_VERSION)
    h.update(method.encode())
    for arr in (lh, rh, rotations):
        if arr is None:
            h.update(b"none")
        else:
            h.update(str(arr.shape).encode())
            h.update(np.ascontiguousarray(arr, dtype=np.float64).tobytes())
    return Path(cache_dir) / f"spins_{method}_{h.hexdigest()[:24]}.npy"


def _load_cache(path: Path) -> np.ndarray | None:
    """The cached spin indices, or None when absent or unreadable (e.g. truncated by a crash)."""
    if not path.is_file():
        return None
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        warnings.warn(f"the spin cache file {path} is unreadable ({exc}); the spins are "
                      "recomputed and the file rewritten", GraymatterWarning, stacklevel=3)
        return None


def spin_permutations(centroids_lh, centroids_rh=None, *, n_rotations=1000, method="vasa",
                      rotations=None, random_state=None, cache_dir=None,
                      n_jobs=1) -> np.ndarray:
    """Spin-test resampling indices for parcels from random rotations of the sphere.

    Parameters
    ----------
    centroids_lh : (n_lh, 3) array_like or pandas.DataFrame
        Parcel centroids of the left hemisphere (or of the only hemisphere analysed) on a sphere
        centred at the origin, e.g. from :func:`parcel_centroids` or :func:`read_centroids`.
    centroids_rh : (n_rh, 3) array_like or pandas.DataFrame, optional
        Right-hemisphere centroids; rotated with the mirror image ``F @ R @ F``
        (``F = diag(-1, 1, 1)``) of the left rotation, as in netneurotools / neuromaps.
    n_rotations : int, default=1000
        Number of rotations (ignored when ``rotations`` is given).
    method : {"vasa", "alexander-bloch", "hungarian"}, default="vasa"
        ``"alexander-bloch"``: nearest rotated centroid (indices may repeat). ``"vasa"``: greedy
        unique assignment (Váša et al. 2018). ``"hungarian"``: unique assignment minimising the
        total distance, equal to :func:`scipy.optimize.linear_sum_assignment`'s (see
        :mod:`graymatter.transcriptomics._spin_kernels`).
    rotations : (n_rotations, 3, 3) array_like, optional
        Rotations to use (row-vector convention, ``coords @ R``), e.g. to reuse the same
        rotations for several atlases; default: ``random_rotations(n_rotations,
        random_state=random_state)``.
    random_state : None, int, numpy.random.Generator or numpy.random.RandomState, optional
        Seed for the rotations. ``np.random.RandomState(s)`` reproduces neuromaps'
        ``gen_spinsamples(seed=s, check_duplicates=False)``.
    cache_dir : str or os.PathLike, optional
        Folder where the indices are stored (``.npy``, written atomically) under a sha256 of the
        centroids, rotations and method; a later call with the same inputs loads them.
    n_jobs : int or None, default=1
        Threads over the rotations (-1: all CPUs; None: all CPUs from the main thread, one
        from any other). The result does not depend on it.

    Returns
    -------
    indices : (n_lh + n_rh, n_rotations) numpy.ndarray of int64
        Left parcels first, then right (right indices offset by ``n_lh``; hemispheres never mix).
        ``x[indices[:, k]]`` is the k-th null map of ``x``. Each column is a permutation for
        ``"vasa"`` and ``"hungarian"``; ``"alexander-bloch"`` may repeat parcels.

    Raises
    ------
    InputError
        Centroids not of shape (n, 3) or with NaN, unknown ``method``, ``n_rotations < 1``,
        ``rotations`` not proper 3 x 3 rotations, ``n_jobs`` not a positive integer, -1 or None.

    Notes
    -----
    Unlike neuromaps' default ``check_duplicates=True``, rotations giving a duplicate or identity
    assignment are kept (with 180 parcels they essentially never occur), so every rotation is
    used in order and results depend only on the rotations.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> xyz = rng.normal(size=(40, 3))
    >>> xyz = 100 * xyz / np.linalg.norm(xyz, axis=1, keepdims=True)
    >>> idx = spin_permutations(xyz, n_rotations=100, random_state=1)
    >>> idx.shape
    (40, 100)
    >>> bool((np.sort(idx, axis=0) == np.arange(40)[:, None]).all())
    True
    """
    if method not in METHODS:
        raise InputError(f"method={method!r} is not a spin method; choose one of "
                         f"{format_choices(METHODS)}")
    n_jobs = resolve_n_jobs(n_jobs)
    lh = _check_centroids(centroids_lh, "centroids_lh")
    rh = None if centroids_rh is None else _check_centroids(centroids_rh, "centroids_rh")
    if rotations is None:
        n_rotations = _check_count(n_rotations, "n_rotations")
        rot = random_rotations(n_rotations, random_state=random_state)
    else:
        rot = _check_rotations(rotations)

    path = None
    if cache_dir is not None:
        path = _cache_file(cache_dir, method, lh, rh, rot)
        cached = _load_cache(path)
        if cached is not None:
            n_total = len(lh) + (0 if rh is None else len(rh))
            if cached.shape == (n_total, len(rot)):
                logger.debug("spins loaded from cache %s", path)
                return cached
            logger.warning("ignoring spin cache %s with unexpected shape %s", path, cached.shape)

    logger.info("computing %d %s spins for %d parcels", len(rot), method,
                len(lh) + (0 if rh is None else len(rh)))
    parts = [_assign(lh, rot, method, n_jobs)]
    if rh is not None:
        mirrored = np.matmul(np.matmul(_REFLECT, rot), _REFLECT)
        parts.append(_assign(rh, mirrored, method, n_jobs) + len(lh))
    indices = np.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]

    if path is not None:
        with atomic_path(path) as tmp:
            np.save(tmp, indices, allow_pickle=False)
    return indices


def permutation_nulls(n_regions, *, n_perm=1000, random_state=None) -> np.ndarray:
    """Naive (non-spatial) permutations of regions, in the layout of :func:`spin_permutations`.

    They ignore spatial autocorrelation and so give too small p-values for smooth maps; they are
    here for comparison (see ``docs/spin_calibration.md``).

    Parameters
    ----------
    n_regions : int
        Number of regions (>= 2).
    n_perm : int, default=1000
        Number of permutations.
    random_state : None, int or numpy.random.Generator, optional
        Seed or generator.

    Returns
    -------
    indices : (n_regions, n_perm) numpy.ndarray of int64
        Each column an independent uniform random permutation of ``0 .. n_regions - 1``.

    Examples
    --------
    >>> idx = permutation_nulls(5, n_perm=3, random_state=0)
    >>> idx.shape
    (5, 3)
    """
    n_regions = _check_count(n_regions, "n_regions")
    n_perm = _check_count(n_perm, "n_perm")
    rng = _generator(random_state)
    if isinstance(rng, np.random.RandomState):
        return np.stack([rng.permutation(n_regions) for _ in range(n_perm)], axis=1)
    base = np.broadcast_to(np.arange(n_regions, dtype=np.int64), (n_perm, n_regions))
    return np.ascontiguousarray(rng.permuted(base, axis=1).T)
