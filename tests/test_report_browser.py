"""The Study A report in a real browser: headless Chromium (Debian's ``chromium`` package).

The report itself has no JavaScript. To see what the browser made of it, a copy gets a small
probe script that records, after load, how many images decoded and any error events; Chromium's
``--dump-dom`` then prints the DOM with those records. The untouched report is screenshotted,
and Chromium's console log (``--enable-logging=stderr``) must stay silent.
"""

import os
import re
import shutil
import subprocess
import textwrap
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from graymatter.datasets.simulate import PlantedEffect, simulate_vbm_cohort
from graymatter.workflows.study import run_study

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                  "--enable-logging=stderr", "--v=0"]
STUDY = """\
    name: Browser check
    participants: data/participants.tsv
    images: data/mri/mwp1*.nii.gz
    model: 0 + group + age + tiv
    levels:
      group: [HC, MDD]
    contrasts:
      HC > MDD: HC - MDD
      MDD > HC: MDD - HC
    inference:
      methods: [rft, permutation]
      n_perm: 99
      random_state: 2
    demographics:
      group: group
      variables: [age, sex, tiv]
    output: results
    """
# Records image decoding and error events into attributes of <body> after the load event.
PROBE = """<script>
var __errors = [];
window.addEventListener("error", function (e) {
  var tag = e.target && e.target.tagName ? e.target.tagName + " " : "";
  __errors.push(tag + (e.message || "error"));
}, true);
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var broken = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
  document.body.setAttribute("data-images", imgs.length);
  document.body.setAttribute("data-broken", broken.length);
  document.body.setAttribute("data-errors", __errors.join("|"));
  document.body.setAttribute("data-load-ms", Math.round(performance.now()));
});
</script>"""


def _chromium() -> str:
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None)
    if found is None:
        reason = ("headless Chromium not found: install Debian's package "
                  "(apt-get install -y chromium), as `make test` does")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def _run(chromium, profile, *args, timeout=120):
    started = time.perf_counter()
    done = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=timeout)
    return done, time.perf_counter() - started


class _Rows(HTMLParser):
    """``<body>`` attributes and the body rows of each table, keyed by id or class."""

    def __init__(self):
        super().__init__()
        self.body, self.rows, self._table, self._in_body = {}, {}, [], False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "body":
            self.body = attrs
        elif tag == "table":
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


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    chromium = _chromium()
    root = tmp_path_factory.mktemp("browser")
    simulate_vbm_cohort(root / "data", groups={"HC": 6, "MDD": 6}, resolution=3,
                        effects=[PlantedEffect("group == 'MDD'", (28.0, 4.0, -20.0), 12.0, -0.25)],
                        random_state=4)
    (root / "study.yaml").write_text(textwrap.dedent(STUDY))
    outputs = run_study(root / "study.yaml", progress=False)
    return chromium, outputs, outputs.glm.out_dir / "report.html", root


def test_report_renders_in_chromium_with_every_image_and_row(report, tmp_path):
    chromium, outputs, path, _ = report
    probed = tmp_path / "probed.html"
    html = path.read_text()
    assert "<script" not in html  # the report itself needs no JavaScript
    probed.write_text(html.replace("<head>", "<head>" + PROBE, 1))
    done, _ = _run(chromium, tmp_path / "profile-dom", "--virtual-time-budget=10000",
                   "--dump-dom", probed.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    dom = _Rows()
    dom.feed(done.stdout)
    assert dom.body.get("data-images") == "5", dom.body  # design + 2 per contrast
    assert dom.body.get("data-broken") == "0", dom.body
    assert dom.body.get("data-errors") == "", dom.body
    assert not re.findall(r":CONSOLE[^\n]*", done.stderr)
    # The rendered tables hold what the study computed.
    table1 = next(rows for key, rows in dom.rows.items() if "graymatter-table1" in key)
    assert len(table1) == len(outputs.table1.table)
    for i, contrast in enumerate(outputs.glm.contrasts, start=1):
        rows = [r for r in dom.rows[f"clusters-{i}"] if "empty" not in r]
        assert len(rows) == len(outputs.glm.inference[contrast.name].table)
    print(f"\nreport load event after {dom.body.get('data-load-ms')} ms in Chromium")


def test_screenshot_and_render_time(report, tmp_path):
    chromium, _, path, _ = report
    shot = tmp_path / "report.png"
    done, seconds = _run(chromium, tmp_path / "profile-shot", "--window-size=1280,4000",
                         f"--screenshot={shot}", path.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    assert not re.findall(r":CONSOLE[^\n]*", done.stderr)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    print(f"\nscreenshot: {shot}\nChromium start + render + screenshot: {seconds:.2f} s "
          f"(report {path.stat().st_size / 1e6:.2f} MB)")
    # The issue asks for < 5 s; a shared CI machine gets a generous bound, the time is printed.
    assert seconds < 30.0
