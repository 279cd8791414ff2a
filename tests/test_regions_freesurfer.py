"""asegstats2table / aparcstats2table outputs accepted as regions tables (CLI, API, study file)."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from graymatter.cli import main
from graymatter.config import load_study
from graymatter.errors import InputError
from graymatter.io.freesurfer_tables import read_stats_table
from graymatter.io.regions import read_regions, stats_table_header
from graymatter.workflows.study import run_study

TABLES = "freesurfer/tables_fs7_longitudinal"


@pytest.fixture
def tables(shared_data):
    return shared_data / TABLES


def test_headers_detected(tables, shared_data):
    assert stats_table_header(tables / "aseg_stats.txt") == "Measure:volume"
    assert stats_table_header(tables / "aparc_stats_13900_RH.txt") == "rh.aparc.thickness"
    assert stats_table_header(shared_data / "enigma" / "metr2_CortThick.csv") is None
    assert stats_table_header(tables / "absent.txt") is None


def test_single_tables_read_through_the_stats_reader(tables):
    for name in ("aseg_stats.txt", "aparc_stats_13900_LH.txt"):
        table = read_regions(tables / name)
        expected = read_stats_table(tables / name)
        assert table.index.name == "participant_id"
        np.testing.assert_array_equal(table.to_numpy(), expected.to_numpy())
        assert list(table.columns) == list(expected.columns)
        assert list(table.index) == list(expected.index)


def test_hemispheres_and_aseg_joined(tables):
    lh, rh, aseg = (tables / f for f in ("aparc_stats_13900_LH.txt", "aparc_stats_13900_RH.txt",
                                         "aseg_stats_13900.txt"))
    joined = read_regions([lh, rh, aseg])
    parts = [read_stats_table(p) for p in (lh, rh, aseg)]
    assert joined.shape[0] == 10
    # eTIV and BrainSegVolNotVent appear in several tables with equal values: kept once.
    assert list(joined.columns).count("eTIV") == 1
    assert list(joined.columns).count("BrainSegVolNotVent") == 1
    assert joined.shape[1] == len(set().union(*(p.columns for p in parts)))
    assert joined.shape[1] < sum(p.shape[1] for p in parts)
    for part in parts:
        np.testing.assert_array_equal(joined[part.columns].to_numpy(), part.to_numpy())
    assert joined.attrs["measure"] == "lh.aparc.thickness+rh.aparc.thickness+Measure:volume"


def test_tables_that_cannot_be_joined(tables, shared_data, tmp_path):
    lh = tables / "aparc_stats_13900_LH.txt"
    with pytest.raises(InputError, match=r"both lh tables .* at most one lh and one rh"):
        read_regions([lh, tables / "aparc_stats_14160_LH.txt"])
    with pytest.raises(InputError, match=r"different subjects: only in the first: "
                                         r"13900_04.long.13900_base"):
        read_regions([lh, tables / "aseg_stats.txt"])
    with pytest.raises(InputError, match=r"metr2_CortThick.csv' is not an asegstats2table"):
        read_regions([lh, shared_data / "enigma" / "metr2_CortThick.csv"])
    area = tmp_path / "rh_area.txt"
    text = (tables / "aparc_stats_13900_RH.txt").read_text()
    area.write_text(text.replace("rh.aparc.thickness", "rh.aparc.area", 1))
    with pytest.raises(InputError, match=r"different parcellations or measures"):
        read_regions([lh, area])
    changed = tmp_path / "rh_other_etiv.txt"
    frame = pd.read_csv(tables / "aparc_stats_13900_RH.txt", sep="\t")
    frame["eTIV"] += 1000.0
    frame.to_csv(changed, sep="\t", index=False)
    with pytest.raises(InputError, match=r"Column 'eTIV' is in both .* different values"):
        read_regions([lh, changed])


@pytest.mark.parametrize("name", ["aseg_stats.txt", "aparc_stats_13900_LH.txt"])
def test_transposed_tables_refused(tables, tmp_path, name):
    frame = pd.read_csv(tables / name, sep="\t", index_col=0)
    header = frame.index.name
    path = tmp_path / "transposed.txt"
    frame.T.rename_axis(header).to_csv(path, sep="\t")
    with pytest.raises(InputError, match=r"transposed.txt' has structures as rows .* --transpose"):
        read_regions(path)


def _participants(tables, path, seed=5):
    ids = read_stats_table(tables / "aparc_stats_13900_LH.txt").index
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"participant_id": ids, "score": rng.normal(size=len(ids)).round(3)})
    frame.to_csv(path, sep="\t", index=False)
    return frame.set_index("participant_id")


def test_regional_cli_on_both_hemispheres_equals_statsmodels(tables, tmp_path):
    cov = _participants(tables, tmp_path / "participants.tsv")
    lh, rh = tables / "aparc_stats_13900_LH.txt", tables / "aparc_stats_13900_RH.txt"
    code = main(["--quiet", "regional", "--participants", str(tmp_path / "participants.tsv"),
                 "--regions", str(lh), str(rh), "--columns", "?h_*_thickness",
                 "--model", "1 + score", "--contrast", "score=score", "--two-sided",
                 "--out", str(tmp_path / "reg")])
    assert code == 0
    table = pd.read_csv(tmp_path / "reg" / "contrast-score_stat.tsv", sep="\t",
                        index_col="region")
    thick = pd.concat([read_stats_table(lh), read_stats_table(rh)], axis=1).loc[cov.index]
    regions = [c for c in thick.columns if c.endswith("_thickness")]
    assert list(table.index) == regions and len(regions) == 70  # 2 x (34 + MeanThickness)
    X = sm.add_constant(cov[["score"]])
    for region in regions[::7]:
        fit = sm.OLS(thick[region], X).fit()
        assert table.loc[region, "t"] == pytest.approx(fit.tvalues["score"], rel=1e-8)
        assert table.loc[region, "p"] == pytest.approx(fit.pvalues["score"], rel=1e-8)


def test_regional_cli_on_aseg_table_and_clear_error(tables, tmp_path, capsys):
    _participants(tables, tmp_path / "participants.tsv")
    args = ["--quiet", "regional", "--participants", str(tmp_path / "participants.tsv"),
            "--model", "1 + score", "--contrast", "score=score", "--out", str(tmp_path / "o")]
    assert main([*args, "--regions", str(tables / "aseg_stats_13900.txt")]) == 0
    table = pd.read_csv(tmp_path / "o" / "contrast-score_stat.tsv", sep="\t", index_col=0)
    assert "Left-Amygdala" in table.index and len(table) == 61
    capsys.readouterr()
    assert main([*args, "--regions", str(tables / "aparc_stats_13900_LH.txt"),
                 str(tables / "aparc_stats_14160_LH.txt")]) == 2
    assert "both lh tables" in capsys.readouterr().err


def test_study_file_regions_list(tables, tmp_path):
    _participants(tables, tmp_path / "participants.tsv")
    study = tmp_path / "study.yaml"
    study.write_text(textwrap.dedent(f"""\
        participants: participants.tsv
        regions: [{tables / 'aparc_stats_13900_LH.txt'}, {tables / 'aparc_stats_13900_RH.txt'}]
        model: 1 + score
        contrasts:
          score: score
        """))
    spec = load_study(study)
    assert isinstance(spec.regions, list) and len(spec.regions) == 2
    run_study(spec)
    table = pd.read_csv(spec.output / "contrast-score_stat.tsv", sep="\t", index_col=0)
    assert "rh_insula_thickness" in table.index and "lh_insula_thickness" in table.index
