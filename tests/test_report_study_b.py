"""The Study B HTML report: self-contained, holds what the run computed, renders in Chromium."""

import base64
import re
from html.parser import HTMLParser

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from graymatter.errors import InputError
from graymatter.report import study_b_figures as sbf
from graymatter.report.html_study_b import study_b_methods, write_study_b_report
from graymatter.workflows.demo import run_demo

from test_report_browser import PROBE, _chromium, _Rows, _run

N_PERM = 99


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The Study B demo as tests/test_study_b.py builds it (empty cache: all simulated)."""
    root = tmp_path_factory.mktemp("report_b")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRAYMATTER_DATA", str(root / "empty-cache"))
        summary = run_demo(root / "demo", n_perm=N_PERM, random_state=0, studies=("B",),
                           progress=False)
    outputs = summary.study_b
    return outputs, outputs.out_dir / "report.html"


class _Doc(HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs, self.links, self.ids, self.scripts = [], [], set(), 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "img":
            self.imgs.append(attrs.get("src", ""))
        if tag == "script":
            self.scripts += 1
        for key in ("src", "href"):
            if attrs.get(key):
                self.links.append(attrs[key])


def test_run_study_b_writes_a_self_contained_report(demo):
    outputs, path = demo
    assert path.is_file() and path.stat().st_size < 20e6
    html = path.read_text()
    doc = _Doc()
    doc.feed(html)
    assert doc.scripts == 0
    assert not [u for u in doc.links if re.match(r"(?i)\s*(https?:)?//", u)], doc.links
    assert not re.search(r"""(?i)url\(\s*['"]?https?:""", html)
    # t-map, clinical scatter, PLS1 map, PLS1 scatter, spin histogram, ranked genes, 2 bubbles
    assert len(doc.imgs) == 8
    for src in doc.imgs:
        assert src.startswith("data:image/png;base64,"), src[:40]
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "SIMULATED" in html and 'id="simulated"' in html
    for name in ("t_map_surface.png", "pls1_score_surface.png", "clinical_pls_scatter.svg",
                 "ranked_genes.svg", "enrichment_cell_types.png", "pls1_spin_null.png"):
        assert (path.parent / "figures" / name).is_file(), name
    assert plt.get_fignums() == []  # no pyplot state left behind


def test_tables_hold_what_the_run_computed(demo):
    outputs, path = demo
    dom = _Rows()
    dom.feed(path.read_text())
    table = outputs.paired.table
    assert len(dom.rows["regions"]) == min(15, len(table))
    html = path.read_text()
    # the top region by |t| comes first with its t
    top = table["t"].abs().idxmax()
    first_row = re.search(r'<table id="regions">.*?<tbody>\s*<tr[^>]*><td>([^<]+)</td>'
                          r'<td class="num">([^<]+)</td>', html, re.S)
    assert first_row.group(1) == top and float(first_row.group(2)) == pytest.approx(
        table.loc[top, "t"], abs=0.005)
    genes = outputs.transcriptomics
    assert len(dom.rows["genes-positive"]) == min(15, len(genes.pls1_positive))
    assert len(dom.rows["genes-negative"]) == min(15, len(genes.pls1_negative))
    assert genes.pls1_positive[0] in html
    assert len(dom.rows["clinical-pls"]) == 9
    assert f"{outputs.clinical.cv_r:.2f}" in html
    assert len(dom.rows["gene-pls"]) == genes.scores.shape[1]
    for key, frame in outputs.enrichment.items():
        tid = "enrichment-" + key.replace("/", "-").replace("_", "-")
        assert len(dom.rows[tid]) == min(15, len(frame)), tid
    spatial = re.search(r'<table id="enrichment-cell-types-spatial">.*?</table>', html, re.S)
    assert "p classic" in spatial.group(0) and "p spatial" in spatial.group(0)
    # the planted cell type heads the GSEA table
    assert re.search(r'id="enrichment-cell-types-gsea">.*?<tbody>\s*<tr[^>]*><td>Neuro-Ex<',
                     html, re.S)
    for section in ("methods", "provenance", "inputs", "software"):
        assert f'id="{section}"' in html
    assert len(dom.rows["inputs"]) >= 4  # study file, participants, pre, post


def test_methods_name_the_parameters_used_and_cite_them(demo):
    outputs, _ = demo
    methods = study_b_methods(outputs)
    text = methods.text
    assert f"{outputs.paired.n_perm} sign-flips" in text
    assert f"{outputs.transcriptomics.n_spins} spatial null maps" in text
    assert "'1 + delta_tiv'" in text
    keys = {r.key for r in methods.references}
    for cited in ("Freedman & Lane, 1983", "Benjamini & Hochberg, 1995",
                  "Alexander-Bloch et al., 2018", "Váša et al., 2018", "Hawrylycz et al., 2012",
                  "Markello et al., 2021", "Subramanian et al., 2005", "Fulcher et al., 2021"):
        assert cited in keys and f"{cited}" in text, cited


def test_region_values_land_on_their_parcels():
    labels = sbf.dk_vertex_labels("lh")
    assert labels.names.shape == (10242,)
    values = pd.Series({"lh_insula": 3.0, "lh_precuneus": -2.0, "rh_insula": 99.0})
    painted, n = sbf.region_vertex_values(values, labels)
    assert n == 2
    np.testing.assert_array_equal(painted[labels.names == "insula"], 3.0)
    np.testing.assert_array_equal(painted[labels.names == "precuneus"], -2.0)
    assert (painted[~np.isin(labels.names, ["insula", "precuneus"])] == 0).all()


def test_unknown_regions_fall_back_to_a_bar_chart_and_say_so():
    fig, note = sbf.plot_region_map(pd.Series({"roi_a": 1.0, "roi_b": -2.0}), title="t",
                                    label="t")
    assert "bar chart" in note
    assert len(fig.axes) == 1 and len(fig.axes[0].patches) == 2


def test_ranked_genes_cut_lines_sit_at_the_list_ends():
    z = np.array([5.0, 4.0, 1.0, 0.5, -0.2, -3.0, -6.0])
    q = np.array([0.001, 0.01, 0.2, 0.5, 0.6, 0.02, 0.001])
    fig = sbf.plot_ranked_genes(pd.DataFrame({"z": z, "p_fdr": q}))
    vlines = sorted(line.get_xdata()[0] for line in fig.axes[0].lines
                    if line.get_xdata()[0] == line.get_xdata()[1] and len(line.get_xdata()) == 2
                    and line.get_linestyle() == "--")
    assert vlines == [2.5, 5.5]
    with pytest.raises(InputError, match="p_fdr"):
        sbf.plot_ranked_genes(pd.DataFrame({"z": z}))


def test_report_path_must_be_html(demo, tmp_path):
    outputs, _ = demo
    with pytest.raises(InputError, match=r"\.html"):
        write_study_b_report(outputs, tmp_path / "report.txt")


def test_study_b_report_renders_in_chromium(demo, tmp_path):
    chromium = _chromium()
    outputs, path = demo
    html = path.read_text()
    probed = tmp_path / "probed.html"
    probed.write_text(html.replace("<head>", "<head>" + PROBE, 1))
    done, _ = _run(chromium, tmp_path / "profile-dom", "--virtual-time-budget=10000",
                   "--dump-dom", probed.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    dom = _Rows()
    dom.feed(done.stdout)
    assert dom.body.get("data-images") == "8", dom.body
    assert dom.body.get("data-broken") == "0", dom.body
    assert dom.body.get("data-errors") == "", dom.body
    assert not re.findall(r":CONSOLE[^\n]*", done.stderr)
    for table in ("regions", "clinical-pls", "gene-pls", "genes-positive", "genes-negative",
                  "enrichment-cell-types-gsea", "enrichment-cell-types-spatial"):
        assert dom.rows[table] and "empty" not in dom.rows[table][0], table
    shot = tmp_path / "report_b.png"
    done, seconds = _run(chromium, tmp_path / "profile-shot", "--window-size=1280,5000",
                         f"--screenshot={shot}", path.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(f"\nload event after {dom.body.get('data-load-ms')} ms; screenshot {shot}; Chromium "
          f"start + render + screenshot {seconds:.2f} s (report {path.stat().st_size / 1e6:.2f} MB)")
