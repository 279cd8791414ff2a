"""Longitudinal (Study B) study files: valid files load; mistakes name file, line and key."""

import textwrap

import pandas as pd
import pytest

from graymatter.config import (LongitudinalSpec, StudyFileError, StudySpec, load_any_study,
                               load_longitudinal_study, load_study)
from graymatter.datasets.study_b import simulate_study_b_cohort
from graymatter.io.atomic import write_tsv
from graymatter.workflows.enrichment import default_max_size
from graymatter.workflows.study_b import run_study_b


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAYMATTER_DATA", str(tmp_path / "empty-cache"))
    cohort = simulate_study_b_cohort(n_subjects=12, random_state=2)
    write_tsv(tmp_path / "participants.tsv", cohort.participants.drop(columns="delta_tiv"))
    write_tsv(tmp_path / "pre.tsv", cohort.pre)
    write_tsv(tmp_path / "post.tsv", cohort.post)
    (tmp_path / "expr.csv").write_text("region,G1\nlh_bankssts,0.1\n")
    (tmp_path / "cells.gmt").write_text("A\tdesc\tG1\tG2\n")
    return tmp_path


VALID = """\
    type: longitudinal
    name: toy ECT
    participants: participants.tsv
    pre: pre.tsv
    post: post.tsv
    tiv:
      pre: tiv_pre
      post: tiv_post
    covariates: 1 + delta_tiv
    n_perm: 99
    random_state: 4
    clinical_pls:
      clinical_pre: hamd_pre
      clinical_post: hamd_post
      n_perm: 99
      cv: 4
    transcriptomics:
      expression: expr.csv
      hemisphere: lh
      n_spins: 10
    enrichment:
      gene_sets:
        - cells.gmt
        - source: cells.gmt
          name: again
          methods: [ora]
      n_perm: 100
    output: out
    """


def _write(folder, text):
    path = folder / "ect.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def _error(folder, text) -> str:
    with pytest.raises(StudyFileError) as info:
        load_longitudinal_study(_write(folder, text))
    return str(info.value)


def test_valid_file_loads_with_resolved_paths_and_lines(folder):
    spec = load_longitudinal_study(_write(folder, VALID))
    assert isinstance(spec, LongitudinalSpec)
    assert spec.pre == folder / "pre.tsv" and spec.output == folder / "out"
    assert spec.covariates == "1 + delta_tiv" and spec.n_perm == 99 and spec.random_state == 4
    assert spec.clinical_pls["cv"] == 4
    assert spec.transcriptomics["expression"] == folder / "expr.csv"
    sets = spec.enrichment["gene_sets"]
    assert [s["name"] for s in sets] == ["cells", "again"]
    assert sets[0]["methods"] == ["gsea", "ora", "spatial"] and sets[1]["methods"] == ["ora"]
    # sizes not given stay None: run_enrichment declares the default (500 for a GMT file)
    assert sets[0]["max_size"] is None and sets[0]["format"] == "gmt"
    assert default_max_size(sets[0]["path"]) == 500
    assert spec.where("clinical_pls", "cv") == "ect.yaml, line 16"
    assert isinstance(load_any_study(folder / "ect.yaml"), LongitudinalSpec)


def test_study_a_files_still_load_and_load_study_redirects_longitudinal_files(folder):
    (folder / "regions.csv").write_text("participant_id,a\nsub-01,1\n")
    path = folder / "a.yaml"
    path.write_text("participants: participants.tsv\nregions: regions.csv\nmodel: 1 + age\n"
                    "contrasts:\n  age: age\n")
    assert isinstance(load_any_study(path), StudySpec)
    with pytest.raises(StudyFileError, match=r"ect.yaml, line 1: .*load_longitudinal_study"):
        load_study(_write(folder, VALID))


def test_unknown_key_names_line_and_suggests(folder):
    message = _error(folder, VALID.replace("covariates:", "covariate:"))
    assert "ect.yaml, line 9" in message and "unknown key 'covariate'" in message
    assert "Did you mean 'covariates'?" in message
    message = _error(folder, VALID.replace("n_spins: 10", "n_spin: 10"))
    assert "line 20" in message and "Did you mean 'n_spins'?" in message
    message = _error(folder, VALID.replace("clinical_post: hamd_post", "clinical_pst: hamd_post"))
    assert "line 14" in message and "Did you mean 'clinical_post'?" in message


def test_missing_file_names_key_line_and_where_it_looked(folder):
    message = _error(folder, VALID.replace("post: post.tsv", "post: post_ses2.tsv"))
    assert "line 5" in message and "'post' names post_ses2.tsv, which does not exist" in message
    assert str(folder / "post_ses2.tsv") in message
    message = _error(folder, VALID.replace("- cells.gmt", "- cellz.gmt"))
    assert "line 23" in message and "'source' names cellz.gmt, which does not exist" in message


def test_wrong_types_and_choices(folder):
    assert "'n_perm' must be an integer; got 'many'" in _error(
        folder, VALID.replace("n_perm: 99\n    random", "n_perm: many\n    random"))
    message = _error(folder, VALID.replace("cv: 4", "cv: kfold"))
    assert "line 16" in message and "'cv' must be loo, an integer >= 2 or null" in message
    message = _error(folder, VALID.replace("hemisphere: lh", "hemisphere: left"))
    assert "line 19" in message and "lh, rh, both" in message
    message = _error(folder, VALID.replace("tiv:\n      pre: tiv_pre\n      post: tiv_post",
                                           "tiv: tiv_pre"))
    assert "line 6" in message and "'tiv' must be a mapping; got 'tiv_pre'" in message
    message = _error(folder, VALID.replace("methods: [ora]", "methods: [ora, gseaa]"))
    assert "unknown enrichment method(s) ['gseaa']" in message


def test_missing_blocks_and_inconsistent_inputs(folder):
    assert "give either both 'pre' and 'post'" in _error(
        folder, VALID.replace("    post: post.tsv\n", ""))
    assert "clinical_pls needs 'clinical_pre'" in _error(
        folder, VALID.replace("      clinical_pre: hamd_pre\n", ""))
    text = VALID[:VALID.index("    transcriptomics:")] + VALID[VALID.index("    enrichment:"):]
    assert "add a 'transcriptomics' block" in _error(folder, text)
    fs = VALID.replace("pre: pre.tsv\n    post: post.tsv\n",
                       "freesurfer:\n      subjects_dir: .\n")
    assert "give session_pre and session_post" in _error(folder, fs)
    assert "'type' must be longitudinal" in _error(folder, VALID.replace("longitudinal", "vbm"))


def test_dataset_names_resolve_through_the_cache_or_say_how_to_fetch(folder):
    message = _error(folder, VALID.replace("expression: expr.csv", "expression: ahba-dk83"))
    assert "line 18" in message and "graymatter fetch ahba-dk83" in message
    message = _error(folder, VALID.replace("expression: expr.csv", "expression: ahba-dk38"))
    assert "neither a registered dataset nor an existing file" in message
    assert "Did you mean the dataset 'ahba-dk83'?" in message


def test_run_reports_missing_columns_and_bad_formulas_at_their_line(folder):
    text = VALID.replace("post: tiv_post", "post: tiv_after")
    text = text[:text.index("    clinical_pls:")] + "    output: out\n"
    with pytest.raises(StudyFileError, match=r"ect.yaml, line 8: participants has no column "
                                             r"'tiv_after'"):
        run_study_b(_write(folder, text), progress=False)
    bad = VALID.replace("1 + delta_tiv", "1 + delta_tivv")
    with pytest.raises(StudyFileError, match=r"ect.yaml, line 9: .*'delta_tivv'"):
        run_study_b(_write(folder, bad), progress=False)
    bad = VALID.replace("clinical_post: hamd_post", "clinical_post: hamd_after")
    with pytest.raises(StudyFileError, match=r"ect.yaml, line 14: participants has no column "
                                             r"'hamd_after'"):
        run_study_b(_write(folder, bad), progress=False)


def test_minimal_file_runs_paired_only_and_adds_delta_tiv(folder):
    text = VALID[:VALID.index("    clinical_pls:")] + "    output: out\n"
    out = run_study_b(_write(folder, text), progress=False)
    assert out.clinical is None and out.transcriptomics is None
    assert len(out.paired.table) == 68
    table = pd.read_csv(folder / "out" / "paired" / "paired_change.tsv", sep="\t", index_col=0)
    assert table["t"].to_numpy() == pytest.approx(out.paired.table["t"].to_numpy(), rel=1e-8)  # TSV keeps 10 digits
