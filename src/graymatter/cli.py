"""The ``graymatter`` command line: a thin layer over the workflows.

Every user error is printed as one readable message on stderr with exit status 2; ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Sequence

from . import __version__
from .commands.executor import add_executor_options, open_executor
from .errors import GraymatterError, InputError

logger = logging.getLogger("graymatter")


def _name_value(text: str, option: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise InputError(f"{option} expects NAME=VALUE, got {text!r}; e.g. {option} "
                         "\"HC > MDD=HC - MDD\".")
    return name.strip(), value.strip()


def add_model_options(p) -> None:
    """Add the options that define a GLM: formula, contrasts, level order, ids, centring."""
    p.add_argument("--model", required=True, help='model formula, e.g. "0 + group + age + tiv"')
    p.add_argument("--contrast", action="append", default=[], metavar="NAME=EXPR",
                   help='t contrast, e.g. "TRD > nonTRD=TRD_UP + TRD_BP - nonTRD_UP - nonTRD_BP" '
                        "(repeatable)")
    p.add_argument("--f-contrast", action="append", default=[], metavar="NAME=EXPR;EXPR",
                   help='F contrast with rows separated by ";", e.g. "cells=A - B; B - C" '
                        "(repeatable)")
    p.add_argument("--level", action="append", default=[], metavar="FACTOR=L1,L2",
                   help="explicit level order of a categorical factor (repeatable)")
    p.add_argument("--id-column", metavar="NAME",
                   help="subject id column (default: participant_id or a recognised alternative)")
    p.add_argument("--no-center", action="store_true",
                   help="do not mean-centre numeric covariates")


def model_options(args) -> tuple[dict[str, str | list[str]], dict[str, list[str]] | None]:
    """The contrasts and level orders given by :func:`add_model_options`' options."""
    contrasts: dict[str, str | list[str]] = {}
    for text in args.contrast:
        name, expr = _name_value(text, "--contrast")
        contrasts[name] = expr
    for text in args.f_contrast:
        name, expr = _name_value(text, "--f-contrast")
        contrasts[name] = [row.strip() for row in expr.split(";") if row.strip()]
    if not contrasts:
        raise InputError("no contrast given: add at least one --contrast NAME=EXPR "
                         "(or --f-contrast).")
    levels = {}
    for text in args.level:
        factor, values = _name_value(text, "--level")
        levels[factor] = [v.strip() for v in values.split(",") if v.strip()]
    return contrasts, levels or None


def _add_glm(sub) -> None:
    p = sub.add_parser(
        "glm", help="fit a mass-univariate GLM to voxel images or a regions table",
        description="Fit one OLS model per voxel or region and write t/F/z/p maps or tables, "
                    "the design matrix (TSV, PNG, SVG) and a JSON provenance sidecar.",
        epilog='example: graymatter glm --participants participants.tsv --images "mri/mwp1*.nii" '
               '--model "0 + group + age + sex + tiv" --contrast "HC > MDD=HC - MDD" --out glm')
    p.add_argument("--participants", required=True, metavar="FILE",
                   help="participants table (BIDS participants.tsv or CSV), one row per subject")
    data = p.add_mutually_exclusive_group(required=True)
    data.add_argument("--images", nargs="+", metavar="IMG",
                      help="NIfTI images: a quoted glob pattern or a list of files, matched to "
                           "participants by subject id")
    data.add_argument("--regions", metavar="FILE", help="subjects x regions table (CSV/TSV)")
    p.add_argument("--mask", metavar="FILE",
                   help="analysis mask (default: MNI152 gray-matter mask resampled to the data)")
    add_model_options(p)
    p.add_argument("--float32", action="store_true",
                   help="fit in single precision (half the memory; default float64)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    inf = p.add_argument_group("corrected inference")
    inf.add_argument("--inference", nargs="+", choices=["permutation", "rft"], default=[],
                     help="family-wise error methods: permutation (Freedman-Lane / sign-flip; "
                          "voxel, cluster and optional TFCE) and/or rft (random field theory, "
                          "like SPM; voxels only). FDR is always added.")
    inf.add_argument("--n-perm", type=int, default=5000, metavar="N",
                     help="number of permutations (default 5000)")
    height = inf.add_mutually_exclusive_group()
    height.add_argument("--height-p", type=float, metavar="P",
                        help="cluster-forming height as uncorrected p (default 0.001)")
    height.add_argument("--height-t", type=float, metavar="T",
                        help="cluster-forming height as a t (or F) value")
    inf.add_argument("--connectivity", type=int, choices=[6, 18, 26], default=18,
                     help="voxel neighbourhood for clusters (default 18, like SPM)")
    inf.add_argument("--tfce", action="store_true",
                     help="threshold-free cluster enhancement (E=0.5, H=2) with permutation FWE")
    inf.add_argument("--two-sided", action="store_true",
                     help="regions only: test |t| (voxel contrasts are one-sided, like SPM)")
    inf.add_argument("--seed", type=int, default=0, help="random seed of the permutations")
    inf.add_argument("--n-jobs", type=int, default=1, help="parallel workers for permutations")
    inf.add_argument("--atlas", metavar="NIFTI",
                     help="label atlas for the cluster table (default: Desikan-Killiany)")
    inf.add_argument("--atlas-labels", metavar="TABLE", help="label table (TSV/CSV) of --atlas")
    p.add_argument("--zarr", metavar="STORE",
                   help="stream subjects x voxels through this zarr folder (written from the "
                        "images on the first run, reused after checks): memory bounded by a "
                        "voxel block; inference is voxel-wise max-T and FDR")
    add_executor_options(p)


def _run_glm(args) -> int:
    from .workflows.glm import run_glm
    from .workflows.inference import InferenceSettings

    contrasts, levels = model_options(args)
    images = None
    if args.images is not None:
        images = args.images[0] if len(args.images) == 1 else args.images
    inference = InferenceSettings(
        methods=tuple(args.inference), n_perm=args.n_perm, height_p=args.height_p,
        height_t=args.height_t, connectivity=args.connectivity, tfce=args.tfce,
        two_sided=args.two_sided, random_state=args.seed, n_jobs=args.n_jobs, atlas=args.atlas,
        atlas_labels=args.atlas_labels)
    with open_executor(args) as executor:
        out = run_glm(args.participants, images=images, regions=args.regions, mask=args.mask,
                      model=args.model, contrasts=contrasts, levels=levels,
                      center=not args.no_center, id_column=args.id_column,
                      dtype="float32" if args.float32 else "float64", out_dir=args.out,
                      inference=inference, progress=not args.quiet, executor=executor,
                      store=args.zarr)
    if any(inf.table is not None for inf in out.inference.values()):
        from .report.cluster_table import format_cluster_table

        for name, inf in out.inference.items():
            print(f"\n{name}: clusters at {inf.height:.2f} (cluster-forming height)")
            print(format_cluster_table(inf.table))
    print(f"wrote {len(out.files)} files to {out.out_dir}")
    return 0


def _run_demo(args) -> int:
    from .workflows.demo import run_demo

    print(run_demo(args.out, n_perm=args.n_perm, random_state=args.seed, tfce=not args.no_tfce,
                   progress=not args.quiet, studies=tuple(args.studies)))
    return 0


def _run_study(args) -> int:
    from .config import LongitudinalSpec, load_any_study
    from .workflows.study import run_study

    spec = load_any_study(args.study)  # dispatch on the file's `type`
    if isinstance(spec, LongitudinalSpec):
        if args.dry_run:
            raise InputError("--dry-run plans cross-sectional (voxel or region) study files; a "
                             "longitudinal study holds only subjects x regions (a few MB) and "
                             "needs no plan: run it without --dry-run.")
        from .workflows.demo import study_b_text
        from .workflows.study_b import run_study_b

        with open_executor(args) as executor:
            print(study_b_text(run_study_b(spec, progress=not args.quiet, executor=executor)))
        return 0
    if args.dry_run:
        from .workflows.plan import plan_study

        kind, workers = "serial", 1
        if args.dask_local:
            kind, workers = "dask", args.dask_local
        elif args.scheduler:
            kind, workers = "dask", _scheduler_workers(args.scheduler)
        elif (args.n_jobs or spec.inference.get("n_jobs", 1)) != 1:
            kind, workers = "joblib", args.n_jobs or spec.inference.get("n_jobs", 1)
        print(plan_study(spec, executor=kind, n_workers=workers).to_text())
        return 0
    with open_executor(args) as executor:
        out = run_study(spec, progress=not args.quiet, n_jobs=args.n_jobs, executor=executor,
                        exclude_qc=args.exclude_qc)
    if out.table1 is not None:
        print(out.table1.to_markdown())
    if any(inf.table is not None for inf in out.glm.inference.values()):
        from .report.cluster_table import format_cluster_table

        for name, inf in out.glm.inference.items():
            print(f"\n{name}: clusters above {inf.height:.2f} (cluster-forming height)")
            print(format_cluster_table(inf.table))
    print(f"\nresults in {out.glm.out_dir}")
    return 0


def _scheduler_workers(address: str) -> int:
    """Workers connected to a running dask scheduler (for the plan)."""
    from .parallel import get_executor

    with get_executor("dask", scheduler=address) as ex:
        return max(ex.n_workers, 1)


def _run_simulate(args) -> int:
    from .datasets.simulate import simulate_vbm_cohort
    from .datasets.study_a import EFFECTS, study_a_participants

    if args.study_a:
        cohort = simulate_vbm_cohort(args.out, participants=study_a_participants(args.seed),
                                     effects=EFFECTS, resolution=args.resolution,
                                     random_state=args.seed)
    else:
        groups = {}
        for item in args.groups.split(","):
            name, _, size = item.partition("=")
            if not size.strip().isdigit():
                raise InputError(f"--groups expects NAME=SIZE pairs like HC=20,MDD=20; got "
                                 f"{args.groups!r}.")
            groups[name.strip()] = int(size)
        cohort = simulate_vbm_cohort(args.out, groups=groups, effects=(),
                                     resolution=args.resolution, random_state=args.seed)
    print(f"wrote {len(cohort.images)} simulated images and {cohort.participants_file}")
    return 0


def build_parser() -> tuple[argparse.ArgumentParser, dict]:
    """Return the ``graymatter`` argument parser and its handlers by command name."""
    parser = argparse.ArgumentParser(
        prog="graymatter",
        description="Gray-matter morphometry studies end to end.")
    parser.add_argument("--version", action="version", version=f"graymatter {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or info messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_glm(sub)
    demo = sub.add_parser("demo", help="run Study A and Study B end to end on simulated cohorts "
                                       "(offline)")
    demo.add_argument("--out", default="graymatter-demo", metavar="DIR", help="output folder")
    demo.add_argument("--n-perm", type=int, default=1000, metavar="N",
                      help="permutations per contrast (default 1000)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--no-tfce", action="store_true", help="skip TFCE (faster)")
    demo.add_argument("--studies", nargs="+", choices=["A", "B"], default=["A", "B"],
                      help="which studies to run (default: A B)")
    run = sub.add_parser("run", help="run a study file (YAML) end to end")
    run.add_argument("study", metavar="STUDY.yaml")
    run.add_argument("--n-jobs", type=int, help="override the study's inference.n_jobs")
    run.add_argument("--exclude-qc", choices=["none", "fail", "warn"], default=None,
                     help="leave subjects out of the GLM by preprocessing QC status (overrides "
                          "the study file's preprocess: exclude_qc; default: keep everyone)")
    run.add_argument("--dry-run", action="store_true",
                     help="print the task plan and estimated memory, and stop")
    add_executor_options(run)
    sim = sub.add_parser("simulate", help="write a simulated VBM cohort (images + participants)")
    sim.add_argument("--out", required=True, metavar="DIR")
    what = sim.add_mutually_exclusive_group(required=True)
    what.add_argument("--study-a", action="store_true",
                      help="Study A's 125 participants with effects at the published peaks")
    what.add_argument("--groups", metavar="NAME=N,…", help="group sizes, no planted effect")
    sim.add_argument("--resolution", type=int, default=2, choices=[1, 2, 3],
                     help="voxel size (mm) of the MNI grid (default 2)")
    sim.add_argument("--seed", type=int, default=0)
    commands = {"glm": _run_glm, "demo": _run_demo, "run": _run_study, "simulate": _run_simulate}
    # Subcommand modules import this module's helpers, so they are imported late.
    from .commands import preprocess, regional, transcriptomics

    for module in (preprocess, regional, transcriptomics):
        commands.update(module.register(sub))
    return parser, commands


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"graymatter: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 2 error)."""
    parser, commands = build_parser()
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("graymatter: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if args.quiet else logging.INFO)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return commands[args.command](args)
    except GraymatterError as err:
        if args.debug:
            raise
        print(f"graymatter: error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # a bug, not a user error: say so, keep the message short
        if args.debug:
            raise
        print(f"graymatter: unexpected error ({type(err).__name__}: {err}); this is a bug — "
              "rerun with --debug and report the traceback.", file=sys.stderr)
        return 2
    finally:
        logger.removeHandler(handler)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
