"""Design matrices for mass-univariate GLMs, built from a participants table and a formula.

The formula language is Wilkinson notation, restricted to the grammar of
:mod:`graymatter.stats.formula` (checked before formulaic sees it, so a formula never runs code);
formulaic builds the matrix. graymatter adds what a morphometry study needs around it: explicit level order for factors, mean-centred covariates, refusal to drop rows
with missing values silently, and a rank check that names the collinear columns.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from graymatter.errors import DesignError, GraymatterWarning, format_choices
from graymatter.stats.formula import GRAMMAR, NUMPY_TRANSFORMS, Transform, parse_formula

__all__ = ["Design", "make_design"]

# Column names formulaic gives categorical indicators: "group[HC]" (full-rank, no intercept)
# or "group[T.HC]" (treatment coding). Other codings (sum, Helmert) are not cells, so no alias.
_INDICATOR = re.compile(r"^(?P<factor>.+)\[(?:T\.)?(?P<level>[^\[\]]+)\]$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m|[⧛⧚]")


@dataclass(frozen=True, eq=False)  # eq=False: DataFrame fields cannot be compared/hashed as a tuple
class Design:
    """A design matrix together with how it was built.

    Attributes
    ----------
    matrix : pandas.DataFrame
        ``(n_subjects, n_columns)`` float64 design; index = subject ids in participants order,
        columns named as formulaic names them (``"group[HC]"``, ``"age"``, ``"group[T.b]:age"``).
    formula : str
        The formula the design was built from.
    levels : dict of str to list of str
        Level order used for each categorical factor.
    centered : dict of str to float
        Numeric covariate -> the mean that was subtracted (empty when ``center=False``).
    aliases : dict of str to str
        Name usable in contrast expressions -> design column. Every column maps to itself, and a
        level name maps to its indicator column when no other factor has a level of that name.
    rank : int
        Numerical rank of the matrix.
    """

    matrix: pd.DataFrame
    formula: str
    levels: dict[str, list[str]] = field(default_factory=dict)
    centered: dict[str, float] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    rank: int = 0

    @property
    def columns(self) -> list[str]:
        """Design column names, in matrix order."""
        return [str(c) for c in self.matrix.columns]

    @property
    def X(self) -> np.ndarray:
        """The design as a C-contiguous float64 array (a fresh copy, safe to modify)."""
        return np.ascontiguousarray(self.matrix.to_numpy(dtype=np.float64, copy=True))

    @property
    def n_subjects(self) -> int:
        """Number of rows (subjects)."""
        return int(self.matrix.shape[0])

    def to_dict(self) -> dict:
        """JSON-able summary: formula, columns, levels, centered, rank, n_subjects."""
        return {
            "formula": self.formula,
            "columns": self.columns,
            "levels": {k: [str(v) for v in vs] for k, vs in self.levels.items()},
            "centered": {k: float(v) for k, v in self.centered.items()},
            "rank": int(self.rank),
            "n_subjects": self.n_subjects,
        }


def make_design(participants: pd.DataFrame, formula: str, *,
                levels: Mapping[str, Sequence[str]] | None = None,
                center: bool = True, allow_rank_deficient: bool = False) -> Design:
    """Build the design matrix of a GLM from a participants table and a formula.

    Parameters
    ----------
    participants : pandas.DataFrame
        One row per subject, indexed by subject id. Rows are never dropped or reordered.
    formula : str
        Right-hand side of a formula over the participants' columns, in the grammar of
        :func:`graymatter.stats.formula.parse_formula` (anything else is refused), e.g.
        ``"0 + group + age + sex + tiv"``, ``"group * age"`` or ``"1 + age"``. ``"0 + group"``
        gives cell-means coding: no intercept and one 0/1 column per level (formulaic's full-rank
        encoding when there is no intercept), so each group column estimates that cell's mean.
        This is the recommended coding for a one-way ANOVA such as Study A's five cells, because
        every contrast is then written directly in level names (``"HC - TRD_UP"``).
    levels : mapping of str to sequence of str, optional
        Level order per categorical factor; the design's columns follow it. Values are compared as
        strings, so a numeric column listed here (e.g. two voxel sizes) becomes a factor.
        String, boolean and object columns not listed are factors with sorted levels.
    center : bool, default=True
        Subtract the mean of each numeric covariate used plainly in the formula (not inside a
        transform such as ``np.log(tiv)``). With cell-means coding, the group columns then
        estimate adjusted group means at the average covariate value, and an intercept means
        "the response of an average subject" rather than an extrapolation to age 0 and TIV 0.
        The subtracted means are recorded in :attr:`Design.centered`. Contrasts between groups
        are unaffected by centring; only the meaning of individual coefficients changes.
    allow_rank_deficient : bool, default=False
        Accept a design whose columns are linearly dependent. Only estimable contrasts
        (see :func:`graymatter.stats.contrasts.check_estimable`) can then be tested.

    Returns
    -------
    Design

    Raises
    ------
    DesignError
        If the formula is invalid or names missing columns, used columns have missing values,
        levels disagree with the data, the design is rank deficient, or there are no residual
        degrees of freedom.

    Examples
    --------
    >>> import pandas as pd
    >>> participants = pd.DataFrame(
    ...     {"group": ["HC", "TRD", "TRD", "HC", "nonTRD", "nonTRD"],
    ...      "age": [40.0, 50.0, 45.0, 38.0, 52.0, 47.0]},
    ...     index=["sub-01", "sub-02", "sub-03", "sub-04", "sub-05", "sub-06"])
    >>> design = make_design(participants, "0 + group + age",
    ...                      levels={"group": ["TRD", "nonTRD", "HC"]})
    >>> design.columns
    ['group[TRD]', 'group[nonTRD]', 'group[HC]', 'age']
    >>> design.centered
    {'age': 45.333333333333336}
    >>> design.aliases["HC"]
    'group[HC]'
    """
    from formulaic import Formula, SimpleFormula, model_matrix  # local: formulaic is slow to import
    from formulaic.errors import FormulaicError

    if not isinstance(participants, pd.DataFrame):
        raise DesignError(f"participants must be a pandas DataFrame, got {type(participants).__name__}")
    if participants.index.has_duplicates:
        dup = participants.index[participants.index.duplicated()].unique()
        raise DesignError(f"participants has duplicated subject ids: {format_choices(dup)}; "
                          "each subject must appear once")
    safe = parse_formula(formula)  # the security boundary: nothing outside the grammar passes
    try:
        parsed = Formula(safe.text)
    except FormulaicError as exc:
        raise DesignError(f"cannot parse the model formula '{formula}': {_clean(exc)}") from None
    if not isinstance(parsed, SimpleFormula):
        raise DesignError(f"the model formula '{formula}' has a left-hand side or several parts; give "
                          "only the right-hand side (e.g. '0 + group + age'): the images are the response")
    _check_lookups_only(parsed, formula)

    columns = [str(c) for c in participants.columns]
    unknown = sorted(safe.columns - set(columns))
    if unknown:
        raise DesignError(f"the model formula '{formula}' uses {format_choices(repr(u) for u in unknown)}, "
                          f"which {'is not a column' if len(unknown) == 1 else 'are not columns'} of "
                          f"participants (available columns: {format_choices(columns, 40)})")
    in_transform = {t.column for t in safe.transforms}
    used = [c for c in participants.columns if str(c) in safe.columns]

    data = participants.copy()
    _check_missing(data, used)
    levels = dict(levels or {})
    for name, order in levels.items():
        data[name] = _apply_levels(data, name, order)
    centered: dict[str, float] = {}
    for name in used:
        col = data[name]
        if name in levels:
            continue
        if isinstance(col.dtype, pd.CategoricalDtype):
            data[name] = _drop_unused(col, name)
        elif pd.api.types.is_bool_dtype(col) or not pd.api.types.is_numeric_dtype(col):
            values = col.astype(str)
            data[name] = pd.Categorical(values, categories=sorted(values.unique()))
        elif center and name in safe.bare and name not in in_transform:
            mean = float(col.astype(np.float64).mean())
            data[name] = col.astype(np.float64) - mean
            centered[str(name)] = mean
    for term in safe.transforms:  # computed here, so formulaic evaluates no code
        data[term.name] = _transform(term, participants, data)

    try:
        mm = model_matrix(parsed, data, na_action="raise", context={})
    except (FormulaicError, ValueError, TypeError, NameError, KeyError) as exc:
        raise DesignError(f"cannot build the design from formula '{formula}': {_clean(exc)}") from None
    if mm.shape[0] != len(participants):  # never lose subjects silently
        raise DesignError(f"the formula '{formula}' produced {mm.shape[0]} rows for "
                          f"{len(participants)} subjects; rows must not be dropped")
    matrix = pd.DataFrame(np.asarray(mm, dtype=np.float64), index=participants.index,
                          columns=[str(c) for c in mm.columns])
    if matrix.shape[1] == 0:
        raise DesignError(f"the formula '{formula}' gives a design with no columns")
    if not np.isfinite(matrix.to_numpy()).all():
        bad = matrix.columns[~np.isfinite(matrix.to_numpy()).all(axis=0)]
        raise DesignError(f"design column(s) {format_choices(bad)} contain infinite or NaN values "
                          f"(e.g. a transform such as a log of a non-positive value)")

    factor_levels = {str(f): [str(v) for v in state.get("categories", [])]
                     for f, (kind, state) in mm.model_spec.encoder_state.items()
                     if getattr(kind, "value", kind) == "categorical"}
    rank = _check_rank(matrix, formula, allow_rank_deficient)
    return Design(matrix=matrix, formula=formula, levels=factor_levels, centered=centered,
                  aliases=_aliases(matrix.columns, factor_levels), rank=rank)


# -- helpers ---------------------------------------------------------------------------------------

def _clean(exc: BaseException) -> str:
    """One-line message of a formulaic/pandas exception, without terminal colour codes."""
    text = _ANSI.sub("", str(exc)).strip()
    return " ".join(text.split()) or type(exc).__name__


def _check_lookups_only(parsed, formula: str) -> None:
    """Defence in depth: every factor of the rebuilt formula is a column lookup or 0/1."""
    for term in parsed:
        for factor in term.factors:
            method = getattr(factor.eval_method, "value", factor.eval_method)
            if method not in ("lookup", "literal"):
                raise DesignError(f"the model formula '{formula}' contains {str(factor.expr)!r}, "
                                  f"which is not allowed. {GRAMMAR}")


def _transform(term: Transform, participants: pd.DataFrame, data: pd.DataFrame):
    """Values of a transform term: numeric ones read the raw column, C() the prepared factor."""
    if term.func == "C":
        source = data[term.column]
        if term.levels is not None:
            frame = pd.DataFrame({term.column: participants[term.column]})
            return _apply_levels(frame, term.column, list(term.levels))
        return source if isinstance(source.dtype, pd.CategoricalDtype) else pd.Categorical(source)
    source = (participants[term.arg] if isinstance(term.arg, str)
              else _transform(term.arg, participants, data))
    if (isinstance(getattr(source, "dtype", None), pd.CategoricalDtype)
            or not pd.api.types.is_numeric_dtype(source) or pd.api.types.is_bool_dtype(source)):
        raise DesignError(f"the model term {term.name} needs numbers, but column '{term.column}' "
                          "holds categories; transforms apply to numeric covariates only")
    values = np.asarray(source, dtype=np.float64)
    if term.func in ("center", "scale"):  # formulaic's own functions, called directly
        from formulaic.transforms import center as center_, scale as scale_

        return np.asarray((center_ if term.func == "center" else scale_)(values, _state={}))
    with np.errstate(divide="ignore", invalid="ignore"):  # non-finite values are reported later
        return NUMPY_TRANSFORMS[term.func.removeprefix("np.")](values)


def _check_missing(data: pd.DataFrame, used: list) -> None:
    if not used:
        return
    missing = data[used].isna()
    if missing.to_numpy().any():
        cols = [str(c) for c in missing.columns[missing.any(axis=0)]]
        subjects = data.index[missing.any(axis=1)]
        raise DesignError(f"column(s) {format_choices(cols)} used by the model have missing values "
                          f"for {len(subjects)} subject(s): {format_choices(subjects, 8)}; fill in "
                          "those values or drop those rows from participants (subjects are never "
                          "dropped silently)")


def _apply_levels(data: pd.DataFrame, name: str, order: Sequence[str]) -> pd.Categorical:
    """Turn column ``name`` into a Categorical with the user's level order, checking agreement."""
    if name not in data.columns:
        raise DesignError(f"levels were given for '{name}', which is not a column of participants "
                          f"(available columns: {format_choices(data.columns, 40)})")
    if isinstance(order, str) or not isinstance(order, Sequence):
        raise DesignError(f"levels for '{name}' must be a list of level names, got {order!r}")
    order = [str(v) for v in order]
    if len(set(order)) != len(order):
        raise DesignError(f"levels for '{name}' list a level twice: {format_choices(order)}")
    col = data[name]
    values = col.astype(object).where(col.notna(), None).map(lambda v: v if v is None else str(v))
    present = values.dropna()
    outside = present[~present.isin(order)]
    if len(outside):
        raise DesignError(f"factor '{name}' has value(s) {format_choices(sorted(outside.unique()))} "
                          f"not among the given levels ({format_choices(order)}), e.g. subject(s) "
                          f"{format_choices(outside.index[:5])}; add them to levels or fix the data")
    absent = [lvl for lvl in order if lvl not in set(present)]
    if absent:
        raise DesignError(f"level(s) {format_choices(absent)} of factor '{name}' never occur in the "
                          "data, which would give an all-zero design column; remove them from levels")
    return pd.Categorical(values, categories=order)


def _drop_unused(col: pd.Series, name: str) -> pd.Series:
    unused = [str(c) for c in col.cat.categories if not (col == c).any()]
    if unused:
        warnings.warn(f"categorical column '{name}' has unused level(s) {format_choices(unused)}; "
                      "they were dropped (they would give all-zero design columns)",
                      GraymatterWarning, stacklevel=3)
        col = col.cat.remove_unused_categories()
    return col.cat.rename_categories([str(c) for c in col.cat.categories])


def _aliases(columns, factor_levels: Mapping[str, list[str]]) -> dict[str, str]:
    """Every column to itself, plus each level name to its indicator column when unambiguous."""
    aliases = {str(c): str(c) for c in columns}
    by_level = indicator_columns(columns, factor_levels)
    for level, cols in by_level.items():
        if len(cols) == 1 and level not in aliases:
            aliases[level] = cols[0][1]
    return aliases


def indicator_columns(columns, factor_levels: Mapping[str, Sequence[str]]) -> dict[str, list[tuple[str, str]]]:
    """Map each level name to ``[(factor, column), ...]`` of indicator columns carrying it.

    More than one entry means the level name is ambiguous (shared by several factors).
    """
    found: dict[str, list[tuple[str, str]]] = {}
    for column in columns:
        match = _INDICATOR.match(str(column))
        if match and match["factor"] in factor_levels and match["level"] in factor_levels[match["factor"]]:
            found.setdefault(match["level"], []).append((match["factor"], str(column)))
    return found


def scaled_row_space(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SVD of ``X`` with unit-norm columns: ``(scale, Vt_row, Vt_null)``.

    Columns are scaled first so TIV in mm³ and 0/1 indicators weigh alike in the rank decision;
    the rank tolerance is numpy.linalg.matrix_rank's (``S.max() * max(n, p) * eps``).
    ``Vt_row`` spans the row space of the scaled matrix, ``Vt_null`` its null space.
    """
    X = np.asarray(X, dtype=np.float64)
    norms = np.linalg.norm(X, axis=0)
    scale = np.where(norms > 0, 1.0 / np.where(norms > 0, norms, 1.0), 1.0)
    _, s, vt = np.linalg.svd(X * scale, full_matrices=True)
    tol = (s.max() if s.size else 0.0) * max(X.shape) * np.finfo(np.float64).eps
    r = int((s > tol).sum())
    return scale, vt[:r], vt[r:]


def _check_rank(matrix: pd.DataFrame, formula: str, allow_rank_deficient: bool) -> int:
    n, p = matrix.shape
    _, row, null = scaled_row_space(matrix.to_numpy())
    rank = row.shape[0]
    if rank < p and not allow_rank_deficient:
        involved = np.abs(null).max(axis=0) > 1e-6  # support of the null space, basis independent
        names = [str(c) for c, inv in zip(matrix.columns, involved) if inv]
        zero = [str(c) for c in matrix.columns if not matrix[c].any()]
        note = (f" Column(s) {format_choices(zero)} are all zero (a covariate constant across "
                "subjects is all zero after centring)." if zero else "")
        raise DesignError(
            f"the design from '{formula}' is rank deficient: rank {rank} < {p} columns. These columns "
            f"are linearly dependent: {format_choices(names, 30)}.{note} Drop one of them, remove the "
            "intercept ('0 + ...') or a level, or pass allow_rank_deficient=True and test only "
            "estimable contrasts")
    if n <= rank:
        raise DesignError(f"the design from '{formula}' has {n} subjects for rank {rank}: no residual "
                          "degrees of freedom are left; use more subjects or fewer columns")
    return rank
