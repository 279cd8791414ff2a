"""Resumable outputs: a JSON sidecar per subject records inputs, parameters and outputs.

The sidecar is written last, so its presence with a matching key means the subject finished; a
subject is redone when the sidecar is missing (half-finished run), its key differs (new input or
parameters) or an output it lists is gone or has another size.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from graymatter.io.atomic import write_json
from graymatter.io.provenance import package_versions, provenance_record, sha256_file

logger = logging.getLogger("graymatter")

#: Packages whose versions enter the cache key (a new ANTs can change every voxel).
KEY_PACKAGES = ("antspyx", "nibabel", "nilearn", "numpy", "scipy")


def cache_key(input_sha256: str, parameters: dict) -> str:
    """SHA-256 of the input's checksum, the parameters and the key packages' versions.

    Parameters
    ----------
    input_sha256 : str
    parameters : dict
        JSON-serialisable settings that change the outputs.

    Returns
    -------
    key : str

    Examples
    --------
    >>> len(cache_key("ab" * 32, {"fwhm_mm": 10}))
    64
    """
    blob = json.dumps({"input": input_sha256, "parameters": parameters,
                       "versions": package_versions(KEY_PACKAGES)}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def is_complete(sidecar, key: str) -> bool:
    """True when ``sidecar`` exists, has ``key`` and every output it lists is intact.

    Examples
    --------
    >>> is_complete("missing.json", "0" * 64)
    False
    """
    sidecar = Path(sidecar)
    try:
        record = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if record.get("cache_key") != key:
        logger.info("%s: inputs or parameters changed; redoing", sidecar.name)
        return False
    for name, info in record.get("outputs", {}).items():
        path = sidecar.parent / name
        if not path.is_file() or path.stat().st_size != info.get("bytes"):
            logger.info("%s: output %s missing or changed; redoing", sidecar.name, name)
            return False
    return True


def invalidate(sidecar) -> None:
    """Remove a sidecar so an interrupted redo cannot pass for a finished run."""
    Path(sidecar).unlink(missing_ok=True)


def write_sidecar(sidecar, *, key: str, input_record: dict, parameters: dict,
                  outputs, extra: dict | None = None) -> Path:
    """Record a finished subject: provenance (input, parameters, versions), key, outputs' checksums.

    Parameters
    ----------
    sidecar : str or os.PathLike
    key : str
        From :func:`cache_key`.
    input_record : dict
        ``{"path", "sha256", "bytes"}`` of the input T1.
    parameters : dict
    outputs : sequence of pathlib.Path
        Files in the sidecar's folder (or below it).
    extra : dict, optional
        More fields (e.g. volumes, QC values).

    Returns
    -------
    path : pathlib.Path
    """
    sidecar = Path(sidecar)
    files = {}
    for path in outputs:
        path = Path(path)
        files[str(path.relative_to(sidecar.parent))] = {"sha256": sha256_file(path),
                                                       "bytes": path.stat().st_size}
    record = {**provenance_record(step="preprocess", parameters=parameters,
                                  inputs={"t1": input_record}, outputs=files,
                                  extra_software=True),
              "cache_key": key}
    record.update(extra or {})
    return write_json(sidecar, record)


def read_sidecar(sidecar) -> dict:
    """The sidecar's record as a dict."""
    return json.loads(Path(sidecar).read_text(encoding="utf-8"))


__all__ = ["KEY_PACKAGES", "cache_key", "is_complete", "invalidate", "write_sidecar",
           "read_sidecar"]
