"""Table 1: demographic and clinical characteristics per group, with the right test per variable.

Continuous variables are summarised as mean ± SD and compared with a t test (two groups) or a
one-way ANOVA (three or more), or their Welch versions; categorical variables as N (%) and compared
with Pearson's chi-square test (no continuity correction, as most clinical papers report it), or
Fisher's exact test when an expected count is below 5. Every test is scipy's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import InputError, format_choices

CONTINUOUS_TESTS = ("auto", "anova", "welch", "t", "welch_t")


@dataclass(frozen=True)
class Variable:
    """One row of Table 1.

    Parameters
    ----------
    column : str
        Participants column.
    label : str, optional
        Row label (default: the column name).
    kind : {"auto", "continuous", "categorical"}, default="auto"
        ``auto``: numeric columns with more than two distinct values are continuous.
    level : str, optional
        For a categorical variable, report only this level's N (%) (e.g. ``"M"`` for "Male");
        the test still uses the whole contingency table.
    groups : sequence of str, optional
        Restrict the row (and its test) to these groups (e.g. patients only); other groups
        show "-".
    test : {"auto", "anova", "welch", "t", "welch_t"}, default="auto"
        Continuous test: ``auto`` is Student's t for two groups and one-way ANOVA for more;
        ``welch``/``welch_t`` do not assume equal variances.
    """

    column: str
    label: str | None = None
    kind: str = "auto"
    level: str | None = None
    groups: tuple[str, ...] | None = None
    test: str = "auto"


@dataclass(frozen=True, eq=False)
class DemographicsTable:
    """Table 1 as numbers (``values``) and as formatted text (``table``)."""

    table: pd.DataFrame      # rows = variables, columns = groups + "p" + "test" (formatted text)
    values: pd.DataFrame     # the numbers: per variable statistic, df, p, test, n per group

    def to_markdown(self) -> str:
        """A Markdown table (GitHub style)."""
        frame = self.table.reset_index()
        lines = ["| " + " | ".join(map(str, frame.columns)) + " |",
                 "|" + "---|" * frame.shape[1]]
        lines += ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
        return "\n".join(lines) + "\n"

    def to_html(self) -> str:
        """An HTML ``<table>`` snippet (escaped), for reports."""
        return self.table.to_html(classes="graymatter-table1", border=0, escape=True)


def format_p(p: float) -> str:
    """Format a p-value like clinical papers: ``<0.001``, three decimals below 0.01, else two."""
    if p is None or not np.isfinite(p):
        return "-"
    if p < 0.001:
        return "<0.001"
    if p < 0.01:
        return f"{p:.3f}"
    return f"{p:.2f}"


def _as_variable(spec) -> Variable:
    if isinstance(spec, Variable):
        return spec
    if isinstance(spec, str):
        return Variable(spec)
    if isinstance(spec, Mapping):
        unknown = set(spec) - set(Variable.__dataclass_fields__)
        if unknown:
            raise InputError(f"demographics variable {dict(spec)} has unknown key(s) "
                             f"{format_choices(sorted(unknown))}; allowed: "
                             f"{format_choices(Variable.__dataclass_fields__)}.")
        if "column" not in spec:
            raise InputError(f"demographics variable {dict(spec)} needs a 'column'.")
        spec = dict(spec)
        if spec.get("groups") is not None:
            spec["groups"] = tuple(str(g) for g in spec["groups"])
        return Variable(**spec)
    raise InputError(f"a demographics variable is a column name or a mapping; got {spec!r}.")


def _kind(values: pd.Series, var: Variable) -> str:
    if var.kind in ("continuous", "categorical"):
        return var.kind
    if var.kind != "auto":
        raise InputError(f"variable '{var.column}': kind must be 'auto', 'continuous' or "
                         f"'categorical'; got {var.kind!r}.")
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    return "continuous" if numeric and values.dropna().nunique() > 2 else "categorical"


def _continuous(samples: list[np.ndarray], test: str) -> tuple[str, float, float, object]:
    if test not in CONTINUOUS_TESTS:
        raise InputError(f"continuous test must be one of {format_choices(CONTINUOUS_TESTS)}; "
                         f"got {test!r}.")
    k = len(samples)
    if test == "auto":
        test = "t" if k == 2 else "anova"
    if test in ("t", "welch_t"):
        if k != 2:
            raise InputError(f"a t test compares two groups; this row has {k}. Use 'anova' or "
                             "'welch'.")
        res = stats.ttest_ind(samples[0], samples[1], equal_var=(test == "t"))
        return ("t test" if test == "t" else "Welch t test"), float(res.statistic), \
            float(res.pvalue), float(res.df)
    if test == "anova":
        res = stats.f_oneway(*samples)
        n = sum(len(s) for s in samples)
        return "ANOVA", float(res.statistic), float(res.pvalue), (k - 1, n - k)
    statistic, p, df = welch_anova(samples)
    return "Welch ANOVA", statistic, p, df


def welch_anova(samples: list[np.ndarray]) -> tuple[float, float, tuple[float, float]]:
    """Welch's one-way ANOVA for unequal variances (Welch 1951).

    Returns
    -------
    statistic : float
        Welch's F.
    p : float
        Upper-tail p of F with (k - 1, df2) degrees of freedom.
    df : (float, float)
        Numerator and (fractional) denominator degrees of freedom.
    """
    n = np.array([len(x) for x in samples], dtype=float)
    means = np.array([np.mean(x) for x in samples])
    weights = n / np.array([np.var(x, ddof=1) for x in samples])
    k = len(samples)
    grand = np.sum(weights * means) / weights.sum()
    tail = np.sum((1 - weights / weights.sum()) ** 2 / (n - 1))
    numerator = np.sum(weights * (means - grand) ** 2) / (k - 1)
    denominator = 1 + 2 * (k - 2) / (k ** 2 - 1) * tail
    statistic = float(numerator / denominator)
    df2 = float((k ** 2 - 1) / (3 * tail))
    return statistic, float(stats.f.sf(statistic, k - 1, df2)), (float(k - 1), df2)


def _categorical(table: np.ndarray) -> tuple[str, float, float, object]:
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return "-", math.nan, math.nan, None
    expected = stats.contingency.expected_freq(table)
    if (expected < 5).any():
        res = stats.fisher_exact(table)
        stat = float(res.statistic) if np.ndim(res.statistic) == 0 else math.nan
        return "Fisher exact", stat, float(res.pvalue), None
    res = stats.chi2_contingency(table, correction=False)
    return "chi-square", float(res.statistic), float(res.pvalue), int(res.dof)


def demographics_table(participants: pd.DataFrame, *, group: str,
                       variables: Sequence[str | Mapping | Variable],
                       group_order: Sequence[str] | None = None) -> DemographicsTable:
    """Build Table 1: per group mean ± SD or N (%), and a test across groups per variable.

    Parameters
    ----------
    participants : pandas.DataFrame
        One row per subject.
    group : str
        Column holding the group of each subject (e.g. ``"diagnosis"``).
    variables : sequence of str, mapping or Variable
        Rows of the table, in order; a mapping gives :class:`Variable` fields
        (``{"column": "sex", "label": "Male", "level": "M"}``).
    group_order : sequence of str, optional
        Column order of the groups (default: sorted).

    Returns
    -------
    DemographicsTable

    Examples
    --------
    >>> t1 = demographics_table(participants, group="group", variables=[
    ...     "age", {"column": "sex", "label": "Male", "level": "M"},
    ...     {"column": "madrs", "groups": ["TRD", "nonTRD"]}])  # doctest: +SKIP
    >>> print(t1.to_markdown())  # doctest: +SKIP
    """
    if group not in participants.columns:
        raise InputError(f"group column '{group}' is not in participants (columns: "
                         f"{format_choices(participants.columns, 40)}).")
    labels = participants[group]
    if labels.isna().any():
        raise InputError(f"group column '{group}' is missing for subject(s) "
                         f"{format_choices(participants.index[labels.isna()], 8)}.")
    labels = labels.astype(str)
    present = sorted(labels.unique())
    order = [str(g) for g in group_order] if group_order is not None else present
    if sorted(order) != present:
        raise InputError(f"group_order {order} must list exactly the groups in '{group}': "
                         f"{format_choices(present)}.")
    text_rows, value_rows = {}, {}
    for spec in variables:
        var = _as_variable(spec)
        if var.column not in participants.columns:
            raise InputError(f"demographics variable '{var.column}' is not a participants column "
                             f"(columns: {format_choices(participants.columns, 40)}).")
        groups = list(var.groups) if var.groups else order
        unknown = [g for g in groups if g not in order]
        if unknown:
            raise InputError(f"variable '{var.column}' is restricted to unknown group(s) "
                             f"{format_choices(unknown)}; groups are {format_choices(order)}.")
        column = participants[var.column]
        kind = _kind(column, var)
        label = var.label or var.column
        cells = {g: "-" for g in order}
        n_valid = {}
        if kind == "continuous":
            numeric = pd.to_numeric(column, errors="coerce")
            bad = column.notna() & numeric.isna()
            if bad.any():
                raise InputError(f"variable '{var.column}' is continuous but has non-numeric "
                                 f"values {format_choices(column[bad].astype(str).unique())} "
                                 f"(subjects {format_choices(participants.index[bad], 5)}).")
            samples = []
            for g in groups:
                x = numeric[labels == g].dropna().to_numpy(dtype=float)
                n_valid[g] = len(x)
                if len(x) < 2:
                    raise InputError(f"variable '{var.column}' has {len(x)} non-missing value(s) "
                                     f"in group '{g}'; at least 2 are needed for mean ± SD and "
                                     "a test.")
                cells[g] = f"{x.mean():.2f} ± {x.std(ddof=1):.2f}"
                samples.append(x)
            test, statistic, p, df = _continuous(samples, var.test)
        else:
            values = column.astype(object).where(column.notna(), None)
            kept = values.notna() & labels.isin(groups)
            crosstab = pd.crosstab(values[kept].astype(str), labels[kept]).reindex(
                columns=groups, fill_value=0)
            level = str(var.level) if var.level is not None else str(crosstab.index[-1])
            if level not in crosstab.index:
                raise InputError(f"level '{level}' of variable '{var.column}' does not occur; "
                                 f"levels: {format_choices(crosstab.index)}.")
            for g in groups:
                n = int(crosstab[g].sum())
                n_valid[g] = n
                k = int(crosstab.loc[level, g])
                cells[g] = f"{k} ({100.0 * k / n:.1f}%)" if n else "-"
            if var.level is None and crosstab.shape[0] > 2:
                label = f"{label}: {level}"
            test, statistic, p, df = _categorical(crosstab.to_numpy().T)
        text_rows[label] = {**cells, "p": format_p(p), "test": test}
        value_rows[label] = {"column": var.column, "kind": kind, "test": test,
                             "statistic": statistic, "df": df, "p": p,
                             **{f"n_{g}": n_valid.get(g, 0) for g in order}}
    n_row = {g: f"N = {int((labels == g).sum())}" for g in order}
    table = pd.DataFrame([n_row] + list(text_rows.values()),
                         index=pd.Index(["N"] + list(text_rows), name="variable"))
    table = table.reindex(columns=order + ["p", "test"]).fillna("")
    values = pd.DataFrame(list(value_rows.values()), index=pd.Index(list(value_rows),
                                                                     name="variable"))
    return DemographicsTable(table=table, values=values)
