"""Benchmark graymatter's batched PLS against a scikit-learn PLSRegression loop (not run by CI).

Usage::

    python benchmarks/bench_pls.py                 # full run
    python benchmarks/bench_pls.py --sk-reps 50    # fewer sklearn refits to extrapolate from

Case 1, clinical PLS (Study B): 24 subjects x 360 regional ΔGMV -> ΔHAMD, PLS1, 1,000 permutations
(rows of Y permuted, variance explained and r recomputed) + 1,000 bootstraps (subjects resampled,
x-weights refitted and sign-aligned). The scikit-learn loop refits ``PLSRegression`` once per
resample; it is timed on ``--sk-reps`` of each and extrapolated linearly to 1,000.

Case 2, transcriptomic size: 180 regions x 15,633 genes -> one regional map, PLS1: fit + 1,000
bootstraps; scikit-learn is timed on ``--sk-wide-reps`` bootstraps and extrapolated.

Timings are wall clock, best of ``--repeats`` for graymatter. The script also prints how far the
bootstrap weights of both are apart on the resamples they share.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np


def _best(fn, repeats):
    best, out = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _sk_perm(X, y, perms):
    from sklearn.cross_decomposition import PLSRegression
    r = []
    for perm in perms:
        yp = y[perm]
        m = PLSRegression(n_components=1).fit(X, yp)
        r.append(np.corrcoef(m.predict(X).ravel(), yp)[0, 1])
    return np.array(r)


def _sk_boot(X, y, indices, ref):
    from sklearn.cross_decomposition import PLSRegression
    out = []
    for idx in indices:
        w = PLSRegression(n_components=1).fit(X[idx], y[idx]).x_weights_[:, 0]
        out.append(w if w @ ref >= 0 else -w)
    return np.array(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-perm", type=int, default=1000)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--sk-reps", type=int, default=100)
    ap.add_argument("--sk-wide-reps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    warnings.simplefilter("ignore")

    from graymatter.datasets.simulate_longitudinal import simulate_longitudinal_cohort
    from graymatter.stats.pls import pls_bootstrap, pls_fit, pls_permutation

    from sklearn.cross_decomposition import PLSRegression

    cohort = simulate_longitudinal_cohort(random_state=0)
    X = (cohort.post - cohort.pre).to_numpy()
    y = (cohort.participants["hamd_post"] - cohort.participants["hamd_pre"]).to_numpy(dtype=float)

    PLSRegression(n_components=1).fit(X, y).predict(X)  # warm-up: imports and first-call costs
    t_perm, perm = _best(lambda: pls_permutation(X, y, n_perm=args.n_perm, random_state=0), args.repeats)
    t_boot, boot = _best(lambda: pls_bootstrap(X, y, n_boot=args.n_boot, random_state=0,
                                               return_samples=True), args.repeats)
    k = args.sk_reps
    t0 = time.perf_counter()
    sk_r = _sk_perm(X, y, perm.permutations[:k])
    t_sk_perm = (time.perf_counter() - t0) * args.n_perm / k
    t0 = time.perf_counter()
    sk_w = _sk_boot(X, y, boot.indices[:k], boot.weights[:, 0])
    t_sk_boot = (time.perf_counter() - t0) * args.n_boot / k
    d_perm = np.abs(sk_r - perm.null_r[:k, 0]).max()
    d_boot = np.abs(sk_w - boot.samples[:k, :, 0]).max()

    # transcriptomic size: expression with low-rank structure, one regional map
    rng = np.random.default_rng(0)
    n, p = 180, 15_633
    expr = rng.standard_normal((n, 10)) @ rng.standard_normal((10, p)) + rng.standard_normal((n, p))
    tmap = expr[:, :50].mean(axis=1) + rng.standard_normal(n)
    t_wide, wide = _best(lambda: (pls_fit(expr, tmap), pls_bootstrap(expr, tmap, n_boot=args.n_boot,
                                                                      random_state=0)), 1)
    kw = args.sk_wide_reps
    t0 = time.perf_counter()
    _sk_boot(expr, tmap, wide[1].indices[:kw], wide[1].weights[:, 0])
    t_sk_wide = (time.perf_counter() - t0) * args.n_boot / kw

    print(f"\nmachine: {os.cpu_count()} CPUs; graymatter best of {args.repeats}; scikit-learn timed on "
          f"{k} (case 1) / {kw} (case 2) refits and extrapolated linearly to {args.n_boot}\n")
    print("| case | graymatter (s) | scikit-learn loop (s, extrapolated) | speed-up |")
    print("|---|---|---|---|")
    rows = [(f"24 x 360 PLS1: {args.n_perm} permutations", t_perm, t_sk_perm),
            (f"24 x 360 PLS1: {args.n_boot} bootstraps", t_boot, t_sk_boot),
            ("24 x 360 PLS1: permutations + bootstraps", t_perm + t_boot, t_sk_perm + t_sk_boot),
            (f"180 x 15,633 PLS1: fit + {args.n_boot} bootstraps", t_wide, t_sk_wide)]
    for name, ours, theirs in rows:
        print(f"| {name} | {ours:.3f} | {theirs:.2f} | {theirs / ours:.0f}x |")
    print(f"\nmax |Δ| vs scikit-learn on shared resamples: null r {d_perm:.1e}, bootstrap weights {d_boot:.1e}")


if __name__ == "__main__":
    main()
