"""One executor interface for independent tasks: serial, joblib (local processes) or dask.distributed.

Every parallel step (per-subject preprocessing, permutation or voxel blocks, bootstrap/spin
batches) hands a list of items to :meth:`Executor.map` and gets the results back in the items'
order. Tasks receive explicit seeds from the caller, never from the executor, so the numbers do not
depend on which executor ran them or on how many workers it had.

On dask, each task is submitted with ``retries`` (resubmitted when it raises) and ``pure=False``
(never deduplicated); a task whose worker dies is rescheduled by the scheduler on another worker
(``distributed.scheduler.allowed-failures``, 3 by default), so a lost worker does not lose the run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from graymatter.errors import InputError, format_choices

__all__ = ["Executor", "get_executor", "as_executor"]

logger = logging.getLogger("graymatter")

_KINDS = ("serial", "joblib", "dask")


class Executor:
    """Runs independent tasks and returns their results in order.

    Use :func:`get_executor` to create one. Usable as a context manager (``close`` on exit).

    Attributes
    ----------
    kind : {"serial", "joblib", "dask"}
    n_workers : int
        Number of parallel workers (1 for serial; for dask the workers connected at start).
    client : distributed.Client or None
        The dask client (dask only).
    """

    def __init__(self, kind: str, *, n_jobs: int = 1, client=None, cluster=None, retries: int = 2):
        self.kind, self.n_jobs, self.retries = kind, n_jobs, retries
        self.client, self._cluster = client, cluster
        if client is not None:
            self.n_workers = len(client.scheduler_info().get("workers", {}))
        else:
            self.n_workers = 1 if kind == "serial" else n_jobs

    def share(self, obj):
        """A handle to ``obj`` to put in task items, so a big object is sent to workers once.

        On dask the object is scattered to every worker (``Client.scatter(broadcast=True)``) and
        the handle is a future, which dask replaces by the object inside each task's item; on
        the other executors the handle is the object itself (joblib memory-maps large arrays).

        Examples
        --------
        >>> with get_executor("serial") as ex:
        ...     data = ex.share([1, 2, 3])
        ...     ex.map(sum, [data])
        [6]
        """
        if self.kind != "dask":
            return obj
        if self.client is None:
            raise InputError("This dask executor is closed; create a new one with get_executor().")
        return self.client.scatter(obj, broadcast=True, hash=False)

    def map(self, fn: Callable, items: Iterable, *, progress: bool = False, desc: str = "tasks",
            unit: str = "task") -> list:
        """Apply ``fn`` to every item; return the results in the items' order.

        Parameters
        ----------
        fn : callable
            A picklable (module-level) function of one argument for joblib and dask.
        items : iterable
            Task arguments (small: pass paths, slices and :meth:`share` handles, not big arrays).
        progress : bool, default=False
            Show a progress bar in this process that advances as tasks finish on any worker.
        desc, unit : str
            Label and unit of the progress bar.

        Returns
        -------
        results : list, one per item, in order

        Examples
        --------
        >>> with get_executor("serial") as ex:
        ...     ex.map(abs, [-1, 2, -3])
        [1, 2, 3]
        """
        from tqdm.auto import tqdm

        items = list(items)
        if not items:
            return []
        if self.kind == "dask" and self.client is None:
            raise InputError("This dask executor is closed; create a new one with get_executor().")
        with tqdm(total=len(items), disable=not progress, desc=desc, unit=unit) as bar:
            if self.kind == "serial":
                results = []
                for item in items:
                    results.append(fn(item))
                    bar.update()
                return results
            if self.kind == "joblib":
                from joblib import Parallel, delayed

                results = [None] * len(items)
                for i, out in Parallel(n_jobs=self.n_jobs, return_as="generator_unordered")(
                        delayed(_indexed)(fn, i, item) for i, item in enumerate(items)):
                    results[i] = out  # advance as tasks finish, return in the items' order
                    bar.update()
                return results
            from distributed import as_completed

            futures = self.client.map(fn, items, retries=self.retries, pure=False)
            for _ in as_completed(futures):  # advance as any worker finishes a task
                bar.update()
            return self.client.gather(futures)  # gather keeps the futures' (= the items') order

    def close(self) -> None:
        """Shut down the dask client (and the LocalCluster it started); no-op otherwise."""
        if self.client is not None:
            self.client.close()
            self.client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Executor(kind={self.kind!r}, n_workers={self.n_workers})"


def _indexed(fn: Callable, i: int, item):
    return i, fn(item)


def get_executor(kind: str = "serial", *, n_jobs: int = 1, scheduler: str | None = None,
                 dask_local: int | None = None, retries: int = 2) -> Executor:
    """Create an executor for independent tasks.

    Parameters
    ----------
    kind : {"serial", "joblib", "dask"}, default="serial"
        Where tasks run: in this process, in ``n_jobs`` local joblib (loky) processes, or on a
        dask.distributed cluster.
    n_jobs : int, default=1
        joblib workers (-1: all CPUs). Ignored by the other kinds.
    scheduler : str, optional
        dask only: address of a running scheduler, e.g. ``"tcp://10.0.0.1:8786"`` (the
        ``--scheduler`` option), such as one started by dask-jobqueue on SLURM.
    dask_local : int, optional
        dask only: start a LocalCluster with this many single-threaded worker processes
        (``--dask-local N``). Exactly one of ``scheduler`` and ``dask_local`` is needed.
    retries : int, default=2
        dask only: times a task that raises is resubmitted before the run fails.

    Returns
    -------
    Executor

    Raises
    ------
    InputError
        Unknown ``kind``, bad ``n_jobs``/``dask_local``/``retries``, both or neither of
        ``scheduler`` and ``dask_local`` for dask, dask.distributed not installed, or an
        unreachable scheduler.

    Examples
    --------
    >>> ex = get_executor("serial")
    >>> ex.map(len, ["ab", "c"])
    [2, 1]
    >>> with get_executor("dask", dask_local=2) as ex:  # doctest: +SKIP
    ...     ex.map(len, ["ab", "c"])
    [2, 1]
    """
    if kind not in _KINDS:
        raise InputError(f"kind must be one of {format_choices(_KINDS)}, got {kind!r}.")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise InputError(f"retries must be a non-negative integer (e.g. 2), got {retries!r}.")
    if kind == "serial":
        return Executor("serial")
    if kind == "joblib":
        if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -1:
            raise InputError(f"n_jobs must be a positive integer or -1 (all CPUs), got {n_jobs!r}.")
        return Executor("joblib", n_jobs=n_jobs)
    if (scheduler is None) == (dask_local is None):
        raise InputError("kind='dask' needs exactly one of scheduler='tcp://host:port' (a running "
                         "scheduler) or dask_local=N (start N local workers); got "
                         f"scheduler={scheduler!r}, dask_local={dask_local!r}.")
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise InputError("kind='dask' needs dask.distributed: pip install 'graymatter[scale]' "
                         "(or 'dask[distributed]').") from exc
    if dask_local is not None:
        if isinstance(dask_local, bool) or not isinstance(dask_local, int) or dask_local < 1:
            raise InputError(f"dask_local must be a positive number of workers, got {dask_local!r}.")
        # One thread per worker: BLAS and numba parallelism stay inside a task, not across tasks.
        cluster = LocalCluster(n_workers=dask_local, threads_per_worker=1, processes=True,
                               dashboard_address=":0", host="127.0.0.1")
        client = Client(cluster)
        logger.info("dask: started a LocalCluster with %d workers at %s", dask_local,
                    cluster.scheduler_address)
        return Executor("dask", client=client, cluster=cluster, retries=retries)
    try:
        client = Client(scheduler, timeout="30s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(f"Cannot connect to the dask scheduler {scheduler!r}: {exc}. Check the "
                         "address (tcp://host:port) and that the scheduler is running.") from exc
    logger.info("dask: connected to %s", scheduler)
    return Executor("dask", client=client, retries=retries)


def as_executor(executor) -> Executor:
    """``executor`` checked, or a serial one for None (the ``executor=`` argument of every step).

    Raises
    ------
    InputError
        Anything that is not an :class:`Executor`.
    """
    if executor is None:
        return Executor("serial")
    if not isinstance(executor, Executor):
        raise InputError(f"executor must come from graymatter.parallel.get_executor, got "
                         f"{type(executor).__name__}.")
    return executor
