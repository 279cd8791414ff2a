"""Finding images by subject id, loading image matrices, default masks and MNI grids."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from graymatter.datasets.templates import default_gm_mask, mni_grid
from graymatter.errors import GraymatterWarning, InputError
from graymatter.io.images import MaskedGrid, find_images, load_image_matrix

AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])


def _touch(folder, *names):
    paths = []
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        paths.append(path)
    return paths


# --- find_images -----------------------------------------------------------------------------

def test_pattern_with_cat12_names_and_no_prefix_confusion(tmp_path, monkeypatch):
    _touch(tmp_path / "mri", "mwp1sub-01_T1w.nii.gz", "mwp1sub-010_T1w.nii.gz",
           "mwp1sub-02_T1w.nii.gz")
    monkeypatch.chdir(tmp_path)
    found = find_images(["sub-010", "sub-02", "sub-01"], "mri/mwp1*.nii.gz")
    assert list(found) == ["sub-010", "sub-02", "sub-01"]
    assert found["sub-01"].name == "mwp1sub-01_T1w.nii.gz"
    assert found["sub-010"].name == "mwp1sub-010_T1w.nii.gz"


def test_list_in_reverse_order_maps_by_id(tmp_path):
    files = _touch(tmp_path, "smwp1CAM_0002_01.nii", "smwp1CAM_0003_01.nii", "mwc1_sub01.nii")
    found = find_images(["CAM_0002_01", "CAM_0003_01", "sub01"], files[::-1])
    assert found == {"CAM_0002_01": files[0], "CAM_0003_01": files[1], "sub01": files[2]}


def test_recursive_pattern_matches_folder_names(tmp_path):
    _touch(tmp_path, "sub-01/anat/gm.nii", "sub-02/anat/gm.nii")
    found = find_images(["sub-02", "sub-01"], str(tmp_path / "**" / "gm.nii"))
    assert found["sub-02"] == tmp_path / "sub-02" / "anat" / "gm.nii"


def test_shared_folder_is_ignored_and_mixed_relative_paths(tmp_path, monkeypatch):
    files = _touch(tmp_path / "run-01", "mwp1_01.nii", "mwp1_02.nii")
    monkeypatch.chdir(tmp_path)
    found = find_images(["02", "01"], [files[0], "run-01/mwp1_02.nii"])
    assert found["01"] == files[0] and found["02"].name == "mwp1_02.nii"


def test_mapping_input(tmp_path):
    a, b = _touch(tmp_path, "a.nii", "b.nii")
    with pytest.warns(GraymatterWarning, match="1 rows of the image mapping"):
        found = find_images(["s2", "s1"], {"s1": a, "s2": str(b), "s3": a})
    assert found == {"s2": b, "s1": a}
    with pytest.raises(InputError, match=r"no data in the image mapping: s4"):
        find_images(["s1", "s4"], {"s1": a})


def test_subject_without_image_and_extra_file(tmp_path):
    files = _touch(tmp_path, "mwp1sub-01.nii", "mwp1sub-03.nii")
    with pytest.raises(InputError, match=r"1 of 2 subjects have no image.*sub-02.*"
                                         r"Example file names: mwp1sub-01\.nii"):
        find_images(["sub-01", "sub-02"], files)
    with pytest.warns(GraymatterWarning, match=r"1 image\(s\).*match no participant.*sub-03"):
        find_images(["sub-01"], files)


def test_prefix_hint(tmp_path):
    files = _touch(tmp_path, "mwp1_01.nii", "mwp1_02.nii")
    with pytest.raises(InputError, match=r"without their 'sub-' prefix"):
        find_images(["sub-01", "sub-02"], files)


def test_ambiguous_matches(tmp_path):
    files = _touch(tmp_path, "sub-01_sub-02.nii", "x_sub-03.nii")
    with pytest.raises(InputError, match=r"sub-01_sub-02\.nii' matches several subjects: "
                                         r"sub-01, sub-02"):
        find_images(["sub-01", "sub-02", "sub-03"], files)
    files = _touch(tmp_path, "mwp1sub-04.nii", "smwp1sub-04.nii")
    with pytest.raises(InputError, match=r"'sub-04' matches 2 images.*mwp1sub-04\.nii.*"
                                         r"smwp1sub-04\.nii"):
        find_images(["sub-04"], files)


def test_missing_listed_file_and_empty_pattern(tmp_path, monkeypatch):
    with pytest.raises(InputError, match=r"do not exist: .*ghost\.nii"):
        find_images(["a"], [tmp_path / "ghost.nii"])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match=r"pattern 'nothing/\*\.nii' matches no file.*"
                                         + str(tmp_path)):
        find_images(["a"], "nothing/*.nii")


# --- load_image_matrix -------------------------------------------------------------------------

def _save(path, data, affine=AFFINE):
    nib.save(nib.Nifti1Image(np.asarray(data, dtype=np.float32), affine), path)
    return path


def test_odd_shape_c_order_and_round_trip(tmp_path, rng):
    volumes = rng.normal(size=(3, 7, 8, 9)).astype(np.float32)
    paths = [_save(tmp_path / f"s{i}.nii.gz", v) for i, v in enumerate(volumes)]
    mask = rng.random((7, 8, 9)) > 0.5
    data, grid = load_image_matrix(paths, mask=mask, progress=False)
    assert data.shape == (3, mask.sum()) and data.dtype == np.float64
    np.testing.assert_array_equal(data, np.stack([v[mask] for v in volumes]))
    assert grid.shape == (7, 8, 9) and grid.n_voxels == mask.sum()
    back = grid.to_image(data[1], fill=np.nan).get_fdata()
    np.testing.assert_array_equal(back[mask], volumes[1][mask])
    assert np.isnan(back[~mask]).all()
    four_d = grid.to_image(data)
    assert four_d.shape == (7, 8, 9, 3) and four_d.get_data_dtype() == np.float32
    np.testing.assert_allclose(grid.coordinates()[0], 2.0 * np.argwhere(mask)[0])
    assert grid.mask_image().get_fdata().sum() == mask.sum()
    with pytest.raises(InputError, match=r"values must have shape \(n_voxels,\)"):
        grid.to_image(np.zeros(5))


def test_nilearn_masker_order(tmp_path, rng):
    from nilearn.maskers import NiftiMasker

    paths = [_save(tmp_path / f"s{i}.nii", rng.normal(size=(7, 8, 9))) for i in range(2)]
    mask = np.zeros((7, 8, 9), bool)
    mask[1:6, 2:7, 3:8] = True
    data, _ = load_image_matrix(paths, mask=mask, dtype="float32", progress=False)
    masker = NiftiMasker(nib.Nifti1Image(mask.astype(np.uint8), AFFINE), standardize=None).fit()
    np.testing.assert_allclose(data, masker.transform([str(p) for p in paths]), rtol=1e-6)


def test_grid_mismatch_names_file(tmp_path, rng):
    ref = _save(tmp_path / "ref.nii", rng.normal(size=(7, 8, 9)))
    shifted = np.array(AFFINE)
    shifted[0, 3] = 5.0
    moved = _save(tmp_path / "moved.nii", rng.normal(size=(7, 8, 9)), shifted)
    with pytest.raises(InputError, match=r"moved\.nii' is not on the same voxel grid.*ref\.nii"
                                         r".*affine.*resample_to_img"):
        load_image_matrix([ref, moved], mask=np.ones((7, 8, 9), bool), progress=False)
    small = _save(tmp_path / "small.nii", rng.normal(size=(7, 8, 8)))
    with pytest.raises(InputError, match=r"small\.nii'.*shape \(7, 8, 8\) vs \(7, 8, 9\)"):
        load_image_matrix([ref, small], mask=np.ones((7, 8, 9), bool), progress=False)


def test_corrupt_missing_and_4d(tmp_path, rng):
    ref = _save(tmp_path / "ref.nii", rng.normal(size=(7, 8, 9)))
    bad = tmp_path / "x.nii.gz"
    bad.write_bytes(b"this is not a gzip file at all" * 20)
    with pytest.raises(InputError, match=r"x\.nii\.gz"):
        load_image_matrix([ref, bad], progress=False)
    with pytest.raises(InputError, match=r"gone\.nii' does not exist"):
        load_image_matrix([tmp_path / "gone.nii"], progress=False)
    four = _save(tmp_path / "four.nii", rng.normal(size=(7, 8, 9, 2)))
    with pytest.raises(InputError, match=r"four\.nii' has shape \(7, 8, 9, 2\).*3-D"):
        load_image_matrix([four], progress=False)
    single = _save(tmp_path / "single.nii", rng.normal(size=(7, 8, 9, 1)))
    data, grid = load_image_matrix([single, ref], mask=np.ones((7, 8, 9), bool),
                                   progress=False)
    assert data.shape == (2, 7 * 8 * 9)


def test_mask_on_other_grid_is_resampled(tmp_path, rng):
    paths = [_save(tmp_path / f"s{i}.nii", rng.normal(size=(8, 8, 8))) for i in range(2)]
    coarse = np.zeros((4, 4, 4), np.uint8)
    coarse[:2] = 1  # first half along x, at 4 mm
    mask_path = tmp_path / "mask.nii.gz"
    nib.save(nib.Nifti1Image(coarse, np.diag([4.0, 4.0, 4.0, 1.0])), mask_path)
    data, grid = load_image_matrix(paths, mask=mask_path, progress=False)
    assert grid.shape == (8, 8, 8)
    assert grid.mask[:3, :7, :7].all() and not grid.mask[5:].any()  # FOV edge: nearest
    empty = nib.Nifti1Image(np.zeros((4, 4, 4), np.uint8), np.diag([4.0, 4.0, 4.0, 1.0]))
    with pytest.raises(InputError, match=r"mask has no voxel"):
        load_image_matrix(paths, mask=empty, progress=False)
    with pytest.raises(InputError, match=r"Cannot read mask '.*nomask\.nii'"):
        load_image_matrix(paths, mask=tmp_path / "nomask.nii", progress=False)


def test_real_cat12_with_default_mask(shared_data):
    path = shared_data / "cat12" / "mwp1CAM_0002_01.nii.gz"
    data, grid = load_image_matrix([path, path], progress=False)
    assert grid.shape == (121, 145, 121)
    np.testing.assert_allclose(np.abs(np.diag(grid.affine)[:3]), 1.5)
    assert 250_000 < grid.n_voxels < 550_000  # ~0.8-1.9 litres of 1.5 mm voxels
    assert np.isfinite(data).all() and data.min() >= 0 and data.max() < 2
    assert 0.1 < data.mean() < 0.8
    np.testing.assert_array_equal(data[0], data[1])


# --- templates -----------------------------------------------------------------------------------

def test_mni_grid_matches_real_cat12_and_spm_files(shared_data):
    cat12 = nib.load(shared_data / "cat12" / "mwp1CAM_0002_01.nii.gz")
    shape, affine = mni_grid(1.5)
    assert shape == cat12.shape
    np.testing.assert_allclose(affine, cat12.affine, atol=1e-4)
    spm = nib.load(shared_data / "t1" / "spm_single_subj_T1.nii")
    shape, affine = mni_grid(2)
    assert shape == spm.shape == (91, 109, 91)
    np.testing.assert_allclose(affine, spm.affine, atol=1e-4)
    assert mni_grid(1)[0] == (181, 217, 181)
    with pytest.raises(InputError, match=r"resolution_mm must be a positive"):
        mni_grid(0)


def test_default_gm_mask_2mm():
    mask = default_gm_mask(mni_grid(2))
    assert mask.shape == (91, 109, 91)
    n = int(mask.get_fdata().sum())
    assert 120_000 < n < 230_000  # about 1-1.8 litres of 2 mm voxels
    native = default_gm_mask()
    assert native.shape == (99, 117, 95)
    stricter = default_gm_mask(mni_grid(2), threshold=0.5)
    assert stricter.get_fdata().sum() < n
    with pytest.raises(InputError, match=r"threshold must be"):
        default_gm_mask(threshold=1.5)


def test_masked_grid_validates():
    with pytest.raises(InputError, match=r"3-D"):
        MaskedGrid(np.ones((2, 2)), np.eye(4))
    grid = MaskedGrid(np.ones((2, 3, 4), bool), np.eye(4))
    assert "n_voxels=24" in repr(grid)
