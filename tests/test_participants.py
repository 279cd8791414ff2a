"""Participants tables and id matching."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from graymatter.errors import GraymatterWarning, InputError
from graymatter.io.participants import match_subjects, read_participants


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_bids_tsv_with_na(tmp_path):
    path = _write(tmp_path / "participants.tsv",
                  "participant_id\tage\tsex\tgroup\n"
                  "sub-01\t31\tF\tcontrol\n"
                  "sub-02\tn/a\tM\tpatient\n"
                  "sub-03\t45.5\t\tpatient\n")
    table = read_participants(path)
    assert table.index.name == "participant_id"
    assert table.index.tolist() == ["sub-01", "sub-02", "sub-03"]
    assert "participant_id" not in table.columns
    assert pd.api.types.is_float_dtype(table["age"])
    assert np.isnan(table.loc["sub-02", "age"]) and table.loc["sub-03", "age"] == 45.5
    assert pd.api.types.is_string_dtype(table["sex"])
    assert pd.isna(table.loc["sub-03", "sex"]) and table.loc["sub-01", "sex"] == "F"


def test_csv_auto_id_column_keeps_leading_zeros(tmp_path):
    path = _write(tmp_path / "demo.csv", "Age,SubjID,Dx\n30,001,1\n40,002,0\n")
    table = read_participants(path)
    assert table.index.tolist() == ["001", "002"]
    assert table.columns.tolist() == ["Age", "Dx"]
    assert table["Dx"].dtype.kind == "i"


def test_sniffed_separator_and_explicit_id_column(tmp_path):
    path = _write(tmp_path / "demo.txt", "code\tage\nA\t1\nB\t2\n")
    table = read_participants(path, id_column="code")
    assert table.index.tolist() == ["A", "B"] and table["age"].tolist() == [1, 2]


def test_real_enigma_covariates(shared_data):
    table = read_participants(shared_data / "enigma" / "cov.csv")
    assert table.shape == (20, 8)
    assert table.index[0] == "sub-PX003"
    assert {"Dx", "Age", "Sex", "ICV"} <= set(table.columns)
    assert table["Age"].dtype.kind in "if"


def test_no_id_column(tmp_path):
    path = _write(tmp_path / "p.csv", "name,age\nx,1\n")
    with pytest.raises(InputError, match=r"p\.csv.*no subject-id column.*name, age.*id_column"):
        read_participants(path)
    with pytest.raises(InputError, match=r"no column id_column='code'.*name, age"):
        read_participants(path, id_column="code")


def test_duplicate_ids_name_lines(tmp_path):
    path = _write(tmp_path / "p.tsv",
                  "participant_id\tage\nsub-01\t1\nsub-02\t2\nsub-01\t3\n")
    with pytest.raises(InputError, match=r"p\.tsv.*duplicate.*'sub-01' \(lines 2, 4\)"):
        read_participants(path)


def test_blank_id_names_line(tmp_path):
    path = _write(tmp_path / "p.csv", "participant_id,age\nsub-01,1\n  ,2\n")
    with pytest.raises(InputError, match=r"p\.csv.*blank subject id.*line\(s\) 3"):
        read_participants(path)


def test_missing_empty_and_ragged(tmp_path):
    with pytest.raises(InputError, match=r"nope\.tsv' does not exist"):
        read_participants(tmp_path / "nope.tsv")
    with pytest.raises(InputError, match=r"empty\.tsv' is empty"):
        read_participants(_write(tmp_path / "empty.tsv", ""))
    with pytest.raises(InputError, match=r"header.*but no data rows"):
        read_participants(_write(tmp_path / "h.tsv", "participant_id\tage\n"))
    with pytest.raises(InputError, match=r"r\.csv', line 3: expected 2 fields.*found 3"):
        read_participants(_write(tmp_path / "r.csv", "participant_id,age\na,1\nb,2,3\n"))


def test_mostly_numeric_column_with_text_warns(tmp_path):
    path = _write(tmp_path / "p.csv", "participant_id,age\na,1\nb,2\nc,unknown\n")
    with pytest.warns(GraymatterWarning, match=r"'age'.*'unknown' at line 4.*n/a"):
        table = read_participants(path)
    assert pd.api.types.is_string_dtype(table["age"])


def test_match_subjects_order_and_extra_warning():
    with pytest.warns(GraymatterWarning, match=r"1 rows of regions table 'x\.csv' have no "
                                               r"participant.*sub-09"):
        ids = match_subjects(["sub-02", "sub-01"], ["sub-01", "sub-09", "sub-02"],
                             what="regions table 'x.csv'")
    assert ids == ["sub-02", "sub-01"]


def test_match_subjects_missing_with_prefix_hint():
    with pytest.raises(InputError, match=r"2 of 3 participants have no data in images: "
                                         r"sub-02, sub-03.*'sub-' prefix.*'sub-02' vs '02'"):
        match_subjects(["sub-01", "sub-02", "sub-03"], ["sub-01", "02"], what="images")
