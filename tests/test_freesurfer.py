"""Single FreeSurfer stats files: every real file parses, values match the files, damage raises."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graymatter.errors import GraymatterError, InputError
from graymatter.io.freesurfer import FreeSurferParseError, FreeSurferStats, read_stats

# Every stats file of the real data folder: (path under freesurfer/, kind, hemisphere).
REAL_FILES = [
    ("fs5.3_hcp198451/aseg.stats", "aseg", None),
    ("fs5.3_hcp198451/lh.aparc.DKTatlas40.stats", "surface", "lh"),
    ("fs5.3_hcp198451/lh.aparc.a2009s.stats", "surface", "lh"),
    ("fs5.3_hcp198451/lh.aparc.stats", "surface", "lh"),
    ("fs5.3_hcp198451/rh.aparc.DKTatlas40.stats", "surface", "rh"),
    ("fs5.3_hcp198451/rh.aparc.a2009s.stats", "surface", "rh"),
    ("fs5.3_hcp198451/rh.aparc.stats", "surface", "rh"),
    ("fs5.3_hcp198451/wmparc.stats", "wmparc", None),
    ("fs6.0_fabian/lh.aparc.DKTatlas.stats", "surface", "lh"),
    ("fs6.0_fabian/lh.aparc.DKTatlas.stats.short", "surface", "lh"),
    ("fs6.0_fabian/lh.aparc.a2009s.stats", "surface", "lh"),
    ("fs6.0_fabian/lh.aparc.pial.stats", "surface", "lh"),
    ("fs6.0_fabian/lh.aparc.stats", "surface", "lh"),
    ("fs6.0_fabian/rh.aparc.DKTatlas.stats", "surface", "rh"),
    ("fs6.0_fabian/rh.aparc.a2009s.stats", "surface", "rh"),
    ("fs6.0_fabian/rh.aparc.pial.stats", "surface", "rh"),
    ("fs6.0_fabian/rh.aparc.pial.stats.short", "surface", "rh"),
    ("fs6.0_fabian/rh.aparc.stats", "surface", "rh"),
    ("fs7.0_soichi/aseg.stats", "aseg", None),
    ("fs7.0_soichi/brainvol.stats", "brainvol", None),
    ("fs7.0_soichi/lh.BA_exvivo.stats", "surface", "lh"),
    ("fs7.0_soichi/lh.BA_exvivo.thresh.stats", "surface", "lh"),
    ("fs7.0_soichi/lh.aparc.DKTatlas.stats", "surface", "lh"),
    ("fs7.0_soichi/lh.aparc.a2009s.stats", "surface", "lh"),
    ("fs7.0_soichi/lh.aparc.pial.stats", "surface", "lh"),
    ("fs7.0_soichi/lh.aparc.stats", "surface", "lh"),
    ("fs7.0_soichi/lh.curv.stats", "other", "lh"),
    ("fs7.0_soichi/lh.w-g.pct.stats", "other", "lh"),
    ("fs7.0_soichi/rh.BA_exvivo.stats", "surface", "rh"),
    ("fs7.0_soichi/rh.BA_exvivo.thresh.stats", "surface", "rh"),
    ("fs7.0_soichi/rh.aparc.DKTatlas.stats", "surface", "rh"),
    ("fs7.0_soichi/rh.aparc.a2009s.stats", "surface", "rh"),
    ("fs7.0_soichi/rh.aparc.pial.stats", "surface", "rh"),
    ("fs7.0_soichi/rh.aparc.stats", "surface", "rh"),
    ("fs7.0_soichi/rh.curv.stats", "other", "rh"),
    ("fs7.0_soichi/rh.w-g.pct.stats", "other", "rh"),
    ("fs7.0_soichi/wmparc.stats", "wmparc", None),
    ("fs7.4.1_corrected/aseg.stats", "aseg", None),
    ("fs7.4.1_corrected/brainvol.stats", "brainvol", None),
    ("fs7.4.1_corrected/lh.aparc.DKTatlas.stats", "surface", "lh"),
    ("fs7.4.1_corrected/lh.aparc.a2009s.stats", "surface", "lh"),
    ("fs7.4.1_corrected/lh.aparc.stats", "surface", "lh"),
    ("fs7.4.1_corrected/rh.aparc.DKTatlas.stats", "surface", "rh"),
    ("fs7.4.1_corrected/rh.aparc.a2009s.stats", "surface", "rh"),
    ("fs7.4.1_corrected/rh.aparc.stats", "surface", "rh"),
    ("fs7.4.1_corrected/wmparc.stats", "wmparc", None),
]

SURFACE_COLUMNS = ["StructName", "NumVert", "SurfArea", "GrayVol", "ThickAvg", "ThickStd",
                   "MeanCurv", "GausCurv", "FoldInd", "CurvInd"]


def _fs(shared_data: Path, name: str) -> Path:
    return shared_data / "freesurfer" / name


def _table_lines(path: Path) -> list[list[str]]:
    """Oracle: the whitespace-split non-comment, non-blank lines of a '#'-style stats file."""
    return [line.split() for line in path.read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_real_file_list_is_complete(shared_data):
    found = sorted(str(p.relative_to(shared_data / "freesurfer"))
                   for p in (shared_data / "freesurfer").glob("fs*/*"))
    assert found == sorted(name for name, _, _ in REAL_FILES)


@pytest.mark.parametrize(("name", "kind", "hemi"), REAL_FILES, ids=[n for n, _, _ in REAL_FILES])
def test_every_real_file_parses(shared_data, name, kind, hemi):
    path = _fs(shared_data, name)
    stats = read_stats(path)
    assert isinstance(stats, FreeSurferStats)
    assert stats.path == path and stats.kind == kind and stats.hemisphere == hemi
    assert list(stats.measures.columns) == ["name", "short", "description", "value", "unit"]
    assert stats.measures["value"].dtype == np.float64
    n_measures = sum(line.startswith("# Measure") for line in path.read_text().splitlines())
    assert len(stats.measures) == n_measures
    if name.endswith("curv.stats"):
        # mris_curvature_stats: 10 curvature blocks (mean, std, then 19 indented lines of which
        # 'Curvature Calculation Type: discrete' is text), 4 numeric 'curv --' lines, 2 numbers
        # on the final 'Mean across' line.
        assert len(stats.table) == 10 * (2 + 18) + 4 + 2
        assert stats.header["generating_program"] == "mris_curvature_stats"
        assert stats.header["K Curvature Calculation Type"] == "discrete"
        if name.startswith("fs7.0_soichi/lh"):
            values = stats.table.set_index(["section", "surface", "statistic"])["value"]
            # lines 2, 'K <mean> ...' block and 'curv -- Folding Index (FI): 1392.60962'
            assert values[("Raw", "lh.curv", "mean")] == -0.02314
            assert values[("Raw", "lh.curv", "std")] == 0.1621
            assert values[("K", "lh.smoothwm", "Total Surface Area")] == 80629.67188
            assert values[("curv", "", "Folding Index (FI)")] == 1392.60962
        return
    rows = _table_lines(path)
    assert len(stats.table) == len(rows)
    if kind == "brainvol":
        assert stats.table.empty and len(stats.measures) == 16
        return
    text_columns = {"StructName"}
    for column in stats.table.columns:
        if column in text_columns:
            continue
        assert pd.api.types.is_numeric_dtype(stats.table[column]), column
    # Cell by cell against the raw text.
    for j, column in enumerate(stats.table.columns):
        raw = [row[j] for row in rows]
        if column in text_columns:
            assert stats.table[column].tolist() == raw
        else:
            np.testing.assert_allclose(stats.table[column].to_numpy(dtype=float),
                                       [float(v) for v in raw])
    if kind == "surface":
        assert list(stats.table.columns) == SURFACE_COLUMNS
        assert stats.header["annot"] == re.sub(r"^[lr]h\.|(\.pial)?\.stats(\.short)?$", "",
                                               path.name)


def test_known_values(shared_data):
    old = read_stats(_fs(shared_data, "fs5.3_hcp198451/aseg.stats"))
    # fs5.3_hcp198451/aseg.stats line 34: '# Measure EstimatedTotalIntraCranialVol, eTIV, ...
    # 1764143.062994, mm^3'
    assert old.etiv == 1764143.062994
    # line 92: ' 13  18      1846     1846.0  Left-Amygdala ...'
    amygdala = old.table.set_index("StructName").loc["Left-Amygdala"]
    assert amygdala["Volume_mm3"] == 1846.0 and amygdala["SegId"] == 18
    assert old.measure("BrainSegVol") == 1340363.0  # line 14

    new = read_stats(_fs(shared_data, "fs7.4.1_corrected/aseg.stats"))
    assert new.etiv == 1464199.032007  # line 34
    # line 92: ' 13  18      4343     1482.0  Left-Amygdala': 0.343 mm³ voxels, so the volume
    # column, not the voxel count, is the volume.
    amygdala = new.table.set_index("StructName").loc["Left-Amygdala"]
    assert amygdala["Volume_mm3"] == 1482.0 and amygdala["NVoxels"] == 4343
    assert new.header["VoxelVolume_mm3"] == "0.343"

    # '<annot>.stats' line 80 (5.3) / 87 (6.0) / 88 (7.4.1): 'superiorfrontal ... GrayVol ...'
    for name, gray_vol, thickness in [("fs5.3_hcp198451/lh.aparc.stats", 30865, 2.842),
                                      ("fs6.0_fabian/lh.aparc.stats", 25342, 2.569),
                                      ("fs7.4.1_corrected/lh.aparc.stats", 21119, 2.703)]:
        lh = read_stats(_fs(shared_data, name))
        row = lh.table.set_index("StructName").loc["superiorfrontal"]
        assert row["GrayVol"] == gray_vol and row["ThickAvg"] == thickness
        assert lh.table["GrayVol"].dtype == np.int64
    assert read_stats(_fs(shared_data, "fs7.4.1_corrected/rh.aparc.stats")).table.set_index(
        "StructName").loc["superiorfrontal", "GrayVol"] == 20006  # line 88
    lh = read_stats(_fs(shared_data, "fs7.0_soichi/lh.aparc.stats"))
    assert lh.table.attrs["units"]["GrayVol"] == "mm^3"
    assert lh.measure("MeanThickness") == 2.39891  # line 21


def test_version_differences(shared_data):
    v53 = read_stats(_fs(shared_data, "fs5.3_hcp198451/lh.aparc.stats"))
    v60 = read_stats(_fs(shared_data, "fs6.0_fabian/lh.aparc.stats"))
    v74 = read_stats(_fs(shared_data, "fs7.4.1_corrected/lh.aparc.stats"))
    # 5.x writes an RCS id as cvs_version, 7.x the release.
    assert v53.header["cvs_version"].startswith("$Id: mris_anatomical_stats.c")
    assert "version" not in v53.header and v74.header["version"] == "7.4.1"
    assert v53.header["generating_program"] == "mris_anatomical_stats"
    assert v53.header["subjectname"] == "198451" and v53.header["CreationTime"].startswith("2014")
    # 5.3 surface stats have no eTIV; 6.0 and later copy it from aseg.
    assert v53.etiv is None and len(v53.measures) == 3
    assert v60.etiv == 1670487.274486  # fs6.0_fabian/lh.aparc.stats line 28
    # FreeSurfer 6 forgot a comma (line 25: 'Cortex, CortexVol Total cortical gray matter
    # volume, 553998.311189, mm^3'); the measure is still read whole.
    cortex = v60.measures.set_index("short").loc["CortexVol"]
    assert cortex["name"] == "Cortex" and cortex["value"] == 553998.311189
    assert cortex["description"] == "Total cortical gray matter volume"
    assert cortex["unit"] == "mm^3"
    # aseg: 5.3 names 'CorticalWhiteMatter' what 7.x names 'CerebralWhiteMatter'; 7.x adds
    # VentricleChoroidVol.
    a53 = read_stats(_fs(shared_data, "fs5.3_hcp198451/aseg.stats")).measures["short"].tolist()
    a74 = read_stats(_fs(shared_data, "fs7.4.1_corrected/aseg.stats")).measures["short"].tolist()
    assert "lhCorticalWhiteMatterVol" in a53 and "lhCerebralWhiteMatterVol" in a74
    assert "VentricleChoroidVol" in a74 and "VentricleChoroidVol" not in a53
    # brainvol.stats: Measure lines only.
    brainvol = read_stats(_fs(shared_data, "fs7.4.1_corrected/brainvol.stats"))
    assert brainvol.header == {} and brainvol.etiv is None


def test_intracranialvol_fallback(shared_data, tmp_path):
    text = _fs(shared_data, "fs5.3_hcp198451/aseg.stats").read_text()
    etiv_line = ("# Measure EstimatedTotalIntraCranialVol, eTIV, Estimated Total Intracranial "
                 "Volume, 1764143.062994, mm^3")
    assert etiv_line in text
    # FreeSurfer before 5.0 wrote IntraCranialVol / ICV instead of eTIV.
    old = tmp_path / "aseg.stats"
    old.write_text(text.replace(etiv_line, "# Measure IntraCranialVol, ICV, Intracranial Volume, "
                                           "1497123.532847, mm^3"))
    assert read_stats(old).etiv == 1497123.532847
    none = tmp_path / "none.stats"
    none.write_text(text.replace(etiv_line + "\n", ""))
    assert read_stats(none).etiv is None and len(read_stats(none).measures) == 20


def test_short_files_are_row_subsets_of_the_full_files(shared_data):
    # The .short variants keep the header and only a few table rows (cut on line boundaries),
    # so they are valid files with fewer structures, not truncated ones.
    for short, full, n in [("fs6.0_fabian/lh.aparc.DKTatlas.stats.short",
                            "fs6.0_fabian/lh.aparc.DKTatlas.stats", 3),
                           ("fs6.0_fabian/rh.aparc.pial.stats.short",
                            "fs6.0_fabian/rh.aparc.pial.stats", 2)]:
        a, b = read_stats(_fs(shared_data, short)), read_stats(_fs(shared_data, full))
        assert len(a.table) == n < len(b.table)
        merged = a.table.merge(b.table, how="left", indicator=True)
        assert (merged["_merge"] == "both").all()
        pd.testing.assert_frame_equal(a.measures, b.measures)
        assert a.header == b.header


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _lines(shared_data, name):
    return _fs(shared_data, name).read_text().splitlines(keepends=True)


def test_damaged_files_name_file_line_and_problem(shared_data, tmp_path):
    lines = _lines(shared_data, "fs7.0_soichi/lh.aparc.stats")
    assert lines[61].startswith("bankssts")  # line 62, the first table row

    short_row = lines.copy()
    short_row[64] = " ".join(lines[64].split()[:7]) + "\n"  # line 65
    path = _write(tmp_path, "lh.aparc.stats", "".join(short_row))
    with pytest.raises(FreeSurferParseError, match=r"lh\.aparc\.stats', line 65: table row has "
                                                   r"7 fields .* names 10 columns") as info:
        read_stats(path)
    assert info.value.line == 65 and info.value.path == path

    text_cell = lines.copy()
    text_cell[70] = text_cell[70].replace(lines[70].split()[3], "12x4", 1)  # GrayVol of line 71
    with pytest.raises(FreeSurferParseError, match=r"line 71: column 'GrayVol' holds '12x4'"):
        read_stats(_write(tmp_path, "a.stats", "".join(text_cell)))

    no_headers = [line for line in lines if not line.startswith("# ColHeaders")]
    with pytest.raises(FreeSurferParseError, match=r"line 61: found a table row .* before any "
                                                   r"'# ColHeaders'"):
        read_stats(_write(tmp_path, "b.stats", "".join(no_headers)))

    bad_measure = [line.replace("2.39891", "two") for line in lines]
    with pytest.raises(FreeSurferParseError, match=r"line 21: the value of measure 'Cortex' "
                                                   r"\(MeanThickness\) is 'two'"):
        read_stats(_write(tmp_path, "c.stats", "".join(bad_measure)))

    doubled = lines[:70] + [lines[69]] + lines[70:]
    with pytest.raises(FreeSurferParseError, match=r"line 71: structure '\w+' appears twice"):
        read_stats(_write(tmp_path, "d.stats", "".join(doubled)))

    cut = "".join(lines)[:-20]  # inside the last row: field count still 10 by chance or not
    with pytest.raises(FreeSurferParseError, match=rf"line {len(lines)}: "):
        read_stats(_write(tmp_path, "e.stats", cut))

    header_only = "".join(lines[:40])
    with pytest.raises(FreeSurferParseError, match=r"no '# ColHeaders' line although the header "
                                                   r"announces a table"):
        read_stats(_write(tmp_path, "f.stats", header_only))

    with pytest.raises(FreeSurferParseError, match=r"line 61: '# ColHeaders' is not followed"):
        read_stats(_write(tmp_path, "g.stats", "".join(lines[:61])))


def test_aseg_row_count_checked_against_nrows(shared_data, tmp_path):
    lines = _lines(shared_data, "fs5.3_hcp198451/aseg.stats")
    assert lines[76].startswith("# NRows 45")
    dropped = lines[:100] + lines[101:]  # a whole row lost: fields and newline intact
    with pytest.raises(FreeSurferParseError, match=r"line 77: '# NRows 45' but the table has "
                                                   r"44 rows"):
        read_stats(_write(tmp_path, "aseg.stats", "".join(dropped)))


@pytest.mark.parametrize("content", [b"", b"   \n\n", b"\x89PNG\r\n\x1a\n\x00\xff\xfe"],
                         ids=["empty", "blank", "binary"])
def test_empty_and_binary_files(tmp_path, content):
    path = tmp_path / "aseg.stats"
    path.write_bytes(content)
    with pytest.raises(FreeSurferParseError, match=r"aseg\.stats', line 1: ") as info:
        read_stats(path)
    assert isinstance(info.value, InputError) and isinstance(info.value, GraymatterError)


def test_missing_file_and_folder_are_input_errors_not_parse_errors(tmp_path):
    for path in (tmp_path / "nope.stats", tmp_path):
        with pytest.raises(InputError, match=re.escape(str(path))) as info:
            read_stats(path)
        assert not isinstance(info.value, FreeSurferParseError)


def test_liberal_header_strict_table(shared_data, tmp_path):
    lines = _lines(shared_data, "fs7.4.1_corrected/lh.aparc.stats")
    # Unknown header lines (a future version's), CRLF line ends and blank lines are accepted.
    extra = (lines[:5] + ["# SomeNewKey with value\n", "# \n", "#\n"] + lines[5:62] + ["\n"]
             + lines[62:])
    path = _write(tmp_path, "lh.x.stats", "".join(extra).replace("\n", "\r\n"))
    stats = read_stats(path)
    reference = read_stats(_fs(shared_data, "fs7.4.1_corrected/lh.aparc.stats"))
    pd.testing.assert_frame_equal(stats.table, reference.table)
    assert stats.header["SomeNewKey"] == "with value" and stats.kind == "surface"
    # A TableCol that disagrees with ColHeaders is a damaged table.
    swapped = [line.replace("ColHeader GrayVol", "ColHeader ThickAvg") for line in lines]
    with pytest.raises(FreeSurferParseError, match=r"TableCol 4 ColHeader ThickAvg' but column 4"):
        read_stats(_write(tmp_path, "lh.y.stats", "".join(swapped)))


# ----------------------------------------------------------------------------------------------
# Truncation and fuzzing: either a correct parse or FreeSurferParseError, never anything else.

def _prefix_lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def test_every_line_boundary_truncation(shared_data, tmp_path):
    aseg = _fs(shared_data, "fs5.3_hcp198451/aseg.stats").read_text()
    lines = _prefix_lines(aseg)
    path = tmp_path / "aseg.stats"
    for k in range(len(lines)):  # aseg announces NRows: any lost line at the end is an error
        path.write_text("".join(lines[:k]))
        with pytest.raises(FreeSurferParseError):
            read_stats(path)

    surface = _fs(shared_data, "fs7.0_soichi/lh.aparc.stats")
    full = read_stats(surface).table
    lines = _prefix_lines(surface.read_text())
    first_row = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    for k in range(1, len(lines) + 1):
        path.write_text("".join(lines[:k]))
        if k <= first_row:
            with pytest.raises(FreeSurferParseError):
                read_stats(path)
        else:  # no NRows in surface stats: a prefix is a valid, shorter table
            pd.testing.assert_frame_equal(read_stats(path).table, full.iloc[:k - first_row],
                                          check_index_type=False)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(offset=st.integers(min_value=0, max_value=10_000))
def test_byte_truncation_of_aseg_always_raises(shared_data, offset):
    source = _fs(shared_data, "fs5.3_hcp198451/aseg.stats")
    data = source.read_bytes()
    offset = offset % len(data)  # a strict prefix
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "aseg.stats"
        path.write_bytes(data[:offset])
        with pytest.raises(FreeSurferParseError):
            read_stats(path)


_EDIT = st.one_of(
    st.tuples(st.just("delete"), st.integers(0, 10**6)),
    st.tuples(st.just("duplicate"), st.integers(0, 10**6)),
    st.tuples(st.just("garble"), st.integers(0, 10**6), st.integers(0, 10**6),
              st.text(min_size=1, max_size=4)),
    st.tuples(st.just("number_to_text"), st.integers(0, 10**6),
              st.sampled_from(["abc", "n/a", "--", "1.2.3", "", "1e", "0x1F", "１２"])),
    st.tuples(st.just("truncate"), st.integers(0, 10**6)),
)


def _apply(text: str, edit) -> str:
    lines = text.splitlines(keepends=True)
    if not lines:
        return text
    kind, where = edit[0], edit[1] % len(lines)
    if kind == "delete":
        del lines[where]
    elif kind == "duplicate":
        lines.insert(where, lines[where])
    elif kind == "garble":
        line = lines[where]
        at = edit[2] % max(len(line), 1)
        lines[where] = line[:at] + edit[3] + line[at + len(edit[3]):]
    elif kind == "number_to_text":
        numbers = list(re.finditer(r"\d+(\.\d+)?", lines[where]))
        if numbers:
            hit = numbers[len(numbers) // 2]
            lines[where] = lines[where][:hit.start()] + edit[2] + lines[where][hit.end():]
    else:
        return text[:edit[1] % (len(text) + 1)]
    return "".join(lines)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(["fs7.0_soichi/lh.aparc.stats", "fs5.3_hcp198451/aseg.stats",
                             "fs7.4.1_corrected/brainvol.stats", "fs7.0_soichi/lh.curv.stats",
                             "fs6.0_fabian/rh.aparc.a2009s.stats"]),
       edits=st.lists(_EDIT, min_size=1, max_size=3))
def test_fuzzed_files_parse_or_raise_parse_error(shared_data, name, edits):
    text = _fs(shared_data, name).read_text()
    for edit in edits:
        text = _apply(text, edit)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / Path(name).name
        path.write_text(text, encoding="utf-8")
        try:
            stats = read_stats(path)
        except FreeSurferParseError as error:
            assert str(path) in str(error)
            return
    # Parsed: the result is well formed.
    assert stats.kind in ("aseg", "surface", "brainvol", "wmparc", "other")
    assert stats.measures["value"].dtype == np.float64
    for column in stats.table.columns:
        if column not in ("StructName", "section", "surface", "statistic", "detail"):
            assert pd.api.types.is_numeric_dtype(stats.table[column])
    if "StructName" in stats.table:
        assert stats.table["StructName"].is_unique
