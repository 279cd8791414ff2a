"""The ``preprocess`` subcommand of ``graymatter``: T1 images -> modulated GM, TIV and QC.

:func:`register` adds it to the main parser (see :mod:`graymatter.cli`) and returns its handler.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from .executor import add_executor_options, open_executor


def _add_preprocess(sub) -> None:
    p = sub.add_parser(
        "preprocess", help="VBM preprocessing: T1 -> modulated GM in MNI, TIV and QC (ANTs)",
        description="N4 bias correction, head-to-brain similarity, brain affine and SyN "
                    "registration to the MNI152 2009 template, Atropos segmentation with "
                    "template priors (deep GM counted as GM), Jacobian-modulated and smoothed "
                    "GM, tissue volumes and TIV, QC pass/warn/fail per subject with reasons. "
                    "Reruns skip finished subjects; subjects that failed QC are listed; "
                    "subjects whose processing failed are listed and the exit status is 1.",
        epilog="example: graymatter preprocess --bids /data/ds001 --out derivatives/graymatter "
               "--n-jobs 2")
    p.add_argument("t1", nargs="*", metavar="T1", help="T1-weighted NIfTI files (.nii/.nii.gz)")
    p.add_argument("--bids", metavar="DIR",
                   help="BIDS dataset: every sub-*/[ses-*/]anat/*_T1w.nii[.gz] (instead of T1)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--resolution", type=float, default=1.5, metavar="MM",
                   help="MNI output voxel size: 1.5 (default, CAT12's grid), 2 or 1")
    p.add_argument("--fwhm", type=float, default=10.0, metavar="MM",
                   help="smoothing of the modulated GM (default 10 mm; 0 = none)")
    p.add_argument("--n-jobs", type=int, default=1, metavar="N",
                   help="subjects processed at once, each in its own process (default 1)")
    p.add_argument("--threads-per-subject", type=int, default=1, metavar="N",
                   help="ITK threads per subject (default 1); keep n-jobs x threads <= cores")
    p.add_argument("--denoise", action="store_true",
                   help="non-local-means denoising before bias correction")
    p.add_argument("--seed", type=int, default=0, help="registration random seed (default 0)")
    p.add_argument("--force", action="store_true", help="redo subjects that are up to date")
    add_executor_options(p)


def _run_preprocess(args) -> int:
    from ..errors import InputError
    from ..workflows.preprocess import QC_TABLE, VOLUMES_TABLE, run_preprocess

    if bool(args.t1) == bool(args.bids):
        raise InputError("give T1 files or --bids DIR (one of them, not both).")
    with open_executor(args) as executor:
        res = run_preprocess(args.t1 or None, bids_dir=args.bids, out_dir=args.out,
                             resolution_mm=args.resolution, fwhm_mm=args.fwhm,
                             denoise=args.denoise, n_jobs=args.n_jobs,
                             threads_per_subject=args.threads_per_subject, random_state=args.seed,
                             force=args.force, progress=not args.quiet, executor=executor)
    counts = res.qc["status"].value_counts()
    print(f"{len(res.qc)} subject(s): {int(counts.get('done', 0))} done, "
          f"{int(counts.get('skipped', 0))} up to date, {int(counts.get('failed', 0))} failed; "
          f"tables {res.out_dir / VOLUMES_TABLE} and {res.out_dir / QC_TABLE}")
    flagged = res.qc.index[res.qc["homogeneity_outlier"].eq(True)].tolist()  # NaN: not assessed
    if flagged:
        print("sample-homogeneity outliers (mean correlation > 2 SD below the sample): "
              + ", ".join(flagged))
    qc_failed = [p for p in res.qc.index[res.qc["qc_status"].eq("fail")] if p not in res.failed]
    for pid in qc_failed:
        print(f"QC FAIL {pid}: {res.qc.loc[pid, 'qc_reasons']} (outputs written; a study keeps "
              "it in the GLM unless exclude_qc: fail / --exclude-qc fail)")
    if res.failed:
        for pid in res.failed:
            print(f"FAILED {pid}: {res.qc.loc[pid, 'error']}")
        print(f"graymatter: error: {len(res.failed)} subject(s) failed: "
              + ", ".join(res.failed))
        return 1
    return 0


def register(subparsers) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Add the ``preprocess`` subcommand to ``subparsers``; return ``{command: handler}``.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The ``add_subparsers()`` object of the ``graymatter`` parser.

    Returns
    -------
    dict of str to callable
        The handler takes the parsed arguments (with the global ``quiet``) and returns 0, or 1
        when some subject failed (each named on standard output).

    Examples
    --------
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="graymatter")
    >>> parser.add_argument("--quiet", action="store_true")  # doctest: +ELLIPSIS
    _StoreTrueAction(...)
    >>> sorted(register(parser.add_subparsers(dest="command")))
    ['preprocess']
    """
    _add_preprocess(subparsers)
    return {"preprocess": _run_preprocess}


__all__ = ["register"]
