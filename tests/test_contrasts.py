"""Contrast expressions: weights for the Study A contrasts, F contrasts, and readable errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from graymatter.errors import ContrastError
from graymatter.stats.contrasts import Contrast, check_estimable, parse_contrast, parse_contrasts
from graymatter.stats.design import make_design

CELLS = {"TRD_UP": 26, "TRD_BP": 15, "nonTRD_UP": 16, "nonTRD_BP": 24, "HC": 44}
LEVELS = list(CELLS)
MEDS = ["antidepressants", "lithium", "anticonvulsants", "antipsychotics", "benzodiazepines"]
FORMULA_A = "0 + group + age + tiv + sex + voxel_size + " + " + ".join(MEDS)


def study_a(rng: np.random.Generator) -> pd.DataFrame:
    group = np.repeat(list(CELLS), list(CELLS.values()))
    n = len(group)
    frame = pd.DataFrame({
        "group": group,
        "age": rng.normal(46.5, 9.0, n),
        "tiv": rng.normal(1450.0, 130.0, n),
        "sex": rng.choice(["M", "F"], n),
        "voxel_size": rng.choice([1.1453, 0.8875], n),
    }, index=[f"sub-{i:03d}" for i in range(1, n + 1)])
    for med in MEDS:
        frame[med] = np.where(frame["group"] != "HC", rng.integers(0, 2, n), 0)
    return frame


@pytest.fixture
def participants(rng):
    return study_a(rng)


@pytest.fixture
def design(participants):
    return make_design(participants, FORMULA_A, levels={"group": LEVELS})


def weights(design, **named):
    """Expected weight vector from {column: weight}."""
    out = np.zeros(len(design.columns))
    for column, w in named.items():
        out[design.columns.index(column)] = w
    return out


def cells(*ws):
    return dict(zip([f"group[{lvl}]" for lvl in LEVELS], ws))


@pytest.mark.parametrize("expression, expected", [
    ("TRD_UP + TRD_BP - nonTRD_UP - nonTRD_BP", cells(1, 1, -1, -1, 0)),
    ("HC - mean(TRD_UP, TRD_BP, nonTRD_UP, nonTRD_BP)", cells(-0.25, -0.25, -0.25, -0.25, 1)),
    ("mean(TRD_UP, TRD_BP, nonTRD_UP, nonTRD_BP) - HC", cells(0.25, 0.25, 0.25, 0.25, -1)),
    ("TRD_BP - TRD_UP", cells(-1, 1, 0, 0, 0)),
    ("nonTRD_BP - nonTRD_UP", cells(0, 0, -1, 1, 0)),
    ("0.5*HC - 0.5*TRD_UP", cells(-0.5, 0, 0, 0, 0.5)),
    ("(HC - TRD_UP) / 2", cells(-0.5, 0, 0, 0, 0.5)),
    ("-(TRD_UP - 2 * HC) + -HC", cells(-1, 0, 0, 0, 1)),
    ("`group[HC]` - `group[TRD_UP]`", cells(-1, 0, 0, 0, 1)),
    ("mean(TRD_UP, mean(TRD_BP, HC))", cells(0.5, 0.25, 0, 0, 0.25)),
])
def test_study_a_t_contrast_weights(design, expression, expected):
    contrast = parse_contrast("c", expression, design)
    assert contrast.kind == "t" and contrast.matrix.shape == (1, 14)
    assert contrast.expressions == (expression,)
    np.testing.assert_allclose(contrast.vector, weights(design, **expected))


def test_covariate_contrast_and_full_column_name(design):
    lithium = parse_contrast("Li > non-Li", "lithium", design)
    np.testing.assert_array_equal(lithium.vector, weights(design, lithium=1))
    male = parse_contrast("M > F", "`sex[T.M]`", design)
    np.testing.assert_array_equal(male.vector, weights(design, **{"sex[T.M]": 1}))
    by_level = parse_contrast("M > F", "M", design)
    np.testing.assert_array_equal(by_level.vector, male.vector)


def test_f_contrast_from_list_and_semicolons(design):
    rows = ["TRD_UP - HC", "TRD_BP - HC", "nonTRD_UP - HC", "nonTRD_BP - HC"]
    contrast = parse_contrast("any group effect", rows, design)
    assert contrast.kind == "F" and contrast.matrix.shape == (4, 14)
    assert contrast.expressions == tuple(rows)
    np.testing.assert_array_equal(contrast.matrix[:, :5], np.hstack([np.eye(4), -np.ones((4, 1))]))
    assert not contrast.matrix[:, 5:].any()
    same = parse_contrast("any group effect", "; ".join(rows), design)
    np.testing.assert_array_equal(same.matrix, contrast.matrix)
    with pytest.raises(ContrastError, match="F contrast"):
        contrast.vector


def test_parse_contrasts_keeps_order_and_to_dict(design):
    spec = {"TRD > nonTRD": "TRD_UP + TRD_BP - nonTRD_UP - nonTRD_BP",
            "HC > MDD": "HC - mean(TRD_UP, TRD_BP, nonTRD_UP, nonTRD_BP)",
            "group F": ["TRD_UP - HC", "TRD_BP - HC"]}
    contrasts = parse_contrasts(spec, design)
    assert [c.name for c in contrasts] == list(spec)
    assert [c.kind for c in contrasts] == ["t", "t", "F"]
    assert all(isinstance(c, Contrast) for c in contrasts)
    summary = contrasts[1].to_dict(design.columns)
    assert json.loads(json.dumps(summary)) == summary
    assert summary["weights"][0]["group[HC]"] == 1.0
    assert summary["weights"][0]["group[TRD_BP]"] == -0.25
    assert summary["weights"][0]["age"] == 0.0
    assert len(contrasts[2].to_dict(design.columns)["weights"]) == 2


def test_unknown_level_lists_levels_and_suggests(design):
    with pytest.raises(ContrastError) as err:
        parse_contrast("TRD vs nonTRD", "TRD - nonTRD", design)
    message = str(err.value)
    assert "names 'TRD'" in message
    assert "not a level of 'group' (levels: TRD_UP, TRD_BP, nonTRD_UP, nonTRD_BP, HC)" in message
    assert "columns: group[TRD_UP]" in message and "benzodiazepines" in message
    with pytest.raises(ContrastError, match=r"names 'nonTRD_Bp'.*Did you mean nonTRD_BP\?"):
        parse_contrast("c", "TRD_UP - nonTRD_Bp", design)


def test_reference_level_explained(participants):
    treatment = make_design(participants, "1 + group", levels={"group": ["HC", *LEVELS[:4]]})
    with pytest.raises(ContrastError, match=r"'HC' is the reference level of 'group'.*'0 \+ group"):
        parse_contrast("c", "HC - TRD_UP", treatment)


@pytest.mark.parametrize("expression, problem", [
    ("HC - - ", r"expected a name, number or '\(' but the expression ended"),
    ("HC TRD_UP", r"unexpected 'TRD_UP' \(missing operator\?\) at position 4"),
    ("(HC - TRD_UP", r"expected '\)'"),
    ("HC - `group[TRD_UP]", r"unclosed backtick at position 6"),
    ("HC ^ TRD_UP", r"unexpected character '\^' at position 4"),
    ("sum(HC, TRD_UP)", r"unknown function 'sum'"),
    ("mean()", r"mean\(\) needs at least one argument"),
])
def test_syntax_errors_quote_expression(design, expression, problem):
    with pytest.raises(ContrastError, match=r"contrast 'bad': cannot parse '.*': " + problem):
        parse_contrast("bad", expression, design)


@pytest.mark.parametrize("expression, what", [
    ("HC * TRD_UP", "multiplies two design terms"),
    ("HC / age", "divides by a design term"),
    ("(HC - TRD_UP) * (age + 1)", "multiplies two design terms"),
])
def test_non_linear_rejected(design, expression, what):
    with pytest.raises(ContrastError, match=f"{what}; contrasts must be linear"):
        parse_contrast("nl", expression, design)


def test_constant_term_rejected(design):
    with pytest.raises(ContrastError, match=r"constant term \(2\)"):
        parse_contrast("c", "HC + 2", design)


@pytest.mark.parametrize("expression", ["HC - HC", "0", "0 * TRD_UP", "mean(HC, TRD_UP) - 0.5*HC - 0.5*TRD_UP"])
def test_zero_contrast_rejected(design, expression):
    with pytest.raises(ContrastError, match="all weights zero"):
        parse_contrast("z", expression, design)


def test_dependent_f_rows_rejected(design):
    with pytest.raises(ContrastError, match="linearly dependent"):
        parse_contrast("F", ["TRD_UP - HC", "TRD_BP - HC", "TRD_UP - TRD_BP"], design)


def test_ambiguous_alias(participants):
    participants["site"] = np.where(np.arange(125) % 2 == 0, "TRD_UP", "HC")  # shares level names
    design = make_design(participants, "0 + group + site", levels={"group": LEVELS})
    # site's only column is site[T.TRD_UP] (HC is its reference level), so only TRD_UP is shared
    assert "TRD_UP" not in design.aliases and design.aliases["HC"] == "group[HC]"
    with pytest.raises(ContrastError, match=r"'TRD_UP', which is ambiguous: it is a level of 'group', "
                                            r"'site'.*full column name in backticks, e.g. `group\[TRD_UP\]`"):
        parse_contrast("c", "TRD_UP - HC", design)
    ok = parse_contrast("c", "`group[TRD_UP]` - HC", design)
    np.testing.assert_array_equal(ok.vector[:6], [1, 0, 0, 0, -1, 0])


def test_interaction_contrast_with_backticks(participants):
    design = make_design(participants, "group * age", levels={"group": ["HC", *LEVELS[:4]]})
    slope = parse_contrast("age slope TRD_UP vs HC", "`group[T.TRD_UP]:age`", design)
    np.testing.assert_array_equal(slope.vector, weights(design, **{"group[T.TRD_UP]:age": 1}))
    mixed = parse_contrast("m", "`group[T.TRD_UP]:age` - 0.5 * `group[T.TRD_BP]:age` + age", design)
    np.testing.assert_array_equal(
        mixed.vector, weights(design, **{"group[T.TRD_UP]:age": 1, "group[T.TRD_BP]:age": -0.5, "age": 1}))


def test_non_estimable_contrast(participants):
    participants["age2"] = participants["age"]
    design = make_design(participants, "0 + group + age + age2", levels={"group": LEVELS},
                         allow_rank_deficient=True)
    with pytest.raises(ContrastError, match=r"contrast 'age' is not estimable with this design: 'age' "
                                            r"depends on a combination of columns \(age, age2\).*"
                                            r"rank-deficient"):
        parse_contrast("age", "age", design)
    # the sum of the two copies and any group difference are estimable
    parse_contrast("age total", "age + age2", design)
    parse_contrast("HC > TRD_UP", "HC - TRD_UP", design)


def test_check_estimable_on_hand_built_contrast(participants):
    participants["dup"] = (participants["group"] == "HC").astype(float)
    design = make_design(participants, "1 + group + dup", levels={"group": ["TRD_UP", *LEVELS[1:]]},
                         allow_rank_deficient=True)
    bad = Contrast("dup", "t", weights(design, dup=1)[None, :], ("dup",))
    with pytest.raises(ContrastError, match="not estimable"):
        check_estimable(bad, design)
    good = Contrast("hc+dup", "t", weights(design, **{"group[T.HC]": 1, "dup": 1})[None, :], ("x",))
    check_estimable(good, design)  # the identified sum of the two collinear columns


def test_full_rank_design_accepts_any_contrast(design):
    for column in design.columns:
        check_estimable(Contrast(column, "t", weights(design, **{column: 1})[None, :], (column,)), design)
