"""Parcel centroids from annotations + spheres, and centroid text files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from graymatter.errors import InputError
from graymatter.transcriptomics.centroids import parcel_centroids, read_centroids


def _neuromaps_centroids(annot, sphere, tmp_path):
    """neuromaps.get_parcel_centroids(method="surface") on a GIFTI label copy of the annotation."""
    import nibabel as nib
    from neuromaps.nulls.spins import get_parcel_centroids

    labels, ctab, names = nib.freesurfer.read_annot(annot)
    table = nib.gifti.GiftiLabelTable()
    for i, name in enumerate(names):
        lab = nib.gifti.GiftiLabel(key=i)
        lab.label = name.decode()
        table.labels.append(lab)
    img = nib.gifti.GiftiImage(labeltable=table)
    img.add_gifti_data_array(nib.gifti.GiftiDataArray(labels.astype(np.int32),
                                                      intent="NIFTI_INTENT_LABEL",
                                                      datatype="NIFTI_TYPE_INT32"))
    out = tmp_path / "labels.label.gii"
    nib.save(img, out)
    coords, _ = get_parcel_centroids([sphere], parcellation=[out], method="surface")
    return coords


@pytest.mark.parametrize("hemi", ["lh", "rh"])
def test_dk_centroids_match_neuromaps(shared_data, tmp_path, hemi):
    annot = shared_data / "surfaces" / f"fsa5_{hemi}_aparc.annot"
    sphere = shared_data / "surfaces" / f"fsa5_sphere_{hemi}.gii"
    cent = parcel_centroids(annot, sphere)
    assert 34 <= len(cent) <= 35
    assert list(cent.columns) == ["x", "y", "z"]
    assert "unknown" not in cent.index and "corpuscallosum" not in cent.index
    assert cent.index[0] == "bankssts"
    radius = np.linalg.norm(cent.to_numpy(), axis=1)
    np.testing.assert_allclose(radius, 100.0, atol=0.05)
    ref = _neuromaps_centroids(annot, sphere, tmp_path)
    np.testing.assert_allclose(cent.to_numpy(), ref, atol=1e-6, rtol=0)


def test_centroid_is_vertex_nearest_to_parcel_mean(shared_data):
    import nibabel as nib

    annot = shared_data / "surfaces" / "fsa5_lh_aparc.annot"
    sphere = shared_data / "surfaces" / "fsa5_sphere_lh.gii"
    cent = parcel_centroids(annot, sphere)
    labels, _, names = nib.freesurfer.read_annot(annot)
    verts = nib.load(sphere).agg_data("NIFTI_INTENT_POINTSET").astype(float)
    k = [n.decode() for n in names].index("precentral")
    mean = verts[labels == k].mean(axis=0)
    dist = np.linalg.norm(verts - mean, axis=1)
    np.testing.assert_array_equal(cent.loc["precentral"].to_numpy(), verts[dist.argmin()])
    # the centroid vertex belongs to the parcel for a convex-ish region like precentral
    assert labels[dist.argmin()] == k


def test_glasser_medialwall_dropped(shared_data):
    cent = parcel_centroids(shared_data / "surfaces" / "fsa5_lh_glasser_360.annot",
                            shared_data / "surfaces" / "fsa5_sphere_lh.gii")
    assert len(cent) == 180
    assert "medialwall" not in cent.index


def test_vertex_count_mismatch(shared_data, tmp_path):
    import nibabel as nib

    sphere = shared_data / "surfaces" / "fsa5_sphere_lh.gii"
    verts = nib.load(sphere).agg_data("NIFTI_INTENT_POINTSET")[:100]
    small = tmp_path / "lh.sphere"
    nib.freesurfer.write_geometry(small, verts.astype(float), np.array([[0, 1, 2]]))
    with pytest.raises(InputError, match="10242 vertices but sphere"):
        parcel_centroids(shared_data / "surfaces" / "fsa5_lh_aparc.annot", small)


def test_missing_files(tmp_path):
    with pytest.raises(InputError, match="annotation file"):
        parcel_centroids(tmp_path / "no.annot", tmp_path / "no.gii")


def test_read_hcp_centroids(shared_data):
    cent = read_centroids(shared_data / "surfaces" / "sphere_HCP_centroids.txt")
    assert cent.shape == (360, 3)
    raw = np.loadtxt(shared_data / "surfaces" / "sphere_HCP_centroids.txt")
    np.testing.assert_array_equal(cent.to_numpy(), raw)
    assert cent.index[0] == "0"


def test_read_centroids_names_header_and_csv(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("name,x,y,z\nA,1,2,3\nB,4.5,-6,7e1\n")
    cent = read_centroids(path)
    assert list(cent.index) == ["A", "B"]
    np.testing.assert_array_equal(cent.to_numpy(), [[1, 2, 3], [4.5, -6, 70]])
    renamed = read_centroids(path, names=["p", "q"])
    assert list(renamed.index) == ["p", "q"]
    assert isinstance(renamed, pd.DataFrame)


def test_read_centroids_errors(tmp_path):
    two = tmp_path / "two.txt"
    two.write_text("1 2\n3 4\n")
    with pytest.raises(InputError, match="data row 1: expected three numbers"):
        read_centroids(two)
    nan = tmp_path / "nan.txt"
    nan.write_text("1 2 3\nnan 2 3\n")
    with pytest.raises(InputError, match="rows 2 have missing"):
        read_centroids(nan)
    ok = tmp_path / "ok.txt"
    ok.write_text("1 2 3\n4 5 6\n")
    with pytest.raises(InputError, match="names has 3 entries"):
        read_centroids(ok, names=["a", "b", "c"])
    with pytest.raises(InputError, match="duplicates"):
        read_centroids(ok, names=["a", "a"])
    with pytest.raises(InputError, match="does not exist"):
        read_centroids(tmp_path / "missing.txt")
