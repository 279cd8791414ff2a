"""Paired (pre/post) regional comparisons: change scores, one GLM, max-T sign-flipping.

Study B compares regional gray-matter volume after ECT with before, per region, adjusting for
head size. A paired comparison is a one-sample test on the change scores ``post − pre``, so the
model is ``change ~ 1 + covariates`` fitted to every region at once by
:class:`~graymatter.stats.glm.MassUnivariateGLM`, and the intercept is tested. Numeric covariates
are mean-centred by :func:`~graymatter.stats.design.make_design`, so the intercept is the mean
change of a subject with average covariates, and without covariates the t-test is exactly the
paired t-test (``scipy.stats.ttest_rel``).

Which TIV covariate?

- ``formula="1 + delta_tiv"`` with ``delta_tiv = tiv_post − tiv_pre`` (recommended for volumes):
  TIV does not change in adults over weeks, so a change in the TIV *estimate* between sessions is
  measurement drift (scanner, segmentation, hydration) that also shows in the regional volumes;
  ΔTIV removes it from the regional change.
- ``formula="1 + tiv_pre"`` with baseline TIV: asks whether change depends on head size (changes
  in mm³ scale with head size); it does not remove session drift.

Other repeated-measures questions use the same function: any ``change ~ covariates`` model, e.g.
``"1 + age + delta_tiv"``. To test something other than the mean change (e.g. whether change
differs between groups or follows clinical change), build :func:`change_scores` and fit them with
:func:`~graymatter.stats.glm.fit_glm` / :func:`~graymatter.stats.permutation.permutation_test`
and the contrast of interest.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from graymatter.errors import InputError, format_choices
from graymatter.stats.contrasts import parse_contrast
from graymatter.stats.design import Design, make_design
from graymatter.stats.glm import MassUnivariateGLM

__all__ = ["PairedResult", "change_scores", "paired_change"]

logger = logging.getLogger("graymatter")

_INTERCEPT = "Intercept"  # formulaic's name of the constant column


def _check_frame(frame, name: str) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"{name} must be a pandas DataFrame (subjects x regions) indexed by subject "
                         f"id, got {type(frame).__name__}")
    for axis, what in ((frame.index, "subject ids"), (frame.columns, "region names")):
        if axis.has_duplicates:
            raise InputError(f"{name} has duplicated {what}: "
                             f"{format_choices(axis[axis.duplicated()].unique())}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise InputError(f"{name} is empty (shape {frame.shape}); give subjects x regions")
    try:
        values = frame.to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        bad = [str(c) for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
        raise InputError(f"{name} must hold numbers; non-numeric region column(s): "
                         f"{format_choices(bad)}") from None
    bad = ~np.isfinite(values)
    if bad.any():
        regions = frame.columns[bad.any(axis=0)]
        subjects = frame.index[bad.any(axis=1)]
        raise InputError(f"{name} has missing or infinite values in region(s) {format_choices(regions)} "
                         f"for subject(s) {format_choices(subjects)}; impute them or drop those "
                         "regions/subjects from both sessions")
    return frame


def change_scores(pre: pd.DataFrame, post: pd.DataFrame) -> pd.DataFrame:
    """Change ``post − pre`` per subject and region, matching subjects and regions by label.

    Parameters
    ----------
    pre, post : (n_subjects, n_regions) pandas.DataFrame
        One row per subject (index = subject id), one column per region, in any order.

    Returns
    -------
    (n_subjects, n_regions) pandas.DataFrame
        In ``pre``'s row and column order.

    Raises
    ------
    InputError
        Subjects or regions present in only one session, duplicated labels, non-numeric or
        missing values (named by region and subject).

    Examples
    --------
    >>> import pandas as pd
    >>> pre = pd.DataFrame({"r1": [1.0, 2.0], "r2": [3.0, 4.0]}, index=["s1", "s2"])
    >>> post = pd.DataFrame({"r2": [5.0, 3.0], "r1": [2.0, 2.5]}, index=["s2", "s1"])
    >>> change_scores(pre, post)
         r1   r2
    s1  1.5  0.0
    s2  0.0  1.0
    """
    pre = _check_frame(pre, "pre")
    post = _check_frame(post, "post")
    for axis, what in ((0, "subjects"), (1, "regions")):
        a, b = pre.axes[axis], post.axes[axis]
        only_pre, only_post = a.difference(b), b.difference(a)
        if len(only_pre) or len(only_post):
            raise InputError(f"pre and post must hold the same {what} (matched by label, not order): "
                             f"only in pre: {format_choices(only_pre) or 'none'}; only in post: "
                             f"{format_choices(only_post) or 'none'}. Drop them or fix the labels")
    post = post.loc[pre.index, pre.columns]
    return pd.DataFrame(post.to_numpy(dtype=np.float64) - pre.to_numpy(dtype=np.float64),
                        index=pre.index, columns=pre.columns)


@dataclass(frozen=True, eq=False)
class PairedResult:
    """Regional paired comparison (post vs pre).

    Attributes
    ----------
    table : pandas.DataFrame
        One row per region (index = region name) with columns

        - ``mean_change``: raw mean of ``post − pre`` over subjects;
        - ``estimate``, ``se``: the intercept (mean change at the average covariates; equals
          ``mean_change`` without covariates) and its standard error;
        - ``t``, ``df``, ``p`` (two-sided), ``z``: parametric test of the intercept; positive t is
          an increase after treatment;
        - ``p_fwe``: family-wise error corrected p over regions, max-T over sign-flips (max |t|
          when ``two_sided``, else one-sided for increases);
        - ``p_fdr``: Benjamini-Hochberg q of ``p`` over regions;
        - ``cohens_dz``: ``estimate`` / residual SD. Without covariates this is the classic
          ``d_z = mean change / SD of changes``; with covariates it is the adjusted mean change in
          units of the change SD not explained by the covariates.
    design : Design
        The design of ``change ~ formula``.
    n_perm : int
        Sign-flips used for ``p_fwe``.
    two_sided : bool
    random_state : object
        Seed given.
    """

    table: pd.DataFrame
    design: Design
    n_perm: int
    two_sided: bool
    random_state: object = None

    def to_dict(self) -> dict:
        """JSON-able provenance: design, n_perm, sidedness, seed, numbers of subjects and regions."""
        seed = self.random_state if isinstance(self.random_state, (int, type(None))) else repr(self.random_state)
        return {"analysis": "paired_change", "model": f"change ~ {self.design.formula}",
                "tested": "Intercept (mean change at average covariates)", "design": self.design.to_dict(),
                "n_regions": int(self.table.shape[0]), "n_perm": int(self.n_perm),
                "two_sided": bool(self.two_sided), "fwe": "max-T sign-flipping", "fdr": "Benjamini-Hochberg",
                "random_state": seed}


def paired_change(pre: pd.DataFrame, post: pd.DataFrame, *, covariates: pd.DataFrame | None = None,
                  formula: str = "1", n_perm: int = 5000, two_sided: bool = True, random_state=None,
                  n_jobs: int = 1, progress: bool = True, executor=None) -> PairedResult:
    """Compare regional values after vs before treatment in the same subjects.

    The model is ``change ~ formula`` with ``change = post − pre`` per region, fitted by OLS to all
    regions at once; the intercept (mean change at the average covariates, since numeric
    covariates are mean-centred) is tested with a t contrast and, for family-wise error control
    over regions, by max-T sign-flipping of the residuals.

    Parameters
    ----------
    pre, post : (n_subjects, n_regions) pandas.DataFrame
        Regional values per session, index = subject id; rows and columns are matched by label.
    covariates : pandas.DataFrame, optional
        One row per subject (index = subject id, may list more subjects than ``pre``, which are
        ignored) with the columns the formula uses, e.g. ``delta_tiv`` or ``tiv_pre``.
    formula : str, default="1"
        Right-hand side of the change model; must keep the intercept. ``"1"`` is the plain paired
        t-test; ``"1 + delta_tiv"`` (recommended for volumes, see the module notes) or
        ``"1 + tiv_pre"`` adjust for head size.
    n_perm : int, default=5000
        Sign-flips for ``p_fwe``; 0 skips the permutation test (``p_fwe`` is then NaN).
    two_sided : bool, default=True
        FWE over ``|t|`` (increases and decreases); False tests increases only.
    random_state : None, int or numpy.random.Generator
        Seed of the sign-flips (same seed, same p_fwe, whatever ``n_jobs``).
    n_jobs : int, default=1
        Parallel workers of the permutation test.
    progress : bool, default=True
        Show a progress bar during the permutations.
    executor : Executor, optional
        Where the sign-flip batches run (see :func:`~graymatter.stats.permutation.permutation_test`).

    Returns
    -------
    PairedResult

    Raises
    ------
    InputError
        Mismatched subjects or regions between sessions, missing values (named), covariates
        missing for some subjects, or a formula without intercept.
    DesignError
        A formula the covariates cannot support.

    Examples
    --------
    >>> from graymatter.datasets.simulate_longitudinal import simulate_longitudinal_cohort
    >>> cohort = simulate_longitudinal_cohort(n_subjects=24, regions=20, random_state=0)
    >>> covs = (cohort.participants["tiv_post"] - cohort.participants["tiv_pre"]).to_frame("delta_tiv")
    >>> res = paired_change(cohort.pre, cohort.post, covariates=covs, formula="1 + delta_tiv",
    ...                     n_perm=199, random_state=0, progress=False)
    >>> res.table.columns.tolist()[:4]
    ['mean_change', 'estimate', 'se', 't']
    """
    change = change_scores(pre, post)
    subjects = change.index
    if covariates is None:
        covariates = pd.DataFrame(index=subjects)
    elif not isinstance(covariates, pd.DataFrame):
        raise InputError(f"covariates must be a pandas DataFrame indexed by subject id, got "
                         f"{type(covariates).__name__}")
    else:
        missing = subjects.difference(covariates.index)
        if len(missing):
            raise InputError(f"covariates has no row for subject(s) {format_choices(missing)} of pre/"
                             "post; add them (covariates are matched by subject id)")
        if covariates.index.has_duplicates:
            raise InputError(f"covariates has duplicated subject ids: "
                             f"{format_choices(covariates.index[covariates.index.duplicated()].unique())}")
        extra = covariates.index.difference(subjects)
        if len(extra):
            logger.info("paired_change: %d covariate row(s) without pre/post data ignored", len(extra))
        covariates = covariates.loc[subjects]
    design = make_design(covariates, formula)
    if _INTERCEPT not in design.columns:
        raise InputError(f"formula '{formula}' has no intercept; the paired test is the intercept of "
                         "change ~ formula, so keep it (e.g. '1 + delta_tiv', not '0 + delta_tiv')")
    contrast = parse_contrast("change", _INTERCEPT, design)
    n_perm = int(n_perm)
    if n_perm < 0:
        raise InputError(f"n_perm must be >= 0, got {n_perm}")

    Y = change.to_numpy()
    glm = MassUnivariateGLM().fit(Y, design.X)
    res = glm.t_contrast(contrast.vector)
    if n_perm:
        from graymatter.stats.permutation import permutation_test  # local: optional heavy path

        perm = permutation_test(Y, design.X, contrast.vector, n_perm=n_perm, method="sign-flip",
                                two_sided=two_sided, random_state=random_state, n_jobs=n_jobs,
                                progress=progress, executor=executor)
        p_fwe = np.asarray(perm.p_fwe, dtype=np.float64)
    else:
        p_fwe = np.full(Y.shape[1], np.nan)
    from graymatter.stats.multiple import fdr_bh

    table = pd.DataFrame({
        "mean_change": Y.mean(axis=0), "estimate": res.estimate, "se": res.se, "t": res.t,
        "df": np.full(Y.shape[1], res.df, dtype=np.int64), "p": res.p, "z": res.z,
        "p_fwe": p_fwe, "p_fdr": np.asarray(fdr_bh(res.p), dtype=np.float64),
        "cohens_dz": res.cohens_d}, index=change.columns)
    table.index.name = "region"
    return PairedResult(table=table, design=design, n_perm=n_perm, two_sided=bool(two_sided),
                        random_state=random_state)
