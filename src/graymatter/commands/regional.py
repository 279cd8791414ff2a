"""Regional and longitudinal subcommands of ``graymatter``: thin wrappers over the workflows.

``freesurfer-table``, ``regional``, ``longitudinal`` and ``pls-clinical``; :func:`register` adds
them to the main parser (see :mod:`graymatter.cli`) and returns their handlers.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
import pandas as pd

from ..errors import InputError
from .options import add_model_options, model_options, seed

_TOP = 5  # regions listed in the printed summaries


def _table_text(frame: pd.DataFrame) -> str:
    return frame.to_string(float_format=lambda v: f"{v:.4g}")


def _top(frame: pd.DataFrame, by: str, columns: list[str]) -> str:
    order = np.argsort(-np.nan_to_num(np.abs(frame[by].to_numpy(dtype=float)), nan=-1.0),
                       kind="stable")
    return _table_text(frame.iloc[order[:_TOP]][[c for c in columns if c in frame.columns]])


def _session_options(p) -> None:
    p.add_argument("--id-column", metavar="NAME",
                   help="subject id column of the tables (default: participant_id, subject, "
                        "SubjID... recognised automatically)")
    p.add_argument("--session-pre", metavar="LABEL",
                   help="session label in the row ids of --pre (e.g. ses-pre for sub-01_ses-pre, "
                        "01 for FreeSurfer 13900_01.long.13900_base); other rows are ignored")
    p.add_argument("--session-post", metavar="LABEL", help="the same for --post")
    p.add_argument("--columns", nargs="+", metavar="PATTERN",
                   help='region columns to analyse, as shell patterns (e.g. "lh_*" "rh_*"; '
                        "default: all columns)")


# ================================================================================ freesurfer-table

def _add_freesurfer_table(sub) -> None:
    p = sub.add_parser(
        "freesurfer-table", help="collect FreeSurfer stats of a SUBJECTS_DIR into one table",
        description="Read lh/rh.<annot>.stats (and aseg.stats) of every subject and write one "
                    "subjects x regions TSV with a JSON provenance sidecar (file hashes, "
                    "FreeSurfer versions).",
        epilog="example: graymatter freesurfer-table $SUBJECTS_DIR --annot HCP-MMP1 "
               "--measure GrayVol --out gmv.tsv")
    p.add_argument("subjects_dir", metavar="SUBJECTS_DIR", help="FreeSurfer subjects folder")
    p.add_argument("--out", required=True, metavar="TABLE.tsv", help="output table (.tsv)")
    p.add_argument("--annot", default="aparc",
                   help="annotation of ?h.<annot>.stats, e.g. aparc, aparc.a2009s, HCP-MMP1 "
                        "(default aparc)")
    p.add_argument("--measure", default="GrayVol",
                   help="surface measure: GrayVol (default; adds aseg volumes), ThickAvg, "
                        "SurfArea, ...")
    p.add_argument("--subjects", nargs="+", metavar="NAME",
                   help="subject folders to read (default: all FreeSurfer subjects)")
    p.add_argument("--skip-incomplete", action="store_true",
                   help="leave out subjects lacking a stats file (default: error)")


def _run_freesurfer_table(args) -> int:
    from ..workflows.longitudinal import freesurfer_table

    wide = freesurfer_table(args.subjects_dir, out=args.out, annot=args.annot,
                            measure=args.measure, subjects=args.subjects,
                            missing="skip" if args.skip_incomplete else "error")
    print(f"{wide.shape[0]} subjects x {wide.shape[1]} columns ({args.annot} {args.measure}) "
          f"-> {args.out}")
    return 0


# ================================================================================ regional

def _add_regional(sub) -> None:
    p = sub.add_parser(
        "regional", help="cross-sectional GLM of a subjects x regions table",
        description="Fit one OLS model per region (e.g. cortical thickness of an ENIGMA or "
                    "FreeSurfer table), with max-T permutation FWE and FDR across regions.",
        epilog='example: graymatter regional --participants cov.csv --regions CortThick.csv '
               '--columns "*_thickavg" --model "1 + Dx + Age + Sex + ICV" '
               '--contrast "MDD > HC=Dx" --inference permutation --out regional')
    p.add_argument("--participants", required=True, metavar="FILE",
                   help="participants table (TSV/CSV), one row per subject")
    p.add_argument("--regions", required=True, nargs="+", metavar="FILE",
                   help="subjects x regions table (CSV/TSV), or FreeSurfer asegstats2table / "
                        "aparcstats2table output(s): one file, or the lh and rh files")
    p.add_argument("--columns", nargs="+", metavar="PATTERN",
                   help='region columns to analyse, as shell patterns (e.g. "*_thickavg"; '
                        "default: every column)")
    add_model_options(p)
    p.add_argument("--inference", nargs="+", choices=["permutation"], default=[],
                   help="family-wise error over regions by permutation (Freedman-Lane max-T); "
                        "FDR is always added")
    p.add_argument("--n-perm", type=int, default=5000, metavar="N",
                   help="number of permutations (default 5000)")
    p.add_argument("--two-sided", action="store_true", help="test |t| (default: t > 0)")
    p.add_argument("--seed", type=seed, default=0, help="random seed of the permutations")
    p.add_argument("--n-jobs", type=int, default=1, help="parallel workers for permutations")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")


def _run_regional(args) -> int:
    from ..workflows.inference import InferenceSettings
    from ..workflows.longitudinal import run_regional

    contrasts, levels = model_options(args)
    inference = InferenceSettings(methods=tuple(args.inference), n_perm=args.n_perm,
                                  two_sided=args.two_sided, random_state=args.seed,
                                  n_jobs=args.n_jobs)
    regions = args.regions[0] if len(args.regions) == 1 else args.regions
    out = run_regional(args.participants, regions=regions, columns=args.columns,
                       model=args.model, contrasts=contrasts, levels=levels,
                       center=not args.no_center, id_column=args.id_column, out_dir=args.out,
                       inference=inference, progress=not args.quiet)
    for name, result in out.results.items():
        frame = result.to_frame(index=pd.Index(out.features, name="region"))
        stat = "t" if "t" in frame.columns else "f"
        if name in out.inference:
            for key, values in out.inference[name].maps.items():
                frame[key] = values
        print(f"\n{name} ({stat.upper()}, df {out.model.df_resid_}): top {_TOP} of "
              f"{len(frame)} regions by |{stat}|")
        print(_top(frame, stat, [stat, "p", "p_fdr", "p_fwe_perm"]))
    print(f"\nwrote {len(out.files)} files to {out.out_dir}")
    return 0


# ================================================================================ longitudinal

def _add_longitudinal(sub) -> None:
    p = sub.add_parser(
        "longitudinal", help="regional paired comparison, post vs pre (e.g. before/after ECT)",
        description="Per region, test the change post - pre (adjusted for covariates such as "
                    "delta TIV) with max-T sign-flipping FWE and FDR across regions.",
        epilog='example: graymatter longitudinal --participants participants.tsv --pre '
               'gmv_pre.csv --post gmv_post.csv --tiv tiv_pre tiv_post '
               '--covariates "1 + delta_tiv" --out paired')
    p.add_argument("--participants", required=True, metavar="FILE",
                   help="participants table with the covariates, one row per subject")
    p.add_argument("--pre", required=True, metavar="FILE", help="regions table before (CSV/TSV)")
    p.add_argument("--post", required=True, metavar="FILE", help="regions table after (CSV/TSV)")
    p.add_argument("--covariates", default="1", metavar="FORMULA",
                   help='change model, e.g. "1 + delta_tiv" (default "1": paired t-test)')
    p.add_argument("--tiv", nargs=2, metavar=("PRE", "POST"),
                   help="participants columns of TIV before and after: adds delta_tiv "
                        "(post - pre) for --covariates, as a study file's tiv: does")
    _session_options(p)
    p.add_argument("--n-perm", type=int, default=5000, metavar="N",
                   help="sign-flips for FWE across regions (default 5000; 0 skips)")
    p.add_argument("--one-sided", action="store_true",
                   help="FWE for increases only (default: two-sided, |t|)")
    p.add_argument("--seed", type=seed, default=0, help="random seed of the sign-flips")
    p.add_argument("--n-jobs", type=int, default=1, help="parallel workers for permutations")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")


def _run_longitudinal(args) -> int:
    from ..workflows.longitudinal import PAIRED_TABLE, run_longitudinal

    res = run_longitudinal(args.participants, pre=args.pre, post=args.post, out_dir=args.out,
                           covariates_formula=args.covariates, id_column=args.id_column,
                           session_pre=args.session_pre, session_post=args.session_post,
                           columns=args.columns, n_perm=args.n_perm,
                           two_sided=not args.one_sided, random_state=args.seed,
                           n_jobs=args.n_jobs, progress=not args.quiet, tiv=args.tiv)
    table = res.table
    n_fwe = int((table["p_fwe"] < 0.05).sum())
    n_fdr = int((table["p_fdr"] < 0.05).sum())
    print(f"change ~ {args.covariates}: {res.design.n_subjects} subjects x {len(table)} regions; "
          f"{n_fwe} region(s) with p_FWE < 0.05 ({res.n_perm} sign-flips), {n_fdr} with "
          "p_FDR < 0.05")
    print(_top(table, "t", ["mean_change", "t", "df", "p", "p_fwe", "p_fdr", "cohens_dz"]))
    print(f"wrote {args.out}/{PAIRED_TABLE} and its JSON sidecar")
    return 0


# ================================================================================ pls-clinical

def _add_pls_clinical(sub) -> None:
    p = sub.add_parser(
        "pls-clinical", help="PLS of clinical change on regional change (e.g. dHAMD ~ dGMV)",
        description="PLS regression with regional change (post - pre) as predictors and "
                    "clinical change as response: variance explained, r with permutation p, "
                    "bootstrap z of regional weights and cross-validated predictions.",
        epilog="example: graymatter pls-clinical --participants participants.tsv --pre "
               "gmv_pre.csv --post gmv_post.csv --clinical-pre hamd_pre --clinical-post "
               "hamd_post --out pls")
    p.add_argument("--participants", required=True, metavar="FILE",
                   help="participants table with the clinical scores")
    p.add_argument("--pre", required=True, metavar="FILE", help="regions table before (CSV/TSV)")
    p.add_argument("--post", required=True, metavar="FILE", help="regions table after (CSV/TSV)")
    p.add_argument("--clinical-pre", required=True, metavar="COLUMN",
                   help="participants column of the clinical score before, e.g. hamd_pre")
    p.add_argument("--clinical-post", required=True, metavar="COLUMN",
                   help="participants column of the clinical score after, e.g. hamd_post")
    _session_options(p)
    p.add_argument("--n-components", type=int, default=1, metavar="K",
                   help="PLS components (default 1)")
    p.add_argument("--n-perm", type=int, default=1000, metavar="N",
                   help="permutations for p of r (default 1000)")
    p.add_argument("--n-boot", type=int, default=1000, metavar="N",
                   help="bootstrap resamples for regional z (default 1000)")
    p.add_argument("--cv", default="loo", metavar="loo|K|none",
                   help="cross-validation: leave-one-out (default), K folds, or none")
    p.add_argument("--seed", type=seed, default=0, help="random seed")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")


def _cv(text: str):
    value = text.strip().lower()
    if value == "loo":
        return "loo"
    if value == "none":
        return None
    if value.isdigit() and int(value) >= 2:
        return int(value)
    raise InputError(f"--cv expects 'loo', a number of folds >= 2 or 'none', got {text!r}.")


def _run_pls_clinical(args) -> int:
    from ..workflows.longitudinal import run_pls_clinical

    res = run_pls_clinical(args.participants, pre=args.pre, post=args.post,
                           clinical_pre=args.clinical_pre, clinical_post=args.clinical_post,
                           out_dir=args.out, n_components=args.n_components, n_perm=args.n_perm,
                           n_boot=args.n_boot, cv=_cv(args.cv), random_state=args.seed,
                           id_column=args.id_column, session_pre=args.session_pre,
                           session_post=args.session_post, columns=args.columns)
    share = ", ".join(f"{100 * v:.1f}%" for v in res.variance_explained)
    print(f"PLS of {args.clinical_post} - {args.clinical_pre} on regional change "
          f"({res.fit.x_scores.shape[0]} subjects x {res.regional.shape[0]} regions)")
    print(f"variance explained per component: {share}")
    print(f"r = {res.r:.3f} (in-sample, optimistic), p_perm = {res.p_perm:.4g} "
          f"({res.permutation.n_perm} permutations); cross-validated r = {res.cv_r:.3f}")
    print(f"top {_TOP} regions by |bootstrap z| of PLS1:")
    print(_top(res.regional, "z_pls1", ["weight_pls1", "se_pls1", "z_pls1"]))
    print(f"wrote pls_clinical.json, pls_clinical_regional.tsv and "
          f"pls_clinical_predictions.tsv to {args.out}")
    return 0


# ================================================================================ registration

def register(subparsers) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Add the regional subcommands to ``subparsers``; return ``{command: handler}``.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The ``add_subparsers()`` object of the ``graymatter`` parser.

    Returns
    -------
    dict of str to callable
        Each handler takes the parsed arguments (with the global ``quiet``) and returns 0.

    Examples
    --------
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="graymatter")
    >>> parser.add_argument("--quiet", action="store_true")  # doctest: +ELLIPSIS
    _StoreTrueAction(...)
    >>> sorted(register(parser.add_subparsers(dest="command")))
    ['freesurfer-table', 'longitudinal', 'pls-clinical', 'regional']
    """
    _add_freesurfer_table(subparsers)
    _add_regional(subparsers)
    _add_longitudinal(subparsers)
    _add_pls_clinical(subparsers)
    return {"freesurfer-table": _run_freesurfer_table, "regional": _run_regional,
            "longitudinal": _run_longitudinal, "pls-clinical": _run_pls_clinical}


__all__ = ["register"]
