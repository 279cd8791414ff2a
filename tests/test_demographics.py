"""Table 1 reproduces Study A's published p-values and uses scipy's tests exactly."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.oneway import anova_oneway

from graymatter.errors import InputError
from graymatter.stats.demographics import demographics_table, format_p

GROUPS = {"TRD": 41, "nonTRD": 40, "HC": 44}


def _exact(rng, mean, sd, n):
    """A sample with exactly the given mean and SD (so tests reproduce published summaries)."""
    x = rng.normal(size=n)
    return mean + sd * (x - x.mean()) / x.std(ddof=1)


def _counts(k, n, yes="yes", no="no"):
    return [yes] * k + [no] * (n - k)


@pytest.fixture
def study_a(rng):
    """Participants with Study A's Table 1 summaries (means, SDs and counts as published)."""
    cont = {"age": [(47.15, 8.06), (46.10, 9.62), (46.42, 10.08)],
            "onset": [(28.26, 9.92), (28.06, 10.90), None],
            "duration": [(18.90, 9.21), (18.01, 11.56), None],
            "madrs": [(34.20, 7.19), (12.70, 13.78), None]}
    cat = {"sex": [15, 22, 23], "bipolar": [15, 24, None], "antidepressants": [19, 23, None],
           "anticonvulsants": [12, 10, None], "lithium": [5, 10, None],
           "antipsychotics": [16, 9, None], "benzodiazepines": [18, 15, None]}
    frames = []
    for i, (group, n) in enumerate(GROUPS.items()):
        frame = pd.DataFrame({"group": [group] * n})
        for col, specs in cont.items():
            frame[col] = _exact(rng, *specs[i], n) if specs[i] else np.nan
        for col, counts in cat.items():
            if counts[i] is None:
                frame[col] = None
            elif col == "sex":
                frame[col] = _counts(counts[i], n, "M", "F")
            else:
                frame[col] = _counts(counts[i], n)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


PUBLISHED = {"Age": 0.87, "Male": 0.19, "Age of onset": 0.93, "Illness duration (y)": 0.71,
             "Bipolar": 0.03, "Antidepressants": 0.31, "Anticonvulsants": 0.67, "Lithium": 0.14,
             "Antipsychotics": 0.11, "Benzodiazepines": 0.56}


def test_reproduces_study_a_table1(study_a):
    patients = ["TRD", "nonTRD"]
    variables = [{"column": "age", "label": "Age"},
                 {"column": "sex", "label": "Male", "level": "M"},
                 {"column": "onset", "label": "Age of onset", "groups": patients},
                 {"column": "duration", "label": "Illness duration (y)", "groups": patients},
                 {"column": "madrs", "label": "MADRS", "groups": patients}]
    variables += [{"column": c, "label": c.capitalize(), "level": "yes", "groups": patients}
                  for c in ("bipolar", "antidepressants", "anticonvulsants", "lithium",
                            "antipsychotics", "benzodiazepines")]
    t1 = demographics_table(study_a, group="group", variables=variables,
                            group_order=["TRD", "nonTRD", "HC"])
    assert t1.table.loc["Age", "TRD"] == "47.15 ± 8.06"
    assert t1.table.loc["Male", "nonTRD"] == "22 (55.0%)"
    assert t1.table.loc["MADRS", "HC"] == "-" and t1.table.loc["MADRS", "p"] == "<0.001"
    assert t1.table.loc["Bipolar", "TRD"] == "15 (36.6%)"
    # Published p-values are reproduced from the published summaries to within rounding.
    for label, p in PUBLISHED.items():
        assert abs(t1.values.loc[label, "p"] - p) < 0.01, label
    assert t1.values.loc["Age", "test"] == "ANOVA"
    assert t1.values.loc["Male", "test"] == "chi-square"
    assert t1.values.loc["Age of onset", "test"] == "t test"
    # The statistics are scipy's, to 1e-10.
    ages = [study_a.age[study_a.group == g] for g in ("TRD", "nonTRD", "HC")]
    np.testing.assert_allclose(t1.values.loc["Age", "statistic"],
                               stats.f_oneway(*ages).statistic, rtol=1e-10)
    male = pd.crosstab(study_a.group, study_a.sex).loc[["TRD", "nonTRD", "HC"]]
    np.testing.assert_allclose(t1.values.loc["Male", "statistic"],
                               stats.chi2_contingency(male, correction=False).statistic,
                               rtol=1e-10)
    onset = [study_a.onset[study_a.group == g] for g in patients]
    np.testing.assert_allclose(t1.values.loc["Age of onset", "p"],
                               stats.ttest_ind(*onset).pvalue, rtol=1e-10)
    markdown = t1.to_markdown()
    assert "| Male | 15 (36.6%) | 22 (55.0%) | 23 (52.3%) |" in markdown
    assert "<table" in t1.to_html()


def test_fisher_when_expected_counts_are_small(rng):
    frame = pd.DataFrame({"group": ["A"] * 8 + ["B"] * 8,
                          "smoker": ["y"] * 6 + ["n"] * 2 + ["y"] * 1 + ["n"] * 7})
    t1 = demographics_table(frame, group="group", variables=[{"column": "smoker", "level": "y"}])
    assert t1.values.loc["smoker", "test"] == "Fisher exact"
    np.testing.assert_allclose(t1.values.loc["smoker", "p"],
                               stats.fisher_exact([[2, 6], [7, 1]]).pvalue, rtol=1e-10)


def test_welch_options(rng):
    frame = pd.DataFrame({"group": ["A"] * 10 + ["B"] * 12 + ["C"] * 9,
                          "x": rng.normal(size=31)})
    t1 = demographics_table(frame, group="group", variables=[{"column": "x", "test": "welch"}])
    samples = [frame.x[frame.group == g] for g in "ABC"]
    welch = anova_oneway([s.to_numpy() for s in samples], use_var="unequal")
    np.testing.assert_allclose(t1.values.loc["x", "statistic"], welch.statistic, rtol=1e-10)
    np.testing.assert_allclose(t1.values.loc["x", "p"], welch.pvalue, rtol=1e-10)
    two = frame[frame.group != "C"]
    t1 = demographics_table(two, group="group", variables=[{"column": "x", "test": "welch_t"}])
    np.testing.assert_allclose(t1.values.loc["x", "p"],
                               stats.ttest_ind(*samples[:2], equal_var=False).pvalue, rtol=1e-10)


@pytest.mark.parametrize("p, text", [(0.0004, "<0.001"), (0.0042, "0.004"), (0.873, "0.87"),
                                     (float("nan"), "-")])
def test_format_p(p, text):
    assert format_p(p) == text


def test_errors_name_the_problem(study_a):
    with pytest.raises(InputError, match="'diagnosis' is not in participants"):
        demographics_table(study_a, group="diagnosis", variables=["age"])
    with pytest.raises(InputError, match="'weight' is not a participants column"):
        demographics_table(study_a, group="group", variables=["weight"])
    with pytest.raises(InputError, match="unknown key.*colum"):
        demographics_table(study_a, group="group", variables=[{"colum": "age"}])
    with pytest.raises(InputError, match="unknown group"):
        demographics_table(study_a, group="group", variables=[{"column": "age",
                                                               "groups": ["MDD"]}])
    with pytest.raises(InputError, match="a t test compares two groups"):
        demographics_table(study_a, group="group", variables=[{"column": "age", "test": "t"}])
