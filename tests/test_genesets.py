"""Gene sets: GMT / CSV readers, GMT writer, background restriction with size filters."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from graymatter.errors import GraymatterWarning, InputError
from graymatter.transcriptomics.genesets import (GeneSets, normalise_symbols, read_gene_table,
                                                 read_gmt, write_gmt)


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_read_gmt_upper_cases_dedupes_and_keeps_descriptions(tmp_path):
    gmt = _write(tmp_path / "a.gmt", ["setA\tfirst set\tgfap\tAQP4\tGFAP \tAldh1l1",
                                      "",
                                      "setB\t\tSNAP25\tSYT1"])
    sets = read_gmt(gmt)
    assert sets.names() == ["setA", "setB"]
    assert sets["setA"] == ["GFAP", "AQP4", "ALDH1L1"]
    assert sets.descriptions == {"setA": "first set", "setB": ""}
    assert sets.sizes().tolist() == [3, 2]
    assert sets.source == str(gmt)


def test_read_gmt_line_without_genes_is_skipped_with_warning(tmp_path):
    gmt = _write(tmp_path / "a.gmt", ["setA\td\tGFAP\tAQP4", "empty\tno genes here", "only_name",
                                      "setB\td\tSNAP25"])
    with pytest.warns(GraymatterWarning, match=r"line 2 \('empty'\).*line 3 \('only_name'\)"):
        sets = read_gmt(gmt)
    assert sets.names() == ["setA", "setB"]


def test_read_gmt_duplicate_name_names_both_lines(tmp_path):
    gmt = _write(tmp_path / "a.gmt", ["setA\td\tGFAP", "setB\td\tSYT1", "setA\td\tAQP4"])
    with pytest.raises(InputError, match=r"line 3: set name 'setA' was already used on line 1"):
        read_gmt(gmt)


def test_read_gmt_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_gmt(tmp_path / "missing.gmt")
    gmt = _write(tmp_path / "e.gmt", ["a\tdesc", "b\tdesc"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GraymatterWarning)
        with pytest.raises(InputError, match="holds no gene set"):
            read_gmt(gmt)
    gmt = _write(tmp_path / "n.gmt", ["\tdesc\tGFAP"])
    with pytest.raises(InputError, match="line 1.*set name"):
        read_gmt(gmt)


def test_write_gmt_round_trip(tmp_path):
    sets = GeneSets({"A": ["GFAP", "AQP4"], "B b": ["SYT1"]}, {"A": "astro\tcells"}, "x")
    path = write_gmt(sets, tmp_path / "out" / "sets.gmt")
    back = read_gmt(path)
    assert back.sets == sets.sets
    assert back.descriptions == {"A": "astro cells", "B b": ""}
    assert not list((tmp_path / "out").glob(".*tmp*"))  # atomic: no temp file left
    write_gmt({"C": ["x1"]}, tmp_path / "plain.gmt")
    assert read_gmt(tmp_path / "plain.gmt")["C"] == ["X1"]
    with pytest.raises(InputError, match="tab or newline"):
        write_gmt({"bad\tname": ["X"]}, tmp_path / "bad.gmt")


def test_aliases_are_applied_after_upper_casing(tmp_path):
    gmt = _write(tmp_path / "a.gmt", ["s\td\tc1orf61\tGFAP"])
    sets = read_gmt(gmt, aliases={"C1orf61": "crnde"})
    assert sets["s"] == ["CRNDE", "GFAP"]
    plain = read_gmt(gmt)
    kept, report = plain.restrict(["CRNDE", "GFAP", "X"], min_size=1,
                                  aliases={"c1orf61": "CRNDE"})
    assert kept["s"] == ["CRNDE", "GFAP"] and report.loc["s", "n_dropped"] == 0
    assert normalise_symbols(["a", "A", None, float("nan"), " b "]) == ["A", "B"]
    with pytest.raises(InputError, match="aliases must be a mapping"):
        normalise_symbols(["A"], aliases=[("A", "B")])


def test_read_gene_table_real_seidlitz_classes(shared_data):
    path = shared_data / "genesets" / "celltypes_seidlitz2020_PSP.csv"
    cells = read_gene_table(path)
    assert sorted(cells.names()) == ["Astro", "Endo", "Micro", "Neuro-Ex", "Neuro-In", "OPC",
                                     "Oligo"]  # CRLF line ends must not leak into "OPC"
    raw = pd.read_csv(path)
    raw["gene"] = raw["gene"].str.strip().str.upper()
    expected = raw.groupby(raw["class"].str.strip())["gene"].nunique()
    assert cells.sizes().sort_index().to_dict() == expected.sort_index().to_dict()


def test_read_real_gmts(shared_data):
    pooled = read_gmt(shared_data / "genesets" / "geneset_Pooled.gmt")
    assert len(pooled) == 7
    lake = read_gmt(shared_data / "genesets" / "geneset_LAKE.gmt")
    assert len(lake) >= 28
    go = read_gmt(shared_data / "genesets" / "GO_Biological_Process_2021.gmt")
    assert len(go) == 6036
    name = "2-oxoglutarate metabolic process (GO:0006103)"
    assert go[name][:3] == ["IDH1", "PHYH", "AADAT"] and len(go[name]) == 14


def test_read_gene_table_options_and_errors(tmp_path):
    tsv = tmp_path / "t.tsv"
    tsv.write_text("symbol\tcell\tscore\nGFAP\tastro\t1\nsnap25\tneuron\t2\naqp4\tastro\t3\n")
    sets = read_gene_table(tsv, gene_column="symbol", set_column="cell")
    assert sets.sets == {"astro": ["GFAP", "AQP4"], "neuron": ["SNAP25"]}
    with pytest.raises(InputError, match="cannot tell which column.*cell, score"):
        read_gene_table(tsv, gene_column="symbol")
    with pytest.raises(InputError, match="no column 'gene'"):
        read_gene_table(tsv)
    with pytest.raises(InputError, match="no column 'klass'"):
        read_gene_table(tsv, gene_column="symbol", set_column="klass")
    csv = tmp_path / "b.csv"
    csv.write_text("gene,class\nGFAP,astro\nSYT1,\n")
    with pytest.raises(InputError, match=r"empty on line\(s\) 3"):
        read_gene_table(csv)


def test_restrict_report_counts_and_reasons():
    sets = GeneSets({"big": [f"G{i}" for i in range(10)],
                     "small": ["G0", "G1", "Z9"],
                     "absent": ["Q1", "Q2"],
                     "ok": ["g2", "G3", "G4", "Z1"]}, {"ok": "fine"}, "toy")
    background = [f"g{i}" for i in range(8)]  # lower case on purpose
    kept, report = sets.restrict(background, min_size=3, max_size=5)
    assert kept.names() == ["ok"] and kept["ok"] == ["G2", "G3", "G4"]
    assert kept.descriptions == {"ok": "fine"}
    assert report.loc["big"].tolist() == [10, 8, 2, False, "larger than max_size=5"]
    assert report.loc["small"].tolist() == [3, 2, 1, False, "smaller than min_size=3"]
    assert report.loc["absent"].tolist() == [2, 0, 2, False, "no genes in background"]
    assert report.loc["ok"].tolist() == [4, 3, 1, True, ""]


def test_restrict_errors():
    sets = GeneSets({"a": ["X1", "X2"]}, {}, "toy.gmt")
    with pytest.raises(InputError, match=r"no gene set of toy.gmt.*range 0-0"):
        sets.restrict(["Y1", "Y2"], min_size=1)
    with pytest.raises(InputError, match="background is empty"):
        sets.restrict([], min_size=1)
    with pytest.raises(InputError, match="min_size .5. is larger than max_size .2."):
        sets.restrict(["X1"], min_size=5, max_size=2)
    with pytest.raises(InputError, match="min_size must be a positive integer"):
        sets.restrict(["X1"], min_size=0)
    with pytest.raises(InputError, match="max_size must be a positive integer"):
        sets.restrict(["X1"], max_size=2.5)
    with pytest.raises(InputError, match="no gene set named 'b'"):
        sets["b"]
    with pytest.raises(InputError, match="single string"):
        GeneSets({"a": "GFAP"}, {}, "")
