"""The synthetic T1 generator: its transforms do what they say and its truth follows them."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from graymatter.datasets.synthetic_t1 import (_template, compare_to_truth, make_synthetic_t1,
                                              scrambled)
from graymatter.errors import InputError


@pytest.fixture(scope="module")
def scans():
    return {"lps": make_synthetic_t1(seed=5, orientation="LPS"),
            "psr": make_synthetic_t1(seed=6, orientation="PSR"),
            "atrophy": make_synthetic_t1(seed=5, orientation="LPS", atrophy=True)}


def _world_centre(scan):
    """Brain centre (truth-weighted centroid of GM + WM) in world mm."""
    weight = scan.truth["GM"] + scan.truth["WM"]
    ijk = np.stack(np.nonzero(weight > 0))
    centre = (ijk * weight[weight > 0]).sum(axis=1) / weight.sum()
    return scan.image.affine[:3, :3] @ centre + scan.image.affine[:3, 3]


def test_header_dtype_orientation_and_origin(scans):
    for key, codes in (("lps", ("L", "P", "S")), ("psr", ("P", "S", "R"))):
        scan = scans[key]
        assert scan.image.get_data_dtype() == np.uint8
        assert nib.aff2axcodes(scan.image.affine) == codes
        assert np.allclose(np.abs(np.diag(scan.image.header.get_zooms()[:3])), 2 * np.eye(3))
        # The brain sits ~100 mm from the world origin (up to the warp and the template's
        # asymmetric mask centre).
        assert 85 < np.linalg.norm(_world_centre(scan)) < 115
        for tissue in ("GM", "WM", "CSF"):
            assert scan.truth[tissue].shape == scan.image.shape


def test_truth_volumes_follow_the_affine(scans):
    tpl = _template()
    for key in ("lps", "psr"):
        scan = scans[key]
        det = float(np.prod(scan.params["scales"]))
        for tissue in ("GM", "WM", "CSF"):
            template_ml = tpl[tissue].sum(dtype=np.float64) / 1000.0
            got = scan.volumes_ml()[f"{tissue.lower()}_ml"]
            # Volume scales with the affine's determinant; the smooth warp and resampling move
            # it by little.
            assert got == pytest.approx(template_ml * det, rel=0.03), (key, tissue)


def test_image_contrast_matches_truth(scans):
    data = np.asarray(scans["lps"].image.dataobj, float)
    means = {t: data[scans["lps"].truth[t] > 0.9].mean() for t in ("GM", "WM", "CSF")}
    assert means["CSF"] < means["GM"] < means["WM"]
    t2 = make_synthetic_t1(seed=5, orientation="LPS", contrast="T2", skull=False)
    data = np.asarray(t2.image.dataobj, float)
    means = {t: data[t2.truth[t] > 0.9].mean() for t in ("GM", "WM", "CSF")}
    assert means["CSF"] > means["GM"] > means["WM"]


def test_atrophy_enlarges_ventricles_and_thins_cortex(scans):
    healthy, atrophied = scans["lps"], scans["atrophy"]  # same seed: same transforms
    ratio = atrophied.ventricles.sum() / healthy.ventricles.sum()
    assert ratio > 1.3
    gm = atrophied.volumes_ml()["gm_ml"] / healthy.volumes_ml()["gm_ml"]
    assert 0.75 < gm < 0.95
    # Tissue moves between classes and space: the intracranial total changes little.
    assert atrophied.volumes_ml()["tiv_ml"] == pytest.approx(healthy.volumes_ml()["tiv_ml"],
                                                             rel=0.03)


def test_seeded_and_deterministic(scans):
    again = make_synthetic_t1(seed=6, orientation="PSR")
    assert np.array_equal(np.asarray(again.image.dataobj), np.asarray(scans["psr"].image.dataobj))
    assert np.array_equal(again.image.affine, scans["psr"].image.affine)
    other = make_synthetic_t1(seed=7, orientation="PSR")
    assert other.params["scales"] != scans["psr"].params["scales"]


def test_scrambled_is_a_permutation(scans):
    image = scans["lps"].image
    mixed = scrambled(image, seed=1)
    a, b = np.asarray(image.dataobj), np.asarray(mixed.dataobj)
    assert np.array_equal(np.sort(a, axis=None), np.sort(b, axis=None))
    assert (a != b).mean() > 0.5 and np.array_equal(mixed.affine, image.affine)


def test_compare_to_truth_scores_the_truth_perfectly_even_reoriented(scans):
    scan = scans["psr"]
    maps = {t: nib.Nifti1Image(scan.truth[t], scan.image.affine) for t in ("GM", "WM", "CSF")}
    canonical = {t: nib.as_closest_canonical(img) for t, img in maps.items()}
    for given in (maps, canonical):
        metrics = compare_to_truth(scan, given)
        assert metrics["gm_dice"] == pytest.approx(1.0)
        for tissue in ("gm", "wm", "csf"):
            assert abs(metrics[f"{tissue}_err_pct"]) < 1e-3
    worse = dict(maps, GM=nib.Nifti1Image(scan.truth["GM"] * 0.9, scan.image.affine))
    assert compare_to_truth(scan, worse)["gm_err_pct"] == pytest.approx(-10.0, abs=1e-3)


def test_bad_orientation_is_rejected():
    with pytest.raises(InputError, match="orientation"):
        make_synthetic_t1(orientation="LPL")
