"""Fast checks of the preprocessing building blocks (no ANTs registration)."""

from __future__ import annotations

import gzip
import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from graymatter.errors import InputError
from graymatter.preprocess import cache
from graymatter.preprocess.inputs import inputs_from_bids, inputs_from_files, load_t1
from graymatter.preprocess.normalise import modulate, smooth
from graymatter.preprocess.qc import (dice, overlay_figure, registration_similarity,
                                      sample_homogeneity, save_figure)
from graymatter.preprocess.templates import load_templates
from graymatter.workflows.preprocess import preprocess_outputs_for_glm


def _head(shape=(60, 70, 55), zooms=2.0, seed=0):
    rng = np.random.default_rng(seed)
    data = rng.random(shape).astype(np.float32) * 100
    affine = np.diag([zooms, zooms, zooms, 1.0])
    img = nib.Nifti1Image(data, affine)
    img.set_sform(affine, code=1)
    return img


def test_smooth_has_the_requested_fwhm(rng):
    data = np.zeros((41, 42, 43), np.float32)
    data[20, 21, 21] = 1.0
    out = smooth(data, fwhm_mm=10.0, voxel_mm=2.0)
    assert out.sum() == pytest.approx(1.0, rel=1e-4)
    x = (np.arange(41) - 20) * 2.0
    sigma2 = (out.sum(axis=(1, 2)) * x ** 2).sum()
    assert np.sqrt(8 * np.log(2) * sigma2) == pytest.approx(10.0, rel=0.02)


def test_modulation_scales_by_the_jacobian(rng):
    p = rng.random((7, 8, 9))
    j = rng.uniform(0.5, 2.0, (7, 8, 9))
    np.testing.assert_allclose(modulate(p, j), p * j, rtol=1e-6)


def test_similarity_and_dice():
    rng = np.random.default_rng(1)
    a = rng.random((7, 8, 9))
    mask = np.ones(a.shape, bool)
    same = registration_similarity(a, 3 * a + 2, mask)
    noise = registration_similarity(a, rng.random(a.shape), mask)
    assert same["ncc"] == pytest.approx(1.0)
    assert same["nmi"] > 1.8 and abs(noise["ncc"]) < 0.1 and noise["nmi"] < same["nmi"]
    m1 = np.zeros((4, 4, 4), bool)
    m1[:2] = True
    m2 = np.zeros_like(m1)
    m2[1:3] = True
    assert dice(m1, m2) == pytest.approx(0.5)


def test_sample_homogeneity_flags_the_odd_subject():
    rng = np.random.default_rng(2)
    base = rng.random((9, 10, 11))
    maps = {f"sub-{i}": base + 0.2 * rng.random(base.shape) for i in range(8)}
    maps["sub-odd"] = rng.random(base.shape)
    table = sample_homogeneity(maps)
    assert table["homogeneity_outlier"].tolist() == [False] * 8 + [True]
    stack = np.stack([maps[k].ravel() for k in maps])
    corr = np.corrcoef(stack)
    assert table["mean_corr"].iloc[0] == pytest.approx((corr[0].sum() - 1) / 8)
    two = sample_homogeneity({"a": base, "b": base + 1})
    assert two["mean_corr_z"].isna().all() and not two["homogeneity_outlier"].any()


def test_overlay_figure_png(tmp_path):
    t1 = np.random.default_rng(3).random((9, 10, 11))
    fig = overlay_figure(t1, t1, title="x")
    save_figure(tmp_path / "qc.png", fig)
    assert (tmp_path / "qc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_templates_on_the_mni_grid():
    tpl = load_templates(2.0)
    assert tpl.t1.shape == (91, 109, 91) and tpl.t1.affine[0, 0] == -2.0
    inside = tpl.mask.get_fdata() > 0.5
    total = tpl.gm.get_fdata() + tpl.wm.get_fdata() + tpl.csf.get_fdata()
    assert np.all(total[inside] <= 1.0 + 1e-5)
    assert 1200 < inside.sum() * tpl.voxel_ml < 2200  # template intracranial volume, ml


def test_subject_ids_from_files_and_bids(tmp_path):
    items = inputs_from_files(["a/IXI012-HH-1211_T1.nii.gz", "b/sub-02_T1w.nii"])
    assert [i.participant_id for i in items] == ["sub-IXI012HH1211", "sub-02"]
    with pytest.raises(InputError, match="both give subject id"):
        inputs_from_files(["a/s1_T1.nii", "b/s1_T1.nii.gz"])
    for rel in ["sub-01/anat/sub-01_T1w.nii.gz", "sub-02/ses-a/anat/sub-02_ses-a_T1w.nii"]:
        (tmp_path / rel).parent.mkdir(parents=True)
        (tmp_path / rel).write_bytes(b"")
    items = inputs_from_bids(tmp_path)
    assert [(i.participant_id, str(i.folder)) for i in items] == [
        ("sub-01", "sub-01/anat"), ("sub-02_ses-a", "sub-02/ses-a/anat")]
    with pytest.raises(InputError, match="No sub-"):
        inputs_from_bids(tmp_path / "sub-01")


def test_load_t1_accepts_a_good_image_and_rejects_bad_ones(tmp_path):
    good = tmp_path / "good.nii.gz"
    nib.save(_head(), good)
    assert load_t1(good).shape == (60, 70, 55)
    cases = {}
    (tmp_path / "text.nii.gz").write_text("not an image")
    cases["text.nii.gz"] = "cannot be read as a NIfTI"
    nib.save(nib.Nifti1Image(np.ones((60, 70, 55, 2), np.float32), np.eye(4)), tmp_path / "4d.nii")
    cases["4d.nii"] = "expected one 3-D"
    const = _head()
    nib.save(nib.Nifti1Image(np.full(const.shape, 7, np.float32), const.affine, const.header),
             tmp_path / "const.nii")
    cases["const.nii"] = "constant"
    bad = _head()
    bad.set_sform(np.diag([2.0, 0.0, 2.0, 1.0]), code=1)
    bad.set_qform(None, code=0)
    nib.save(bad, tmp_path / "singular.nii")
    cases["singular.nii"] = "invalid orientation header"
    nocode = _head()
    nocode.set_sform(None, code=0)
    nocode.set_qform(None, code=0)
    nib.save(nocode, tmp_path / "nocode.nii")
    cases["nocode.nii"] = "no orientation"
    raw = gzip.compress(good.read_bytes() and gzip.decompress(good.read_bytes()))
    (tmp_path / "truncated.nii.gz").write_bytes(raw[: len(raw) // 2])
    cases["truncated.nii.gz"] = "cannot be read|truncated"
    nib.save(_head(shape=(20, 70, 55)), tmp_path / "crop.nii")
    cases["crop.nii"] = "covers only"
    cases["missing.nii"] = "does not exist"
    for name, pattern in cases.items():
        with pytest.raises(InputError, match=pattern) as info:
            load_t1(tmp_path / name)
        assert name in str(info.value)


def test_cache_key_and_completeness(tmp_path):
    key = cache.cache_key("ab" * 32, {"fwhm_mm": 10})
    assert key != cache.cache_key("ab" * 32, {"fwhm_mm": 8})
    assert key != cache.cache_key("cd" * 32, {"fwhm_mm": 10})
    out = tmp_path / "x.nii.gz"
    out.write_bytes(b"1234")
    sidecar = tmp_path / "s.json"
    cache.write_sidecar(sidecar, key=key, input_record={"sha256": "ab" * 32},
                        parameters={"fwhm_mm": 10}, outputs=[out])
    assert cache.is_complete(sidecar, key)
    assert not cache.is_complete(sidecar, "0" * 64)
    assert json.loads(sidecar.read_text())["outputs"]["x.nii.gz"]["bytes"] == 4
    out.write_bytes(b"12")  # truncated output -> redo
    assert not cache.is_complete(sidecar, key)
    out.unlink()
    assert not cache.is_complete(sidecar, key)
    cache.invalidate(sidecar)
    assert not sidecar.exists()


def test_outputs_for_glm_needs_a_finished_folder(tmp_path):
    with pytest.raises(InputError, match="qc.tsv"):
        preprocess_outputs_for_glm(tmp_path)
    pd.DataFrame({"participant_id": ["sub-1"], "status": ["done"], "folder": ["sub-1/anat"],
                  "gm_ml": [1.0], "wm_ml": [1.0], "csf_ml": [1.0], "tiv_ml": [3.0]}).to_csv(
        tmp_path / "qc.tsv", sep="\t", index=False)
    with pytest.raises(InputError, match="missing"):
        preprocess_outputs_for_glm(tmp_path)


def test_canonical_round_trip_keeps_data_and_world():
    from graymatter.preprocess.initialise import from_canonical, to_canonical

    rng = np.random.default_rng(4)
    data = rng.random((6, 7, 8)).astype(np.float32)
    affine = np.array([[0, 0, -2, 90], [-2, 0, 0, 100], [0, 2, 0, -70], [0, 0, 0, 1.0]])  # PSR-like
    img = nib.Nifti1Image(data, affine)
    canonical, back = to_canonical(img)
    assert nib.aff2axcodes(canonical.affine) == ("R", "A", "S")
    # The same world point holds the same value in both orders.
    ijk = np.array([1, 2, 3])
    world = affine @ np.r_[ijk, 1]
    cijk = np.round(np.linalg.inv(canonical.affine) @ world).astype(int)[:3]
    assert canonical.get_fdata()[tuple(cijk)] == pytest.approx(data[tuple(ijk)])
    again = from_canonical(canonical, back)
    np.testing.assert_array_equal(again.get_fdata(), data)
    np.testing.assert_allclose(again.affine, affine)


def test_qc_decision_names_each_failed_criterion():
    from graymatter.preprocess.qc import THRESHOLDS, decide, fraction_ranges

    good = {"similarity_ncc": 0.8, "brain_mask_dice": 0.92, "jacobian_min": 0.2,
            "jacobian_max": 4.0, "affine_scale": 0.8, "contrast_ordered": True,
            "gm_ml": 700.0, "wm_ml": 500.0, "csf_ml": 250.0, "tiv_ml": 1450.0}
    assert decide(good) == ("pass", [])
    status, reasons = decide({**good, "similarity_ncc": 0.1, "contrast_ordered": False})
    assert status == "fail" and len(reasons) == 2
    assert "similarity_ncc 0.100" in reasons[0] and "CSF < GM < WM" in reasons[1]
    warn = THRESHOLDS["brain_mask_dice"][0] - 0.01
    assert decide({**good, "brain_mask_dice": warn})[0] == "warn"
    assert decide({**good, "jacobian_min": -0.1})[0] == "fail"
    assert decide({**good, "brain_mask_dice": float("nan")})[0] == "fail"
    # GM fraction 0.48 is plausible at 25 but not at 85.
    assert decide(good, age=25)[0] == "pass"
    status, reasons = decide(good, age=85)
    assert status == "warn" and reasons[0].startswith("GM fraction 0.48")
    young, old = fraction_ranges(25), fraction_ranges(85)
    assert old["gm"][1] < young["gm"][1] and old["csf"][0] > young["csf"][0]


def test_deep_gm_prior_covers_basal_ganglia_not_cortex():
    tpl = load_templates(2.0)
    inv = np.linalg.inv(tpl.t1.affine)
    deep, gm = tpl.deep_gm.get_fdata(), tpl.gm.get_fdata()

    def at(xyz):
        ijk = tuple(np.round(inv @ np.r_[xyz, 1]).astype(int)[:3])
        return deep[ijk], gm[ijk]

    for xyz in [(12, -18, 8), (-25, 2, 0), (13, 12, 10)]:  # thalamus, putamen, caudate
        d, g = at(xyz)
        assert d == pytest.approx(g, rel=0.02) and g > 0.5
    for xyz in [(-40, -5, 5), (50, -20, 10), (5, 40, 30)]:  # insula, temporal, cingulate
        assert at(xyz)[0] < 0.02
    assert np.all(deep <= gm + 1e-6)


def test_qc_selection_needs_an_explicit_choice(tmp_path):
    from graymatter.workflows.preprocess import no_maps_error, qc_selection

    table = pd.DataFrame({"participant_id": ["sub-1", "sub-2", "sub-3", "sub-4"],
                          "status": ["done", "done", "done", "failed"],
                          "qc_status": ["pass", "warn", "fail", "fail"],
                          "folder": ["a", "b", "c", "d"]})
    table.to_csv(tmp_path / "qc.tsv", sep="\t", index=False)
    # No choice: the QC failure with maps is kept (and named); the one without maps cannot be.
    assert qc_selection(tmp_path) == (["sub-1", "sub-2", "sub-3"], [], ["sub-3"], ["sub-4"])
    assert qc_selection(tmp_path, "fail") == (["sub-1", "sub-2"], ["sub-3", "sub-4"], [], [])
    assert qc_selection(tmp_path, "warn") == (["sub-1"], ["sub-2", "sub-3", "sub-4"], [], [])
    assert "exclude_qc: fail" in str(no_maps_error(["sub-4"], tmp_path))
    with pytest.raises(InputError, match="exclude_qc must be"):
        qc_selection(tmp_path, "maybe")
