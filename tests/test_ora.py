"""ORA against scipy's hypergeometric and Fisher tests; redundancy reduction of terms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import fisher_exact, hypergeom
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.multitest import multipletests

from graymatter.errors import InputError
from graymatter.transcriptomics.genesets import GeneSets, read_gmt
from graymatter.transcriptomics.ora import ora, reduce_redundancy, set_similarity


def _universe(n=3000):
    return [f"G{i}" for i in range(n)]


def test_p_equals_hypergeom_and_fisher_exact(rng):
    background = _universe()
    listed = list(rng.choice(background[:1000], 150, replace=False)) + ["NOT_MEASURED"]
    sets = {f"s{i}": list(rng.choice(background[: 600 + 300 * (i % 5)], 20 + 10 * i,
                                     replace=False)) for i in range(15)}
    sets["strong"] = listed[:40] + background[2900:2910]
    table = ora(listed, GeneSets(sets, {}, "toy"), background=background)
    M, N = len(background), 150
    assert table.attrs["n_list"] == N and table.attrs["n_background"] == M
    for row in table.itertuples():
        members = set(sets[row.set])
        k = len(members & set(listed))
        n = len(members)
        assert (row.size, row.overlap) == (n, k)
        assert row.expected == pytest.approx(N * n / M, rel=1e-15)
        assert row.fold_enrichment == pytest.approx(k / (N * n / M), rel=1e-15)
        p_hyper = hypergeom.sf(k - 1, M, n, N)
        p_fisher = fisher_exact([[k, N - k], [n - k, M - n - N + k]], alternative="greater")[1]
        assert row.p == pytest.approx(p_hyper, rel=1e-12, abs=1e-300)
        assert row.p == pytest.approx(p_fisher, rel=1e-12, abs=1e-300)
        assert row.genes.split(";") == (sorted(members & set(listed)) if k else [""])
    np.testing.assert_allclose(table["q"], multipletests(table["p"], method="fdr_bh")[1],
                               rtol=1e-12)
    assert table.iloc[0]["set"] == "strong" and table.iloc[0]["p"] < 1e-30
    assert table["p"].is_monotonic_increasing


def test_background_and_size_filters_and_errors():
    background = _universe(100)
    sets = GeneSets({"a": background[:10] + ["X1", "X2"], "tiny": background[:2],
                     "gone": ["X1", "X2", "X3"]}, {"a": "desc a"}, "toy")
    table = ora(["g1", "G2", "x1"], sets, background=background, min_size=5)
    assert table["set"].tolist() == ["a"]
    assert table.loc[0, "size"] == 10 and table.loc[0, "overlap"] == 2  # X1 not measured
    assert table.loc[0, "description"] == "desc a"
    report = table.attrs["restriction"]
    assert report.loc["gone", "reason"] == "no genes in background"
    assert report.loc["tiny", "reason"] == "smaller than min_size=5"
    with pytest.raises(InputError, match="none of the 2 listed genes is in the background"):
        ora(["X1", "X2"], sets, background=background)
    with pytest.raises(InputError, match="not one string"):
        ora("G1", sets, background=background)
    with pytest.raises(InputError, match="GeneSets"):
        ora(["G1"], {"a": ["G1"]}, background=background)


def test_kappa_and_jaccard_similarity_by_hand():
    universe = _universe(20)
    sets = GeneSets({"a": universe[:6], "b": universe[3:10], "c": universe[12:15]}, {}, "toy")
    names = ["a", "b", "c"]
    kappa = set_similarity(sets, names, similarity="kappa", background=universe)
    member = {n: np.isin(universe, sets[n]).astype(int) for n in names}
    for i, x in enumerate(names):
        for j, y in enumerate(names):
            assert kappa[i, j] == pytest.approx(cohen_kappa_score(member[x], member[y]), abs=1e-12)
    jac = set_similarity(sets, names, similarity="jaccard")
    assert jac[0, 1] == pytest.approx(3 / 10) and jac[0, 2] == 0 and jac[1, 1] == 1
    with pytest.raises(InputError, match="similarity must be"):
        set_similarity(sets, names, similarity="cosine")


def test_reduce_redundancy_groups_identical_sets(rng):
    background = _universe(2000)
    listed = list(background[:200])
    core = background[:60]
    sets = GeneSets({
        "copy1": core + background[1500:1520],
        "copy2": core + background[1500:1520],            # identical to copy1
        "near": core[5:] + background[1500:1515],          # mostly the same genes
        "other": background[100:150] + background[1800:1810],  # different genes, also enriched
        "null": list(rng.choice(background[300:], 40, replace=False)),
    }, {}, "toy")
    table = ora(listed, sets, background=background)
    out = reduce_redundancy(table, sets, background=background)
    by = out.set_index("set")
    assert by.loc["copy1", "cluster"] == by.loc["copy2", "cluster"] == by.loc["near", "cluster"]
    assert by.loc["other", "cluster"] != by.loc["copy1", "cluster"]
    assert by.loc["null", "cluster"] == -1 and not by.loc["null", "representative"]
    assert by["representative"].sum() == 2
    best = out[out["cluster"] == by.loc["copy1", "cluster"]].sort_values("p").iloc[0]
    assert best["representative"] and best["p"] == min(by.loc["copy1", "p"], by.loc["near", "p"])
    assert set(out["cluster"]) == {-1, 1, 2} and out.loc[0, "cluster"] == 1
    jac = reduce_redundancy(table, sets, similarity="jaccard", threshold=0.5)
    assert jac.set_index("set").loc["copy1", "cluster"] == jac.set_index("set").loc["copy2",
                                                                                   "cluster"]
    with pytest.raises(InputError, match="lacks column"):
        reduce_redundancy(table.drop(columns="q"), sets)
    with pytest.raises(InputError, match="not in gene_sets"):
        reduce_redundancy(table, GeneSets({"x": ["G1"]}, {}, ""))


def test_real_go_ora_of_top_correlated_genes(shared_data):
    expr = pd.read_csv(shared_data / "ahba" / "ahba_dk83_15633genes.csv", nrows=1)
    background = list(expr.columns[2:])
    go = read_gmt(shared_data / "genesets" / "GO_Biological_Process_2021.gmt")
    cells = read_gmt(shared_data / "genesets" / "geneset_Pooled.gmt")
    listed = cells.sets[cells.names()[0]][:300]
    table = ora(listed, go, background=background, min_size=10, max_size=500)
    report = table.attrs["restriction"]
    assert len(table) == int(report["kept"].sum()) and len(table) > 1000
    assert (report.loc[~report["kept"], "reason"] != "").all()
    assert (table["size"].between(10, 500)).all() and (table["p"] > 0).all()
    out = reduce_redundancy(table, go, q_threshold=0.05)
    assert out["representative"].sum() == out.loc[out["cluster"] > 0, "cluster"].nunique()
