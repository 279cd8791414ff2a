"""Minimum-cost assignment for spin nulls, certified equal to :func:`scipy.optimize.linear_sum_assignment`.

After a rotation most parcels have an uncontested nearest rotated centroid, so the assignment
problem is nearly solved by its row minima. :func:`solve_into` exploits that in numba, per cost
matrix:

1. **Warm start.** Row duals ``u_i = min_j C[i, j]``, column duals ``v_j = 0``; each row, in order,
   takes its nearest column if that column is still free. Duals are feasible and every matched
   edge is tight, so this is a valid start of the Hungarian method.
2. **Contested rows only.** The rows left free (those whose nearest column was taken) are
   augmented one at a time by shortest augmenting paths (Dijkstra on reduced costs), the very
   loop of scipy's solver (Crouse 2016, ``rectangular_lsap.cpp``), which scans only the rows met
   along the paths instead of all ``n`` rows from scratch.
3. **Certificate.** With ``r[i, j] = C[i, j] - u_i - v_j`` the solution is accepted only if
   ``r >= -tol`` everywhere, ``|r| <= tol`` on the assignment, and the graph of near-tight
   unmatched edges (``r <= gap``) has no alternating cycle. Any other permutation differs by
   cycles, each of which then contains an edge with ``r > gap``, so it costs at least
   ``gap - 2 n tol`` more: the assignment is the unique optimum by a margin far above rounding
   error, and scipy, exact up to rounding, returns the same one. ``tol = 1e-10 * max|C|`` and
   ``gap = 1e-7 * max|C|`` (1e-5 mm on a 100 mm sphere).

Tie rule: when the certificate fails (an optimum that is not unique, or unique by less than
``gap``, or rounding trouble) the matrix is flagged and the caller solves it with scipy itself,
so the returned assignment is always scipy's.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from graymatter.errors import InputError

_TOL = 1e-10
_GAP = 1e-7
_BIG = 1e300  # finite stand-in for infinity, so the relaxation can use fast math


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
def _relax(row, base, v, pen, shortest, path, i):
    # Dijkstra relaxation through row i, then the smallest label of an open column. Written
    # branch-free (blend instead of if, four running minima) so that LLVM vectorises it; done
    # columns carry pen = _BIG, so they are never lowered and never the minimum
    n = row.shape[0]
    for j in range(n):
        r = base + row[j] - v[j] + pen[j]
        s = shortest[j]
        better = np.int64(r < s)
        shortest[j] = min(r, s)
        path[j] += better * (i - path[j])
    m0 = m1 = m2 = m3 = _BIG
    stop = n - n % 4
    for j in range(0, stop, 4):
        m0 = min(m0, shortest[j] + pen[j])
        m1 = min(m1, shortest[j + 1] + pen[j + 1])
        m2 = min(m2, shortest[j + 2] + pen[j + 2])
        m3 = min(m3, shortest[j + 3] + pen[j + 3])
    for j in range(stop, n):
        m0 = min(m0, shortest[j] + pen[j])
    return min(min(m0, m1), min(m2, m3))


@njit(cache=True, nogil=True)
def _augment(cost, u, v, col4row, row4col, cur_row, shortest, path, rows_seen, pen):
    # one shortest augmenting path from the free row cur_row, then the dual update and the
    # augmentation of scipy's solver (any shortest path will do: the result is certified)
    n = cost.shape[0]
    shortest[:] = _BIG
    path[:] = -1
    pen[:] = 0.0
    n_rows = 0
    min_val = 0.0
    i = cur_row
    while True:
        rows_seen[n_rows] = i
        n_rows += 1
        lowest = _relax(cost[i], min_val - u[i], v, pen, shortest, path, i)
        if not lowest < _BIG:
            return False
        j = 0
        while shortest[j] + pen[j] != lowest:
            j += 1
        min_val = lowest
        pen[j] = _BIG
        if row4col[j] < 0:
            sink = j
            break
        i = row4col[j]
    u[cur_row] += min_val
    for k in range(1, n_rows):
        i = rows_seen[k]
        u[i] += min_val - shortest[col4row[i]]
    for j in range(n):
        if pen[j] != 0.0:
            v[j] -= min_val - shortest[j]
    j = sink
    while True:
        i = path[j]
        row4col[j] = i
        j, col4row[i] = col4row[i], j
        if i == cur_row:
            break
    return True


@njit(cache=True, nogil=True)
def _certified(cost, u, v, col4row, row4col, tight, state, stack):
    # dual feasibility, complementary slackness and no alternating cycle of near-tight edges
    n = cost.shape[0]
    scale = 0.0
    for i in range(n):
        for j in range(n):
            scale = max(scale, abs(cost[i, j]))
    tol = _TOL * scale
    gap = _GAP * scale
    n_tight = np.zeros(n, dtype=np.int64)
    for i in range(n):
        for j in range(n):
            r = cost[i, j] - u[i] - v[j]
            if not r >= -tol:  # also catches NaN
                return False
            if j == col4row[i]:
                if r > tol:
                    return False
            elif r <= gap:
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
            np.empty((n, n), dtype=np.int64), np.empty(n, dtype=np.int64),
            np.empty(n, dtype=np.int64))


@njit(cache=True, nogil=True)
def solve_into(cost, ws, cols):
    """Assign the rows of the square matrix ``cost``; True if certified to be scipy's answer.

    ``cols[i]`` receives the column of row ``i`` (undefined when False is returned: solve that
    matrix with :func:`scipy.optimize.linear_sum_assignment`). ``ws`` comes from
    :func:`workspace`. Costs must be finite.
    """
    u, v, col4row, row4col, shortest, path, rows_seen, pen, tight, state, stack = ws
    n = cost.shape[0]
    _warm_start(cost, u, v, col4row, row4col)
    for i in range(n):
        if col4row[i] < 0 and not _augment(cost, u, v, col4row, row4col, i, shortest, path,
                                           rows_seen, pen):
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
    n_mat, n = costs.shape[:2]
    cols = np.empty((n, n_mat), dtype=np.int64)
    certified = np.empty(n_mat, dtype=np.bool_)
    if not np.isfinite(costs).all():
        raise InputError("cost matrices contain NaN or infinite values; spin costs are "
                         "distances between finite centroids")
    _solve_batch(costs, cols, certified)
    for b in np.flatnonzero(~certified):
        cols[:, b] = linear_sum_assignment(costs[b])[1]
    return cols, certified
