"""Transcriptomics workflow end to end on real data: ENIGMA-MDD thickness map x AHBA DK expression.

The cache is filled from the shared data folder with ``fetch(..., from_dir=)``; nothing downloads.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest

from graymatter.commands.transcriptomics import register
from graymatter.datasets import fetchers
from graymatter.datasets.fetchers import DataNotFoundError, fetch
from graymatter.errors import InputError
from graymatter.workflows.transcriptomics import read_brain_map, run_transcriptomics


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
    fetch("ahba-dk83", from_dir=shared_data)
    s = shared_data / "surfaces"
    return {"map": shared_data / "enigma" / "mddadult_case-controls_CortThick.csv",
            "annot_lh": s / "fsa5_lh_aparc.annot", "sphere_lh": s / "fsa5_sphere_lh.gii",
            "annot_rh": s / "fsa5_rh_aparc.annot", "sphere_rh": s / "fsa5_sphere_rh.gii"}


def test_enigma_mdd_thickness_vs_ahba_dk(enigma, tmp_path, recwarn):
    """Must-show: real map, real expression, fsaverage5 DK spins; stable for a seed."""
    kw = dict(map_column="d_icv", annot_lh=enigma["annot_lh"], sphere_lh=enigma["sphere_lh"],
              annot_rh=enigma["annot_rh"], sphere_rh=enigma["sphere_rh"], n_components=3,
              n_spins=200, n_boot=200, spin_method="vasa", random_state=7)
    res = run_transcriptomics(enigma["map"], "ahba-dk83", out_dir=tmp_path / "a", **kw)
    assert res.scores.shape == (68, 3)
    assert res.weights.shape[0] == 15629  # 15,633 minus the 4 date-mangled duplicate columns
    ev, p = res.explained_variance, res.p_spin
    assert 0 < ev[0] < 1
    assert ev.sum() <= 1 + 1e-12
    assert np.all((p >= 1 / 201) & (p <= 1))
    np.testing.assert_allclose(p * 201, np.round(p * 201))  # (1 + count) / (1 + n_spins)
    assert np.corrcoef(res.scores["PLS1"], pd.read_csv(tmp_path / "a" / "pls_scores.tsv",
                                                        sep="\t")["map"])[0, 1] > 0
    out = tmp_path / "a"
    table = pd.read_csv(out / "gene_table.tsv", sep="\t")
    pos = (out / "pls1_positive.txt").read_text().split()
    neg = (out / "pls1_negative.txt").read_text().split()
    assert pos == res.pls1_positive and neg == res.pls1_negative
    sig = table["p_fdr"] < 0.05
    assert set(pos) == set(table.loc[sig & (table["z"] > 0), "gene"])
    assert set(neg) == set(table.loc[sig & (table["z"] < 0), "gene"])
    summary = json.loads((out / "transcriptomics.json").read_text())
    assert summary["results"]["p_spin"] == pytest.approx(list(p))
    assert summary["match_report"]["n_matched"] == 68
    assert summary["inputs"]["expression"]["sha256"] == fetchers.REGISTRY["ahba-dk83"].sha256
    assert len(summary["inputs"]["brain_map"]["sha256"]) == 64
    assert summary["parameters"]["random_state"] == 7
    print(f"\nENIGMA-MDD CT d x AHBA DK (68 regions, {res.weights.shape[0]} genes): PLS1 "
          f"{100 * ev[0]:.1f}% (p_spin={p[0]:.4f}), PLS2 {100 * ev[1]:.1f}% (p_spin={p[1]:.4f}); "
          f"PLS1+ {len(pos)}, PLS1- {len(neg)} genes; top: {', '.join(pos[:5])}")

    again = run_transcriptomics(enigma["map"], "ahba-dk83", out_dir=tmp_path / "b", **kw)
    np.testing.assert_array_equal(again.p_spin, res.p_spin)
    np.testing.assert_array_equal(again.explained_variance, res.explained_variance)
    pd.testing.assert_frame_equal(again.gene_table, res.gene_table)
    assert again.pls1_positive == res.pls1_positive


@pytest.mark.filterwarnings("ignore:.*dropped 4 gene columns")
def test_left_hemisphere_blocks_via_cli(enigma, tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="graymatter")
    parser.add_argument("--quiet", action="store_true")
    handlers = register(parser.add_subparsers(dest="command"))
    args = parser.parse_args([
        "--quiet", "transcriptomics", "--map", str(enigma["map"]), "--map-column", "d_icv",
        "--expression", "ahba-dk83", "--annot-lh", str(enigma["annot_lh"]),
        "--sphere-lh", str(enigma["sphere_lh"]), "--hemisphere", "lh", "--n-components", "2",
        "--n-spins", "50", "--n-boot", "50", "--bootstrap", "blocks", "--n-blocks", "6",
        "--seed", "1", "--out", str(tmp_path / "cli")])
    assert handlers["transcriptomics"](args) == 0
    printed = capsys.readouterr().out
    assert "34 regions" in printed and "PLS1:" in printed and "p_spin" in printed
    summary = json.loads((tmp_path / "cli" / "transcriptomics.json").read_text())
    assert summary["results"]["bootstrap"] == "blocks"
    assert summary["match_report"]["hemisphere"] == "lh"
    assert all(r.startswith("lh_") for r in summary["match_report"]["matched"])


def test_missing_registry_data_names_the_command(shared_data, tmp_path):
    with pytest.raises(DataNotFoundError, match="run `graymatter fetch ahba-dk82-ds06`"):
        run_transcriptomics(shared_data / "enigma" / "mddadult_case-controls_CortThick.csv",
                            "ahba-dk82-ds06", map_column="d_icv", out_dir=tmp_path, n_spins=0)
    with pytest.raises(InputError, match="Did you mean 'ahba-dk83'"):
        run_transcriptomics(pd.Series([1.0, 2.0], index=["L_a", "L_b"]), "ahba-dk38",
                            out_dir=tmp_path)


def test_read_brain_map(tmp_path, shared_data):
    path = shared_data / "enigma" / "mddadult_case-controls_CortThick.csv"
    with pytest.raises(InputError, match="numeric columns.*d_icv.*map-column"):
        read_brain_map(path)
    m = read_brain_map(path, value_column="d_icv")
    assert len(m) == 68 and m.index[0] == "L_bankssts" and m.iloc[0] == -0.058
    (tmp_path / "t.tsv").write_text("region\tt\nlh_a\t1.5\nlh_b\t-2\n")
    assert read_brain_map(tmp_path / "t.tsv").to_dict() == {"lh_a": 1.5, "lh_b": -2.0}
    with pytest.raises(InputError, match="value_column='zz'"):
        read_brain_map(tmp_path / "t.tsv", value_column="zz")


def test_without_centroids_warns_and_skips_p_spin(tmp_path, rng):
    genes = pd.DataFrame(rng.standard_normal((12, 40)), index=[f"L_r{i}" for i in range(12)],
                         columns=[f"G{j}" for j in range(40)])
    brain = pd.Series(rng.standard_normal(12), index=[f"lh_r{i}" for i in range(12)])
    with pytest.warns(UserWarning, match="p_spin is not computed"):
        res = run_transcriptomics(brain, genes, out_dir=tmp_path, n_components=2, n_boot=20)
    assert res.p_spin is None
    assert json.loads((tmp_path / "transcriptomics.json").read_text())["results"]["p_spin"] is None
