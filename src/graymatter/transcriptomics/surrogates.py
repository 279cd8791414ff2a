"""Moran spectral randomisation: surrogate maps for parcels not on a sphere (e.g. subcortex).

Like BrainSpace's ``MoranRandomization(procedure="singleton")`` (Wagner & Dray 2015; Vos de Wael
et al. 2020): the map is expanded on the Moran eigenvectors of an inverse-distance weight matrix
between parcel centroids and the sign of every coefficient is flipped at random. Each surrogate
keeps the mean, the variance and Moran's I of the map exactly (and the autocorrelation at every
spatial scale of the eigen-decomposition). The weight matrix is ``n x n``: meant for parcels
(a limit of 5,000 regions is enforced), never for voxels.
"""

from __future__ import annotations

import numpy as np

from graymatter.errors import InputError

MAX_REGIONS = 5000


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
