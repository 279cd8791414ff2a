"""Benchmark and calibration of graymatter's gene-set enrichment (not run by CI).

Usage::

    python benchmarks/bench_gsea.py                       # speed / memory next to gseapy.prerank
    python benchmarks/bench_gsea.py --calibration         # false-positive table -> docs/enrichment_calibration.md
    python benchmarks/bench_gsea.py --calibration --maps 100 --no-write   # quicker, print only

Benchmark: the ranking is the correlation of each of the 15,633 AHBA genes (Desikan-Killiany
regions) with the ENIGMA-MDD cortical-thickness map; the sets are the 7 Seidlitz et al. 2020 cell
classes; 10,000 permutations. Each method runs once in a fresh subprocess that first loads the
data (and, for graymatter, compiles the numba kernels on a tiny input: the on-disk cache makes
later sessions skip that), records its RSS, resets the kernel's high-water mark
(``5 > /proc/self/clear_refs``) and then runs the method: peak memory is VmHWM afterwards, the
increment is over the data-ready baseline.

Calibration (Fulcher et al. 2021): smooth random maps (Gaussian random fields with exponential
covariance on the fsaverage5 sphere centroids of the 68 cortical DK parcels, independent between
hemispheres) that are unrelated to any gene set, scored against the AHBA expression with the 7
Seidlitz classes. For each map: classic category-score p (random gene sets), GSEA prerank p on the
PLS1 weights (gene permutation), and the spatial ensemble p with two null ensembles: spins of the
map (Váša) and independent random fields drawn with the same covariance.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


# ------------------------------------------------------------------ shared inputs

def load_inputs():
    expr = pd.read_csv(DATA / "ahba" / "ahba_dk83_15633genes.csv")
    expr = expr.drop(columns="label").set_index("Region")
    thick = pd.read_csv(DATA / "enigma" / "mddadult_case-controls_CortThick.csv")
    thick = thick.set_index("Structure")["d_icv"]
    return expr, thick


def enigma_ranking(expr, thick) -> pd.Series:
    X = expr.loc[thick.index].to_numpy()
    Xc, yc = X - X.mean(axis=0), thick.to_numpy() - thick.mean()
    r = Xc.T @ yc / np.sqrt((Xc**2).sum(axis=0) * (yc**2).sum())
    return pd.Series(r, index=expr.columns.str.upper()).sort_values(ascending=False)


def _hwm_reset() -> float:
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    return _status("VmRSS")


def _status(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024  # MiB
    return float("nan")


def _child(method: str, n_perm: int) -> None:
    sys.path.insert(0, str(REPO / "src"))
    from graymatter.transcriptomics.genesets import read_gene_table

    expr, thick = load_inputs()
    ranking = enigma_ranking(expr, thick)
    cells = read_gene_table(DATA / "genesets" / "celltypes_seidlitz2020_PSP.csv")
    if method == "graymatter":
        from graymatter.transcriptomics.gsea import gsea_prerank

        tiny = ranking.iloc[:200]
        gsea_prerank(tiny, cells, n_perm=10, min_size=1, random_state=0)  # JIT / cache load

        def run():
            t = gsea_prerank(ranking, cells, n_perm=n_perm, max_size=2000, random_state=1).table
            return t[["es", "nes", "p", "fdr_q"]]
    else:
        import warnings

        import gseapy

        warnings.simplefilter("ignore")
        threads = 1 if method == "gseapy_t1" else 4

        def run():
            t = gseapy.prerank(rnk=ranking, gene_sets=cells.sets, permutation_num=n_perm, seed=1,
                               threads=threads, min_size=15, max_size=2000, outdir=None,
                               no_plot=True, verbose=False).res2d.set_index("Term")
            t = t[["ES", "NES", "NOM p-val", "FDR q-val"]].astype(float)
            t.columns = ["es", "nes", "p", "fdr_q"]
            return t
    base = _hwm_reset()
    t0 = time.perf_counter()
    table = run()
    seconds = time.perf_counter() - t0
    peak = _status("VmHWM")
    print(json.dumps({"method": method, "seconds": seconds, "baseline_mib": base,
                      "peak_mib": peak, "table": table.to_dict()}))


def benchmark(n_perm: int) -> None:
    rows = {}
    for method in ("graymatter", "gseapy_t1", "gseapy_t4"):
        out = subprocess.run([sys.executable, __file__, "--child", method, "--perm", str(n_perm)],
                             capture_output=True, text=True, check=True)
        rows[method] = json.loads(out.stdout.strip().splitlines()[-1])
    gm = rows["graymatter"]
    print(f"\n15,633 genes x 7 Seidlitz sets, {n_perm:,} permutations "
          f"(ENIGMA-MDD thickness x AHBA DK ranking), {_cpu()} CPUs\n")
    print("| method | time (s) | speed-up of graymatter | peak RSS (MiB) | increment over data (MiB) | memory ratio (increment) |")
    print("|---|---|---|---|---|---|")
    label = {"graymatter": "graymatter gsea_prerank", "gseapy_t1": "gseapy.prerank threads=1",
             "gseapy_t4": "gseapy.prerank threads=4 (default)"}
    gm_inc = gm["peak_mib"] - gm["baseline_mib"]
    for method, r in rows.items():
        inc = r["peak_mib"] - r["baseline_mib"]
        print(f"| {label[method]} | {r['seconds']:.2f} | {r['seconds'] / gm['seconds']:.1f}x | "
              f"{r['peak_mib']:.0f} | {inc:.0f} | {inc / max(gm_inc, 1e-9):.1f}x |")
    ours = pd.DataFrame(gm["table"])
    print("\nagreement with gseapy threads=1 (same ranking and sets, independent permutations)\n")
    ref = pd.DataFrame(rows["gseapy_t1"]["table"]).loc[ours.index]
    both = pd.concat({"graymatter": ours, "gseapy": ref}, axis=1)
    both.columns = [f"{a} {b}" for a, b in both.columns]
    print(_markdown(both))
    print(f"\nmax |dES| = {np.abs(ours['es'] - ref['es']).max():.2e}, "
          f"max |dNES| = {np.abs(ours['nes'] - ref['nes']).max():.4f}, "
          f"max |dp| = {np.abs(ours['p'] - ref['p']).max():.4f}")


def _markdown(frame: pd.DataFrame, digits: int = 4) -> str:
    """A DataFrame as a markdown table (no tabulate dependency)."""
    def fmt(v):
        if isinstance(v, (float, np.floating)):
            return f"{v:.{digits}g}" if abs(v) < 1e-3 and v != 0 else f"{v:.{digits}f}"
        return str(v)
    head = "| " + " | ".join([str(frame.index.name or "")] + [str(c) for c in frame.columns]) + " |"
    rule = "|---" * (frame.shape[1] + 1) + "|"
    body = ["| " + " | ".join([str(i)] + [fmt(v) for v in row]) + " |"
            for i, row in zip(frame.index, frame.itertuples(index=False))]
    return "\n".join([head, rule, *body])


def _cpu() -> int:
    import os

    return len(os.sched_getaffinity(0))


# ------------------------------------------------------------------ calibration

def _smooth_maps(coords, n, rng, length):
    d = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
    chol = np.linalg.cholesky(np.exp(-d / length) + 1e-9 * np.eye(len(coords)))
    return chol @ rng.standard_normal((len(coords), n))


def _wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def calibration(n_maps: int, n_null: int, n_perm: int, length: float, seed: int,
                write: bool) -> None:
    sys.path.insert(0, str(REPO / "src"))
    from graymatter.transcriptomics.genesets import read_gene_table
    from graymatter.transcriptomics.gsea import gsea_prerank
    from graymatter.transcriptomics.nulls import spin_permutations
    from graymatter.transcriptomics.spatial_enrichment import gene_scores, spatial_enrichment

    expr, thick = load_inputs()
    cells = read_gene_table(DATA / "genesets" / "celltypes_seidlitz2020_PSP.csv")
    lh, rh = _dk_centroids(expr)
    regions = list(lh.index) + list(rh.index)
    rng = np.random.default_rng(seed)
    spins = spin_permutations(lh, rh, n_rotations=n_null, random_state=seed)
    field = lambda n: np.vstack([_smooth_maps(lh.to_numpy(), n, rng, length),  # noqa: E731
                                 _smooth_maps(rh.to_numpy(), n, rng, length)])
    maps, ensemble = field(n_maps), field(n_null)
    methods = ["classic (random gene sets)", "GSEA prerank on PLS1 weights",
               "spatial: spins of the map", "spatial: random-field ensemble"]
    p = {m: [] for m in methods}
    t0 = time.perf_counter()
    for i in range(n_maps):
        bmap = pd.Series(maps[:, i], index=regions)
        spin = spatial_enrichment(expr, bmap, cells, nulls=spins, max_size=2000,
                                  n_perm_classic=n_perm, random_state=i)
        gp = spatial_enrichment(expr, bmap, cells, nulls=ensemble, max_size=2000,
                                n_perm_classic=10, random_state=i)
        gsea = gsea_prerank(gene_scores(expr, bmap), cells, n_perm=n_perm, max_size=2000,
                            random_state=i).table
        p[methods[0]].append(spin["p_classic"])
        p[methods[1]].append(gsea["p"])
        p[methods[2]].append(spin["p_spatial"])
        p[methods[3]].append(gp["p_spatial"])
        if (i + 1) % 50 == 0:
            print(f"  {i + 1}/{n_maps} maps, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    sets = sorted(cells.names())
    hits = {m: pd.DataFrame([s.reindex(sets) for s in v]).to_numpy() < 0.05 for m, v in p.items()}

    boot = rng.integers(0, n_maps, size=(2000, n_maps))
    lines = ["| method | false-positive rate, all 7 sets (95% CI) | maps with >= 1 set flagged "
             "(95% CI) |", "|---|---|---|"]
    for m in methods:
        h = hits[m]
        rate = h.mean()
        lo, hi = np.quantile(h[boot].mean(axis=(1, 2)), [0.025, 0.975])
        k = int(h.any(axis=1).sum())
        flo, fhi = _wilson(k, n_maps)
        lines.append(f"| {m} | {rate:.3f} ({lo:.3f}-{hi:.3f}) | {k / n_maps:.3f} "
                     f"({flo:.3f}-{fhi:.3f}) |")
    per_set = ["| set | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    for j, s in enumerate(sets):
        cells_txt = []
        for m in methods:
            k = int(hits[m][:, j].sum())
            lo, hi = _wilson(k, n_maps)
            cells_txt.append(f"{k / n_maps:.3f} ({lo:.2f}-{hi:.2f})")
        per_set.append(f"| {s} | " + " | ".join(cells_txt) + " |")
    elapsed = time.perf_counter() - t0

    real = real_data(expr, thick, cells, spins, regions, seed)

    text = _doc(n_maps, n_null, n_perm, length, seed, elapsed, lines, per_set, real)
    print(text)
    if write:
        out = REPO / "docs" / "enrichment_calibration.md"
        sys.path.insert(0, str(REPO / "src"))
        from graymatter.io.atomic import write_text

        write_text(out, text)
        print(f"written to {out}", file=sys.stderr)


def _dk_centroids(expr):
    from graymatter.transcriptomics.centroids import parcel_centroids

    cents = []
    for hemi in ("lh", "rh"):
        c = parcel_centroids(DATA / "surfaces" / f"fsa5_{hemi}_aparc.annot",
                             DATA / "surfaces" / f"fsa5_sphere_{hemi}.gii")
        c.index = f"{hemi[0].upper()}_" + c.index
        cents.append(c.loc[[r for r in c.index if r in expr.index]])
    return cents


def real_data(expr, thick, cells, spins, regions, seed) -> str:
    """ENIGMA-MDD thickness x AHBA: Seidlitz classes and GO BP, classic and spatial p side by side."""
    from graymatter.transcriptomics.genesets import read_gmt
    from graymatter.transcriptomics.gsea import gsea_prerank
    from graymatter.transcriptomics.spatial_enrichment import gene_scores, spatial_enrichment

    thick_map = thick.loc[regions]
    real = spatial_enrichment(expr, thick_map, cells, nulls=spins, max_size=2000,
                              n_perm_classic=10000, random_state=seed)
    real_gsea = gsea_prerank(gene_scores(expr, thick_map), cells, n_perm=10000, max_size=2000,
                             random_state=seed).table
    real = real[["size", "score", "p_classic", "q_classic", "p_spatial", "q_spatial"]].join(
        real_gsea[["nes", "p", "fdr_q"]].rename(columns=lambda c: f"gsea_{c}"))
    go = read_gmt(DATA / "genesets" / "GO_Biological_Process_2021.gmt")
    g = spatial_enrichment(expr, thick_map, go, nulls=spins, min_size=20, max_size=200,
                           n_perm_classic=10000, random_state=seed)
    g_gsea = gsea_prerank(gene_scores(expr, thick_map), go, n_perm=1000, min_size=20,
                          max_size=200, random_state=seed).table
    n = len(g)
    counts = pd.DataFrame({
        "p < 0.05": [(g["p_classic"] < 0.05).sum(), (g_gsea["p"] < 0.05).sum(),
                     (g["p_spatial"] < 0.05).sum()],
        "q < 0.05": [(g["q_classic"] < 0.05).sum(), (g_gsea["fdr_q"] < 0.05).sum(),
                     (g["q_spatial"] < 0.05).sum()]},
        index=pd.Index(["classic (random gene sets)", "GSEA prerank (1,000 permutations)",
                        "spatial (spins)"], name="GO BP terms called"))
    top = g.sort_values("p_classic").head(10)[["size", "score", "p_classic", "q_classic",
                                                "p_spatial", "q_spatial"]]
    top.index = [name[:60] for name in top.index]
    return (f"### Seidlitz cell classes\n\n{_markdown(real)}\n\n"
            f"### GO biological process ({n} terms with 20-200 measured genes)\n\n"
            f"{_markdown(counts)}\n\nThe 10 terms with the smallest classic p:\n\n"
            f"{_markdown(top)}\n")


def write_real_section(seed: int, n_null: int) -> None:
    """Recompute the real-data section of docs/enrichment_calibration.md in place."""
    sys.path.insert(0, str(REPO / "src"))
    from graymatter.io.atomic import write_text
    from graymatter.transcriptomics.genesets import read_gene_table
    from graymatter.transcriptomics.nulls import spin_permutations

    expr, thick = load_inputs()
    cells = read_gene_table(DATA / "genesets" / "celltypes_seidlitz2020_PSP.csv")
    lh, rh = _dk_centroids(expr)
    spins = spin_permutations(lh, rh, n_rotations=n_null, random_state=seed)
    section = real_data(expr, thick, cells, spins, list(lh.index) + list(rh.index), seed)
    out = REPO / "docs" / "enrichment_calibration.md"
    text = out.read_text()
    head = text[: text.index("## Real data")]
    text = head + _real_header(n_null, seed) + section
    print(text[len(head):])
    write_text(out, text)


def _real_header(n_null, seed) -> str:
    return f"""## Real data: ENIGMA-MDD cortical thickness x AHBA, both p-values

Cohen's d (MDD vs controls, ENIGMA, 68 DK regions) scored by PLS1 weight; the same {n_null:,}
spins as above (seed {seed}), 10,000 random gene sets, GSEA with 10,000 permutations for the cell
classes. Regenerate this section alone with `python benchmarks/bench_gsea.py --real`.

"""


def _doc(n_maps, n_null, n_perm, length, seed, elapsed, lines, per_set, real) -> str:
    return f"""# Gene-category enrichment of brain maps: calibration under spatial autocorrelation

Generated by `python benchmarks/bench_gsea.py --calibration --maps {n_maps} --null {n_null}
--perm {n_perm} --length {length:g} --seed {seed}` ({elapsed / 60:.1f} min on {_cpu()} CPUs).

## Question

Brain maps are smooth and genes of a cell class are co-expressed. Fulcher et al. (2021, Nat
Commun 12:2669) showed that enrichment tests whose null shuffles genes (random gene sets, or
GSEA's gene-label permutation) then call categories "significant" far more often than the
nominal rate for maps that have nothing to do with them. Their remedy is an ensemble null: score
the categories for many spatially autocorrelated null maps through the same pipeline.
`graymatter.transcriptomics.spatial_enrichment` reports both p-values for every set.

## Simulation

- {n_maps} random maps on the 68 cortical Desikan-Killiany parcels: Gaussian random fields
  with covariance `exp(-d / {length:g} mm)` between fsaverage5 sphere centroids, independent
  between hemispheres. No map is related to any gene set.
- Expression: AHBA, 68 cortical DK regions x 15,633 genes. Sets: the 7 Seidlitz et al. 2020 cell
  classes (140-1,131 genes in the background; `max_size=2000`).
- Gene score: PLS1 weight (unit-norm correlations with the map). Category score: mean weight.
- Tests at alpha = 0.05, two-sided for the category scores:
  - classic: {n_perm:,} random gene sets of the same size;
  - GSEA prerank on the PLS1 weights, {n_perm:,} gene permutations (nominal p);
  - spatial (spins): {n_null:,} Vasa spins of the map, re-scored;
  - spatial (random-field ensemble): {n_null:,} independent fields with the same covariance.

## False-positive rates

Pooled over the 7 sets (interval: bootstrap over maps, since the 7 sets of one map are
correlated) and family-wise (any of the 7 sets flagged; Wilson interval):

{chr(10).join(lines)}

Per set (Wilson 95% intervals over the {n_maps} maps):

{chr(10).join(per_set)}

Reading: the gene-permutation nulls (classic and GSEA) flag cell classes for most smooth random
maps; both spatial ensembles stay near the nominal 5% (family-wise near 1 - 0.95^7 = 30% at most,
less because the sets' scores are correlated). Report `p_spatial` / `q_spatial`; `p_classic` is
there so readers can see how much the usual analysis would overstate.

{_real_header(n_null, seed)}{real}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calibration", action="store_true")
    parser.add_argument("--maps", type=int, default=500)
    parser.add_argument("--null", type=int, default=1000)
    parser.add_argument("--perm", type=int, default=None)
    parser.add_argument("--length", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=2021)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--real", action="store_true",
                        help="only recompute the real-data section of the calibration doc")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.perm)
    elif args.real:
        write_real_section(args.seed, args.null)
    elif args.calibration:
        calibration(args.maps, args.null, args.perm or 1000, args.length, args.seed,
                    not args.no_write)
    else:
        benchmark(args.perm or 10000)


if __name__ == "__main__":
    main()
