"""``enrich`` on a pre-ranked gene list (.rnk or gene,score table), as gseapy users have.

The GSEA of a pre-ranked list must equal graymatter's GSEA of the same ranking computed from a
map (same seed stream); the agreement with gseapy on a .rnk file is in test_gsea.py.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from graymatter.cli import main
from graymatter.datasets import fetchers
from graymatter.datasets.fetchers import fetch
from graymatter.errors import InputError
from graymatter.transcriptomics.ranking import read_ranking
from graymatter.workflows.enrichment import run_enrichment

pytestmark = pytest.mark.filterwarnings("ignore:.*dropped 4 gene columns",
                                        "ignore:spatial enrichment skipped")


@pytest.fixture(autouse=True)
def offline_cache(tmp_path_factory, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("a test tried to download")

    monkeypatch.setattr(fetchers.urllib.request, "urlopen", no_network)
    monkeypatch.setenv("GRAYMATTER_DATA", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def map_run(shared_data, tmp_path):
    """enrich on the ENIGMA-MDD thickness map x AHBA DK x Seidlitz cells (no spins)."""
    fetch("ahba-dk83", from_dir=shared_data, progress=False)
    fetch("celltypes-seidlitz2020", from_dir=shared_data, progress=False)
    bmap = shared_data / "enigma" / "mddadult_case-controls_CortThick.csv"
    out = tmp_path / "map"
    args = ["--quiet", "enrich", "--gene-sets", "celltypes-seidlitz2020", "--max-size", "2000",
            "--n-perm", "300", "--n-spins", "0", "--seed", "7"]
    assert main([*args, "--map", str(bmap), "--map-column", "d_icv", "--expression",
                 "ahba-dk83", "--out", str(out)]) == 0
    ranking = pd.read_csv(out / "gene_ranking.tsv", sep="\t", index_col="gene")
    return args, out, ranking


def _write_rnk(ranking: pd.Series, path):
    """A .rnk file as GSEA writes it: '#' header comment, gene<TAB>score, full precision."""
    lines = ["# ranked by PLS1 weight"] + [f"{g}\t{v!r}" for g, v in ranking.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_ranked_list_gives_the_map_runs_gsea(map_run, tmp_path, capsys):
    args, out, _ = map_run
    summary = json.loads((out / "enrichment.json").read_text())
    # The map run's ranking, at full precision, from the API (same inputs, same seed).
    from graymatter.transcriptomics.expression import match_regions, read_expression
    from graymatter.transcriptomics.spatial_enrichment import gene_scores
    from graymatter.workflows.transcriptomics import read_brain_map

    y, X, _ = match_regions(read_brain_map(summary["inputs"]["brain_map"]["path"],
                                           value_column="d_icv"),
                            read_expression(fetchers.get_path("ahba-dk83"),
                                            duplicate_genes="drop"))
    ranking = gene_scores(X, y, score="pls1_weight")
    rnk = _write_rnk(ranking.sample(frac=1.0, random_state=1), tmp_path / "pls1.rnk")
    capsys.readouterr()
    assert main([*args, "--ranking", str(rnk), "--out", str(tmp_path / "rnk")]) == 0
    printed = capsys.readouterr().out
    assert f"{len(ranking)} genes ranked by" in printed and "nes" in printed
    # Byte-identical GSEA table and ranking file: one GSEA path, one seed stream.
    for name in ("gsea.tsv", "gene_set_restriction.tsv"):
        assert (tmp_path / "rnk" / name).read_bytes() == (out / name).read_bytes(), name
    ranked = json.loads((tmp_path / "rnk" / "enrichment.json").read_text())
    assert ranked["parameters"]["ranking"] == "given"
    assert len(ranked["inputs"]["ranking"]["sha256"]) == 64
    assert ranked["n_sets_tested"]["spatial"] is None and not (tmp_path / "rnk" /
                                                               "spatial_enrichment.tsv").exists()


def test_gene_ranking_table_of_a_run_feeds_back(map_run, tmp_path):
    """gene_ranking.tsv (gene, pls1_weight; 10 significant digits) as a gene,score table."""
    _, out, written = map_run
    again = run_enrichment(None, None, "celltypes-seidlitz2020", ranking=out / "gene_ranking.tsv",
                           out_dir=tmp_path / "tsv", n_perm=300, max_size=2000, random_state=7)
    first = pd.read_csv(out / "gsea.tsv", sep="\t", index_col=0)
    table = again.gsea.table
    assert list(table.index) == list(first.index)
    np.testing.assert_allclose(table["es"], first["es"], rtol=1e-7)
    np.testing.assert_allclose(table["nes"], first["nes"], rtol=1e-7)
    np.testing.assert_allclose(table["p"], first["p"], rtol=1e-9)  # same null counts
    assert len(again.ranking) == len(written)


def test_ranked_list_with_ora_and_series(tmp_path, rng):
    genes = [f"G{i}" for i in range(300)]
    ranking = pd.Series(rng.normal(size=300), index=genes)
    sets = {"top": list(ranking.sort_values().index[-40:]), "mixed": genes[:40]}
    lists = {"up": list(ranking.sort_values().index[-30:])}
    a = run_enrichment(None, None, sets, ranking=ranking, gene_lists=lists, out_dir=tmp_path / "a",
                       n_perm=200, random_state=0)
    table = tmp_path / "r.csv"
    ranking.rename_axis("Gene_Symbol").rename("t").reset_index().assign(
        other=1.0).to_csv(table, index=False, float_format="%.17g")
    b = run_enrichment(None, None, sets, ranking=table, ranking_column="t", gene_lists=lists,
                       out_dir=tmp_path / "b", n_perm=200, random_state=0)
    pd.testing.assert_frame_equal(a.gsea.table, b.gsea.table)
    pd.testing.assert_frame_equal(a.ora["up"], b.ora["up"])
    assert a.ora["up"].set_index("set").loc["top", "overlap"] == 30
    assert a.gsea.table.loc["top", "nes"] > 0 and a.gsea.table.index[0] == "top"


def test_reader_formats(tmp_path):
    rnk = tmp_path / "a.rnk"
    rnk.write_text("# GSEA ranked list\ngene\tscore\ngfap\t1.5\nSNAP25\t-2\n\nAQP4\t0.25\n")
    r = read_ranking(rnk)
    assert list(r.index) == ["GFAP", "SNAP25", "AQP4"] and list(r) == [1.5, -2.0, 0.25]
    tsv = tmp_path / "a.tsv"
    tsv.write_text("symbol\tbaseMean\tscore\ngfap\t10\t1.5\nSNAP25\t3\t-2\nAQP4\t4\t0.25\n")
    pd.testing.assert_series_equal(read_ranking(tsv), r, check_names=False)
    csv = tmp_path / "a.csv"
    csv.write_text("id,stat\ngfap,1.5\nSNAP25,-2\nAQP4,0.25\n")
    pd.testing.assert_series_equal(read_ranking(csv), r, check_names=False)


@pytest.mark.parametrize("name, text, kwargs, match", [
    ("a.rnk", "GFAP\t1\tx\nAQP4\t2\n", {}, r"a.rnk', line 1: expected 2 tab-separated cells"),
    ("a.rnk", "GFAP\t1\nAQP4\thigh\nX\t3\n", {}, r"line 2: the score of gene 'AQP4' is 'high'"),
    ("a.rnk", "# only a comment\n", {}, r"no gene<TAB>score line"),
    ("a.rnk", "GFAP\t1\nAQP4\t2\n", {"score_column": "t"}, r"is a .rnk file"),
    ("a.rnk", "GFAP\t1\ngfap\t2\nX\t3\n", {}, r"a.rnk' names 1 gene\(s\) more than once"),
    ("a.rnk", "GFAP\t1\n\t2\nX\t3\n", {}, r"line 2: the gene is blank"),
    ("a.csv", "gene,t,logfc\nA,1,2\nB,2,3\nC,3,4\n", {}, r"which column holds the scores\? "
                                                         r"Columns besides the gene column "
                                                         r"'gene': t, logfc"),
    ("a.csv", "gene,t\nA,1\nB,2\nC,3\n", {"score_column": "score"}, r"no column 'score'; "
                                                                  r"columns: gene, t"),
    ("a.csv", "gene,score\nA,1\nB,x\nC,3\n", {}, r"data row 2, column 'score': expected a "
                                                 r"number, found 'x'"),
    ("a.csv", "gene,score\nA,1\nB,\nC,3\n", {}, r"1 missing or infinite score\(s\), for B"),
    ("a.csv", "gene,score\nA,1\nB\nC,3\n", {}, r"data row 2: 1 cells but the header has 2"),
    ("missing.rnk", None, {}, r"does not exist"),
])
def test_reader_errors_name_file_and_place(tmp_path, name, text, kwargs, match):
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    with pytest.raises(InputError, match=match):
        read_ranking(path, **kwargs)


def test_cli_input_errors(tmp_path, capsys):
    rnk = _write_rnk(pd.Series([1.0, 2.0, 3.0], index=["A", "B", "C"]), tmp_path / "r.rnk")
    base = ["enrich", "--gene-sets", str(tmp_path / "s.gmt"), "--out", str(tmp_path / "o")]
    (tmp_path / "s.gmt").write_text("S\t\tA\tB\n")
    assert main(base) == 2
    assert "--ranking FILE" in capsys.readouterr().err
    assert main([*base, "--ranking", str(rnk), "--map", "m.csv"]) == 2
    assert "not both" in capsys.readouterr().err
    assert main([*base, "--ranking", str(rnk), "--annot-lh", "lh.annot"]) == 2
    assert "no map to spin" in capsys.readouterr().err
    with pytest.raises(InputError, match="not both"):
        run_enrichment("m.csv", None, {"S": ["A"]}, ranking=rnk, out_dir=tmp_path / "p")
