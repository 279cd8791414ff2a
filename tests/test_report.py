"""The Study A HTML report, its brain figures and its methods paragraph, on a small simulated
study run end to end (12 subjects, 3 mm grid, RFT + 99 permutations + TFCE)."""

import base64
import dataclasses
import io
import re
import textwrap
from html.parser import HTMLParser

import matplotlib.image
import numpy as np
import pytest
from scipy import stats

from graymatter.datasets.simulate import PlantedEffect, simulate_vbm_cohort
from graymatter.errors import InputError
from graymatter.io.provenance import software_versions
from graymatter.report.brain_figures import _cut_coords, thresholded_map
from graymatter.report.html import simulated_note, write_study_report
from graymatter.report.methods import methods_section
from graymatter.workflows.study import run_study

PLANTED = (28.0, 4.0, -20.0)
N_PERM = 99
STUDY = """\
    name: Small simulated VBM study
    participants: data/participants.tsv
    images: data/mri/mwp1*.nii.gz
    model: 0 + group + age + sex + tiv
    levels:
      group: [HC, MDD]
    contrasts:
      HC > MDD: HC - MDD
      MDD > HC: MDD - HC
    inference:
      methods: [rft, permutation]
      n_perm: {n_perm}
      height_p: 0.001
      tfce: true
      random_state: 7
    demographics:
      group: group
      variables: [age, sex, tiv]
    output: results
    """


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """run_study on 12 simulated subjects with 25 % less gray matter in MDD at ``PLANTED``."""
    root = tmp_path_factory.mktemp("report")
    simulate_vbm_cohort(root / "data", groups={"HC": 6, "MDD": 6}, resolution=3,
                        effects=[PlantedEffect("group == 'MDD'", PLANTED, 12.0, -0.25)],
                        random_state=1)
    (root / "data" / "README.txt").write_text("SIMULATED DATA: planted for the report test.\n")
    (root / "study.yaml").write_text(textwrap.dedent(STUDY).format(n_perm=N_PERM))
    outputs = run_study(root / "study.yaml", progress=False)
    return outputs, outputs.glm.out_dir / "report.html"


class _Collector(HTMLParser):
    """Every tag with its attributes, and the rows of each table body by table id/class."""

    def __init__(self):
        super().__init__()
        self.tags, self.rows, self._table, self._in_body = [], {}, [], False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "table":
            self._table.append(attrs.get("id") or attrs.get("class") or "?")
            self.rows.setdefault(self._table[-1], [])
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body and self._table:
            self.rows[self._table[-1]].append(attrs.get("class") or "")

    def handle_endtag(self, tag):
        if tag == "table" and self._table:
            self._table.pop()
        elif tag == "tbody":
            self._in_body = False


def _parse(html):
    parser = _Collector()
    parser.feed(html)
    return parser


def test_report_is_one_self_contained_file_under_20_mb(study):
    _, path = study
    assert path.is_file()
    assert path.stat().st_size < 20e6
    html = path.read_text()
    parsed = _parse(html)
    assert not [t for t, _ in parsed.tags if t in ("script", "link", "iframe", "object")]
    for tag, attrs in parsed.tags:
        for key in ("src", "href"):
            if key not in attrs:
                continue
            value = attrs[key]
            assert not re.match(r"(https?:)?//", value), (tag, value)
            if key == "href":
                assert value.startswith("#"), value  # only in-page links
    images = [attrs["src"] for tag, attrs in parsed.tags if tag == "img"]
    assert len(images) == 1 + 2 * 2  # design + (glass brain, slices) per contrast
    for src in images:
        assert src.startswith("data:image/png;base64,")
        raw = base64.b64decode(src.split(",", 1)[1], validate=True)
        pixels = matplotlib.image.imread(io.BytesIO(raw), format="png")
        assert pixels.ndim == 3 and min(pixels.shape[:2]) > 100
        assert np.ptp(pixels) > 0  # not a blank image
    # URLs appear only as text of the reference list (none are cited as links at all here).
    assert "http" not in re.sub(r"<ol class=\"references\">.*?</ol>", "", html, flags=re.S)


def test_tables_have_the_expected_rows(study):
    outputs, path = study
    parsed = _parse(path.read_text())
    table1 = next(rows for key, rows in parsed.rows.items() if "graymatter-table1" in key)
    assert len(table1) == len(outputs.table1.table) == 1 + 3  # N row + age, sex, tiv
    for i, contrast in enumerate(outputs.glm.contrasts, start=1):
        table = outputs.glm.inference[contrast.name].table
        rows = [r for r in parsed.rows[f"clusters-{i}"] if "empty" not in r]
        assert len(rows) == len(table)  # clusters + their sub-peaks
        assert sum("first" in r for r in rows) == (table["peak"] == 1).sum()
        n_significant = int((outputs.glm.inference[contrast.name].cluster_p["perm"] < 0.05).sum())
        first_significant = [r for r in rows if "significant" in r and "first" in r]
        assert len(first_significant) == n_significant
    assert len(parsed.rows["software"]) == len(software_versions())
    html = path.read_text()
    assert "12 images (SHA-256)" in html
    first = outputs.glm.files["sidecar"].read_text()
    for sha in re.findall(r'"sha256": "([0-9a-f]{64})"', first):
        assert sha in html


def test_planted_effect_is_the_cluster_shown(study):
    outputs, _ = study
    glm = outputs.glm
    tmap = thresholded_map(glm, "HC > MDD")
    assert tmap.correction == "perm" and "permutation" in tmap.caption
    inference = glm.inference["HC > MDD"]
    labels = inference.clusters.labels
    keep = np.flatnonzero(inference.cluster_p["perm"] < 0.05) + 1
    expected = np.where(np.isin(labels, keep), glm.results["HC > MDD"].t, 0.0)
    np.testing.assert_array_equal(tmap.values, expected)
    assert tmap.n_clusters >= 1
    assert np.linalg.norm(tmap.peaks_mm[0] - PLANTED) <= 10.0
    assert f"{tmap.height:.2f}" in tmap.caption and f"{N_PERM} Freedman–Lane" in tmap.caption
    # Nothing was planted the other way: no cluster survives, and the figure says so.
    assert thresholded_map(glm, "MDD > HC").n_clusters == 0
    for role in ("glass_brain", "slices"):
        for ext in ("png", "svg"):
            stem = "glassbrain" if role == "glass_brain" else "slices"
            assert (glm.out_dir / f"contrast-HCgtMDD_{stem}.{ext}").stat().st_size > 1000


def test_fallbacks_to_rft_and_to_uncorrected_say_so(study):
    glm = study[0].glm
    name = "HC > MDD"
    inference = glm.inference[name]
    rft_only = dataclasses.replace(inference, cluster_p={"rft": inference.cluster_p["rft"]})
    rft = thresholded_map(dataclasses.replace(glm, inference={name: rft_only}), name)
    assert rft.correction == "rft" and "random field theory" in rft.caption
    keep = set(np.flatnonzero(inference.cluster_p["rft"] < 0.05) + 1)
    assert set(rft.clusters) == keep
    bare = thresholded_map(dataclasses.replace(glm, inference={}), name)
    df = glm.results[name].df
    assert bare.correction == "none" and "uncorrected" in bare.caption
    assert bare.height == pytest.approx(stats.t.isf(0.001, df))
    t = glm.results[name].t
    # Every voxel above the height is in some shown cluster, and nothing below it is.
    np.testing.assert_array_equal(bare.values != 0, t > bare.height)


def test_rewriting_without_banner_leaves_no_pyplot_figure_open(study):
    import matplotlib.pyplot as plt

    outputs, _ = study
    before = plt.get_fignums()
    again = write_study_report(outputs, outputs.glm.out_dir / "again.html", simulated=False)
    assert plt.get_fignums() == before
    assert 'id="simulated"' not in again.read_text()


def test_methods_paragraph_states_the_numbers_used(study):
    glm = study[0].glm
    methods = methods_section(glm)
    text = methods.text
    assert "12 participants (HC 6, MDD 6)" in text
    assert f"{N_PERM} permutations" in text and "Freedman–Lane" in text
    assert "p < 0.001" in text
    assert f"{glm.inference['HC > MDD'].height:.2f}" in text
    for fwhm in glm.smoothness.fwhm_mm:
        assert f"{fwhm:.1f}" in text
    assert f"{glm.smoothness.resels[3]:.1f} resels" in text
    assert "18-connectivity" in text and "E = 0.5, H = 2" in text
    assert "random seed 7" in text and "age (mean" in text and "tiv (mean" in text
    assert '"HC > MDD" (one-sided t: HC - MDD)' in text
    # SPM12's Bonferroni floor of voxel RFT p, and the threshold each contrast got, with its bound.
    assert f"Bonferroni p-value over the {glm.smoothness.n_voxels:,} voxels" in text
    for name, inf in glm.inference.items():
        thr = inf.rft_threshold
        assert thr.u == min(thr.u_rft, thr.u_bonferroni)
        assert (f't > {thr.u:.2f} for "{name}" ({thr.method}; RFT {thr.u_rft:.2f}, '
                f'Bonferroni {thr.u_bonferroni:.2f})') in text
    cited = {r.key for r in methods.references}
    assert {"Friston et al., 1994", "Worsley et al., 1996", "Freedman & Lane, 1983",
            "Winkler et al., 2014", "Smith & Nichols, 2009", "Benjamini & Hochberg, 1995",
            "Desikan et al., 2006", "Eklund et al., 2016"} <= cited
    for key in cited:  # every reference listed is cited in the text, and vice versa
        assert f"{key}" in text
    html = study[1].read_text()
    assert "Smith SM, Nichols TE (2009)" in html


def test_methods_without_corrected_inference(study):
    glm = study[0].glm
    sidecar = {"software": {"graymatter": "0.1.0"}, "contrasts": {}, "inference": None}
    methods = methods_section(dataclasses.replace(glm, inference={}, smoothness=None),
                              sidecar=sidecar)
    assert "No family-wise error correction" in methods.text
    assert "Friston et al." not in methods.text and "permutations" not in methods.text


def test_simulated_banner_follows_the_data_folder(study, tmp_path):
    outputs, path = study
    assert 'id="simulated"' in path.read_text()
    assert simulated_note(outputs.spec).startswith("SIMULATED DATA: planted")
    real = dataclasses.replace(outputs.spec, participants=tmp_path / "participants.tsv")
    assert simulated_note(real) is None


def test_mistakes_raise_clear_errors(study):
    outputs, _ = study
    with pytest.raises(InputError, match=r"must end in \.html"):
        write_study_report(outputs, outputs.glm.out_dir / "report.pdf")
    with pytest.raises(InputError, match=r"'HC > CTRL'.*\(HC > MDD, MDD > HC\)"):
        thresholded_map(outputs.glm, "HC > CTRL")
    with pytest.raises(InputError, match="alpha"):
        thresholded_map(outputs.glm, "HC > MDD", alpha=5)


def test_slice_cuts_go_through_the_peaks():
    peaks = np.array([[28.0, 4.0, -20.0], [-34.0, 2.0, -18.0], [2.0, 34.0, 19.0]])
    cuts = _cut_coords(peaks, 7)
    assert len(cuts) == 7 == len(set(cuts)) and cuts == sorted(cuts)
    assert -20.0 in cuts and 19.0 in cuts
    assert -18.0 not in cuts  # within 4 mm of the -20 slice already shown
    assert len(_cut_coords(np.empty((0, 3)), 5)) == 5
