"""Relabellings for permutation inference: permutations within exchangeability blocks, sign flips.

:func:`~graymatter.stats.permutation.permutation_test` draws every relabelling of a run here, once,
from its seed; the engine then only applies them. Keeping the draws apart from the algebra keeps
the seed -> relabellings map in one place, whatever the batching or the number of workers.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from graymatter.errors import InputError

__all__ = ["block_codes", "n_relabellings", "draw_relabellings"]


def block_codes(blocks, n: int) -> np.ndarray | None:
    """Exchangeability blocks as integer codes ``0..B-1`` (None: all subjects exchangeable).

    Parameters
    ----------
    blocks : array-like, shape (n,), or None
        One label per subject (any type; compared as strings).
    n : int
        Number of subjects.

    Returns
    -------
    codes : numpy.ndarray of int, shape (n,), or None

    Examples
    --------
    >>> block_codes(["b", "a", "b"], 3).tolist()
    [1, 0, 1]
    """
    if blocks is None:
        return None
    labels = np.asarray(blocks)
    if labels.ndim != 1 or labels.shape[0] != n:
        raise InputError(f"blocks must hold one label per subject: expected shape ({n},), got "
                         f"{labels.shape}. Pass the exchangeability block of each row of Y.")
    return np.unique(labels.astype(str), return_inverse=True)[1]


def n_relabellings(method: str, n: int, codes: np.ndarray | None) -> int:
    """Number of distinct relabellings, the identity included.

    ``2**n`` sign flips, or the product of the factorials of the block sizes for permutations.

    Examples
    --------
    >>> n_relabellings("sign-flip", 4, None)
    16
    >>> n_relabellings("freedman-lane", 4, np.array([0, 0, 1, 1]))
    4
    """
    if method == "sign-flip":
        return 2**n
    sizes = np.bincount(codes) if codes is not None else [n]
    return math.prod(math.factorial(int(k)) for k in sizes)


def draw_relabellings(method: str, n: int, n_perm: int, codes: np.ndarray | None, rng,
                      exhaustive: bool) -> np.ndarray:
    """Relabellings as rows.

    Parameters
    ----------
    method : {"sign-flip", "freedman-lane"}
    n : int
        Number of subjects.
    n_perm : int
        Number of random relabellings (ignored when ``exhaustive``).
    codes : numpy.ndarray of int or None
        From :func:`block_codes`: subjects are permuted within their block only.
    rng : numpy.random.Generator
    exhaustive : bool
        Every relabelling except the identity, in a fixed order.

    Returns
    -------
    relabellings : numpy.ndarray
        ``(n_perm, n)`` int8 signs (sign-flip), or intp permutations ``perm`` meaning
        ``Y*_i = E[perm_i] + fit_i``.
    """
    if method == "sign-flip":
        if exhaustive:
            bits = (np.arange(1, 2**n)[:, None] >> np.arange(n)) & 1
        else:
            bits = rng.integers(0, 2, size=(n_perm, n), dtype=np.int8)
        return (1 - 2 * bits).astype(np.int8)
    groups = ([np.arange(n)] if codes is None else
              [np.flatnonzero(codes == b) for b in range(codes.max() + 1)])
    if exhaustive:
        rows = []
        for parts in itertools.product(*(itertools.permutations(g) for g in groups)):
            perm = np.empty(n, dtype=np.intp)
            for g, part in zip(groups, parts):
                perm[g] = part
            rows.append(perm)
        return np.array(rows[1:], dtype=np.intp)  # the first product is the identity
    perms = np.tile(np.arange(n, dtype=np.intp), (n_perm, 1))
    for g in groups:
        perms[:, g] = rng.permuted(np.tile(g, (n_perm, 1)), axis=1)
    return perms
