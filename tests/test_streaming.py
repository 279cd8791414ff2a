"""Zarr store round trip, bounded-memory writes, and streamed GLM / max-T against in-memory oracles."""

import tracemalloc

import nibabel as nib
import numpy as np
import pytest

from graymatter.errors import ContrastError, InputError
from graymatter.io.images import load_image_matrix
from graymatter.io.zarr_store import open_matrix_zarr, write_matrix_zarr
from graymatter.stats.glm import MassUnivariateGLM
from graymatter.stats.permutation import permutation_test
from graymatter.stats.streaming import streamed_glm, streamed_max_t


def _data(rng, n=30, m=700):
    X = np.column_stack([np.ones(n), rng.standard_normal(n), np.repeat([0.0, 1.0], [n // 2, n - n // 2])])
    Y = rng.standard_normal((n, m)) + 0.8 * X[:, [2]] * (np.arange(m) < 50)
    Y[:, 7] = 3.0  # constant voxel: excluded, NaN
    return Y, X


def test_array_round_trip_float64(tmp_path, rng):
    Y, _ = _data(rng)
    store = write_matrix_zarr(Y, tmp_path / "y.zarr", chunk_voxels=128, chunk_subjects=8,
                              dtype="float64")
    Z, grid = open_matrix_zarr(store)
    assert grid is None and Z.shape == Y.shape and Z.chunks == (8, 128)
    np.testing.assert_array_equal(Z[...], Y)
    assert not list(tmp_path.glob(".y.zarr.*"))  # the temporary folder was renamed away


def test_image_round_trip_matches_load_image_matrix(tmp_path, rng):
    shape, affine = (7, 8, 9), np.diag([2.0, 2.0, 2.0, 1.0])
    mask = rng.random(shape) > 0.4
    paths = []
    for i in range(5):
        p = tmp_path / f"sub-{i}.nii.gz"
        nib.Nifti1Image(rng.standard_normal(shape).astype(np.float32), affine).to_filename(p)
        paths.append(p)
    store = write_matrix_zarr(paths, tmp_path / "gm.zarr", mask=mask, chunk_voxels=50,
                              chunk_subjects=2)
    Z, grid = open_matrix_zarr(store)
    ref, ref_grid = load_image_matrix(paths, mask=mask, dtype="float32", progress=False)
    np.testing.assert_array_equal(Z[...], ref)
    np.testing.assert_array_equal(grid.mask, ref_grid.mask)
    np.testing.assert_allclose(grid.affine, affine)


def test_overwrite_and_errors(tmp_path, rng):
    store = write_matrix_zarr(np.zeros((3, 4)), tmp_path / "a.zarr")
    with pytest.raises(InputError, match="already exists"):
        write_matrix_zarr(np.ones((3, 4)), store)
    write_matrix_zarr(np.ones((3, 4)), store, overwrite=True)
    np.testing.assert_array_equal(open_matrix_zarr(store)[0][...], 1.0)
    with pytest.raises(InputError, match="dtype"):
        write_matrix_zarr(np.ones((3, 4)), tmp_path / "b.zarr", dtype="int16")
    with pytest.raises(InputError, match="does not exist"):
        open_matrix_zarr(tmp_path / "missing.zarr")
    with pytest.raises(InputError, match="one row per stored subject"):
        streamed_glm(store, np.ones((5, 1)), [1.0])


def test_failed_write_leaves_no_store(tmp_path):
    class Bad:
        shape = (4, 10)

        def __getitem__(self, i):
            if i == 3:
                raise RuntimeError("disk on fire")
            return np.zeros(10)

    with pytest.raises(RuntimeError):
        write_matrix_zarr(Bad(), tmp_path / "c.zarr", chunk_subjects=2)
    assert list(tmp_path.iterdir()) == []


class _LazyRows:
    """Rows made on demand: the writer's memory must not depend on the number of subjects."""

    def __init__(self, n, m):
        self.shape = (n, m)

    def __getitem__(self, i):
        return np.full(self.shape[1], float(i))


def _peak_write(tmp_path, n, m, name):
    tracemalloc.start()
    write_matrix_zarr(_LazyRows(n, m), tmp_path / name, chunk_voxels=4096, chunk_subjects=16,
                      dtype="float64")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def test_write_memory_grows_with_block_not_subjects(tmp_path):
    m = 20_000  # one row block = 16 x 20,000 float64 = 2.56 MB
    small = _peak_write(tmp_path, 32, m, "s.zarr")
    big = _peak_write(tmp_path, 320, m, "b.zarr")  # 10x the subjects: 51 MB if held in memory
    assert big < 1.5 * small + 2e6
    assert big < 20e6
    np.testing.assert_array_equal(open_matrix_zarr(tmp_path / "b.zarr")[0][:, 0], np.arange(320.0))


@pytest.mark.parametrize("block_voxels", [None, 128, 333])
def test_streamed_glm_equals_in_memory(tmp_path, rng, block_voxels):
    Y, X = _data(rng)
    store = write_matrix_zarr(Y, tmp_path / "y.zarr", chunk_voxels=128, dtype="float64")
    t, df = streamed_glm(store, X, [0, 0, 1], block_voxels=block_voxels)
    with pytest.warns(Warning):
        ref = MassUnivariateGLM().fit(Y, X).t_contrast([0, 0, 1])
    assert df == ref.df == 27
    np.testing.assert_allclose(t, ref.t, rtol=0, atol=1e-10, equal_nan=True)
    assert np.isnan(t[7]) and np.isfinite(np.delete(t, 7)).all()


def test_streamed_glm_rejects_f_contrast(tmp_path, rng):
    Y, X = _data(rng, m=20)
    store = write_matrix_zarr(Y, tmp_path / "y.zarr")
    with pytest.raises(ContrastError, match="t vector"):
        streamed_glm(store, X, np.eye(3)[1:])


def test_relabellings_do_not_depend_on_features(rng):
    """The premise of block reduction: the null of a voxel subset is the same relabellings."""
    Y, X = _data(rng)
    Y = np.delete(Y, 7, axis=1)
    whole = permutation_test(Y, X, [0, 0, 1], n_perm=99, random_state=5, batch_size=64,
                             progress=False).null_max["max_stat"]
    one = [permutation_test(Y[:, [j]], X, [0, 0, 1], n_perm=99, random_state=5, batch_size=64,
                            progress=False).null_max["max_stat"] for j in (3, 60, 400)]
    # a single voxel's permuted t never exceeds the map maximum of the same relabelling
    for o in one:
        assert np.all(o <= whole + 1e-12)
    np.testing.assert_allclose(np.maximum.reduce([
        permutation_test(Y[:, s], X, [0, 0, 1], n_perm=99, random_state=5, batch_size=64,
                         progress=False).null_max["max_stat"]
        for s in (slice(0, 300), slice(300, None))]), whole, rtol=0, atol=1e-12)


@pytest.mark.parametrize("two_sided", [False, True])
def test_streamed_max_t_equals_whole_matrix(tmp_path, rng, two_sided):
    Y, X = _data(rng)
    store = write_matrix_zarr(Y, tmp_path / "y.zarr", chunk_voxels=100, dtype="float64")
    null = streamed_max_t(store, X, [0, 0, 1], n_perm=300, random_state=11, block_voxels=200,
                          two_sided=two_sided)
    with pytest.warns(Warning):
        ref = permutation_test(Y, X, [0, 0, 1], n_perm=300, random_state=11, two_sided=two_sided,
                               progress=False)
    assert null.shape == (300,)
    np.testing.assert_allclose(null, ref.null_max["max_stat"], rtol=0, atol=1e-12)
    # a different seed gives a different null (the seed really drives the relabellings)
    other = streamed_max_t(store, X, [0, 0, 1], n_perm=300, random_state=12, block_voxels=200,
                           two_sided=two_sided)
    assert not np.allclose(other, null)


def test_streamed_max_t_f_contrast_and_all_invalid_block(tmp_path, rng):
    Y, X = _data(rng, m=300)
    Y[:, :100] = 1.0  # the first block has nothing to test
    store = write_matrix_zarr(Y, tmp_path / "y.zarr", dtype="float64")
    C = np.eye(3)[1:]
    null = streamed_max_t(store, X, C, n_perm=100, random_state=0, block_voxels=100)
    with pytest.warns(Warning):
        ref = permutation_test(Y, X, C, n_perm=100, random_state=0, progress=False)
    np.testing.assert_allclose(null, ref.null_max["max_stat"], rtol=0, atol=1e-12)


def test_streamed_max_t_calibrated_fwe(tmp_path):
    """Under the global null the FWE p of the observed max-T is ~uniform: reject ~5% at 0.05."""
    rng = np.random.default_rng(123)
    n, m, reps, rejections = 20, 60, 40, 0
    X = np.column_stack([np.ones(n), np.repeat([0.0, 1.0], n // 2)])
    for r in range(reps):
        Y = rng.standard_normal((n, m))
        store = write_matrix_zarr(Y, tmp_path / f"{r}.zarr", dtype="float64")
        null = streamed_max_t(store, X, [0, 1], n_perm=99, random_state=r, block_voxels=25)
        t, _ = streamed_glm(store, X, [0, 1], block_voxels=25)
        p = (1 + np.sum(null >= t.max())) / 100
        rejections += p <= 0.05
    assert rejections <= 7  # Binomial(40, 0.05): P(X > 7) < 0.001


def test_random_state_must_be_int(tmp_path, rng):
    Y, X = _data(rng, m=20)
    store = write_matrix_zarr(Y, tmp_path / "y.zarr")
    with pytest.raises(InputError, match="random_state"):
        streamed_max_t(store, X, [0, 0, 1], n_perm=10, random_state=None)
