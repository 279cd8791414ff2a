"""A run owns its output folder: checked before the work, no stale or mixed files, disk full named.

Each command-line test asserts the exit status, that the message names the culprit (the path)
and that no traceback reaches the user.
"""

from __future__ import annotations

import errno
import json
import os
import shutil

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from graymatter.cli import main
from graymatter.datasets.simulate import simulate_vbm_cohort
from graymatter.io import outputs
from graymatter.io.outputs import MANIFEST, output_folder


def _section(out, kind="glm.json") -> dict:
    """The manifest's record of the runs of one kind (named by their final sidecar)."""
    return json.loads((out / MANIFEST).read_text())["runs"][kind]


def _one_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("graymatter: error:")]
    assert len(lines) == 1 and "Traceback" not in err and "this is a bug" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """10 simulated 3 mm MNI images (HC/MDD) with a planted effect."""
    return simulate_vbm_cohort(tmp_path_factory.mktemp("cohort"), groups={"HC": 5, "MDD": 5},
                               resolution=3, random_state=5)


def _voxel_glm(cohort, out, *extra, images=None):
    return main(["--quiet", "glm", "--participants", str(cohort.participants_file),
                 "--images", images or str(cohort.participants_file.parent / "mri" / "*.nii.gz"),
                 "--out", str(out), *extra])


@pytest.fixture
def regions_study(tmp_path, rng):
    n = 12
    ids = [f"sub-{i:02d}" for i in range(n)]
    pd.DataFrame({"participant_id": ids, "group": np.repeat(["HC", "MDD"], n // 2),
                  "age": rng.normal(40, 10, n).round(1)}).to_csv(
        tmp_path / "participants.tsv", sep="\t", index=False)
    regions = pd.DataFrame(rng.normal(size=(n, 4)), columns=[f"roi{i}" for i in range(4)])
    regions.insert(0, "participant_id", ids)
    regions.to_csv(tmp_path / "regions.csv", index=False)
    return tmp_path


def _regions_glm(folder, out, contrast="MDD > HC=MDD - HC"):
    return main(["--quiet", "glm", "--participants", str(folder / "participants.tsv"),
                 "--regions", str(folder / "regions.csv"), "--model", "0 + group + age",
                 "--contrast", contrast, "--out", str(out)])


# ================================================================ stale and mixed outputs

def test_rerun_with_another_model_leaves_no_stale_files(cohort, tmp_path, capsys):
    out = tmp_path / "glm"
    assert _voxel_glm(cohort, out, "--model", "0 + group + age", "--contrast", "HC > MDD=HC - MDD",
                      "--inference", "permutation", "--n-perm", "20") == 0
    first = {p.name for p in out.iterdir()}
    assert {"contrast-HCgtMDD_clusters.tsv", "contrast-HCgtMDD_stat-logpFWEvoxelPerm.nii.gz"} \
        <= first
    (out / "my_notes.txt").write_text("the user's own file\n")
    (out / ".my_draft.tmp").write_text("a hidden file of the user's, not graymatter's\n")
    # A killed run leaves a hidden temporary behind (atomic_path's naming).
    (out / ".contrast-HCgtMDD_stat-t.nii.gz.x1y2z3ab.tmp.nii.gz").write_bytes(b"partial")
    capsys.readouterr()

    assert _voxel_glm(cohort, out, "--model", "0 + group", "--contrast", "MDD > HC=MDD - HC") == 0
    assert "Traceback" not in capsys.readouterr().err
    second = {p.name for p in out.iterdir()}
    assert not any(name.startswith("contrast-HCgtMDD") for name in second)  # old contrast gone
    assert not any("FWE" in name or "clusters" in name for name in second)  # no old inference
    assert "contrast-MDDgtHC_stat-t.nii.gz" in second and "my_notes.txt" in second
    assert [name for name in second if ".tmp" in name] == [".my_draft.tmp"]
    manifest = _section(out)
    assert manifest["status"] == "complete"
    assert set(manifest["files"]) == second - {"my_notes.txt", ".my_draft.tmp", MANIFEST}
    sidecar = json.loads((out / "glm.json").read_text())
    assert list(sidecar["contrasts"]) == ["MDD > HC"]


def test_failed_run_is_marked_incomplete_and_cleaned_by_the_next(regions_study, monkeypatch,
                                                                  capsys):
    out = regions_study / "out"
    assert _regions_glm(regions_study, out, "HC > MDD=HC - MDD") == 0
    assert (out / "glm.json").is_file()

    # The next run dies after writing its first contrast table (before glm.json).
    from graymatter.workflows import glm as glm_workflow

    def broken(*args, **kwargs):
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(glm_workflow, "_inference_record", broken)
    assert _regions_glm(regions_study, out, "age effect=age") == 2
    assert "simulated crash" in capsys.readouterr().err
    monkeypatch.undo()
    manifest = _section(out)
    assert manifest["status"] == "running" and not (out / "glm.json").exists()
    assert {"contrast-HCgtMDD_stat.tsv", "contrast-ageEffect_stat.tsv"} <= set(manifest["files"])

    assert _regions_glm(regions_study, out, "MDD > HC=MDD - HC") == 0
    names = {p.name for p in out.iterdir()}
    assert "contrast-MDDgtHC_stat.tsv" in names and "glm.json" in names
    assert "contrast-HCgtMDD_stat.tsv" not in names and "contrast-ageEffect_stat.tsv" not in names
    assert _section(out)["status"] == "complete"


def test_manifest_removes_only_its_own_kinds_files_inside_the_folder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    outside = tmp_path / "precious.txt"
    outside.write_text("keep")
    for name in ("user.txt", "old.tsv", "other.tsv"):
        (out / name).write_text("x")
    (out / MANIFEST).write_text(json.dumps({"runs": {
        "a.json": {"status": "complete",
                   "files": ["../precious.txt", str(outside), "old.tsv"]},
        "b.json": {"status": "complete", "files": ["other.tsv"]}}}))
    with output_folder(out, final=("a.json",)):
        pass
    assert outside.read_text() == "keep" and (out / "user.txt").is_file()
    assert not (out / "old.tsv").exists()
    assert (out / "other.tsv").is_file()  # another kind of run's file: not this run's to remove
    assert _section(out, "b.json")["files"] == ["other.tsv"]


def test_manifest_never_deletes_through_a_symlinked_folder(tmp_path):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (elsewhere / "precious.txt").write_text("keep")
    (out / "link").symlink_to(elsewhere, target_is_directory=True)
    (out / MANIFEST).write_text(json.dumps({"runs": {
        "a.json": {"status": "complete", "files": ["link/precious.txt"]}}}))
    with output_folder(out, final=("a.json",)):
        pass
    assert (elsewhere / "precious.txt").read_text() == "keep"


# ================================================================ output location checked first

@pytest.fixture
def no_computation(monkeypatch):
    """Fail loudly (as 'a bug') if the GLM starts building its design."""
    from graymatter.workflows import glm as glm_workflow

    def started(*args, **kwargs):
        raise AssertionError("computation started before the output folder was checked")

    monkeypatch.setattr(glm_workflow, "make_design", started)


def test_out_is_a_file(regions_study, no_computation, capsys):
    target = regions_study / "results.txt"
    target.write_text("not a folder")
    assert _regions_glm(regions_study, target) == 2
    message = _one_error(capsys)
    assert f"'{target}' is a file, not a folder" in message


def test_out_under_a_file(regions_study, no_computation, capsys):
    blocker = regions_study / "results.txt"
    blocker.write_text("not a folder")
    assert _regions_glm(regions_study, blocker / "glm") == 2
    message = _one_error(capsys)
    assert f"'{blocker / 'glm'}' cannot be created: '{blocker}' is a file" in message


def test_out_read_only(regions_study, no_computation, monkeypatch, capsys):
    # Tests may run as root, for whom chmod does not make a folder read-only: the probe's
    # os.open fails as it would on a read-only folder.
    real_open = os.open

    def read_only(path, *args, **kwargs):
        if os.path.basename(path).startswith(".graymatter-write-check-"):
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(outputs.os, "open", read_only)
    out = regions_study / "locked" / "glm"
    (regions_study / "locked").mkdir()
    assert _regions_glm(regions_study, out) == 2
    message = _one_error(capsys)
    assert f"'{out}'" in message and f"'{regions_study / 'locked'}'" in message
    assert "read-only" in message


def test_out_on_a_full_disk(regions_study, no_computation, monkeypatch, capsys):
    usage = shutil.disk_usage(regions_study)
    monkeypatch.setattr(outputs.shutil, "disk_usage",
                        lambda path: usage._replace(free=4096))
    out = regions_study / "glm"
    assert _regions_glm(regions_study, out) == 2
    message = _one_error(capsys)
    assert f"'{out}'" in message and "disk is full (4096 bytes free)" in message


def test_disk_full_while_writing_names_the_file(regions_study, monkeypatch, capsys):
    real = pd.DataFrame.to_csv

    def full(self, path, *args, **kwargs):
        if str(path).endswith(".tsv") and "contrast-" in os.path.basename(str(path)):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", full)
    out = regions_study / "glm"
    assert _regions_glm(regions_study, out) == 2
    message = _one_error(capsys)
    assert f"could not write '{out / 'contrast-MDDgtHC_stat.tsv'}': the disk is full" in message
    assert not any(".tmp" in p.name for p in out.iterdir())  # the partial file is removed


def test_other_commands_check_their_output_first(shared_data, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    root = tmp_path / "subjects" / "sub-01" / "stats"
    root.mkdir(parents=True)
    for name in ("lh.aparc.stats", "rh.aparc.stats", "aseg.stats"):
        shutil.copy(shared_data / "freesurfer" / "fs7.4.1_corrected" / name, root / name)
    assert main(["freesurfer-table", str(tmp_path / "subjects"), "--out",
                 str(blocker / "t.tsv")]) == 2
    assert f"'{blocker}' is a file" in _one_error(capsys)
    t1 = sorted((shared_data / "t1").glob("*.nii*"))[0]
    assert main(["preprocess", str(t1), "--out", str(blocker)]) == 2
    assert f"'{blocker}' is a file, not a folder" in _one_error(capsys)


# ================================================================ images in the wrong space

def _rewrite(path, data=None, affine=None):
    img = nib.load(path)
    nib.save(nib.Nifti1Image(img.get_fdata(dtype=np.float32) if data is None else data,
                             img.affine if affine is None else affine), path)


@pytest.fixture
def images(cohort, tmp_path):
    folder = tmp_path / "mri"
    shutil.copytree(cohort.participants_file.parent / "mri", folder)
    return folder


def test_native_space_images_are_refused_by_name(cohort, images, tmp_path, capsys):
    for path in images.iterdir():  # scanner space: voxel (0,0,0) at the origin
        _rewrite(path, affine=np.diag([3.0, 3.0, 3.0, 1.0]))
    first = sorted(images.iterdir())[0]
    assert _voxel_glm(cohort, tmp_path / "glm", "--model", "0 + group",
                      "--contrast", "d=MDD - HC", images=str(images / "*.nii.gz")) == 2
    message = _one_error(capsys)
    assert "not in MNI template space" in message and f"'{first}'" in message
    assert "covers 10% of the MNI152 brain" in message and "--mask" in message


def test_affine_far_off_is_refused_not_a_bug(cohort, images, tmp_path, capsys):
    far = np.diag([3.0, 3.0, 3.0, 1.0])
    far[:3, 3] = [5000.0, 0.0, 0.0]
    for path in images.iterdir():
        _rewrite(path, affine=far)
    assert _voxel_glm(cohort, tmp_path / "glm", "--model", "0 + group",
                      "--contrast", "d=MDD - HC", images=str(images / "*.nii.gz")) == 2
    message = _one_error(capsys)
    assert "covers 0% of the MNI152 brain" in message and "mwp1sub-001" in message


def test_all_zero_and_all_nan_images_are_refused_by_name(cohort, images, tmp_path, capsys):
    paths = sorted(images.iterdir())
    shape = nib.load(paths[0]).shape
    _rewrite(paths[2], data=np.zeros(shape, np.float32))
    _rewrite(paths[7], data=np.full(shape, np.nan, np.float32))
    assert _voxel_glm(cohort, tmp_path / "glm", "--model", "0 + group",
                      "--contrast", "d=MDD - HC", images=str(images / "*.nii.gz")) == 2
    message = _one_error(capsys)
    assert "2 of 10 image(s) hold no usable data" in message
    assert f"'{paths[2]}': all zero" in message and f"'{paths[7]}': all NaN" in message
    assert not (tmp_path / "glm" / "glm.json").exists()


def test_study_file_rerun_removes_contrasts_no_longer_in_it(regions_study, capsys):
    study = regions_study / "study.yaml"
    text = ("name: toy\nparticipants: participants.tsv\nregions: regions.csv\n"
            "model: 0 + group + age\ncontrasts:\n  {contrasts}\noutput: results\n")
    study.write_text(text.format(contrasts="HC > MDD: HC - MDD\n  old one: MDD - HC"))
    assert main(["--quiet", "run", str(study)]) == 0
    out = regions_study / "results"
    assert (out / "contrast-oldOne_stat.tsv").is_file()
    study.write_text(text.format(contrasts="HC > MDD: HC - MDD"))
    assert main(["--quiet", "run", str(study)]) == 0
    assert "Traceback" not in capsys.readouterr().err
    assert not (out / "contrast-oldOne_stat.tsv").exists()
    assert (out / "contrast-HCgtMDD_stat.tsv").is_file() and (out / "glm.json").is_file()
    # A study file whose output is a file: refused before any work, naming the path.
    (regions_study / "blocker").write_text("x")
    study.write_text(text.format(contrasts="HC > MDD: HC - MDD").replace(
        "output: results", "output: blocker"))
    assert main(["run", str(study)]) == 2
    assert f"'{regions_study / 'blocker'}' is a file" in _one_error(capsys)


def test_paired_change_rerun_owns_its_folder(tmp_path, capsys):
    from graymatter.datasets.simulate_longitudinal import simulate_longitudinal_cohort

    cohort = simulate_longitudinal_cohort(n_subjects=12, regions=6, random_state=2)
    cohort.pre.to_csv(tmp_path / "pre.csv")
    cohort.post.to_csv(tmp_path / "post.csv")
    cohort.participants.to_csv(tmp_path / "participants.tsv", sep="\t")
    out = tmp_path / "ect"
    out.mkdir()
    (out / "paired_change_old.tsv").write_text("not listed by a manifest: kept")
    (out / ".paired_change.tsv.k3j2_9qz.tmp.tsv").write_text("left by a killed run")
    args = ["--quiet", "longitudinal", "--participants", str(tmp_path / "participants.tsv"),
            "--pre", str(tmp_path / "pre.csv"), "--post", str(tmp_path / "post.csv"),
            "--n-perm", "19", "--out", str(out)]
    assert main(args) == 0
    names = {p.name for p in out.iterdir()}
    assert {"paired_change.tsv", "paired_change.json", "paired_change_old.tsv"} <= names
    assert not any(".tmp" in name for name in names)
    assert _section(out, "paired_change.json")["status"] == "complete"
    assert main([*args[:-1], str(tmp_path / "pre.csv" / "x")]) == 2
    assert f"'{tmp_path / 'pre.csv'}' is a file" in _one_error(capsys)
