"""Spin permutations: agreement with neuromaps, permutation properties, rotations, errors."""

from __future__ import annotations

import numpy as np
import pytest

from graymatter.errors import GraymatterWarning, InputError
from graymatter.transcriptomics import nulls as nulls_mod
from graymatter.transcriptomics.centroids import parcel_centroids
from graymatter.transcriptomics.nulls import (permutation_nulls, random_rotations,
                                              spin_permutations)

NEUROMAPS_NAME = {"vasa": "vasa", "hungarian": "hungarian", "alexander-bloch": "original"}


@pytest.fixture(scope="module")
def hcp(shared_data):
    c = np.loadtxt(shared_data / "surfaces" / "sphere_HCP_centroids.txt")
    return c[:180], c[180:]


def _sphere_points(rng, n, radius=100.0):
    xyz = rng.normal(size=(n, 3))
    return radius * xyz / np.linalg.norm(xyz, axis=1, keepdims=True)


# ----------------------------------------------------------------------------- rotations

def test_rotations_are_proper_and_match_neuromaps_draws():
    from neuromaps.nulls.spins import _gen_rotation

    rot = random_rotations(200, random_state=np.random.RandomState(42))
    np.testing.assert_allclose(np.matmul(rot.transpose(0, 2, 1), rot),
                               np.broadcast_to(np.eye(3), rot.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-12)
    rs = np.random.RandomState(42)
    ref = np.stack([_gen_rotation(rs)[0] for _ in range(200)])
    np.testing.assert_array_equal(rot, ref)


def test_rotations_uniform_on_so3():
    # Haar measure on SO(3): E[tr R] = 0, E[tr(R)^2] = 1, and R maps a fixed axis uniformly
    # onto the sphere (mean 0, second moment I/3)
    rot = random_rotations(20000, random_state=3)
    tr = np.trace(rot, axis1=1, axis2=2)
    se = 1 / np.sqrt(len(rot))
    assert abs(tr.mean()) < 5 * se
    assert abs((tr ** 2).mean() - 1.0) < 5 * np.sqrt(2) * se * 1.5
    pts = np.array([0.0, 0.0, 1.0]) @ rot
    assert np.abs(pts.mean(axis=0)).max() < 5 * se
    np.testing.assert_allclose(pts.T @ pts / len(pts), np.eye(3) / 3, atol=0.015)


def test_rotation_seeding_reproducible():
    a = random_rotations(5, random_state=7)
    b = random_rotations(5, random_state=np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, random_rotations(5, random_state=8))


# ----------------------------------------------------------------------------- agreement

@pytest.mark.parametrize("method", ["vasa", "hungarian", "alexander-bloch"])
def test_identical_to_neuromaps_hcp_both_hemispheres(hcp, method):
    from neuromaps.nulls.spins import gen_spinsamples

    lh, rh = hcp
    n_rot = 25
    # neuromaps draws one rotation per spin from check_random_state(seed) = RandomState(seed)
    # with _gen_rotation; the same RandomState passed to random_rotations gives the same
    # matrices, so the assignments can be compared element by element
    rot = random_rotations(n_rot, random_state=np.random.RandomState(2018))
    ours = spin_permutations(lh, rh, rotations=rot, method=method)
    ref = gen_spinsamples(np.vstack([lh, rh]), np.r_[np.zeros(len(lh)), np.ones(len(rh))],
                          n_rotate=n_rot, method=NEUROMAPS_NAME[method], seed=2018,
                          check_duplicates=False)
    np.testing.assert_array_equal(ours, ref)
    # random_state=RandomState gives the same thing without building rotations by hand
    again = spin_permutations(lh, rh, n_rotations=n_rot, method=method,
                              random_state=np.random.RandomState(2018))
    np.testing.assert_array_equal(again, ref)


@pytest.mark.parametrize("method", ["vasa", "hungarian", "alexander-bloch"])
def test_identical_to_neuromaps_dk_fsaverage5(shared_data, method):
    from neuromaps.nulls.spins import gen_spinsamples

    surf = shared_data / "surfaces"
    lh = parcel_centroids(surf / "fsa5_lh_aparc.annot", surf / "fsa5_sphere_lh.gii")
    rh = parcel_centroids(surf / "fsa5_rh_aparc.annot", surf / "fsa5_sphere_rh.gii")
    ours = spin_permutations(lh, rh, n_rotations=100, method=method,
                             random_state=np.random.RandomState(5))
    ref = gen_spinsamples(np.vstack([lh, rh]), np.r_[np.zeros(len(lh)), np.ones(len(rh))],
                          n_rotate=100, method=NEUROMAPS_NAME[method], seed=5,
                          check_duplicates=False)
    np.testing.assert_array_equal(ours, ref)


# ----------------------------------------------------------------------------- properties

def test_unique_methods_give_permutations_and_ab_repeats(hcp):
    lh, rh = hcp
    rot = random_rotations(200, random_state=1)
    n = len(lh) + len(rh)
    for method in ("vasa", "hungarian"):
        idx = spin_permutations(lh, rh, rotations=rot, method=method)
        assert idx.shape == (n, 200) and idx.dtype == np.int64
        np.testing.assert_array_equal(np.sort(idx, axis=0),
                                      np.broadcast_to(np.arange(n)[:, None], idx.shape))
        assert (idx[:180] < 180).all() and (idx[180:] >= 180).all()
    ab = spin_permutations(lh, rh, rotations=rot, method="alexander-bloch")
    n_unique = np.array([len(np.unique(col)) for col in ab.T])
    assert (n_unique < n).mean() > 0.9  # nearest-centroid spins almost always repeat parcels


def test_costs_ordering(hcp):
    # per parcel, nearest (A-B) <= any unique assignment; in total, Hungarian <= Váša
    lh, _ = hcp
    rot = random_rotations(30, random_state=4)
    idx = {m: spin_permutations(lh, rotations=rot, method=m) for m in nulls_mod.METHODS}
    for k in range(len(rot)):
        moved = lh @ rot[k]
        cost = {m: np.linalg.norm(moved[idx[m][:, k]] - lh, axis=1) for m in idx}
        assert (cost["alexander-bloch"] <= cost["vasa"] + 1e-9).all()
        assert cost["hungarian"].sum() <= cost["vasa"].sum() + 1e-9
        dist = np.linalg.norm(lh[:, None] - moved[None], axis=-1)
        np.testing.assert_array_equal(idx["alexander-bloch"][:, k], dist.argmin(axis=1))


def test_vasa_matches_naive_reference_on_random_points(rng):
    # a direct transcription of the published loop (O(n^3)), on points with many near-ties
    pts = np.round(_sphere_points(rng, 60), 1)
    rot = random_rotations(20, random_state=rng)
    idx = spin_permutations(pts, rotations=rot, method="vasa")
    for k in range(len(rot)):
        dist = np.linalg.norm(pts @ rot[k] - pts[:, None], axis=-1)
        col = np.zeros(len(pts), int)
        for _ in range(len(pts)):
            row = dist.min(axis=1).argmax()
            col[row] = dist[row].argmin()
            dist[row] = -np.inf
            dist[:, col[row]] = np.inf
        np.testing.assert_array_equal(idx[:, k], col)


@pytest.mark.parametrize("method", ["vasa", "hungarian", "alexander-bloch"])
def test_identity_rotation_gives_identity(hcp, method):
    lh, rh = hcp
    idx = spin_permutations(lh, rh, rotations=np.eye(3)[None], method=method)
    np.testing.assert_array_equal(idx[:, 0], np.arange(360))


def test_same_result_whatever_n_jobs(hcp, monkeypatch):
    lh, rh = hcp
    monkeypatch.setattr(nulls_mod, "_BATCH", 16)  # several batches per thread, uneven split
    rot = random_rotations(101, random_state=8)
    for method in nulls_mod.METHODS:
        one = spin_permutations(lh, rh, rotations=rot, method=method, n_jobs=1)
        for n_jobs in (2, 3, None):
            np.testing.assert_array_equal(
                spin_permutations(lh, rh, rotations=rot, method=method, n_jobs=n_jobs), one)
    with pytest.raises(InputError, match="n_jobs"):
        spin_permutations(lh, n_rotations=2, n_jobs=0)


def test_hungarian_equals_scipy_on_spin_distances(hcp):
    # scipy on the very distance matrices neuromaps builds, over more rotations than the
    # neuromaps comparison above
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial import distance_matrix

    lh, _ = hcp
    rot = random_rotations(150, random_state=21)
    idx = spin_permutations(lh, rotations=rot, method="hungarian")
    for k in range(len(rot)):
        ref = linear_sum_assignment(distance_matrix(lh, lh @ rot[k]))[1]
        np.testing.assert_array_equal(idx[:, k], ref)


def test_hungarian_ties_follow_scipy():
    # octahedron vertices turned 45 degrees about z: several optimal assignments, decided by
    # scipy on the same distances
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial import distance_matrix

    pts = np.vstack([np.eye(3), -np.eye(3)]) * 100
    c, s = np.cos(np.pi / 4), np.sin(np.pi / 4)
    rot = np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])
    idx = spin_permutations(pts, rotations=rot[None], method="hungarian")
    np.testing.assert_array_equal(idx[:, 0],
                                  linear_sum_assignment(distance_matrix(pts, pts @ rot))[1])


def test_right_hemisphere_uses_mirrored_rotation(hcp):
    lh, _ = hcp
    mirror = lh * np.array([-1.0, 1.0, 1.0])  # the left centroids reflected onto the right
    idx = spin_permutations(lh, mirror, n_rotations=50, random_state=9)
    np.testing.assert_array_equal(idx[180:] - 180, idx[:180])


def test_seed_and_cache(hcp, tmp_path, monkeypatch):
    lh, _ = hcp
    a = spin_permutations(lh, n_rotations=20, random_state=3, cache_dir=tmp_path)
    files = list(tmp_path.glob("spins_vasa_*.npy"))
    assert len(files) == 1 and not list(tmp_path.glob(".*tmp*"))
    np.testing.assert_array_equal(np.load(files[0]), a)

    def boom(*args, **kwargs):
        raise AssertionError("should have been loaded from the cache")

    monkeypatch.setattr(nulls_mod, "_assign", boom)
    b = spin_permutations(lh, n_rotations=20, random_state=3, cache_dir=tmp_path)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(AssertionError, match="cache"):  # other seed -> other key -> recompute
        spin_permutations(lh, n_rotations=20, random_state=4, cache_dir=tmp_path)


def test_permutation_nulls():
    idx = permutation_nulls(50, n_perm=4000, random_state=0)
    assert idx.shape == (50, 4000)
    np.testing.assert_array_equal(np.sort(idx, axis=0),
                                  np.broadcast_to(np.arange(50)[:, None], idx.shape))
    np.testing.assert_array_equal(idx, permutation_nulls(50, n_perm=4000, random_state=0))
    # uniform permutations: each region lands in each position with probability 1/50, and the
    # number of fixed points has mean 1
    assert abs((idx == np.arange(50)[:, None]).sum(axis=0).mean() - 1.0) < 0.1
    assert abs((idx[0] == 7).mean() - 1 / 50) < 0.01


# ----------------------------------------------------------------------------- errors

def test_errors(hcp, rng):
    lh, _ = hcp
    with pytest.raises(InputError, match=r"shape \(n_regions, 3\).*\(180, 2\)"):
        spin_permutations(lh[:, :2])
    bad = lh.copy()
    bad[5, 1] = np.nan
    with pytest.raises(InputError, match="rows 5 have NaN"):
        spin_permutations(bad)
    with pytest.raises(InputError, match="method='spin'.*alexander-bloch, vasa, hungarian"):
        spin_permutations(lh, method="spin")
    with pytest.raises(InputError, match="n_rotations must be a positive integer, got 0"):
        spin_permutations(lh, n_rotations=0)
    with pytest.raises(InputError, match="centroids_rh"):
        spin_permutations(lh, np.zeros((3, 4)))
    reflect = np.diag([-1.0, 1.0, 1.0])[None]
    with pytest.raises(InputError, match="not proper rotations"):
        spin_permutations(lh, rotations=reflect)
    with pytest.raises(InputError, match=r"shape \(n_rotations, 3, 3\)"):
        spin_permutations(lh, rotations=np.zeros((2, 2, 2)))
    with pytest.raises(InputError, match="n_perm"):
        permutation_nulls(10, n_perm=-1)
    with pytest.warns(GraymatterWarning, match="not on a sphere"):
        spin_permutations(rng.normal(size=(20, 3)) * [1, 10, 100], n_rotations=2)
