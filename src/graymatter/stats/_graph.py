"""Numba union-find kernels behind cluster labelling and TFCE.

Kernels work on mask-voxel vectors plus either an ``(m, k)`` int32 table of earlier neighbours
(``-1`` where there is none; cluster labelling, one pass in voxel order) or each voxel's index in
the mask's padded bounding box with constant neighbour offsets (TFCE, where voxels are visited in
value order and a table row per voxel would be a cache miss). The grid bookkeeping lives in
:mod:`graymatter.stats.clusters`. Kernels release the GIL,
so batches are spread over a thread pool (:func:`run_batch`) instead of numba's ``prange``: the
only threading layer numba has without TBB/OpenMP (``workqueue``) aborts when two Python threads
call a parallel kernel at once, which a permutation engine running threads would do.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from graymatter.errors import InputError
from graymatter.stats._threads import check_n_jobs, resolve_n_jobs, run_batch

__all__ = ["label_roots", "cluster_maxima_batch", "tfce_sorted", "TFCEWorkspace",
           "extent_powers", "descending_positive", "run_batch", "check_n_jobs", "resolve_n_jobs"]


@njit(cache=True, nogil=True, inline="always")
def _find(parent, v):
    # Path halving: each visited node skips to its grandparent (amortised near-constant time).
    while parent[v] != v:
        parent[v] = parent[parent[v]]
        v = parent[v]
    return v


@njit(cache=True, nogil=True)
def label_roots(values, back, height, parent):
    """Union-find clusters of ``values > height``; ``parent[v]`` becomes v's cluster root.

    ``back`` holds only the neighbours that come earlier in voxel order (negative offsets), so
    one pass in voxel order sees every edge once. Roots are each cluster's first voxel (links
    always go to the smaller root), and ``parent[v] = -1`` below the height.
    """
    m = values.shape[0]
    k = back.shape[1]
    for v in range(m):
        if not values[v] > height:  # NaN is below every height
            parent[v] = -1
            continue
        parent[v] = v
        rv = v
        for j in range(k):
            u = back[v, j]
            if u < 0 or parent[u] < 0:
                continue
            ru = _find(parent, u)
            if ru != rv:
                if ru < rv:
                    parent[rv] = ru
                    rv = ru
                else:
                    parent[ru] = rv
    for v in range(m):
        if parent[v] >= 0:
            parent[v] = _find(parent, v)


@njit(cache=True, nogil=True)
def _cluster_maxima_one(values, back, height, parent, size, mass):
    label_roots(values, back, height, parent)
    best_size = 0
    best_mass = 0.0
    for v in range(values.shape[0]):
        r = parent[v]
        if r >= 0:
            size[r] += 1
            mass[r] += values[v] - height
    for v in range(values.shape[0]):
        if parent[v] == v:
            if size[v] > best_size:
                best_size = size[v]
            if mass[v] > best_mass:
                best_mass = mass[v]
            size[v] = 0  # reset for the next map (only roots were touched)
            mass[v] = 0.0
    return best_size, best_mass


@njit(cache=True, nogil=True)
def cluster_maxima_batch(maps, back, height, start, stop, out_size, out_mass):
    """Largest cluster extent and mass of ``maps[start:stop]`` into ``out_*[start:stop]``."""
    m = maps.shape[1]
    parent = np.empty(m, np.int32)
    size = np.zeros(m, np.int64)
    mass = np.zeros(m, np.float64)
    for b in range(start, stop):
        s, w = _cluster_maxima_one(maps[b], back, height, parent, size, mass)
        out_size[b] = s
        out_mass[b] = w


@njit(cache=True, nogil=True, inline="always")
def _find_root(parent, u):
    # parent > 0: a link; parent < 0: a root of size -parent (0 = voxel not entered yet).
    while True:
        p = parent[u]
        if p < 0:
            return u
        g = parent[p]
        if g < 0:
            return p
        parent[u] = g  # path halving
        u = g


@njit(cache=True, nogil=True)
def tfce_sorted(xs, fs, offsets, ext, parent, stamp, cnode, nparent, contrib, node_of):
    """Exact TFCE of the n voxels with a positive value, taken by decreasing value.

    Inputs: ``xs`` (n,) the voxels' indices in the mask's bounding box padded by one voxel
    (whose neighbours are ``xs[i] + offsets``), ``fs`` (n,) ``F(h) = h^(H+1) / (H+1)`` of their
    values, ``ext[s] = s ** E``. Workspace: ``parent`` (box-sized zeros, left zeroed on return),
    ``stamp`` and ``cnode`` (box-sized), ``nparent`` and ``contrib`` (>= 2n). Output: voxel i's
    TFCE is ``contrib[node_of[i]]``.

    Voxels enter in decreasing order and are merged with a union-find. Each component owns an
    open node of a merge tree, valid from the level at which it last changed (its "stamp", an
    F value); when it changes again at a lower level (a voxel joins or two components merge)
    the node is closed with the exact integral ``size^E * (F(stamp) - F(h))`` and a new node
    opens. Nodes only point to younger (higher id) nodes, so one backward pass sums each
    voxel's chain of ancestors: TFCE(v) is a sum of positive terms (no cancellation), in
    O(n k alpha(n)) after the sort. Working in the padded box (rather than through a neighbour
    table) keeps the neighbour look-ups in cache: voxels outside the mask never enter.
    """
    k = offsets.shape[0]
    n = xs.shape[0]
    nn = 0
    for i in range(n):
        x = xs[i]
        f = fs[i]
        parent[x] = -1
        stamp[x] = f
        cnode[x] = -1  # no node until x joins a component or stays alone
        rx = x
        for j in range(k):
            u = x + offsets[j]
            p = parent[u]
            if p == 0 or p == rx:  # not entered yet, or directly under x's root
                continue
            ru = _find_root(parent, u)
            if ru == rx:
                continue
            if stamp[ru] > f:  # ru's extent held on (f, stamp]: close its node, open one at f
                a = cnode[ru]
                contrib[a] = ext[-parent[ru]] * (stamp[ru] - f)
                nparent[a] = nn
                nparent[nn] = -1
                contrib[nn] = 0.0
                cnode[ru] = nn
                stamp[ru] = f
                nn += 1
            na = cnode[ru]
            nb = cnode[rx]
            if nb >= 0:  # two nodes open at f: the younger stands for the merged component
                if na < nb:
                    na, nb = nb, na
                nparent[nb] = na
                contrib[nb] = 0.0
            if parent[ru] > parent[rx]:  # union by size (sizes are -parent)
                ru, rx = rx, ru
            parent[ru] += parent[rx]
            parent[rx] = ru
            cnode[ru] = na
            rx = ru
        if cnode[rx] < 0:  # x touches no component: a new one
            cnode[rx] = nn
            nparent[nn] = -1
            contrib[nn] = 0.0
            nn += 1
        node_of[i] = cnode[rx]
    # Components still open integrate down to threshold 0 (F(0) = 0).
    for i in range(n):
        x = xs[i]
        if parent[x] < 0:
            contrib[cnode[x]] = ext[-parent[x]] * stamp[x]
    for a in range(nn - 1, -1, -1):  # contrib becomes the sum over the node and its ancestors
        p = nparent[a]
        if p >= 0:
            contrib[a] += contrib[p]
    for i in range(n):
        parent[xs[i]] = 0  # leave the workspace ready for the next map


@njit(cache=True, nogil=True)
def _max(x):
    best = 0.0
    for v in range(x.shape[0]):
        if x[v] > best:
            best = x[v]
    return best


def descending_positive(values: np.ndarray) -> np.ndarray:
    """Indices of the positive values, largest first (numpy's SIMD sort, which drops the GIL)."""
    positive = np.flatnonzero(values > 0)
    return positive[np.argsort(-values[positive])].astype(np.int32)


def extent_powers(n: int, E: float) -> np.ndarray:
    """``s ** E`` for s = 0..n (a table: the kernel then needs no power per merge)."""
    sizes = np.arange(n + 1, dtype=np.float64)
    return np.sqrt(sizes) if E == 0.5 else sizes ** E


class TFCEWorkspace:
    """Scratch arrays for :func:`tfce_sorted` on one grid; one per thread, reused across maps.

    The sort, gathers and scatters are numpy calls, which release the GIL like the kernel.
    """

    def __init__(self, box: np.ndarray, offsets: np.ndarray, box_size: int, ext: np.ndarray,
                 H: float):
        m = box.shape[0]
        self.box, self.offsets, self.ext, self.H = box, offsets, ext, float(H)
        self.parent = np.zeros(box_size, np.int32)
        self.stamp = np.empty(box_size, np.float64)
        self.cnode = np.empty(box_size, np.int32)
        self.nparent = np.empty(2 * m, np.int32)
        self.contrib = np.empty(2 * m, np.float64)
        self.node_of = np.empty(m, np.int32)
        self.buf = np.empty(m, np.float64)

    def tfce(self, values: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Exact one-sided TFCE of ``values`` ((m,) float64) into ``out`` ((m,) float64)."""
        order = descending_positive(values)
        n = order.shape[0]
        h = values[order]
        # F(h) = h^(H+1) / (H+1); for H = 2 a cube is faster and more accurate than a power
        f = h * h * h / 3.0 if self.H == 2.0 else h ** (self.H + 1.0) / (self.H + 1.0)
        node_of = self.node_of[:n]
        tfce_sorted(self.box[order], f, self.offsets, self.ext, self.parent, self.stamp,
                    self.cnode, self.nparent, self.contrib, node_of)
        out[:] = 0.0
        out[order] = self.contrib[node_of]
        return out

    def max_tfce(self, values: np.ndarray, two_sided: bool) -> float:
        """Largest TFCE of one map (of ``|TFCE|`` for the two-sided map when ``two_sided``)."""
        best = _max(self.tfce(values, self.buf))
        if two_sided:
            best = max(best, _max(self.tfce(np.negative(values), self.buf)))
        return float(best)
