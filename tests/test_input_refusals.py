"""Broken or ambiguous inputs get one clear message (never "this is a bug", never a traceback).

Covers: negative seeds, empty or repeated contrasts, repeated keys in a study file, a study
file that is not UTF-8, an empty gene-set file, a truncated spin cache, and Ctrl-C.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

from graymatter.cli import main
from graymatter.errors import GraymatterWarning, InputError
from graymatter.transcriptomics.genesets import read_gene_table
from graymatter.workflows.inference import InferenceSettings


@pytest.fixture
def study(tmp_path, rng):
    n = 12
    ids = [f"sub-{i:02d}" for i in range(n)]
    pd.DataFrame({"participant_id": ids, "group": ["HC", "MDD"] * 6,
                  "age": rng.normal(40, 9, n).round(1)}
                 ).to_csv(tmp_path / "participants.tsv", sep="\t", index=False)
    regions = pd.DataFrame(rng.normal(size=(n, 4)), columns=list("abcd"))
    regions.insert(0, "participant_id", ids)
    regions.to_csv(tmp_path / "regions.csv", index=False)
    return tmp_path


STUDY = """\
    participants: participants.tsv
    regions: regions.csv
    model: 0 + group + age
    contrasts:
      HC > MDD: HC - MDD
    inference:
      methods: [permutation]
      n_perm: 19
    output: out
    """


def _run(study, text, capsys, name="study.yaml", encoding="utf-8") -> str:
    path = study / name
    path.write_bytes(textwrap.dedent(text).encode(encoding))
    code = main(["run", str(path)])
    captured = capsys.readouterr()
    err = captured.err + captured.out
    assert code == 2, err
    assert err.startswith("graymatter: error:") and "Traceback" not in err
    assert "this is a bug" not in err
    return err


def _glm(study, *extra) -> list[str]:
    return ["glm", "--participants", str(study / "participants.tsv"), "--regions",
            str(study / "regions.csv"), "--model", "0 + group + age", "--out", str(study / "o"),
            *extra]


# -- seeds -----------------------------------------------------------------------------------------

def test_negative_seed_option(study, capsys):
    with pytest.raises(SystemExit) as info:
        main(_glm(study, "--contrast", "d=HC - MDD", "--inference", "permutation",
                  "--seed", "-1"))
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert "argument --seed" in err and "non-negative integer" in err and "got -1" in err
    assert "Traceback" not in err and not (study / "o").exists()
    with pytest.raises(InputError, match="random_state .* non-negative integer.*got -1"):
        InferenceSettings(methods=("permutation",), random_state=-1)


def test_negative_random_state_in_study_file(study, capsys):
    err = _run(study, STUDY.replace("n_perm: 19", "n_perm: 19\n      random_state: -1"), capsys)
    assert "study.yaml, line 9:" in err and "'random_state'" in err and "got -1" in err


# -- contrasts -------------------------------------------------------------------------------------

@pytest.mark.parametrize("empty", ["", " {}"])
def test_empty_contrasts_in_study_file(study, capsys, empty):
    err = _run(study, STUDY.replace("contrasts:\n      HC > MDD: HC - MDD",
                                    f"contrasts:{empty}"), capsys)
    assert "study.yaml, line 4:" in err and "'contrasts' is empty" in err


def test_repeated_contrast_option(study, capsys):
    code = main(_glm(study, "--contrast", "X=HC - MDD", "--contrast", "X=MDD - HC"))
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "contrast name 'X' is given twice" in err
    assert "--contrast 'X=HC - MDD'" in err and "--contrast 'X=MDD - HC'" in err
    assert not (study / "o").exists()


def test_repeated_contrast_key_in_study_file(study, capsys):
    err = _run(study, STUDY.replace("HC > MDD: HC - MDD",
                                    "HC > MDD: HC - MDD\n      HC > MDD: MDD - HC"), capsys)
    assert "study.yaml, line 6:" in err and "'HC > MDD' appears twice (lines 5 and 6)" in err
    assert not (study / "out").exists()


def test_repeated_model_key_in_study_file(study, capsys):
    err = _run(study, STUDY.replace("model: 0 + group + age",
                                    "model: 0 + group + age\n    model: 0 + group"), capsys)
    assert "study.yaml, line 4:" in err and "'model' appears twice (lines 3 and 4)" in err


def test_repeated_key_in_longitudinal_study_file(study, capsys):
    err = _run(study, """\
        type: longitudinal
        participants: participants.tsv
        pre: regions.csv
        post: regions.csv
        n_perm: 9
        n_perm: 99
        """, capsys, name="ect.yaml")
    assert "ect.yaml, line 6:" in err and "'n_perm' appears twice (lines 5 and 6)" in err


def test_python_tag_in_study_file_runs_nothing(study, capsys):
    marker = study / "PWNED"
    err = _run(study, STUDY.replace("name: toy", "").replace(
        "participants: participants.tsv",
        f'participants: !!python/object/apply:os.system ["touch {marker}"]'), capsys)
    assert "study.yaml, line 1:" in err and "python/object/apply:os.system" in err
    assert not marker.exists()


# -- files -----------------------------------------------------------------------------------------

def test_latin1_study_file(study, capsys):
    text = STUDY.replace("output: out", "output: out\n    name: étude")
    err = _run(study, text, capsys, encoding="latin-1")
    assert "study.yaml, line 10:" in err and "not UTF-8" in err and "0xe9" in err


def test_empty_gene_set_table(study, capsys, monkeypatch):
    monkeypatch.setenv("GRAYMATTER_DATA", str(study / "cache"))
    (study / "expr.csv").write_text("region,G1\nlh_a,0.1\n")
    (study / "cells.csv").write_bytes(b"")
    err = _run(study, """\
        type: longitudinal
        participants: participants.tsv
        pre: regions.csv
        post: regions.csv
        transcriptomics:
          expression: expr.csv
        enrichment:
          gene_sets: [cells.csv]
        """, capsys, name="ect.yaml")
    assert "ect.yaml, line 8:" in err and "cells.csv is empty (0 bytes)" in err
    with pytest.raises(InputError, match=r"gene table .*cells\.csv is empty \(0 bytes"):
        read_gene_table(study / "cells.csv")


@pytest.mark.parametrize("keep", [100, 400])  # inside the header / inside the data
def test_truncated_spin_cache_is_recomputed(tmp_path, rng, capsys, keep):
    n = 12
    (tmp_path / "expr.csv").write_text(pd.DataFrame(
        rng.standard_normal((n, 40)), index=[f"lh_r{i}" for i in range(n)],
        columns=[f"G{j}" for j in range(40)]).rename_axis("region").to_csv())
    pd.DataFrame({"region": [f"lh_r{i}" for i in range(n)], "t": rng.standard_normal(n)}
                 ).to_csv(tmp_path / "map.csv", index=False)
    xyz = rng.standard_normal((n, 3))
    xyz = 100 * xyz / np.linalg.norm(xyz, axis=1, keepdims=True)
    (tmp_path / "cent.txt").write_text("".join(f"lh_r{i} {x} {y} {z}\n"
                                               for i, (x, y, z) in enumerate(xyz)))

    def run(out):
        return main(["--quiet", "transcriptomics", "--map", str(tmp_path / "map.csv"),
                     "--expression", str(tmp_path / "expr.csv"), "--centroids",
                     str(tmp_path / "cent.txt"), "--n-spins", "40", "--n-boot", "10",
                     "--n-components", "1", "--spin-cache", str(tmp_path / "cache"),
                     "--out", str(tmp_path / out)])

    assert run("first") == 0
    (cache,) = (tmp_path / "cache").glob("spins_*.npy")
    good = np.load(cache)
    capsys.readouterr()
    cache.write_bytes(cache.read_bytes()[:keep])
    assert run("second") == 0
    err = capsys.readouterr().err
    assert f"the spin cache file {cache} is unreadable" in err and "recomputed" in err
    assert "Traceback" not in err
    np.testing.assert_array_equal(np.load(cache), good)  # rewritten whole
    p_spin = [json.loads((tmp_path / out / "transcriptomics.json").read_text())["results"]["p_spin"]
              for out in ("first", "second")]
    assert p_spin[0] == p_spin[1] and p_spin[0] is not None


# -- Ctrl-C ----------------------------------------------------------------------------------------

def test_ctrl_c_exits_130_with_one_line(study, monkeypatch, capsys):
    from graymatter import cli

    parser, commands = cli.build_parser()

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", lambda: (parser, {**commands, "glm": interrupted}))
    assert main(_glm(study, "--contrast", "d=HC - MDD")) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("graymatter: interrupted (Ctrl-C). Kept:")
    assert str(study / "o") in err and "Traceback" not in err


def test_ctrl_c_on_the_installed_command(study, rng):
    n = 12
    wide = pd.DataFrame(rng.normal(size=(n, 3000)))
    wide.insert(0, "participant_id", [f"sub-{i:02d}" for i in range(n)])
    wide.to_csv(study / "wide.csv", index=False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "graymatter", "glm", "--participants",
         str(study / "participants.tsv"), "--regions", str(study / "wide.csv"), "--model",
         "0 + group + age", "--contrast", "d=HC - MDD", "--inference", "permutation",
         "--n-perm", "100000000", "--out", str(study / "o")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        first = proc.stderr.readline()  # the run has started (participants read)
        assert first.startswith("graymatter:"), first
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "graymatter: interrupted (Ctrl-C)" in err and "Traceback" not in err
