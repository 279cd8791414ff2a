"""Brain figures of a voxel contrast: a glass brain and an axial slice montage of its
thresholded map, showing only the clusters that survive cluster-level FWE correction.

nilearn draws on ``matplotlib.figure.Figure`` objects made here (never through pyplot), so no
figure is left open in pyplot's registry and no backend is chosen at import.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy import stats

from ..errors import InputError, format_choices
from .figures import save_figure

logger = logging.getLogger("graymatter")

#: Cluster-level p-values used to pick the clusters that are shown, best first.
CORRECTIONS = ("perm", "rft")
_DEFAULT_HEIGHT_P = 0.001  # SPM's usual cluster-forming height when no inference was run
_N_CUTS = 7


@dataclass(frozen=True, eq=False)
class ThresholdedMap:
    """A contrast's statistic map restricted to its significant clusters.

    Attributes
    ----------
    contrast : str
        Contrast name.
    values : (n_voxels,) numpy.ndarray of float
        The t (or F) value in voxels of significant clusters, 0 elsewhere.
    stat_name : {"t", "F"}
    height : float
        Cluster-forming height as a statistic value.
    correction : {"perm", "rft", "none"}
        Which cluster-level p-values selected the clusters (``"none"``: every cluster above the
        height, uncorrected).
    alpha : float
        Cluster-level FWE threshold.
    clusters : tuple of int
        Ids of the clusters shown (1-based, as in the cluster table).
    peaks_mm : (n_shown, 3) numpy.ndarray
        First (highest) peak of each cluster shown, MNI mm.
    caption : str
        One sentence saying what is shown and how it was thresholded.
    """

    contrast: str
    values: np.ndarray
    stat_name: str
    height: float
    correction: str
    alpha: float
    clusters: tuple[int, ...]
    peaks_mm: np.ndarray
    caption: str

    @property
    def n_clusters(self) -> int:
        """Number of clusters shown."""
        return len(self.clusters)


@dataclass
class ContrastFigures:
    """Figures written for one contrast: ``files`` maps ``glass_brain.png`` etc. to paths."""

    contrast: str
    map: ThresholdedMap
    files: dict[str, Path] = field(default_factory=dict)


def _result_stat(result) -> tuple[np.ndarray, str, int]:
    if getattr(result, "kind", "t") == "F":
        return np.asarray(result.f, dtype=float), "F", int(result.df_den)
    return np.asarray(result.t, dtype=float), "t", int(result.df)


def _correction_phrase(correction: str, inference, alpha: float) -> str:
    if correction == "perm":
        perm = inference.permutation
        scheme = {"freedman-lane": "Freedman–Lane", "sign-flip": "sign-flipping"}.get(
            perm.method, perm.method)
        return (f"cluster-level p_FWE < {alpha:g} by permutation (cluster extent, "
                f"{perm.n_perm} {scheme} permutations)")
    if correction == "rft":
        return f"cluster-level p_FWE < {alpha:g} by random field theory (cluster extent)"
    return "no cluster-level correction (all clusters above the height, uncorrected)"


def thresholded_map(glm, contrast: str, *, alpha: float = 0.05) -> ThresholdedMap:
    """Restrict a contrast's statistic map to its clusters with cluster-level p_FWE < ``alpha``.

    The permutation cluster p-values are used when they were computed, else random field
    theory's; when neither was (no corrected inference), every cluster above the height is
    kept (the height is then ``p < 0.001`` uncorrected) and the caption says it is uncorrected.

    Parameters
    ----------
    glm : GLMOutputs
        A voxel GLM from :func:`graymatter.workflows.glm.run_glm`.
    contrast : str
        Contrast name, as in ``glm.results``.
    alpha : float, default=0.05
        Cluster-level family-wise error threshold.

    Returns
    -------
    ThresholdedMap

    Raises
    ------
    InputError
        Region (not voxel) results, an unknown contrast, or ``alpha`` outside (0, 1).

    Examples
    --------
    >>> tmap = thresholded_map(study.glm, "HC > MDD")  # doctest: +SKIP
    >>> tmap.caption  # doctest: +SKIP
    't map (7 df) thresholded at t > 4.79 (p < 0.001 uncorrected), ...'
    """
    if glm.grid is None:
        raise InputError("brain figures need voxel results (images); this GLM was fitted to a "
                         "regions table. Plot regional results on the cortical surface instead.")
    if contrast not in glm.results:
        raise InputError(f"contrast {contrast!r} is not among the fitted contrasts "
                         f"({format_choices(glm.results)}); pass one of these names.")
    if not 0.0 < alpha < 1.0:
        raise InputError(f"alpha is a cluster-level FWE p threshold in (0, 1); got {alpha!r}.")
    stat, stat_name, df = _result_stat(glm.results[contrast])
    stat = np.nan_to_num(stat, nan=0.0)
    inference = glm.inference.get(contrast)
    height_p = None
    if inference is not None and inference.clusters is not None:
        height = float(inference.height)
        labels = np.asarray(inference.clusters.labels)
        correction = next((c for c in CORRECTIONS if c in inference.cluster_p), "none")
        n_clusters = int(labels.max()) if labels.size else 0
        if correction == "none":
            keep = np.arange(1, n_clusters + 1)
        else:
            p = np.asarray(inference.cluster_p[correction], dtype=float)
            keep = np.flatnonzero(p < alpha) + 1
    else:  # no corrected inference was run: clusters above p < 0.001 uncorrected
        from ..stats.clusters import label_clusters

        height_p = _DEFAULT_HEIGHT_P
        num = int(getattr(glm.results[contrast], "df_num", 1))
        height = float(stats.t.isf(height_p, df) if stat_name == "t"
                       else stats.f.isf(height_p, num, df))
        labels = label_clusters(stat, glm.grid, height=height).labels
        correction = "none"
        keep = np.arange(1, int(labels.max()) + 1 if labels.size else 1)
    labels = np.asarray(labels)
    sizes = np.bincount(labels, minlength=int(labels.max(initial=0)) + 1)
    keep = sorted((int(k) for k in keep), key=lambda k: (-sizes[k], k))  # largest first
    shown = np.isin(labels, keep) & (labels > 0)
    values = np.where(shown, stat, 0.0)
    peaks = _cluster_peaks(stat, labels, keep, glm.grid)
    if height_p is None and inference is not None:
        height_p = float(stats.t.sf(height, df)) if stat_name == "t" else None
    p_text = f", p < {height_p:.3g} uncorrected" if height_p is not None else ""
    described = _correction_phrase(correction, inference, alpha)
    count = f"{len(keep)} cluster{'s' if len(keep) != 1 else ''} shown"
    caption = (f"{stat_name} map of '{contrast}' ({df} df) at the cluster-forming height "
               f"{stat_name} > {height:.2f}{p_text}; {described}; {count}.")
    return ThresholdedMap(contrast, values, stat_name, height, correction, alpha,
                          tuple(int(k) for k in keep), peaks, caption)


def _cluster_peaks(stat, labels, keep, grid) -> np.ndarray:
    """MNI coordinates of each kept cluster's maximum."""
    if len(keep) == 0:
        return np.empty((0, 3))
    coords = grid.coordinates()
    peaks = []
    for k in keep:
        members = np.flatnonzero(labels == k)
        peaks.append(coords[members[np.argmax(stat[members])]])
    return np.asarray(peaks, dtype=float)


def _cut_coords(peaks_mm: np.ndarray, n_cuts: int) -> list[float]:
    """Axial cuts through the peaks (largest clusters first), filled with evenly spread slices."""
    cuts: list[float] = []
    for z in peaks_mm[:, 2] if len(peaks_mm) else []:
        if len(cuts) < n_cuts and all(abs(z - c) >= 4.0 for c in cuts):
            cuts.append(float(round(z)))
    candidates = np.linspace(-40.0, 64.0, 14)
    while len(cuts) < n_cuts:
        distance = [min((abs(c - z) for z in cuts), default=np.inf) for c in candidates]
        cuts.append(float(candidates[int(np.argmax(distance))]))
    return sorted(cuts)


def _new_figure(size) -> Figure:
    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    return fig


def _vmax(tmap: ThresholdedMap) -> float:
    top = float(np.max(tmap.values)) if tmap.values.size else 0.0
    return max(top, tmap.height + 1.0)


def _draw(function, img, fig, tmap: ThresholdedMap, **kwargs):
    with warnings.catch_warnings():
        # nilearn warns "empty mask" for a map with nothing significant; the caption says so.
        warnings.filterwarnings("ignore", message=".*empty mask.*")
        function(img, figure=fig, threshold=tmap.height * 0.999, vmax=_vmax(tmap),
                 colorbar=True, cmap="hot", **kwargs)


def plot_glass_brain(tmap: ThresholdedMap, grid, *, title: str | None = None) -> Figure:
    """Draw a thresholded map as a glass brain (four projections, left-right-axial).

    Parameters
    ----------
    tmap : ThresholdedMap
        From :func:`thresholded_map`.
    grid : MaskedGrid
        The voxel grid of ``tmap.values``.
    title : str, optional
        Title drawn on the figure (default: the contrast name).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = plot_glass_brain(thresholded_map(glm, "HC > MDD"), glm.grid)  # doctest: +SKIP
    """
    from nilearn import plotting

    fig = _new_figure((9.0, 3.2))
    _draw(plotting.plot_glass_brain, grid.to_image(tmap.values), fig, tmap,
          plot_abs=False, display_mode="lyrz", title=title or tmap.contrast, vmin=0.0)
    return fig


def plot_slices(tmap: ThresholdedMap, grid, *, cut_coords=None, n_cuts: int = _N_CUTS,
                title: str | None = None) -> Figure:
    """Draw a thresholded map on axial slices of the MNI152 template.

    Parameters
    ----------
    tmap : ThresholdedMap
        From :func:`thresholded_map`.
    grid : MaskedGrid
        The voxel grid of ``tmap.values``.
    cut_coords : sequence of float, optional
        Axial positions (z, mm). Default: through the peaks of the clusters shown, filled with
        evenly spread slices up to ``n_cuts``.
    n_cuts : int, default=7
        Number of slices when ``cut_coords`` is not given.
    title : str, optional
        Title drawn on the figure (default: the contrast name).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = plot_slices(thresholded_map(glm, "HC > MDD"), glm.grid)  # doctest: +SKIP
    """
    from nilearn import plotting

    if cut_coords is None:
        if not isinstance(n_cuts, (int, np.integer)) or n_cuts < 1:
            raise InputError(f"n_cuts must be a positive number of slices; got {n_cuts!r}.")
        cut_coords = _cut_coords(tmap.peaks_mm, int(n_cuts))
    cut_coords = [float(c) for c in cut_coords]
    fig = _new_figure((1.75 * len(cut_coords) + 1.0, 2.6))
    _draw(plotting.plot_stat_map, grid.to_image(tmap.values), fig, tmap, display_mode="z",
          cut_coords=cut_coords, title=title or tmap.contrast)
    return fig


def write_contrast_figures(glm, contrast: str, *, out_dir: str | os.PathLike | None = None,
                           alpha: float = 0.05, formats=("png", "svg"),
                           dpi: int = 110) -> ContrastFigures:
    """Write a contrast's glass brain and slice montage (thresholded map) as PNG and SVG.

    Files are ``contrast-<label>_glassbrain.<ext>`` and ``contrast-<label>_slices.<ext>`` in
    ``out_dir`` (default: the GLM's output folder, next to the maps), written atomically.

    Parameters
    ----------
    glm : GLMOutputs
        A voxel GLM.
    contrast : str
        Contrast name.
    out_dir : path, optional
        Folder for the figures (default ``glm.out_dir``).
    alpha : float, default=0.05
        Cluster-level FWE threshold of the clusters shown.
    formats : sequence of {"png", "svg", "pdf"}, default=("png", "svg")
        File formats written.
    dpi : int, default=110
        Resolution of raster formats.

    Returns
    -------
    ContrastFigures
        ``files`` keys are ``"glass_brain.<ext>"`` and ``"slices.<ext>"``.

    Examples
    --------
    >>> figs = write_contrast_figures(study.glm, "HC > MDD")  # doctest: +SKIP
    >>> figs.files["glass_brain.png"]  # doctest: +SKIP
    PosixPath('results/contrast-HCgtMDD_glassbrain.png')
    """
    from ..io.naming import contrast_slug

    allowed = ("png", "svg", "pdf")
    bad = [f for f in formats if f not in allowed]
    if bad or not formats:
        raise InputError(f"formats must be a non-empty list among {list(allowed)}; got "
                         f"{list(formats)!r}.")
    tmap = thresholded_map(glm, contrast, alpha=alpha)
    out_dir = Path(glm.out_dir if out_dir is None else out_dir)
    slug = contrast_slug(contrast)
    result = ContrastFigures(contrast, tmap)
    for role, stem, draw in (("glass_brain", "glassbrain", plot_glass_brain),
                             ("slices", "slices", plot_slices)):
        fig = draw(tmap, glm.grid)
        for ext in formats:
            result.files[f"{role}.{ext}"] = save_figure(
                fig, out_dir / f"contrast-{slug}_{stem}.{ext}", dpi=dpi)
        fig.clear()  # the Figure is not in pyplot's registry; clearing frees its artists now
    logger.info("figures of '%s': %d significant cluster(s) (%s)", contrast, tmap.n_clusters,
                tmap.correction)
    return result


__all__ = ["CORRECTIONS", "ContrastFigures", "ThresholdedMap", "plot_glass_brain",
           "plot_slices", "thresholded_map", "write_contrast_figures"]
