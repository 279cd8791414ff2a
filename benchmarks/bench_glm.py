"""Benchmark the mass-univariate GLM engine against plain numpy and nilearn (not run by CI).

Usage::

    python benchmarks/bench_glm.py                    # 125 subjects, 5 interleaved rounds
    python benchmarks/bench_glm.py --subjects 60 --repeats 1 --no-memory
    python benchmarks/bench_glm.py --methods numpy graymatter --repeats 9 --no-memory

All methods see the same seeded data: ``--subjects`` images on the nilearn 2 mm MNI152 brain mask,
an intercept plus 14 random covariates, and one t contrast. Timings are wall clock; the methods
are interleaved (each of ``--repeats`` rounds runs every method once, so load from other users
hits all of them alike) and the table gives the median of the rounds; the graymatter / numpy
ratio is also given per round (median, min-max). graymatter's p-values (computed by
``t_contrast``, hence timed) are checked against ``scipy.stats.t.sf`` to 1e-12 relative wherever
p > 1e-300. Peak memory is measured per method in a fresh subprocess (``--memory-child``): RSS
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
    "graymatter": "graymatter fit + t_contrast (t, p, z; matrix)",
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

    res = MassUnivariateGLM().fit(Y, X).t_contrast(c)  # also computes p, p one-sided, z
    return res.t, res.p, res.df


def run_graymatter_masking(Y, X, c, imgs, mask, **_):
    from graymatter.stats.glm import MassUnivariateGLM

    data = np.empty((len(imgs), int(mask.sum())))
    for i, img in enumerate(imgs):
        data[i] = img.get_fdata()[mask]
    res = MassUnivariateGLM().fit(data, X).t_contrast(c)
    return res.t, res.p, res.df


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


def interleaved(methods, repeats: int, data: dict):
    """Times ``{method: [s per round]}`` and results, each round running every method once."""
    times, results = {m: [] for m in methods}, {}
    for r in range(repeats):
        for method in methods:
            t0 = time.perf_counter()
            results[method] = RUNNERS[method](**data)
            times[method].append(time.perf_counter() - t0)
        print(f"  round {r + 1}: " + ", ".join(f"{m} {times[m][-1]:.3f} s" for m in methods)
              + "  (load average %.2f, %.2f, %.2f)" % os.getloadavg(), flush=True)
    return times, results


def check_p(t, p, df) -> str:
    """Assert graymatter's two-sided p equals scipy's ``2 t.sf(|t|)`` to 1e-12 where p > 1e-300."""
    from scipy import stats

    ref = np.minimum(2 * stats.t.sf(np.abs(t), df), 1.0)
    ok = np.isfinite(t) & (ref > 1e-300)
    rel = float(np.max(np.abs(p[ok] - ref[ok]) / ref[ok]))
    assert rel <= 1e-12, f"p differs from scipy by {rel:.2e} relative"
    return (f"p vs scipy.stats.t.sf: max relative difference {rel:.1e} over {int(ok.sum()):,} voxels "
            f"(p from {ref[ok].min():.1e} to {ref[ok].max():.2f}; tolerance 1e-12)")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=125, help="number of subjects (default 125)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="interleaved timing rounds, median kept (default 5)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS),
                        help="methods to time (default all; numpy and graymatter are always run)")
    parser.add_argument("--no-memory", action="store_true", help="skip the per-method memory subprocesses")
    parser.add_argument("--memory-child", choices=METHODS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        memory_child(args.memory_child, args.subjects)
        return

    import nilearn
    import scipy

    methods = [m for m in METHODS if m in set(args.methods) | {"numpy", "graymatter"}]
    mem = {}  # fresh subprocesses, run before this process holds any data
    if not args.no_memory:
        for method in methods:
            mem[method] = measure_memory(method, args.subjects)
            print(f"  memory {method}: " + ", ".join(
                f"{k} {v:.0f} MB" if isinstance(v, float) else f"{k} {v}" for k, v in mem[method].items()),
                flush=True)

    from threadpoolctl import threadpool_info

    mask_img, mask, Y, X, c, imgs = make_data(args.subjects, images=True)
    blas = "; ".join(f"{i['internal_api']} {i.get('version')} ({i.get('architecture', '-')}, "
                     f"{i['num_threads']} threads)" for i in threadpool_info() if i["user_api"] == "blas")
    print(f"numpy {np.__version__}, scipy {scipy.__version__}, nilearn {nilearn.__version__}, "
          f"{os.cpu_count()} CPUs; BLAS: {blas}")
    print(f"MNI152 2 mm brain mask: {mask.shape}, {int(mask.sum()):,} voxels; Y {Y.shape} float64 = "
          f"{Y.nbytes / 2**20:.0f} MB; X {X.shape}; one t contrast")
    data = dict(Y=Y, X=X, c=c, imgs=imgs, mask=mask, mask_img=mask_img)
    run_graymatter(**data)  # warm-up: first-call costs (imports, page faults of the outputs)
    times, maps = interleaved(methods, args.repeats, data)
    best = {m: float(np.median(v)) for m, v in times.items()}
    t_gm, p_gm, df = maps["graymatter"]
    print(check_p(t_gm, p_gm, df))
    ratio = np.array(times["graymatter"]) / np.array(times["numpy"])
    print(f"max |t_graymatter - t_numpy|   = {np.max(np.abs(t_gm - maps['numpy'])):.3g}")
    if "nilearn" in maps:
        print(f"max |t_graymatter - t_nilearn| = {np.max(np.abs(t_gm - maps['nilearn'])):.3g}")
        print(f"ratio nilearn / graymatter    = {best['nilearn'] / best['graymatter']:.1f} (target >= 5)")
    if "graymatter+masking" in maps:
        print(f"max |t_graymatter - t_graymatter+masking| = "
              f"{np.max(np.abs(t_gm - maps['graymatter+masking'][0])):.3g}")
    print(f"ratio graymatter / numpy      = {np.median(ratio):.2f} median of rounds "
          f"({ratio.min():.2f}-{ratio.max():.2f}); of the medians {best['graymatter'] / best['numpy']:.2f} "
          "(target <= 1.5)")

    print()
    print(f"| method | median of {args.repeats} (s) | x numpy | data-ready RSS (MB) | peak RSS (MB) | "
          "increment (MB) | (data + increment) / data | peak RSS / data |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for method in methods:
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
          f"{N_REGRESSORS} regressors.")
    if mem:
        print("Data-ready RSS includes the interpreter and imports (numpy, scipy, pandas, nilearn: "
              f"~{mem['numpy']['baseline'] - mem['numpy']['data']:.0f} MB) and, for the image rows, the "
              f"{args.subjects} in-memory images instead of the matrix.")


if __name__ == "__main__":
    main()
