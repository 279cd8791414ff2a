"""Local maxima and per-cluster peaks, against brute-force oracles and planted blobs."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from graymatter.errors import InputError
from graymatter.io.images import MaskedGrid
from graymatter.stats.peaks import cluster_peaks, local_maxima

SHAPE = (7, 8, 9)


def _offsets(connectivity):
    # 6: faces (|d| sum 1), 18: + edges (sum <= 2), 26: + corners
    limit = {6: 1, 18: 2, 26: 3}[connectivity]
    return [d for d in itertools.product((-1, 0, 1), repeat=3)
            if d != (0, 0, 0) and sum(map(abs, d)) <= limit]


def _brute_maxima(volume, region, connectivity=26):
    """Every voxel of ``region`` >= all its neighbours in ``region`` (loops, no scipy)."""
    found = []
    for ijk in zip(*np.nonzero(region)):
        ok = True
        for d in _offsets(connectivity):
            n = tuple(a + b for a, b in zip(ijk, d))
            if all(0 <= n[a] < volume.shape[a] for a in range(3)) and region[n]:
                if volume[n] > volume[ijk]:
                    ok = False
                    break
        if ok:
            found.append(ijk)
    return found


def _blob(grid, centre_mm, sigma_mm, amplitude):
    d2 = ((grid.coordinates() - np.asarray(centre_mm, float)) ** 2).sum(axis=1)
    return amplitude * np.exp(-d2 / (2 * sigma_mm**2))


def _index_of(grid, ijk):
    index = np.full(grid.shape, -1)
    index[grid.mask] = np.arange(grid.n_voxels)
    return int(index[tuple(ijk)])


def _spm_list_choice(maxima, xyz, num=3, dis=8.0):
    """SPM12 spm_list's loop: D = [top]; add d when min distance to D > Dis and len(D) < Num."""
    kept = [maxima[0]]
    for d in maxima:
        if min(np.sqrt(((xyz[kept] - xyz[d]) ** 2).sum(axis=1))) > dis and len(kept) < num:
            kept.append(d)
    return kept


def test_two_gaussian_blobs_give_their_centres_highest_first():
    grid = MaskedGrid(np.ones(SHAPE, bool), np.eye(4))
    values = _blob(grid, (1, 2, 2), 1.0, 2.0) + _blob(grid, (5, 5, 6), 1.0, 3.0)
    found = local_maxima(values, grid)
    assert found.tolist() == [_index_of(grid, (5, 5, 6)), _index_of(grid, (1, 2, 2))]
    assert values[found[0]] == pytest.approx(3.0)


@pytest.mark.parametrize("connectivity", [6, 18, 26])
def test_local_maxima_match_brute_force_with_partial_mask(rng, connectivity):
    mask = rng.random(SHAPE) < 0.8
    grid = MaskedGrid(mask, np.diag([-2.0, 2.0, 2.0, 1.0]))
    values = rng.normal(size=grid.n_voxels)  # continuous: no ties
    volume = np.full(SHAPE, np.nan)
    volume[mask] = values
    expected = {_index_of(grid, ijk) for ijk in _brute_maxima(volume, mask, connectivity)}
    found = local_maxima(values, grid, connectivity=connectivity)
    assert set(found.tolist()) == expected
    assert np.all(np.diff(values[found]) <= 0)  # sorted by decreasing value
    assert len(found) > 5


def test_plateau_gives_one_representative_inside_it():
    grid = MaskedGrid(np.ones(SHAPE, bool), np.eye(4))
    # A background sloping down from the block, so only the planted tops are maxima.
    volume = -0.01 * np.linalg.norm(np.indices(SHAPE).T - (1.5, 1.5, 2), axis=-1).T
    volume[1:3, 1:3, 1:4] = 5.0  # a 2x2x3 flat top
    volume[5, 6, 7] = 4.0  # and an ordinary maximum
    values = volume[grid.mask]
    found = local_maxima(values, grid)
    assert len(found) == 2
    assert values[found[0]] == 5.0 and values[found[1]] == 4.0
    ijk = np.argwhere(grid.mask)[found[0]]
    assert tuple(ijk) in {(i, j, 2) for i in (1, 2) for j in (1, 2)}  # a central voxel
    # Two separate plateaus of the same height are two maxima.
    volume[5, 6, 7] = 5.0
    assert len(local_maxima(volume[grid.mask], grid)) == 2


def test_mask_voxels_restrict_the_search_like_spm_max():
    grid = MaskedGrid(np.ones(SHAPE, bool), np.eye(4))
    values = _blob(grid, (1, 2, 2), 1.5, 2.0) + _blob(grid, (5, 5, 6), 1.5, 3.0)
    search = grid.coordinates()[:, 0] <= 3  # excludes the higher blob at x = 5
    found = local_maxima(values, grid, mask_voxels=search)
    assert np.all(search[found])
    assert _index_of(grid, (5, 5, 6)) not in found
    assert found[0] == _index_of(grid, (1, 2, 2))
    # The border of the search set facing the excluded blob rises towards it: as in spm_max,
    # neighbours outside the set are ignored, so its top there is reported too.
    border = [grid.coordinates()[i] for i in found[1:]]
    assert border and all(c[0] == 3 for c in border)
    assert set(found.tolist()) == {_index_of(grid, ijk) for ijk in _brute_maxima(
        grid.to_image(values).get_fdata(), search.reshape(SHAPE))}


def test_nan_voxels_are_ignored_and_empty_search_gives_nothing():
    grid = MaskedGrid(np.ones(SHAPE, bool), np.eye(4))
    values = _blob(grid, (3, 3, 3), 1.0, 2.0)
    values[_index_of(grid, (3, 3, 3))] = np.nan
    found = local_maxima(values, grid)
    assert _index_of(grid, (3, 3, 3)) not in found
    assert np.all(np.isfinite(values[found]))
    assert local_maxima(values, grid, mask_voxels=np.zeros(grid.n_voxels, bool)).size == 0


def test_local_maxima_errors_name_the_argument():
    grid = MaskedGrid(np.ones(SHAPE, bool), np.eye(4))
    with pytest.raises(InputError, match="connectivity"):
        local_maxima(np.zeros(grid.n_voxels), grid, connectivity=8)
    with pytest.raises(InputError, match=r"values must have shape \(n_voxels,\)"):
        local_maxima(np.zeros(5), grid)
    with pytest.raises(InputError, match="mask_voxels must be a boolean"):
        local_maxima(np.zeros(grid.n_voxels), grid, mask_voxels=np.ones(grid.n_voxels))


# -- cluster_peaks ----------------------------------------------------------------------------

def _smooth_clusters(rng, shape=(20, 22, 18), height=1.0):
    grid = MaskedGrid(np.ones(shape, bool), np.diag([-2.0, 2.0, 2.0, 1.0]))
    field = ndimage.gaussian_filter(rng.normal(size=shape), 1.5)
    field /= field.std()
    labels, n = ndimage.label(field > height, ndimage.generate_binary_structure(3, 2))
    return grid, field[grid.mask], labels[grid.mask], n


def test_cluster_peaks_follow_the_spm_rule_against_brute_force(rng):
    grid, values, labels, n = _smooth_clusters(rng)
    assert n >= 5
    peaks = cluster_peaks(values, grid, labels)
    xyz = grid.coordinates()
    label_volume = labels.reshape(grid.shape)
    volume = values.reshape(grid.shape)
    multi = 0
    for k in range(1, n + 1):
        got = peaks[peaks["cluster"] == k]
        # Oracle: brute-force maxima inside the cluster, SPM's greedy selection (> 8 mm).
        maxima = [_index_of(grid, ijk) for ijk in _brute_maxima(volume, label_volume == k)]
        maxima.sort(key=lambda i: -values[i])
        kept = _spm_list_choice(maxima, xyz)
        assert got["voxel"].tolist() == kept
        assert got["peak_rank"].tolist() == list(range(1, len(kept) + 1))
        assert got["value"].iloc[0] == values[labels == k].max()
        assert np.all(np.diff(got["value"]) <= 0)
        pts = got[["x", "y", "z"]].to_numpy()
        np.testing.assert_allclose(pts, xyz[got["voxel"]])
        for a, b in itertools.combinations(range(len(pts)), 2):
            assert np.linalg.norm(pts[a] - pts[b]) > 8.0
        multi += len(got) > 1
    assert multi >= 1  # the check above covered sub-peaks too
    assert peaks["peak_rank"].max() <= 3


def test_two_blobs_6mm_apart_give_one_peak_16mm_apart_two():
    grid = MaskedGrid(np.ones((24, 12, 12), bool), np.diag([2.0, 2.0, 2.0, 1.0]))
    # Sharp blobs 6 mm apart still have two maxima; wide blobs 16 mm apart form one cluster.
    for gap, sigma, expected in ((6.0, 1.5, 1), (16.0, 4.0, 2)):
        values = (_blob(grid, (14, 10, 10), sigma, 4.0)
                  + _blob(grid, (14 + gap, 10, 10), sigma, 3.5))
        labels = (values > 0.5).astype(int)
        assert ndimage.label(labels.reshape(grid.shape))[1] == 1  # one cluster
        assert len(local_maxima(values, grid, mask_voxels=labels > 0)) == 2
        peaks = cluster_peaks(values, grid, labels)
        assert len(peaks) == expected
        assert tuple(peaks.iloc[0][["x", "y", "z"]]) == (14, 10, 10)
        if expected == 2:
            assert tuple(peaks.iloc[1][["x", "y", "z"]]) == (30, 10, 10)


def test_cluster_peaks_options_and_empty_labels(rng):
    grid, values, labels, n = _smooth_clusters(rng)
    one = cluster_peaks(values, grid, labels, max_peaks=1)
    assert sorted(one["cluster"]) == list(range(1, n + 1))
    assert (one["peak_rank"] == 1).all()
    dense = cluster_peaks(values, grid, labels, max_peaks=50, min_distance_mm=0.0)
    maxima = local_maxima(values, grid, mask_voxels=labels > 0)
    # Without a distance rule every in-cluster maximum is a peak (clusters do not touch).
    assert set(dense["voxel"]) == set(maxima.tolist())
    empty = cluster_peaks(values, grid, np.zeros_like(labels))
    assert empty.empty
    assert list(empty.columns) == ["cluster", "peak_rank", "voxel", "x", "y", "z", "value"]
    assert isinstance(empty, pd.DataFrame)


def test_cluster_peaks_compare_only_within_the_same_cluster():
    # Two 18-connected clusters touching at a corner: the lower one's top voxel has a higher
    # corner neighbour in the other cluster, yet it is its own cluster's peak.
    grid = MaskedGrid(np.ones((4, 4, 4), bool), np.eye(4))
    volume = np.zeros((4, 4, 4))
    volume[1, 1, 1], volume[2, 2, 2] = 2.0, 3.0
    labels = np.zeros((4, 4, 4), int)
    labels[1, 1, 1], labels[2, 2, 2] = 1, 2
    peaks = cluster_peaks(volume[grid.mask], grid, labels[grid.mask])
    assert peaks["cluster"].tolist() == [1, 2]
    assert peaks["value"].tolist() == [2.0, 3.0]


def test_cluster_peaks_errors():
    grid = MaskedGrid(np.ones(SHAPE, bool), np.eye(4))
    values = np.zeros(grid.n_voxels)
    with pytest.raises(InputError, match="labels must be >= 0"):
        cluster_peaks(values, grid, -np.ones(grid.n_voxels, int))
    with pytest.raises(InputError, match="labels must hold integer"):
        cluster_peaks(values, grid, np.full(grid.n_voxels, 0.5))
    with pytest.raises(InputError, match="max_peaks"):
        cluster_peaks(values, grid, np.zeros(grid.n_voxels, int), max_peaks=0)
    with pytest.raises(InputError, match="min_distance_mm"):
        cluster_peaks(values, grid, np.zeros(grid.n_voxels, int), min_distance_mm=-1)


def _pair_image(distance_mm):
    """Two sharp maxima 4 voxels apart along i, with voxels distance/4 mm wide along i."""
    shape = (17, 7, 7)
    affine = np.diag([distance_mm / 4, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-10.0, -6.0, -6.0]
    ijk = np.indices(shape).astype(float)
    volume = np.zeros(shape)
    for centre, height in (((6, 3, 3), 5.0), ((10, 3, 3), 4.0)):
        d2 = sum((ijk[a] - centre[a]) ** 2 for a in range(3))
        volume += height * np.exp(-d2 / 2.0)
    return volume, affine


@pytest.mark.parametrize("distance, expected", [(8.0, 1), (8.0 + 1e-6, 2), (7.9, 1)])
def test_subpeak_exactly_8mm_away_is_dropped_as_in_spm_and_nilearn(distance, expected):
    import warnings

    from nilearn.reporting import get_clusters_table

    volume, affine = _pair_image(distance)
    grid = MaskedGrid(np.ones(volume.shape, bool), affine)
    values = volume[grid.mask]
    labels = (values > 0.5).astype(int)
    assert ndimage.label(labels.reshape(grid.shape))[1] == 1  # one cluster
    maxima = local_maxima(values, grid, mask_voxels=labels > 0)
    assert len(maxima) == 2
    xyz = grid.coordinates()
    gap = np.linalg.norm(xyz[maxima[0]] - xyz[maxima[1]])
    assert gap == pytest.approx(distance, abs=1e-12)
    assert (gap > 8.0) == (expected == 2)
    peaks = cluster_peaks(values, grid, labels)
    assert peaks["voxel"].tolist() == _spm_list_choice(maxima.tolist(), xyz)
    assert len(peaks) == expected
    # nilearn's get_clusters_table applies the same rule (dist > min_distance) on the image.
    import nibabel as nib

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = get_clusters_table(nib.Nifti1Image(volume, affine), stat_threshold=0.5,
                                   min_distance=8.0)
    assert len(table) == expected
    np.testing.assert_allclose(table[["X", "Y", "Z"]].to_numpy(float),
                               peaks[["x", "y", "z"]].to_numpy(), atol=1e-9)
