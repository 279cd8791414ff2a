"""Subjects x regions tables, aligned to participants by id."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from graymatter.errors import GraymatterWarning, InputError
from graymatter.io.participants import match_subjects, read_participants
from graymatter.io.regions import read_regions


def test_real_enigma_thickness_aligned_to_participants(shared_data, tmp_path):
    thickness = read_regions(shared_data / "enigma" / "metr2_CortThick.csv")
    assert thickness.index.name == "participant_id"
    regions = [c for c in thickness.columns if c.endswith("_thickavg")]
    assert len(regions) == 68 and thickness.shape == (20, 73)  # + LThickness ... ICV summaries
    assert all(thickness.dtypes == np.float64)
    assert thickness[regions].stack().between(1.0, 5.0).all()

    # A participants file made from cov.csv, shuffled and missing one subject.
    cov = pd.read_csv(shared_data / "enigma" / "cov.csv")
    shuffled = cov.sample(frac=1.0, random_state=3).iloc[:-1]
    path = tmp_path / "participants.tsv"
    shuffled.rename(columns={"SubjID": "participant_id"}).to_csv(path, sep="\t", index=False)
    participants = read_participants(path)
    with pytest.warns(GraymatterWarning, match=r"1 rows of regions table .* no participant"):
        ids = match_subjects(participants.index, thickness.index, what="regions table")
    aligned = thickness.loc[ids, regions]
    assert aligned.index.tolist() == shuffled["SubjID"].tolist()
    first = shuffled["SubjID"].iloc[0]
    raw = pd.read_csv(shared_data / "enigma" / "metr2_CortThick.csv").set_index("SubjID")
    np.testing.assert_allclose(aligned.loc[first].to_numpy(), raw.loc[first, regions].to_numpy())


def test_missing_values_and_all_missing_region_logged(tmp_path, caplog):
    path = tmp_path / "vol.tsv"
    path.write_text("subject_id\tL_a\tR_b\n01\t1.5\tn/a\n02\t\tNA\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="graymatter"):
        table = read_regions(path)
    assert table.index.tolist() == ["01", "02"]
    assert np.isnan(table.loc["02", "L_a"]) and table["R_b"].isna().all()
    assert "R_b" in caplog.text


def test_non_numeric_cell_names_line_column_value(tmp_path):
    path = tmp_path / "thick.csv"
    path.write_text("SubjID,L_a,R_b\ns1,2.5,2.6\ns2,2.4,2,7\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"thick\.csv', line 3: expected 3 fields"):
        read_regions(path)
    path.write_text("SubjID,L_a,R_b\ns1,2.5,2.6\ns2,2.4,thick\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"thick\.csv', line 3 \(subject 's2'\), column 'R_b': "
                                         r"expected a number, found 'thick'"):
        read_regions(path)


def test_duplicates(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("id,L_a,L_a\ns1,1,2\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"r\.csv.*duplicate column names.*L_a"):
        read_regions(path)
    path.write_text("id,L_a\ns1,1\ns1,2\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"r\.csv.*duplicate subject id.*'s1' \(lines 2, 3\)"):
        read_regions(path)


def test_id_column_only(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("id\ns1\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"only the subject-id column"):
        read_regions(path)
