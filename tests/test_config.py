"""Study files: valid files load; every mistake names the file, the line and the key."""

import textwrap

import pandas as pd
import pytest

from graymatter.config import StudyFileError, load_study
from graymatter.workflows.study import run_study


@pytest.fixture
def folder(tmp_path, rng):
    n = 12
    pd.DataFrame({"participant_id": [f"sub-{i:02d}" for i in range(n)],
                  "group": ["HC", "MDD"] * 6, "age": rng.normal(40, 9, n).round(1),
                  "weight": rng.normal(70, 9, n).round(1)}
                 ).to_csv(tmp_path / "participants.tsv", sep="\t", index=False)
    regions = pd.DataFrame(rng.normal(size=(n, 4)), columns=list("abcd"))
    regions.insert(0, "participant_id", [f"sub-{i:02d}" for i in range(n)])
    regions.to_csv(tmp_path / "regions.csv", index=False)
    return tmp_path


def _write(folder, text):
    path = folder / "study.yaml"
    path.write_text(textwrap.dedent(text))
    return path


VALID = """\
    name: toy
    participants: participants.tsv
    regions: regions.csv
    model: 0 + group + age
    levels:
      group: [HC, MDD]
    contrasts:
      HC > MDD: HC - MDD
      groups: [HC - MDD]
    inference:
      methods: [permutation]
      n_perm: 99
      random_state: 3
    demographics:
      group: group
      variables: [age, weight]
    output: out
    """


def test_valid_study_runs(folder):
    spec = load_study(_write(folder, VALID))
    assert spec.participants == folder / "participants.tsv"
    assert spec.where("contrasts", "HC > MDD") == "study.yaml, line 8"
    out = run_study(spec, progress=False)
    assert (folder / "out" / "table1.md").is_file()
    table = pd.read_csv(folder / "out" / "contrast-HCgtMDD_stat.tsv", sep="\t", index_col=0)
    assert {"p_fwe_perm", "p_fdr"} <= set(table.columns)
    assert out.table1.values.loc["age", "test"] == "t test"


def test_unknown_key_suggests_the_closest(folder):
    path = _write(folder, VALID.replace("    contrasts:", "    contrast:"))
    with pytest.raises(StudyFileError, match=r"line 7: unknown key 'contrast'\. Did you mean "
                                             r"'contrasts'\?"):
        load_study(path)
    path = _write(folder, VALID.replace("n_perm: 99", "nperm: 99"))
    with pytest.raises(StudyFileError, match=r"line 12: unknown key 'nperm'.*'n_perm'"):
        load_study(path)


def test_missing_file_names_key_and_line(folder):
    path = _write(folder, VALID.replace("regions: regions.csv", "regions: missing.csv"))
    with pytest.raises(StudyFileError, match=r"line 3: 'regions' names missing.csv, which does "
                                             r"not exist"):
        load_study(path)


def test_contrast_on_a_column_outside_the_model(folder):
    path = _write(folder, VALID.replace("HC > MDD: HC - MDD", "heavier: weight"))
    with pytest.raises(StudyFileError, match=r"line 8: .*'weight'"):
        run_study(path, progress=False)


def test_wrong_types_and_yaml_errors(folder):
    with pytest.raises(StudyFileError, match=r"line 12: 'n_perm' must be an integer"):
        load_study(_write(folder, VALID.replace("n_perm: 99", "n_perm: many")))
    with pytest.raises(StudyFileError, match="not valid YAML"):
        load_study(_write(folder, "participants: [a\nmodel: x\n"))
    with pytest.raises(StudyFileError, match="missing required key"):
        load_study(_write(folder, "participants: participants.tsv\n"))
    with pytest.raises(StudyFileError, match=r"line 1[0-9]: .*height"):
        run_study(_write(folder, VALID.replace("random_state: 3",
                                               "random_state: 3\n      height_p: 0.01\n"
                                               "      height_t: 3.0")), progress=False)


def test_preprocess_block_errors(folder):
    base = VALID.replace("    regions: regions.csv\n", "").rstrip() + "\n"
    with pytest.raises(StudyFileError, match="exactly one of 'images'"):
        load_study(_write(folder, VALID.rstrip() + "\n    preprocess:\n      t1: '*.nii.gz'\n"))
    with pytest.raises(StudyFileError, match=r"unknown key 'fwmh'.*'fwhm'"):
        load_study(_write(folder, base + "    preprocess:\n      t1: '*.nii.gz'\n"
                                         "      fwmh: 8\n"))
    with pytest.raises(StudyFileError, match="exactly one of 't1'"):
        load_study(_write(folder, base + "    preprocess:\n      resolution: 2\n"))
    spec = load_study(_write(folder, base + "    preprocess:\n      t1: 'raw/*.nii.gz'\n"
                                            "      resolution: 2\n"))
    assert spec.preprocess["t1"] == str(folder / "raw" / "*.nii.gz")


def test_preprocess_exclude_qc_choice(folder):
    base = VALID.replace("    regions: regions.csv\n", "").rstrip() + "\n"
    block = base + "    preprocess:\n      t1: 'raw/*.nii.gz'\n      exclude_qc: "
    assert load_study(_write(folder, block + "fail\n")).preprocess["exclude_qc"] == "fail"
    with pytest.raises(StudyFileError, match="exclude_qc.*none, fail or warn.*'maybe'"):
        load_study(_write(folder, block + "maybe\n"))
