"""Centroid files with a hemisphere column, and Schaefer names as hemisphere labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from graymatter.errors import InputError
from graymatter.transcriptomics.centroids import parcel_centroids, read_centroids
from graymatter.transcriptomics.expression import match_regions, normalise_region_name
from graymatter.workflows.transcriptomics import centroid_frames


def _pair(shared_data, parcellation, hemi):
    surfaces = shared_data / "surfaces"
    return (surfaces / f"fsa5_{hemi}_{parcellation}.annot", surfaces / f"fsa5_sphere_{hemi}.gii")


def _frames_from_annotations(shared_data, parcellation):
    (al, sl), (ar, sr) = (_pair(shared_data, parcellation, h) for h in ("lh", "rh"))
    return centroid_frames(None, None, al, sl, ar, sr, None)


@pytest.mark.parametrize("labels", [("L", "R"), ("lh", "rh"), ("left", "Right")])
def test_hemi_column_gives_the_annotation_centroids(shared_data, tmp_path, labels):
    """DK names without hemisphere + a hemi column == the centroids of the two annotations."""
    parts = []
    for hemi, label in zip(("lh", "rh"), labels, strict=True):
        cent = parcel_centroids(*_pair(shared_data, "aparc", hemi))
        parts.append(cent.reset_index().assign(hemi=label))
    table = pd.concat(parts)[["region", "hemi", "x", "y", "z"]]
    path = tmp_path / "centroids.tsv"
    table.to_csv(path, sep="\t", index=False, float_format="%.17g")
    cent = read_centroids(path)
    assert cent.index[0] == "lh_bankssts" and cent.index[-1].startswith("rh_")
    from_file = centroid_frames(path, None, None, None, None, None, None)
    from_annot = _frames_from_annotations(shared_data, "aparc")
    assert len(from_file) == len(from_annot) == 2
    for a, b in zip(from_file, from_annot, strict=True):
        assert list(a.index) == list(b.index)
        np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())


def test_hemi_column_without_names_uses_the_names_given(shared_data, tmp_path):
    cent = parcel_centroids(*_pair(shared_data, "aparc", "rh"))
    path = tmp_path / "c.csv"
    cent.assign(hemi="R")[["hemi", "x", "y", "z"]].to_csv(path, index=False)
    named = read_centroids(path, names=list(cent.index))
    assert list(named.index) == [f"rh_{n}" for n in cent.index]
    assert list(read_centroids(path).index[:2]) == ["rh_0", "rh_1"]


def test_schaefer_names_carry_the_hemisphere(shared_data, tmp_path):
    assert normalise_region_name("7Networks_LH_Vis_1") == "lh_7Networks_Vis_1"
    assert normalise_region_name("17Networks_RH_DefaultA_PCC_1") == "rh_17Networks_DefaultA_PCC_1"
    frames = _frames_from_annotations(shared_data, "schaefer_100")
    assert [len(f) for f in frames] == [50, 50]
    assert frames[0].index[0] == "lh_7Networks_Vis_1"
    assert all(n.startswith("rh_7Networks_") for n in frames[1].index)
    # A plain centroid file named with the annotation's own names is no longer refused.
    raw = pd.concat([parcel_centroids(*_pair(shared_data, "schaefer_100", h))
                     for h in ("lh", "rh")])
    path = tmp_path / "schaefer.txt"
    raw.reset_index().to_csv(path, sep=" ", index=False, header=False, float_format="%.17g")
    from_file = centroid_frames(path, None, None, None, None, None, None)
    for a, b in zip(from_file, frames, strict=True):
        assert list(a.index) == list(b.index)
        np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())
    # Hemisphere selection of a Schaefer-named map and expression matrix.
    names = list(raw.index)
    ymap = pd.Series(np.arange(len(names), dtype=float), index=names)
    expr = pd.DataFrame(np.ones((len(names), 2)), index=names, columns=["A", "B"])
    y, _, _ = match_regions(ymap, expr, hemisphere="rh")
    assert len(y) == 50 and all(n.startswith("rh_7Networks_") for n in y.index)


@pytest.mark.parametrize("text, match", [
    ("region,hemi,x,y,z\nbankssts,L,1,2,3\ncuneus,both,4,5,6\n",
     r"c.csv', data row 2: column 'hemi' holds 'both'; expected a hemisphere: L/R, lh/rh or "
     r"left/right"),
    ("region,hemisphere,x,y\nbankssts,L,1,2\n",
     r"must name the coordinate columns x, y, z; z not found"),
    ("region,hemi,x,y,z\nL_bankssts,R,1,2,3\n",
     r"'L_bankssts' is on the lh side by its name but the hemisphere column says rh"),
    ("region,hemi,x,y,z\nbankssts,L,1,2\n", r"data row 1: 4 cells but the header has 5"),
    ("region,hemi,x,y,z\nbankssts,L,1,2,a\n", r"data row 1: expected numbers in columns x, y, z"),
    ("region,hemi,x,y,z\nbankssts,L,1,2,3\nbankssts,lh,1,2,3\n",
     r"repeated region names lh_bankssts"),
])
def test_hemi_column_errors(tmp_path, text, match):
    path = tmp_path / "c.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=match):
        read_centroids(path)
