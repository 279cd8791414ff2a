"""Exact TFCE against a slow level-by-level reference, Riemann sums, nilearn and closed forms."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from graymatter.errors import InputError
from graymatter.io.images import MaskedGrid
from graymatter.stats.clusters import connectivity_structure
from graymatter.stats.tfce import TFCEStatistic, tfce

SHAPE = (7, 8, 9)


def smooth_volume(rng, shape=SHAPE, sigma=1.0):
    vol = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return vol / vol.std()


@pytest.fixture
def masked(rng):
    vol = smooth_volume(rng)
    mask = smooth_volume(rng, sigma=1.5) > -0.3
    return vol, MaskedGrid(mask, np.eye(4))


def extents(vol, mask, h, connectivity):
    """Extent of each voxel's cluster among mask voxels with value >= h (0 outside)."""
    above = mask & (np.nan_to_num(vol, nan=-np.inf) >= h)
    labels, _ = ndimage.label(above, connectivity_structure(connectivity))
    sizes = np.bincount(labels.ravel()).astype(float)
    sizes[0] = 0.0
    return sizes[labels]


def reference_tfce(vol, mask, *, E=0.5, H=2.0, connectivity=26):
    """Slow but obviously correct: between consecutive distinct positive values h_{k-1} < h_k
    the clusters of {value >= h} do not change, so integrate h^H exactly on (h_{k-1}, h_k]."""
    values = vol[mask]
    levels = np.unique(values[values > 0])
    out = np.zeros(vol.shape)
    previous = 0.0
    for h in levels:
        e = extents(vol, mask, h, connectivity)
        out += e ** E * (h ** (H + 1) - previous ** (H + 1)) / (H + 1)
        previous = h
    return out[mask]


def riemann_tfce(vol, mask, *, E=0.5, H=2.0, connectivity=26, steps=10_000):
    """Right Riemann sum with steps of max/steps (FSL's scheme, times dh)."""
    dh = np.nanmax(vol[mask]) / steps
    out = np.zeros(vol.shape)
    for h in dh * np.arange(1, steps + 1):
        out += extents(vol, mask, h, connectivity) ** E * h ** H * dh
    return out[mask]


@pytest.mark.parametrize("connectivity", [6, 18, 26])
@pytest.mark.parametrize("E, H", [(0.5, 2.0), (1.0, 1.0), (2.0 / 3.0, 3.0)])
def test_exact_against_reference(rng, masked, connectivity, E, H):
    vol, grid = masked
    got = tfce(vol[grid.mask], grid, E=E, H=H, connectivity=connectivity)
    want = reference_tfce(vol, grid.mask, E=E, H=H, connectivity=connectivity)
    assert (want > 0).sum() > 50 and np.all(got[want == 0] == 0)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=0)


def test_exact_with_ties_nan_and_negative_values(rng, masked):
    vol, grid = masked
    vol = np.round(vol * 2) / 2  # many tied values: plateaus, and ties across clusters
    vol[rng.random(vol.shape) < 0.1] = np.nan
    values = vol[grid.mask]
    got = tfce(values, grid)
    want = reference_tfce(vol, grid.mask)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=0)
    assert np.all(got[~(values > 0)] == 0)  # NaN, zero and negative voxels get nothing


def test_fine_riemann_sum_within_half_a_percent(rng, masked):
    vol, grid = masked
    got = tfce(vol[grid.mask], grid)
    approx = riemann_tfce(vol, grid.mask)
    # A right sum misses about (H + 1) dh / value of a voxel's integral: judge voxels >= 10% of
    # the maximum relatively (<= 0.3% expected), all voxels against the largest TFCE.
    high = vol[grid.mask] >= 0.1 * vol[grid.mask].max()
    np.testing.assert_allclose(approx[high], got[high], rtol=5e-3)
    assert np.max(np.abs(approx - got)) < 5e-3 * got.max()


def test_nilearn_steps_approximate_the_exact_integral(rng):
    """nilearn sums e^E h^H over thresholds h = dh..max without the factor dh (as fslmaths).

    Times dh it is a right Riemann sum of the same integral (same >= semantics, same
    structure). Measured on this map with 26-connectivity, relative to the exact values: with
    nilearn's default 100 steps 0.53% at the peak, median 1.8% and at most 14% over voxels above
    10% of the maximum (where one step is a large part of the integral); with dh = max/1000,
    0.055% at the peak, median 0.16%, at most 1.3%.
    """
    utils = pytest.importorskip("nilearn.mass_univariate._utils")
    calculate_tfce = getattr(utils, "calculate_tfce", None) or getattr(utils, "_calculate_tfce")
    vol = smooth_volume(rng)
    mask = np.ones(vol.shape, bool)
    grid = MaskedGrid(mask, np.eye(4))
    got = tfce(vol[mask], grid)
    two = tfce(vol[mask], grid, two_sided=True)
    structure = connectivity_structure(26)
    high = vol[mask] >= 0.1 * vol.max()
    for steps, rtol_peak, rtol_high in [(100, 0.01, 0.2), (1000, 1e-3, 0.02)]:
        dh = vol.max() / steps
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nilearn warns about its step count
            theirs = calculate_tfce(vol[..., None], structure, dh=dh,
                                    two_sided_test=False)[..., 0][mask] * dh
        peak = np.argmax(got)
        assert theirs[peak] == pytest.approx(got[peak], rel=rtol_peak)
        np.testing.assert_allclose(theirs[high], got[high], rtol=rtol_high)
    # two-sided: positive part minus negated negative part, like nilearn's sign convention
    dh = np.abs(vol).max() / 1000
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = calculate_tfce(vol[..., None], structure, dh=dh,
                                two_sided_test=True)[..., 0][mask] * dh
    big = np.abs(vol[mask]) >= 0.2 * np.abs(vol).max()
    np.testing.assert_allclose(theirs[big], two[big], rtol=0.02)
    assert np.all(np.sign(two[big]) == np.sign(vol[mask][big]))


@pytest.mark.parametrize("E, H", [(0.5, 2.0), (1.0, 1.5), (0.25, 3.0)])
@pytest.mark.parametrize("t", [0.7, 3.1, 12.0])
def test_closed_forms(E, H, t):
    mask = np.ones((5, 6, 7), bool)
    grid = MaskedGrid(mask, np.eye(4))
    vol = np.zeros(mask.shape)
    vol[1, 1, 1] = t  # an isolated voxel: e = 1 all the way
    vol[3:5, 2:5, 3:6] = t  # a flat plateau of 2 * 3 * 3 = 18 voxels, away from the voxel
    got = tfce(vol[mask], grid, E=E, H=H).reshape(mask.shape)
    assert got[1, 1, 1] == pytest.approx(t ** (H + 1) / (H + 1), rel=1e-13)
    np.testing.assert_allclose(got[3:5, 2:5, 3:6], 18 ** E * t ** (H + 1) / (H + 1), rtol=1e-13)
    assert np.count_nonzero(got) == 19


def test_two_level_hand_example():
    # a voxel at 3 next to one at 1 (6-connected line): both share e = 2 on (0, 1],
    # the top voxel alone on (1, 3]
    grid = MaskedGrid(np.ones((1, 1, 4), bool), np.eye(4))
    got = tfce([3.0, 1.0, 0.0, 2.0], grid, E=0.5, H=2.0, connectivity=6)
    low = np.sqrt(2) * 1 / 3
    np.testing.assert_allclose(got, [low + (27 - 1) / 3, low, 0.0, 8 / 3], rtol=1e-14)


def test_two_sided_is_positive_minus_negated_negative(rng, masked):
    vol, grid = masked
    values = vol[grid.mask]
    two = tfce(values, grid, two_sided=True, connectivity=18)
    np.testing.assert_array_equal(
        two, tfce(values, grid, connectivity=18) - tfce(-values, grid, connectivity=18))
    assert np.all(two[values < 0] < 0) and np.all(two[values > 0] > 0)


def test_cluster_far_away_does_not_change_tfce():
    mask = np.ones((3, 4, 12), bool)
    grid = MaskedGrid(mask, np.eye(4))
    vol = np.zeros(mask.shape)
    vol[1, 1:3, 1:4] = [[1.0, 2.0, 1.5], [0.5, 2.5, 1.0]]
    alone = tfce(vol[mask], grid)
    vol[1, 1:3, 8:11] = 7.0  # another blob, not connected (columns 4-7 are zero)
    both = tfce(vol[mask], grid)
    first = np.zeros(mask.shape, bool)
    first[:, :, :6] = True
    np.testing.assert_array_equal(both[first[mask]], alone[first[mask]])


@pytest.mark.parametrize("two_sided", [False, True])
def test_statistic_batch_equals_per_map(rng, masked, two_sided):
    vol, grid = masked
    maps = np.stack([smooth_volume(rng)[grid.mask] for _ in range(7)])
    maps[2] = -np.abs(maps[2])  # no positive voxel
    maps[4, ::5] = np.nan
    stat = TFCEStatistic(grid, E=0.6, H=1.8, connectivity=18, two_sided=two_sided, n_jobs=2)
    assert stat.names == ("tfce",)
    got = stat.maxima(maps)["tfce"]
    want = [np.abs(tfce(m, grid, E=0.6, H=1.8, connectivity=18, two_sided=two_sided)).max()
            for m in maps]
    np.testing.assert_array_equal(got, want)
    if not two_sided:
        assert got[2] == 0.0
    serial = TFCEStatistic(grid, E=0.6, H=1.8, connectivity=18, two_sided=two_sided, n_jobs=1)
    np.testing.assert_array_equal(serial.maxima(maps)["tfce"], got)


@pytest.mark.parametrize("name, value", [("E", 0.0), ("E", -1.0), ("H", 0.0), ("H", np.nan),
                                         ("H", np.inf), ("E", "0.5")])
def test_bad_exponents(masked, name, value):
    _, grid = masked
    with pytest.raises(InputError, match=f"{name} must be a finite number > 0"):
        tfce(np.zeros(grid.n_voxels), grid, **{name: value})
    with pytest.raises(InputError, match=f"{name} must be a finite number > 0"):
        TFCEStatistic(grid, **{name: value})


def test_bad_inputs(masked):
    _, grid = masked
    m = grid.n_voxels
    with pytest.raises(InputError, match=rf"\({m + 1},\).*{m} mask voxels"):
        tfce(np.zeros(m + 1), grid)
    with pytest.raises(InputError, match="6, 18, 26"):
        tfce(np.zeros(m), grid, connectivity=5)
    with pytest.raises(InputError, match="6, 18, 26"):
        TFCEStatistic(grid, connectivity=5)
    with pytest.raises(InputError, match=rf"\(2, {m - 1}\)"):
        TFCEStatistic(grid).maxima(np.zeros((2, m - 1)))
    values = np.zeros(m)
    values[3] = np.inf
    with pytest.raises(InputError, match="infinite"):
        tfce(values, grid)
    values[3] = -np.inf  # below every threshold: fine one-sided, infinite two-sided
    assert np.all(tfce(values, grid) == 0)
    with pytest.raises(InputError, match="infinite"):
        tfce(values, grid, two_sided=True)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_exact_on_random_small_grids(data):
    """Any shape (including 1-voxel-thin ones), mask and tie pattern matches the reference."""
    shape = tuple(data.draw(st.integers(1, 5), label=f"axis {i}") for i in range(3))
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    connectivity = data.draw(st.sampled_from([6, 18, 26]), label="connectivity")
    gen = np.random.default_rng(seed)
    mask = gen.random(shape) < 0.8
    if not mask.any():
        mask.flat[0] = True
    vol = gen.integers(-3, 5, size=shape) * gen.choice([1.0, 0.37])  # heavy ties
    vol = vol + (gen.random(shape) < 0.3) * gen.random(shape)  # and some distinct values
    grid = MaskedGrid(mask, np.eye(4))
    got = tfce(vol[mask], grid, connectivity=connectivity, E=0.7, H=1.6)
    want = reference_tfce(vol, mask, connectivity=connectivity, E=0.7, H=1.6)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=0)


def test_threads_default_and_concurrent_callers(rng, masked):
    """None uses all CPUs from the main thread and 1 inside another thread (no nested pools);
    statistics called from several threads at once (as the permutation engine does) agree."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    from graymatter.stats._graph import resolve_n_jobs

    assert resolve_n_jobs(None) == resolve_n_jobs(-1) == (os.cpu_count() or 1)
    assert resolve_n_jobs(3) == 3
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(resolve_n_jobs, None).result() == 1
        assert pool.submit(resolve_n_jobs, 2).result() == 2
    for bad in (0, -2, 1.5, True, "2"):
        with pytest.raises(InputError, match="n_jobs"):
            TFCEStatistic(masked[1], n_jobs=bad)
    _, grid = masked
    maps = np.stack([smooth_volume(rng)[grid.mask] for _ in range(6)])
    stat = TFCEStatistic(grid, n_jobs=2)
    want = stat.maxima(maps)["tfce"]
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: stat.maxima(maps)["tfce"], range(6)))
    for got in results:
        np.testing.assert_array_equal(got, want)
