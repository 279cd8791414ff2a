"""Model formulas from users never run code: CLI, study files, longitudinal covariates and API.

Every payload below creates a marker file when formulaic evaluates it as Python (each one did
before formulas were parsed against graymatter's grammar, except the text literal). The tests
prove no code ran (the marker does not exist afterwards), that the refusal is one readable
message naming the offending term, and that no traceback is printed.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from graymatter.cli import main
from graymatter.errors import DesignError
from graymatter.stats.design import make_design
from graymatter.stats.formula import parse_formula
from graymatter.stats.paired import paired_change
from graymatter.workflows.glm import run_glm

# name -> (term added to a valid model with {m} for the marker path, text the message must quote)
PAYLOADS = {
    "braces": ("{__import__('os').system('touch {m}')}", "{__import__('os').system("),
    "I": ("I(__import__('os').system('touch {m}'))", "I(__import__('os').system("),
    "subclasses": ("I(next(filter(lambda c: c.__name__ == 'Popen', ().__class__.__base__"
                   ".__subclasses__()))(['touch', '{m}']).wait())", "I(next(filter(lambda c:"),
    "lambda": ("I((lambda: __import__('os').system('touch {m}'))())", "I((lambda: __import__("),
    "comprehension": ("I([__import__('os').system('touch {m}') for age in [0]][0])",
                      "I([__import__('os').system("),
    "attribute_chain": ("I(np.__builtins__['__import__']('os').system('touch {m}'))",
                        "I(np.__builtins__["),
    "dunder": ("{np.__dict__['__builtins__']['__import__']('os').system('touch {m}')}",
               "{np.__dict__["),
    "eval": ("eval(\"__import__('os').system('touch {m}')\")", "eval("),
    "levels": ("C(group, levels=[__import__('os').system('touch {m}')])",
               "C(group, levels=[__import__("),
    "getattr": ("log(getattr(__import__('os'), 'system')('touch {m}'))", "getattr(__import__("),
    "text_literal": ("'touch {m}'", "'touch "),
}
BASE = "0 + group + age + "


def _payload(name, marker) -> tuple[str, str]:
    term, culprit = PAYLOADS[name]
    return BASE + term.replace("{m}", str(marker)), culprit


@pytest.fixture
def study(tmp_path, rng):
    n = 12
    ids = [f"sub-{i:02d}" for i in range(n)]
    pd.DataFrame({"participant_id": ids, "group": ["HC", "MDD"] * 6,
                  "age": rng.normal(40, 9, n).round(1),
                  "tiv_pre": rng.normal(1500, 100, n), "tiv_post": rng.normal(1500, 100, n)}
                 ).to_csv(tmp_path / "participants.tsv", sep="\t", index=False)
    for name in ("regions", "pre", "post"):
        table = pd.DataFrame(rng.normal(3, 0.2, size=(n, 4)), columns=list("abcd"))
        table.insert(0, "participant_id", ids)
        table.to_csv(tmp_path / f"{name}.csv", index=False)
    return tmp_path


def _refused(message: str, culprit: str) -> None:
    assert "not allowed" in message and culprit in message, message
    assert "Traceback" not in message


@pytest.mark.parametrize("name", list(PAYLOADS))
def test_api_make_design_refuses_and_runs_nothing(name, tmp_path, rng):
    marker = tmp_path / "PWNED"
    formula, culprit = _payload(name, marker)
    participants = pd.DataFrame({"group": ["a", "b"] * 4, "age": rng.normal(40, 9, 8)},
                                index=[f"s{i}" for i in range(8)])
    with pytest.raises(DesignError) as info:
        make_design(participants, formula)
    assert not marker.exists()
    _refused(str(info.value), culprit)
    with pytest.raises(DesignError):  # the grammar alone refuses it: nothing reaches formulaic
        parse_formula(formula)


@pytest.mark.parametrize("name", ["braces", "I", "subclasses", "comprehension", "getattr"])
def test_api_workflows_refuse(name, study):
    marker = study / "PWNED"
    formula, culprit = _payload(name, marker)
    with pytest.raises(DesignError) as info:
        run_glm(study / "participants.tsv", regions=study / "regions.csv", model=formula,
                contrasts={"d": "HC - MDD"}, out_dir=study / "out")
    _refused(str(info.value), culprit)
    pre = pd.read_csv(study / "pre.csv", index_col=0)
    covs = pd.read_csv(study / "participants.tsv", sep="\t", index_col=0)
    with pytest.raises(DesignError) as info:
        paired_change(pre, pre + 0.1, covariates=covs, formula="1 + " + formula[len(BASE):],
                      n_perm=0)
    _refused(str(info.value), culprit)
    assert not marker.exists() and not (study / "out").exists()


@pytest.mark.parametrize("name", list(PAYLOADS))
def test_cli_glm_model_option(name, study, capsys):
    marker = study / "PWNED"
    formula, culprit = _payload(name, marker)
    code = main(["glm", "--participants", str(study / "participants.tsv"), "--regions",
                 str(study / "regions.csv"), "--model", formula, "--contrast", "d=HC - MDD",
                 "--out", str(study / "out")])
    captured = capsys.readouterr()
    assert code == 2 and not marker.exists()
    assert captured.err.startswith("graymatter: error: the model formula")
    _refused(captured.err + captured.out, culprit)


@pytest.mark.parametrize("name", ["braces", "I"])
def test_installed_command_refuses_issue_payloads(name, study):
    marker = study / "PWNED"
    formula, culprit = _payload(name, marker)
    result = subprocess.run(
        [sys.executable, "-m", "graymatter", "glm", "--participants",
         str(study / "participants.tsv"), "--regions", str(study / "regions.csv"),
         "--model", formula, "--contrast", "d=HC - MDD", "--out", str(study / "out")],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and not marker.exists()
    _refused(result.stderr + result.stdout, culprit)


@pytest.mark.parametrize("name", list(PAYLOADS))
def test_study_file_model_is_refused_with_its_line(name, study, capsys):
    marker = study / "PWNED"
    formula, culprit = _payload(name, marker)
    path = study / "study.yaml"
    path.write_text(textwrap.dedent("""\
        participants: participants.tsv
        regions: regions.csv
        model: MODEL
        contrasts:
          d: HC - MDD
        """).replace("MODEL", _yaml_text(formula)))
    code = main(["run", str(path)])
    captured = capsys.readouterr()
    assert code == 2 and not marker.exists()
    assert "study.yaml, line 3:" in captured.err
    _refused(captured.err + captured.out, culprit)


@pytest.mark.parametrize("name", ["braces", "I", "lambda", "dunder", "levels"])
def test_longitudinal_covariates_are_refused(name, study, capsys):
    marker = study / "PWNED"
    formula, culprit = _payload(name, marker)
    covariates = "1 + " + formula[len(BASE):]
    path = study / "ect.yaml"
    path.write_text(textwrap.dedent("""\
        type: longitudinal
        participants: participants.tsv
        pre: pre.csv
        post: post.csv
        covariates: COVARIATES
        n_perm: 9
        """).replace("COVARIATES", _yaml_text(covariates)))
    code = main(["run", str(path)])
    captured = capsys.readouterr()
    assert code == 2 and not marker.exists()
    assert "ect.yaml, line 5:" in captured.err
    _refused(captured.err + captured.out, culprit)
    # the same formula given to the longitudinal command is refused by the design step
    code = main(["longitudinal", "--participants", str(study / "participants.tsv"), "--pre",
                 str(study / "pre.csv"), "--post", str(study / "post.csv"), "--covariates",
                 covariates, "--n-perm", "9", "--out", str(study / "out")])
    captured = capsys.readouterr()
    assert code == 2 and not marker.exists()
    _refused(captured.err + captured.out, culprit)


def _yaml_text(text: str) -> str:
    """A YAML double-quoted scalar holding ``text`` exactly."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@pytest.mark.parametrize("formula, culprit", [
    ("age + age.__class__", "age.__class__"),
    ("age + lambda x: x", "lambda"),
    ("age + [x for x in age]", "[x for x in age]"),
    ("age + np.linalg.svd(age)", "np.linalg.svd(age)"),
    ("age + `x` + os.system", "os.system"),
    ("age @ group", "age @ group"),
    ("age + 2", "2"),
])
def test_other_terms_outside_the_grammar(formula, culprit):
    with pytest.raises(DesignError, match="not allowed") as info:
        parse_formula(formula)
    assert f"contains {culprit!r}" in str(info.value)


def test_allowed_transforms_match_formulaic(rng):
    """C(), levels, center(), scale() and log() build what formulaic builds from the same data."""
    from formulaic import model_matrix

    participants = pd.DataFrame({"group": rng.choice(["a", "b", "c"], 30),
                                 "age": rng.normal(40, 9, 30), "tiv": rng.normal(1500, 90, 30)},
                                index=[f"s{i}" for i in range(30)])
    formula = ("C(group, levels=['c', 'a', 'b']) + center(age) + scale(tiv) + np.log(tiv) "
               "+ C(group):age")
    design = make_design(participants, formula, center=False, allow_rank_deficient=True)
    reference = model_matrix(formula, participants)  # formulaic's own evaluation, trusted input
    assert design.columns == [str(c) for c in reference.columns]
    np.testing.assert_allclose(design.X, np.asarray(reference, dtype=float), rtol=1e-12)
    assert parse_formula("~ `left hippocampus` + age").text == "`left hippocampus` + age"
