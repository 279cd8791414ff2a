"""Preprocessing against known ground truth: synthetic T1 scans made from the MNI152 template.

Each scan is the template carried into a subject space by known transforms (uint8, LPS or PSR
axis order, origin 100 mm off the brain, random affine and warp, bias field, Rician noise; one
with enlarged ventricles and thinned cortex), so its true native-space GM/WM/CSF maps are known
(see :mod:`graymatter.datasets.synthetic_t1`). Two more scans cannot be registered: the voxels of
one scan permuted, and a T2-like scan (brain intensities inverted). All are preprocessed once, in
two worker processes, with the test settings of test_preprocess.py (2 mm output grid, SyN
iterations (20, 10, 0)); the thresholds are those of issue 14.

GM Dice compares the maps thresholded at probability 0.5; a ventricle voxel counts as CSF when
its estimated CSF probability is >= 0.5.
"""

from __future__ import annotations

import importlib.util

import nibabel as nib
import pandas as pd
import pytest

if importlib.util.find_spec("ants") is None:  # do not import it: ITK's threads are set first
    pytest.skip("antspyx is not installed", allow_module_level=True)

from graymatter.datasets.synthetic_t1 import (compare_to_truth, make_synthetic_t1,  # noqa: E402
                                              scrambled)
from graymatter.preprocess.pipeline import output_names  # noqa: E402
from graymatter.workflows.preprocess import run_preprocess  # noqa: E402

FAST = dict(resolution_mm=2.0, syn_iterations=(20, 10, 0), random_state=0,
            threads_per_subject=1, progress=False)
GOOD = {"sub-lps": dict(seed=11, orientation="LPS"),
        "sub-psr": dict(seed=12, orientation="PSR"),
        "sub-atrophy": dict(seed=13, orientation="LPS", atrophy=True)}
UNREGISTRABLE = ("sub-scrambled", "sub-t2like")
DICE_MIN, VOLUME_PCT, VENTRICLE_PCT = 0.85, 5.0, 90.0

# Checks the pipeline does not pass yet (issue 14 stays open until they do). strict=True: a check
# that starts passing fails the run, so its mark must then be removed. Measured on this machine
# with the settings above (see docs/preprocessing.md):
_PSR = ("the PSR scan ends in RegistrationFailed: Atropos exits with status 1 on every attempt")
KNOWN_FAILURES = {
    ("complete", "sub-psr"): _PSR,
    ("dice", "sub-psr"): _PSR,
    ("gm", "sub-psr"): _PSR, ("wm", "sub-psr"): _PSR, ("csf", "sub-psr"): _PSR,
    ("gm", "sub-lps"): "GM 871 ml vs true 918 ml (-5.1 %)",
    ("csf", "sub-lps"): "CSF 249 ml vs true 198 ml (+26 %)",
    ("csf", "sub-atrophy"): "CSF 434 ml vs true 457 ml (-5.05 %)",
}


def _cases(check: str, pids, tissues=(None,)):
    """pytest params of (tissue,) pid with the known failures marked as strict xfails."""
    out = []
    for tissue in tissues:
        for pid in pids:
            reason = KNOWN_FAILURES.get((tissue or check, pid))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            values = pid if tissue is None else (tissue, pid)
            out.append(pytest.param(*([values] if tissue is None else values), marks=marks,
                                    id=pid if tissue is None else f"{tissue}-{pid}"))
    return out


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    """Every synthetic scan preprocessed once; returns (result, scans, metrics table)."""
    folder = tmp_path_factory.mktemp("synthetic")
    scans = {pid: make_synthetic_t1(**kwargs) for pid, kwargs in GOOD.items()}
    images = {pid: scan.image for pid, scan in scans.items()}
    images["sub-scrambled"] = scrambled(scans["sub-lps"].image, seed=1)
    images["sub-t2like"] = make_synthetic_t1(seed=14, orientation="LPS", contrast="T2").image
    files = []
    for pid, image in images.items():
        files.append(folder / f"{pid}_T1w.nii.gz")
        nib.save(image, files[-1])
    out = tmp_path_factory.mktemp("prep-synthetic")
    result = run_preprocess(files, out_dir=out, n_jobs=2, **FAST)
    rows = {}
    for pid, scan in scans.items():
        if result.qc.loc[pid, "status"] == "failed":
            continue
        anat = out / result.qc.loc[pid, "folder"]
        names = output_names(pid)
        rows[pid] = compare_to_truth(scan, {t: nib.load(anat / names[t])
                                            for t in ("GM", "WM", "CSF")})
    metrics = pd.DataFrame.from_dict(rows, orient="index")
    print("\n" + metrics.round(3).to_string())  # the accuracy table of docs/preprocessing.md
    return result, scans, metrics


def _reason_column(qc: pd.DataFrame) -> str:
    for column in ("qc_reasons", "qc_reason", "reasons"):
        if column in qc.columns:
            return column
    raise AssertionError(f"qc.tsv has no QC reason column; columns: {list(qc.columns)}")


@pytest.mark.parametrize("pid", _cases("complete", GOOD))
def test_good_scans_complete_and_do_not_fail_qc(synthetic_run, pid):
    result, _, _ = synthetic_run
    row = result.qc.loc[pid]
    assert row["status"] != "failed", row["error"]
    assert "qc_status" in result.qc.columns, list(result.qc.columns)
    assert row["qc_status"] in ("pass", "warn"), (row["qc_status"],
                                                  row[_reason_column(result.qc)])


@pytest.mark.parametrize("pid", _cases("dice", GOOD))
def test_gm_dice_in_native_space(synthetic_run, pid):
    _, _, metrics = synthetic_run
    assert pid in metrics.index, f"{pid} failed to preprocess"
    assert metrics.loc[pid, "gm_dice"] >= DICE_MIN, metrics.loc[pid].to_dict()


@pytest.mark.parametrize(("tissue", "pid"), _cases("volume", GOOD, ("gm", "wm", "csf")))
def test_tissue_volumes_within_5_percent(synthetic_run, pid, tissue):
    result, scans, metrics = synthetic_run
    assert pid in metrics.index, f"{pid} failed to preprocess"
    truth = scans[pid].volumes_ml()[f"{tissue}_ml"]
    # The reported volume is the one the probability maps hold.
    assert result.qc.loc[pid, f"{tissue}_ml"] == pytest.approx(metrics.loc[pid, f"{tissue}_ml"],
                                                               rel=1e-3)
    assert abs(metrics.loc[pid, f"{tissue}_err_pct"]) <= VOLUME_PCT, (
        f"{pid} {tissue}: {metrics.loc[pid, f'{tissue}_ml']:.0f} ml vs true {truth:.0f} ml")


def test_enlarged_ventricles_are_csf(synthetic_run):
    _, scans, metrics = synthetic_run
    assert scans["sub-atrophy"].ventricles.sum() * scans["sub-atrophy"].voxel_ml > 40
    assert "sub-atrophy" in metrics.index, "sub-atrophy failed to preprocess"
    assert metrics.loc["sub-atrophy", "ventricle_csf_pct"] >= VENTRICLE_PCT


@pytest.mark.parametrize("pid", UNREGISTRABLE)
def test_unregistrable_scans_fail_qc_with_a_reason(synthetic_run, pid):
    result, _, _ = synthetic_run
    qc = result.qc
    assert pid in qc.index  # recorded, not crashed
    assert "qc_status" in qc.columns, list(qc.columns)
    assert qc.loc[pid, "qc_status"] == "fail", qc.loc[pid].to_dict()
    reason = qc.loc[pid, _reason_column(qc)]
    assert isinstance(reason, str) and reason.strip(), qc.loc[pid].to_dict()
    on_disk = pd.read_csv(result.out_dir / "qc.tsv", sep="\t", index_col=0)
    assert on_disk.loc[pid, "qc_status"] == "fail"
