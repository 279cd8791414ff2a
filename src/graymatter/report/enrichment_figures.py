"""Bubble plots of gene-set enrichment: one panel per analysis (GSEA, each ORA gene list).

Drawn on matplotlib ``Figure`` objects directly (no pyplot state). x = NES (GSEA) or fold
enrichment (ORA), y = set, bubble area = overlap / set size (leading edge / size for GSEA),
colour = -log10 q on one scale shared by all panels.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from ..errors import InputError, format_choices

__all__ = ["bubble_frame", "plot_enrichment_bubbles"]

_KINDS = {
    # kind: (x column, numerator of the bubble fraction, q column, x-axis label)
    "gsea": ("nes", "leading_edge_size", "fdr_q", "NES"),
    "ora": ("fold_enrichment", "overlap", "q", "fold enrichment"),
}


def bubble_frame(table: pd.DataFrame, *, kind: str, top: int = 15) -> pd.DataFrame:
    """Top sets of a GSEA or ORA table in the bubble-plot layout.

    Parameters
    ----------
    table : pandas.DataFrame
        ``GSEAResult.table`` (sets as index; ``nes``, ``leading_edge_size``, ``size``,
        ``fdr_q``) or an :func:`~graymatter.transcriptomics.ora.ora` table (``set``,
        ``fold_enrichment``, ``overlap``, ``size``, ``q``).
    kind : {"gsea", "ora"}
    top : int, default=15
        Sets kept, smallest q first (ties: larger ``|x|``).

    Returns
    -------
    (n_kept, 4) pandas.DataFrame
        Columns ``set``, ``x``, ``fraction`` (overlap / size in [0, 1]) and ``q``;
        ``attrs["xlabel"]`` names x.

    Examples
    --------
    >>> t = pd.DataFrame({"set": ["a", "b"], "fold_enrichment": [3.0, 1.2], "overlap": [6, 2],
    ...                   "size": [20, 40], "q": [0.01, 0.5]})
    >>> bubble_frame(t, kind="ora")["fraction"].tolist()
    [0.3, 0.05]
    """
    if kind not in _KINDS:
        raise InputError(f"kind must be one of {format_choices(_KINDS)}; got {kind!r}")
    xcol, ncol, qcol, xlabel = _KINDS[kind]
    frame = table.copy()
    if "set" not in frame.columns:
        frame = frame.rename_axis("set").reset_index()
    missing = [c for c in ("set", xcol, ncol, "size", qcol) if c not in frame.columns]
    if missing:
        raise InputError(f"the {kind} table lacks column(s) {format_choices(missing)}; pass the "
                         f"table returned by {'gsea_prerank().table' if kind == 'gsea' else 'ora()'}")
    size = frame["size"].to_numpy(dtype=float)
    out = pd.DataFrame({"set": frame["set"].astype(str).to_numpy(),
                        "x": frame[xcol].to_numpy(dtype=float),
                        "fraction": np.where(size > 0, frame[ncol].to_numpy(dtype=float)
                                             / np.maximum(size, 1), 0.0),
                        "q": frame[qcol].to_numpy(dtype=float)})
    out = out[np.isfinite(out["x"])]
    out = out.assign(_abs=-out["x"].abs()).sort_values(["q", "_abs"], kind="stable")
    out = out.drop(columns="_abs").head(int(top)).reset_index(drop=True)
    out.attrs["xlabel"] = xlabel
    return out


def plot_enrichment_bubbles(panels: Mapping[str, pd.DataFrame], *, title: str | None = None,
                            q_line: float = 0.05) -> Figure:
    """Bubble plot with one panel per analysis, sets on y, shared -log10 q colour scale.

    Parameters
    ----------
    panels : mapping of str to pandas.DataFrame
        Panel title -> :func:`bubble_frame` output. Empty frames get an empty panel that says so.
    title : str, optional
    q_line : float, default=0.05
        The colour bar marks -log10(q_line).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = plot_enrichment_bubbles({"GSEA": bubble_frame(gsea.table, kind="gsea")})  # doctest: +SKIP
    >>> save_figure(fig, "enrichment.png")  # doctest: +SKIP
    """
    if not panels:
        raise InputError("panels is empty; pass at least one {title: bubble_frame(...)}")
    frames = list(panels.items())
    rows = max([len(f) for _, f in frames] + [1])
    fig = Figure(figsize=(4.2 * len(frames) + 1.6, max(3.0, 0.32 * rows + 1.6)),
                 layout="constrained")
    FigureCanvasAgg(fig)
    logq = [-np.log10(np.clip(f["q"].to_numpy(dtype=float), 1e-300, 1)) for _, f in frames]
    vmax = max([float(v.max()) for v in logq if v.size] + [-np.log10(q_line), 1.0])
    norm = Normalize(vmin=0.0, vmax=vmax)
    axes = fig.subplots(1, len(frames), squeeze=False)[0]
    for ax, (name, frame), lq in zip(axes, frames, logq):
        ax.set_title(name, fontsize=10)
        if frame.empty:
            ax.text(0.5, 0.5, "no sets", ha="center", va="center", transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        y = np.arange(len(frame))[::-1]  # most significant on top
        ax.scatter(frame["x"], y, s=40 + 460 * frame["fraction"].to_numpy(dtype=float),
                   c=lq, cmap="viridis", norm=norm, edgecolors="black", linewidths=0.5)
        ax.set_yticks(y)
        ax.set_yticklabels([s if len(s) <= 45 else s[:42] + "..." for s in frame["set"]],
                           fontsize=8)
        ax.set_ylim(-0.8, len(frame) - 0.2)
        ax.set_xlabel(frame.attrs.get("xlabel", "x"))
        ref = 0.0 if frame.attrs.get("xlabel") == "NES" else 1.0
        ax.axvline(ref, color="grey", linewidth=0.6, linestyle="--")
        ax.margins(x=0.15)
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap="viridis"), ax=list(axes), shrink=0.8)
    bar.set_label("-log10 q")
    bar.ax.axhline(-np.log10(q_line), color="red", linewidth=1)
    for frac in (0.1, 0.5, 1.0):  # size legend
        axes[-1].scatter([], [], s=40 + 460 * frac, c="white", edgecolors="black",
                         linewidths=0.5, label=f"{frac:g}")
    axes[-1].legend(title="overlap / size", fontsize=7, title_fontsize=7, loc="best",
                    labelspacing=1.2, borderpad=0.9, framealpha=0.6)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig
