"""A study file that starts from raw T1 images: preprocessing, then the GLM, then the QC report."""

import re
import textwrap

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from graymatter.workflows.study import run_study

pytest.importorskip("ants", reason="preprocessing needs antspyx (graymatter[preprocess])")


@pytest.fixture(scope="module")
def study(shared_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("t1study")
    t1 = [shared_data / "t1" / "IXI012-HH-1211_T1.nii.gz",
          shared_data / "t1" / "IXI015-HH-1258_T1.nii.gz"]
    # Subject ids follow the preprocessing naming rule: "sub-" + the file's letters and digits.
    pd.DataFrame({"participant_id": ["sub-IXI012HH1211", "sub-IXI015HH1258"],
                  "age": [38.8, 34.1]}).to_csv(folder / "participants.tsv", sep="\t", index=False)
    (folder / "study.yaml").write_text(textwrap.dedent(f"""\
        name: two IXI subjects from raw T1
        participants: participants.tsv
        preprocess:
          t1: [{t1[0]}, {t1[1]}]
          resolution: 2
          fwhm: 8
          n_jobs: 2
          syn_iterations: [20, 10, 0]   # coarser than the default, to keep the test short
        model: "1"
        contrasts:
          mean: Intercept
        output: results
        """))
    return folder, run_study(folder / "study.yaml", progress=False)


def test_glm_runs_on_the_preprocessed_maps(study):
    folder, out = study
    glm = out.glm
    assert glm.grid.shape == (91, 109, 91)  # the 2 mm MNI grid
    smoothed = sorted((folder / "results" / "preprocess").glob("sub-*/anat/*smooth*_probseg.nii.gz"))
    assert len(smoothed) == 2
    first = nib.load(smoothed[0]).get_fdata()[glm.grid.mask]
    second = nib.load(smoothed[1]).get_fdata()[glm.grid.mask]
    # One-sample t of two subjects: estimate = their mean, at every voxel.
    np.testing.assert_allclose(glm.results["mean"].estimate, (first + second) / 2, rtol=1e-5,
                               atol=1e-6)
    volumes = pd.read_csv(folder / "results" / "participants_with_volumes.tsv", sep="\t",
                          index_col=0)
    assert volumes["tiv"].between(1000, 2000).all()


def test_report_has_the_qc_section(study):
    folder, _ = study
    html = (folder / "results" / "report.html").read_text()
    qc = html[html.index('<section id="qc">'):html.index('<section id="results">')]
    assert "Preprocessing quality control" in qc
    assert len(re.findall(r'<img src="data:image/png;base64,', qc)) == 2
    assert "sub-IXI012HH1211" in qc and "sub-IXI015HH1258" in qc


def test_report_states_the_qc_decision(study):
    """The run says what it did with QC failures (here none, and no exclude_qc choice)."""
    folder, _ = study
    html = (folder / "results" / "report.html").read_text()
    qc = html[html.index('<section id="qc">'):html.index('<section id="results">')]
    assert "Subjects that failed QC (qc_status fail; reasons in the table):\nnone." in qc
    assert "QC decision for the GLM (exclude_qc: none): 2 subject(s) kept" in qc
    table = pd.read_csv(folder / "results" / "preprocess" / "qc.tsv", sep="\t", index_col=0)
    assert set(table["qc_status"]) <= {"pass", "warn"}
