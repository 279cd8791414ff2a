"""Executors: serial, joblib and a real dask LocalCluster (2 worker processes on loopback)."""

import os

import numpy as np
import pytest

from graymatter.errors import InputError
from graymatter.io.zarr_store import write_matrix_zarr
from graymatter.io.images import MaskedGrid
from graymatter.parallel import Executor, as_executor, get_executor
from graymatter.stats.clusters import ClusterStatistic
from graymatter.stats.permutation import permutation_test
from graymatter.stats.streaming import streamed_glm, streamed_max_t
from graymatter.stats.tfce import TFCEStatistic

pytest.importorskip("distributed")


def _seeded_draw(item):
    seed, size = item
    return np.random.default_rng(seed).standard_normal(size).sum()


def _die_once(item):
    """Kill this worker's process the first time the marked task runs anywhere."""
    marker, value = item
    if value == 3 and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)
    return value * value


@pytest.fixture(scope="module")
def dask_ex():
    with get_executor("dask", dask_local=2, retries=2) as ex:
        yield ex


@pytest.fixture
def problem(tmp_path, rng):
    n, m = 24, 900
    X = np.column_stack([np.ones(n), rng.standard_normal(n), np.repeat([0.0, 1.0], n // 2)])
    Y = rng.standard_normal((n, m)) + 0.7 * X[:, [2]] * (np.arange(m) < 40)
    store = write_matrix_zarr(Y, tmp_path / "y.zarr", chunk_voxels=128, dtype="float64")
    return store, X


def test_map_keeps_order_and_seeds(dask_ex):
    items = [(s, 50) for s in range(12)]
    serial = get_executor("serial").map(_seeded_draw, items)
    assert serial == [_seeded_draw(i) for i in items]
    assert get_executor("joblib", n_jobs=2).map(_seeded_draw, items) == serial
    assert dask_ex.n_workers == 2
    assert dask_ex.map(_seeded_draw, items) == serial
    assert dask_ex.map(_seeded_draw, []) == []


def test_glm_and_max_t_same_on_dask_as_serial(dask_ex, problem):
    store, X = problem
    t_s, df_s = streamed_glm(store, X, [0, 0, 1], block_voxels=256)
    t_d, df_d = streamed_glm(store, X, [0, 0, 1], block_voxels=256, executor=dask_ex)
    assert df_s == df_d == 21
    np.testing.assert_array_equal(t_d, t_s)
    null_s = streamed_max_t(store, X, [0, 0, 1], n_perm=200, random_state=4, block_voxels=256)
    null_d = streamed_max_t(store, X, [0, 0, 1], n_perm=200, random_state=4, block_voxels=256,
                            executor=dask_ex)
    np.testing.assert_array_equal(null_d, null_s)
    assert null_s.min() > 0 and np.all(null_s < np.inf)


def _total(item):
    data, k = item
    return float(np.sum(data) * k)


def test_share_sends_data_once_and_progress_counts_tasks(dask_ex, capsys):
    data = np.arange(1000.0)
    for ex in (get_executor("serial"), get_executor("joblib", n_jobs=2), dask_ex):
        handle = ex.share(data)
        out = ex.map(_total, [(handle, k) for k in range(5)], progress=True, desc="demo")
        assert out == [float(data.sum() * k) for k in range(5)]
        err = capsys.readouterr().err
        assert "demo: 100%" in err and "5/5" in err, err


def test_tfce_and_cluster_permutations_same_on_dask_as_serial(dask_ex, rng):
    """Spatial statistics need whole maps: the dask tasks are blocks of relabellings."""
    shape = (9, 10, 8)
    grid = MaskedGrid(np.ones(shape, bool), np.diag([2.0, 2.0, 2.0, 1.0]))
    n = 20
    X = np.column_stack([np.ones(n), rng.standard_normal(n), np.repeat([0.0, 1.0], n // 2)])
    field = rng.standard_normal((n, *shape))
    for _ in range(2):  # a little spatial smoothness so clusters and TFCE have work to do
        field = (field + np.roll(field, 1, 1) + np.roll(field, 1, 2) + np.roll(field, 1, 3)) / 2
    Y = field.reshape(n, -1) + 0.8 * X[:, [2]] * (np.arange(grid.n_voxels) < 60)
    stats = [TFCEStatistic(grid), ClusterStatistic(grid, height=2.5)]
    kw = dict(n_perm=150, random_state=3, statistics=stats, two_sided=True, batch_size=16,
              progress=False)
    serial = permutation_test(Y, X, [0, 0, 1], **kw)
    on_dask = permutation_test(Y, X, [0, 0, 1], executor=dask_ex, **kw)
    assert set(serial.null_max) == {"max_stat", "tfce", "cluster_extent", "cluster_mass"}
    for name, null in serial.null_max.items():
        np.testing.assert_array_equal(on_dask.null_max[name], null, err_msg=name)
        assert np.ptp(null) > 0, name  # a real null distribution, not a constant
    np.testing.assert_array_equal(on_dask.p_unc, serial.p_unc)
    np.testing.assert_array_equal(on_dask.p_fwe, serial.p_fwe)
    threads = permutation_test(Y, X, [0, 0, 1], executor=get_executor("joblib", n_jobs=2), **kw)
    np.testing.assert_array_equal(threads.null_max["tfce"], serial.null_max["tfce"])


def test_worker_killed_mid_run_still_completes(tmp_path):
    # Own cluster: the killed worker is restarted by its nanny, which must not disturb other tests.
    marker = str(tmp_path / "killed")
    items = [(marker, v) for v in range(6)]
    with get_executor("dask", dask_local=2, retries=2) as ex:
        out = ex.map(_die_once, items)
    assert os.path.exists(marker)  # the worker really died once
    assert out == [v * v for v in range(6)]


def test_executor_errors(problem):
    store, X = problem
    with pytest.raises(InputError, match="kind must be one of"):
        get_executor("mpi")
    with pytest.raises(InputError, match="exactly one of"):
        get_executor("dask")
    with pytest.raises(InputError, match="exactly one of"):
        get_executor("dask", scheduler="tcp://127.0.0.1:1", dask_local=2)
    with pytest.raises(InputError, match="n_jobs"):
        get_executor("joblib", n_jobs=0)
    with pytest.raises(InputError, match="retries"):
        get_executor("dask", dask_local=1, retries=-1)
    with pytest.raises(InputError, match="executor must come from"):
        streamed_glm(store, X, [0, 0, 1], executor="dask")
    with get_executor("serial") as ex:
        assert isinstance(ex, Executor) and ex.n_workers == 1
    assert as_executor(None).kind == "serial"
    with pytest.raises(InputError, match="executor must come from"):
        permutation_test(np.ones((4, 3)), np.ones((4, 1)), [1.0], executor=2, progress=False)


def test_pls_spins_and_bootstraps_on_dask_agree_with_serial(dask_ex, rng):
    """Gene PLS spins/bootstraps and clinical PLS permutations/bootstraps as dask tasks."""
    import pandas as pd

    from graymatter.stats.pls import clinical_pls
    from graymatter.transcriptomics.gene_pls import gene_pls

    n, p = 40, 300
    expr = pd.DataFrame(rng.standard_normal((n, p)), index=[f"lh_r{i}" for i in range(n)])
    y = pd.Series(expr.iloc[:, :6].sum(axis=1) + rng.standard_normal(n), index=expr.index)
    nulls = np.argsort(rng.random((n, 250)), axis=0)  # stand-in reassignments
    kw = dict(n_components=2, nulls=nulls, n_boot=300, random_state=4)
    serial = gene_pls(expr, y, **kw)
    on_dask = gene_pls(expr, y, executor=dask_ex, **kw)
    np.testing.assert_allclose(on_dask.null_explained, serial.null_explained, rtol=1e-12)
    np.testing.assert_array_equal(on_dask.p_spin, serial.p_spin)
    np.testing.assert_allclose(on_dask.z.to_numpy(), serial.z.to_numpy(), rtol=1e-10)
    assert serial.p_spin[0] < 0.05 and np.ptp(serial.null_explained[:, 0]) > 0
    blocks = np.repeat(np.arange(8), 5)
    kw_blocks = dict(n_components=1, n_boot=200, bootstrap="blocks", blocks=blocks, random_state=1)
    np.testing.assert_allclose(gene_pls(expr, y, executor=dask_ex, **kw_blocks).z.to_numpy(),
                               gene_pls(expr, y, **kw_blocks).z.to_numpy(), rtol=1e-10)

    # Several batches (tasks): samples and sums combined in batch order.
    from graymatter.stats.pls import pls_bootstrap, pls_permutation

    X, Y = expr.to_numpy(), y.to_numpy()
    perm_s = pls_permutation(X, Y, n_perm=200, batch_size=37, random_state=2)
    perm_d = pls_permutation(X, Y, n_perm=200, batch_size=37, random_state=2, executor=dask_ex)
    np.testing.assert_allclose(perm_d.null_r, perm_s.null_r, rtol=1e-12)
    boot_s = pls_bootstrap(X, Y, n_boot=150, batch_size=37, random_state=2, return_samples=True)
    boot_d = pls_bootstrap(X, Y, n_boot=150, batch_size=37, random_state=2, return_samples=True,
                           executor=dask_ex)
    np.testing.assert_allclose(boot_d.samples, boot_s.samples, rtol=1e-12)
    np.testing.assert_allclose(boot_d.se, boot_s.se, rtol=1e-10)
    assert boot_d.n_valid == boot_s.n_valid == 150

    delta = pd.DataFrame(rng.standard_normal((30, 20)), index=[f"s{i}" for i in range(30)])
    dclin = pd.Series(delta.iloc[:, 0] + rng.standard_normal(30), index=delta.index)
    a = clinical_pls(delta, dclin, n_perm=200, n_boot=200, cv=None, random_state=0)
    b = clinical_pls(delta, dclin, n_perm=200, n_boot=200, cv=None, random_state=0,
                     executor=dask_ex)
    np.testing.assert_allclose(b.permutation.null_r, a.permutation.null_r, rtol=1e-12)
    assert b.p_perm == a.p_perm
    np.testing.assert_allclose(b.regional.to_numpy(), a.regional.to_numpy(), rtol=1e-10)
