"""Atomic file writes: write to a temporary file beside the target, then rename.

An interrupted run therefore never leaves a half-written file under the final name. A write that
fails for want of space or permission raises :class:`~graymatter.errors.OutputError` naming the
file, and every file put in place is reported to the run that owns the folder
(:mod:`graymatter.io.outputs`), which lists it in the folder's manifest.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from graymatter.io.outputs import after_write, before_write, write_error

_DOUBLE_SUFFIXES = (".nii.gz", ".tsv.gz", ".csv.gz")


def _suffix(path: Path) -> str:
    name = path.name
    for double in _DOUBLE_SUFFIXES:
        if name.endswith(double):
            return double
    return path.suffix


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write to; rename it onto ``path`` on success.

    The temporary file lives in the same folder (so the rename is atomic on POSIX) and keeps the
    target's suffix (so writers that choose a format by extension, like nibabel, still work).
    On any exception the temporary file is removed and the target is left untouched.

    Examples
    --------
    >>> with atomic_path("out/t.nii.gz") as tmp:  # doctest: +SKIP
    ...     nib.save(img, tmp)
    """
    path = Path(path)
    before_write(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{_suffix(path)}",
                                        dir=path.parent)
    except OSError as exc:
        raise write_error(path, exc) from None
    os.close(fd)
    # mkstemp creates the file private (0600); give it the permissions a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_name, 0o666 & ~umask)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        if _is_write_failure(exc, tmp, path):
            raise write_error(path, exc) from None
        raise
    finally:
        if tmp.exists():
            tmp.unlink()
    after_write(path)


def _is_write_failure(exc: OSError, tmp: Path, path: Path) -> bool:
    """Whether ``exc`` is about writing ``tmp``/``path`` (not, e.g., reading an input)."""
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG):
        return True  # only writes run out of space
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return exc.filename is None or Path(exc.filename) in (tmp, path, path.parent)
    return False


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike, obj) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically and return the path."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def write_tsv(path: str | os.PathLike, table: pd.DataFrame, *, index: bool = True,
              float_format: str = "%.10g") -> Path:
    """Write ``table`` as tab-separated values to ``path`` atomically and return the path.

    Missing values are written as ``n/a`` (the BIDS convention). Numbers keep 10 significant
    digits; ``float_format="%.17g"`` keeps every bit of a float64 (for a file the next step reads).
    """
    with atomic_path(path) as tmp:
        table.to_csv(tmp, sep="\t", index=index, na_rep="n/a", float_format=float_format)
    return Path(path)


def save_image(path: str | os.PathLike, image) -> Path:
    """Save a nibabel image to ``path`` atomically and return the path."""
    import nibabel as nib

    with atomic_path(path) as tmp:
        nib.save(image, tmp)
    return Path(path)
