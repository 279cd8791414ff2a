"""GSEA prerank: exact ES against a brute-force running sum and gseapy, NES / p / FDR against
their definitions recomputed from the null, calibration under the null, and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from graymatter.errors import InputError
from graymatter.transcriptomics.genesets import GeneSets, read_gene_table
from graymatter.transcriptomics.gsea import enrichment_score, gsea_prerank


def _running_sum(scores_sorted: np.ndarray, hits: np.ndarray, weight: float) -> np.ndarray:
    """Subramanian 2005 running sum over the whole list (the O(N) textbook version)."""
    w = np.ones_like(scores_sorted) if weight == 0 else np.abs(scores_sorted) ** weight
    step_hit = np.where(hits, w, 0.0) / np.where(hits, w, 0.0).sum()
    step_miss = np.where(hits, 0.0, 1.0) / (~hits).sum()
    return np.cumsum(step_hit - step_miss)


def _brute_es(ranking: pd.Series, genes, weight: float):
    ranked = ranking.sort_values(ascending=False, kind="stable")
    hits = ranked.index.isin(genes)
    res = _running_sum(ranked.to_numpy(), hits, weight)
    hi, lo = res.max(), res.min()
    es = hi if abs(hi) > abs(lo) else lo
    at = int(np.argmax(res)) if es == hi else int(np.argmin(res))
    pos = np.flatnonzero(hits)
    lead = pos[pos <= at] if es >= 0 else pos[pos >= at]
    return es, ranked.index[lead].tolist()


def _toy(rng, n=400):
    genes = [f"G{i}" for i in range(n)]
    return pd.Series(rng.standard_normal(n), index=genes), genes


@pytest.mark.parametrize("weight", [0.0, 1.0, 1.5])
def test_es_and_leading_edge_equal_brute_force_running_sum(rng, weight):
    ranking, genes = _toy(rng)
    ranked = ranking.sort_values(ascending=False).index
    cases = [list(rng.choice(genes, size=k, replace=False)) for k in (1, 5, 40, 200, 399)]
    cases += [list(ranked[:10]), list(ranked[-10:]), [ranked[0], ranked[-1]]]
    for members in cases:
        es, lead = enrichment_score(ranking, members, weight=weight)
        es_ref, lead_ref = _brute_es(ranking, members, weight)
        assert es == pytest.approx(es_ref, abs=1e-12)
        assert lead == lead_ref


@pytest.mark.parametrize("all_zero", [False, True])
def test_null_kernel_equals_brute_force_on_shuffled_labels(rng, all_zero):
    # the permutation kernel (one pass over the list, all sets at once) must give the textbook ES
    # of each set after the gene labels are shuffled; all-zero scores fall back to unit steps
    from graymatter.transcriptomics import gsea as engine

    n, n_sets = 300, 6
    scores = np.zeros(n) if all_zero else np.sort(rng.standard_normal(n))[::-1].copy()
    members = [rng.choice(n, size=int(k), replace=False) for k in rng.integers(2, 60, n_sets)]
    union = np.unique(np.concatenate(members))
    gene_of = np.concatenate([np.searchsorted(union, m) for m in members])
    set_of = np.repeat(np.arange(n_sets), [m.size for m in members])
    csr = set_of[np.argsort(gene_of, kind="stable")].astype(np.int64)
    ptr = np.concatenate([[0], np.cumsum(np.bincount(gene_of, minlength=union.size))])
    sizes = np.array([m.size for m in members], dtype=np.int64)
    uniforms = rng.random((40, union.size))
    positions = np.empty(uniforms.shape, dtype=np.int64)
    engine._fisher_yates_positions(uniforms, n, positions)
    assert all(np.unique(row).size == union.size for row in positions)
    out = np.empty((40, n_sets))
    engine._null_es(positions, ptr.astype(np.int64), csr, sizes, np.abs(scores), n, out)
    for b in range(40):
        where = dict(zip(union, positions[b]))
        for s, m in enumerate(members):
            hits = np.zeros(n, dtype=bool)
            hits[[where[g] for g in m]] = True
            res = _running_sum(scores, hits, 0.0 if all_zero else 1.0)
            es = res.max() if abs(res.max()) > abs(res.min()) else res.min()
            assert out[b, s] == pytest.approx(es, abs=1e-12)


def test_enrichment_score_examples():
    r = pd.Series([3.0, 2.0, 1.0, 0.5], index=["A", "B", "C", "D"])
    assert enrichment_score(r, ["A", "B"]) == (1.0, ["A", "B"])
    es, lead = enrichment_score(r, ["d"])  # bottom gene: ES = -1 (all misses first)
    assert es == pytest.approx(-1.0) and lead == ["D"]
    with pytest.raises(InputError, match="shares 0"):
        enrichment_score(r, ["Z"])


def _null_definitions(res):
    """NES, nominal p and GSEA FDR recomputed from the stored null with plain loops."""
    null = res.null_es
    out = {}
    nes_all, null_nes_all = {}, []
    for j, name in enumerate(res.null_sets):
        es = res.table.loc[name, "es"]
        col = null[:, j]
        pos, neg = col[col >= 0], col[col < 0]
        if es >= 0:
            nes = es / pos.mean()
            p = (1 + (pos >= es).sum()) / (1 + pos.size)
        else:
            nes = es / abs(neg.mean())
            p = (1 + (neg <= es).sum()) / (1 + neg.size)
        nes_all[name] = nes
        null_nes_all.append(np.where(col >= 0, col / pos.mean(), col / abs(neg.mean())))
        out[name] = [nes, p]
    flat = np.concatenate(null_nes_all)
    obs = np.array(list(nes_all.values()))
    for name, nes in nes_all.items():
        if nes >= 0:
            pi_null = (1 + (flat >= nes).sum()) / (1 + (flat >= 0).sum())
            pi_obs = (obs >= nes).sum() / (obs >= 0).sum()
        else:
            pi_null = (1 + (flat <= nes).sum()) / (1 + (flat < 0).sum())
            pi_obs = (obs <= nes).sum() / (obs < 0).sum()
        out[name].append(min(1.0, pi_null / pi_obs))
    return pd.DataFrame(out, index=["nes", "p", "fdr_q"]).T


def test_planted_set_nes_p_and_fdr_follow_definitions(rng):
    ranking, genes = _toy(rng, n=600)
    ranked = ranking.sort_values(ascending=False).index
    sets = {"top": list(ranked[:20]) + list(rng.choice(genes, 10, replace=False)),
            "bottom": list(ranked[-25:]),
            **{f"rand{i}": list(rng.choice(genes, 30, replace=False)) for i in range(12)}}
    res = gsea_prerank(ranking, GeneSets(sets, {}, "toy"), n_perm=500, min_size=5,
                       random_state=3)
    t = res.table
    assert res.null_es.shape == (500, 14)
    assert t.loc["top", "es"] > 0.5 and t.loc["bottom", "es"] < -0.8
    assert t.loc["top", "p"] < 0.01 and t.loc["bottom", "p"] < 0.01
    assert t.loc["top", "fdr_q"] < 0.05 and t.loc["bottom", "fdr_q"] < 0.05
    assert set(ranked[:20]) <= set(t.loc["top", "leading_edge"].split(";"))
    assert t.loc["bottom", "leading_edge_size"] == 25
    assert (t["p"] > 0).all()  # p = (1 + count) / (1 + n): never 0
    ref = _null_definitions(res)
    for col in ("nes", "p", "fdr_q"):
        np.testing.assert_allclose(t[col], ref.loc[t.index, col], rtol=1e-12, err_msg=col)
    assert t["fdr_q"].is_monotonic_increasing  # table sorted by q


def test_nominal_p_is_calibrated_under_the_null(rng):
    # random sets on a random ranking: nominal p ~ uniform, so ~5% below 0.05
    ranking, genes = _toy(rng, n=2000)
    sets = {f"s{i}": list(rng.choice(genes, 40, replace=False)) for i in range(300)}
    res = gsea_prerank(ranking, GeneSets(sets, {}, "toy"), n_perm=400, random_state=11)
    frac = (res.table["p"] < 0.05).mean()
    assert 0.02 <= frac <= 0.09  # binomial(300, 0.05): 99.9% interval ~[0.02, 0.095]
    assert abs(res.table["p"].mean() - 0.5) < 0.06
    assert (res.table["fdr_q"] > 0.25).mean() > 0.8  # nothing survives FDR under the null


def test_same_seed_same_numbers_whatever_batch_size(rng):
    ranking, genes = _toy(rng, n=500)
    sets = GeneSets({f"s{i}": list(rng.choice(genes, 25, replace=False)) for i in range(5)}, {},
                    "toy")
    a = gsea_prerank(ranking, sets, n_perm=300, random_state=7)
    b = gsea_prerank(ranking, sets, n_perm=300, random_state=7, batch_size=1)
    c = gsea_prerank(ranking, sets, n_perm=300, random_state=8)
    pd.testing.assert_frame_equal(a.table, b.table)
    np.testing.assert_array_equal(a.null_es, b.null_es)
    assert not np.array_equal(a.null_es, c.null_es)
    np.testing.assert_array_equal(a.table["es"], c.table.loc[a.table.index, "es"])
    assert a.n_perm == 300 and a.weight == 1.0 and a.random_state == 7


def test_bad_input_duplicated_genes_nan_and_options(rng):
    ranking, genes = _toy(rng, n=100)
    sets = GeneSets({"s": genes[:20]}, {}, "toy")
    dup = ranking.copy()
    dup.index = ["g5"] + genes[1:]  # 'g5' and 'G5' are the same gene
    with pytest.raises(InputError, match=r"more than once.*G5.*groupby"):
        gsea_prerank(dup, sets, n_perm=10)
    nan = ranking.copy()
    nan.iloc[[3, 7]] = np.nan
    with pytest.raises(InputError, match=r"2 missing or infinite score\(s\), for G3, G7"):
        gsea_prerank(nan, sets, n_perm=10)
    inf = ranking.copy()
    inf.iloc[0] = np.inf
    with pytest.raises(InputError, match="G0"):
        gsea_prerank(inf, sets, n_perm=10)
    with pytest.raises(InputError, match="pandas Series"):
        gsea_prerank(ranking.to_numpy(), sets, n_perm=10)
    with pytest.raises(InputError, match="weight must be"):
        gsea_prerank(ranking, sets, weight=-1, n_perm=10)
    with pytest.raises(InputError, match="n_perm must be a positive integer"):
        gsea_prerank(ranking, sets, n_perm=0)
    with pytest.raises(InputError, match="no gene set of toy has between min_size=30"):
        gsea_prerank(ranking, sets, n_perm=10, min_size=30)
    with pytest.raises(InputError, match="GeneSets"):
        gsea_prerank(ranking, {"s": genes[:20]}, n_perm=10)


def test_set_emptied_by_background_is_reported_and_skipped(rng):
    ranking, genes = _toy(rng, n=200)
    sets = GeneSets({"s": genes[:20], "unmeasured": ["NOPE1", "NOPE2"]}, {}, "toy")
    res = gsea_prerank(ranking, sets, n_perm=50, min_size=5, random_state=0)
    assert list(res.table.index) == ["s"]
    assert res.restriction.loc["unmeasured", "reason"] == "no genes in background"
    assert not res.restriction.loc["unmeasured", "kept"]


def _enigma_ranking(shared_data) -> pd.Series:
    """Correlation of each AHBA gene's DK expression with the ENIGMA-MDD thickness map."""
    expr = pd.read_csv(shared_data / "ahba" / "ahba_dk83_15633genes.csv")
    expr = expr.drop(columns="label").set_index("Region")
    bmap = pd.read_csv(shared_data / "enigma" / "mddadult_case-controls_CortThick.csv")
    bmap = bmap.set_index("Structure")["d_icv"]
    X = expr.loc[bmap.index].to_numpy()
    Xc, yc = X - X.mean(axis=0), bmap.to_numpy() - bmap.mean()
    r = Xc.T @ yc / np.sqrt((Xc**2).sum(axis=0) * (yc**2).sum())
    return pd.Series(r, index=expr.columns.str.upper())


def _assert_agrees_with_gseapy(res, ref):
    """Our GSEA table against gseapy's res2d (indexed by Term), within Monte-Carlo error."""
    ours = res.table
    assert sorted(ours.index) == sorted(ref.index)
    ref = ref.loc[ours.index]
    # ES is deterministic: exact; so is the leading edge (gseapy's "Tag %" = lead/size)
    np.testing.assert_allclose(ours["es"], ref["ES"].astype(float), atol=1e-6)
    tags = ours["leading_edge_size"].astype(str) + "/" + ours["size"].astype(str)
    assert tags.tolist() == ref["Tag %"].tolist()
    # NES: both divide by a Monte-Carlo mean of ~n_perm/2 null ES (relative SE ~2%)
    assert np.abs(ours["nes"] - ref["NES"].astype(float)).max() <= 0.05
    # nominal p: two independent estimates, each over n_same same-sign null ES: allow 4 SD of
    # their difference plus the (1 + count) / (1 + n) vs count / n convention (<= 1 / n_same)
    null = res.null_es[:, [res.null_sets.index(s) for s in ours.index]]
    n_same = np.where(ours["es"] >= 0, (null >= 0).sum(axis=0), (null < 0).sum(axis=0))
    p_ref = ref["NOM p-val"].astype(float).to_numpy()
    p_bar = np.maximum((ours["p"].to_numpy() + p_ref) / 2, 1 / n_same)
    bound = 4 * np.sqrt(2 * p_bar * (1 - p_bar) / n_same) + 1 / n_same
    assert (np.abs(ours["p"].to_numpy() - p_ref) <= bound).all()
    # FDR q by the same definition (loose: pooled null, Monte-Carlo error)
    q_ref = ref["FDR q-val"].astype(float)
    assert (np.abs(ours["fdr_q"] - q_ref) <= 0.01 + 0.3 * q_ref).all()


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning",
                            "ignore:The inplace keyword")
def test_agrees_with_gseapy_prerank_on_real_ranking(shared_data):
    gseapy = pytest.importorskip("gseapy")
    ranking = _enigma_ranking(shared_data)
    cells = read_gene_table(shared_data / "genesets" / "celltypes_seidlitz2020_PSP.csv")
    n_perm = 2000  # 10,000 in the benchmark; bounds below scale with 1/sqrt(n_perm)
    ref = gseapy.prerank(rnk=ranking.sort_values(ascending=False), gene_sets=cells.sets,
                         permutation_num=n_perm, seed=1, threads=2, min_size=15, max_size=2000,
                         outdir=None, no_plot=True, verbose=False).res2d
    ref = ref.set_index("Term")
    res = gsea_prerank(ranking, cells, n_perm=n_perm, max_size=2000, random_state=1)
    ours = res.table
    _assert_agrees_with_gseapy(res, ref)
    # astrocyte genes carry the strongest (negative) association with this map
    assert ours.index[0] == "Astro" and ours.loc["Astro", "nes"] < -2


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning",
                            "ignore:The inplace keyword")
def test_rnk_file_read_as_gseapy_reads_it(shared_data, tmp_path):
    """The same .rnk file given to gseapy prerank and to read_ranking + gsea_prerank."""
    gseapy = pytest.importorskip("gseapy")
    from graymatter.transcriptomics.ranking import read_ranking

    ranking = _enigma_ranking(shared_data)
    path = tmp_path / "mdd_thickness.rnk"
    path.write_text("# r of AHBA DK expression with ENIGMA-MDD thickness d\n" + "".join(
        f"{g}\t{v!r}\n" for g, v in ranking.sample(frac=1.0, random_state=2).items()))
    ours = read_ranking(path)
    pd.testing.assert_series_equal(ours.loc[ranking.index], ranking, check_names=False)
    cells = read_gene_table(shared_data / "genesets" / "celltypes_seidlitz2020_PSP.csv")
    ref = gseapy.prerank(rnk=str(path), gene_sets=cells.sets, permutation_num=2000, seed=1,
                         threads=2, min_size=15, max_size=2000, outdir=None, no_plot=True,
                         verbose=False).res2d.set_index("Term")
    res = gsea_prerank(ours, cells, n_perm=2000, max_size=2000, random_state=1)
    assert sorted(res.table.index) == sorted(ref.index)
    _assert_agrees_with_gseapy(res, ref.loc[res.table.index])
