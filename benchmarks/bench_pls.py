"""Benchmark graymatter's batched PLS against a scikit-learn PLSRegression loop (not run by CI).

Usage::

    python benchmarks/bench_pls.py                 # 5 interleaved rounds
    python benchmarks/bench_pls.py --rounds 3 --sk-reps 50

Case 1, clinical PLS (Study B): 24 subjects x 360 regional ΔGMV -> ΔHAMD, PLS1, 1,000 permutations
(rows of Y permuted, variance explained and r recomputed) + 1,000 bootstraps (subjects resampled,
x-weights refitted and sign-aligned). The scikit-learn loop refits ``PLSRegression`` once per
resample; it is timed on ``--sk-reps`` of each and extrapolated linearly to 1,000.

Case 2, transcriptomic size: 180 regions x 15,633 genes -> one regional map, PLS1: fit + 1,000
bootstraps; scikit-learn is timed on ``--sk-wide-reps`` bootstraps and extrapolated.

The machine is shared and noisy, so the methods are interleaved: each of ``--rounds`` rounds runs
graymatter and then scikit-learn on every case, and the table gives the median time of each over
the rounds and the median (min-max) of the per-round speed-ups. The load average (``uptime``) is
printed before and after. The script also prints how far the bootstrap weights of both are apart
on the resamples they share.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _load() -> str:
    return "load average %.2f, %.2f, %.2f" % os.getloadavg()


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


def _versions() -> str:
    import scipy
    import sklearn
    from threadpoolctl import threadpool_info

    blas = [f"{i['internal_api']} {i.get('version')} ({i.get('architecture', '-')}, "
            f"{i['num_threads']} threads)" for i in threadpool_info() if i["user_api"] == "blas"]
    return (f"numpy {np.__version__}, scipy {scipy.__version__}, scikit-learn {sklearn.__version__}; "
            f"BLAS: {'; '.join(blas)}; {os.cpu_count()} CPUs")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-perm", type=int, default=1000)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--sk-reps", type=int, default=100)
    ap.add_argument("--sk-wide-reps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    warnings.simplefilter("ignore")

    from graymatter.datasets.simulate_longitudinal import simulate_longitudinal_cohort
    from graymatter.stats.pls import pls_bootstrap, pls_fit, pls_permutation

    from sklearn.cross_decomposition import PLSRegression

    print(_versions())
    print("before:", _load(), flush=True)
    cohort = simulate_longitudinal_cohort(random_state=0)
    X = (cohort.post - cohort.pre).to_numpy()
    y = (cohort.participants["hamd_post"] - cohort.participants["hamd_pre"]).to_numpy(dtype=float)
    # transcriptomic size: expression with low-rank structure, one regional map
    rng = np.random.default_rng(0)
    n, p = 180, 15_633
    expr = rng.standard_normal((n, 10)) @ rng.standard_normal((10, p)) + rng.standard_normal((n, p))
    tmap = expr[:, :50].mean(axis=1) + rng.standard_normal(n)

    # warm-up: imports, numba compilation and first-call costs
    PLSRegression(n_components=1).fit(X, y).predict(X)
    pls_bootstrap(X, y, n_boot=10, random_state=0)
    pls_bootstrap(expr, tmap, n_boot=10, random_state=0)
    k, kw = args.sk_reps, args.sk_wide_reps
    names = [f"24 x 360 PLS1: {args.n_perm} permutations", f"24 x 360 PLS1: {args.n_boot} bootstraps",
             "24 x 360 PLS1: permutations + bootstraps",
             f"180 x 15,633 PLS1: fit + {args.n_boot} bootstraps"]
    ours = {nm: [] for nm in names}
    theirs = {nm: [] for nm in names}
    for r in range(args.rounds):
        t_perm, perm = _timed(lambda: pls_permutation(X, y, n_perm=args.n_perm, random_state=r))
        t_boot, boot = _timed(lambda: pls_bootstrap(X, y, n_boot=args.n_boot, random_state=r,
                                                    return_samples=True))
        t_sk_perm, sk_r = _timed(lambda: _sk_perm(X, y, perm.permutations[:k]))
        t_sk_boot, sk_w = _timed(lambda: _sk_boot(X, y, boot.indices[:k], boot.weights[:, 0]))
        t_wide, wide = _timed(lambda: (pls_fit(expr, tmap),
                                       pls_bootstrap(expr, tmap, n_boot=args.n_boot, random_state=r,
                                                     return_samples=True)))
        t_sk_wide, sk_wide = _timed(lambda: _sk_boot(expr, tmap, wide[1].indices[:kw],
                                                     wide[1].weights[:, 0]))
        row = [(t_perm, t_sk_perm * args.n_perm / k), (t_boot, t_sk_boot * args.n_boot / k),
               (t_perm + t_boot, (t_sk_perm * args.n_perm + t_sk_boot * args.n_boot) / k),
               (t_wide, t_sk_wide * args.n_boot / kw)]
        for nm, (a, b) in zip(names, row):
            ours[nm].append(a)
            theirs[nm].append(b)
        print(f"round {r + 1}: " + "; ".join(f"{a:.3f} s vs {b:.2f} s" for a, b in row)
              + f"  ({_load()})", flush=True)
    d_perm = np.abs(sk_r - perm.null_r[:k, 0]).max()
    d_boot = np.abs(sk_w - boot.samples[:k, :, 0]).max()
    d_wide = np.abs(sk_wide - wide[1].samples[:kw, :, 0]).max()

    print("after:", _load())
    print(f"\n{args.rounds} interleaved rounds; scikit-learn timed on {k} (case 1) / {kw} (case 2) "
          f"refits per round and extrapolated linearly to {args.n_boot}\n")
    print("| case | graymatter (s, median) | scikit-learn loop (s, median, extrapolated) | "
          "speed-up, median of rounds (min-max) |")
    print("|---|---:|---:|---:|")
    for nm in names:
        ratio = np.array(theirs[nm]) / np.array(ours[nm])
        print(f"| {nm} | {np.median(ours[nm]):.3f} | {np.median(theirs[nm]):.2f} | "
              f"{np.median(ratio):.0f}× ({ratio.min():.0f}–{ratio.max():.0f}) |")
    print(f"\nmax |Δ| vs scikit-learn on shared resamples: null r {d_perm:.1e}, bootstrap weights "
          f"{d_boot:.1e} (24 x 360), {d_wide:.1e} (180 x 15,633)")


if __name__ == "__main__":
    main()
