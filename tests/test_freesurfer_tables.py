"""FreeSurfer tables: asegstats2table/aparcstats2table files, the SUBJECTS_DIR walker, long/wide."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from graymatter.errors import GraymatterWarning, InputError
from graymatter.io.freesurfer import FreeSurferParseError, read_stats
from graymatter.io.freesurfer_tables import (
    LONG_COLUMNS,
    collect_stats,
    parse_subject_name,
    read_stats_table,
    wide_table,
)

TABLES = "freesurfer/tables_fs7_longitudinal"


# ----------------------------------------------------------------------------------------------
# Subject names

@pytest.mark.parametrize(("name", "expected"), [
    ("13900_01.long.13900_base", ("13900_base", "13900_01", True)),
    ("sub-01_ses-pre.long.sub-01", ("sub-01", "sub-01_ses-pre", True)),
    ("13900_base", ("13900_base", None, False)),
    ("sub-01", ("sub-01", None, False)),
    ("bert.longer", ("bert.longer", None, False)),
])
def test_parse_subject_name(name, expected):
    assert parse_subject_name(name) == expected


@pytest.mark.parametrize("name", ["", ".long.base", "tp1.long.", "  "])
def test_parse_subject_name_rejects_incomplete_names(name):
    with pytest.raises(InputError, match="subject name"):
        parse_subject_name(name)


# ----------------------------------------------------------------------------------------------
# asegstats2table / aparcstats2table outputs

def test_longitudinal_tables_parse(shared_data):
    folder = shared_data / TABLES
    shapes = {"aparc_stats_13900_LH.txt": (10, 37), "aparc_stats_13900_RH.txt": (10, 37),
              "aparc_stats_14160_LH.txt": (5, 37), "aseg_stats.txt": (3, 61),
              "aseg_stats_13900.txt": (10, 61)}
    assert sorted(p.name for p in folder.iterdir()) == sorted(shapes)
    tables = {name: read_stats_table(folder / name) for name in shapes}
    for name, table in tables.items():
        assert table.shape == shapes[name], name
        assert table.index.name == "subject" and table.index.is_unique
        assert (table.dtypes == np.float64).all() and not table.isna().any().any()
        for subject in table.index:
            base, timepoint, is_long = parse_subject_name(subject)
            participant = subject.split("_")[0]  # '13900_01.long.13900_base' -> '13900'
            assert (base, timepoint, is_long) == (f"{participant}_base", subject.split(".")[0],
                                                  True)
            assert participant in name or name == "aseg_stats.txt"

    aseg = tables["aseg_stats.txt"]
    assert aseg.attrs["measure"] == "Measure:volume"
    # aseg_stats.txt line 2 (13900_01.long.13900_base): column 2 Left-Lateral-Ventricle 25050.0,
    # column 14 Left-Amygdala 1277.1, last column EstimatedTotalIntraCranialVol 1620529.664888.
    first = aseg.loc["13900_01.long.13900_base"]
    assert first["Left-Lateral-Ventricle"] == 25050.0 and first["Left-Amygdala"] == 1277.1
    assert first["EstimatedTotalIntraCranialVol"] == 1620529.664888
    # The 3-subject table is the first 3 rows of the 10-subject one.
    pd.testing.assert_frame_equal(aseg, tables["aseg_stats_13900.txt"].iloc[:3])

    lh = tables["aparc_stats_13900_LH.txt"]
    assert lh.attrs["measure"] == "lh.aparc.thickness"
    # line 2: lh_bankssts_thickness 2.374, lh_superiorfrontal_thickness 2.469.
    assert lh.loc["13900_01.long.13900_base", "lh_bankssts_thickness"] == 2.374
    assert lh.loc["13900_01.long.13900_base", "lh_superiorfrontal_thickness"] == 2.469
    # eTIV is per base (one template), so identical in every table of that base and time point.
    np.testing.assert_array_equal(lh["eTIV"], tables["aparc_stats_13900_RH.txt"]["eTIV"])
    np.testing.assert_array_equal(lh["eTIV"],
                                  tables["aseg_stats_13900.txt"]["EstimatedTotalIntraCranialVol"])


def test_space_separated_and_csv_tables_match_the_tab_version(shared_data, tmp_path):
    source = shared_data / TABLES / "aseg_stats.txt"
    reference = read_stats_table(source)
    spaced = tmp_path / "spaced.txt"
    spaced.write_text(source.read_text().replace("\t", "   "))
    pd.testing.assert_frame_equal(read_stats_table(spaced), reference)
    # ENIGMA-style CSV, checked against pandas.
    enigma = shared_data / "enigma" / "metr1_SubVol.csv"
    table = read_stats_table(enigma)
    expected = pd.read_csv(enigma, index_col=0).astype("float64")
    np.testing.assert_array_equal(table.to_numpy(), expected.to_numpy())
    assert table.index.tolist() == expected.index.tolist() and table.attrs["measure"] == "SubjID"


def test_damaged_tables_name_file_and_line(shared_data, tmp_path):
    lines = (shared_data / TABLES / "aseg_stats.txt").read_text().splitlines(keepends=True)

    def check(text, pattern):
        path = tmp_path / "t.txt"
        path.write_text(text)
        with pytest.raises(FreeSurferParseError, match=pattern):
            read_stats_table(path)

    check(lines[0] + lines[1] + "\t".join(lines[2].split("\t")[:40]) + "\n",
          r"t\.txt', line 3: row has 40 cells but the header has 62")
    check(lines[0] + lines[1].replace("\t1277.1\t", "\tabc\t", 1),
          r"line 2: column 'Left-Amygdala' \(subject '13900_01.long.13900_base'\) holds 'abc'")
    check("".join(lines[:2] + [lines[1]]), r"repeated subject id\(s\): 13900_01.long.13900_base")
    check("", r"line 1: the file is empty")
    check("Measure:volume\n13900_01\n", r"line 1: the header has a single column")
    check(lines[0].replace("Left-Inf-Lat-Vent", "Left-Lateral-Ventricle") + lines[1],
          r"line 1: repeated column name\(s\): Left-Lateral-Ventricle")
    # Missing cells are NaN, not errors.
    path = tmp_path / "na.txt"
    path.write_text(lines[0] + lines[1].replace("\t1277.1\t", "\tn/a\t", 1))
    assert np.isnan(read_stats_table(path).iloc[0]["Left-Amygdala"])
    with pytest.raises(InputError, match="does not exist"):
        read_stats_table(tmp_path / "absent.txt")


# ----------------------------------------------------------------------------------------------
# SUBJECTS_DIR walker

FILES = ("lh.aparc.stats", "rh.aparc.stats", "aseg.stats")


def _subject(root: Path, name: str, source: Path, files=FILES) -> None:
    stats = root / name / "stats"
    stats.mkdir(parents=True)
    for file in files:
        shutil.copy(source / file, stats / file)


@pytest.fixture
def subjects_dir(shared_data, tmp_path) -> Path:
    """sub-01 (FS 5.3), sub-02 (FS 7.4.1), two longitudinal time points of base 'pat' (7.0 and
    7.4.1 files), plus folders the walker must ignore."""
    fs = shared_data / "freesurfer"
    root = tmp_path / "subjects"
    _subject(root, "sub-01", fs / "fs5.3_hcp198451")
    _subject(root, "sub-02", fs / "fs7.4.1_corrected")
    _subject(root, "pat_01.long.pat", fs / "fs7.0_soichi")
    _subject(root, "pat_02.long.pat", fs / "fs7.4.1_corrected")
    (root / "fsaverage" / "surf").mkdir(parents=True)
    (root / "fsaverage5" / "stats").mkdir(parents=True)
    (root / ".cache" / "stats").mkdir(parents=True)
    (root / "qdec").mkdir()
    (root / "README.txt").write_text("not a subject")
    return root


def test_collect_stats_long_table(shared_data, subjects_dir):
    long = collect_stats(subjects_dir, measures=("GrayVol", "ThickAvg"))
    assert list(long.columns) == list(LONG_COLUMNS)
    subjects = ["pat_01.long.pat", "pat_02.long.pat", "sub-01", "sub-02"]
    assert pd.unique(long["subject"]).tolist() == subjects
    per_subject = long.groupby("subject", sort=False).size()
    # 34 DK regions x 2 hemispheres x 2 measures + 45 aseg structures + eTIV
    assert (per_subject == 34 * 2 * 2 + 45 + 1).all()
    info = long.drop_duplicates("subject").set_index("subject")
    assert info.loc["pat_01.long.pat", "base"] == "pat"
    assert info.loc["pat_02.long.pat", "timepoint"] == "pat_02"
    assert info.loc["sub-01", "base"] == "sub-01" and pd.isna(info.loc["sub-01", "timepoint"])
    assert long["value"].dtype == np.float64 and not long["value"].isna().any()

    def value(subject, hemi, region, measure):
        rows = long[(long["subject"] == subject) & (long["region"] == region)
                    & (long["measure"] == measure)
                    & (long["hemisphere"].isna() if hemi is None else long["hemisphere"] == hemi)]
        assert len(rows) == 1
        return rows["value"].iloc[0], rows["source"].iloc[0]

    # fs5.3_hcp198451/lh.aparc.stats line 80 and rh line 80: superiorfrontal GrayVol
    got, source = value("sub-01", "lh", "superiorfrontal", "GrayVol")
    assert got == 30865 and source == str(subjects_dir / "sub-01/stats/lh.aparc.stats")
    assert value("sub-01", "rh", "superiorfrontal", "GrayVol")[0] == 29736
    assert value("sub-01", "lh", "superiorfrontal", "ThickAvg")[0] == 2.842
    # fs7.4.1_corrected/aseg.stats line 92: Left-Amygdala Volume_mm3 1482.0; line 34: eTIV
    assert value("sub-02", None, "Left-Amygdala", "Volume_mm3")[0] == 1482.0
    got, source = value("pat_01.long.pat", None, "eTIV", "eTIV")
    assert got == 1420434.160521 and source.endswith("pat_01.long.pat/stats/aseg.stats")

    # Everything agrees with read_stats on the same files.
    lh = read_stats(subjects_dir / "sub-02/stats/lh.aparc.stats").table
    mine = long[(long["subject"] == "sub-02") & (long["hemisphere"] == "lh")
                & (long["measure"] == "ThickAvg")]
    assert mine["region"].tolist() == lh["StructName"].tolist()
    np.testing.assert_array_equal(mine["value"], lh["ThickAvg"])


def test_wide_table(subjects_dir):
    long = collect_stats(subjects_dir)
    wide = wide_table(long)
    assert wide.index.name == "subject"
    assert wide.index.tolist() == ["pat_01.long.pat", "pat_02.long.pat", "sub-01", "sub-02"]
    columns = wide.columns.tolist()
    assert columns[:2] == ["lh_bankssts", "lh_caudalanteriorcingulate"]
    assert columns[34] == "rh_bankssts" and columns[-1] == "eTIV"
    assert columns[68] == "Left-Lateral-Ventricle"
    assert wide.loc["sub-01", "lh_superiorfrontal"] == 30865
    assert wide.loc["sub-02", "Left-Amygdala"] == 1482.0
    assert wide.loc["sub-01", "eTIV"] == 1764143.062994
    assert (wide.dtypes == np.float64).all()
    # FreeSurfer 5.3 says 'Left-Thalamus-Proper' where 7.x says 'Left-Thalamus': both columns
    # exist and each is missing exactly for the other version's subjects.
    missing = wide.isna()
    assert missing.sum().sum() == 1 * 2 + 3 * 2
    assert missing.loc[["sub-01"], ["Left-Thalamus", "Right-Thalamus"]].all().all()
    others = ["pat_01.long.pat", "pat_02.long.pat", "sub-02"]
    assert missing.loc[others, ["Left-Thalamus-Proper", "Right-Thalamus-Proper"]].all().all()
    # 34 + 34 cortical + 45 aseg + the two renamed thalami + eTIV
    assert wide.shape == (4, 34 + 34 + 45 + 2 + 1)

    thickness = wide_table(collect_stats(subjects_dir, measures="ThickAvg"), measure="ThickAvg")
    assert thickness.shape == (4, 34 + 34 + 1)  # no aseg volumes next to thicknesses
    assert thickness.loc["sub-01", "lh_superiorfrontal"] == 2.842
    with pytest.raises(InputError, match=r"measure 'SurfArea' is not in the long table .*GrayVol"):
        wide_table(long, measure="SurfArea")
    with pytest.raises(InputError, match="wide_table needs the long table"):
        wide_table(long.drop(columns="region"))


def test_subjects_argument_and_skipped_folders(subjects_dir):
    long = collect_stats(subjects_dir, subjects=["sub-02", "sub-01"], include_aseg=False)
    assert pd.unique(long["subject"]).tolist() == ["sub-02", "sub-01"]
    assert set(long["measure"]) == {"GrayVol", "eTIV"}
    # eTIV still comes from aseg.stats when it is there.
    etiv = long[long["region"] == "eTIV"].set_index("subject")["value"]
    assert etiv["sub-01"] == 1764143.062994
    with pytest.raises(InputError, match=r"Subject folder\(s\) sub-99 not found .*sub-01"):
        collect_stats(subjects_dir, subjects=["sub-01", "sub-99"])
    with pytest.raises(InputError, match="more than once"):
        collect_stats(subjects_dir, subjects=["sub-01", "sub-01"])
    with pytest.raises(InputError, match=r"no column\(s\) Thickness .*ThickAvg"):
        collect_stats(subjects_dir, measures=["Thickness"])
    with pytest.raises(InputError, match="missing must be 'error' or 'skip'"):
        collect_stats(subjects_dir, missing="ignore")
    with pytest.raises(InputError, match="is not an existing folder"):
        collect_stats(subjects_dir / "nowhere")


def test_missing_files_error_or_skip(subjects_dir):
    expected = subjects_dir / "sub-02" / "stats" / "rh.aparc.stats"
    expected.unlink()
    with pytest.raises(InputError, match=rf"Subject 'sub-02' has no rh\.aparc\.stats: expected "
                                         rf"'{expected}'"):
        collect_stats(subjects_dir)
    with pytest.warns(GraymatterWarning, match=r"'sub-02' .* Subject left out"):
        long = collect_stats(subjects_dir, missing="skip")
    assert "sub-02" not in set(long["subject"]) and long["subject"].nunique() == 3
    # A subject folder with mri/ but no stats/ (recon-all not finished) is a subject too.
    (subjects_dir / "sub-03" / "mri").mkdir(parents=True)
    with pytest.raises(InputError, match="Subject 'sub-03' has no lh.aparc.stats"):
        collect_stats(subjects_dir, subjects=["sub-01", "sub-03"])
    # Wrong annotation name: the message says which file was expected.
    with pytest.raises(InputError, match=r"has no lh\.HCP-MMP1\.stats"):
        collect_stats(subjects_dir, annot="HCP-MMP1")


def test_other_annotation_and_surface_only_etiv(shared_data, tmp_path):
    fs6 = shared_data / "freesurfer" / "fs6.0_fabian"
    root = tmp_path / "subjects"
    # FreeSurfer 6 surface stats only (no aseg.stats): eTIV comes from the surface files.
    _subject(root, "fabian", fs6, files=("lh.aparc.a2009s.stats", "rh.aparc.a2009s.stats"))
    long = collect_stats(root, annot="aparc.a2009s", include_aseg=False)
    wide = wide_table(long)
    assert wide.shape == (1, 74 + 74 + 1)
    assert wide.loc["fabian", "eTIV"] == 1670487.274486  # fs6.0_fabian/lh.aparc.a2009s.stats
    assert wide.columns[0] == "lh_G&S_frontomargin"
    with pytest.raises(InputError, match=r"has no aseg\.stats"):
        collect_stats(root, annot="aparc.a2009s")
    # A 5.3 subject without aseg and without eTIV in its surface stats: NaN and a warning.
    _subject(root, "old", shared_data / "freesurfer" / "fs5.3_hcp198451",
             files=("lh.aparc.stats", "rh.aparc.stats"))
    with pytest.warns(GraymatterWarning, match="'old': no eTIV found"):
        long = collect_stats(root, subjects=["old"], include_aseg=False)
    assert np.isnan(wide_table(long).loc["old", "eTIV"])


def test_damaged_or_mislabelled_files_in_subjects_dir(shared_data, subjects_dir):
    lh = subjects_dir / "sub-01" / "stats" / "lh.aparc.stats"
    # rh file that is really the left hemisphere (a copy-paste accident)
    shutil.copy(lh, subjects_dir / "sub-01" / "stats" / "rh.aparc.stats")
    with pytest.raises(InputError, match=r"hemisphere 'lh' in its header but its name says 'rh'"):
        collect_stats(subjects_dir, subjects=["sub-01"])
    text = lh.read_text()
    lh.write_text(text[: len(text) // 2 + 7])
    with pytest.raises(FreeSurferParseError, match=rf"'{lh}', line \d+"):
        collect_stats(subjects_dir, subjects=["sub-01"])
