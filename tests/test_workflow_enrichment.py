"""Enrichment workflow end to end on real data: ENIGMA-MDD thickness d x AHBA DK x Seidlitz cells.

The cache is filled from the shared data folder with ``fetch(..., from_dir=)``; nothing downloads.
Every number in the outputs is checked against the underlying functions called directly.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from graymatter.cli import main
from graymatter.datasets import fetchers
from graymatter.datasets.fetchers import fetch
from graymatter.errors import GraymatterWarning, InputError
from graymatter.report.enrichment_figures import bubble_frame, plot_enrichment_bubbles
from graymatter.transcriptomics.expression import match_regions, read_expression
from graymatter.transcriptomics.gene_pls import gene_pls
from graymatter.transcriptomics.genesets import GeneSets, read_gene_table
from graymatter.transcriptomics.gsea import gsea_prerank
from graymatter.transcriptomics.nulls import spin_permutations
from graymatter.transcriptomics.ora import ora, reduce_redundancy
from graymatter.transcriptomics.spatial_enrichment import gene_scores, spatial_enrichment
from graymatter.workflows.enrichment import load_gene_sets, read_gene_lists, run_enrichment
from graymatter.workflows.transcriptomics import read_brain_map

pytestmark = pytest.mark.filterwarnings("ignore:.*dropped 4 gene columns")


@pytest.fixture(autouse=True)
def offline_cache(tmp_path_factory, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("a test tried to download")

    monkeypatch.setattr(fetchers.urllib.request, "urlopen", no_network)
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("GRAYMATTER_DATA", str(cache))
    return cache


@pytest.fixture
def enigma(shared_data):
    fetch("ahba-dk83", from_dir=shared_data, progress=False)
    fetch("celltypes-seidlitz2020", from_dir=shared_data, progress=False)
    s = shared_data / "surfaces"
    return {"map": shared_data / "enigma" / "mddadult_case-controls_CortThick.csv",
            "annot_lh": s / "fsa5_lh_aparc.annot", "sphere_lh": s / "fsa5_sphere_lh.gii",
            "annot_rh": s / "fsa5_rh_aparc.annot", "sphere_rh": s / "fsa5_sphere_rh.gii"}


def _lists(ranking):
    """Two gene lists from the ranking's extremes (a stand-in for PLS1+ / PLS1-)."""
    order = ranking.sort_values()
    return {"PLS1+": list(order.index[-400:][::-1]), "PLS1-": list(order.index[:400])}


def test_real_data_run_equals_the_underlying_functions(enigma, tmp_path):
    """Must-show: ENIGMA-MDD CT d x AHBA DK x Seidlitz classes, classic and spatial p."""
    surf = {k: enigma[k] for k in ("annot_lh", "sphere_lh", "annot_rh", "sphere_rh")}
    # gene lists: the PLS1 extremes of the same map (stand-ins for the PLS1+/PLS1- lists)
    y0, X0, _ = match_regions(read_brain_map(enigma["map"], value_column="d_icv"),
                              read_expression(fetchers.get_path("ahba-dk83"),
                                              duplicate_genes="drop"))
    lists = _lists(gene_scores(X0, y0))
    kw = dict(map_column="d_icv", gene_lists=lists, n_perm=500, n_spins=100, max_size=2000,
              random_state=3, **surf)
    out = run_enrichment(enigma["map"], "ahba-dk83", "celltypes-seidlitz2020",
                         out_dir=tmp_path / "a", **kw)

    # --- files
    d = tmp_path / "a"
    for name in ("gsea.tsv", "ora_PLS1pos.tsv", "ora_PLS1-.tsv", "spatial_enrichment.tsv",
                 "gene_ranking.tsv", "gene_set_restriction.tsv", "enrichment_bubbles.png",
                 "enrichment_bubbles.svg", "enrichment.json"):
        assert (d / name).is_file() and (d / name).stat().st_size > 0, name
    assert (d / "enrichment_bubbles.png").read_bytes()[:4] == b"\x89PNG"
    assert b"<svg" in (d / "enrichment_bubbles.svg").read_bytes()[:500]

    # --- the same numbers from the underlying functions, with the documented seeds
    spin_seed, gsea_seed, classic_seed = np.random.SeedSequence(3).spawn(3)
    y, X = y0.loc[out.regions], X0.loc[out.regions]
    assert len(out.regions) == 68
    ranking = gene_scores(X, y)
    pd.testing.assert_series_equal(out.ranking, ranking)
    # PLS1 weights from gene_pls (sklearn-equivalent PLS) give the same ranking
    pls = gene_pls(X, y, n_components=1, n_boot=0)
    w = pls.weights["PLS1"]
    np.testing.assert_allclose(ranking.to_numpy(),
                               w.rename(index=str.upper).reindex(ranking.index).to_numpy(),
                               atol=1e-10)
    cells = read_gene_table(fetchers.get_path("celltypes-seidlitz2020"))
    gsea = gsea_prerank(ranking, cells, n_perm=500, min_size=5, max_size=2000,
                        random_state=np.random.default_rng(gsea_seed))
    pd.testing.assert_frame_equal(out.gsea.table, gsea.table)
    written = pd.read_csv(d / "gsea.tsv", sep="\t", index_col=0)
    np.testing.assert_allclose(written["nes"], gsea.table["nes"], rtol=1e-8)
    assert list(written.index) == list(gsea.table.index)

    for name, slug in (("PLS1+", "PLS1pos"), ("PLS1-", "PLS1-")):
        direct = reduce_redundancy(ora(lists[name], cells, background=list(ranking.index),
                                       min_size=5, max_size=2000), cells,
                                   background=list(ranking.index))
        pd.testing.assert_frame_equal(out.ora[name], direct)
        disk = pd.read_csv(d / f"ora_{slug}.tsv", sep="\t")
        np.testing.assert_allclose(disk["p"], direct["p"], rtol=1e-8)
        assert list(disk["set"]) == list(direct["set"])

    nulls = spin_permutations(*_cents(surf, y.index), n_rotations=100, method="alexander-bloch",
                              random_state=np.random.default_rng(spin_seed))
    np.testing.assert_array_equal(out.nulls, nulls)
    spatial = spatial_enrichment(X, y, cells, nulls=nulls, n_perm_classic=500, max_size=2000,
                                 random_state=np.random.default_rng(classic_seed))
    pd.testing.assert_frame_equal(out.spatial, spatial)
    on_disk = pd.read_csv(d / "spatial_enrichment.tsv", sep="\t", index_col=0)
    np.testing.assert_allclose(on_disk[["p_classic", "p_spatial"]], spatial[["p_classic",
                                                                             "p_spatial"]], rtol=1e-8)
    # both p-values are permutation p-values: (1 + count) / (1 + n), never 0
    for col, n in (("p_spatial", 100), ("p_classic", 500)):
        scaled = spatial[col].to_numpy() * (1 + n)
        assert np.all(np.isclose(scaled, np.round(scaled)) | (spatial[col].to_numpy() == 1)), col
        assert (spatial[col] >= 1 / (1 + n)).all()
    assert len(spatial) == 7

    summary = json.loads((d / "enrichment.json").read_text())
    assert summary["inputs"]["expression"]["sha256"] == fetchers.REGISTRY["ahba-dk83"].sha256
    assert summary["inputs"]["gene_sets"]["sha256"] == \
        fetchers.REGISTRY["celltypes-seidlitz2020"].sha256
    assert len(summary["inputs"]["brain_map"]["sha256"]) == 64
    assert summary["parameters"]["n_perm"] == 500 and summary["parameters"]["random_state"] == 3
    assert summary["n_sets_tested"]["spatial"] == 7
    assert "numpy" in summary["software"]
    print("\nENIGMA-MDD CT d x AHBA DK x Seidlitz (68 regions, 100 spins):\n"
          + spatial[["score", "p_classic", "p_spatial"]].to_string())

    again = run_enrichment(enigma["map"], "ahba-dk83", "celltypes-seidlitz2020",
                           out_dir=tmp_path / "b", **kw)
    pd.testing.assert_frame_equal(again.spatial, out.spatial)
    pd.testing.assert_frame_equal(again.gsea.table, out.gsea.table)


def _cents(surf, regions):
    from graymatter.transcriptomics.centroids import parcel_centroids
    from graymatter.transcriptomics.expression import normalise_region_name

    out = []
    for hemi in ("lh", "rh"):
        t = parcel_centroids(surf[f"annot_{hemi}"], surf[f"sphere_{hemi}"])
        t.index = [f"{hemi}_{normalise_region_name(n)}".replace(f"{hemi}_{hemi}_", f"{hemi}_")
                   for n in t.index]
        t = t.loc[[r for r in regions if r.startswith(hemi)]]
        out.append(t[["x", "y", "z"]].to_numpy())
    return out


def test_cli_enrich_from_transcriptomics_folder(enigma, tmp_path, capsys):
    tx = tmp_path / "tx"
    assert main(["--quiet", "transcriptomics", "--map", str(enigma["map"]), "--map-column",
                 "d_icv", "--expression", "ahba-dk83", "--n-spins", "0", "--n-boot", "100",
                 "--n-components", "1", "--out", str(tx)]) == 0
    capsys.readouterr()
    args = ["--quiet", "enrich", "--map", str(enigma["map"]), "--map-column", "d_icv",
            "--expression", "ahba-dk83", "--gene-sets", "celltypes-seidlitz2020",
            "--max-size", "2000", "--annot-lh", str(enigma["annot_lh"]), "--sphere-lh",
            str(enigma["sphere_lh"]), "--hemisphere", "lh", "--n-perm", "200", "--n-spins", "50",
            "--seed", "5", "--out", str(tmp_path / "enr")]
    assert main(args + ["--gene-list", str(tx)]) == 0
    printed = capsys.readouterr().out
    assert "34 regions" in printed
    assert "p_classic" in printed and "p_spatial" in printed and "nes" in printed
    summary = json.loads((tmp_path / "enr" / "enrichment.json").read_text())
    assert summary["match_report"]["hemisphere"] == "lh"
    assert set(summary["inputs"]["gene_lists"]) == {"pls1_positive", "pls1_negative"}
    ran = {k for k, v in summary["n_sets_tested"].items() if v}
    skipped = set(summary["ora_skipped"])
    assert {n for n in ("pls1_positive", "pls1_negative")} == \
        {k[4:] for k in ran if k.startswith("ora_")} | skipped
    table = pd.read_csv(tmp_path / "enr" / "spatial_enrichment.tsv", sep="\t", index_col=0)
    top = table.index[0]
    assert top in printed
    # a bad --gene-list is a user error with exit status 2
    assert main(args + ["--gene-list", "nofile"]) == 2
    assert "NAME=FILE" in capsys.readouterr().err


def test_gene_sets_and_lists_loading(tmp_path, shared_data):
    gmt = tmp_path / "s.gmt"
    gmt.write_text("A\tdesc\tgfap\tAQP4\nB\t\tSNAP25\n")
    sets, info = load_gene_sets(gmt)
    assert sets["A"] == ["GFAP", "AQP4"] and info["sha256"] and info["source"] == "file"
    csv = load_gene_sets(shared_data / "genesets" / "celltypes_seidlitz2020_PSP.csv")[0]
    assert sorted(csv.names()) == ["Astro", "Endo", "Micro", "Neuro-Ex", "Neuro-In", "OPC", "Oligo"]
    with pytest.raises(InputError, match="Did you mean 'go-bp-2021'"):
        load_gene_sets("go-bp-2012")
    with pytest.raises(InputError, match="does not exist"):
        load_gene_sets(tmp_path / "missing.gmt")
    (tmp_path / "up.txt").write_text("GFAP\n# comment\n\nAQP4  # astro\n")
    lists, rec = read_gene_lists({"up": tmp_path / "up.txt", "down": ["SNAP25"]})
    assert lists == {"up": ["GFAP", "AQP4"], "down": ["SNAP25"]} and set(rec) == {"up"}
    with pytest.raises(InputError, match="not a run_transcriptomics output folder"):
        read_gene_lists(tmp_path)
    with pytest.raises(InputError, match="gene list 'x': file"):
        read_gene_lists({"x": tmp_path / "nope.txt"})


def test_workflow_errors_and_skips(tmp_path, rng):
    regions = [f"lh_r{i}" for i in range(30)]
    genes = [f"G{i}" for i in range(300)]
    expr = pd.DataFrame(rng.standard_normal((30, 300)), index=regions, columns=genes)
    bmap = pd.Series(expr.iloc[:, :20].mean(axis=1).to_numpy(), index=regions)
    sets = GeneSets({f"S{k}": genes[20 * k:20 * k + 20] for k in range(6)}, {}, "toy")
    with pytest.warns(GraymatterWarning, match="spatial enrichment skipped"):
        with pytest.warns(GraymatterWarning, match="gene list 'other' skipped"):
            out = run_enrichment(bmap, expr, sets, out_dir=tmp_path / "o", n_perm=200,
                                 gene_lists={"top": genes[:20], "other": ["NOTAGENE"]})
    assert out.spatial is None and set(out.ora) == {"top"}
    assert out.ora["top"].iloc[0]["set"] == "S0" and out.ora["top"].iloc[0]["p"] < 1e-10
    assert out.gsea.table.index[0] == "S0" and out.gsea.table["nes"].iloc[0] > 0
    assert not (tmp_path / "o" / "spatial_enrichment.tsv").exists()
    with pytest.raises(InputError, match="spin_method"):
        run_enrichment(bmap, expr, sets, out_dir=tmp_path, spin_method="random")
    with pytest.raises(InputError, match="n_perm must be an integer >= 1"):
        run_enrichment(bmap, expr, sets, out_dir=tmp_path, n_perm=0)
    with pytest.raises(InputError, match="no gene set"), pytest.warns(GraymatterWarning):
        run_enrichment(bmap, expr, sets, out_dir=tmp_path, min_size=50, n_perm=10)


def test_bubble_plot_layout():
    gsea = pd.DataFrame({"nes": [2.0, -1.5, 0.3], "leading_edge_size": [5, 10, 1],
                         "size": [10, 40, 20], "fdr_q": [0.01, 0.001, 0.9]},
                        index=pd.Index(["a", "b", "c"], name="set"))
    frame = bubble_frame(gsea, kind="gsea", top=2)
    assert frame["set"].tolist() == ["b", "a"]  # smallest q first
    np.testing.assert_allclose(frame["fraction"], [0.25, 0.5])
    fig = plot_enrichment_bubbles({"GSEA": frame, "ORA empty": frame.iloc[:0]})
    ax = fig.axes[0]
    ticks = dict(zip(ax.get_yticks(), [t.get_text() for t in ax.get_yticklabels()]))
    offsets = ax.collections[0].get_offsets()
    np.testing.assert_allclose(offsets[:, 0], [-1.5, 2.0])
    assert [ticks[v] for v in offsets[:, 1]] == ["b", "a"]  # each bubble on its set's row
    assert offsets[0, 1] > offsets[1, 1]  # most significant on top
    with pytest.raises(InputError, match="lacks column"):
        bubble_frame(gsea.drop(columns="nes"), kind="gsea")
    with pytest.raises(InputError, match="kind must be"):
        bubble_frame(gsea, kind="bar")
