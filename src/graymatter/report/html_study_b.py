"""The Study B (regional change, clinical PLS, imaging transcriptomics) HTML report.

One self-contained file like the Study A report (base64 images, inline CSS, no JavaScript),
rendered from ``templates/study_b.html.j2``; the figures are also written as PNG (and SVG, except
the surface maps whose SVGs would be tens of MB) in ``figures/`` beside it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from ..errors import InputError
from ..io.atomic import write_text
from ..transcriptomics.expression import DEFAULT_HEMISPHERE
from . import study_b_figures as sbf
from .enrichment_figures import bubble_frame, plot_enrichment_bubbles
from .html import _DEFAULT_SIMULATED_NOTE, _environment, data_uri, simulated_note
from .methods import REFERENCES, Methods, Reference

__all__ = ["STUDY_B_REFERENCES", "render_study_b_report", "study_b_methods",
           "write_study_b_report"]

logger = logging.getLogger("graymatter")

#: Works the Study B methods may cite, in reference-list order (shared ones from REFERENCES).
STUDY_B_REFERENCES = {
    "freedman1983": REFERENCES["freedman1983"],
    "winkler2014": REFERENCES["winkler2014"],
    "benjamini1995": REFERENCES["benjamini1995"],
    "desikan2006": REFERENCES["desikan2006"],
    "krishnan2011": Reference(
        "Krishnan et al., 2011",
        "Krishnan A, Williams LJ, McIntosh AR, Abdi H (2011). Partial least squares (PLS) methods "
        "for neuroimaging: a tutorial and review. NeuroImage 56:455–475."),
    "hawrylycz2012": Reference(
        "Hawrylycz et al., 2012",
        "Hawrylycz MJ, Lein ES, Guillozet-Bongaarts AL, et al. (2012). An anatomically "
        "comprehensive atlas of the adult human brain transcriptome. Nature 489:391–399."),
    "markello2021": Reference(
        "Markello et al., 2021",
        "Markello RD, Arnatkeviciute A, Poline J-B, Fulcher BD, Fornito A, Misic B (2021). "
        "Standardizing workflows in imaging transcriptomics with the abagen toolbox. eLife "
        "10:e72129."),
    "alexanderbloch2018": Reference(
        "Alexander-Bloch et al., 2018",
        "Alexander-Bloch AF, Shou H, Liu S, et al. (2018). On testing for spatial "
        "correspondence between maps of human brain structure and function. NeuroImage "
        "178:540–551."),
    "vasa2018": Reference(
        "Váša et al., 2018",
        "Váša F, Seidlitz J, Romero-Garcia R, et al. (2018). Adolescent tuning of association "
        "cortex in human structural brain networks. Cerebral Cortex 28:281–294."),
    "subramanian2005": Reference(
        "Subramanian et al., 2005",
        "Subramanian A, Tamayo P, Mootha VK, et al. (2005). Gene set enrichment analysis: a "
        "knowledge-based approach for interpreting genome-wide expression profiles. PNAS "
        "102:15545–15550."),
    "fulcher2021": Reference(
        "Fulcher et al., 2021",
        "Fulcher BD, Arnatkeviciute A, Fornito A (2021). Overcoming false-positive gene-category "
        "enrichment in the analysis of spatially resolved transcriptomic brain atlas data. "
        "Nature Communications 12:2669."),
}


class _Cite:
    def __init__(self):
        self.used: set[str] = set()

    def __call__(self, *keys: str) -> str:
        self.used.update(keys)
        return "(" + "; ".join(STUDY_B_REFERENCES[k].key for k in keys) + ")"

    def references(self) -> tuple[Reference, ...]:
        return tuple(r for k, r in STUDY_B_REFERENCES.items() if k in self.used)


def study_b_methods(outputs) -> Methods:
    """A methods section written from the parameters a Study B run used, with references.

    Parameters
    ----------
    outputs : StudyBOutputs
        From :func:`graymatter.workflows.study_b.run_study_b`.

    Returns
    -------
    Methods

    Examples
    --------
    >>> print(study_b_methods(run_study_b("ect.yaml")).text)  # doctest: +SKIP
    """
    cite, spec, paired = _Cite(), outputs.spec, outputs.paired
    table = paired.table
    n = len(paired.design.matrix)
    side = "two-sided" if paired.two_sided else "one-sided (increases)"
    paragraphs = [
        f"Regional gray-matter volume change (post − pre) of {n} participants was tested in "
        f"{len(table)} cortical regions (Desikan–Killiany atlas {cite('desikan2006')}) with a "
        f"general linear model of the change on '{spec.covariates}'; positive t is an increase "
        f"after treatment. Family-wise error was controlled over regions with the {side} "
        f"maximum statistic over {paired.n_perm} sign-flips of the residuals, nuisance "
        f"covariates handled as in the Freedman–Lane procedure {cite('freedman1983', 'winkler2014')}"
        f", and the false discovery rate with the Benjamini–Hochberg procedure "
        f"{cite('benjamini1995')}. Effect sizes are d_z (adjusted mean change over the residual "
        f"SD). The random seed was {spec.random_state}."]
    clinical = outputs.clinical
    if clinical is not None:
        cfg = spec.clinical_pls or {}
        cv = clinical.cv
        cv_text = ("leave-one-out" if cfg.get("cv", "loo") == "loo"
                   else f"{len(cv.folds)}-fold") if cv is not None else "no"
        paragraphs.append(
            f"The link between regional change and clinical change "
            f"({cfg.get('clinical_post')} − {cfg.get('clinical_pre')}) was tested with partial "
            f"least squares (PLS) regression {cite('krishnan2011')} with "
            f"{clinical.fit.n_components} component(s) on standardised variables: the in-sample "
            f"correlation of fitted and observed change was tested against "
            f"{clinical.permutation.n_perm} permutations of the participants, regional weights "
            f"were assessed with {clinical.bootstrap.n_boot} bootstrap resamples (Z = weight / "
            f"bootstrap SE), and out-of-sample prediction with {cv_text} cross-validation.")
    genes = outputs.transcriptomics
    if genes is not None:
        tx = spec.transcriptomics or {}
        spin = tx.get("spin_method", "alexander-bloch")
        spin_cite = cite("alexanderbloch2018") if spin == "alexander-bloch" else cite("vasa2018")
        spin_name = ("rotations of the parcel centroids on the sphere" if spin ==
                     "alexander-bloch" else "rotations with parcel reassignment")
        paragraphs.append(
            f"Regional gene expression from the Allen Human Brain Atlas {cite('hawrylycz2012')}, "
            f"processed with abagen {cite('markello2021')} "
            f"({genes.weights.shape[0]} genes, {genes.scores.shape[0]} regions, hemisphere "
            f"{tx.get('hemisphere', DEFAULT_HEMISPHERE)}), was related to the t-map with PLS "
            f"{cite('krishnan2011')} ({genes.scores.shape[1]} components). The variance of the "
            f"map explained by each component was compared with {genes.n_spins} spatial "
            f"null maps from {spin_name} {spin_cite} ({cite('alexanderbloch2018', 'vasa2018')} "
            f"describe the spin test); p = (1 + #null ≥ observed) / (1 + n). Gene weights were "
            f"assessed with {genes.n_boot} bootstrap resamples of the {genes.bootstrap}; genes "
            f"with Benjamini–Hochberg q < {genes.fdr_alpha:g} {cite('benjamini1995')} formed "
            f"the PLS1+ ({len(genes.pls1_positive)}) and PLS1− ({len(genes.pls1_negative)}) "
            f"lists.")
    if spec.enrichment:
        cfg = spec.enrichment
        methods = sorted({m for e in cfg["gene_sets"] for m in e["methods"]})
        parts = []
        if "gsea" in methods:
            parts.append(f"pre-ranked gene-set enrichment analysis {cite('subramanian2005')} of "
                         f"the PLS1 {cfg.get('ranking', 'weight')} ranking "
                         f"({cfg.get('n_perm', 10000)} gene-set permutations)")
        if "ora" in methods:
            parts.append("over-representation (hypergeometric) tests of the PLS1+ and PLS1− "
                         "lists against all measured genes")
        if "spatial" in methods:
            parts.append(f"category scores tested against both a classic gene-label null and "
                         f"a spatial null built from the same spins {cite('fulcher2021')}")
        names = ", ".join(e["name"] for e in cfg["gene_sets"])
        paragraphs.append(f"Gene-set enrichment ({names}) used " + "; ".join(parts)
                          + f"; q values are Benjamini–Hochberg {cite('benjamini1995')}.")
    return Methods(paragraphs=tuple(paragraphs), references=cite.references())


# ------------------------------------------------------------------------------------- tables

def _fmt(value, kind: str = "f") -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    value = float(value)
    if kind == "p":
        return "<0.001" if value < 0.001 else f"{value:.3f}"
    if kind == "g":
        return f"{value:.3g}"
    if kind == "i":
        return f"{value:.0f}"
    return f"{value:.2f}"


def _table(headers, rows, id_):
    return {"id": id_, "headers": headers, "rows": rows}


def _regions_table(paired, top: int) -> dict:
    table = paired.table
    order = table["t"].abs().sort_values(ascending=False).index[:top]
    rows = []
    for region in order:
        r = table.loc[region]
        rows.append({"cells": [str(region), _fmt(r["t"]), _fmt(r.get("p_fwe"), "p"),
                               _fmt(r["p_fdr"], "p"), _fmt(r["cohens_dz"])],
                     "class": "significant" if r["p_fdr"] < 0.05 else ""})
    return _table(["region", "t", "p FWE", "q FDR", "d_z"], rows, "regions")


def _clinical_rows(clinical, spec) -> list[tuple[str, str]]:
    cfg = spec.clinical_pls or {}
    return [("clinical change", f"{cfg.get('clinical_post')} − {cfg.get('clinical_pre')}"),
            ("subjects", str(clinical.fit.x_scores.shape[0])),
            ("components", str(clinical.fit.n_components)),
            ("variance explained (clinical)",
             ", ".join(f"{100 * v:.1f}%" for v in clinical.variance_explained)),
            ("in-sample r", _fmt(clinical.r)), ("p (permutation)", _fmt(clinical.p_perm, "g")),
            ("permutations", str(clinical.permutation.n_perm)),
            ("bootstrap resamples", str(clinical.bootstrap.n_boot)),
            ("cross-validated r", _fmt(clinical.cv_r))]


def _gene_table(genes, positive: bool, top: int) -> dict:
    table = genes.gene_table
    chosen = genes.pls1_positive if positive else genes.pls1_negative
    sub = table.set_index("gene").loc[list(chosen)[:top]]
    rows = [{"cells": [str(g), _fmt(r["weight"], "g"), _fmt(r["z"]), _fmt(r["p_fdr"], "g"),
                       _fmt(r["rank"], "i")], "class": ""} for g, r in sub.iterrows()]
    name = "positive" if positive else "negative"
    return _table(["gene", "weight", "Z", "q FDR", "rank"], rows, f"genes-{name}")


def _enrichment_tables(enrichment: dict, top: int) -> list[dict]:
    out = []
    for key, frame in enrichment.items():
        sets, analysis = key.split("/", 1)
        frame = frame if "set" in frame.columns else frame.rename_axis("set").reset_index()
        if analysis == "gsea":
            frame = frame.sort_values(["fdr_q", "p"], kind="stable").head(top)
            headers = ["set", "size", "NES", "p", "q FDR"]
            rows = [[r["set"], _fmt(r["size"], "i"), _fmt(r["nes"]), _fmt(r["p"], "g"),
                     _fmt(r["fdr_q"], "g")] for r in frame.to_dict("records")]
            title = "GSEA of the PLS1 ranking"
        elif analysis.startswith("ora_"):
            frame = frame.sort_values(["q", "p"], kind="stable").head(top)
            headers = ["set", "overlap / size", "fold", "p", "q FDR"]
            rows = [[r["set"], f"{int(r['overlap'])} / {int(r['size'])}",
                     _fmt(r["fold_enrichment"]), _fmt(r["p"], "g"), _fmt(r["q"], "g")]
                    for r in frame.to_dict("records")]
            title = "ORA of the " + ("PLS1+" if analysis.endswith("positive") else "PLS1−") \
                + " genes"
        elif analysis == "spatial":
            frame = frame.sort_values(["p_spatial", "p_classic"], kind="stable").head(top)
            headers = ["set", "size", "score", "p classic", "q classic", "p spatial",
                       "q spatial", "Z spatial"]
            rows = [[r["set"], _fmt(r["size"], "i"), _fmt(r["score"], "g"),
                     _fmt(r["p_classic"], "g"), _fmt(r["q_classic"], "g"),
                     _fmt(r["p_spatial"], "g"), _fmt(r["q_spatial"], "g"),
                     _fmt(r["z_spatial"])] for r in frame.to_dict("records")]
            title = "Category scores: classic vs spatial (spin) null"
        else:
            continue
        out.append({**_table(headers, [{"cells": [str(c) for c in row], "class": ""}
                                       for row in rows],
                             "enrichment-" + key.replace("/", "-").replace("_", "-")),
                    "title": f"{sets}: {title}"})
    return out


# ------------------------------------------------------------------------------------ figures

def _figure(files: dict, caption: str, alt: str) -> dict:
    return {"src": data_uri(files["png"]), "caption": caption, "alt": alt,
            "files": [p.name for p in files.values()]}


def _figures(outputs, folder: Path) -> tuple[dict, list]:
    spec, figs = outputs.spec, {}
    tx = spec.transcriptomics or {}
    annots = {h: tx.get(f"annot_{h}") for h in ("lh", "rh")}
    t_map = outputs.paired.table["t"].astype(float)
    fig, note = sbf.plot_region_map(t_map, title="Regional change post − pre", label="t",
                                    annots=annots)
    figs["t_map"] = _figure(sbf.save_png_svg(fig, folder, "t_map_surface", svg=False),
                            f"Regional t of the paired change (red: increase). {note}", "t-map")
    clinical = outputs.clinical
    if clinical is not None:
        pred_path = Path(outputs.out_dir) / "clinical_pls" / "pls_clinical_predictions.tsv"
        if pred_path.is_file():
            pred = pd.read_csv(pred_path, sep="\t", index_col=0)
            cfg = spec.clinical_pls or {}
            fig = sbf.plot_clinical_scatter(pred, r=clinical.r, p_perm=clinical.p_perm,
                                            cv_r=clinical.cv_r,
                                            label="Δ" + re.sub(r"[_-]?post$", "", str(
                                                cfg.get("clinical_post", "clinical"))))
            figs["clinical"] = _figure(
                sbf.save_png_svg(fig, folder, "clinical_pls_scatter"),
                "Clinical PLS: cross-validated prediction (blue) and in-sample fit (grey) of the "
                "observed clinical change; dashed line: identity.", "clinical PLS scatter")
    genes = outputs.transcriptomics
    if genes is not None:
        score = genes.scores["PLS1"]
        fig, note = sbf.plot_region_map(score, title="PLS1 gene-expression score",
                                        label="score", annots=annots)
        figs["pls1_map"] = _figure(sbf.save_png_svg(fig, folder, "pls1_score_surface",
                                                    svg=False),
                                   f"PLS1 region scores (signed to correlate positively with the "
                                   f"t-map). {note}", "PLS1 score map")
        r = None if genes.score_map_r is None else float(genes.score_map_r[0])
        fig = sbf.plot_score_vs_map(score, t_map, r=r)
        figs["pls1_scatter"] = _figure(sbf.save_png_svg(fig, folder, "pls1_vs_tmap"),
                                       "PLS1 region score against the regional t.",
                                       "PLS1 vs t-map")
        if genes.null_explained is not None:
            p = None if genes.p_spin is None else float(genes.p_spin[0])
            fig = sbf.plot_spin_null(genes.null_explained[:, 0], float(
                genes.explained_variance[0]), p_spin=p)
            figs["spin"] = _figure(sbf.save_png_svg(fig, folder, "pls1_spin_null"),
                                   "Variance of the t-map explained by PLS1 under the spin null "
                                   "(grey) and observed (red).", "spin null histogram")
        fig = sbf.plot_ranked_genes(genes.gene_table, fdr_alpha=genes.fdr_alpha)
        figs["ranked"] = _figure(sbf.save_png_svg(fig, folder, "ranked_genes"),
                                 f"Genes ranked by PLS1 bootstrap Z; dashed lines: the ends of "
                                 f"the PLS1+ and PLS1− lists (Benjamini–Hochberg q < "
                                 f"{genes.fdr_alpha:g}).", "ranked genes")
    bubbles = []
    by_sets: dict[str, dict] = {}
    for key, frame in outputs.enrichment.items():
        sets, analysis = key.split("/", 1)
        if analysis == "gsea":
            by_sets.setdefault(sets, {})["GSEA (PLS1)"] = bubble_frame(frame, kind="gsea")
        elif analysis.startswith("ora_"):
            title = "ORA PLS1+" if analysis.endswith("positive") else "ORA PLS1−"
            by_sets.setdefault(sets, {})[title] = bubble_frame(frame, kind="ora")
    for sets, panels in by_sets.items():
        fig = plot_enrichment_bubbles(panels, title=f"Enrichment: {sets}")
        bubbles.append(_figure(sbf.save_png_svg(fig, folder, f"enrichment_{sets}"),
                               f"{sets}: top sets per analysis; bubble area = overlap (leading "
                               f"edge) / set size, colour = −log10 q.", f"enrichment {sets}"))
    return figs, bubbles


# ----------------------------------------------------------------------------------- provenance

def _sidecar(outputs) -> dict:
    path = Path(outputs.out_dir) / "study_b.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _provenance(outputs, sidecar: dict, seconds: float) -> dict:
    inputs = [{"name": k, **v} for k, v in (sidecar.get("inputs") or {}).items()
              if isinstance(v, dict) and "sha256" in v]
    source = getattr(outputs.spec, "source", None)
    study_text = Path(source).read_text(errors="replace") if source and Path(
        source).is_file() else None
    command = sidecar.get("command_line")
    return {"software": sidecar.get("software", {}), "inputs": inputs, "images": [],
            "random_seed": outputs.spec.random_state,
            "command_line": (" ".join(command) if isinstance(command, list) else command)
                            or "not run from the command line (Python API)",
            "run_time": f"{sidecar.get('run_time_s', outputs.seconds):.1f} s (analysis)",
            "created": sidecar.get("created", ""),
            "study_file": str(source) if source else None, "study_text": study_text,
            "report_seconds": f"{seconds:.1f}"}


def render_study_b_report(outputs, *, figures_dir: str | os.PathLike,
                          simulated: bool | None = None, top: int = 15) -> str:
    """Render the Study B report as an HTML string, writing its figures into ``figures_dir``.

    Parameters
    ----------
    outputs : StudyBOutputs
    figures_dir : path
        Folder for the PNG/SVG figures.
    simulated : bool, optional
        Force the simulated-data banner on or off (default: detected from the data folder).
    top : int, default=15
        Rows of the region, gene and enrichment tables.

    Returns
    -------
    html : str

    Examples
    --------
    >>> html = render_study_b_report(out, figures_dir="results/figures")  # doctest: +SKIP
    """
    started = time.perf_counter()
    note = simulated_note(outputs.spec)
    if simulated is True and note is None:
        note = _DEFAULT_SIMULATED_NOTE
    elif simulated is False:
        note = None
    figs, bubbles = _figures(outputs, Path(figures_dir))
    sidecar = _sidecar(outputs)
    genes = outputs.transcriptomics
    gene_summary = None
    if genes is not None:
        p = genes.p_spin
        gene_summary = [(f"PLS{i + 1}", f"{100 * v:.1f}%",
                         "" if p is None else _fmt(p[i], "g"))
                        for i, v in enumerate(genes.explained_variance)]
    table = outputs.paired.table
    context = {
        "title": outputs.spec.name or "graymatter Study B",
        "simulated_note": note,
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "n_regions": len(table), "n_fdr": int((table["p_fdr"] < 0.05).sum()),
        "n_fwe": int((table["p_fwe"] < 0.05).sum()) if "p_fwe" in table else None,
        "figures": figs, "bubbles": bubbles,
        "regions": _regions_table(outputs.paired, top),
        "clinical": None if outputs.clinical is None
        else _clinical_rows(outputs.clinical, outputs.spec),
        "gene_summary": gene_summary,
        "genes": None if genes is None else [_gene_table(genes, True, top),
                                             _gene_table(genes, False, top)],
        "enrichment": _enrichment_tables(outputs.enrichment, top),
        "methods": study_b_methods(outputs),
    }
    context["provenance"] = _provenance(outputs, sidecar, time.perf_counter() - started)
    return _environment().get_template("study_b.html.j2").render(**context)


def write_study_b_report(outputs, path: str | os.PathLike | None = None, *,
                         simulated: bool | None = None) -> Path:
    """Write the Study B self-contained HTML report, and its figures beside it.

    The report holds the regional t-map on the fsaverage5 surface and the top regions (t,
    p_FWE, q_FDR, d_z); the clinical PLS scatter and summary; the PLS1 score map, its scatter
    against the t-map, the spin null of PLS1's variance explained and the ranked genes with the
    PLS1+/PLS1− tables; the enrichment bubble plots and tables (classic and spatial p side by
    side); a methods paragraph with references; and provenance. Written atomically.

    Parameters
    ----------
    outputs : StudyBOutputs
        From :func:`graymatter.workflows.study_b.run_study_b`.
    path : path, optional
        The HTML file (default: ``report.html`` in the study's output folder). Figures go to
        ``figures/`` beside it.
    simulated : bool, optional
        Force the simulated-data banner on or off (default: detected from the data folder).

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> write_study_b_report(run_study_b("ect.yaml"))  # doctest: +SKIP
    PosixPath('results/report.html')
    """
    path = Path(outputs.out_dir) / "report.html" if path is None else Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise InputError(f"the report path must end in .html; got '{path}'. Pass e.g. "
                         f"'{path.with_suffix('.html')}'.")
    html = render_study_b_report(outputs, figures_dir=path.parent / "figures",
                                 simulated=simulated)
    write_text(path, html)
    logger.info("Study B report written: %s (%.1f MB)", path, path.stat().st_size / 1e6)
    return path
