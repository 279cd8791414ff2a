"""Bridge to antspyx: thread count fixed before ITK starts, and nibabel <-> ANTs images.

ITK reads ``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS`` once, when its thread pool is first built, so
the thread count of a process is settled by the first call to :func:`import_ants`.
"""

from __future__ import annotations

import logging
import os
import sys

import nibabel as nib
import numpy as np

from graymatter.errors import GraymatterError

logger = logging.getLogger("graymatter")

_THREADS_ENV = "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"
_threads_in_use: int | None = None


def import_ants(threads: int | None = None):
    """Import antspyx with ITK limited to ``threads`` threads and return the module.

    Parameters
    ----------
    threads : int or None
        Threads ITK may use in this process (>= 1); None keeps the current setting. Only the
        first call of a process sets it; a later call asking for another number logs a warning,
        since ITK cannot change it.

    Returns
    -------
    ants : module

    Examples
    --------
    >>> ants = import_ants(threads=2)  # doctest: +SKIP
    """
    global _threads_in_use
    if threads is None:
        return _import()
    threads = int(threads)
    if threads < 1:
        raise GraymatterError(f"threads_per_subject must be >= 1; found {threads}.")
    if _threads_in_use is None:
        if "ants" in sys.modules:
            # Imported elsewhere first: ITK kept whatever the environment said then.
            _threads_in_use = int(os.environ.get(_THREADS_ENV, "0")) or None
        else:
            os.environ[_THREADS_ENV] = str(threads)
            _threads_in_use = threads
    if _threads_in_use not in (None, threads):
        logger.warning("ANTs already runs with %s thread(s) in this process; %d requested. Run "
                       "in a fresh process (n_jobs > 1 does) for the requested count.",
                       _threads_in_use, threads)
    return _import()


def _import():
    try:
        import ants
    except ImportError as exc:  # optional dependency
        raise GraymatterError("VBM preprocessing needs antspyx: pip install "
                              "'graymatter[preprocess]'.") from exc
    return ants


def threads_in_use() -> int | None:
    """Threads ITK was started with in this process (None if unknown or not yet started)."""
    return _threads_in_use


def to_ants(img: nib.Nifti1Image):
    """A nibabel image as a float32 ANTsImage (RAS affine -> ITK LPS geometry)."""
    ants = import_ants()
    data = np.asarray(img.dataobj, dtype=np.float32)
    out = nib.Nifti1Image(data, img.affine)
    out.header.set_xyzt_units("mm", "sec")  # else ITK warns that units are unknown
    return ants.from_nibabel_nifti(out)


def to_nib(image, *, dtype=np.float32) -> nib.Nifti1Image:
    """An ANTsImage as a nibabel image of ``dtype`` with its affine as sform and qform."""
    ants = import_ants()
    tmp = ants.to_nibabel_nifti(image)
    out = nib.Nifti1Image(np.asarray(tmp.dataobj, dtype=dtype), tmp.affine)
    out.set_sform(tmp.affine, code=1)
    out.set_qform(tmp.affine, code=1)
    return out


__all__ = ["import_ants", "threads_in_use", "to_ants", "to_nib"]
