"""Provenance: checksums and versions."""

from __future__ import annotations

import hashlib

import pytest

from graymatter.errors import InputError
from graymatter.io.provenance import input_record, sha256_file, software_versions


def test_sha256_matches_hashlib(tmp_path, rng):
    payload = rng.bytes(3 * (1 << 20) + 17)  # spans several read chunks
    path = tmp_path / "blob.bin"
    path.write_bytes(payload)
    assert sha256_file(path) == hashlib.sha256(payload).hexdigest()
    record = input_record(path)
    assert record == {"path": str(path.resolve()), "sha256": hashlib.sha256(payload).hexdigest(),
                      "bytes": len(payload)}


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"nope\.txt.*does not exist"):
        sha256_file(tmp_path / "nope.txt")


def test_software_versions():
    versions = software_versions()
    assert list(versions)[:2] == ["python", "graymatter"]
    assert {"numpy", "scipy", "pandas", "nibabel", "nilearn", "formulaic",
            "matplotlib"} <= set(versions)
    assert all(isinstance(v, str) and v for v in versions.values())
