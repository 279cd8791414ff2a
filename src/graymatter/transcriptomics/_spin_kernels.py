"""Numba kernels of the spin nulls (:mod:`graymatter.transcriptomics.nulls`).

They live in one module because numba's on-disk cache of a kernel is not invalidated when a kernel
it calls changes in another file; keeping callers and callees together avoids stale machine code.

* :func:`nearest_batch` (Alexander-Bloch) and :func:`vasa_batch` (Váša) on batches of rotations.
* :func:`hungarian_batch`: minimum-total-distance assignments, equal to
  :func:`scipy.optimize.linear_sum_assignment`'s, through :func:`solve_into`.

After a rotation many parcels have an uncontested nearest rotated centroid (in the HCP-MMP1 left
hemisphere the medial wall leaves about 50 of 180 contested). :func:`solve_into` works per cost
matrix:

1. **Warm start.** Row duals ``u_i = min_j C[i, j]``, column duals ``v_j = min_i (C[i, j] -
   u_i)``; each row, in order, takes its nearest column if still free, then each free column the
   row of its column minimum if that row is free. Duals are feasible and every matched edge is
   tight: a valid start of the Hungarian method.
2. **Contested rows only.** The rows left free are augmented one at a time by shortest augmenting
   paths (Dijkstra on reduced costs with scipy's dual update, Crouse 2016,
   ``rectangular_lsap.cpp``), with a branch-free relaxation that vectorises.
3. **Certificate.** With ``r[i, j] = C[i, j] - u_i - v_j`` the solution is accepted only if
   ``r >= -tol`` everywhere, ``|r| <= tol`` on the assignment, and the graph of near-tight
   unmatched edges (``r <= gap``) has no alternating cycle. Any other permutation differs by
   cycles, each of which then contains an edge with ``r > gap``, so it costs at least
   ``gap - 2 n tol`` more: the assignment is the unique optimum by a margin far above rounding
   error, so scipy, exact up to rounding, returns the same one. ``tol = 1e-10 * max|C|`` and
   ``gap = 1e-7 * max|C|`` (1e-5 mm on a 100 mm sphere).

Tie rule: when the certificate fails (several optimal assignments, an optimum unique by less than
``gap``, or rounding trouble) the matrix is solved by scipy itself, on the same distances, so the
returned assignment is always scipy's.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from graymatter.errors import InputError

_TOL = 1e-10
_GAP = 1e-7
_BIG = 1e300  # finite stand-in for infinity, so the relaxation can use fast math
_MAX_COST = 1e200


@njit(cache=True, nogil=True, fastmath={"nnan", "ninf", "nsz"})
def _reduce(cost, u, v, arg):
    # u_i = min_j C[i, j]; v_j = min_i (C[i, j] - u_i) with its first row in arg (row-wise
    # loops, so they vectorise)
    n = cost.shape[0]
    v[:] = _BIG
    arg[:] = 0
    for i in range(n):
        row = cost[i]
        low = _BIG
        for j in range(n):
            low = min(low, row[j])
        u[i] = low
        for j in range(n):
            r = row[j] - low
            better = np.int64(r < v[j])
            v[j] = min(v[j], r)
            arg[j] += better * (i - arg[j])


@njit(cache=True, nogil=True)
def _warm_start(cost, u, v, col4row, row4col):
    # row then column reduction; each row takes its first nearest column if free, then each
    # column still free takes the row of its column minimum if that row is free (all tight)
    n = cost.shape[0]
    col4row[:] = -1
    _reduce(cost, u, v, row4col)
    arg = row4col.copy()
    row4col[:] = -1
    for i in range(n):
        j = 0
        while cost[i, j] != u[i]:
            j += 1
        if row4col[j] < 0:
            row4col[j] = i
            col4row[i] = j
    for j in range(n):
        i = arg[j]
        if row4col[j] < 0 and col4row[i] < 0:
            row4col[j] = i
            col4row[i] = j


@njit(cache=True, nogil=True, fastmath={"nnan", "ninf", "nsz"})
def _relax(row, base, vp, shortest, path, i):
    # Dijkstra relaxation through row i, then the open column with the smallest label. Written
    # branch-free (blends instead of ifs) so that LLVM vectorises it. Done columns have
    # shortest = _BIG and vp = -_BIG (see _augment), so they are never lowered nor chosen
    n = row.shape[0]
    for j in range(n):
        r = base + row[j] - vp[j]
        s = shortest[j]
        better = np.int64(r < s)
        shortest[j] = min(r, s)
        path[j] += better * (i - path[j])
    # four running minima with their indices (a single one would not vectorise)
    m0 = m1 = m2 = m3 = _BIG
    k0 = k1 = k2 = k3 = 0
    stop = n - n % 4
    for j in range(0, stop, 4):
        x0 = shortest[j]
        x1 = shortest[j + 1]
        x2 = shortest[j + 2]
        x3 = shortest[j + 3]
        b0 = x0 < m0
        b1 = x1 < m1
        b2 = x2 < m2
        b3 = x3 < m3
        m0 = x0 if b0 else m0
        m1 = x1 if b1 else m1
        m2 = x2 if b2 else m2
        m3 = x3 if b3 else m3
        k0 = j if b0 else k0
        k1 = j + 1 if b1 else k1
        k2 = j + 2 if b2 else k2
        k3 = j + 3 if b3 else k3
    for j in range(stop, n):
        if shortest[j] < m0:
            m0 = shortest[j]
            k0 = j
    if m1 < m0 or (m1 == m0 and k1 < k0):
        m0, k0 = m1, k1
    if m3 < m2 or (m3 == m2 and k3 < k2):
        m2, k2 = m3, k3
    if m2 < m0 or (m2 == m0 and k2 < k0):
        m0, k0 = m2, k2
    return m0, k0


@njit(cache=True, nogil=True)
def _augment(cost, u, v, col4row, row4col, cur_row, shortest, path, rows_seen, vp, final):
    # one shortest augmenting path from the free row cur_row, then the dual update and the
    # augmentation of scipy's solver (any shortest path will do: the result is certified).
    # A column, once done, keeps its label in final[j] while shortest[j] = _BIG and
    # vp[j] = -_BIG (instead of v[j]) keep it out of the relaxation and the minimum
    n = cost.shape[0]
    shortest[:] = _BIG
    path[:] = -1
    vp[:] = v
    n_rows = 0
    n_done = 0
    min_val = 0.0
    i = cur_row
    while True:
        rows_seen[n_rows] = i
        n_rows += 1
        lowest, j = _relax(cost[i], min_val - u[i], vp, shortest, path, i)
        if not lowest < _BIG:
            return False
        min_val = lowest
        final[j] = lowest
        shortest[j] = _BIG
        vp[j] = -_BIG
        if row4col[j] < 0:
            break
        i = row4col[j]
    sink = j
    u[cur_row] += min_val
    for k in range(1, n_rows):
        i = rows_seen[k]
        u[i] += min_val - final[col4row[i]]
    for j in range(n):
        if vp[j] == -_BIG:
            v[j] -= min_val - final[j]
    j = sink
    while True:
        i = path[j]
        row4col[j] = i
        j, col4row[i] = col4row[i], j
        if i == cur_row:
            break
    return True


@njit(cache=True, nogil=True, fastmath={"nnan", "ninf", "nsz"})
def _scale(cost):
    hi = 0.0
    for i in range(cost.shape[0]):
        row = cost[i]
        for j in range(row.shape[0]):
            hi = max(hi, abs(row[j]))
    return hi


@njit(cache=True, nogil=True, fastmath={"nnan", "ninf", "nsz"})
def _row_check(row, ui, v, gap):
    # smallest reduced cost of the row and how many are <= gap (vectorised; costs are finite)
    low = _BIG
    count = 0
    for j in range(row.shape[0]):
        r = row[j] - ui - v[j]
        low = min(low, r)
        count += np.int64(r <= gap)
    return low, count


@njit(cache=True, nogil=True)
def _certified(cost, u, v, col4row, row4col, tight, state, stack):
    # dual feasibility, complementary slackness and no alternating cycle of near-tight edges
    n = cost.shape[0]
    scale = _scale(cost)
    tol = _TOL * scale
    gap = _GAP * scale
    n_tight = np.zeros(n, dtype=np.int64)
    for i in range(n):
        row = cost[i]
        low, count = _row_check(row, u[i], v, gap)
        mine = col4row[i]
        if low < -tol or abs(row[mine] - u[i] - v[mine]) > tol:
            return False
        if count > 1:  # near-tight edges besides the assigned one
            for j in range(n):
                if j != mine and row[j] - u[i] - v[j] <= gap:
                    tight[i, n_tight[i]] = row4col[j]
                    n_tight[i] += 1
    # iterative depth-first search on rows (edge i -> owner of a near-tight column of i);
    # state 0 = new, 1 = on the stack, 2 = done; an edge to a row on the stack closes a cycle
    state[:] = 0
    pos = np.zeros(n, dtype=np.int64)
    for root in range(n):
        if state[root] != 0:
            continue
        depth = 0
        stack[0] = root
        state[root] = 1
        while depth >= 0:
            i = stack[depth]
            if pos[i] < n_tight[i]:
                k = tight[i, pos[i]]
                pos[i] += 1
                if state[k] == 1:
                    return False
                if state[k] == 0:
                    state[k] = 1
                    depth += 1
                    stack[depth] = k
            else:
                state[i] = 2
                depth -= 1
    return True


@njit(cache=True, nogil=True)
def workspace(n):
    """Scratch arrays for :func:`solve_into` on ``n x n`` matrices (allocate once, reuse)."""
    return (np.empty(n), np.empty(n), np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64),
            np.empty(n), np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64), np.empty(n),
            np.empty(n), np.empty((n, n), dtype=np.int64), np.empty(n, dtype=np.int64),
            np.empty(n, dtype=np.int64))


@njit(cache=True, nogil=True)
def solve_into(cost, ws, cols):
    """Assign the rows of the square matrix ``cost``; True if certified to be scipy's answer.

    ``cols[i]`` receives the column of row ``i`` (undefined when False is returned: solve that
    matrix with :func:`scipy.optimize.linear_sum_assignment`). ``ws`` comes from
    :func:`workspace`. Costs must be finite.
    """
    u, v, col4row, row4col, shortest, path, rows_seen, vp, final, tight, state, stack = ws
    n = cost.shape[0]
    _warm_start(cost, u, v, col4row, row4col)
    for i in range(n):
        if col4row[i] < 0 and not _augment(cost, u, v, col4row, row4col, i, shortest, path,
                                           rows_seen, vp, final):
            return False
    for i in range(n):
        cols[i] = col4row[i]
    return _certified(cost, u, v, col4row, row4col, tight, state, stack)


@njit(cache=True, nogil=True)
def _solve_batch(costs, out, ok):
    ws = workspace(costs.shape[1])
    for b in range(costs.shape[0]):
        ok[b] = solve_into(costs[b], ws, out[:, b])


def linear_assignment(costs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column assigned to each row for a stack of square cost matrices, equal to scipy's.

    Parameters
    ----------
    costs : (n_mat, n, n) array_like of float
        Finite cost matrices.

    Returns
    -------
    cols : (n, n_mat) numpy.ndarray of int64
        ``cols[:, b]`` equals ``linear_sum_assignment(costs[b])[1]``.
    certified : (n_mat,) numpy.ndarray of bool
        False where scipy itself was called (near-ties or rounding trouble).

    Examples
    --------
    >>> c = np.array([[[4.0, 1.0, 3.0], [2.0, 0.0, 5.0], [3.0, 2.0, 2.0]]])
    >>> cols, certified = linear_assignment(c)
    >>> cols[:, 0].tolist(), bool(certified[0])
    ([1, 0, 2], True)
    """
    from scipy.optimize import linear_sum_assignment

    costs = np.ascontiguousarray(costs, dtype=np.float64)
    if costs.ndim != 3 or costs.shape[1] != costs.shape[2]:
        raise InputError(f"costs must have shape (n_matrices, n, n) (square matrices), got "
                         f"{costs.shape}")
    n_mat, n = costs.shape[:2]
    cols = np.empty((n, n_mat), dtype=np.int64)
    certified = np.empty(n_mat, dtype=np.bool_)
    if not np.isfinite(costs).all():
        raise InputError("cost matrices contain NaN or infinite values; spin costs are "
                         "distances between finite centroids")
    if costs.size and np.abs(costs).max() < _MAX_COST:
        _solve_batch(costs, cols, certified)
    else:  # costs this large would meet the solver's stand-in for infinity: scipy decides
        certified[:] = False
    for b in np.flatnonzero(~certified):
        cols[:, b] = linear_sum_assignment(costs[b])[1]
    return cols, certified


# --------------------------------------------------------------------------- spin kernels

@njit(cache=True, nogil=True)
def _distances(orig, rot, out):
    # same arithmetic as scipy.spatial.distance_matrix so near-ties break the same way; the
    # rotated coordinates are transposed so that the inner loop is contiguous and vectorises
    n = orig.shape[0]
    rt = np.ascontiguousarray(rot.T)
    x, y, z = rt[0], rt[1], rt[2]
    for i in range(n):
        o0, o1, o2 = orig[i, 0], orig[i, 1], orig[i, 2]
        row = out[i]
        for j in range(n):
            d0 = x[j] - o0
            d1 = y[j] - o1
            d2 = z[j] - o2
            row[j] = np.sqrt(d0 * d0 + d1 * d1 + d2 * d2)


@njit(cache=True, nogil=True)
def nearest_batch(orig, rotated, out):
    """Alexander-Bloch spins: ``out[i, b]`` = nearest rotated parcel of parcel ``i`` in spin ``b``.

    Parameters
    ----------
    orig : (n, 3) numpy.ndarray of float64
        Parcel centroids.
    rotated : (n_rot, n, 3) numpy.ndarray of float64
        The centroids after each rotation (C-contiguous).
    out : (n, n_rot) numpy.ndarray of int64
        Filled with the assigned rotated parcel (first index on ties, like numpy's argmin).
    """
    n = orig.shape[0]
    dist = np.empty((n, n))
    for b in range(rotated.shape[0]):
        _distances(orig, rotated[b], dist)
        for i in range(n):
            best = 0
            for j in range(1, n):
                if dist[i, j] < dist[i, best]:
                    best = j
            out[i, b] = best


@njit(cache=True, nogil=True)
def vasa_batch(orig, rotated, out):
    """Váša spins (greedy unique assignment), same arguments as :func:`nearest_batch`."""
    n = orig.shape[0]
    dist = np.empty((n, n))
    row_min = np.empty(n)
    row_arg = np.empty(n, dtype=np.int64)
    done = np.empty(n, dtype=np.bool_)
    used = np.empty(n, dtype=np.bool_)
    for b in range(rotated.shape[0]):
        _distances(orig, rotated[b], dist)
        done[:] = False
        used[:] = False
        for i in range(n):
            best = 0
            for j in range(1, n):
                if dist[i, j] < dist[i, best]:
                    best = j
            row_min[i] = dist[i, best]
            row_arg[i] = best
        for _ in range(n):
            # parcel whose nearest free rotated parcel is farthest (first index on ties, like
            # numpy's argmax in the reference implementation)
            r = -1
            for i in range(n):
                if not done[i] and (r < 0 or row_min[i] > row_min[r]):
                    r = i
            c = row_arg[r]
            out[r, b] = c
            done[r] = True
            used[c] = True
            # only rows whose nearest free column was c need a new minimum
            for i in range(n):
                if not done[i] and row_arg[i] == c:
                    best = -1
                    for j in range(n):
                        if not used[j] and (best < 0 or dist[i, j] < dist[i, best]):
                            best = j
                    row_min[i] = dist[i, best]
                    row_arg[i] = best


@njit(cache=True, nogil=True)
def _hungarian_certified(orig, rotated, out, ok):
    # one distance matrix at a time (stays in cache), solved and certified in place
    n = orig.shape[0]
    dist = np.empty((n, n))
    ws = workspace(n)
    for b in range(rotated.shape[0]):
        _distances(orig, rotated[b], dist)
        ok[b] = solve_into(dist, ws, out[:, b])


def hungarian_batch(coords: np.ndarray, rotated: np.ndarray, out: np.ndarray) -> None:
    """Hungarian spins, same arguments as :func:`nearest_batch`: minimum total distance.

    ``out[:, b]`` equals ``linear_sum_assignment(distance_matrix(coords, rotated[b]))[1]``:
    certified by :func:`solve_into`, or computed by scipy where the certificate fails.
    """
    from scipy.optimize import linear_sum_assignment

    ok = np.zeros(len(rotated), dtype=np.bool_)
    if np.abs(coords).max() < np.sqrt(_MAX_COST):  # distances stay far below _BIG
        _hungarian_certified(coords, rotated, out, ok)
    dist = np.empty((len(coords), len(coords)))
    for b in np.flatnonzero(~ok):  # near-ties: scipy decides, on the same distances
        _distances(coords, rotated[b], dist)
        out[:, b] = linear_sum_assignment(dist)[1]
