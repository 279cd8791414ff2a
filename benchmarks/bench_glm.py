"""Benchmark the mass-univariate GLM engine against plain numpy and nilearn (not run by CI).

Usage::

    python benchmarks/bench_glm.py                    # 125 subjects, best of 3
    python benchmarks/bench_glm.py --subjects 60 --repeats 1 --no-memory

All methods see the same seeded data: ``--subjects`` images on the nilearn 2 mm MNI152 brain mask,
an intercept plus 14 random covariates, and one t contrast. Timings are wall clock, best of
``--repeats``. Peak memory is measured per method in a fresh subprocess (``--memory-child``): RSS
once the data exist (psutil) versus peak RSS after the method (``getrusage`` ``ru_maxrss``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import warnings

import numpy as np

N_REGRESSORS = 15
METHODS = ("numpy", "graymatter", "graymatter+masking", "nilearn")
LABELS = {
    "numpy": "plain numpy (pinv, 2 GEMMs, t)",
    "graymatter": "graymatter fit + t_contrast (matrix)",
    "graymatter+masking": "graymatter incl. masking 125 images",
    "nilearn": "nilearn SecondLevelModel fit + compute_contrast",
}


def make_data(n_subjects: int, seed: int = 0, matrix: bool = True, images: bool = False):
    """Return mask image, mask (3-D bool), Y (n_subjects, n_voxels) float64 or None, X (n, 15),
    contrast (15,) and a list of in-memory images or None.

    Rows are drawn one subject at a time, so the images-only variant (for the memory children)
    never holds the full matrix yet sees exactly the same numbers.
    """
    import nibabel as nib
    from nilearn.datasets import load_mni152_brain_mask

    mni_mask = load_mni152_brain_mask(resolution=2)
    mask = np.asarray(mni_mask.get_fdata()) > 0
    mask_img = nib.Nifti1Image(mask.astype(np.uint8), mni_mask.affine)
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n_subjects), rng.standard_normal((n_subjects, N_REGRESSORS - 1))])
    c = np.zeros(N_REGRESSORS)
    c[1] = 1.0
    n_vox = int(mask.sum())
    Y = np.empty((n_subjects, n_vox)) if matrix else None
    imgs = [] if images else None
    row = np.empty(n_vox)
    for i in range(n_subjects):
        rng.standard_normal(out=row)
        row *= 0.1
        row += 0.5 + 0.02 * X[i, 1]  # a gray-matter-like level and one real effect
        if matrix:
            Y[i] = row
        if images:
            vol = np.zeros(mask.shape)
            vol[mask] = row
            imgs.append(nib.Nifti1Image(vol, mni_mask.affine))
    return mask_img, mask, Y, X, c, imgs


def run_numpy(Y, X, c, **_):
    B = np.linalg.pinv(X) @ Y
    R = Y - X @ B
    sigma2 = np.einsum("ij,ij->j", R, R) / (X.shape[0] - np.linalg.matrix_rank(X))
    return (c @ B) / np.sqrt(sigma2 * (c @ np.linalg.pinv(X.T @ X) @ c))


def run_graymatter(Y, X, c, **_):
    from graymatter.stats.glm import MassUnivariateGLM

    return MassUnivariateGLM().fit(Y, X).t_contrast(c).t


def run_graymatter_masking(Y, X, c, imgs, mask, **_):
    from graymatter.stats.glm import MassUnivariateGLM

    data = np.empty((len(imgs), int(mask.sum())))
    for i, img in enumerate(imgs):
        data[i] = img.get_fdata()[mask]
    return MassUnivariateGLM().fit(data, X).t_contrast(c).t


def run_nilearn(Y, X, c, imgs, mask, mask_img, **_):
    import pandas as pd
    from nilearn.glm.second_level import SecondLevelModel

    design = pd.DataFrame(X, columns=["intercept"] + [f"x{i}" for i in range(1, X.shape[1])])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = SecondLevelModel(mask_img=mask_img).fit(imgs, design_matrix=design)
        stat = model.compute_contrast(c, output_type="stat")
    return np.asarray(stat.get_fdata())[mask]


RUNNERS = {"numpy": run_numpy, "graymatter": run_graymatter,
           "graymatter+masking": run_graymatter_masking, "nilearn": run_nilearn}


def memory_child(method: str, n_subjects: int) -> None:
    """Run one method in this fresh process and print its memory figures (MB) as JSON."""
    import psutil
    import scipy.stats  # noqa: F401  (imports count as baseline, not as the method's memory)
    from nilearn.glm.second_level import SecondLevelModel  # noqa: F401

    import graymatter.stats.glm  # noqa: F401

    needs_images = method in ("graymatter+masking", "nilearn")
    mask_img, mask, Y, X, c, imgs = make_data(n_subjects, matrix=not needs_images, images=needs_images)
    baseline = psutil.Process().memory_info().rss / 2**20
    # ru_maxrss is inherited across fork/exec and includes the data-creation transients (e.g. the
    # mask resampling); Linux resets the high-water mark to the current RSS on "5" > clear_refs.
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        reset = True
    except OSError:
        reset = False
    RUNNERS[method](Y=Y, X=X, c=c, imgs=imgs, mask=mask, mask_img=mask_img)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"baseline": baseline, "peak": peak, "peak_reset": reset,
                      "data": n_subjects * int(mask.sum()) * 8 / 2**20}))


def measure_memory(method: str, n_subjects: int) -> dict:
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--memory-child", method,
                          "--subjects", str(n_subjects)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def best_of(fn, repeats: int, label: str, **kwargs):
    times, result = [], None
    for r in range(repeats):
        t0 = time.perf_counter()
        result = fn(**kwargs)
        times.append(time.perf_counter() - t0)
        print(f"  {label:<20s} repeat {r + 1}: {times[-1]:8.3f} s", flush=True)
    return min(times), result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=125, help="number of subjects (default 125)")
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats, best kept (default 3)")
    parser.add_argument("--no-memory", action="store_true", help="skip the per-method memory subprocesses")
    parser.add_argument("--memory-child", choices=METHODS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        memory_child(args.memory_child, args.subjects)
        return

    import nilearn
    import scipy

    mem = {}  # fresh subprocesses, run before this process holds any data
    if not args.no_memory:
        for method in METHODS:
            mem[method] = measure_memory(method, args.subjects)
            print(f"  memory {method}: " + ", ".join(
                f"{k} {v:.0f} MB" if isinstance(v, float) else f"{k} {v}" for k, v in mem[method].items()),
                flush=True)

    mask_img, mask, Y, X, c, imgs = make_data(args.subjects, images=True)
    print(f"numpy {np.__version__}, scipy {scipy.__version__}, nilearn {nilearn.__version__}, "
          f"{os.cpu_count()} CPUs")
    print(f"MNI152 2 mm brain mask: {mask.shape}, {int(mask.sum()):,} voxels; Y {Y.shape} float64 = "
          f"{Y.nbytes / 2**20:.0f} MB; X {X.shape}; one t contrast")
    data = dict(Y=Y, X=X, c=c, imgs=imgs, mask=mask, mask_img=mask_img)
    best, maps = {}, {}
    for method in METHODS:
        best[method], maps[method] = best_of(RUNNERS[method], args.repeats, method, **data)

    diff_np = np.max(np.abs(maps["graymatter"] - maps["numpy"]))
    diff_nl = np.max(np.abs(maps["graymatter"] - maps["nilearn"]))
    diff_mask = np.max(np.abs(maps["graymatter"] - maps["graymatter+masking"]))
    print(f"max |t_graymatter - t_numpy|   = {diff_np:.3g}")
    print(f"max |t_graymatter - t_nilearn| = {diff_nl:.3g}")
    print(f"max |t_graymatter - t_graymatter+masking| = {diff_mask:.3g}")
    print(f"ratio graymatter / numpy      = {best['graymatter'] / best['numpy']:.2f} (target <= 1.5)")
    print(f"ratio nilearn / graymatter    = {best['nilearn'] / best['graymatter']:.1f} (target >= 5)")
    print(f"ratio nilearn / graymatter+masking = {best['nilearn'] / best['graymatter+masking']:.1f}")

    print()
    print(f"| method | best of {args.repeats} (s) | x numpy | data-ready RSS (MB) | peak RSS (MB) | "
          "increment (MB) | (data + increment) / data | peak RSS / data |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for method in METHODS:
        cells = [LABELS[method], f"{best[method]:.3f}", f"{best[method] / best['numpy']:.2f}"]
        if method in mem:
            m = mem[method]
            inc = m["peak"] - m["baseline"]
            cells += [f"{m['baseline']:.0f}", f"{m['peak']:.0f}", f"{inc:.0f}",
                      f"{(m['data'] + inc) / m['data']:.2f}", f"{m['peak'] / m['data']:.2f}"]
        else:
            cells += ["-"] * 5
        print("| " + " | ".join(cells) + " |")
    print(f"\n{args.subjects} subjects x {int(mask.sum()):,} voxels (data matrix {Y.nbytes / 2**20:.0f} MB), "
          f"{N_REGRESSORS} regressors; max |t diff| vs nilearn {diff_nl:.2g}, vs numpy {diff_np:.2g}.")
    if mem:
        print("Data-ready RSS includes the interpreter and imports (numpy, scipy, pandas, nilearn: "
              f"~{mem['numpy']['baseline'] - mem['numpy']['data']:.0f} MB) and, for the image rows, the "
              f"{args.subjects} in-memory images instead of the matrix.")


if __name__ == "__main__":
    main()
