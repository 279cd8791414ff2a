"""Expression matrices: reading both layouts, label normalisation, matching by label, gene filters."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from graymatter.errors import GraymatterWarning, InputError
from graymatter.transcriptomics import expression as ex
from graymatter.transcriptomics.expression import (STUDY_B_ABAGEN, abagen_expression,
                                                   filter_genes, match_regions,
                                                   normalise_region_name, read_expression)


@pytest.mark.parametrize("name, expected", [
    ("L_bankssts", "lh_bankssts"), ("lh_bankssts", "lh_bankssts"),
    ("ctx-lh-bankssts", "lh_bankssts"), ("lh.bankssts", "lh_bankssts"),
    ("bankssts_L", "lh_bankssts"), ("R_insula", "rh_insula"), ("insula_rh", "rh_insula"),
    ("L_V1_ROI", "lh_V1"), ("R_a32pr_ROI", "rh_a32pr"), ("Left-Hippocampus", "lh_Hippocampus"),
    ("lh_bankssts_thickavg", "lh_bankssts"), ("Frontal_Inf_Oper_L", "lh_Frontal_Inf_Oper"),
    ("brainstem", "brainstem"), (" L_cuneus ", "lh_cuneus"), (12, "12"),
])
def test_normalise_region_name(name, expected):
    assert normalise_region_name(name) == expected


def _itx_csv(path, bom=True):
    text = ("label,Region,GENE1,GENE2,GENE3\n1,L_a,0.1,0.5,0.3\n2,L_b,0.2,0.4,0.3\n"
            "3,R_a,0.3,0.1,0.9\n")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return path


def test_read_imaging_transcriptomics_layout_with_bom(tmp_path):
    expr = read_expression(_itx_csv(tmp_path / "e.csv"))
    assert expr.index.tolist() == ["L_a", "L_b", "R_a"]
    assert expr.columns.tolist() == ["GENE1", "GENE2", "GENE3"]
    assert expr.dtypes.eq(np.float64).all()
    assert expr.loc["R_a", "GENE3"] == 0.9


def test_read_abagen_layout_and_tsv(tmp_path):
    frame = pd.DataFrame({"G1": [0.1, 0.2], "G2": [0.3, 0.4]},
                         index=pd.Index([1001, 1002], name="label"))
    frame.to_csv(tmp_path / "abagen.csv")
    expr = read_expression(tmp_path / "abagen.csv")
    assert expr.index.tolist() == ["1001", "1002"]
    frame.to_csv(tmp_path / "abagen.tsv", sep="\t")
    pd.testing.assert_frame_equal(read_expression(tmp_path / "abagen.tsv"), expr)
    # the DataFrame abagen returns (ids as index) gives the same
    pd.testing.assert_frame_equal(read_expression(frame), expr)


def test_read_glasser_layout(shared_data):
    expr = read_expression(shared_data / "ahba" / "ahba_glasser360_ds0.6.csv")
    assert expr.shape == (374, 268)
    assert expr.index[0] == "L_V1" and "Rthal" in expr.index


def test_read_real_dk83_with_duplicated_symbols(shared_data):
    path = shared_data / "ahba" / "ahba_dk83_15633genes.csv"
    with pytest.raises(InputError, match="duplicated columns Mar-01, Mar-02"):
        read_expression(path)
    with pytest.warns(GraymatterWarning, match="dropped 4 gene columns"):
        expr = read_expression(path, duplicate_genes="drop")
    assert expr.shape == (83, 15629)
    assert expr.index[0] == "L_bankssts" and expr.index[-1] == "brainstem"
    assert "Mar-01" not in expr.columns and "A1BG" in expr.columns
    assert expr.loc["L_bankssts", "A1BG"] == pytest.approx(0.492838246)


def test_read_errors(tmp_path):
    (tmp_path / "bad.csv").write_text("label,Region,G1,G2\n1,L_a,0.1,oops\n2,L_b,0.2,0.3\n")
    with pytest.raises(InputError, match=r"G2.*not numeric.*'oops' in row L_a"):
        read_expression(tmp_path / "bad.csv")
    (tmp_path / "dupr.csv").write_text("label,Region,G1\n1,L_a,0.1\n2,L_a,0.2\n")
    with pytest.raises(InputError, match="duplicated region labels L_a"):
        read_expression(tmp_path / "dupr.csv")
    with pytest.raises(InputError, match="does not exist"):
        read_expression(tmp_path / "missing.csv")
    with pytest.raises(InputError, match="label_column='nope'"):
        read_expression(_itx_csv(tmp_path / "e.csv"), label_column="nope")


def test_read_parquet_without_engine_is_clear(tmp_path):
    try:
        import pyarrow  # noqa: F401
        pytest.skip("pyarrow is installed")
    except ImportError:
        pass
    (tmp_path / "e.parquet").write_bytes(b"PAR1")
    with pytest.raises(InputError, match="parquet engine"):
        read_expression(tmp_path / "e.parquet")


def _expr():
    return pd.DataFrame({"G1": [1.0, 2.0, 3.0, 4.0, 5.0], "G2": [5.0, 3.0, 4.0, 1.0, 2.0]},
                        index=["L_a", "L_b", "L_c", "R_a", "R_b"])


def test_match_by_label_not_order():
    brain = pd.Series([30.0, 10.0, 20.0], index=["ctx-lh-c", "lh.a", "b_L"])
    y, X, rep = match_regions(brain, _expr())
    assert y.index.tolist() == ["lh_c", "lh_a", "lh_b"]
    assert X.index.tolist() == y.index.tolist()
    assert X["G1"].tolist() == [3.0, 1.0, 2.0]  # expression of c, a, b
    assert y.tolist() == [30.0, 10.0, 20.0]
    assert rep.unmatched_expression == ["R_a", "R_b"] and rep.unmatched_map == []


def test_match_reports_missing_and_hemisphere():
    expr = _expr()
    expr.loc["L_b"] = np.nan                     # a region without expression
    expr.loc["L_c", "G2"] = np.nan               # one gene missing in one region
    brain = pd.Series([1.0, 2.0, 3.0, np.nan, 5.0, 9.0],
                      index=["L_a", "L_b", "L_c", "R_a", "R_b", "L_zzz"])
    with pytest.warns(GraymatterWarning, match="dropped 1 of 2 genes"):
        y, X, rep = match_regions(brain, expr)
    assert y.index.tolist() == ["lh_a", "lh_c", "rh_b"]
    assert rep.dropped_missing_expression == ["lh_b"]
    assert rep.dropped_missing_map == ["rh_a"]
    assert rep.unmatched_map == ["L_zzz"]
    assert rep.genes_dropped_missing == 1 and X.columns.tolist() == ["G1"]
    assert "1 map regions without expression: L_zzz" in str(rep)
    y, X, rep = match_regions(brain.dropna(), _expr(), hemisphere="rh")
    assert y.index.tolist() == ["rh_b"] and rep.hemisphere == "rh"
    assert rep.to_dict()["n_matched"] == 1


def test_match_errors_and_duplicates():
    with pytest.raises(InputError, match="no region of the brain map matches"):
        match_regions(pd.Series([1.0, 2.0], index=["foo", "bar"]), _expr())
    with pytest.raises(InputError, match="same region"):
        match_regions(pd.Series([1.0, 2.0], index=["L_a", "lh_a"]), _expr())
    y, _, rep = match_regions(pd.Series([1.0, 1.0, 2.0], index=["L_a", "lh_a", "L_b"]), _expr())
    assert y.tolist() == [1.0, 2.0] and rep.duplicates == ["lh_a"]
    with pytest.raises(InputError, match="hemisphere"):
        match_regions(pd.Series([1.0], index=["L_a"]), _expr(), hemisphere="left")
    with pytest.raises(InputError, match="pandas Series"):
        match_regions([1.0], _expr())


def test_filter_genes():
    expr = pd.DataFrame({"A": [1.0, 2.0, 3.0], "B": [2.0, 2.0, 2.0], "c": [3.0, 1.0, 2.0],
                         "D": [1.0, 1.0, 1.0 + 1e-3]})
    with pytest.warns(GraymatterWarning, match="dropped 1 of 4 genes with zero variance"):
        out = filter_genes(expr)
    assert out.columns.tolist() == ["A", "c", "D"]
    with pytest.warns(GraymatterWarning, match="dropped 2 of 4 genes with variance <= 0.01"):
        assert filter_genes(expr, min_variance=0.01).columns.tolist() == ["A", "c"]
    with pytest.warns(GraymatterWarning, match="1 of 3 requested genes.*ZZZ"):
        out = filter_genes(expr, genes=["a", "C", "ZZZ"])
    assert out.columns.tolist() == ["A", "c"]
    with pytest.raises(InputError, match="none of the 1 requested genes"):
        filter_genes(expr, genes=["nope"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = filter_genes(expr, stability=pd.Series({"A": 0.9, "c": 0.2}), min_stability=0.5)
    assert out.columns.tolist() == ["A"]


def test_abagen_bridge_passes_study_b_settings(monkeypatch):
    abagen = pytest.importorskip("abagen")
    calls = {}

    def fake(atlas, atlas_info=None, **kwargs):
        calls.update(atlas=atlas, atlas_info=atlas_info, **kwargs)
        return pd.DataFrame({"G1": [0.2, 0.8], "G2": [0.5, 0.1]}, index=pd.Index([1, 2], name="label"))

    import inspect

    fake.__signature__ = inspect.signature(abagen.get_expression_data)  # abagen's real arguments
    monkeypatch.setattr(abagen, "get_expression_data", fake)
    info = pd.DataFrame({"id": [1, 2], "label": ["bankssts", "cuneus"], "hemisphere": ["L", "R"],
                         "structure": ["cortex", "cortex"]})
    out = abagen_expression("atlas.nii.gz", atlas_info=info, data_dir="/data", tolerance=3)
    assert calls["atlas"] == "atlas.nii.gz" and calls["atlas_info"] is info
    expected = {**STUDY_B_ABAGEN, "tolerance": 3, "data_dir": "/data"}
    for key, value in expected.items():
        assert calls[key] == value, key
    assert calls["ibf_threshold"] == 0.5 and calls["probe_selection"] == "diff_stability"
    assert calls["sample_norm"] == calls["gene_norm"] == "srs" and calls["region_agg"] == "donors"
    assert out.index.tolist() == ["lh_bankssts", "rh_cuneus"]
    with pytest.raises(InputError, match="no argument"):
        abagen_expression("atlas.nii.gz", not_an_argument=1)


def test_study_b_settings_are_abagen_arguments():
    abagen = pytest.importorskip("abagen")
    import inspect

    params = inspect.signature(abagen.get_expression_data).parameters
    assert set(STUDY_B_ABAGEN) <= set(params)
    assert ex.STUDY_B_ABAGEN["lr_mirror"] is None
