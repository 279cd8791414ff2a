"""Benchmark the permutation engine against nilearn's permuted_ols (not run by CI).

Usage::

    python benchmarks/bench_permutation.py                          # everything, 100 permutations
    python benchmarks/bench_permutation.py --n-perm 100 --skip-nilearn-tfce

Data: 125 subjects on nilearn's 2 mm MNI152 brain mask (235,375 voxels), smooth Gaussian noise
(8 mm FWHM) plus a small group effect; a design of 5 cell means (Study A's cell sizes) and 10
covariates; one t contrast between cells (TRD > non-TRD). Every method runs once with the same
number of permutations; the time per permutation is the wall time of the whole call divided by
the number of permutations (set-up included: GLM fit, data reduction, nilearn's orthogonalisation).

``n_jobs=1`` rows run with BLAS limited to one thread (threadpoolctl), so they use one core for
both libraries; ``n_jobs=2`` rows use two cores (graymatter: two worker threads with one BLAS
thread each; nilearn: two loky processes, which joblib limits to one BLAS thread each).
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

CELLS = (26, 15, 16, 24, 44)  # TRD_UP, TRD_BP, nonTRD_UP, nonTRD_BP, HC
N_COV = 10


def make_data(seed: int = 0, fwhm_mm: float = 8.0):
    """Mask image, MaskedGrid, Y (125, n_voxels) float64, X (125, 15), contrast (15,)."""
    import nibabel as nib
    from nilearn.datasets import load_mni152_brain_mask
    from scipy.ndimage import gaussian_filter

    from graymatter.io.images import MaskedGrid

    mni = load_mni152_brain_mask(resolution=2)
    mask = np.asarray(mni.get_fdata()) > 0
    mask_img = nib.Nifti1Image(mask.astype(np.uint8), mni.affine)
    grid = MaskedGrid(mask, mni.affine)
    rng = np.random.default_rng(seed)
    n = sum(CELLS)
    labels = np.repeat(np.arange(len(CELLS)), CELLS)
    cells = (labels[:, None] == np.arange(len(CELLS))).astype(float)
    X = np.column_stack([cells, rng.standard_normal((n, N_COV))])
    c = np.zeros(X.shape[1])
    c[:4] = [0.5, 0.5, -0.5, -0.5]
    sigma = fwhm_mm / 2.0 / np.sqrt(8 * np.log(2))  # 2 mm voxels
    Y = np.empty((n, int(mask.sum())))
    effect = np.zeros(mask.shape)
    effect[55:62, 60:68, 25:32] = 1.0  # a blob where TRD > non-TRD
    effect = gaussian_filter(effect, 2.0)
    for i in range(n):
        noise = gaussian_filter(rng.standard_normal(mask.shape), sigma)
        noise /= noise[mask].std()
        vol = 0.5 + 0.05 * noise + 0.02 * effect * (labels[i] < 2)
        Y[i] = vol[mask]
    return mask_img, grid, Y, X, c


def run_graymatter(Y, X, c, n_perm, n_jobs, dtype="float64", statistics=()):
    from graymatter.stats.permutation import permutation_test

    t0 = time.perf_counter()
    res = permutation_test(Y, X, c, n_perm=n_perm, random_state=0, n_jobs=n_jobs, dtype=dtype,
                           statistics=statistics, progress=False)
    return time.perf_counter() - t0, res


def run_nilearn(Y, X, c, n_perm, n_jobs, mask_img, tfce=False, threshold=None):
    """permuted_ols on the same contrast: the tested regressor is X's effect of interest
    (Smith/Beckmann partition) and the confounds span the nuisance space Z = X (I - c⁺c)."""
    from nilearn.maskers import NiftiMasker
    from nilearn.mass_univariate import permuted_ols

    C = c[None, :]
    D = np.linalg.pinv(X.T @ X)
    tested = X @ D @ C.T @ np.linalg.inv(C @ D @ C.T)  # (n, 1)
    Z = X @ (np.eye(X.shape[1]) - np.linalg.pinv(C) @ C)
    u, s, _ = np.linalg.svd(Z, full_matrices=False)
    confounds = u[:, s > s[0] * 1e-10]  # includes the constant (cell means sum to it)
    masker = NiftiMasker(mask_img).fit() if tfce else None
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = permuted_ols(tested, Y, confounding_vars=confounds, model_intercept=False,
                           n_perm=n_perm, two_sided_test=False, random_state=0, n_jobs=n_jobs,
                           verbose=0, masker=masker, tfce=tfce, threshold=threshold,
                           output_type="dict")
    return time.perf_counter() - t0, out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-perm", type=int, default=100, help="permutations per run (default 100)")
    parser.add_argument("--skip-nilearn-tfce", action="store_true",
                        help="skip nilearn's TFCE runs (about 3 s per permutation)")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2], help="n_jobs values (default 1 2)")
    args = parser.parse_args(argv)

    import nilearn
    import scipy
    from scipy import stats
    from threadpoolctl import threadpool_limits

    try:
        from graymatter.stats.clusters import ClusterStatistic
    except ImportError:
        ClusterStatistic = None
    try:
        from graymatter.stats.tfce import TFCEStatistic
    except ImportError:
        TFCEStatistic = None

    mask_img, grid, Y, X, c = make_data()
    n, m = Y.shape
    df = n - np.linalg.matrix_rank(X)
    height = float(stats.t.isf(0.001, df))
    n_perm = args.n_perm
    print(f"numpy {np.__version__}, scipy {scipy.__version__}, nilearn {nilearn.__version__}, "
          f"{os.cpu_count()} CPUs")
    print(f"Y {Y.shape} float64 ({Y.nbytes / 2**20:.0f} MB), X {X.shape} (5 cell means + {N_COV} "
          f"covariates), one t contrast; {n_perm} permutations; cluster height t > {height:.3f} "
          f"(p < 0.001, df {df}), 18-connectivity; TFCE E=0.5 H=2, 26-connectivity")

    rows = []  # (label, n_jobs, seconds, reference label for the ratio)

    def record(label, jobs, seconds, ref):
        rows.append((label, jobs, seconds, ref))
        print(f"  {label:<42s} n_jobs={jobs}: {seconds:8.2f} s  ({1000 * seconds / n_perm:8.1f} ms/perm)",
              flush=True)

    # Warm-up (imports, first-touch page faults, numba compilation), not timed.
    run_graymatter(Y, X, c, 1, 1)
    run_nilearn(Y[:, :1000], X, c, 1, 1, mask_img)
    for stat_class, kw in ((ClusterStatistic, {"height": height}), (TFCEStatistic, {})):
        if stat_class is not None:
            stat_class(grid, n_jobs=1, **kw).maxima(Y[:2] - Y.mean(axis=0))

    results, setup = {}, {}
    for jobs in args.jobs:
        limit = threadpool_limits(limits=1, user_api="blas") if jobs == 1 else None
        try:
            # Fixed set-up cost (GLM fit, reduction of Y), reported separately.
            sec, _ = run_graymatter(Y, X, c, 1, jobs)
            setup[jobs] = sec
            print(f"  graymatter set-up (a run with n_perm=1)    n_jobs={jobs}: {sec:8.2f} s", flush=True)
            sec, res = run_graymatter(Y, X, c, n_perm, jobs)
            results[("gm", jobs)] = res
            record("graymatter max-T float64", jobs, sec, "nilearn max-T")
            sec, _ = run_graymatter(Y, X, c, n_perm, jobs, dtype="float32")
            record("graymatter max-T float32", jobs, sec, "nilearn max-T")
            if ClusterStatistic is not None:
                clus = ClusterStatistic(grid, height=height, connectivity=18, n_jobs=1)
                sec, _ = run_graymatter(Y, X, c, n_perm, jobs, statistics=[clus])
                record("graymatter max-T + cluster", jobs, sec, "nilearn max-T")
                if TFCEStatistic is not None:
                    tf = TFCEStatistic(grid, n_jobs=1)
                    sec, res_tf = run_graymatter(Y, X, c, n_perm, jobs, statistics=[clus, tf])
                    results[("gm_tfce", jobs)] = res_tf
                    record("graymatter max-T + cluster + TFCE", jobs, sec, "nilearn TFCE")
                    sec, _ = run_graymatter(Y, X, c, n_perm, jobs, dtype="float32", statistics=[clus, tf])
                    record("graymatter max-T + cluster + TFCE float32", jobs, sec, "nilearn TFCE")
            sec, out = run_nilearn(Y, X, c, n_perm, jobs, mask_img)
            results[("nl", jobs)] = out
            record("nilearn max-T", jobs, sec, None)
            if not args.skip_nilearn_tfce:
                sec, out = run_nilearn(Y, X, c, n_perm, jobs, mask_img, tfce=True)
                results[("nl_tfce", jobs)] = out
                record("nilearn TFCE", jobs, sec, None)
        finally:
            if limit is not None:
                limit.restore_original_limits()

    res, out = results[("gm", args.jobs[0])], results[("nl", args.jobs[0])]
    print(f"\nmax |t_graymatter - t_nilearn| = {np.nanmax(np.abs(res.statistic - out['t'][0])):.2g}")

    ref = {(label, jobs): sec for label, jobs, sec, _ in rows}
    print(f"\n| method | n_jobs | wall (s), {n_perm} perms | ms / permutation | nilearn / graymatter |")
    print("|---|---:|---:|---:|---:|")
    for label, jobs, sec, against in rows:
        ratio = ""
        if against and (against, jobs) in ref:
            ratio = f"{ref[(against, jobs)] / sec:.1f}x vs {against}"
        print(f"| {label} | {jobs} | {sec:.2f} | {1000 * sec / n_perm:.1f} | {ratio} |")
    two = max(args.jobs)
    if ("graymatter max-T + cluster + TFCE", two) in ref:
        per = (ref[("graymatter max-T + cluster + TFCE", two)] - setup[two]) / n_perm
        print(f"\nProjected 5,000 permutations with max-T + cluster + TFCE on n_jobs={two}: "
              f"{(setup[two] + 5000 * per) / 60:.1f} min (set-up {setup[two]:.1f} s + "
              f"{1000 * per:.0f} ms/perm).")
    print("Set-up (GLM fit + reduction of Y, included in every graymatter row): "
          + ", ".join(f"n_jobs={j}: {s:.2f} s" for j, s in setup.items()))


if __name__ == "__main__":
    main()
