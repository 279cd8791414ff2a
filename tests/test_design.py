"""Design matrices: coding, level order, centring, and readable errors for user mistakes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from graymatter.errors import DesignError, GraymatterWarning
from graymatter.stats.design import Design, make_design

CELLS = {"TRD_UP": 26, "TRD_BP": 15, "nonTRD_UP": 16, "nonTRD_BP": 24, "HC": 44}
LEVELS = list(CELLS)
MEDS = ["antidepressants", "lithium", "anticonvulsants", "antipsychotics", "benzodiazepines"]
FORMULA_A = "0 + group + age + tiv + sex + voxel_size + " + " + ".join(MEDS)


def study_a(rng: np.random.Generator) -> pd.DataFrame:
    """125 subjects shaped like Study A; medication indicators are 0 for every control."""
    group = np.repeat(list(CELLS), list(CELLS.values()))
    n = len(group)
    frame = pd.DataFrame({
        "group": group,
        "age": rng.normal(46.5, 9.0, n).round(1),
        "tiv": rng.normal(1450.0, 130.0, n),
        "sex": rng.choice(["M", "F"], n),
        "voxel_size": rng.choice([1.1453, 0.8875], n),
    }, index=[f"sub-{i:03d}" for i in range(1, n + 1)])
    patient = frame["group"] != "HC"
    for med in MEDS:
        frame[med] = np.where(patient, rng.integers(0, 2, n), 0)
    return frame.sample(frac=1.0, random_state=7)  # shuffled: order must follow participants


@pytest.fixture
def participants(rng) -> pd.DataFrame:
    return study_a(rng)


def test_study_a_cell_means_design(participants):
    design = make_design(participants, FORMULA_A, levels={"group": LEVELS})
    assert isinstance(design, Design)
    assert design.matrix.shape == (125, 14)
    assert design.columns[:5] == [f"group[{lvl}]" for lvl in LEVELS]
    assert design.columns[5:] == ["age", "tiv", "sex[T.M]", "voxel_size", *MEDS]
    assert design.matrix.dtypes.eq(np.float64).all()
    assert list(design.matrix.index) == list(participants.index)
    assert design.levels["group"] == LEVELS and design.levels["sex"] == ["F", "M"]
    assert design.rank == 14

    cells = design.matrix[design.columns[:5]].to_numpy()
    assert set(np.unique(cells)) == {0.0, 1.0}
    np.testing.assert_array_equal(cells.sum(axis=1), np.ones(125))
    # each row's indicator is its own group, in participants order
    expected = participants["group"].map({lvl: i for i, lvl in enumerate(LEVELS)}).to_numpy()
    np.testing.assert_array_equal(cells.argmax(axis=1), expected)
    np.testing.assert_array_equal(cells.sum(axis=0), [CELLS[lvl] for lvl in LEVELS])

    numeric = ["age", "tiv", "voxel_size", *MEDS]
    assert sorted(design.centered) == sorted(numeric)
    for name in numeric:
        assert design.centered[name] == pytest.approx(participants[name].mean())
        assert design.matrix[name].mean() == pytest.approx(0.0, abs=1e-9)
        np.testing.assert_allclose(design.matrix[name], participants[name] - participants[name].mean())
    # sex is coded, not centred
    np.testing.assert_array_equal(design.matrix["sex[T.M]"], (participants["sex"] == "M").astype(float))

    X = design.X
    assert X.dtype == np.float64 and X.flags["C_CONTIGUOUS"] and X.shape == (125, 14)
    X[0, 0] = 99.0  # a copy: the design itself must not change
    assert design.X[0, 0] != 99.0


def test_aliases_and_to_dict(participants):
    design = make_design(participants, FORMULA_A, levels={"group": LEVELS})
    assert design.aliases["HC"] == "group[HC]"
    assert design.aliases["nonTRD_BP"] == "group[nonTRD_BP]"
    assert design.aliases["M"] == "sex[T.M]"
    assert all(design.aliases[c] == c for c in design.columns)
    summary = design.to_dict()
    assert summary["columns"] == design.columns and summary["rank"] == 14
    assert summary["n_subjects"] == 125 and summary["formula"] == FORMULA_A
    assert summary["levels"]["group"] == LEVELS
    assert json.loads(json.dumps(summary)) == summary


def test_default_levels_sorted_and_no_centering(participants):
    design = make_design(participants, "0 + group + age", center=False)
    assert design.levels["group"] == sorted(LEVELS)
    assert design.columns == [f"group[{lvl}]" for lvl in sorted(LEVELS)] + ["age"]
    assert design.centered == {}
    np.testing.assert_allclose(design.matrix["age"], participants["age"])


def test_intercept_and_treatment_coding(participants):
    design = make_design(participants, "1 + group + age", levels={"group": ["HC", *LEVELS[:4]]})
    assert design.columns[0] == "Intercept"
    assert design.columns[1:5] == [f"group[T.{lvl}]" for lvl in LEVELS[:4]]
    assert design.aliases["TRD_UP"] == "group[T.TRD_UP]" and "HC" not in design.aliases
    np.testing.assert_array_equal(design.matrix["Intercept"], np.ones(125))


def test_interaction_formula(participants):
    design = make_design(participants, "group * age", levels={"group": ["HC", *LEVELS[:4]]})
    assert "group[T.TRD_UP]:age" in design.columns
    assert design.matrix.shape == (125, 10) and design.rank == 10
    np.testing.assert_allclose(design.matrix["group[T.TRD_UP]:age"],
                               design.matrix["group[T.TRD_UP]"] * design.matrix["age"])


def test_bool_and_numeric_level_columns(participants):
    participants["bipolar"] = participants["group"].str.endswith("_BP")
    design = make_design(participants, "1 + bipolar + voxel_size",
                         levels={"voxel_size": ["1.1453", "0.8875"]})
    assert design.columns == ["Intercept", "bipolar[T.True]", "voxel_size[T.0.8875]"]
    assert design.levels["bipolar"] == ["False", "True"]
    assert design.centered == {}


def test_transformed_covariate_is_not_centred(participants):
    design = make_design(participants, "1 + np.log(tiv)")
    assert design.centered == {}
    np.testing.assert_allclose(design.matrix["np.log(tiv)"], np.log(participants["tiv"]))


def test_formula_names_missing_column(participants):
    with pytest.raises(DesignError, match=r"'agee'.*not a column.*available columns: group, age, tiv"):
        make_design(participants, "0 + group + agee")


def test_formula_syntax_error_is_design_error(participants):
    with pytest.raises(DesignError, match=r"cannot parse the model formula '0 \+ group \+'"):
        make_design(participants, "0 + group +")


def test_formula_with_response_rejected(participants):
    with pytest.raises(DesignError, match="left-hand side"):
        make_design(participants, "age ~ group")


def test_missing_value_names_subject(participants):
    participants.loc["sub-017", "tiv"] = np.nan
    participants.loc["sub-042", "sex"] = None
    with pytest.raises(DesignError, match=r"tiv, sex.*missing values for 2 subject.*sub-017.*fill in") as err:
        make_design(participants, FORMULA_A)
    assert "sub-042" in str(err.value)
    # a missing value in a column the formula does not use is fine
    design = make_design(participants, "0 + group + age")
    assert design.matrix.shape[0] == 125


def test_unknown_level_values_in_data(participants):
    participants.loc["sub-005", "group"] = "MDD"
    with pytest.raises(DesignError, match=r"factor 'group' has value\(s\) MDD not among the given "
                                          r"levels \(TRD_UP, TRD_BP.*sub-005"):
        make_design(participants, FORMULA_A, levels={"group": LEVELS})


def test_declared_level_absent(participants):
    with pytest.raises(DesignError, match=r"level\(s\) MDD of factor 'group' never occur"):
        make_design(participants, FORMULA_A, levels={"group": [*LEVELS, "MDD"]})


def test_levels_key_not_a_column(participants):
    with pytest.raises(DesignError, match=r"levels were given for 'cohort'.*available columns"):
        make_design(participants, FORMULA_A, levels={"cohort": ["a", "b"]})


def test_unused_categorical_level_dropped_with_warning(participants):
    participants["group"] = pd.Categorical(participants["group"], categories=[*LEVELS, "MDD"])
    with pytest.warns(GraymatterWarning, match="unused level"):
        design = make_design(participants, "0 + group")
    assert design.levels["group"] == LEVELS


def test_rank_deficient_duplicate_indicator(participants):
    participants["is_hc"] = (participants["group"] == "HC").astype(int)
    with pytest.raises(DesignError, match=r"rank 5 < 6 columns") as err:
        make_design(participants, "1 + group + is_hc", levels={"group": ["TRD_UP", *LEVELS[1:]]})
    message = str(err.value)
    for column in ["Intercept", "group[T.HC]", "is_hc"]:
        assert column in message
    assert "group[T.TRD_BP]" not in message  # not part of the dependency
    assert "allow_rank_deficient" in message


def test_rank_deficient_identical_covariates(participants):
    participants["age2"] = participants["age"]
    with pytest.raises(DesignError, match=r"linearly dependent: age, age2\."):
        make_design(participants, "0 + group + age + tiv + age2")


def test_constant_covariate_reported_as_zero_column(participants):
    participants["site"] = 1.0
    with pytest.raises(DesignError, match=r"site.*all zero"):
        make_design(participants, "0 + group + age + site")


def test_rank_deficient_allowed(participants):
    participants["age2"] = participants["age"]
    design = make_design(participants, "0 + group + age + age2", allow_rank_deficient=True)
    assert design.rank == 6 and len(design.columns) == 7


def test_no_residual_degrees_of_freedom(participants):
    small = participants.groupby("group").head(1)
    with pytest.raises(DesignError, match=r"5 subjects for rank 5: no residual degrees of freedom"):
        make_design(small, "0 + group")


def test_duplicate_subject_ids(participants):
    doubled = pd.concat([participants, participants.iloc[:2]])
    with pytest.raises(DesignError, match="duplicated subject ids"):
        make_design(doubled, "0 + group")
