"""Provenance: checksums and versions."""

from __future__ import annotations

import hashlib
import json
import sys

import numpy as np
import pytest

from graymatter.errors import InputError
from graymatter.io.provenance import (PROVENANCE_KEYS, cli_command_line, input_record,
                                      provenance_record, sha256_file, software_versions)


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


# ------------------------------------------------------------------ one provenance builder

def test_provenance_record_has_fixed_keys_and_hashes_paths(tmp_path):
    table = tmp_path / "table.tsv"
    table.write_text("a\tb\n1\t2\n")
    rec = provenance_record(step="demo", parameters={"n_perm": 9}, random_state=np.int64(4),
                            inputs={"table": table, "images": {"sub-1": table},
                                    "frame": {"source": "DataFrame", "shape": [3, 2]}},
                            outputs={"out": tmp_path / "out.tsv"}, command_line=("graymatter", "x"))
    assert tuple(rec) == PROVENANCE_KEYS
    assert rec["inputs"]["table"] == input_record(table)
    assert rec["inputs"]["images"]["sub-1"]["sha256"] == sha256_file(table)
    assert rec["inputs"]["frame"] == {"source": "DataFrame", "shape": [3, 2]}
    assert rec["command_line"] == ["graymatter", "x"] and rec["random_state"] == 4
    assert rec["outputs"] == {"out": str(tmp_path / "out.tsv")}
    assert rec["software"] == software_versions()
    json.dumps(rec)  # JSON-able as built
    with pytest.raises(InputError, match="provenance input 'n'.*got int"):
        provenance_record(step="demo", parameters={}, inputs={"n": 3})


def test_command_line_is_recorded_only_for_the_graymatter_program(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/usr/bin/graymatter", "glm", "--model", "1 + a"])
    assert cli_command_line() == ["/usr/bin/graymatter", "glm", "--model", "1 + a"]
    monkeypatch.setattr(sys, "argv", ["/x/src/graymatter/__main__.py", "run", "s.yaml"])
    assert cli_command_line() == ["/x/src/graymatter/__main__.py", "run", "s.yaml"]
    monkeypatch.setattr(sys, "argv", ["/usr/bin/pytest", "-q"])
    assert cli_command_line() is None


def test_glm_longitudinal_and_preprocess_sidecars_share_the_provenance_keys(tmp_path, rng):
    from graymatter.datasets.simulate_longitudinal import simulate_longitudinal_cohort
    from graymatter.preprocess import cache
    from graymatter.workflows.glm import run_glm
    from graymatter.workflows.longitudinal import PAIRED_SIDECAR, run_longitudinal

    cohort = simulate_longitudinal_cohort(n_subjects=12, regions=6, random_state=2)
    cohort.pre.to_csv(tmp_path / "pre.csv")
    cohort.post.to_csv(tmp_path / "post.csv")
    participants = cohort.participants.assign(age=rng.normal(40, 10, len(cohort.participants)))
    participants.to_csv(tmp_path / "participants.tsv", sep="\t")
    glm = run_glm(tmp_path / "participants.tsv", regions=tmp_path / "pre.csv", model="1 + age",
                  contrasts={"age": "age"}, out_dir=tmp_path / "glm", progress=False)
    run_longitudinal(tmp_path / "participants.tsv", pre=tmp_path / "pre.csv",
                     post=tmp_path / "post.csv", n_perm=9, random_state=3,
                     out_dir=tmp_path / "paired", progress=False)
    out = tmp_path / "pre" / "mwp1.nii.gz"
    out.parent.mkdir()
    out.write_bytes(b"12345")
    t1 = tmp_path / "t1.nii.gz"
    t1.write_bytes(b"t1")
    cache.write_sidecar(tmp_path / "pre" / "sidecar.json", key="k" * 64,
                        input_record=input_record(t1), parameters={"fwhm_mm": 8}, outputs=[out])
    sidecars = {"glm": json.loads(glm.files["sidecar"].read_text()),
                "paired": json.loads((tmp_path / "paired" / PAIRED_SIDECAR).read_text()),
                "preprocess": json.loads((tmp_path / "pre" / "sidecar.json").read_text())}
    for name, record in sidecars.items():
        assert tuple(record)[:len(PROVENANCE_KEYS)] == PROVENANCE_KEYS, name
        assert record["command_line"] is None, name  # run from pytest, not the graymatter CLI
        assert record["software"]["numpy"] == np.__version__, name
    assert sidecars["glm"]["inputs"]["regions"]["sha256"] == sha256_file(tmp_path / "pre.csv")
    assert sidecars["paired"]["inputs"]["post"]["sha256"] == sha256_file(tmp_path / "post.csv")
    assert sidecars["paired"]["random_state"] == 3 and sidecars["glm"]["random_state"] is None
    assert sidecars["preprocess"]["inputs"]["t1"]["sha256"] == sha256_file(t1)
    assert sidecars["preprocess"]["outputs"]["mwp1.nii.gz"]["bytes"] == 5
    assert "antspyx" in sidecars["preprocess"]["software"]  # it enters the cache key
    assert cache.is_complete(tmp_path / "pre" / "sidecar.json", "k" * 64)
