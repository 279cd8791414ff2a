"""The SPM-style cluster table on planted blobs in MNI space, labelled with the DK atlas."""

from __future__ import annotations

import re

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from graymatter.datasets.atlases import load_atlas
from graymatter.datasets.templates import mni_grid
from graymatter.errors import InputError
from graymatter.io.images import MaskedGrid
from graymatter.report.cluster_table import (cluster_table, format_cluster_table,
                                             write_cluster_table)

LEFT_TOPS = [((-24, -4, -20), 6.0), ((-24, 12, -20), 5.0), ((-24, -4, -36), 4.8),
             ((-40, -4, -20), 4.5)]  # four maxima 16 mm apart: only three may be listed
RIGHT_TOP = ((28, 4, -20), 5.0)


@pytest.fixture(scope="module")
def dk():
    return load_atlas()


@pytest.fixture(scope="module")
def planted():
    shape, affine = mni_grid(2)
    mask = np.zeros(shape, bool)
    mask[15:76, 50:85, 5:50] = True  # x -60..60, y -26..42, z -62..26 mm
    grid = MaskedGrid(mask, affine)
    xyz = grid.coordinates()

    def blob(centre, amplitude, sigma):
        return amplitude * np.exp(-((xyz - centre) ** 2).sum(axis=1) / (2 * sigma**2))

    t = sum(blob(c, a, 4.0) for c, a in LEFT_TOPS) + blob(*RIGHT_TOP, 3.0)
    volume = np.zeros(shape)
    volume[mask] = t > 1.2
    labels, n = ndimage.label(volume, ndimage.generate_binary_structure(3, 2))
    assert n == 2
    labels = labels[mask]
    # ndimage numbers clusters in scan order; x runs from +90 mm, so the right (smaller)
    # cluster is 1: the table must still list the larger left cluster first.
    assert labels[np.argmin(np.linalg.norm(xyz - RIGHT_TOP[0], axis=1))] == 1
    peak_values = {"z": 0.9 * t, "p_unc": 10.0 ** -t, "p_fwe_perm": np.minimum(1, 50 * 10.0 ** -t),
                   "p_fdr": np.minimum(1, 3 * 10.0 ** -t)}
    return grid, t, labels, peak_values


def _voxel(grid, row):
    hits = np.flatnonzero((grid.coordinates() == row[["x", "y", "z"]].to_numpy(float)).all(1))
    assert hits.size == 1
    return int(hits[0])


def test_table_of_two_planted_clusters(planted, dk):
    grid, t, labels, peak_values = planted
    cluster_p = {"perm": np.array([0.03, 0.004]), "rft": np.array([0.05, 0.01])}
    table = cluster_table(t, grid, labels, contrast="TRD > nonTRD", cluster_p=cluster_p,
                          peak_values=peak_values, atlas=dk)
    assert list(table.columns) == [
        "contrast", "cluster", "peak", "k", "volume_mm3", "cluster_p_fwe_perm",
        "cluster_p_fwe_rft", "x", "y", "z", "peak_t", "peak_z", "peak_p_unc", "peak_p_fwe_perm",
        "peak_p_fdr", "side", "peak_label", "cluster_labels"]
    sizes = np.bincount(labels)
    assert sizes[2] > sizes[1]
    assert table["cluster"].tolist() == [2, 2, 2, 1]  # by size; three peaks at most
    assert table["peak"].tolist() == [1, 2, 3, 1]
    assert (table["contrast"] == "TRD > nonTRD").all()

    first = table[table["peak"] == 1].set_index("cluster")
    for k in (1, 2):
        assert first.loc[k, "k"] == sizes[k]
        assert first.loc[k, "volume_mm3"] == pytest.approx(8.0 * sizes[k])
        assert first.loc[k, "cluster_p_fwe_perm"] == cluster_p["perm"][k - 1]
        assert first.loc[k, "cluster_p_fwe_rft"] == cluster_p["rft"][k - 1]
        assert first.loc[k, "peak_t"] == pytest.approx(t[labels == k].max())
    sub = table[table["peak"] > 1]
    assert sub["k"].isna().all() and sub["volume_mm3"].isna().all()
    assert sub["cluster_p_fwe_perm"].isna().all() and sub["cluster_labels"].isna().all()

    # Peaks are the planted tops, highest first; the fourth (lowest) is not listed.
    left = table[table["cluster"] == 2]
    np.testing.assert_array_equal(left[["x", "y", "z"]].to_numpy(),
                                  [c for c, _ in LEFT_TOPS[:3]])
    pts = left[["x", "y", "z"]].to_numpy()
    assert min(np.linalg.norm(pts[a] - pts[b]) for a in range(3) for b in range(a)) > 8.0
    assert tuple(table.iloc[3][["x", "y", "z"]]) == RIGHT_TOP[0]

    # Per-voxel columns are read at each peak's voxel.
    for _, row in table.iterrows():
        v = _voxel(grid, row)
        assert row["peak_t"] == t[v]
        for name, values in peak_values.items():
            assert row[f"peak_{name}"] == values[v]

    # Anatomy: DK amygdalae, side from x, cluster labels with percentages.
    assert table.loc[0, "peak_label"] == "amygdala" and table.loc[0, "side"] == "L"
    assert table.loc[3, "peak_label"] == "amygdala" and table.loc[3, "side"] == "R"
    assert re.fullmatch(r"amygdala \(L\) \d+%(; [a-z]+ \([LR]\) \d+%){0,2}",
                        table.loc[0, "cluster_labels"])
    assert table.loc[3, "cluster_labels"].startswith("amygdala (R) ")
    overlap = dk.overlap(grid, labels == 2)
    assert table.loc[0, "cluster_labels"].startswith(f"amygdala (L) {overlap.iloc[0]:.0f}%")


def test_options_stat_name_and_no_atlas(planted):
    grid, t, labels, _ = planted
    table = cluster_table(t, grid, labels, contrast="F test", stat_name="F", max_peaks=1)
    assert "peak_F" in table.columns and "peak_t" not in table.columns
    assert table["peak"].tolist() == [1, 1]
    assert table["peak_label"].isna().all() and table["cluster_labels"].isna().all()
    assert table["side"].tolist() == ["L", "R"]
    wide = cluster_table(t, grid, labels, contrast="c", min_distance_mm=20.0)
    assert wide["cluster"].tolist() == [2, 1]  # the planted tops are 16 mm apart


@pytest.mark.parametrize("voxels_apart, rows", [(4, 1), (5, 2)])
def test_subpeak_8mm_away_on_a_2mm_grid_is_not_listed(voxels_apart, rows):
    # SPM12 spm_list keeps a sub-peak only when it is more than 8 mm from the higher peaks.
    grid = MaskedGrid(np.ones((20, 7, 7), bool), np.diag([2.0, 2, 2, 1]))
    ijk = np.indices(grid.shape).reshape(3, -1).T.astype(float)
    t = sum(h * np.exp(-((ijk - c) ** 2).sum(1) / 2.0)
            for c, h in (((6, 3, 3), 5.0), ((6 + voxels_apart, 3, 3), 4.0)))
    table = cluster_table(t, grid, (t > 0.5).astype(int), contrast="c")
    assert len(table) == rows and (table["cluster"] == 1).all()
    if rows == 2:
        assert table.loc[1, "x"] - table.loc[0, "x"] == 2.0 * voxels_apart


def test_text_peak_values_give_a_text_column(planted):
    grid, t, labels, peak_values = planted
    method = np.where(t > 5.5, "Bonferroni", "RFT")
    table = cluster_table(t, grid, labels, contrast="c",
                          peak_values={"p_fwe_rft": 10.0 ** -t, "fwe_rft_method": method})
    assert table["peak_fwe_rft_method"].tolist() == ["Bonferroni", "RFT", "RFT", "RFT"]
    assert table["peak_p_fwe_rft"].dtype == np.float64
    assert "Bonferroni" in format_cluster_table(table).splitlines()[3].split()
    empty = cluster_table(t, grid, np.zeros_like(labels), contrast="c",
                          peak_values={"fwe_rft_method": method})
    assert empty.empty and "peak_fwe_rft_method" in empty.columns


def test_nearest_label_is_marked(tmp_path):
    grid = MaskedGrid(np.ones((9, 9, 9), bool), np.diag([2.0, 2, 2, 1]))
    data = np.zeros((9, 9, 9), np.int16)
    data[4, 4, 6] = 3  # one labelled voxel 4 mm above the peak at voxel (4, 4, 4)
    atlas = load_atlas(nib.Nifti1Image(data, grid.affine), labels={3: "thing"})
    t = np.exp(-((grid.coordinates() - (8, 8, 8)) ** 2).sum(1) / 8.0) * 4
    table = cluster_table(t, grid, (t > 0.5).astype(int), contrast="c", atlas=atlas)
    assert table.loc[0, "peak_label"] == "thing (nearest, 4.0 mm)"
    assert table.loc[0, "cluster_labels"] == f"thing {100 / (t > 0.5).sum():.0f}%"
    far = cluster_table(t, grid, (t > 0.5).astype(int), contrast="c",
                        atlas=load_atlas(nib.Nifti1Image(data * 0, grid.affine), labels={}))
    assert far.loc[0, "peak_label"] == "unlabelled" and far.loc[0, "cluster_labels"] == "unlabelled"


def test_no_cluster_gives_an_empty_table_with_the_same_columns(planted, dk):
    grid, t, labels, peak_values = planted
    full = cluster_table(t, grid, labels, contrast="c", cluster_p={"perm": [0.1, 0.2]},
                         peak_values=peak_values, atlas=dk)
    empty = cluster_table(t, grid, np.zeros_like(labels), contrast="c",
                          cluster_p={"perm": []}, peak_values=peak_values, atlas=dk)
    assert empty.empty
    assert list(empty.columns) == list(full.columns)
    assert (empty.dtypes == full.dtypes).all()
    text = format_cluster_table(empty)
    assert "(no clusters)" in text and "cluster_p_fwe_perm" in text


def test_format_shows_the_numbers(planted, dk):
    grid, t, labels, peak_values = planted
    table = cluster_table(t, grid, labels, contrast="TRD > nonTRD",
                          cluster_p={"perm": np.array([0.03, 0.0004])},
                          peak_values=peak_values, atlas=dk)
    text = format_cluster_table(table)
    lines = text.splitlines()
    assert lines[0] == "contrast: TRD > nonTRD"
    assert len(lines) == 3 + len(table)  # title, header, rule, one line per peak
    first = lines[3]
    top = table.iloc[0]
    for token in [str(top["k"]), f"{top['volume_mm3']:.0f}", "<0.001", "-24", "-4", "-20",
                  f"{top['peak_t']:.2f}", f"{top['peak_p_unc']:.3g}", "amygdala (L)"]:
        assert token in first, token
    assert "0.030" in lines[3 + 3]  # the right cluster's p on its own first row
    sub = lines[4]  # a sub-peak: no cluster id, k or cluster p
    assert str(top["k"]) not in sub.split() and "<0.001" in sub  # (peak FDR is < 0.001)
    assert "12" in sub.split()


def test_write_round_trip(planted, tmp_path):
    grid, t, labels, peak_values = planted
    table = cluster_table(t, grid, labels, contrast="c", peak_values=peak_values)
    path = write_cluster_table(table, tmp_path / "out" / "clusters.tsv")
    back = pd.read_csv(path, sep="\t", na_values="n/a")
    assert list(back.columns) == list(table.columns)
    np.testing.assert_allclose(back["peak_p_unc"], table["peak_p_unc"], rtol=1e-9)
    assert back["k"].isna().tolist() == table["k"].isna().tolist()
    assert "n/a" in path.read_text()


def test_errors_name_the_argument(planted):
    grid, t, labels, _ = planted
    with pytest.raises(InputError, match=r"cluster_p\['perm'\] must hold one p-value per "
                                         r"cluster, shape \(2,\)"):
        cluster_table(t, grid, labels, contrast="c", cluster_p={"perm": [0.1]})
    with pytest.raises(InputError, match=r"peak_values\['z'\] must have shape"):
        cluster_table(t, grid, labels, contrast="c", peak_values={"z": t[:5]})
    with pytest.raises(InputError, match="already has"):
        cluster_table(t, grid, labels, contrast="c", peak_values={"t": t})
    with pytest.raises(InputError, match="contrast must be a non-empty name"):
        cluster_table(t, grid, labels, contrast="")
