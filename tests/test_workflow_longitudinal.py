"""Regional/longitudinal workflows: files, provenance, and numbers equal to the stats functions."""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from graymatter.datasets.simulate_longitudinal import simulate_longitudinal_cohort
from graymatter.errors import GraymatterWarning, InputError
from graymatter.io.freesurfer import read_stats
from graymatter.io.freesurfer_tables import collect_stats, wide_table
from graymatter.io.regions import read_regions
from graymatter.stats.paired import paired_change
from graymatter.stats.pls import clinical_pls, pls_fit
from graymatter.workflows.longitudinal import (PAIRED_SIDECAR, PAIRED_TABLE, PLS_PREDICTIONS,
                                               PLS_REGIONAL, PLS_SUMMARY, freesurfer_table,
                                               run_longitudinal, run_pls_clinical, select_columns)


def _sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def cohort():
    return simulate_longitudinal_cohort(n_subjects=24, regions=30, random_state=3)


@pytest.fixture
def files(cohort, tmp_path):
    """pre.csv, post.csv (rows and columns shuffled) and participants.tsv with delta_tiv."""
    cohort.pre.to_csv(tmp_path / "pre.csv")
    post = cohort.post.sample(frac=1.0, random_state=1)
    post[list(reversed(post.columns))].to_csv(tmp_path / "post.csv")
    participants = cohort.participants.assign(
        delta_tiv=cohort.participants["tiv_post"] - cohort.participants["tiv_pre"])
    participants.to_csv(tmp_path / "participants.tsv", sep="\t")
    return {"pre": tmp_path / "pre.csv", "post": tmp_path / "post.csv",
            "participants": tmp_path / "participants.tsv", "table": participants}


# ----------------------------------------------------------------------------- paired change

def test_run_longitudinal_equals_paired_change_and_writes_provenance(cohort, files, tmp_path):
    out = tmp_path / "paired"
    res = run_longitudinal(files["participants"], pre=files["pre"], post=files["post"],
                           covariates_formula="1 + delta_tiv", n_perm=99, random_state=5,
                           out_dir=out, progress=False)
    direct = paired_change(cohort.pre, cohort.post, covariates=files["table"],
                           formula="1 + delta_tiv", n_perm=99, random_state=5, progress=False)
    pd.testing.assert_frame_equal(res.table, direct.table, rtol=1e-12, atol=0)
    written = pd.read_csv(out / PAIRED_TABLE, sep="\t", index_col="region")
    for column in ("mean_change", "t", "df", "p", "z", "p_fwe", "p_fdr", "cohens_dz"):
        np.testing.assert_allclose(written[column], direct.table[column], rtol=1e-9)
    # the planted regions are what the test finds
    hits = set(written.index[written["p_fwe"] < 0.05])
    assert hits and hits <= set(cohort.changed_regions)
    assert written["p_fwe"].min() >= 1 / 100  # (1 + #null >= obs) / (1 + n_perm), never 0

    sidecar = json.loads((out / PAIRED_SIDECAR).read_text())
    for name in ("participants", "pre", "post"):
        assert sidecar["inputs"][name]["sha256"] == _sha(files[name])
    assert sidecar["model"] == "change ~ 1 + delta_tiv"
    assert sidecar["n_perm"] == 99 and sidecar["random_state"] == 5
    assert sidecar["subjects"] == list(cohort.pre.index)
    assert sidecar["software"]["numpy"] == np.__version__


def test_no_covariates_is_the_paired_t_test(cohort, files, tmp_path):
    res = run_longitudinal(files["participants"], pre=files["pre"], post=files["post"],
                           n_perm=0, out_dir=tmp_path / "o", progress=False)
    t, p = stats.ttest_rel(cohort.post.to_numpy(), cohort.pre.to_numpy(), axis=0)
    np.testing.assert_allclose(res.table.loc[cohort.pre.columns, "t"], t, rtol=1e-10)
    np.testing.assert_allclose(res.table.loc[cohort.pre.columns, "p"], p, rtol=1e-8)
    assert res.table["p_fwe"].isna().all()


def test_sessions_in_one_table(cohort, files, tmp_path):
    """Both sessions in one table, FreeSurfer-longitudinal or BIDS-like ids, give the same t."""
    reference = run_longitudinal(files["participants"], pre=files["pre"], post=files["post"],
                                 n_perm=0, out_dir=tmp_path / "ref", progress=False).table
    fs = pd.concat([cohort.pre.rename(index=lambda s: f"{s}_01.long.{s}_base"),
                    cohort.post.rename(index=lambda s: f"{s}_02.long.{s}_base")])
    res = run_longitudinal(files["table"], pre=fs, post=fs, session_pre="01", session_post="02",
                           n_perm=0, out_dir=tmp_path / "fs", progress=False)
    pd.testing.assert_frame_equal(res.table, reference, rtol=1e-12)
    bids = pd.concat([cohort.post.rename(index=lambda s: f"{s}_ses-post"),
                      cohort.pre.rename(index=lambda s: f"{s}_ses-pre")])
    bids.index.name = "participant_id"
    bids.to_csv(tmp_path / "both.tsv", sep="\t")
    res = run_longitudinal(files["participants"], pre=tmp_path / "both.tsv",
                           post=tmp_path / "both.tsv", session_pre="ses-pre",
                           session_post="ses-post", n_perm=0, out_dir=tmp_path / "b",
                           progress=False)
    pd.testing.assert_frame_equal(res.table, reference, rtol=1e-12)
    with pytest.raises(InputError, match=r"session_pre='ses-1'.*sub-01_ses-post"):
        run_longitudinal(files["participants"], pre=tmp_path / "both.tsv",
                         post=tmp_path / "both.tsv", session_pre="ses-1", session_post="ses-post",
                         n_perm=0, out_dir=tmp_path / "x", progress=False)


def test_subject_matching_and_column_selection(cohort, files, tmp_path):
    pre = cohort.pre.drop(index="sub-07")
    with pytest.raises(InputError, match=r"no data in the pre table: sub-07"):
        run_longitudinal(files["table"], pre=pre, post=cohort.post, n_perm=0,
                         out_dir=tmp_path / "o", progress=False)
    # data of subjects who are not participants are ignored, with a warning
    with pytest.warns(GraymatterWarning, match="sub-24"):
        res = run_longitudinal(files["table"].drop(index="sub-24"), pre=cohort.pre,
                               post=cohort.post, columns=["region_00*"], n_perm=0,
                               out_dir=tmp_path / "o", progress=False)
    assert list(res.table.index) == [f"region_00{i}" for i in range(1, 10)]
    t, _ = stats.ttest_rel(cohort.post.iloc[:23, :9], cohort.pre.iloc[:23, :9], axis=0)
    np.testing.assert_allclose(res.table["t"], t, rtol=1e-10)
    with pytest.raises(InputError, match=r"'lh_\*' matches no column"):
        select_columns(cohort.pre, "lh_*")


# ----------------------------------------------------------------------------- clinical PLS

def test_run_pls_clinical_equals_clinical_pls(cohort, files, tmp_path):
    out = tmp_path / "pls"
    res = run_pls_clinical(files["participants"], pre=files["pre"], post=files["post"],
                           clinical_pre="hamd_pre", clinical_post="hamd_post", out_dir=out,
                           n_perm=99, n_boot=99, cv="loo", random_state=7)
    delta = cohort.post - cohort.pre
    dhamd = (cohort.participants["hamd_post"] - cohort.participants["hamd_pre"]).astype(float)
    direct = clinical_pls(delta, dhamd, n_perm=99, n_boot=99, cv="loo", random_state=7)
    assert res.r == pytest.approx(direct.r, rel=1e-12)
    assert res.p_perm == direct.p_perm and res.p_perm >= 1 / 100
    assert res.cv_r == pytest.approx(direct.cv_r, rel=1e-10)
    pd.testing.assert_frame_equal(res.regional, direct.regional, rtol=1e-10,
                                  check_names=False)

    summary = json.loads((out / PLS_SUMMARY).read_text())
    assert summary["r"] == pytest.approx(direct.r, rel=1e-12)
    assert summary["p_perm"] == direct.p_perm
    assert summary["cv_r"] == pytest.approx(direct.cv_r, rel=1e-10)
    assert summary["variance_explained"] == pytest.approx(direct.variance_explained.tolist())
    assert "optimistic" in summary["note"]
    for name in ("participants", "pre", "post"):
        assert summary["inputs"][name]["sha256"] == _sha(files[name])

    regional = pd.read_csv(out / PLS_REGIONAL, sep="\t", index_col="region")
    np.testing.assert_allclose(regional.loc[direct.regional.index].to_numpy(),
                               direct.regional.to_numpy(), rtol=1e-9)
    pred = pd.read_csv(out / PLS_PREDICTIONS, sep="\t", index_col="subject")
    np.testing.assert_allclose(pred["observed"], dhamd.loc[pred.index])
    # leave-one-out oracle: refit without each subject and predict it
    X = delta.to_numpy()
    for i in (0, 11, 23):
        keep = np.arange(len(X)) != i
        fit = pls_fit(X[keep], dhamd.to_numpy()[keep])
        assert pred["cv_predicted"].iloc[i] == pytest.approx(fit.predict(X[i:i + 1])[0, 0],
                                                             rel=1e-8)
    full = pls_fit(X, dhamd.to_numpy())
    np.testing.assert_allclose(pred["fitted"], full.predict(X)[:, 0], rtol=1e-9)
    assert np.corrcoef(pred["fitted"], pred["observed"])[0, 1] == pytest.approx(direct.r,
                                                                                rel=1e-8)


def test_pls_clinical_errors_name_the_column_and_subject(cohort, files, tmp_path):
    kwargs = dict(pre=cohort.pre, post=cohort.post, out_dir=tmp_path, n_perm=9, n_boot=9)
    with pytest.raises(InputError, match=r"no column 'madrs_post'.*hamd_post"):
        run_pls_clinical(files["table"], clinical_pre="hamd_pre", clinical_post="madrs_post",
                         **kwargs)
    table = files["table"].astype({"hamd_post": float})
    table.loc["sub-05", "hamd_post"] = np.nan
    with pytest.raises(InputError, match=r"'hamd_post'.*sub-05"):
        run_pls_clinical(table, clinical_pre="hamd_pre", clinical_post="hamd_post", **kwargs)
    assert not any(tmp_path.glob("pls_*"))  # nothing half-written


# ----------------------------------------------------------------------------- FreeSurfer table

def _subject(root: Path, name: str, source: Path, files=("lh.aparc.stats", "rh.aparc.stats",
                                                         "aseg.stats")) -> None:
    stats_dir = root / name / "stats"
    stats_dir.mkdir(parents=True)
    for file in files:
        shutil.copy(source / file, stats_dir / file)


@pytest.fixture
def subjects_dir(shared_data, tmp_path) -> Path:
    fs = shared_data / "freesurfer"
    root = tmp_path / "subjects"
    _subject(root, "sub-01", fs / "fs5.3_hcp198451")
    _subject(root, "sub-02", fs / "fs7.4.1_corrected")
    _subject(root, "sub-03", fs / "fs7.0_soichi")
    (root / "fsaverage" / "surf").mkdir(parents=True)
    return root


def test_freesurfer_table_writes_table_and_sidecar(shared_data, subjects_dir, tmp_path):
    out = tmp_path / "tables" / "gmv.tsv"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # complete subjects: no warning expected
        wide = freesurfer_table(subjects_dir, out=out)
    pd.testing.assert_frame_equal(wide, wide_table(collect_stats(subjects_dir)))
    source = read_stats(shared_data / "freesurfer" / "fs7.4.1_corrected" / "lh.aparc.stats")
    row = source.table.set_index("StructName").loc["superiorfrontal"]
    assert wide.loc["sub-02", "lh_superiorfrontal"] == row["GrayVol"]
    back = read_regions(out)  # the table reads back as a regions table (id column 'subject')
    assert list(back.index) == ["sub-01", "sub-02", "sub-03"]
    np.testing.assert_allclose(back.to_numpy(), wide.to_numpy(), rtol=1e-9)

    sidecar = json.loads((tmp_path / "tables" / "gmv.json").read_text())
    assert sidecar["table"]["sha256"] == _sha(out)
    assert len(sidecar["inputs"]) == 9  # lh, rh, aseg of three subjects
    for key, record in sidecar["inputs"].items():
        assert record["sha256"] == _sha(subjects_dir / key)
    assert sidecar["inputs"]["sub-02/stats/lh.aparc.stats"]["version"] == "7.4.1"
    assert sidecar["freesurfer_versions"] == ["7.0.0", "7.4.1"]
    assert sidecar["parameters"] == {"annot": "aparc", "measure": "GrayVol", "subjects": None,
                                     "missing": "error"}


def test_freesurfer_thickness_needs_no_aseg(subjects_dir, tmp_path):
    (subjects_dir / "sub-03" / "stats" / "aseg.stats").unlink()
    wide = freesurfer_table(subjects_dir, out=tmp_path / "thick.tsv", measure="ThickAvg",
                            subjects=["sub-02", "sub-03"])
    assert list(wide.index) == ["sub-02", "sub-03"]
    assert not any(c.startswith("Left-") for c in wide.columns)  # no aseg volumes
    assert wide["eTIV"].notna().all()  # FreeSurfer 7 surface stats carry eTIV
    assert 1.0 < wide.filter(like="lh_").to_numpy().mean() < 4.0  # mm of cortex
    with pytest.raises(InputError, match=r"\.tsv"):
        freesurfer_table(subjects_dir, out=tmp_path / "thick.csv")
    with pytest.raises(InputError, match=r"aseg\.stats"):
        freesurfer_table(subjects_dir, out=tmp_path / "gmv.tsv")  # GrayVol adds aseg volumes
