"""Benchmark the gene PLS of imaging transcriptomics against a scikit-learn refit loop (not run by CI).

Usage::

    python benchmarks/bench_transcriptomics.py              # 1,000 spins + 1,000 bootstraps
    python benchmarks/bench_transcriptomics.py --sk-reps 10

Data: Study B's size, 180 regions x 15,633 genes. Expression is simulated (smooth random fields
over 180 points on a sphere, so genes are spatially autocorrelated like AHBA), the map is a
weighted sum of 50 genes plus noise. Spin nulls are random permutations standing in for rotations
(the PLS cost does not depend on where the indices come from).

graymatter: ``gene_pls(expression, map, n_components=1, nulls=(180, 1000), n_boot=1000)``, i.e.
PLS1 + 1,000 null refits + 1,000 bootstrap refits, all batched. scikit-learn:
``PLSRegression(n_components=1)`` refitted once per null map and once per bootstrap resample; it
is timed on ``--sk-reps`` of each and extrapolated linearly to 1,000 + 1,000 (stated in the table).
On a loaded machine run it with ``OPENBLAS_NUM_THREADS=1``: oversubscribed BLAS threads make
LAPACK calls (the rank check's QR) 50x slower and the timings meaningless.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
import pandas as pd


def simulate(n_regions=180, n_genes=15633, seed=0):
    rng = np.random.default_rng(seed)
    pts = rng.standard_normal((n_regions, 3))
    pts /= np.linalg.norm(pts, axis=1, keepdims=True)
    kernel = np.exp(-((pts[:, None] - pts[None]) ** 2).sum(-1) / 0.3)
    chol = np.linalg.cholesky(kernel + 1e-6 * np.eye(n_regions))
    X = chol @ rng.standard_normal((n_regions, n_genes)) + 0.5 * rng.standard_normal((n_regions, n_genes))
    y = X[:, :50] @ rng.standard_normal(50) / 10 + rng.standard_normal(n_regions)
    idx = [f"lh_r{i}" for i in range(n_regions)]
    return (pd.DataFrame(X, index=idx, columns=[f"G{j}" for j in range(n_genes)]),
            pd.Series(y, index=idx))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-spins", type=int, default=1000)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--sk-reps", type=int, default=20, help="sklearn refits timed per kind")
    args = ap.parse_args(argv)
    from sklearn.cross_decomposition import PLSRegression

    from graymatter.transcriptomics.gene_pls import gene_pls

    X, y = simulate()
    n = len(y)
    rng = np.random.default_rng(1)
    nulls = np.stack([rng.permutation(n) for _ in range(args.n_spins)], axis=1)

    t0 = time.perf_counter()
    res = gene_pls(X, y, n_components=1, nulls=nulls, n_boot=args.n_boot, random_state=0)
    t_gm = time.perf_counter() - t0

    Xa, ya = X.to_numpy(), y.to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        sk = PLSRegression(n_components=1).fit(Xa, ya)
        t_fit = time.perf_counter() - t0
        t0 = time.perf_counter()
        for j in range(args.sk_reps):
            PLSRegression(n_components=1).fit(Xa, ya[nulls[:, j]])
        t_null = (time.perf_counter() - t0) / args.sk_reps
        t0 = time.perf_counter()
        for _ in range(args.sk_reps):
            b = rng.integers(0, n, n)
            PLSRegression(n_components=1).fit(Xa[b], ya[b])
        t_boot = (time.perf_counter() - t0) / args.sk_reps
    t_sk = t_fit + args.n_spins * t_null + args.n_boot * t_boot
    diff = np.abs(np.abs(sk.x_weights_[:, 0] @ res.weights["PLS1"].to_numpy()) - 1)

    print(f"gene PLS, {n} regions x {X.shape[1]} genes (simulated, spatially smooth), PLS1 + "
          f"{args.n_spins} spins + {args.n_boot} bootstraps; {os.cpu_count()} cores\n")
    print("| method | time (s) | speed-up |")
    print("|---|---:|---:|")
    print(f"| graymatter gene_pls (batched) | {t_gm:.1f} | {t_sk / t_gm:.0f}x |")
    print(f"| scikit-learn PLSRegression loop (extrapolated from {args.sk_reps} null + "
          f"{args.sk_reps} bootstrap refits: {1000 * t_null:.0f} / {1000 * t_boot:.0f} ms each) "
          f"| {t_sk:.1f} | 1x |")
    print(f"\n|1 - |w_gm . w_sklearn|| = {diff:.2e}; PLS1 explains {100 * res.explained_variance[0]:.1f}%"
          f", p_spin = {res.p_spin[0]:.4f}; PLS1+ {len(res.pls1_positive)}, "
          f"PLS1- {len(res.pls1_negative)} genes")


if __name__ == "__main__":
    main()
