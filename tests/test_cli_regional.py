"""Regional subcommands of the command line: real outputs, oracle numbers, readable errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from graymatter.cli import main
from graymatter.datasets.simulate_longitudinal import simulate_longitudinal_cohort
from graymatter.stats.paired import paired_change
from graymatter.stats.pls import clinical_pls


def _one_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("graymatter: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def cohort():
    return simulate_longitudinal_cohort(n_subjects=20, regions=25, random_state=11)


@pytest.fixture
def study(cohort, tmp_path):
    cohort.pre.to_csv(tmp_path / "pre.csv")
    cohort.post.iloc[::-1].to_csv(tmp_path / "post.csv")
    participants = cohort.participants.assign(
        delta_tiv=cohort.participants["tiv_post"] - cohort.participants["tiv_pre"])
    participants.to_csv(tmp_path / "participants.tsv", sep="\t")
    return tmp_path, participants


def _args(folder, *extra):
    return ["--participants", str(folder / "participants.tsv"), "--pre", str(folder / "pre.csv"),
            "--post", str(folder / "post.csv"), *extra]


def test_register_lists_the_commands():
    import argparse

    from graymatter.commands.regional import register

    parser = argparse.ArgumentParser()
    handlers = register(parser.add_subparsers(dest="command"))
    assert sorted(handlers) == ["freesurfer-table", "longitudinal", "pls-clinical", "regional"]
    assert all(callable(h) for h in handlers.values())


def test_longitudinal_command(cohort, study, capsys):
    folder, participants = study
    code = main(["--quiet", "longitudinal", *_args(folder, "--covariates", "1 + delta_tiv",
                                                   "--n-perm", "99", "--seed", "4",
                                                   "--out", str(folder / "paired"))])
    out = capsys.readouterr().out
    assert code == 0
    direct = paired_change(cohort.pre, cohort.post, covariates=participants,
                           formula="1 + delta_tiv", n_perm=99, random_state=4, progress=False)
    table = pd.read_csv(folder / "paired" / "paired_change.tsv", sep="\t", index_col="region")
    for column in ("t", "p", "p_fwe", "p_fdr", "cohens_dz"):
        np.testing.assert_allclose(table.loc[direct.table.index, column], direct.table[column],
                                   rtol=1e-9)
    top = direct.table["t"].abs().idxmax()
    assert top in out and "1 + delta_tiv" in out
    n_fwe = int((direct.table["p_fwe"] < 0.05).sum())
    assert f"{n_fwe} region(s) with p_FWE < 0.05" in out


def test_pls_clinical_command(cohort, study, capsys):
    folder, _ = study
    code = main(["--quiet", "pls-clinical", *_args(folder, "--clinical-pre", "hamd_pre",
                                                   "--clinical-post", "hamd_post", "--n-perm",
                                                   "99", "--n-boot", "99", "--cv", "4", "--seed",
                                                   "2", "--out", str(folder / "pls"))])
    out = capsys.readouterr().out
    assert code == 0
    dhamd = (cohort.participants["hamd_post"] - cohort.participants["hamd_pre"]).astype(float)
    direct = clinical_pls(cohort.post - cohort.pre, dhamd, n_perm=99, n_boot=99, cv=4,
                          random_state=2)
    summary = json.loads((folder / "pls" / "pls_clinical.json").read_text())
    assert summary["cv_folds"] == 4
    assert summary["r"] == pytest.approx(direct.r, rel=1e-12)
    assert summary["p_perm"] == direct.p_perm
    assert summary["cv_r"] == pytest.approx(direct.cv_r, rel=1e-10)
    assert f"r = {direct.r:.3f}" in out and f"p_perm = {direct.p_perm:.4g}" in out
    assert direct.regional["z_pls1"].abs().idxmax() in out


def test_regional_enigma_equals_statsmodels(shared_data, tmp_path, capsys):
    enigma = shared_data / "enigma"
    code = main(["--quiet", "regional", "--participants", str(enigma / "cov.csv"),
                 "--regions", str(enigma / "metr2_CortThick.csv"), "--columns", "*_thickavg",
                 "--model", "1 + Dx + Age + Sex + ICV", "--contrast", "MDD > HC=Dx",
                 "--inference", "permutation", "--n-perm", "99", "--two-sided",
                 "--out", str(tmp_path / "reg")])
    out = capsys.readouterr().out
    assert code == 0
    table = pd.read_csv(tmp_path / "reg" / "contrast-MDDgtHC_stat.tsv", sep="\t",
                        index_col="region")
    cov = pd.read_csv(enigma / "cov.csv").set_index("SubjID")
    thick = pd.read_csv(enigma / "metr2_CortThick.csv").set_index("SubjID").loc[cov.index]
    regions = [c for c in thick.columns if c.endswith("_thickavg")]
    assert list(table.index) == regions and len(regions) == 68
    X = sm.add_constant(cov[["Dx", "Age", "Sex", "ICV"]].astype(float))
    for region in regions:
        fit = sm.OLS(thick[region].astype(float), X).fit()
        assert table.loc[region, "estimate"] == pytest.approx(fit.params["Dx"], rel=1e-8)
        assert table.loc[region, "t"] == pytest.approx(fit.tvalues["Dx"], rel=1e-8)
        assert table.loc[region, "p"] == pytest.approx(fit.pvalues["Dx"], rel=1e-8)
    assert (table["df"] == 15).all()
    assert (table["p_fwe_perm"] >= 1 / 100).all() and (table["p_fwe_perm"] <= 1).all()
    sidecar = json.loads((tmp_path / "reg" / "glm.json").read_text())
    assert sidecar["inputs"]["regions"]["selected"] == regions
    assert table["t"].abs().idxmax() in out


def test_freesurfer_table_command(shared_data, tmp_path, capsys):
    root = tmp_path / "subjects"
    for name, folder in (("sub-01", "fs7.4.1_corrected"), ("sub-02", "fs7.0_soichi")):
        (root / name / "stats").mkdir(parents=True)
        for file in ("lh.aparc.stats", "rh.aparc.stats", "aseg.stats"):
            shutil.copy(shared_data / "freesurfer" / folder / file, root / name / "stats" / file)
    code = main(["--quiet", "freesurfer-table", str(root), "--out", str(tmp_path / "gmv.tsv"),
                 "--measure", "ThickAvg"])
    assert code == 0
    assert "2 subjects x 69 columns" in capsys.readouterr().out  # 2 x 34 regions + eTIV
    table = pd.read_csv(tmp_path / "gmv.tsv", sep="\t", index_col="subject")
    assert table.shape == (2, 69) and (tmp_path / "gmv.json").is_file()
    code = main(["freesurfer-table", str(root), "--out", str(tmp_path / "x.tsv"),
                 "--annot", "HCP-MMP1"])
    assert code == 2
    assert "lh.HCP-MMP1.stats" in _one_error(capsys)


def test_errors_are_one_readable_line(study, capsys):
    folder, _ = study
    out = ["--out", str(folder / "o")]
    assert main(["pls-clinical", *_args(folder, "--clinical-pre", "hamd_pre", "--clinical-post",
                                         "madrs", *out)]) == 2
    assert "'madrs'" in _one_error(capsys)
    assert main(["pls-clinical", *_args(folder, "--clinical-pre", "hamd_pre", "--clinical-post",
                                         "hamd_post", "--cv", "1", *out)]) == 2
    assert "--cv" in _one_error(capsys)
    assert main(["longitudinal", *_args(folder, "--covariates", "1 + tiv_change", *out)]) == 2
    assert "tiv_change" in _one_error(capsys)
    assert main(["longitudinal", *_args(folder, "--columns", "lh_*", *out)]) == 2
    assert "'lh_*'" in _one_error(capsys)
    assert main(["regional", "--participants", str(folder / "participants.tsv"), "--regions",
                 str(folder / "pre.csv"), "--model", "1 + age", *out]) == 2
    assert "--contrast" in _one_error(capsys)
