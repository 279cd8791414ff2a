"""CAT12 report xml and TIV.txt reading, on files written in CAT12's own formats.

The xml follows what CAT12's cat_io_xml writes for the ``S`` report structure (root ``S``,
MATLAB vectors as ``[a b c]``); TIV.txt follows cat_stat_TIV's ``fprintf`` formats for each
``calcvol_TIV`` / ``calcvol_savenames`` setting.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from graymatter.errors import InputError
from graymatter.io.cat12 import (add_cat12_measures, mark_to_percent, read_cat12_report,
                                 read_cat12_reports, read_cat12_tiv)

# CSF, GM, WM, WMH, stroke lesions (ml), per subject.
CGW = {"sub-01": [310.25, 702.5, 511.75, 1.5, 0.0],
       "sub-02": [355.0, 640.125, 498.5, 3.25, 0.0],
       "sub-10": [290.5, 731.0, 540.25, 0.75, 0.0]}
MARKS = {"sub-01": (2.31, 1.2, 2.05, 2.9), "sub-02": (3.05, 1.6, 2.4, 3.1),
         "sub-10": (1.9, 1.1, 1.8, 2.2)}  # res_RMS, NCR, ICR, IQR


def _vector(values) -> str:
    return "[" + " ".join(f"{v:.4f}" for v in values) + "]"


def write_report(folder, sid, *, with_tiv=True):
    """Write ``cat_<sid>_T1w.xml`` as CAT12 12.8 does (fields used here, in its layout)."""
    cgw = CGW[sid]
    tiv = sum(cgw)
    res_rms, ncr, icr, iqr = MARKS[sid]
    tiv_line = f"    <vol_TIV>{tiv:.4f}</vol_TIV>\n" if with_tiv else ""
    text = (
        '<?xml version="1.0" encoding="utf-8"?>\n<S>\n'
        "  <filedata>\n"
        f"    <path>/data/{sid}/anat</path>\n    <file>{sid}_T1w</file>\n"
        f"    <fname>/data/{sid}/anat/{sid}_T1w.nii</fname>\n  </filedata>\n"
        "  <qualityratings>\n"
        f"    <res_RMS>{res_rms}</res_RMS>\n    <NCR>{ncr}</NCR>\n    <ICR>{icr}</ICR>\n"
        f"    <IQR>{iqr}</IQR>\n  </qualityratings>\n"
        "  <subjectmeasures>\n"
        f"{tiv_line}"
        f"    <vol_abs_CGW>{_vector(cgw)}</vol_abs_CGW>\n"
        f"    <vol_rel_CGW>{_vector(np.array(cgw) / tiv)}</vol_rel_CGW>\n"
        "    <dist_thickness>[2.51 0.62]</dist_thickness>\n"
        "  </subjectmeasures>\n</S>\n")
    path = folder / f"cat_{sid}_T1w.xml"
    path.write_text(text, encoding="utf-8")
    return path


def write_tiv_txt(path, sids, *, tiv_only: bool, savenames: int):
    """Write TIV.txt as cat_stat_TIV does for the given options (rows in ``sids`` order)."""
    lines = []
    for sid in sids:
        cgw = CGW[sid]
        name = {0: None, 1: f"cat_{sid}_T1w", 2: f"/data/report/cat_{sid}_T1w"}[savenames]
        numbers = [sum(cgw)] if tiv_only else [sum(cgw), cgw[1], cgw[2], cgw[0], cgw[3]]
        cells = "\t".join(f"{v:7.2f}" for v in numbers)
        lines.append(cells if name is None else f"{name}\t{cells}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def reports(tmp_path):
    folder = tmp_path / "report"
    folder.mkdir()
    for sid in CGW:
        write_report(folder, sid)
    return folder


def test_one_report_gives_cat12s_volumes_and_ratings(reports):
    got = read_cat12_report(reports / "cat_sub-02_T1w.xml")
    cgw = CGW["sub-02"]
    assert got["tiv"] == pytest.approx(sum(cgw), abs=1e-4)
    assert (got["csf_ml"], got["gm_ml"], got["wm_ml"], got["wmh_ml"]) == pytest.approx(
        cgw[:4], abs=1e-4)
    assert (got["res_rms"], got["ncr"], got["icr"], got["iqr"]) == MARKS["sub-02"]
    # CAT12's percentage rating: 105 - 10 * mark, within [0, 100].
    assert got["iqr_percent"] == pytest.approx(105 - 31.0)
    assert mark_to_percent(0.2) == 100.0 and mark_to_percent(11.0) == 0.0


def test_tiv_is_the_sum_of_the_classes_when_vol_tiv_is_absent(tmp_path):
    path = write_report(tmp_path, "sub-01", with_tiv=False)
    assert read_cat12_report(path)["tiv"] == pytest.approx(sum(CGW["sub-01"]), abs=1e-3)


def test_reports_are_matched_by_id_not_order(reports):
    table = read_cat12_reports(["sub-10", "sub-01", "sub-02"], reports / "cat_*.xml")
    assert list(table.index) == ["sub-10", "sub-01", "sub-02"]
    assert table.loc["sub-10", "gm_ml"] == pytest.approx(CGW["sub-10"][1], abs=1e-4)
    assert table.loc["sub-01", "gm_ml"] == pytest.approx(CGW["sub-01"][1], abs=1e-4)


def test_a_subject_without_report_is_named(reports):
    with pytest.raises(InputError, match="sub-03"):
        read_cat12_reports(["sub-01", "sub-03"], reports / "cat_*.xml")


@pytest.mark.parametrize("tiv_only", [True, False])
@pytest.mark.parametrize("savenames", [0, 1, 2])
def test_tiv_txt_in_every_cat12_layout(tmp_path, tiv_only, savenames):
    order = ["sub-02", "sub-10", "sub-01"]  # the order the reports were given to CAT12
    path = write_tiv_txt(tmp_path / "TIV.txt", order, tiv_only=tiv_only, savenames=savenames)
    # With names the rows are matched by id; without, the order must be stated.
    asked = ["sub-01", "sub-02", "sub-10"] if savenames else order
    table = read_cat12_tiv(path, asked)
    assert list(table.index) == asked
    for sid in asked:
        assert table.loc[sid, "tiv"] == pytest.approx(sum(CGW[sid]), abs=0.006)
        if not tiv_only:
            assert table.loc[sid, "gm_ml"] == pytest.approx(CGW[sid][1], abs=0.006)
            assert table.loc[sid, "csf_ml"] == pytest.approx(CGW[sid][0], abs=0.006)
    assert list(table.columns) == (["tiv"] if tiv_only else
                                   ["tiv", "gm_ml", "wm_ml", "csf_ml", "wmh_ml"])


def test_tiv_txt_and_reports_agree(reports, tmp_path):
    path = write_tiv_txt(tmp_path / "TIV.txt", ["sub-01", "sub-02", "sub-10"], tiv_only=False,
                         savenames=1)
    from_txt = read_cat12_tiv(path, list(CGW))
    from_xml = read_cat12_reports(list(CGW), reports / "cat_*.xml")
    np.testing.assert_allclose(from_txt[["tiv", "gm_ml", "wm_ml", "csf_ml"]],
                               from_xml[["tiv", "gm_ml", "wm_ml", "csf_ml"]], atol=0.006)


def test_numbers_only_tiv_txt_with_the_wrong_count_is_refused(tmp_path):
    path = write_tiv_txt(tmp_path / "TIV.txt", ["sub-01", "sub-02"], tiv_only=True, savenames=0)
    with pytest.raises(InputError, match="2 rows but 3 subjects"):
        read_cat12_tiv(path, ["sub-01", "sub-02", "sub-10"])


def test_malformed_tiv_txt_names_the_line(tmp_path):
    path = tmp_path / "TIV.txt"
    path.write_text("1500.25\n1400.5\t700\n")
    with pytest.raises(InputError, match="line 2"):
        read_cat12_tiv(path, ["sub-01", "sub-02"])


def test_truncated_report_is_named(reports):
    path = reports / "cat_sub-01_T1w.xml"
    path.write_text(path.read_text()[:200])
    with pytest.raises(InputError, match="cat_sub-01_T1w.xml.*not valid XML"):
        read_cat12_report(path)


def test_report_without_volumes_or_with_entities_is_refused(tmp_path):
    no_volumes = tmp_path / "cat_a.xml"
    no_volumes.write_text("<S><qualityratings><IQR>2</IQR></qualityratings></S>")
    with pytest.raises(InputError, match="vol_abs_CGW"):
        read_cat12_report(no_volumes)
    bomb = tmp_path / "cat_b.xml"
    bomb.write_text('<?xml version="1.0"?><!DOCTYPE S [<!ENTITY a "aaaa">]>'
                    "<S><subjectmeasures><vol_abs_CGW>[&a;]</vol_abs_CGW></subjectmeasures></S>")
    with pytest.raises(InputError, match="DOCTYPE"):
        read_cat12_report(bomb)
    text = tmp_path / "cat_c.xml"
    text.write_text("<S><subjectmeasures><vol_abs_CGW>[1 two 3]</vol_abs_CGW>"
                    "</subjectmeasures></S>")
    with pytest.raises(InputError, match="vol_abs_CGW.*numbers"):
        read_cat12_report(text)


def test_add_cat12_measures_joins_by_id(reports, tmp_path):
    participants = pd.DataFrame({"age": [30, 41, 52]},
                                index=pd.Index(["sub-10", "sub-02", "sub-01"],
                                               name="participant_id"))
    out = add_cat12_measures(participants, reports / "cat_*.xml", columns=("tiv", "iqr"))
    assert out.loc["sub-02", "tiv"] == pytest.approx(sum(CGW["sub-02"]), abs=1e-4)
    assert out.loc["sub-10", "iqr"] == MARKS["sub-10"][3]
    assert list(out["age"]) == [30, 41, 52]
    txt = write_tiv_txt(tmp_path / "TIV.txt", ["sub-01", "sub-02", "sub-10"], tiv_only=True,
                        savenames=1)
    from_txt = add_cat12_measures(participants, txt)
    assert from_txt.loc["sub-01", "tiv"] == pytest.approx(sum(CGW["sub-01"]), abs=0.006)
    with pytest.raises(InputError, match="already has column"):
        add_cat12_measures(out, reports / "cat_*.xml")
    with pytest.raises(InputError, match="no gm_ml"):
        add_cat12_measures(participants, txt, columns=("gm_ml",))
