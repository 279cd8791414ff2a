"""Output folders a run owns: checked before the work, listed in a manifest, cleaned after it.

Every command that writes into ``--out`` runs inside :func:`output_folder`:

1. Before any computation the location is checked (:func:`check_writable`): not a file, not under
   a file, writable, with free space. A bad ``--out`` fails in a second, not after the
   permutations.
2. At the run's first write, temporary files left by a killed run (``.<name>.*.tmp*``, see
   :mod:`graymatter.io.atomic`) are removed, the earlier run's final sidecar (e.g. ``glm.json``)
   is removed, and the manifest :data:`MANIFEST` says ``"status": "running"``, so a folder
   whose run did not finish is recognisably incomplete.
3. Every file written through :mod:`graymatter.io.atomic` inside the folder is added to the
   manifest as it is written.
4. When the run ends without error, files listed by the earlier run's manifest but not written
   by this run (old contrasts, cluster tables of another model...) are removed, and the
   manifest says ``"status": "complete"``. Only files a graymatter manifest lists are ever
   removed: the user's own files in the folder are never touched.

Runs of different kinds may share a folder (say a GLM and a gene PLS): the manifest has one
section per kind (named by its final sidecar) and a run only cleans up its own kind's files.
"""

from __future__ import annotations

import errno
import functools
import inspect
import json
import logging
import os
import re
import shutil
import socket
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from graymatter.errors import GraymatterWarning, OutputError

logger = logging.getLogger("graymatter")

#: Name of the manifest in each output folder.
MANIFEST = ".graymatter-run.json"

#: Free space (bytes) below which an output location counts as full.
MIN_FREE_BYTES = 1 << 20

# Temporary names made by graymatter.io.atomic.atomic_path (".<name>.<8 random>.tmp<suffix>",
# tempfile's alphabet) and by the manifest writer (".<manifest>.<pid>.tmp"); nothing else.
_TMP = re.compile(r"^\..+\.(?:[a-z0-9_]{8}|\d+)\.tmp(?:\.[A-Za-z0-9]+)*$")
_PROBE = ".graymatter-write-check-"
_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
_LOCK = threading.Lock()
_ACTIVE: list[OutputRun] = []


def _reason(exc: OSError) -> str:
    if exc.errno in _FULL:
        return "the disk is full"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "it is read-only (no permission to write)"
    return exc.strerror or str(exc)


def check_writable(path, what: str = "output folder") -> Path:
    """Check, before any work, that a folder can be created (if needed) and written to.

    Nothing is created: the nearest existing ancestor is probed with a small temporary file.

    Parameters
    ----------
    path : str or os.PathLike
        The folder the run will write into.
    what : str, default="output folder"
        How the folder is named in messages (e.g. ``"data cache ($GRAYMATTER_DATA)"``).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    OutputError
        The path is a file, lies under a file, is not writable, or its disk is full; the
        message names the path and the fix.
    """
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise OutputError(f"{what} '{path}' is a file, not a folder: choose another path, or "
                          "remove or rename the file.")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{what} '{path}' cannot be created: '{existing}' is a file, not a "
                          "folder. Choose another path.")
    try:
        fd = os.open(existing / f"{_PROBE}{os.getpid()}", os.O_CREAT | os.O_EXCL | os.O_WRONLY,
                     0o600)
    except FileExistsError:
        fd = None  # a probe of this process left behind: the folder was writable
    except OSError as exc:
        where = "" if existing == path else f" (its nearest existing folder '{existing}')"
        raise OutputError(f"cannot write to {what} '{path}'{where}: {_reason(exc)}. Choose a "
                          "writable location, or fix its permissions.") from None
    if fd is not None:
        os.close(fd)
    (existing / f"{_PROBE}{os.getpid()}").unlink(missing_ok=True)
    free = shutil.disk_usage(existing).free
    if free < MIN_FREE_BYTES:
        raise OutputError(f"cannot write to {what} '{path}': the disk is full ({free} bytes "
                          "free). Free some space or choose another location.")
    return path


def write_error(path, exc: OSError) -> OutputError:
    """An :class:`OutputError` naming the file that could not be written and why."""
    fix = ("Free some space (or choose an --out on another disk) and run again."
           if exc.errno in _FULL else "Check the folder's permissions and free space.")
    return OutputError(f"could not write '{path}': {_reason(exc)} ({exc.strerror or exc}). {fix}")


class OutputRun:
    """The bookkeeping of one run's output folder (see the module docstring)."""

    def __init__(self, folder: Path, final: Sequence[str], exclude: Sequence[str]):
        self.folder = folder
        self.final = tuple(final)
        # Runs of different kinds (a GLM, a gene PLS...) may share a folder: each kind keeps
        # its own section of the manifest and only ever cleans up its own files.
        self.kind = "+".join(self.final) or "files"
        self.exclude = tuple(filter(None, (self._relative(e) for e in exclude)))
        self.sections = self._read_sections()
        self.previous = self.sections.get(self.kind, {})
        self.written: set[str] = set()
        self.begun = False
        self._lock = threading.RLock()  # writes may come from several threads

    def _relative(self, path) -> str | None:
        """``path`` relative to the folder (posix), None when it lies outside."""
        path = Path(path)
        if not path.is_absolute():
            return path.as_posix()
        try:
            return path.resolve().relative_to(self.folder).as_posix()
        except ValueError:
            return None

    # ---------------------------------------------------------------- manifest
    def _read_sections(self) -> dict[str, dict]:
        """The manifest's sections by kind; each section's files filtered to safe names."""
        path = self.folder / MANIFEST
        if not path.is_file():
            return {}
        try:
            sections = json.loads(path.read_text(encoding="utf-8"))["runs"]
            for section in sections.values():
                section["files"] = [f for f in section.get("files", [])
                                    if isinstance(f, str) and self._is_own(f)]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            logger.warning("ignoring the unreadable run manifest %s: files of earlier runs "
                           "there are kept", path)
            return {}
        return sections

    def _is_own(self, name: str) -> bool:
        """A relative path inside the folder, not excluded (a manifest is never trusted)."""
        parts = Path(name).parts
        return (bool(parts) and not Path(name).is_absolute() and ".." not in parts
                and name != MANIFEST and not self._excluded(name))

    def _excluded(self, name: str) -> bool:
        return any(name == e or name.startswith(e.rstrip("/") + "/") for e in self.exclude)

    def _write_manifest(self, status: str, files) -> None:
        self.sections[self.kind] = {
            "status": status, "pid": os.getpid(), "host": socket.gethostname(),
            "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "final": list(self.final), "files": sorted(files)}
        record = {"graymatter_manifest": 1, "runs": self.sections}
        tmp = self.folder / f".{MANIFEST}.{os.getpid()}.tmp"
        try:
            tmp.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
            os.replace(tmp, self.folder / MANIFEST)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise write_error(self.folder / MANIFEST, exc) from None

    # ---------------------------------------------------------------- life cycle
    def begin(self) -> None:
        """Clean up after a killed run and mark the folder as being written (first write)."""
        with self._lock:
            if not self.begun:
                self._begin()

    def _begin(self) -> None:
        self.begun = True
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_error(self.folder, exc) from None
        alive = [section["pid"] for section in self.sections.values() if _alive(section)]
        if alive:
            warnings.warn(f"another graymatter run (pid {alive[0]}) is writing to "
                          f"'{self.folder}' right now; its files and this run's will mix. Give "
                          "each run its own --out.", GraymatterWarning, stacklevel=4)
        else:
            self._remove_temporaries()
        old = set(self.previous.get("files", []))
        for name in self.final:
            if name in old:  # until this run writes it again, the folder is incomplete
                (self.folder / name).unlink(missing_ok=True)
        self._write_manifest("running", old)

    def _remove_temporaries(self) -> None:
        removed = []
        for path in self.folder.rglob(".*"):
            name = path.relative_to(self.folder).as_posix()
            if path.is_file() and _TMP.match(path.name) and not self._excluded(name):
                path.unlink(missing_ok=True)
                removed.append(name)
        if removed:
            logger.info("removed %d temporary file(s) left by an interrupted run in %s: %s",
                        len(removed), self.folder, ", ".join(sorted(removed)[:5]))

    def record(self, path: Path) -> None:
        """Add a file just written (if it lies in the folder) to the manifest."""
        try:
            name = path.resolve().relative_to(self.folder).as_posix()
        except ValueError:
            return
        if not self._is_own(name):
            return
        with self._lock:
            if name in self.written:
                return
            self.begin()
            self.written.add(name)
            self._write_manifest("running", set(self.previous.get("files", [])) | self.written)

    def finish(self) -> None:
        """Remove the earlier run's files this run did not write; mark the folder complete."""
        self.begin()
        stale = sorted(set(self.previous.get("files", [])) - self.written)
        removed = []
        for name in stale:
            path = self.folder / name
            if not _inside(path.parent, self.folder):
                continue  # a symlinked folder leads elsewhere: never delete outside the folder
            if path.is_file() or path.is_symlink():
                path.unlink()
                removed.append(name)
                _remove_empty_parents(path.parent, self.folder)
        if removed:
            logger.info("removed %d file(s) of an earlier run in %s that this run did not "
                        "write: %s", len(removed), self.folder, ", ".join(removed[:5])
                        + (f", … ({len(removed) - 5} more)" if len(removed) > 5 else ""))
        self._write_manifest("complete", self.written)


def _inside(folder: Path, root: Path) -> bool:
    """Whether ``folder``, with symlinks resolved, lies in ``root`` (resolved)."""
    try:
        folder.resolve().relative_to(root.resolve())
    except (ValueError, OSError):
        return False
    return True


def _alive(section: dict) -> bool:
    """Whether a manifest section belongs to a run still going on in another process here."""
    pid = section.get("pid")
    if (section.get("status") != "running" or not isinstance(pid, int) or pid == os.getpid()
            or section.get("host") != socket.gethostname()):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _remove_empty_parents(folder: Path, root: Path) -> None:
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


@contextmanager
def output_folder(path, *, final: Sequence[str] = (), exclude: Sequence[str] = (),
                  what: str = "output folder") -> Iterator[OutputRun]:
    """Own ``path`` for the duration of a run (check, clean, manifest; see the module docstring).

    Parameters
    ----------
    path : str or os.PathLike
        The output folder (created at the first write).
    final : sequence of str, default=()
        The sidecar(s) written last (e.g. ``("glm.json",)``): an earlier run's copy is removed
        at the first write, so the folder shows no finished run until this one finishes.
    exclude : sequence of str, default=()
        Subfolders with their own bookkeeping (e.g. a preprocessing cache): never recorded,
        cleaned or removed.
    what : str, default="output folder"
        How the folder is named in messages.

    Yields
    ------
    OutputRun
        Nested calls for a folder already owned by an enclosing run yield that run.

    Raises
    ------
    OutputError
        The folder cannot be written (checked on entry).
    """
    folder = check_writable(path, what).resolve()
    with _LOCK:
        outer = next((run for run in _ACTIVE if run.folder == folder), None)
    if outer is not None:
        yield outer
        return
    run = OutputRun(folder, final, exclude)
    with _LOCK:
        _ACTIVE.append(run)
    try:
        yield run
        run.finish()
    finally:
        with _LOCK:
            _ACTIVE.remove(run)


def owns_output_folder(final: Sequence[str] = (), *, folder: str = "out_dir",
                       caches: Sequence[str] = ()):
    """Decorate a workflow so it runs inside :func:`output_folder` of its ``folder`` argument.

    Parameters
    ----------
    final : sequence of str, default=()
        The workflow's last-written sidecar(s).
    folder : str, default="out_dir"
        Name of the argument holding the output folder.
    caches : sequence of str, default=()
        Names of arguments holding cache folders (e.g. ``spin_cache``); when they lie inside
        the output folder they are excluded from its bookkeeping.

    Examples
    --------
    >>> @owns_output_folder(("summary.json",))  # doctest: +SKIP
    ... def run_something(data, *, out_dir): ...
    """
    def decorate(function):
        signature = inspect.signature(function)

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            exclude = [Path(bound.arguments[c]).resolve() for c in caches
                       if bound.arguments.get(c) is not None]
            with output_folder(bound.arguments[folder], final=final, exclude=exclude):
                return function(*args, **kwargs)

        return wrapper

    return decorate


def before_write(path: Path) -> None:
    """Called by :mod:`graymatter.io.atomic` before it creates a temporary file for ``path``."""
    for run in _owners(path):
        run.begin()


def after_write(path: Path) -> None:
    """Called by :mod:`graymatter.io.atomic` once ``path`` is in place."""
    for run in _owners(path):
        run.record(path)


def _owners(path: Path) -> list[OutputRun]:
    if not _ACTIVE:
        return []
    resolved = Path(path).resolve()
    with _LOCK:
        return [run for run in _ACTIVE if run.folder in resolved.parents]


__all__ = ["MANIFEST", "OutputRun", "after_write", "before_write", "check_writable",
           "output_folder", "owns_output_folder", "write_error"]
