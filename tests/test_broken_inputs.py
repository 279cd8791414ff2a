"""Broken inputs are refused (or warned about) by name, never accepted silently.

Each test runs the command line, asserts the exit status, that the message names the culprit and
that no traceback reaches the user.
"""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from graymatter.cli import main


def _one_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("graymatter: error:")]
    assert len(lines) == 1 and "Traceback" not in err and "this is a bug" not in err, err
    return lines[0]


# ================================================================ FreeSurfer region lists

def _subjects(shared_data, root, version, files):
    for name in ("sub-01", "sub-02"):
        stats = root / name / "stats"
        stats.mkdir(parents=True)
        for file in files:
            shutil.copy(shared_data / "freesurfer" / version / file, stats / file)


def _table(root, tmp_path, *extra):
    return main(["--quiet", "freesurfer-table", str(root), "--out", str(tmp_path / "t.tsv"),
                 *extra])


def test_truncated_aparc_stats_is_an_error_naming_file_and_regions(shared_data, tmp_path, capsys):
    root = tmp_path / "subjects"
    _subjects(shared_data, root, "fs7.4.1_corrected", ("lh.aparc.stats", "rh.aparc.stats",
                                                       "aseg.stats"))
    lh = root / "sub-02" / "stats" / "lh.aparc.stats"
    lines = lh.read_text().splitlines(keepends=True)
    lh.write_text("".join(lines[:-10]))  # cut at a line boundary: every line left is whole
    assert _table(root, tmp_path) == 2
    message = _one_error(capsys)
    assert str(lh) in message and "24 of the 34 Desikan-Killiany" in message
    for region in ("rostralanteriorcingulate", "supramarginal", "insula"):
        assert region in message
    assert not (tmp_path / "t.tsv").exists()


def test_short_dkt_stats_is_an_error(shared_data, tmp_path, capsys):
    root = tmp_path / "subjects"
    _subjects(shared_data, root, "fs6.0_fabian", ("rh.aparc.DKTatlas.stats",))
    for name in ("sub-01", "sub-02"):
        shutil.copy(shared_data / "freesurfer/fs6.0_fabian/lh.aparc.DKTatlas.stats",
                    root / name / "stats" / "lh.aparc.DKTatlas.stats")
    short = root / "sub-01" / "stats" / "lh.aparc.DKTatlas.stats"
    shutil.copy(shared_data / "freesurfer/fs6.0_fabian/lh.aparc.DKTatlas.stats.short", short)
    assert _table(root, tmp_path, "--annot", "aparc.DKTatlas", "--measure", "ThickAvg") == 2
    message = _one_error(capsys)
    assert str(short) in message and "3 of the 31 Desikan-Killiany-Tourville" in message
    assert "missing 28" in message and "superiorfrontal" in message


def test_omissible_dk_region_is_a_warning_naming_subject(shared_data, tmp_path, capsys):
    root = tmp_path / "subjects"
    _subjects(shared_data, root, "fs7.4.1_corrected", ("lh.aparc.stats", "rh.aparc.stats"))
    rh = root / "sub-01" / "stats" / "rh.aparc.stats"
    rh.write_text("".join(line for line in rh.read_text().splitlines(keepends=True)
                          if not line.startswith("frontalpole ")))
    assert _table(root, tmp_path, "--measure", "ThickAvg") == 0
    err = capsys.readouterr().err
    assert "warning: Subject 'sub-01': rh.aparc.stats has no frontalpole" in err
    assert "Traceback" not in err
    table = pd.read_csv(tmp_path / "t.tsv", sep="\t", index_col="subject")
    assert table["rh_frontalpole"].isna().tolist() == [True, False]


def test_other_annotation_holes_are_warned_by_subject(shared_data, tmp_path, capsys):
    root = tmp_path / "subjects"
    _subjects(shared_data, root, "fs7.4.1_corrected",
              ("lh.aparc.a2009s.stats", "rh.aparc.a2009s.stats"))
    lh = root / "sub-02" / "stats" / "lh.aparc.a2009s.stats"
    lines = lh.read_text().splitlines(keepends=True)
    lh.write_text("".join(lines[:-2]))
    assert _table(root, tmp_path, "--annot", "aparc.a2009s", "--measure", "ThickAvg") == 0
    err = capsys.readouterr().err
    assert "1 aparc.a2009s stats file(s) lack regions" in err and "sub-02 lh:" in err
    assert "S_temporal_transverse" in err and "Traceback" not in err
