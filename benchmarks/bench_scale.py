"""Scale-out benchmark: GLM + max-T permutations streamed from zarr, 1 vs 2 dask workers (not run by CI).

Usage::

    python benchmarks/bench_scale.py                          # N = 500, 2000; 1000 permutations
    python benchmarks/bench_scale.py --sizes 500 2000 10000 --workers 1 2 --n-perm 1000
    python benchmarks/bench_scale.py --spatial --n-perm 200   # cluster + TFCE nulls on dask

Data: N simulated subjects on the 2 mm MNI152 gray-matter mask (181,054 voxels), written to a
zarr store (float32, chunks 64 subjects x ``chunk_voxels``) from lazily generated rows, so the
writer never holds the matrix. Design: intercept, age, group (half/half); contrast on group,
planted effect of 0.3 SD in the first 2,000 voxels. Each (N, workers) configuration runs in a
fresh process: time of the write, of the streamed GLM and of ``streamed_max_t``; peak RSS of the
largest single process (getrusage over the driver and the dask workers, read after the cluster
closed) and the peak of the *sum* over the driver and all its workers (psutil, sampled every
0.2 s); the machine's load average before each run (another job on a 2-core machine halves the
throughput of 2 workers).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


class SimRows:
    """Row i of the simulated matrix, made on demand from (seed, i)."""

    def __init__(self, n, m, group, seed=0):
        self.shape, self.group, self.seed = (n, m), group, seed

    def __getitem__(self, i):
        row = np.random.default_rng([self.seed, i]).standard_normal(self.shape[1], dtype=np.float32)
        row[:2000] += 0.3 * self.group[i]
        return row


class TreeRSS:
    """Peak of the summed RSS of this process and its descendants, sampled in a thread."""

    def __init__(self, interval=0.2):
        import psutil

        self.proc, self.interval, self.peak = psutil.Process(), interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        import psutil

        while not self._stop.is_set():
            total = 0
            for p in [self.proc, *self.proc.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run_one(n: int, workers: int, n_perm: int, chunk_voxels: int, folder: str) -> dict:
    from graymatter.datasets.templates import default_gm_mask, mni_grid
    from graymatter.io.images import MaskedGrid
    from graymatter.io.zarr_store import write_matrix_zarr
    from graymatter.parallel import get_executor
    from graymatter.stats.streaming import streamed_glm, streamed_max_t

    img = default_gm_mask(mni_grid(2))
    grid = MaskedGrid(np.asarray(img.dataobj) > 0, img.affine)
    rng = np.random.default_rng(1)
    group = np.repeat([0.0, 1.0], [n // 2, n - n // 2])
    X = np.column_stack([np.ones(n), rng.normal(45, 10, n), group])
    store = Path(folder) / f"n{n}.zarr"
    t0 = time.perf_counter()
    if not store.exists():
        write_matrix_zarr(SimRows(n, grid.n_voxels, group), store, grid=grid,
                          chunk_voxels=chunk_voxels)
    t_write = time.perf_counter() - t0
    load = os.getloadavg()[0]
    with TreeRSS() as tree, get_executor("dask", dask_local=workers) as ex:
        t0 = time.perf_counter()
        t, _ = streamed_glm(store, X, [0, 0, 1], executor=ex)
        t_glm = time.perf_counter() - t0
        t0 = time.perf_counter()
        null = streamed_max_t(store, X, [0, 0, 1], n_perm=n_perm, random_state=0, executor=ex)
        t_perm = time.perf_counter() - t0
    rss = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
              resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024**2  # KiB -> GiB
    p_fwe = (1 + np.sum(null[:, None] >= t[None, :2000], axis=0)) / (1 + n_perm)
    return {"N": n, "workers": workers, "voxels": grid.n_voxels, "write_s": t_write,
            "glm_s": t_glm, "perm_s": t_perm, "peak_rss_gb": rss, "tree_rss_gb": tree.peak / 1024**3,
            "load": load,
            "planted_detected": float(np.mean(p_fwe <= 0.05)), "null_mean": float(null.mean())}


def run_spatial(n_perm: int) -> None:
    """Cluster + TFCE permutation nulls (blocks over permutations) in memory: serial, two
    threads, and dask LocalClusters of 1 and 2 workers, on bench_permutation's Study A-sized
    data (125 subjects x 235,375 voxels, 15 regressors). Checks that the nulls are identical."""
    import importlib.util

    from graymatter.parallel import get_executor
    from graymatter.stats.clusters import ClusterStatistic
    from graymatter.stats.permutation import permutation_test
    from graymatter.stats.tfce import TFCEStatistic

    spec = importlib.util.spec_from_file_location(
        "bench_permutation", Path(__file__).with_name("bench_permutation.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    _, grid, Y, X, c = bench.make_data()
    stats = [ClusterStatistic(grid, height=3.1), TFCEStatistic(grid)]
    kw = dict(n_perm=n_perm, statistics=stats, random_state=0, progress=False)
    print(f"cluster + TFCE nulls, {Y.shape[0]} subjects x {Y.shape[1]:,} voxels, {n_perm} "
          f"permutations; load average {os.getloadavg()[0]:.2f}")
    print(f"{'where':<22} {'s':>7} {'ms/perm':>8} {'identical':>9}")
    ref = None
    for label, make in (("serial", lambda: None),
                        ("2 threads (n_jobs=2)", lambda: get_executor("joblib", n_jobs=2)),
                        ("dask, 1 worker", lambda: get_executor("dask", dask_local=1)),
                        ("dask, 2 workers", lambda: get_executor("dask", dask_local=2))):
        ex = make()
        try:
            t0 = time.perf_counter()
            res = permutation_test(Y, X, c, executor=ex, **kw)
            seconds = time.perf_counter() - t0
        finally:
            if ex is not None:
                ex.close()
        same = "-" if ref is None else str(all(np.array_equal(res.null_max[k], ref.null_max[k])
                                               for k in ref.null_max))
        ref = ref or res
        print(f"{label:<22} {seconds:>7.1f} {1000 * seconds / n_perm:>8.1f} {same:>9}",
              flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[500, 2000])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--n-perm", type=int, default=1000)
    ap.add_argument("--chunk-voxels", type=int, default=4096)
    ap.add_argument("--folder", default=None, help="where the zarr stores go (default: a temp dir)")
    ap.add_argument("--spatial", action="store_true",
                    help="cluster + TFCE nulls in memory: serial, threads, dask 1 and 2 workers")
    ap.add_argument("--one", nargs=2, type=int, help=argparse.SUPPRESS)  # internal: N workers
    args = ap.parse_args()
    if args.spatial:
        run_spatial(args.n_perm)
        return
    if args.one:
        print(json.dumps(run_one(*args.one, args.n_perm, args.chunk_voxels, args.folder)))
        return
    folder = args.folder or tempfile.mkdtemp(prefix="bench_scale_")
    print(f"{'N':>6} {'workers':>7} {'load':>5} {'write s':>8} {'GLM s':>7} {'perm s':>8} "
          f"{'perm/s':>7} {'ms/perm/1k subj':>15} {'max proc GB':>11} {'all procs GB':>12} "
          f"{'detected':>8}")
    for n in args.sizes:
        for w in args.workers:
            out = subprocess.run([sys.executable, __file__, "--one", str(n), str(w), "--n-perm",
                                  str(args.n_perm), "--chunk-voxels", str(args.chunk_voxels),
                                  "--folder", folder], capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            per_k = 1000 * r["perm_s"] / args.n_perm / (r["N"] / 1000)
            print(f"{r['N']:>6} {r['workers']:>7} {r['load']:>5.2f} {r['write_s']:>8.1f} "
                  f"{r['glm_s']:>7.1f} {r['perm_s']:>8.1f} {args.n_perm / r['perm_s']:>7.1f} "
                  f"{per_k:>15.1f} {r['peak_rss_gb']:>11.2f} {r['tree_rss_gb']:>12.2f} "
                  f"{r['planted_detected']:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
