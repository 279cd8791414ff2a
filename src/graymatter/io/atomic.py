"""Atomic file writes: write to a temporary file beside the target, then rename.

An interrupted run therefore never leaves a half-written file under the final name.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{_suffix(path)}",
                                    dir=path.parent)
    os.close(fd)
    # mkstemp creates the file private (0600); give it the permissions a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_name, 0o666 & ~umask)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike, obj) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically and return the path."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def write_tsv(path: str | os.PathLike, table: pd.DataFrame, *, index: bool = True) -> Path:
    """Write ``table`` as tab-separated values to ``path`` atomically and return the path.

    Missing values are written as ``n/a`` (the BIDS convention).
    """
    with atomic_path(path) as tmp:
        table.to_csv(tmp, sep="\t", index=index, na_rep="n/a", float_format="%.10g")
    return Path(path)


def save_image(path: str | os.PathLike, image) -> Path:
    """Save a nibabel image to ``path`` atomically and return the path."""
    import nibabel as nib

    with atomic_path(path) as tmp:
        nib.save(image, tmp)
    return Path(path)
