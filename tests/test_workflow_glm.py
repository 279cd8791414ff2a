"""End-to-end GLM workflow on real region tables and simulated voxel images."""

import hashlib
import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from graymatter.datasets.simulate import PlantedEffect, simulate_vbm_cohort
from graymatter.errors import GraymatterWarning, InputError
from graymatter.workflows.glm import contrast_slug, run_glm


@pytest.fixture
def enigma(shared_data, tmp_path):
    """Real ENIGMA toolbox tables: 20 subjects' covariates and 68 DK cortical thicknesses."""
    cov = pd.read_csv(shared_data / "enigma" / "cov.csv")
    participants = tmp_path / "participants.csv"
    cov.to_csv(participants, index=False)
    table = pd.read_csv(shared_data / "enigma" / "metr2_CortThick.csv")
    regions = tmp_path / "thickness.csv"
    table[["SubjID"] + [c for c in table if c.endswith("_thickavg")]].to_csv(regions, index=False)
    return participants, regions, cov


def test_region_equal_to_a_covariate_is_excluded_with_a_warning(shared_data, tmp_path):
    # The full ENIGMA table also holds ICV, which the model fits exactly: that column must be
    # reported and set to NaN, not given an infinite or zero t.
    with pytest.warns(GraymatterWarning, match="1 of 73 features excluded"):
        out = run_glm(shared_data / "enigma" / "cov.csv", regions=shared_data / "enigma" /
                      "metr2_CortThick.csv", id_column="SubjID", model="1 + Dx + ICV",
                      contrasts={"Dx": "Dx"}, out_dir=tmp_path, progress=False)
    t = pd.Series(out.results["Dx"].t, index=out.features)
    assert np.isnan(t["ICV"]) and t.drop("ICV").notna().all()


def test_regions_match_statsmodels_on_real_tables(enigma, tmp_path):
    participants, regions, cov = enigma
    out = run_glm(participants, regions=regions, id_column="SubjID", model="1 + Dx + Age + ICV",
                  contrasts={"Dx": "Dx", "age and dx": ["Dx", "Age"]}, out_dir=tmp_path / "glm",
                  progress=False)
    thickness = pd.read_csv(regions).set_index("SubjID").loc[cov.SubjID]
    X = sm.add_constant(cov[["Dx", "Age", "ICV"]].to_numpy(float))
    table = pd.read_csv(out.files["Dx"], sep="\t", index_col=0)
    ftable = pd.read_csv(out.files["ageAndDx"], sep="\t", index_col=0)
    assert list(table.index) == list(thickness.columns)
    for region in thickness.columns[::7]:
        fit = sm.OLS(thickness[region].to_numpy(float), X).fit()
        np.testing.assert_allclose(table.loc[region, "t"], fit.tvalues[1], rtol=1e-8)
        np.testing.assert_allclose(table.loc[region, "p"], fit.pvalues[1], rtol=1e-8)
        f = fit.f_test(np.eye(4)[[1, 2]])
        np.testing.assert_allclose(ftable.loc[region, "f"], float(np.squeeze(f.fvalue)), rtol=1e-8)
    sidecar = json.loads(out.files["sidecar"].read_text())
    assert sidecar["inputs"]["regions"]["sha256"] == hashlib.sha256(regions.read_bytes()).hexdigest()
    assert sidecar["design"]["formula"] == "1 + Dx + Age + ICV"
    assert sidecar["n_subjects"] == 20 and sidecar["df_resid"] == 16
    for name in ("design.tsv", "design.png", "design.svg", "glm.json"):
        assert (tmp_path / "glm" / name).is_file()


def test_regions_missing_for_a_participant_is_named(enigma, tmp_path):
    participants, regions, cov = enigma
    table = pd.read_csv(regions)
    table = table[table.SubjID != cov.SubjID[3]]
    short = tmp_path / "regions.csv"
    table.to_csv(short, index=False)
    with pytest.raises(InputError, match=cov.SubjID[3]):
        run_glm(participants, regions=short, id_column="SubjID", model="1 + Age",
                contrasts={"age": "Age"}, out_dir=tmp_path / "glm", progress=False)


def test_voxel_maps_match_engine_and_record_inputs(tmp_path):
    effect = PlantedEffect("group == 'MDD'", (28.0, 4.0, -20.0), 12.0, -0.15)
    cohort = simulate_vbm_cohort(tmp_path / "data", groups={"HC": 6, "MDD": 6}, effects=[effect],
                                 random_state=3)
    # Images listed in reverse order: matching must go by id, not by position.
    images = [str(p) for p in reversed(list(cohort.images.values()))]
    out = run_glm(cohort.participants_file, images=images, model="0 + group + age",
                  contrasts={"HC > MDD": "HC - MDD"}, out_dir=tmp_path / "glm", progress=False)
    t_img = nib.load(tmp_path / "glm" / "contrast-HCgtMDD_stat-t.nii.gz")
    mask = nib.load(tmp_path / "glm" / "mask.nii.gz").get_fdata() > 0
    np.testing.assert_allclose(t_img.get_fdata()[mask], out.results["HC > MDD"].t, rtol=1e-6)
    sidecar = json.loads(out.files["sidecar"].read_text())
    first = cohort.images["sub-001"]
    assert sidecar["inputs"]["images"]["sub-001"]["sha256"] == \
        hashlib.sha256(first.read_bytes()).hexdigest()
    assert sidecar["subjects"] == list(cohort.participants.index)


def test_contrast_slug_keeps_direction_distinct():
    assert contrast_slug("HC > MDD") == "HCgtMDD"
    assert contrast_slug("HC < MDD") == "HCltMDD"
    assert contrast_slug("TRD vs non-TRD") == "TRDVsNonTRD"


def test_exactly_one_data_source(tmp_path):
    with pytest.raises(InputError, match="exactly one of `images`"):
        run_glm(pd.DataFrame({"age": [1.0, 2.0]}, index=["a", "b"]), model="age",
                contrasts={"age": "age"}, out_dir=tmp_path)
