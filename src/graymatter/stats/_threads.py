"""Thread helpers of the statistics engines: how many threads, and a batch split over them.

Kept apart from the numba kernels (:mod:`graymatter.stats._graph`) so that numpy-only users
such as the GLM fit do not import numba.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from graymatter.errors import InputError

__all__ = ["check_n_jobs", "resolve_n_jobs", "run_batch"]


def check_n_jobs(n_jobs):
    """Validate ``n_jobs``: None, -1 or a positive integer (returned as given, ints as int)."""
    if n_jobs is None:
        return None
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or not (
            n_jobs == -1 or n_jobs >= 1):
        raise InputError(f"n_jobs must be a positive integer, -1 (all CPUs) or None (all CPUs "
                         f"unless called from a worker thread); found {n_jobs!r}.")
    return int(n_jobs)


def resolve_n_jobs(n_jobs) -> int:
    """Threads for one batch: k > 0 -> k; -1 -> all CPUs; None -> all CPUs from the main
    thread, 1 from any other thread (a permutation engine's worker already runs in parallel,
    and nesting a pool there would only oversubscribe the CPUs)."""
    n_jobs = check_n_jobs(n_jobs)
    if n_jobs is None:
        if threading.current_thread() is not threading.main_thread():
            return 1
        n_jobs = -1
    return (os.cpu_count() or 1) if n_jobs == -1 else n_jobs


def run_batch(kernel, n_maps: int, n_jobs: int) -> None:
    """Call ``kernel(start, stop)`` on contiguous slices of ``range(n_maps)``, one per thread.

    The kernels write into disjoint slices of preallocated outputs and release the GIL, so the
    result does not depend on the number of threads.
    """
    n_threads = max(1, min(n_jobs, n_maps))
    if n_threads == 1:
        kernel(0, n_maps)
        return
    bounds = np.linspace(0, n_maps, n_threads + 1).astype(int)
    with ThreadPoolExecutor(max_workers=n_threads) as pool:
        futures = [pool.submit(kernel, int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])
                   if b > a]
        for f in futures:
            f.result()
