"""The command line: version, a full run, and readable errors with exit status 2."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from graymatter import __version__
from graymatter.cli import main


@pytest.fixture
def study(tmp_path, rng):
    n = 24
    participants = pd.DataFrame({
        "participant_id": [f"sub-{i:02d}" for i in range(n)],
        "group": np.repeat(["HC", "MDD", "BD"], 8),
        "age": rng.normal(40, 10, n).round(1),
    })
    regions = pd.DataFrame(rng.normal(size=(n, 5)), columns=[f"roi{i}" for i in range(5)])
    regions.insert(0, "participant_id", participants.participant_id)
    participants.to_csv(tmp_path / "participants.tsv", sep="\t", index=False)
    regions.sample(frac=1.0, random_state=1).to_csv(tmp_path / "regions.csv", index=False)
    return tmp_path


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    first, deps = capsys.readouterr().out.strip().splitlines()
    assert first == f"graymatter {__version__}"
    import numpy
    import scipy
    assert f"numpy {numpy.__version__}" in deps and f"scipy {scipy.__version__}" in deps
    assert "antspyx " in deps and "python " in deps


def test_glm_on_regions(study, capsys):
    code = main(["--quiet", "glm", "--participants", str(study / "participants.tsv"),
                 "--regions", str(study / "regions.csv"), "--model", "0 + group + age",
                 "--level", "group=HC,MDD,BD",
                 "--contrast", "MDD > HC=MDD - HC",
                 "--contrast", "patients < HC=HC - mean(MDD, BD)",
                 "--f-contrast", "group=MDD - HC; BD - HC", "--out", str(study / "out")])
    assert code == 0, capsys.readouterr().err
    table = pd.read_csv(study / "out" / "contrast-MDDgtHC_stat.tsv", sep="\t", index_col=0)
    assert list(table.index) == [f"roi{i}" for i in range(5)]
    assert {"t", "p", "z", "df", "cohens_d"} <= set(table.columns)
    assert (study / "out" / "contrast-group_stat.tsv").is_file()


def test_unknown_level_is_one_readable_error(study, capsys):
    code = main(["glm", "--participants", str(study / "participants.tsv"),
                 "--regions", str(study / "regions.csv"), "--model", "0 + group + age",
                 "--contrast", "x=MDD - nonTRD", "--out", str(study / "out")])
    err = capsys.readouterr().err
    assert code == 2
    error_lines = [line for line in err.splitlines() if line.startswith("graymatter: error:")]
    assert len(error_lines) == 1
    assert "nonTRD" in error_lines[0] and "HC" in error_lines[0] and "Traceback" not in err


def test_installed_command_exits_2_without_traceback(study):
    result = subprocess.run(
        [sys.executable, "-m", "graymatter", "glm", "--participants",
         str(study / "missing.tsv"), "--regions", str(study / "regions.csv"),
         "--model", "1 + age", "--contrast", "age=age", "--out", str(study / "out")],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "missing.tsv" in result.stderr and "Traceback" not in result.stderr


def test_bad_contrast_option_syntax(study, capsys):
    code = main(["glm", "--participants", str(study / "participants.tsv"),
                 "--regions", str(study / "regions.csv"), "--model", "1 + age",
                 "--contrast", "age", "--out", str(study / "out")])
    assert code == 2
    assert "NAME=VALUE" in capsys.readouterr().err
