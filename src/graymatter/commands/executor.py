"""Command-line options that choose where tasks run: ``--dask-local N`` or ``--scheduler ADDRESS``.

Shared by ``run``, ``glm`` and ``preprocess``; without them the command runs locally with its own
``--n-jobs``. See ``docs/scaling.md`` for a SLURM cluster with dask-jobqueue.
"""

from __future__ import annotations

import argparse
import contextlib

__all__ = ["add_executor_options", "open_executor"]


def add_executor_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--dask-local N`` and ``--scheduler ADDRESS`` (mutually exclusive) to ``parser``."""
    group = parser.add_argument_group("where tasks run (default: this process, --n-jobs)")
    where = group.add_mutually_exclusive_group()
    where.add_argument("--dask-local", type=int, metavar="N",
                       help="start a dask LocalCluster with N single-threaded worker processes")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="run tasks on a running dask scheduler, e.g. tcp://10.0.0.1:8786 "
                            "(a SLURM cluster from dask-jobqueue: see docs/scaling.md)")


def open_executor(args: argparse.Namespace):
    """A context manager giving the executor the options ask for, or None (local ``--n-jobs``).

    Examples
    --------
    >>> with open_executor(argparse.Namespace(dask_local=None, scheduler=None)) as ex:
    ...     print(ex)
    None
    """
    if args.dask_local is None and args.scheduler is None:
        return contextlib.nullcontext(None)
    from ..parallel import get_executor

    return get_executor("dask", scheduler=args.scheduler, dask_local=args.dask_local)
