"""Benchmark cluster labelling and exact TFCE against scipy and nilearn (not run by CI).

Usage::

    python benchmarks/bench_spatial.py                       # 32 maps, best of 3
    python benchmarks/bench_spatial.py --maps 8 --repeats 1 --nilearn-maps 1

Data: ``--maps`` smooth random t-like maps on nilearn's 2 mm MNI152 brain mask (235,375 voxels):
Gaussian-smoothed white noise (FWHM 4 voxels) scaled to unit variance inside the mask. Timings
are wall clock per map, best of ``--repeats``; numba compilation is excluded from them and
reported separately (compiled from scratch in a subprocess with an empty ``NUMBA_CACHE_DIR``,
and the in-process first call, which loads numba's on-disk cache).

Rows: cluster labelling at t > 3.1 (18-connectivity) by ``label_clusters`` and by
``ClusterStatistic.maxima`` on the batch, next to ``scipy.ndimage.label`` on the full volume and
nilearn's ``calculate_cluster_measures``; exact TFCE (E = 0.5, H = 2, 26-connectivity) of one map
and ``TFCEStatistic.maxima`` on the batch, next to nilearn's step-wise ``calculate_tfce``
(100 steps, the default of ``permuted_ols``); and what one permutation costs for max-T + cluster
extent/mass + TFCE maxima, against nilearn's TFCE alone.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings

import numpy as np

HEIGHT = 3.1
FWHM_VOXELS = 4.0

_COMPILE_SNIPPET = textwrap.dedent("""
    import time, numpy as np
    t0 = time.perf_counter()
    from graymatter.io.images import MaskedGrid
    from graymatter.stats.clusters import ClusterStatistic, label_clusters
    from graymatter.stats.tfce import TFCEStatistic, tfce
    grid = MaskedGrid(np.ones((3, 4, 5), bool), np.eye(4))
    x = np.random.default_rng(0).standard_normal((2, grid.n_voxels))
    out = {}
    for name, call in [
            ("label_clusters", lambda: label_clusters(x[0], grid, height=0.5)),
            ("ClusterStatistic.maxima", lambda: ClusterStatistic(grid, height=0.5).maxima(x)),
            ("tfce", lambda: tfce(x[0], grid)),
            ("TFCEStatistic.maxima", lambda: TFCEStatistic(grid).maxima(x))]:
        t = time.perf_counter(); call(); out[name] = time.perf_counter() - t
    print(repr(out))
""")


def first_call_seconds(cold: bool) -> dict[str, float]:
    """Seconds of each entry point's first call in a fresh interpreter (compile or cache load)."""
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as cache:
        if cold:
            env["NUMBA_CACHE_DIR"] = cache  # an empty cache: numba compiles everything
        done = subprocess.run([sys.executable, "-c", _COMPILE_SNIPPET], env=env, check=True,
                              capture_output=True, text=True)
    return eval(done.stdout.strip().splitlines()[-1])  # our own repr of a dict of floats


def make_maps(n_maps: int, seed: int = 0):
    """Mask image, grid and (n_maps, n_voxels) smooth unit-variance maps, plus their volumes."""
    from nilearn.datasets import load_mni152_brain_mask
    from scipy import ndimage

    from graymatter.io.images import MaskedGrid

    mask_img = load_mni152_brain_mask(resolution=2)
    mask = np.asarray(mask_img.get_fdata()) > 0
    grid = MaskedGrid(mask, mask_img.affine)
    rng = np.random.default_rng(seed)
    sigma = FWHM_VOXELS / np.sqrt(8 * np.log(2))
    maps = np.empty((n_maps, grid.n_voxels))
    for b in range(n_maps):
        values = ndimage.gaussian_filter(rng.standard_normal(mask.shape), sigma)[mask]
        maps[b] = (values - values.mean()) / values.std()
    volumes = np.zeros((n_maps,) + mask.shape)
    volumes[:, mask] = maps
    return grid, maps, volumes


def best_of(repeats: int, call) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", type=int, default=32, help="batch size (default 32)")
    parser.add_argument("--repeats", type=int, default=3, help="best of (default 3)")
    parser.add_argument("--nilearn-maps", type=int, default=2,
                        help="maps timed with nilearn's slow TFCE (default 2)")
    parser.add_argument("--n-jobs", type=int, default=None,
                        help="threads for the batch statistics (default: all CPUs)")
    args = parser.parse_args(argv)

    from nilearn.mass_univariate._utils import calculate_cluster_measures, calculate_tfce
    from scipy import ndimage

    from graymatter.stats.clusters import ClusterStatistic, connectivity_structure, label_clusters
    from graymatter.stats.tfce import TFCEStatistic, tfce

    cold = first_call_seconds(cold=True)
    warm_start = first_call_seconds(cold=False)
    grid, maps, volumes = make_maps(args.maps)
    B, nl = args.maps, min(args.nilearn_maps, args.maps)
    s18, s26 = connectivity_structure(18), connectivity_structure(26)
    print(f"{B} smooth maps (FWHM {FWHM_VOXELS:g} voxels, unit variance) on the 2 mm MNI152 "
          f"mask, {grid.n_voxels:,} voxels; {os.cpu_count()} CPUs, batch threads: "
          f"{args.n_jobs or 'all'}; best of {args.repeats}")
    print("\nFirst call (s), numba compiling from scratch | loading its cache:")
    for name in cold:
        print(f"  {name:<25} {cold[name]:7.2f} | {warm_start[name]:.2f}")

    # warm-up (and the neighbour tables, built once per grid)
    cstat = ClusterStatistic(grid, height=HEIGHT, connectivity=18, n_jobs=args.n_jobs)
    tstat = TFCEStatistic(grid, n_jobs=args.n_jobs)
    tstat2 = TFCEStatistic(grid, two_sided=True, n_jobs=args.n_jobs)
    tstat1 = TFCEStatistic(grid, n_jobs=1)
    for stat in (cstat, tstat, tstat2, tstat1):
        stat.maxima(maps[:2])
    label_clusters(maps[0], grid, height=HEIGHT)

    per = {}
    per["scipy_label"] = best_of(args.repeats, lambda: [
        ndimage.label(v > HEIGHT, s18) for v in volumes]) / B
    per["label_clusters"] = best_of(args.repeats, lambda: [
        label_clusters(m, grid, height=HEIGHT) for m in maps]) / B
    per["cluster_batch"] = best_of(args.repeats, lambda: cstat.maxima(maps)) / B
    per["nilearn_clusters"] = best_of(1, lambda: calculate_cluster_measures(
        np.moveaxis(volumes[:nl], 0, -1), HEIGHT, s18)) / nl
    per["max_t"] = best_of(args.repeats, lambda: maps.max(axis=1)) / B
    per["tfce"] = best_of(args.repeats, lambda: [tfce(m, grid) for m in maps[:8]]) / min(8, B)
    per["tfce_batch"] = best_of(args.repeats, lambda: tstat.maxima(maps)) / B
    per["tfce_batch_1"] = best_of(args.repeats, lambda: tstat1.maxima(maps)) / B
    per["tfce_batch_2s"] = best_of(args.repeats, lambda: tstat2.maxima(maps)) / B
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        nilearn_tfce = calculate_tfce(np.moveaxis(volumes[:nl], 0, -1), s26, two_sided_test=False)
        per["nilearn_tfce"] = (time.perf_counter() - start) / nl
        per["nilearn_tfce_2s"] = best_of(1, lambda: calculate_tfce(
            volumes[0][..., None], s26, two_sided_test=True))

    # agreement: same clusters as scipy; nilearn's TFCE x dh against the exact integral
    found = label_clusters(maps[0], grid, height=HEIGHT)
    labels, n = ndimage.label(volumes[0] > HEIGHT, s18)
    same = n == found.n_clusters and np.array_equal(
        np.sort(np.bincount(labels.ravel())[1:])[::-1], found.sizes)
    exact = tfce(maps[0], grid)
    steps = nilearn_tfce[..., 0][grid.mask] * (maps[0].max() / 100)
    peak = np.argmax(exact)
    high = maps[0] >= 0.1 * maps[0].max()
    rel = np.abs(steps[high] - exact[high]) / exact[high]
    print(f"\nlabel_clusters == scipy.ndimage.label (count and sizes, map 0): {same} "
          f"({n} clusters)")
    print(f"nilearn TFCE (100 steps) x dh vs exact TFCE, map 0: "
          f"{abs(steps[peak] / exact[peak] - 1):.2%} at the peak; median {np.median(rel):.2%}, "
          f"max {rel.max():.2%} over voxels >= 10% of the maximum")

    combined = per["max_t"] + per["cluster_batch"] + per["tfce_batch"]
    combined2 = per["max_t"] + per["cluster_batch"] + per["tfce_batch_2s"]
    rows = [
        ("clusters t > 3.1, 18-conn: `label_clusters` (one map)", per["label_clusters"],
         "`scipy.ndimage.label` (full volume)", per["scipy_label"]),
        (f"`ClusterStatistic.maxima`, batch of {B}", per["cluster_batch"],
         "`scipy.ndimage.label` (full volume)", per["scipy_label"]),
        (f"`ClusterStatistic.maxima`, batch of {B}", per["cluster_batch"],
         "nilearn `calculate_cluster_measures`", per["nilearn_clusters"]),
        ("`tfce` (one map, exact)", per["tfce"],
         "nilearn `calculate_tfce` (100 steps)", per["nilearn_tfce"]),
        (f"`TFCEStatistic.maxima`, batch of {B}, 1 thread", per["tfce_batch_1"],
         "nilearn `calculate_tfce` (100 steps)", per["nilearn_tfce"]),
        (f"`TFCEStatistic.maxima`, batch of {B}", per["tfce_batch"],
         "nilearn `calculate_tfce` (100 steps)", per["nilearn_tfce"]),
        (f"`TFCEStatistic(two_sided=True).maxima`, batch of {B}", per["tfce_batch_2s"],
         "nilearn `calculate_tfce` two-sided", per["nilearn_tfce_2s"]),
        ("one permutation: max-T + cluster extent/mass + TFCE", combined,
         "nilearn `calculate_tfce` (100 steps)", per["nilearn_tfce"]),
        ("the same, two-sided TFCE", combined2,
         "nilearn `calculate_tfce` two-sided", per["nilearn_tfce_2s"]),
    ]
    print("\n| graymatter | ms per map | reference | ms per map | speed-up |")
    print("|---|---:|---|---:|---:|")
    for ours, t_ours, ref, t_ref in rows:
        print(f"| {ours} | {1e3 * t_ours:.2f} | {ref} | {1e3 * t_ref:.1f} | "
              f"{t_ref / t_ours:.0f}x |")


if __name__ == "__main__":
    main()
