"""Local maxima of a statistic map and the per-cluster peaks an SPM-style table reports.

Maps are vectors over the ``m`` in-mask voxels of a :class:`~graymatter.io.images.MaskedGrid`
(``data[mask]`` order); results are indices into that vector. Cluster labels are plain integer
arrays (0 = no cluster, 1..K = clusters), so any clustering code can feed these functions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

from graymatter.errors import InputError, format_choices

_CONNECTIVITY = {6: 1, 18: 2, 26: 3}  # neighbours -> rank of scipy's binary structure
PEAK_COLUMNS = ("cluster", "peak_rank", "voxel", "x", "y", "z", "value")


def _structure(connectivity) -> np.ndarray:
    if connectivity not in _CONNECTIVITY:
        raise InputError(f"connectivity must be one of {format_choices(sorted(_CONNECTIVITY))} "
                         f"(faces, faces+edges, faces+edges+corners); found {connectivity!r}.")
    return ndimage.generate_binary_structure(3, _CONNECTIVITY[connectivity])


def check_grid(grid) -> None:
    """Refuse anything but a :class:`~graymatter.io.images.MaskedGrid`-like grid.

    Parameters
    ----------
    grid : object
        Must have ``mask``, ``affine`` and ``n_voxels``.

    Raises
    ------
    InputError
        One of those attributes is missing.
    """
    if not all(hasattr(grid, a) for a in ("mask", "affine", "n_voxels")):
        raise InputError("grid must be a graymatter.io.images.MaskedGrid (with .mask, .affine "
                         f"and .n_voxels); found {type(grid).__name__}.")


def grid_vector(values, grid, name: str) -> np.ndarray:
    """A map as a vector over the grid's in-mask voxels, checked for length.

    Parameters
    ----------
    values : array-like, shape (n_voxels,)
    grid : graymatter.io.images.MaskedGrid
    name : str
        How the error message names ``values``.

    Returns
    -------
    values : numpy.ndarray, shape (n_voxels,)

    Raises
    ------
    InputError
        ``values`` has another shape.
    """
    values = np.asarray(values)
    if values.shape != (grid.n_voxels,):
        raise InputError(f"{name} must have shape (n_voxels,) = ({grid.n_voxels},), one value per "
                         f"in-mask voxel of the grid; found shape {values.shape}. Pass the map "
                         "as a vector in the grid's voxel order (grid.mask order).")
    return values


def cluster_label_vector(labels, grid) -> np.ndarray:
    """Cluster labels (0 = none, 1..K) over the grid's in-mask voxels, as int64.

    Parameters
    ----------
    labels : array-like of int (or integral float), shape (n_voxels,)
    grid : graymatter.io.images.MaskedGrid

    Returns
    -------
    labels : numpy.ndarray of int64, shape (n_voxels,)

    Raises
    ------
    InputError
        Wrong length, non-integer, NaN or negative labels.
    """
    labels = grid_vector(labels, grid, "labels")
    if labels.dtype.kind == "b" or labels.dtype.kind not in "iuf":
        raise InputError(f"labels must hold integer cluster ids (0 = none, 1..K); found dtype "
                         f"{labels.dtype}.")
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
            raise InputError("labels must hold integer cluster ids (0 = none, 1..K); found "
                             "non-integer or NaN values. Pass the labels from the clustering "
                             "step unchanged.")
    labels = labels.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise InputError(f"labels must be >= 0 (0 = no cluster, 1..K = clusters); found "
                         f"{int(labels.min())}.")
    return labels


def _index_volume(grid) -> np.ndarray:
    """Grid-shaped array holding each in-mask voxel's index (``-1`` outside the mask)."""
    index = np.full(grid.mask.shape, -1, dtype=np.int64)
    index[grid.mask] = np.arange(grid.n_voxels)
    return index


def _maxima_in_box(values: np.ndarray, region: np.ndarray, structure: np.ndarray) -> np.ndarray:
    """Positions (flat C indices into the box) of regional maxima, one per plateau.

    A voxel of ``region`` is a maximum when its value is >= the values of all its neighbours
    that are also in ``region``; maxima touching each other (necessarily with equal values)
    form a plateau, represented by its voxel closest to the plateau's centre.
    """
    volume = np.where(region, values, -np.inf)
    footprint = structure.copy()
    footprint[1, 1, 1] = False  # compare with the neighbours, not with the voxel itself
    neighbours = ndimage.maximum_filter(volume, footprint=footprint, mode="constant",
                                        cval=-np.inf)
    candidate = region & (volume >= neighbours)
    plateaus, n = ndimage.label(candidate, structure=structure)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    flat = np.flatnonzero(plateaus)  # C order: ties below go to the lowest index
    ids = plateaus.ravel()[flat]
    if n == flat.size:  # no plateau: every candidate is its own maximum (the usual case)
        return flat
    coords = np.column_stack(np.unravel_index(flat, plateaus.shape)).astype(float)
    counts = np.bincount(ids, minlength=n + 1)[1:]
    centres = np.column_stack([np.bincount(ids, weights=coords[:, a], minlength=n + 1)[1:]
                               for a in range(3)]) / counts[:, None]
    dist = ((coords - centres[ids - 1]) ** 2).sum(axis=1)
    order = np.lexsort((flat, dist, ids))  # by plateau, then distance to centre, then index
    first = np.ones(order.size, dtype=bool)
    first[1:] = ids[order][1:] != ids[order][:-1]
    return flat[order[first]]


def _sorted_by_value(indices: np.ndarray, values: np.ndarray) -> np.ndarray:
    order = np.lexsort((indices, -values[indices]))  # highest first; ties by voxel index
    return indices[order]


def local_maxima(values, grid, *, mask_voxels=None, connectivity: int = 26) -> np.ndarray:
    """Indices of the voxels whose value is >= all their neighbours' (SPM's ``spm_max``).

    Parameters
    ----------
    values : (m,) array-like of float
        A statistic map over the grid's ``m`` in-mask voxels. NaN voxels are ignored (neither
        maxima nor neighbours).
    grid : MaskedGrid
        The voxel grid and mask that ``values`` lives on.
    mask_voxels : (m,) array-like of bool, optional
        Search only these voxels, e.g. the supra-threshold voxels or one cluster. As in
        ``spm_max``, neighbours outside this set are ignored, so a voxel on its border can be a
        maximum even when a higher voxel lies just outside. Default: all in-mask voxels.
    connectivity : {6, 18, 26}, default=26
        Neighbourhood: faces, + edges, + corners (SPM uses 26).

    Returns
    -------
    indices : (n_maxima,) numpy.ndarray of int64
        Indices into the ``m`` voxels, sorted by decreasing value (ties by index). A plateau
        of equal, touching maxima gives one index: its voxel closest to the plateau's centre.

    Raises
    ------
    InputError
        ``values`` or ``mask_voxels`` not of shape (m,); a connectivity other than 6, 18, 26.

    Examples
    --------
    >>> grid = MaskedGrid(np.ones((5, 1, 1), bool), np.eye(4))
    >>> local_maxima(np.array([1.0, 3.0, 2.0, 2.0, 5.0]), grid)
    array([4, 1])
    """
    check_grid(grid)
    structure = _structure(connectivity)
    values = grid_vector(values, grid, "values").astype(np.float64)
    region = np.isfinite(values)
    if mask_voxels is not None:
        mask_voxels = grid_vector(mask_voxels, grid, "mask_voxels")
        if mask_voxels.dtype.kind != "b":
            raise InputError(f"mask_voxels must be a boolean vector (True = search this voxel); "
                             f"found dtype {mask_voxels.dtype}.")
        region &= mask_voxels
    if not region.any():
        return np.empty(0, dtype=np.int64)
    volume = np.zeros(grid.mask.shape)
    volume[grid.mask] = values
    inside = np.zeros(grid.mask.shape, dtype=bool)
    inside[grid.mask] = region
    # Work on the bounding box of the searched voxels only: cheap for a cluster.
    box = ndimage.find_objects(inside.astype(np.int8))[0]
    flat = _maxima_in_box(volume[box], inside[box], structure)
    index = _index_volume(grid)[box].ravel()[flat]
    return _sorted_by_value(index, values)


def _select_peaks(candidates: np.ndarray, xyz: np.ndarray, *, max_peaks: int,
                  min_distance_mm: float) -> list[int]:
    """Greedy SPM choice: walk maxima from the highest, keep those far from all kept ones.

    As SPM12's ``spm_list`` (``min(distance) > Dis``), a maximum exactly ``min_distance_mm`` from
    a kept peak is dropped: on a 2 mm grid, one 4 voxels away along an axis is not a sub-peak.
    """
    kept: list[int] = []
    for i in candidates:
        if len(kept) >= max_peaks:
            break
        if kept and np.min(np.linalg.norm(xyz[kept] - xyz[i], axis=1)) <= min_distance_mm:
            continue
        kept.append(int(i))
    return kept


def cluster_peaks(values, grid, labels, *, max_peaks: int = 3,
                  min_distance_mm: float = 8.0) -> pd.DataFrame:
    """The peaks a cluster table reports: each cluster's highest maxima, far enough apart.

    For each cluster its local maxima (26-neighbourhood, neighbours restricted to the same
    cluster, as SPM's ``spm_max`` on the cluster's voxels) are sorted by value; walking down
    that list a maximum is kept when it lies more than ``min_distance_mm`` from every maximum
    already kept (SPM's ``spm_list`` uses 8 mm, strictly: one exactly 8 mm away is dropped),
    until ``max_peaks`` are kept.

    Parameters
    ----------
    values : (m,) array-like of float
        The statistic map (t, F or z) over the grid's in-mask voxels; NaN voxels are ignored.
    grid : MaskedGrid
        The voxel grid and mask.
    labels : (m,) array-like of int
        Cluster ids: 0 = no cluster, 1..K = clusters (as ``label_clusters`` returns them).
    max_peaks : int, default=3
        At most this many peaks per cluster (>= 1).
    min_distance_mm : float, default=8.0
        Two reported peaks of one cluster are more than this far apart, in mm (>= 0).

    Returns
    -------
    peaks : (n_peaks, 7) pandas.DataFrame
        Columns ``cluster`` (id), ``peak_rank`` (1 = the cluster's highest), ``voxel`` (index
        into the ``m`` voxels), ``x``, ``y``, ``z`` (mm) and ``value``; rows by cluster id,
        then rank. Clusters whose voxels are all NaN have no row.

    Raises
    ------
    InputError
        Maps of the wrong shape, negative or non-integer labels, bad ``max_peaks`` or
        ``min_distance_mm``.

    Examples
    --------
    >>> grid = MaskedGrid(np.ones((12, 1, 1), bool), np.diag([2.0, 2, 2, 1]))
    >>> t = np.array([0, 1, 4, 1, 0, 0, 3, 0, 2, 5, 2, 0.0])
    >>> labels = (t > 0.5).astype(int)  # one cluster id for the demo
    >>> cluster_peaks(t, grid, labels)[["cluster", "peak_rank", "x", "value"]]
       cluster  peak_rank     x  value
    0        1          1  18.0    5.0
    1        1          2   4.0    4.0

    The maximum at x = 12 mm (value 3) lies 6 mm from the highest peak, so it is not reported.
    """
    check_grid(grid)
    if isinstance(max_peaks, bool) or not isinstance(max_peaks, (int, np.integer)) \
            or max_peaks < 1:
        raise InputError(f"max_peaks must be a positive integer (SPM reports 3 per cluster); "
                         f"found {max_peaks!r}.")
    try:
        min_distance_mm = float(min_distance_mm)
    except (TypeError, ValueError):
        min_distance_mm = float("nan")
    if not np.isfinite(min_distance_mm) or min_distance_mm < 0:
        raise InputError(f"min_distance_mm must be a distance in mm >= 0 (SPM uses 8); found "
                         f"{min_distance_mm!r}.")
    values = grid_vector(values, grid, "values").astype(np.float64)
    labels = cluster_label_vector(labels, grid)
    structure = _structure(26)
    volume = np.full(grid.mask.shape, np.nan)
    volume[grid.mask] = values
    label_volume = np.zeros(grid.mask.shape, dtype=np.int64)
    label_volume[grid.mask] = labels
    index = _index_volume(grid)
    xyz_all = grid.coordinates()
    rows = []
    for k, box in enumerate(ndimage.find_objects(label_volume), start=1):
        if box is None:  # an id with no voxel (e.g. clusters removed after labelling)
            continue
        region = (label_volume[box] == k) & np.isfinite(volume[box])
        if not region.any():
            continue
        flat = _maxima_in_box(volume[box], region, structure)
        candidates = _sorted_by_value(index[box].ravel()[flat], values)
        kept = _select_peaks(candidates, xyz_all, max_peaks=int(max_peaks),
                             min_distance_mm=min_distance_mm)
        for rank, v in enumerate(kept, start=1):
            rows.append((k, rank, v, *xyz_all[v], values[v]))
    peaks = pd.DataFrame(rows, columns=list(PEAK_COLUMNS))
    return peaks.astype({"cluster": np.int64, "peak_rank": np.int64, "voxel": np.int64,
                         "x": float, "y": float, "z": float, "value": float})


__all__ = ["local_maxima", "cluster_peaks", "check_grid", "grid_vector", "cluster_label_vector"]
