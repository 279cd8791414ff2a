"""Supra-threshold clusters of a voxel map: labels, extents, masses, and their null maxima.

A cluster is a connected set of mask voxels whose value is strictly greater than the height
(``value > height``; a voxel exactly at the height is out, NaN is always out). Two voxels are
neighbours when both are in the mask and they share a face (6-connectivity), a face or an edge
(18, SPM's default and ours) or a face, edge or corner (26). The image border is never wrapped.

Cluster extent is the number of voxels (not mm³); cluster mass is the sum over the cluster of the
height excess, ``sum(value - height)`` (Bullmore et al. 1999, IEEE TMI 18:32-42). Both are used for
cluster-level family-wise error control: :class:`ClusterStatistic` gives each permutation's
largest extent and mass to the permutation engine.

Labelling is a union-find over a neighbour table of the mask voxels (numba), so a batch of maps
costs a few milliseconds per map instead of a full-volume ``scipy.ndimage.label`` each.
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass
from numbers import Real

import numpy as np
from scipy import ndimage

from graymatter.errors import InputError, format_choices
from graymatter.stats._graph import (
    check_n_jobs,
    cluster_maxima_batch,
    label_roots,
    resolve_n_jobs,
    run_batch,
)

__all__ = ["connectivity_structure", "voxel_neighbours", "label_clusters", "ClusterLabels",
           "ClusterStatistic"]

logger = logging.getLogger("graymatter")

_RANKS = {6: 1, 18: 2, 26: 3}  # connectivity -> scipy.ndimage.generate_binary_structure rank
# Neighbour tables per grid object, freed with the grid (MaskedGrid's mask is read-only).
_NEIGHBOURS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def connectivity_structure(connectivity: int) -> np.ndarray:
    """The 3 x 3 x 3 neighbourhood of a voxel for a connectivity of 6, 18 or 26.

    Parameters
    ----------
    connectivity : int
        6 (faces), 18 (faces and edges) or 26 (faces, edges and corners).

    Returns
    -------
    structure : (3, 3, 3) numpy.ndarray of bool
        True at the centre and its neighbours; usable as ``scipy.ndimage.label(..., structure)``.

    Raises
    ------
    InputError
        ``connectivity`` is not 6, 18 or 26.

    Examples
    --------
    >>> int(connectivity_structure(18).sum())  # the centre and its 18 neighbours
    19
    """
    try:
        known = not isinstance(connectivity, bool) and connectivity in _RANKS
    except TypeError:  # unhashable, e.g. an array
        known = False
    if not known:
        raise InputError(f"connectivity must be one of {format_choices(_RANKS)} (voxels sharing "
                         f"a face / a face or edge / a face, edge or corner); found "
                         f"{connectivity!r}. Use 18 for SPM-like clusters, 26 for FSL-like TFCE.")
    return ndimage.generate_binary_structure(3, _RANKS[int(connectivity)])


def _check_grid(grid) -> None:
    if not (hasattr(grid, "mask") and hasattr(grid, "n_voxels")):
        raise InputError(f"grid must be a graymatter.io.images.MaskedGrid (the second value "
                         f"returned by load_image_matrix); found {type(grid).__name__}.")


def voxel_neighbours(grid, connectivity: int) -> np.ndarray:
    """Indices of each mask voxel's in-mask neighbours.

    Parameters
    ----------
    grid : graymatter.io.images.MaskedGrid
        The grid and mask; voxels are numbered in ``data[mask]`` (C) order.
    connectivity : int
        6, 18 or 26 (see :func:`connectivity_structure`).

    Returns
    -------
    neighbours : (n_voxels, connectivity) numpy.ndarray of int32, read-only
        ``neighbours[v, j]`` is the index of v's j-th neighbour, or -1 when that neighbour is
        outside the mask or the image. Columns follow the neighbour offsets in C order, so the
        first ``connectivity // 2`` columns are the neighbours that come earlier in voxel order.
        The table is cached per grid object and connectivity.

    Examples
    --------
    >>> from graymatter.io.images import MaskedGrid
    >>> grid = MaskedGrid(np.ones((1, 1, 3), bool), np.eye(4))
    >>> voxel_neighbours(grid, 6)[1].tolist()  # the middle voxel of a 1 x 1 x 3 line
    [-1, -1, 0, 2, -1, -1]
    """
    structure = connectivity_structure(connectivity)
    _check_grid(grid)
    cache = _NEIGHBOURS.setdefault(grid, {})
    key = int(connectivity)
    if key in cache:
        return cache[key]
    mask = np.asarray(grid.mask, dtype=bool)
    padded_shape = tuple(s + 2 for s in mask.shape)  # a -1 border: no wrap-around, no bounds checks
    index = np.full(padded_shape, -1, dtype=np.int32)
    index[1:-1, 1:-1, 1:-1][mask] = np.arange(int(mask.sum()), dtype=np.int32)
    flat = index.ravel()
    centres = np.ravel_multi_index(tuple((np.argwhere(mask) + 1).T), padded_shape)
    offsets = np.argwhere(structure) - 1
    offsets = offsets[np.any(offsets != 0, axis=1)]  # argwhere is C-ordered: negative half first
    strides = np.array([padded_shape[1] * padded_shape[2], padded_shape[2], 1])
    neighbours = np.empty((centres.size, len(offsets)), dtype=np.int32)
    for j, step in enumerate(offsets @ strides):
        neighbours[:, j] = flat[centres + step]
    neighbours.flags.writeable = False
    cache[key] = neighbours
    return neighbours


def box_layout(grid, connectivity: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Mask voxels as indices into their bounding box padded by one voxel (cached per grid).

    Returns ``box`` ((n_voxels,) int32 index of each voxel in the C-ordered padded box),
    ``offsets`` ((connectivity,) int64: ``box[v] + offsets`` are the 3-D neighbours of v) and
    the box's size. The padding makes every neighbour index valid; the TFCE kernel uses this
    layout because constant offsets read far less memory than a neighbour table.
    """
    structure = connectivity_structure(connectivity)
    _check_grid(grid)
    cache = _NEIGHBOURS.setdefault(grid, {})
    key = ("box", int(connectivity))
    if key not in cache:
        ijk = np.argwhere(np.asarray(grid.mask, dtype=bool))
        if ijk.size == 0:
            lo, shape = np.zeros(3, int), (3, 3, 3)
        else:
            lo = ijk.min(axis=0)
            shape = tuple(int(s) for s in ijk.max(axis=0) - lo + 3)
        box = np.ravel_multi_index(tuple((ijk - lo + 1).T), shape).astype(np.int32)
        offsets = np.argwhere(structure) - 1
        offsets = offsets[np.any(offsets != 0, axis=1)]
        offsets = (offsets @ np.array([shape[1] * shape[2], shape[2], 1])).astype(np.int64)
        box.flags.writeable = False
        offsets.flags.writeable = False
        cache[key] = (box, offsets, int(np.prod(shape)))
    return cache[key]


def _backward(grid, connectivity: int) -> np.ndarray:
    nbr = voxel_neighbours(grid, connectivity)
    return np.ascontiguousarray(nbr[:, : nbr.shape[1] // 2])


def _check_height(height) -> float:
    if isinstance(height, bool) or not isinstance(height, Real) or not np.isfinite(height):
        raise InputError(f"height must be a finite number (a statistic value such as t = 3.1, "
                         f"not a p-value); found {height!r}.")
    return float(height)


def _check_values(values, grid, *, name: str = "values") -> np.ndarray:
    """One map as a contiguous float64 vector of length ``grid.n_voxels``."""
    _check_grid(grid)
    values = np.asarray(values)
    if values.shape == tuple(grid.shape) and values.ndim == 3:
        raise InputError(f"{name} is a 3-D image of shape {values.shape}; expected one value per "
                         f"mask voxel, shape ({grid.n_voxels},). Pass image[grid.mask].")
    if values.ndim != 1 or values.shape[0] != grid.n_voxels:
        raise InputError(f"{name} has shape {values.shape} but the grid has {grid.n_voxels} mask "
                         f"voxels: expected shape ({grid.n_voxels},), one value per mask voxel in "
                         "data[mask] order (e.g. a t map from the GLM fitted on this grid).")
    if not np.issubdtype(values.dtype, np.number) or np.iscomplexobj(values):
        raise InputError(f"{name} must be real numbers; found dtype {values.dtype}.")
    return np.ascontiguousarray(values, dtype=np.float64)


def _check_maps(maps, grid) -> np.ndarray:
    """A batch of maps as a C-contiguous float64 (B, n_voxels) array."""
    _check_grid(grid)
    maps = np.asarray(maps)
    if maps.ndim == 1:
        maps = maps[None, :]
    if maps.ndim != 2 or maps.shape[1] != grid.n_voxels:
        raise InputError(f"maps has shape {maps.shape} but the grid has {grid.n_voxels} mask "
                         f"voxels: expected shape (n_maps, {grid.n_voxels}), one map per row in "
                         "data[mask] order.")
    if not np.issubdtype(maps.dtype, np.number) or np.iscomplexobj(maps):
        raise InputError(f"maps must be real numbers; found dtype {maps.dtype}.")
    return np.ascontiguousarray(maps, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class ClusterLabels:
    """Clusters of one map above a height.

    Attributes
    ----------
    labels : (n_voxels,) numpy.ndarray of int32
        0 for voxels not above the height, 1..K for the clusters, numbered by decreasing extent;
        ties by decreasing mass, then by the first voxel (in voxel order).
    sizes : (K,) numpy.ndarray of int64
        Extent of cluster k + 1 in voxels.
    masses : (K,) numpy.ndarray of float64
        Mass of cluster k + 1: the sum over its voxels of ``value - height``.
    height : float
        The cluster-forming height (a statistic value; voxels must be strictly above it).
    connectivity : int
        6, 18 or 26.
    """

    labels: np.ndarray
    sizes: np.ndarray
    masses: np.ndarray
    height: float
    connectivity: int

    @property
    def n_clusters(self) -> int:
        """Number of clusters K."""
        return int(self.sizes.shape[0])


def label_clusters(values, grid, *, height: float, connectivity: int = 18) -> ClusterLabels:
    """Find the clusters of voxels whose value is strictly above ``height``.

    Parameters
    ----------
    values : (n_voxels,) array-like of float
        One value per mask voxel in ``data[mask]`` order, e.g. a t map. NaN is never in a cluster.
    grid : graymatter.io.images.MaskedGrid
        The grid and mask the values live on.
    height : float
        Cluster-forming height, a statistic value (e.g. t = 3.1 for p < 0.001 one-sided at
        large df), not a p-value. Voxels with ``value > height`` (strictly) are kept.
    connectivity : int, default=18
        6, 18 (SPM) or 26; only in-mask voxels are neighbours.

    Returns
    -------
    clusters : ClusterLabels
        Labels 1..K by decreasing extent, with each cluster's extent (voxels) and mass
        (``sum(value - height)``, Bullmore et al. 1999).

    Raises
    ------
    InputError
        Wrong number of values, non-finite height or a connectivity other than 6, 18 or 26.

    Examples
    --------
    >>> from graymatter.io.images import MaskedGrid
    >>> grid = MaskedGrid(np.ones((1, 1, 6), bool), np.eye(4))
    >>> found = label_clusters([4.0, 5.0, 0.0, 3.5, 0.0, 0.0], grid, height=3.0)
    >>> found.labels.tolist(), found.sizes.tolist(), found.masses.tolist()
    ([1, 1, 0, 2, 0, 0], [2, 1], [3.0, 0.5])
    """
    back = _backward(grid, connectivity)
    height = _check_height(height)
    values = _check_values(values, grid)
    parent = np.empty(values.shape[0], dtype=np.int32)
    label_roots(values, back, height, parent)
    inside = parent >= 0
    roots, which = np.unique(parent[inside], return_inverse=True)  # roots = first voxels
    sizes = np.bincount(which, minlength=roots.size).astype(np.int64)
    masses = np.bincount(which, weights=values[inside] - height, minlength=roots.size)
    order = np.lexsort((roots, -masses, -sizes))  # last key is the primary one
    rank = np.empty(roots.size, dtype=np.int32)
    rank[order] = np.arange(1, roots.size + 1, dtype=np.int32)
    labels = np.zeros(values.shape[0], dtype=np.int32)
    labels[inside] = rank[which]
    logger.debug("%d clusters above %g (%d-connectivity)", roots.size, height, connectivity)
    return ClusterLabels(labels=labels, sizes=sizes[order], masses=masses[order], height=height,
                         connectivity=int(connectivity))


class ClusterStatistic:
    """Largest cluster extent and mass of each map: the null statistics of cluster-level FWE.

    Implements the permutation engine's ``PermutationStatistic`` protocol.

    Parameters
    ----------
    grid : graymatter.io.images.MaskedGrid
        The grid and mask the maps live on.
    height : float
        Cluster-forming height, a statistic value (voxels with ``value > height``).
    connectivity : int, default=18
        6, 18 (SPM) or 26.
    n_jobs : int or None, default=None
        Threads used by :meth:`maxima` over the maps of a batch: k, or -1 for all CPUs. None:
        all CPUs when called from the main thread, 1 when called from another thread (e.g. a
        permutation engine's worker, which is already parallel). The result does not depend
        on it.

    Attributes
    ----------
    names : tuple of str
        ``("cluster_extent", "cluster_mass")``.

    Examples
    --------
    >>> from graymatter.io.images import MaskedGrid
    >>> grid = MaskedGrid(np.ones((1, 1, 6), bool), np.eye(4))
    >>> stat = ClusterStatistic(grid, height=3.0)
    >>> maps = np.array([[4.0, 5.0, 0.0, 3.5, 0.0, 0.0], [0.0] * 6])
    >>> {k: v.tolist() for k, v in stat.maxima(maps).items()}
    {'cluster_extent': [2.0, 0.0], 'cluster_mass': [3.0, 0.0]}
    """

    names = ("cluster_extent", "cluster_mass")

    def __init__(self, grid, *, height: float, connectivity: int = 18, n_jobs=None):
        self._back = _backward(grid, connectivity)
        self.grid = grid
        self.height = _check_height(height)
        self.connectivity = int(connectivity)
        self.n_jobs = check_n_jobs(n_jobs)

    def __repr__(self) -> str:
        return (f"ClusterStatistic(height={self.height:g}, connectivity={self.connectivity}, "
                f"n_voxels={self.grid.n_voxels})")

    def maxima(self, maps) -> dict[str, np.ndarray]:
        """Largest cluster extent and mass of each map.

        Parameters
        ----------
        maps : (n_maps, n_voxels) array-like of float
            Statistic maps (e.g. permuted t maps), one per row, in ``data[mask]`` order.

        Returns
        -------
        maxima : dict of str to (n_maps,) numpy.ndarray of float64
            ``"cluster_extent"`` (voxels) and ``"cluster_mass"``; 0.0 for a map without any
            voxel above the height.
        """
        maps = _check_maps(maps, self.grid)
        n_maps = maps.shape[0]
        size = np.zeros(n_maps, dtype=np.int64)
        mass = np.zeros(n_maps, dtype=np.float64)
        back, height = self._back, self.height

        def kernel(start, stop):
            cluster_maxima_batch(maps, back, height, start, stop, size, mass)

        run_batch(kernel, n_maps, resolve_n_jobs(self.n_jobs))
        return {"cluster_extent": size.astype(np.float64), "cluster_mass": mass}
