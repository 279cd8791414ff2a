"""Certified assignment solver behind Hungarian spins: equal to scipy, exactly, ties included."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.spatial import distance_matrix

from graymatter.errors import InputError
from graymatter.transcriptomics._spin_kernels import linear_assignment
from graymatter.transcriptomics.nulls import random_rotations


def _scipy_cols(costs):
    return np.stack([linear_sum_assignment(c)[1] for c in costs], axis=1)


def _spin_costs(rng, n, n_rot):
    xyz = rng.normal(size=(n, 3))
    xyz = 100 * xyz / np.linalg.norm(xyz, axis=1, keepdims=True)
    # a polar cap without parcels, like the medial wall: rotations move parcels into it, so
    # many rows share a nearest column and long augmenting paths are needed
    xyz = xyz[xyz[:, 2] < 60]
    rot = random_rotations(n_rot, random_state=rng)
    return np.stack([distance_matrix(xyz, xyz @ r) for r in rot])


def test_spin_costs_equal_scipy_and_certified(rng):
    costs = _spin_costs(rng, 90, 150)
    cols, certified = linear_assignment(costs)
    np.testing.assert_array_equal(cols, _scipy_cols(costs))
    # the problems are contested (nearest columns collide), so the augmenting paths ran, and
    # the fast path answered every one of them (no scipy fallback)
    nearest = costs.argmin(axis=2)
    n_distinct = np.array([len(np.unique(row)) for row in nearest])
    assert (n_distinct < costs.shape[1]).all()
    assert certified.all()


def test_designed_contested_rows():
    # rows 0 and 1 both have column 0 nearest; the optimum gives row 0 its second choice
    cost = np.array([[1.0, 2.0, 10.0, 9.0],
                     [1.5, 5.0, 10.0, 9.5],
                     [10.0, 10.0, 1.0, 3.0],
                     [9.0, 8.0, 1.2, 4.0]])
    cols, certified = linear_assignment(cost[None])
    assert cols[:, 0].tolist() == [1, 0, 3, 2] == linear_sum_assignment(cost)[1].tolist()
    assert certified[0]


def _optimal_set(cost):
    perms = np.array(list(itertools.permutations(range(len(cost)))))
    totals = cost[np.arange(len(cost)), perms].sum(axis=1)
    best = totals.min()
    return perms[totals <= best + 1e-9 * max(1.0, abs(best))]


def test_ties_follow_scipy_and_are_never_certified(rng):
    # small integer costs: many matrices have several optimal assignments. Certified answers
    # must be the unique optimum (brute force); the others are scipy's by construction
    costs = rng.integers(0, 4, size=(400, 6, 6)).astype(float)
    cols, certified = linear_assignment(costs)
    np.testing.assert_array_equal(cols, _scipy_cols(costs))
    n_unique = 0
    for b, cost in enumerate(costs):
        optima = _optimal_set(cost)
        if certified[b]:
            assert len(optima) == 1 and (optima[0] == cols[:, b]).all()
        n_unique += len(optima) == 1
        if len(optima) > 1:
            assert not certified[b]
    assert 0 < certified.sum() and certified.sum() < len(costs)  # both paths exercised
    assert certified.sum() == n_unique  # and every unique optimum was certified


def test_near_tie_goes_to_scipy():
    # two assignments 1e-12 apart: closer than the certificate's margin, so scipy decides
    for delta in (0.0, 1e-12, -1e-12):
        cost = np.array([[1.0, 2.0], [2.0, 3.0 + delta]])
        cols, certified = linear_assignment(cost[None])
        assert not certified[0]
        assert cols[:, 0].tolist() == linear_sum_assignment(cost)[1].tolist()
    cols, certified = linear_assignment(np.array([[[1.0, 2.0], [2.0, 3.5]]]))
    assert certified[0] and cols[:, 0].tolist() == [1, 0]


def test_symmetric_points_tie_like_scipy():
    # octahedron turned 45 degrees about z: each equatorial vertex is equidistant from two
    # rotated ones, so several assignments are optimal
    pts = np.vstack([np.eye(3), -np.eye(3)]) * 100
    c, s = np.cos(np.pi / 4), np.sin(np.pi / 4)
    rot = np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])
    cost = distance_matrix(pts, pts @ rot)
    cols, certified = linear_assignment(cost[None])
    assert not certified[0]
    np.testing.assert_array_equal(cols[:, 0], linear_sum_assignment(cost)[1])


def test_huge_costs_go_to_scipy():
    cost = np.array([[[1e250, 2e250], [3e250, 1e250]]])
    cols, certified = linear_assignment(cost)
    assert not certified[0] and cols[:, 0].tolist() == [0, 1]


def test_errors():
    with pytest.raises(InputError, match="NaN or infinite"):
        linear_assignment(np.array([[[1.0, np.nan], [0.0, 1.0]]]))
    with pytest.raises(InputError, match=r"\(n_matrices, n, n\).*\(1, 2, 3\)"):
        linear_assignment(np.zeros((1, 2, 3)))
