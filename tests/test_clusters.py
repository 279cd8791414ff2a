"""Cluster labels checked against scipy.ndimage.label, hand-computed sizes/masses, batch maxima."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from graymatter.errors import GraymatterError, InputError
from graymatter.io.images import MaskedGrid
from graymatter.stats.clusters import (
    ClusterLabels,
    ClusterStatistic,
    connectivity_structure,
    label_clusters,
    voxel_neighbours,
)

SHAPE = (7, 8, 9)  # odd, distinct axis lengths catch axis mix-ups


def smooth_volume(rng, shape=SHAPE, sigma=1.0):
    vol = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return vol / vol.std()


@pytest.fixture
def masked(rng):
    """A smooth random map on a 7x8x9 grid with an irregular mask (holes, touching the border)."""
    vol = smooth_volume(rng)
    mask = smooth_volume(rng, sigma=1.5) > -0.3
    assert 0.4 < mask.mean() < 0.9 and mask[0].any() and mask[-1].any()
    return vol, MaskedGrid(mask, np.eye(4))


def same_partition(ours: np.ndarray, theirs: np.ndarray) -> bool:
    """True when two label vectors (0 = background) describe the same clusters."""
    if not np.array_equal(ours > 0, theirs > 0):
        return False
    pairs = np.unique(np.column_stack([ours, theirs])[ours > 0], axis=0)
    # a bijection: each of our labels meets one of theirs and vice versa
    return (len(np.unique(pairs[:, 0])) == len(pairs) == len(np.unique(pairs[:, 1])))


@pytest.mark.parametrize("connectivity, rank, count", [(6, 1, 7), (18, 2, 19), (26, 3, 27)])
def test_connectivity_structure_is_scipys(connectivity, rank, count):
    structure = connectivity_structure(connectivity)
    assert structure.shape == (3, 3, 3) and structure.dtype == bool
    assert int(structure.sum()) == count
    np.testing.assert_array_equal(structure, ndimage.generate_binary_structure(3, rank))


@pytest.mark.parametrize("bad", [5, 0, 8, 27, "18", None, True, 18.5, [6]])
def test_bad_connectivity_lists_choices(bad, masked):
    _, grid = masked
    for call in (lambda: connectivity_structure(bad),
                 lambda: voxel_neighbours(grid, bad),
                 lambda: label_clusters(np.zeros(grid.n_voxels), grid, height=1.0,
                                        connectivity=bad),
                 lambda: ClusterStatistic(grid, height=1.0, connectivity=bad)):
        with pytest.raises(InputError, match="6, 18, 26") as info:
            call()
        assert repr(bad) in str(info.value)


@pytest.mark.parametrize("connectivity", [6, 18, 26])
def test_voxel_neighbours_brute_force(masked, connectivity):
    _, grid = masked
    nbr = voxel_neighbours(grid, connectivity)
    assert nbr.shape == (grid.n_voxels, connectivity) and nbr.dtype == np.int32
    ijk = np.argwhere(grid.mask)  # voxel order = C order of data[mask]
    diff = np.abs(ijk[:, None, :] - ijk[None, :, :])
    rank = {6: 1, 18: 2, 26: 3}[connectivity]
    adjacent = (diff.max(axis=2) == 1) & (diff.sum(axis=2) <= rank)
    for v in range(grid.n_voxels):
        found = nbr[v][nbr[v] >= 0]
        assert sorted(found.tolist()) == np.flatnonzero(adjacent[v]).tolist()
        half = nbr[v, : connectivity // 2]
        assert np.all(half[half >= 0] < v)  # first half: earlier voxels
        rest = nbr[v, connectivity // 2:]
        assert np.all(rest[rest >= 0] > v)
    assert voxel_neighbours(grid, connectivity) is nbr  # cached per grid
    assert not nbr.flags.writeable


@pytest.mark.parametrize("connectivity", [6, 18, 26])
@pytest.mark.parametrize("height", [-0.5, 0.3, 1.0, 2.0])
def test_labels_match_scipy(rng, masked, connectivity, height):
    vol, grid = masked
    values = vol[grid.mask]
    found = label_clusters(values, grid, height=height, connectivity=connectivity)
    scipy_labels, n = ndimage.label((vol > height) & grid.mask,
                                    connectivity_structure(connectivity))
    assert found.n_clusters == n
    assert same_partition(found.labels, scipy_labels[grid.mask])
    # sizes and masses by hand, label k + 1 <-> sizes[k]
    for k in range(n):
        members = found.labels == k + 1
        assert found.sizes[k] == members.sum()
        assert found.masses[k] == pytest.approx(np.sum(values[members] - height), rel=1e-12)
    assert np.all(np.diff(found.sizes) <= 0)
    ties = np.diff(found.sizes) == 0
    assert np.all(np.diff(found.masses)[ties] <= 0)
    assert found.labels.dtype == np.int32 and found.height == height
    assert found.connectivity == connectivity


def test_labels_match_scipy_on_a_larger_grid(rng):
    vol = smooth_volume(rng, (31, 40, 27), sigma=1.5)
    mask = smooth_volume(rng, (31, 40, 27), sigma=3.0) > -0.8
    grid = MaskedGrid(mask, np.eye(4))
    found = label_clusters(vol[mask], grid, height=1.2)
    scipy_labels, n = ndimage.label((vol > 1.2) & mask, connectivity_structure(18))
    assert found.n_clusters == n > 5
    assert same_partition(found.labels, scipy_labels[mask])
    sizes = np.sort(np.bincount(scipy_labels[mask])[1:])[::-1]
    np.testing.assert_array_equal(found.sizes, sizes)


def test_hand_example_strict_height_order_and_ties():
    grid = MaskedGrid(np.ones((1, 1, 12), bool), np.eye(4))
    values = np.array([3.0, 5.0, 2.0, 4.0, 4.5, 3.5, 2.0, 2.5, 2.0, 2.0, 6.0, np.nan])
    # height 2: voxel 2 (== height) breaks the line; voxels 6, 8, 9 are exactly at the height
    found = label_clusters(values, grid, height=2.0, connectivity=6)
    # clusters: {0,1} mass 1+3=4, {3,4,5} mass 2+2.5+1.5=6, {7} mass .5, {10} mass 4
    assert found.sizes.tolist() == [3, 2, 1, 1]
    assert found.masses.tolist() == [6.0, 4.0, 4.0, 0.5]  # size ties: larger mass first
    assert found.labels.tolist() == [2, 2, 0, 1, 1, 1, 0, 4, 0, 0, 3, 0]
    assert isinstance(found, ClusterLabels)


def test_equal_size_and_mass_ties_follow_voxel_order():
    grid = MaskedGrid(np.ones((1, 1, 5), bool), np.eye(4))
    found = label_clusters([2.0, 0.0, 2.0, 0.0, 2.0], grid, height=1.0)
    assert found.labels.tolist() == [1, 0, 2, 0, 3]


def test_mask_holes_and_image_border_separate_clusters():
    mask = np.ones((3, 3, 3), bool)
    mask[1, 1, 1] = False  # a hole in the middle
    grid = MaskedGrid(mask, np.eye(4))
    vol = np.zeros((3, 3, 3))
    vol[0, 1, 1] = vol[2, 1, 1] = 5.0  # connected only through the hole
    found = label_clusters(vol[mask], grid, height=1.0, connectivity=26)
    assert found.n_clusters == 2
    # no wrap-around: the first and last slices of a line are not neighbours
    line = MaskedGrid(np.ones((1, 1, 4), bool), np.eye(4))
    assert label_clusters([5.0, 0.0, 0.0, 5.0], line, height=1.0).n_clusters == 2


def test_nothing_above_height():
    grid = MaskedGrid(np.ones((2, 3, 4), bool), np.eye(4))
    found = label_clusters(np.full(24, np.nan), grid, height=0.0)
    assert found.n_clusters == 0 and found.sizes.shape == (0,) and found.masses.shape == (0,)
    assert np.all(found.labels == 0)


@pytest.mark.parametrize("connectivity", [6, 18, 26])
def test_cluster_statistic_batch_equals_per_map(rng, masked, connectivity):
    vol, grid = masked
    maps = np.stack([smooth_volume(rng)[grid.mask] for _ in range(9)])
    maps[3] = -1.0  # no voxel above the height
    maps[5, ::7] = np.nan
    height = 0.8
    stat = ClusterStatistic(grid, height=height, connectivity=connectivity, n_jobs=2)
    assert stat.names == ("cluster_extent", "cluster_mass")
    got = stat.maxima(maps)
    assert set(got) == set(stat.names)
    for b in range(len(maps)):
        found = label_clusters(maps[b], grid, height=height, connectivity=connectivity)
        assert got["cluster_extent"][b] == (found.sizes.max() if found.n_clusters else 0.0)
        assert got["cluster_mass"][b] == pytest.approx(
            found.masses.max() if found.n_clusters else 0.0, rel=1e-12)
    assert got["cluster_extent"][3] == 0.0 and got["cluster_mass"][3] == 0.0
    serial = ClusterStatistic(grid, height=height, connectivity=connectivity, n_jobs=1)
    again = serial.maxima(maps)
    for name in stat.names:
        assert got[name].shape == (len(maps),) and got[name].dtype == np.float64
        np.testing.assert_array_equal(got[name], again[name])  # independent of n_jobs


def test_cluster_mass_and_extent_maxima_can_come_from_different_clusters():
    grid = MaskedGrid(np.ones((1, 1, 7), bool), np.eye(4))
    maps = np.array([[1.5, 1.5, 1.5, 0.0, 9.0, 0.0, 0.0]])
    got = ClusterStatistic(grid, height=1.0).maxima(maps)
    assert got["cluster_extent"].tolist() == [3.0]
    assert got["cluster_mass"].tolist() == [8.0]


def test_wrong_lengths_name_both_numbers(masked):
    _, grid = masked
    m = grid.n_voxels
    with pytest.raises(InputError, match=rf"\({m - 1},\).*{m} mask voxels"):
        label_clusters(np.zeros(m - 1), grid, height=1.0)
    with pytest.raises(InputError, match="grid.mask"):
        label_clusters(np.zeros(grid.shape), grid, height=1.0)
    stat = ClusterStatistic(grid, height=1.0)
    with pytest.raises(InputError, match=rf"\(3, {m + 2}\).*{m} mask voxels"):
        stat.maxima(np.zeros((3, m + 2)))


@pytest.mark.parametrize("height", [np.nan, np.inf, "3.1", None])
def test_bad_height(masked, height):
    _, grid = masked
    with pytest.raises(GraymatterError, match="height must be a finite number"):
        label_clusters(np.zeros(grid.n_voxels), grid, height=height)
    with pytest.raises(GraymatterError, match="height must be a finite number"):
        ClusterStatistic(grid, height=height)


def test_bad_grid_and_n_jobs(masked):
    _, grid = masked
    with pytest.raises(InputError, match="MaskedGrid"):
        label_clusters(np.zeros(5), np.ones((1, 1, 5), bool), height=1.0)
    with pytest.raises(InputError, match="n_jobs"):
        ClusterStatistic(grid, height=1.0, n_jobs=0)
